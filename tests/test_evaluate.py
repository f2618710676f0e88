"""Evaluators end to end: a YouCookII-format fixture with a known ranking, the synthetic corpus,
bad inputs, saved results and the command line."""

from __future__ import annotations

import json
import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from nortonkit.checkpoint import checkpoint_hash, save_checkpoint
from nortonkit.data.layout import DataRoot
from nortonkit.data.text import encode_texts, load_tokenizer
from nortonkit.encoders import DualEncoder, EncoderConfig, EncoderOutput
from nortonkit.eval.clip import eval_youcook_clip
from nortonkit.eval.common import pad_groups
from nortonkit.eval.paragraph import eval_youcook_paragraph, paragraph_scores
from nortonkit.lab.evaluate import COLUMNS, TASKS, main, run_task, save_results
from nortonkit.synthetic.corpus import ensure_corpus

DIM = 32


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory):
    return ensure_corpus(tmp_path_factory.mktemp("corpus"), "smoke")


# ---------------------------------------------------------------------------------------------
# a stand-in YouCookII with a known ranking


class OracleModel:
    """Clip vector = mean frame; caption vector = the vector its clip's frames were drawn from."""

    def __init__(self, table: dict[tuple[int, ...], torch.Tensor]):
        self.config = SimpleNamespace(video_feature_dim=DIM, hidden_size=DIM)
        self.table = table

    def eval(self):
        return self

    def encode_video(self, vfeats, vmask, cls_attend=None):
        m = vmask[..., None].float()
        pooled = (vfeats * m).sum(1) / m.sum(1).clamp(min=1)
        return EncoderOutput(pooled, vfeats, vmask)

    def encode_text(self, ids, mask):
        pooled = torch.stack([self.table[tuple(ids[i][mask[i]].tolist())]
                              for i in range(len(ids))])
        return EncoderOutput(pooled, pooled[:, None], mask)


