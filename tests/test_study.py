"""The two-stage recipe: stage 2 starts from stage 1; seeds, verdicts, and summary.json."""

import json

import pandas as pd
import pytest
import torch

from nortonkit.checkpoint import load_checkpoint
from nortonkit.lab.demo import write_summary
from nortonkit.lab.study import (
    PROFILES,
    ensure_stage1,
    orderings,
    post_train,
    post_train_config,
    run_methods,
    summarize,
    summary_json,
    verdict,
    write_json,
)
from nortonkit.synthetic.corpus import ensure_corpus


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    root = ensure_corpus(d / "data", "smoke").root
    return root, ensure_stage1(root, d / "stage1", PROFILES["smoke"]), d


def _post(stage1, trainable, seed=0, method="norton"):
    root, ckpt, d = stage1
    cfg = post_train_config(method, ckpt, root, d / f"{method}-{trainable}-{seed}", seed=seed,
                            steps=3, trainable=trainable, synthetic="smoke", smoke=True)
    scores = post_train(cfg)
    return scores, load_checkpoint(d / f"{method}-{trainable}-{seed}" / "checkpoint_last").model


def test_layernorm_only_post_training_starts_from_stage1_and_moves_only_layernorms(stage1):
    _, ckpt, _ = stage1
    before = load_checkpoint(ckpt).model.state_dict()
    scores, model = _post(stage1, "layernorm_only")
    after = model.state_dict()
    assert set(scores) >= {"clip_r1", "paragraph_r1", "align_recall"}
    moved = {k for k in before if k in after and not torch.equal(before[k], after[k])}
    assert moved, "post-training changed nothing"
    assert all(".LayerNorm." in k or "logit_scale" in k for k in moved), sorted(moved)[:5]
    frozen = [k for k in before if ".LayerNorm." not in k and "logit_scale" not in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)


def test_all_parameter_post_training_moves_the_rest_too(stage1):
    _, ckpt, _ = stage1
    before = load_checkpoint(ckpt).model.state_dict()
    _, model = _post(stage1, "all", method="videoclip")
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before
               if ".LayerNorm." not in k and "dense.weight" in k)


def test_run_methods_gives_one_row_per_method_seed_metric(stage1):
    root, ckpt, d = stage1
    runs = run_methods(ckpt, root, d / "runs", ("videoclip", "tempclr"), (0, 1), steps=2,
                       workers=1, synthetic="smoke", smoke=True)
    assert len(runs) == 2 * 2 * 3
    assert set(runs["method"]) == {"videoclip", "tempclr"} and set(runs["seed"]) == {0, 1}
    assert runs["value"].between(0, 100).all()
    s = summarize(runs)
    assert (s["n"] == 2).all() and (s["std"] >= 0).all()
    with pytest.raises(ValueError, match="methods"):
        run_methods(ckpt, root, d / "runs", ("nope",), (0,), steps=1)


def test_verdict_needs_twice_the_combined_std():
    assert verdict((10.0, 1.0), (7.0, 1.0)) == "better"  # 3 > 2 * sqrt(2)
    assert verdict((10.0, 1.0), (7.5, 1.0)) == "not separated"  # 2.5 < 2.83
    assert verdict((5.0, 0.1), (9.0, 0.1)) == "worse"


def test_orderings_name_the_paper_claims_and_skip_pairs_not_run():
    s = pd.DataFrame(dict(method=["norton", "videoclip", "A"], metric="clip_r1",
                          mean=[12.0, 10.0, 11.9], std=[0.2, 0.2, 2.0], n=3))
    got = orderings(s, ["clip_r1"]).set_index("claim")["verdict"].to_dict()
    assert got["Norton beats VideoCLIP post-trained alike (Tables 1, 3)"] == "holds"
    assert got["the full method beats L_clip alone (Table 7, J > A)"] == "not separated"
    assert not any("TempCLR" in c for c in got)


def _refs():
    methods = ("untrained", "ridge_asr", "ridge_true", "oracle", "linear_infonce")
    return {"youcook_clip_r1": dict(zip(methods, (0.1, 25.0, 27.0, 31.0, 15.0))),
            "youcook_paragraph_dtw_r1": dict(zip(methods, (3.0, 91.0, 98.0, 98.0, 95.0)))}


def test_summary_json_schema(tmp_path):
    runs = pd.DataFrame([dict(method=m, seed=s, metric=k, value=v + s)
                         for m in ("videoclip", "norton") for s in range(3)
                         for k, v in (("clip_r1", 10.0), ("paragraph_r1", 30.0))])
    align = {m: {"mean": 90.0, "std": 1.0, "n": 5} for m in ("dtw", "ot", "norton")}
    study = tmp_path / "study"
    write_json({"stage1": {"clip_r1": 9.0, "paragraph_r1": 29.0, "align_recall": 50.0},
                "baselines": _refs(), "profile": "demo"}, study / "references.json")
    runs.to_csv(study / "methods_runs.csv", index=False)
    write_json(align, study / "alignment_accuracy.json")
    path = write_summary(study, tmp_path / "reports" / "summary.json", {"seconds": 1})
    out = json.loads(path.read_text())
    for key in ("youcook_clip_r1", "youcook_paragraph_dtw_r1"):
        entry = out[key]
        for ref in ("ridge_asr", "ridge_true", "oracle", "linear_infonce"):
            assert isinstance(entry[ref], float)
        for method in ("videoclip", "norton"):
            assert set(entry[method]) == {"mean", "std", "n"} and entry[method]["n"] == 3
            assert entry[method]["std"] == pytest.approx(1.0)
    assert out["youcook_clip_r1"]["norton"]["mean"] == pytest.approx(11.0)
    assert set(out["alignment_accuracy"]) == {"dtw", "ot", "norton"}
    assert out["meta"]["profile"] == "demo"
    assert write_summary(tmp_path / "empty", tmp_path / "x.json") is None
    assert summary_json(summarize(runs), _refs(), align)["youcook_clip_r1"]["ridge_asr"] == 25.0


def test_noise_sweep_post_trains_from_stage1_on_a_corpus_of_that_noise(stage1):
    from nortonkit.lab.study import noise_sweep
    from nortonkit.synthetic.corpus import load_manifest

    _, ckpt, d = stage1
    runs = noise_sweep(ckpt, d / "noise", {"irrelevant_rate": (0.8,)}, ("norton",), (0,),
                       steps=2, corpus="smoke", workers=1, smoke=True)
    assert set(runs["knob"]) == {"irrelevant_rate"} and set(runs["level"]) == {0.8}
    assert len(runs) == 3 and runs["value"].between(0, 100).all()
    manifest = load_manifest(d / "noise" / "irrelevant_rate=0.8" / "data")
    assert "0.8" in json.dumps(manifest)
