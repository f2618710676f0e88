"""The transport-accuracy study against hand-built ground truth, and its summary form."""

import math

import pytest
import torch

from nortonkit.alignment_metrics import alignment_metrics, pool_metrics
from nortonkit.lab.transport_study import default_accuracy, transport_accuracy
from nortonkit.lab.transport_study_align import align_sequences


def _case():
    """3 clips x 4 captions: caption 0 -> clip 0, 1 -> clip 1, 2 -> clip 2, 3 irrelevant."""
    truth = torch.zeros(3, 4, dtype=torch.bool)
    truth[0, 0] = truth[1, 1] = truth[2, 2] = True
    irrelevant = torch.tensor([False, False, False, True])
    return truth, irrelevant


def test_metrics_count_hits_misses_and_bucket_by_hand():
    truth, irr = _case()
    # caption 1 goes to clip 2 (a miss), caption 3 (irrelevant) and caption 2 to the bucket
    plan = torch.tensor([[0.9, 0.0, 0.0, 0.1],
                         [0.0, 0.2, 0.0, 0.1],
                         [0.0, 0.7, 0.3, 0.1]])
    bucket = torch.tensor([0.1, 0.1, 0.6, 0.7])
    m = alignment_metrics(plan, truth, irr, bucket_mass=bucket)
    assert m["accuracy"] == pytest.approx(2 / 3)  # captions 0 and 2 hit, 1 misses
    assert m["strict_accuracy"] == pytest.approx(1 / 3)  # caption 2 is in the bucket
    assert m["bucket_precision"] == pytest.approx(1 / 2)  # {2, 3} sent, 3 irrelevant
    assert m["bucket_recall"] == pytest.approx(1.0)
    no_bucket = alignment_metrics(plan, truth, irr)
    assert math.isnan(no_bucket["bucket_precision"]) and no_bucket["strict_accuracy"] == \
        pytest.approx(2 / 3)
    pooled = pool_metrics([m, m])
    assert pooled["accuracy"] == pytest.approx(2 / 3) and pooled["n_alignable"] == 6


def test_the_three_alignments_recover_a_clean_diagonal_and_the_bucket_takes_the_outlier():
    truth, irr = _case()
    sim = torch.full((3, 4), -1.0)
    sim[0, 0] = sim[1, 1] = sim[2, 2] = 1.0
    sim[:, 3] = -0.9  # the irrelevant caption matches nothing
    (r,) = align_sequences([sim], bucket_value=0.0, eps=0.05, n_iters=200)
    for plan in (r.dtw_path, r.ot_plan, r.bucket_plan):
        assert alignment_metrics(plan, truth, irr, scores=sim)["accuracy"] == 1.0
    m = alignment_metrics(r.bucket_plan, truth, irr, r.caption_to_bucket, scores=sim)
    assert m["bucket_recall"] == 1.0 and m["bucket_precision"] == 1.0


def test_a_reordered_video_breaks_dtw_but_not_transport():
    truth = torch.eye(4, dtype=torch.bool).flip(0)  # captions in the reverse order of clips
    sim = torch.where(truth, 1.0, -1.0)
    irr = torch.zeros(4, dtype=torch.bool)
    (r,) = align_sequences([sim], bucket_value=-2.0, eps=0.05, n_iters=200)
    assert alignment_metrics(r.dtw_path, truth, irr, scores=sim)["accuracy"] < 1.0
    assert alignment_metrics(r.ot_plan, truth, irr, scores=sim)["accuracy"] == 1.0


def test_bad_truth_is_refused_with_the_argument_named():
    truth, irr = _case()
    truth[0, 3] = True  # an irrelevant caption with a true clip
    with pytest.raises(ValueError, match="truth, irrelevant"):
        alignment_metrics(torch.ones(3, 4), truth, irr)


def test_default_accuracy_has_the_summary_form_and_is_deterministic():
    a = default_accuracy(seeds=[0, 1, 2])
    assert a == default_accuracy(seeds=[0, 1, 2])
    for method in ("dtw", "ot", "norton"):
        assert set(a[method]) == {"mean", "std", "n"} and a[method]["n"] == 3
        assert 0.0 <= a[method]["mean"] <= 100.0 and a[method]["std"] >= 0.0


def test_reordering_steps_lowers_dtw_more_than_ot_on_the_corpus():
    runs = transport_accuracy(reorder_rate=1.0, seeds=[0, 1], n_videos=2)
    acc = runs[runs["metric"] == "accuracy"].groupby("method")["value"].mean()
    clean = transport_accuracy(seeds=[0, 1], n_videos=2)
    acc0 = clean[clean["metric"] == "accuracy"].groupby("method")["value"].mean()
    assert (acc0["dtw"] - acc["dtw"]) > (acc0["ot"] - acc["ot"])


def _claim_runs(norton_precision):
    """Tidy runs at the default noise: DTW and OT have no bucket (NaN), Norton has one."""
    import pandas as pd

    rows = []
    for seed, prec in enumerate(norton_precision):
        for method in ("dtw", "ot", "norton"):
            rows += [dict(knob="default", level=0.0, method=method, seed=seed, metric=m, value=v,
                          note="") for m, v in (("accuracy", 0.8), ("irrelevant_share", 0.7),
                                                ("bucket_precision",
                                                 prec if method == "norton" else math.nan))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("precision, verdict", [((0.90, 0.92, 0.91), "holds"),
                                                ((0.70, 0.69, 0.71), "no real difference"),
                                                ((0.40, 0.41, 0.42), "does not hold")])
def test_bucket_precision_claim_reads_norton_against_the_irrelevant_share(precision, verdict):
    """The chance claim compares Norton's own precision with the irrelevant share, never the
    undefined precision of the methods without a bucket."""
    from nortonkit.lab.transport_study_summary import paper_claims, summarize

    claims = paper_claims(summarize(_claim_runs(precision))).set_index("claim")
    row = claims.loc["The bucket catches irrelevant captions better than chance"]
    assert row.verdict == verdict, row.evidence
    assert "chance 70.0" in row.evidence
