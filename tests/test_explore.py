"""The explorer's computation: shapes, bucket fractions, ground truth, data roots, errors."""

from __future__ import annotations

import json

import pytest
import torch

from nortonkit.lab.explore import explore_alignment
from nortonkit.lab.explore_examples import (
    AlignmentExample,
    example_from_data_root,
    example_from_synthetic,
    explorer_examples,
    grid_clips,
)
from nortonkit.synthetic.config import NoiseConfig
from nortonkit.synthetic.corpus import ensure_corpus
from nortonkit.synthetic.example import synthetic_example


def _example(sim: torch.Tensor, truth=None, anchors=None) -> AlignmentExample:
    """One-token clips and captions whose cosine similarities are ``sim`` (M, N).

    Clip ``i`` is the unit vector ``e_i``; caption ``j`` is ``sim[:, j]`` plus a private slack
    coordinate that brings it to unit norm, so ``cos(clip i, caption j) = sim[i, j]``.
    """
    m, n = sim.shape
    assert bool((sim.norm(dim=0) <= 1).all()), "columns of sim need norm <= 1"
    clips = torch.zeros(m, 1, m + n)
    clips[:, 0, :m] = torch.eye(m)
    caps = torch.zeros(n, 1, m + n)
    caps[:, 0, :m] = sim.T
    caps[:, 0, m:] = torch.diag((1 - sim.pow(2).sum(0)).clamp(min=0).sqrt())
    ones = lambda *s: torch.ones(*s, dtype=torch.bool)  # noqa: E731
    return AlignmentExample(clips, ones(m, 1), caps, ones(n, 1), [f"{i} s" for i in range(m)],
                            [f"cap {j}" for j in range(n)], truth, "toy", anchors)


def test_single_token_similarity_is_the_dot_product(generator):
    s = torch.rand(3, 4, generator=generator) / 2
    r = explore_alignment(_example(s), alpha=0.5)
    torch.testing.assert_close(r.similarity, s)


def test_shapes_masses_and_bucket_fractions_in_unit_interval(generator):
    s = torch.rand(5, 7, generator=generator) / 3
    r = explore_alignment(_example(s), eps=0.05, n_iters=100)
    assert r.dtw_path.shape == r.ot_plan.shape == r.bucket_plan.shape == (5, 7)
    assert r.clip_to_bucket.shape == (5,) and r.caption_to_bucket.shape == (7,)
    torch.testing.assert_close(r.ot_plan.sum(), torch.tensor(5.0), rtol=1e-4, atol=1e-4)
    for frac in (r.clip_to_bucket, r.caption_to_bucket):
        assert bool(((frac >= 0) & (frac <= 1)).all())
    assert bool((r.bucket_plan >= 0).all()) and bool((r.bucket_plan.sum(0) <= 1 + 1e-4).all())
    assert r.dtw_path[0, 0] == 1 and r.dtw_path[-1, -1] == 1


def test_caption_far_below_p_goes_to_the_bucket():
    s = torch.diag(torch.tensor([1.0, 0.9, 0.0, 0.8]))
    s[:, 2] = -0.5  # caption 2 scores far below p with every clip
    r = explore_alignment(_example(s), bucket_quantile=0.5, eps=0.05, n_iters=200)
    assert r.bucket_value == pytest.approx(0.8)  # 2nd smallest of the pairs [1, .9, -.5, .8]
    assert r.caption_to_bucket[2] > 0.9
    assert bool((r.caption_to_bucket[[0, 1]] < r.caption_to_bucket[2] - 0.5).all())
    # the vanilla plan must still place caption 2's mass somewhere
    torch.testing.assert_close(r.ot_plan.sum(0), torch.ones(4), rtol=1e-3, atol=1e-3)


def test_bucket_value_is_kth_smallest_of_original_pairs():
    s = torch.tensor([[0.9, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.5]])
    r = explore_alignment(_example(s), bucket_quantile=0.7)  # k = int(2.1) = 2
    assert r.bucket_value == pytest.approx(0.5)
    r = explore_alignment(_example(s), bucket_quantile=0.1)  # int(0.3) = 0, clamped to k = 1
    assert r.bucket_value == pytest.approx(0.1)
    anchored = _example(s, anchors=torch.tensor([1, -1, 1]))  # pairs (1, 0) and (1, 2)
    assert explore_alignment(anchored, bucket_quantile=0.5).bucket_value == pytest.approx(0.0)


def test_agreement_with_truth_and_bucket_masses():
    s = torch.eye(4)
    s[:, 3] = -0.5
    truth = torch.eye(4, dtype=torch.bool)
    truth[3, 3] = False  # caption 3 has no visual counterpart
    r = explore_alignment(_example(s, truth), eps=0.05, n_iters=200)
    assert r.agreement["Norton accuracy"] == 1.0 and r.agreement["OT accuracy"] == 1.0
    assert r.agreement["DTW accuracy"] == 1.0
    assert r.agreement["bucket mass, unalignable"] > r.agreement["bucket mass, alignable"]
    assert explore_alignment(_example(s)).agreement == {}