@pytest.fixture(scope="module")
def youcook_standin(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = DataRoot(tmp_path_factory.mktemp("youcook"))
    root.youcook_features.mkdir(parents=True)
    words = ["whisk", "chop", "fry", "boil", "slice", "pour", "stir", "bake", "grill", "peel"]
    items = ["eggs", "onion", "garlic", "rice", "bread", "oil", "salt", "butter", "beef", "corn"]
    db, records, vectors = {}, [], {}
    for j in range(8):
        vid = f"vid{j:02d}xyzab"
        n_steps = 3 + j % 3
        t, anns, feats = 0, [], []
        for k in range(n_steps):  # background and steps of 16 s: one 16-s window each
            feats.append(0.05 * rng.standard_normal((16, DIM)))  # background
            t += 16
            v = rng.standard_normal(DIM)
            v /= np.linalg.norm(v)
            feats.append(np.repeat(v[None], 16, 0))
            sentence = f"{words[(j + k) % 10]} the {items[(3 * j + k) % 10]} step {j} {k}"
            anns.append({"segment": [t, t + 16], "sentence": sentence})
            vectors[sentence] = torch.tensor(v, dtype=torch.float32)
            records.append({"id": f"{vid}_{k}", "caption": sentence})
            t += 16
        feats.append(0.05 * rng.standard_normal((20, DIM)))  # a long tail of background
        db[vid] = {"subset": "validation", "annotations": anns}
        np.save(root.youcook_features / f"{vid}.npy", np.concatenate(feats).astype(np.float16))
    order = rng.permutation(len(records))  # clips of a video are NOT contiguous in the pickle
    root.youcook_val_pkl.write_bytes(pickle.dumps([records[i] for i in order]))
    root.youcook_annotations.write_text(json.dumps({"database": db}))
    tok = load_tokenizer()
    batch = encode_texts(list(vectors), tok, 61)
    table = {tuple(batch.input_ids[i][batch.attention_mask[i]].tolist()): vec
             for i, vec in enumerate(vectors.values())}
    return root, OracleModel(table)


def test_standin_youcook_known_ranking(youcook_standin):
    root, model = youcook_standin
    with pytest.warns(UserWarning, match="not contiguous"):
        rows = eval_youcook_paragraph(model, root)
    df = pd.DataFrame(rows)
    r1 = df[df.metric == "R@1"]
    assert set(r1.table) == {"T1", "T2"}
    t1 = r1[r1.table == "T1"]
    assert len(t1) == 8  # Cap. Avg., DTW, OTAM x 2 variants + the two OTs (corrected only)
    assert (t1.value == 100.0).all(), t1
    t2 = r1[(r1.table == "T2") & ((r1.variant == "corrected") | (r1.measure == "Cap. Avg."))]
    assert (t2.value == 100.0).all(), t2
    assert (df[df.metric == "MR"].value == 1.0).all()
    clip = pd.DataFrame(eval_youcook_clip(model, root))
    assert (clip[clip.metric.isin(["R@1", "R@5", "R@10"])].value == 100.0).all()


def test_order_matters_for_dtw_but_not_cap_avg():
    g = torch.Generator().manual_seed(0)
    clips = torch.nn.functional.normalize(torch.randn(2, 4, 16, generator=g), dim=-1)
    clips[1] = clips[0].flip(0)  # video 1: the same steps in reverse order
    text = clips.clone()  # paragraph q describes video q's steps, in order
    m = torch.ones(2, 4, dtype=torch.bool)
    ps = paragraph_scores(text, m, clips, m)
    cap = ps.scores[("Cap. Avg.", "corrected")][0]
    assert cap[0] == pytest.approx(float(cap[1]))  # Cap. Avg. cannot tell the order
    for key in (("DTW", "corrected"), ("OTAM", "corrected"), ("DTW", "official-compatible")):
        s = ps.scores[key][0]
        assert s[0] > s[1], key


def test_compat_variants_pinned():
    # one block of the maximal length: the official -0: slice zeroes the last caption's costs
    text = torch.eye(2)[None]  # (1, 2, 2) captions
    video = torch.eye(2)[None]  # clips, S = I
    m = torch.ones(1, 2, dtype=torch.bool)
    s = paragraph_scores(text, m, video, m, measures=("DTW", "OTAM", "Cap. Avg.")).scores
    assert float(s[("DTW", "corrected")]) == 2.0  # -(0 - 1 + 0 - 1) * 4 / 4
    assert float(s[("DTW", "official-compatible")]) == 1.0  # last row zeroed
    assert float(s[("OTAM", "corrected")]) == 4.0  # both orientations, each -2
    assert float(s[("Cap. Avg.", "corrected")]) == 1.0
    assert float(s[("OTAM", "official-compatible")]) != float(s[("OTAM", "corrected")])


def test_paragraph_scores_chunking_and_padding_invariance(generator):
    lengths = [3, 5, 2, 4]
    vecs = torch.randn(sum(lengths), 8, generator=generator)
    caps = vecs + 0.5 * torch.randn(sum(lengths), 8, generator=generator)
    groups = list(torch.arange(sum(lengths)).split(lengths))
    t, tm = pad_groups(caps, groups)
    v, vm = pad_groups(vecs, groups)
    full = paragraph_scores(t, tm, v, vm).scores
    small = paragraph_scores(t, tm, v, vm, max_elements=1).scores  # one query per chunk
    wide_t = torch.cat([t, torch.full((4, 2, 8), 7.0)], 1)  # garbage padding, masked
    wide_tm = torch.cat([tm, torch.zeros(4, 2, dtype=torch.bool)], 1)
    padded = paragraph_scores(wide_t, wide_tm, v, vm).scores
    for key, val in full.items():
        torch.testing.assert_close(small[key], val)
        torch.testing.assert_close(padded[key], val)


# ---------------------------------------------------------------------------------------------
# every task on the synthetic corpus (untrained tiny model)


def _check_frame(df, task, tables):
    assert list(df.columns) == list(COLUMNS)
    assert set(df.task) == {task}
    assert set(df.table) <= set(tables)
    assert set(df.variant) <= {"corrected", "official-compatible"}
    pct = df[df.metric.isin(["R@1", "R@5", "R@10", "accuracy", "frame_accuracy", "recall"])]
    assert ((pct.value >= 0) & (pct.value <= 100)).all()
    assert df.value.notna().all()
    meta = df.attrs["meta"]
    assert meta["task"] == task and "data_root" in meta and "checkpoint_sha256" in meta


def test_youcook_paragraph_and_clip_smoke(smoke_root, tmp_path):
    df = run_task("youcook_paragraph", data_root=smoke_root.root, smoke=True, out_dir=tmp_path)
    _check_frame(df, "youcook_paragraph", {"T1", "T2"})
    assert set(df.measure) == {"Cap. Avg.", "DTW", "OTAM", "OT (plain)", "OT (Norton bucket)"}
    assert df.method.iloc[0] == "untrained (tiny, seed 0)"
    assert (tmp_path / "youcook_paragraph.csv").is_file()
    doc = json.loads((tmp_path / "youcook_paragraph.json").read_text())
    assert len(doc["rows"]) == len(df)
    assert doc["meta"]["checkpoint_sha256"] == "untrained"
    assert doc["meta"]["data_root"] == str(smoke_root.root.resolve())
    assert doc["versions"]["nortonkit"]
    df = run_task("youcook_clip", data_root=smoke_root.root, smoke=True)
    _check_frame(df, "youcook_clip", {"T3"})


def test_msrvtt_zero_shot_and_finetuned_smoke(smoke_root):
    df = run_task("msrvtt_retrieval", data_root=smoke_root.root, smoke=True)
    _check_frame(df, "msrvtt_retrieval", {"T5"})
    assert set(df.setting) == {"zero-shot"}
    df = run_task("msrvtt_retrieval", data_root=smoke_root.root, smoke=True, finetune=True,
                  steps=1, seeds=(0, 1))
    _check_frame(df, "msrvtt_retrieval", {"T5"})
    assert set(df.setting) == {"fine-tuned"}
    assert (df.n_seeds == 2).all() and set(df.seed) == {"0,1"}
    sel = df.attrs["meta"]["selection"]
    assert [s["seed"] for s in sel] == [0, 1] and all(s["n_val"] >= 1 for s in sel)


def test_msrvtt_qa_smoke(smoke_root):
    df = run_task("msrvtt_qa", data_root=smoke_root.root, smoke=True)
    _check_frame(df, "msrvtt_qa", {"T6"})
    df = run_task("msrvtt_qa", data_root=smoke_root.root, smoke=True, finetune=True, steps=1)
    assert set(df.setting) == {"fine-tuned"}


def test_coin_finetuned_and_zero_shot_smoke(smoke_root):
    df = run_task("coin", data_root=smoke_root.root, smoke=True, steps=1)
    _check_frame(df, "coin", {"T4"})
    assert set(df.setting) == {"fine-tuned"}
    df = run_task("coin", data_root=smoke_root.root, smoke=True, zero_shot=True)
    assert set(df.setting) == {"zero-shot"}


def test_htm_align_smoke(smoke_root):
    df = run_task("htm_align", data_root=smoke_root.root, smoke=True)
    _check_frame(df, "htm_align", {"T9"})
    assert set(df.metric) == {"recall", "AUC"}


def test_efficiency_smoke():
    df = run_task("efficiency", smoke=True, repeats=1, videos_per_batch=2, clips_per_video=8)
    _check_frame(df, "efficiency", {"T8"})
    rel = df[df.metric == "relative_to_line1"]
    assert len(rel) == 5 and rel.value.iloc[0] == 1.0
    assert (df[df.metric == "seconds_per_step"].value > 0).all()


@pytest.mark.slow
def test_ablations_smoke(smoke_root, tmp_path):
    df = run_task("ablations", data_root=smoke_root.root, smoke=True, presets=("A", "J"),
                  out_dir=tmp_path)
    _check_frame(df, "ablations", {"T7"})
    assert set(df.method) == {"A", "J"}
    assert set(df.measure) == {"clip", "DTW, background removed", "DTW, background kept"}
    runs = df.attrs["meta"]["runs"]
    assert [r["steps"] for r in runs] == [1, 1]


# ---------------------------------------------------------------------------------------------
# bad input, fails fast


def test_unknown_task_and_option():
    with pytest.raises(ValueError, match="did you mean 'htm_align'"):
        run_task("htm-align")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['finetune'\]"):
        run_task("htm_align", finetune=True)
    with pytest.raises(ValueError, match="seeds"):
        run_task("htm_align", seeds=())


def test_checkpoint_of_another_architecture(tmp_path, smoke_root):
    sd = {"mmmodel." + k: v for k, v in DualEncoder(EncoderConfig(preset="tiny")).state_dict()
          .items() if k != "logit_scale"}
    bad = dict(sd)
    bad["mmmodel.text_encoder.encoder.layer.0.attention.self.query.weight"] = torch.zeros(64, 32)
    torch.save({"model": bad}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"checkpoint: .*bad.pt: cannot load.*query.weight"):
        run_task("youcook_clip", checkpoint=tmp_path / "bad.pt", data_root=smoke_root.root)
    # a consistent checkpoint whose video features are 100-d does not fit 512-d data
    narrow = {k: v for k, v in sd.items() if "videomlp.linear1.weight" not in k}
    narrow["mmmodel.video_encoder.videomlp.linear1.weight"] = torch.zeros(64, 100)
    torch.save({"model": narrow}, tmp_path / "narrow.pt")
    with pytest.raises(ValueError, match=r"expected features of shape \(T, 100\)"):
        run_task("youcook_clip", checkpoint=tmp_path / "narrow.pt", data_root=smoke_root.root)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        run_task("youcook_clip", checkpoint=tmp_path / "nope", data_root=smoke_root.root)


def test_data_root_missing_files_and_wrong_dimension(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs 3 missing file"):
        run_task("youcook_clip", data_root=tmp_path)
    root = DataRoot(tmp_path)
    root.htm_align_features.mkdir(parents=True)
    root.htm_align_json.write_text(json.dumps({"v": [[1, 0.0, 2.0, "cut"]]}))
    np.save(root.htm_align_features / "v.npy", np.zeros((10, 256), np.float16))
    with pytest.raises(ValueError, match=r"v.npy: expected features of shape \(T, 512\)"):
        run_task("htm_align", data_root=tmp_path)


def test_named_checkpoint_hash_is_recorded(tmp_path, smoke_root):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "mine", DualEncoder(EncoderConfig(preset="tiny")))
    df = run_task("msrvtt_qa", checkpoint=ckpt, data_root=smoke_root.root, out_dir=tmp_path)
    assert set(df.method) == {"mine"}
    doc = json.loads((tmp_path / "msrvtt_qa.json").read_text())
    assert doc["meta"]["checkpoint_sha256"] == checkpoint_hash(ckpt)
    assert doc["meta"]["checkpoint_kind"] == "nortonkit"


def test_save_results_is_atomic_and_validates(tmp_path):
    df = pd.DataFrame([{"metric": "R@1", "value": float("nan")}])
    csv, js = save_results(df, tmp_path, "x", {"a": 1})
    assert json.loads(js.read_text())["rows"] == [{"metric": "R@1", "value": None}]
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(ValueError, match="name"):
        save_results(df, tmp_path, "../x")


def test_cli(smoke_root, tmp_path, capsys):
    rc = main(["--task", "msrvtt_qa", "--data-root", str(smoke_root.root), "--smoke",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "77.10" in out  # the paper's zero-shot QA accuracy beside ours
    assert (tmp_path / "msrvtt_qa.csv").is_file() and (tmp_path / "msrvtt_qa.json").is_file()
    assert main(["--task", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_tasks_table_is_complete():
    assert set(TASKS) == {"youcook_paragraph", "youcook_clip", "msrvtt_retrieval", "msrvtt_qa",
                          "coin", "htm_align", "ablations", "efficiency"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for spec in TASKS.values():
            assert spec.tables.startswith("T")