def test_synthetic_example_truth_matches_steps():
    ex = example_from_synthetic(synthetic_example(seed=1, n_steps=4,
                                                  noise=NoiseConfig(irrelevant_rate=0.5)))
    m, n = ex.truth.shape
    assert m == n == len(ex.caption_labels) and ex.clip_tokens.shape[0] == m
    r = explore_alignment(ex)
    assert set(r.agreement) >= {"Norton accuracy", "bucket mass, unalignable"}


def test_explorer_examples_catalogue():
    full = explorer_examples(seed=3)
    assert len(full) == 4 and all(k.startswith("synthetic 3:") for k in full)
    assert len(explorer_examples(smoke=True)) == 2
    for dataset in ("htm_align", "real"):  # "real" is what `make reproduce` passes
        with pytest.raises(ValueError, match="data_root"):
            explorer_examples(dataset=dataset)
    with pytest.raises(ValueError, match="dataset"):
        explorer_examples(dataset="youcook")
    with pytest.raises(ValueError, match="checkpoint"):
        explorer_examples(checkpoint="ckpt")


def test_grid_clips():
    assert grid_clips(17, clip_s=8).tolist() == [[0, 8], [8, 16], [16, 17]]
    with pytest.raises(ValueError, match="start_s"):
        grid_clips(10, start_s=12)


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    return ensure_corpus(tmp_path_factory.mktemp("corpus"), "smoke")


def test_example_from_data_root_uses_annotations_and_asr(smoke_root):
    ann = json.loads(smoke_root.htm_align_json.read_text())
    vid = sorted(ann)[0]
    ex = example_from_data_root(smoke_root, vid, window_s=None, clip_s=8)
    rows = ann[vid]
    assert len(ex.caption_labels) == len(rows)  # the whole video keeps every sentence
    assert ex.clip_labels[0] == "0-8 s"
    alignable = torch.tensor([r[0] == 1 for r in rows])
    assert torch.equal(ex.truth.any(0), alignable)
    j = int(alignable.nonzero()[0])
    s, e = rows[j][1:3]
    starts = torch.tensor([int(c.split("-")[0]) for c in ex.clip_labels])
    ends = starts + 8
    assert torch.equal(ex.truth[:, j], (starts < e) & (ends > s))
    assert bool((ex.anchors >= 0).all())
    r = explore_alignment(ex)
    assert 0.0 <= r.agreement["Norton accuracy"] <= 1.0
    catalogue = explorer_examples(smoke_root, smoke=True)
    assert list(catalogue)[0] == f"htm-align {vid}"


def test_example_from_data_root_errors(smoke_root, tmp_path):
    vid = sorted(json.loads(smoke_root.htm_align_json.read_text()))[0]
    with pytest.raises(ValueError, match="video_id"):
        example_from_data_root(smoke_root, "nope")
    with pytest.raises(ValueError, match="start_s"):
        example_from_data_root(smoke_root, vid, start_s=10_000)
    real = tmp_path / "real"  # the same files without the synthetic manifest: no oracle
    (real / "how2-align").mkdir(parents=True)
    for f in smoke_root.htm_align_features.iterdir():
        (real / "how2-align" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ValueError, match="checkpoint: required"):
        example_from_data_root(real, vid)


def test_example_from_data_root_with_a_checkpoint(smoke_root, tmp_path):
    from nortonkit.checkpoint import save_checkpoint
    from nortonkit.encoders import DualEncoder, EncoderConfig

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "ckpt", DualEncoder(EncoderConfig(preset="tiny")))
    vid = sorted(json.loads(smoke_root.htm_align_json.read_text()))[0]
    ex = example_from_data_root(smoke_root, vid, ckpt, window_s=32)
    h = ex.clip_tokens.shape[-1]
    assert ex.caption_tokens.shape[-1] == h and not ex.clip_mask[:, 0].any()  # CLS excluded
    r = explore_alignment(ex)
    assert torch.isfinite(r.similarity).all()


def test_bad_inputs_name_the_argument(generator):
    ex = _example(torch.rand(3, 3, generator=generator) / 2)
    with pytest.raises(ValueError, match="eps"):
        explore_alignment(ex, eps=0.0)
    with pytest.raises(ValueError, match="bucket_quantile"):
        explore_alignment(ex, bucket_quantile=1.5)
    with pytest.raises(ValueError, match="example.truth"):
        explore_alignment(ex._replace(truth=torch.ones(2, 3, dtype=torch.bool)))
    with pytest.raises(ValueError, match="example.caption_labels"):
        explore_alignment(ex._replace(caption_labels=["a"]))
    with pytest.raises(ValueError, match="example.anchors"):
        explore_alignment(ex._replace(anchors=torch.tensor([0, 1, 7])))
    with pytest.raises(ValueError, match="example.clip_mask"):
        explore_alignment(ex._replace(clip_mask=torch.zeros(3, 1, dtype=torch.bool)))
    with pytest.raises(ValueError, match="example"):
        explore_alignment("not an example")
