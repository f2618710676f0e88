"""The synthetic corpus: determinism, released file formats, ground truth, noise knobs,
streaming memory, generation time and the round trip through every reader."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_corpus_config as tiny

from nortonkit.data.coin import load_coin
from nortonkit.data.howto100m import (
    How2Dataset,
    ShardedCaptions,
    ShardedFeatures,
    read_video_list,
)
from nortonkit.data.htm_align import load_htm_align
from nortonkit.data.layout import CAPTION_PREFIX, DataRoot
from nortonkit.data.msrvtt import MSRVTTTrainDataset, load_msrvtt_qa, load_msrvtt_test
from nortonkit.data.text import load_tokenizer, pretokenize
from nortonkit.data.youcook import (
    load_youcook_clips,
    load_youcook_full_videos,
    load_youcook_paragraphs,
)
from nortonkit.io import safe_pickle_load
from nortonkit.synthetic import corpus, video, vocabulary
from nortonkit.synthetic.config import NoiseConfig, SyntheticConfig
from nortonkit.synthetic.corpus import ensure_corpus, generate_corpus, load_manifest
from nortonkit.synthetic.example import synthetic_example
from nortonkit.synthetic.ground_truth import load_ground_truth
from nortonkit.synthetic.world import build_world

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[DataRoot, float]:
    load_tokenizer()  # time the generator, not the tokenizer import
    t0 = time.perf_counter()
    root = generate_corpus(tmp_path_factory.mktemp("smoke"), SyntheticConfig.preset("smoke"),
                           progress=False)
    return root, time.perf_counter() - t0


@pytest.fixture(scope="module")
def root(smoke) -> DataRoot:
    return smoke[0]


def _unit_rows(x: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(x.astype(np.float32), axis=1), 1.0, atol=3e-3))


def _tree_digest(path: Path) -> dict[str, str]:
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":  # holds the wall-clock generation time
                m = json.loads(data)
                m.pop("seconds")
                data = json.dumps(m, sort_keys=True).encode()
            out[str(p.relative_to(path))] = hashlib.sha256(data).hexdigest()
    return out


# ------------------------------------------------------------------------ vocabulary, config


def test_vocabulary_words_are_disjoint():
    actions = set(vocabulary._ACTION_LOOKUP)
    objects = set(vocabulary._OBJECT_LOOKUP)
    assert not actions & objects
    vocab = actions | objects
    other = set()
    for spec in vocabulary._DOMAINS.values():
        for c in spec["contexts"]:
            other |= set(c.split())
    for phrase in (*vocabulary._FILLERS, *vocabulary._CHATTER, *vocabulary._STEP_TEMPLATES,
                   *vocabulary._MENTION_TEMPLATES, *vocabulary._TASK_MENTION,
                   *vocabulary._MSRVTT_TEMPLATES):
        other |= set(phrase.replace("{a}", "").replace("{o}", "").replace("{t}", "")
                     .replace("{g}", "").split())
    assert not vocab & other, vocab & other
    # every step of the world is written with real words and parses back to its prototype
    world = build_world(SyntheticConfig.preset("smoke"))
    for k in range(len(world.steps)):
        np.testing.assert_array_equal(world.embed_text(f"um now {world.step_text(k)}"),
                                      world.prototypes[k])


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="irrelevant_rate: expected a number in \\[0, 1\\)"):
        NoiseConfig(irrelevant_rate=1.0)
    with pytest.raises(ValueError, match="async_max_s: expected >= async_min_s"):
        NoiseConfig(async_min_s=5.0, async_max_s=2.0)
    with pytest.raises(ValueError, match="frame_noise: expected a finite number >= 0"):
        NoiseConfig(frame_noise=-1.0)
    with pytest.raises(ValueError, match="how2_train: expected an integer >= 1, got 0"):
        SyntheticConfig(how2_train=0)
    with pytest.raises(ValueError, match="coin_videos: expected round"):
        SyntheticConfig(coin_videos=10, coin_tasks=5)
    with pytest.raises(ValueError, match="size: expected one of"):
        SyntheticConfig.preset("huge")
    with pytest.raises(ValueError, match="noise: expected a NoiseConfig"):
        SyntheticConfig(noise={"irrelevant_rate": 0.5})
    assert SyntheticConfig.preset("default", scale=100_000).how2_train == 100_000
    assert SyntheticConfig.preset("default", scale=100_000).how2_shard_size == 4096


def test_world_prototypes_share_structure():
    world = build_world(SyntheticConfig())
    p = world.prototypes
    assert p.shape == (len(world.steps), 512) and p.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    a = np.array([s[0] for s in world.steps])
    o = np.array([s[1] for s in world.steps])
    sim = p @ p.T
    off = ~np.eye(len(p), dtype=bool)
    same_action = (a[:, None] == a[None, :]) & off
    unrelated = (a[:, None] != a[None, :]) & (o[:, None] != o[None, :])
    # shared action -> clearly similar; nothing identical; unrelated steps near orthogonal-ish
    assert sim[same_action].mean() > sim[unrelated].mean() + 0.2
    assert sim[off].max() < 0.95
    assert len({t.name for t in world.tasks}) == len(world.tasks)


# ------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a = generate_corpus(tmp_path / "a", tiny(0), progress=False)
    b = generate_corpus(tmp_path / "b", tiny(0), progress=False)
    c = generate_corpus(tmp_path / "c", tiny(1), progress=False)
    da, db, dc = (_tree_digest(r.root) for r in (a, b, c))
    assert da == db
    assert len(da) > 40
    # a different seed changes the features, the captions and the annotations
    vid = (a.youcook_features).iterdir().__next__().name
    assert vid not in {p.name for p in c.youcook_features.iterdir()}
    for name in ("how2/sentencified_htm_1200k.json", "how2/feat_shard/train_0_data.npy",
                 "coin/COIN.json", "msrvtt/MSRVTT_data.json", "ground_truth/prototypes.npy"):
        assert da[name] != dc[name], name


def test_synthetic_example_is_deterministic_and_consistent():
    ex = synthetic_example(seed=3, n_steps=5)
    again = synthetic_example(seed=3, n_steps=5)
    other = synthetic_example(seed=4, n_steps=5)
    torch.testing.assert_close(ex.features, again.features, rtol=0, atol=0)
    assert ex.captions == again.captions
    assert not torch.equal(ex.features[:10], other.features[:10])
    T, D = ex.features.shape
    K = len(ex.captions)
    assert D == 512 and ex.caption_spans.shape == (K, 2) and ex.caption_features.shape == (K, D)
    assert ex.step_spans.shape == (5, 2) and ex.step_prototypes.shape == (5, D)
    assert ex.frame_step.shape == (T,) and len(ex.step_texts) == 5
    assert bool((ex.caption_spans[:, 0] < ex.caption_spans[:, 1]).all())
    assert bool((ex.caption_spans >= 0).all()) and bool((ex.caption_spans <= T).all())
    assert bool((ex.step_spans[1:, 0] >= ex.step_spans[:-1, 1]).all())  # ordered, disjoint
    for k, (s, e) in enumerate(ex.step_spans.tolist()):
        assert set(ex.frame_step[s:e].tolist()) <= {k, -1}  # -1: cutaway seconds
    for j, k in enumerate(ex.aligned_step_per_caption.tolist()):
        if k >= 0:  # an aligned caption names its step's action and object
            assert all(w in ex.captions[j].split() for w in ex.step_texts[k].split())
            torch.testing.assert_close(ex.caption_features[j], ex.step_prototypes[k])
    with pytest.raises(ValueError, match="n_steps: expected an integer >= 1, got 0"):
        synthetic_example(n_steps=0)
    with pytest.raises(ValueError, match="noise: expected a NoiseConfig"):
        synthetic_example(noise=0.5)


# ------------------------------------------------------------------------ file formats


def test_how2_files_are_in_the_released_format(root):
    m = load_manifest(root.root)
    ids = {s: root.how2_list(s).read_text().split("\n")[:-1] for s in ("train", "val")}
    assert len(ids["train"]) == m["counts"]["how2_train_videos"] == 48
    assert len(ids["val"]) == 16 and not set(ids["train"]) & set(ids["val"])
    assert all(len(v) == 11 for v in ids["train"])
    captions = json.loads(root.how2_captions_json.read_text())
    assert set(captions) == set(ids["train"]) | set(ids["val"])
    for split in ("train", "val"):
        meta = safe_pickle_load(root.how2_feature_shards / f"{split}_meta.pkl")
        assert type(meta) is dict and sorted(meta) == list(range(len(meta)))
        assert [v for s in sorted(meta) for v in meta[s]] == ids[split]
        assert all(len(meta[s]) <= 16 for s in meta)
        for s, vids in meta.items():
            starts = np.load(root.how2_feature_shards / f"{split}_{s}_starts.npy")
            data = np.load(root.how2_feature_shards / f"{split}_{s}_data.npy")
            assert starts.dtype == np.int64 and starts.shape == (len(vids) + 1,)
            assert starts[0] == 0 and starts[-1] == len(data) and (np.diff(starts) >= 40).all()
            assert data.dtype == np.float16 and data.shape[1] == 512 and _unit_rows(data)
            base = root.how2_caption_shards / f"{CAPTION_PREFIX}{split}_{s}."
            se = np.load(f"{base}startends_data.npy")
            ids_ = np.load(f"{base}caps_ids_data.npy")
            cs = np.load(f"{base}caps_ids_starts.npy")
            np.testing.assert_array_equal(cs, np.load(f"{base}startends_starts.npy"))
            assert se.dtype == np.float32 and se.shape[1] == 2
            assert ids_.dtype == np.int32 and ids_.shape == (len(se), 32)
            assert cs.dtype == np.int64 and cs[-1] == len(se)
            assert ((ids_ == -1) | ((ids_ >= 0) & (ids_ < 30522))).all()
            for j, vid in enumerate(vids):
                cap = captions[vid]
                assert len(cap["start"]) == len(cap["end"]) == len(cap["text"]) == cs[j + 1] - cs[j]
                np.testing.assert_allclose(se[cs[j]:cs[j + 1], 0], cap["start"], atol=1e-4)
                T = starts[j + 1] - starts[j]
                assert all(0 <= a < b <= T for a, b in zip(cap["start"], cap["end"]))
                assert cap["start"] == sorted(cap["start"])


def test_youcook_files_are_in_the_released_format(root):
    db = json.loads(root.youcook_annotations.read_text())["database"]
    records = safe_pickle_load(root.youcook_val_pkl)
    assert isinstance(records, list) and all(type(r) is dict for r in records)
    val = [v for v, d in db.items() if d["subset"] == "validation"]
    assert len(val) == 16 and sum(d["subset"] == "training" for d in db.values()) == 8
    assert {r["video_id"] for r in records} == set(val)
    for r in records:
        assert set(r) == {"id", "caption", "video_id", "start", "end"}
        vid, idx = r["id"].rsplit("_", 1)
        assert vid == r["video_id"]
        ann = db[vid]["annotations"][int(idx)]
        assert ann["segment"] == [r["start"], r["end"]]
        assert r["caption"] and set(r["caption"].split()) <= set(ann["sentence"].split())
        assert "the" not in r["caption"].split()  # stop words stripped, as released
    for vid in val:
        d = db[vid]
        assert set(d) >= {"duration", "subset", "recipe_type", "annotations"}
        x = np.load(root.youcook_features / f"{vid}.npy")
        assert x.dtype == np.float16 and x.shape == (d["duration"], 512) and _unit_rows(x)
        segs = [a["segment"] for a in d["annotations"]]
        assert all(isinstance(s, int) and isinstance(e, int) for s, e in segs)
        assert all(0 <= s < e <= len(x) for s, e in segs)
        assert all(segs[i][1] <= segs[i + 1][0] for i in range(len(segs) - 1))
        assert sum(e - s for s, e in segs) < len(x)  # background between the steps
    for vid, d in db.items():
        if d["subset"] == "training":
            assert not (root.youcook_features / f"{vid}.npy").exists()


def test_msrvtt_files_are_in_the_released_format(root):
    with open(root.msrvtt_test_csv, newline="") as f:
        test = list(csv.DictReader(f))
    assert list(test[0]) == ["key", "vid_key", "video_id", "sentence"] and len(test) == 16
    assert test[0]["key"] == "ret0" and test[0]["vid_key"] == "msr7010"
    assert test[0]["video_id"] == "video7010"
    data = json.loads(root.msrvtt_data_json.read_text())
    caps: dict[str, list[str]] = {}
    for s in data["sentences"]:
        caps.setdefault(s["video_id"], []).append(s["caption"])
    assert all(len(c) == 5 for c in caps.values())
    for r in test:
        assert r["sentence"] in caps[r["video_id"]]
        x = np.load(root.msrvtt_features / f"{r['video_id']}.npy")
        assert x.dtype == np.float16 and 10 <= len(x) <= 30 and _unit_rows(x)
    for size, n in (("9k", 24), ("7k", 19)):
        with open(root.msrvtt_train_csv(size), newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["video_id"] and len(rows) == n
        assert all(r["video_id"] in caps for r in rows)
    with open(root.msrvtt_qa_csv, newline="") as f:
        qa = list(csv.DictReader(f, delimiter="\t"))
    assert list(qa[0]) == ["vid_key", "a1", "a2", "a3", "a4", "a5", "answer"] and len(qa) == 16
    gt = load_ground_truth(root.root, "msrvtt")
    for q in qa:
        vid = q["vid_key"].replace("msr", "video")
        answer = int(q["answer"])
        assert 0 <= answer < 5 and gt[vid]["qa_answer"] == answer
        assert q[f"a{answer + 1}"] in caps[vid]
        assert len({q[f"a{i}"] for i in range(1, 6)}) >= 2


def test_coin_files_are_in_the_released_format(root):
    db = json.loads(root.coin_json.read_text())["database"]
    assert len(db) == 20
    labels: dict[str, str] = {}
    for vid, d in db.items():
        assert d["subset"] in ("training", "testing")
        assert set(d) >= {"subset", "annotation", "class", "recipe_type", "duration"}
        x = np.load(root.coin_features / f"{vid}.npy")
        assert x.dtype == np.float16 and x.shape == (d["duration"], 512) and _unit_rows(x)
        for a in d["annotation"]:
            assert isinstance(a["segment"][0], float) and isinstance(a["id"], str)
            assert int(a["id"]) >= 1 and 0 <= a["segment"][0] < a["segment"][1] <= len(x)
            assert labels.setdefault(a["id"], a["label"]) == a["label"]  # one text per id
    testing = {a["id"] for d in db.values() if d["subset"] == "testing" for a in d["annotation"]}
    assert testing == set(labels)  # id2label is built from the testing subset
    assert sorted(int(i) for i in labels) == list(range(1, len(labels) + 1))
    assert load_manifest(root.root)["counts"]["coin_step_classes"] == len(labels)


def test_htm_align_files_are_in_the_released_format(root):
    anno = json.loads(root.htm_align_json.read_text())
    gt = load_ground_truth(root.root, "htm_align")
    assert len(anno) == 4
    for vid, rows in anno.items():
        x = np.load(root.htm_align_features / f"{vid}.npy")
        assert x.dtype == np.float16 and x.shape[1] == 512 and _unit_rows(x)
        g = gt[vid]
        for j, (alignable, s, e, text) in enumerate(rows):
            assert alignable in (0, 1) and isinstance(text, str) and 0 <= s < e <= len(x)
            step = g["sentences"]["step"][j]
            if alignable:  # the true segment of its step
                assert [s, e] == g["steps"][step][1:]
            else:  # the original ASR timestamps
                assert step == -1 and [s, e] == g["asr"][j]


# ------------------------------------------------------------------------ ground truth


def test_how2_ground_truth_is_consistent(root):
    cfg = SyntheticConfig.preset("smoke")
    gt = load_ground_truth(root.root, "how2")
    captions = json.loads(root.how2_captions_json.read_text())
    protos = np.load(root.ground_truth / "prototypes.npy")
    world = load_ground_truth(root.root, "world")
    assert protos.shape == (len(world["steps"]), 512)
    n = n_align = n_async = n_async_far = n_sync_exact = n_sync = 0
    own, other = [], []
    feats = ShardedFeatures(root.how2_feature_shards, "train")
    for vid, g in gt.items():
        s = g["sentences"]
        cap = captions[vid]
        T = g["duration"]
        assert len(s["step"]) == len(cap["text"])
        steps = g["steps"]
        assert all(0 <= a < b <= T for _, a, b in steps)
        assert all(steps[i][2] <= steps[i + 1][1] for i in range(len(steps) - 1))
        for j, k in enumerate(s["step"]):
            n += 1
            if k < 0:
                assert s["irrelevant"][j] and s["segment"][j] is None and s["offset"][j] is None
                continue
            n_align += 1
            assert not s["irrelevant"][j] and s["segment"][j] == steps[k][1:]
            sid = steps[k][0]
            assert all(w in cap["text"][j].split() for w in world["steps"][sid]["text"].split())
            off = s["offset"][j]
            assert abs(off) <= cfg.noise.async_max_s + 0.01
            if s["asynchronous"][j]:
                n_async += 1
                n_async_far += abs(off) >= cfg.noise.async_min_s - 0.01
            else:
                n_sync += 1
                n_sync_exact += off == 0.0
                if off == 0.0:  # synchronous speech starts inside its step
                    assert steps[k][1] <= cap["start"][j] <= steps[k][2]
        if vid in feats:  # step seconds look like their prototype, background does not
            x = np.asarray(feats[vid], np.float32)
            lab = np.full(T, -1)
            for _, a, b in steps:
                lab[a:b] = 1
            for a, b in g["cutaways"]:
                lab[a:b] = -1
            for sid, a, b in steps:
                sims = x @ protos[sid]
                inside = lab[a:b] == 1
                own.append(sims[a:b][inside].mean())
                other.append(sims[lab == -1].mean())
    assert abs(n_align / n - 0.3) < 0.04  # HTM-Align: ~30 % of sentences alignable
    assert abs(n_async / n_align - 0.5) < 0.08
    assert n_async_far / n_async > 0.9 and n_sync_exact / n_sync > 0.9
    assert np.mean(own) > np.mean(other) + 0.15


def test_eval_ground_truth_matches_the_annotations(root):
    db = json.loads(root.youcook_annotations.read_text())["database"]
    for vid, g in load_ground_truth(root.root, "youcook").items():
        assert [a["segment"] for a in db[vid]["annotations"]] == [st[1:] for st in g["steps"]]
        assert [a["sentence"].split()[:3] for a in db[vid]["annotations"]] == \
            [t.split() for t in g["step_texts"]]
    coin = json.loads(root.coin_json.read_text())["database"]
    cg = load_ground_truth(root.root, "coin")
    for vid, g in cg["videos"].items():
        assert [int(a["id"]) for a in coin[vid]["annotation"]] == g["labels"]
        assert [cg["id2label"][str(i)] for i in g["labels"]] == \
            [a["label"] for a in coin[vid]["annotation"]]
    with pytest.raises(ValueError, match="dataset: expected one of"):
        load_ground_truth(root.root, "kinetics")


# ------------------------------------------------------------------------ noise knobs


def _examples(n: int = 12, **noise) -> list:
    cfg = NoiseConfig(**noise)
    return [synthetic_example(seed=s, n_steps=6, noise=cfg) for s in range(n)]


def _irrelevant_fraction(exs) -> float:
    flags = torch.cat([e.aligned_step_per_caption for e in exs]) < 0
    return float(flags.float().mean())


def test_irrelevant_rate_knob():
    assert _irrelevant_fraction(_examples(irrelevant_rate=0.0)) == 0.0
    assert abs(_irrelevant_fraction(_examples()) - 0.7) < 0.06
    assert _irrelevant_fraction(_examples(irrelevant_rate=0.9)) > 0.85


def test_async_knob_moves_speech_away_from_the_action():
    def mean_abs_offset(exs):
        off = torch.cat([e.caption_offsets[e.aligned_step_per_caption >= 0] for e in exs])
        return float(off.abs().mean())

    sync = mean_abs_offset(_examples(async_rate=0.0))
    late = mean_abs_offset(_examples(async_rate=1.0, async_min_s=8.0, async_max_s=12.0))
    assert sync < 1.0 and late > 6.0


def test_unnarrated_and_filler_knobs():
    def narrated_steps(exs):
        return np.mean([len(set(e.aligned_step_per_caption.tolist()) - {-1}) for e in exs])

    assert narrated_steps(_examples(unnarrated_rate=0.0)) == 6
    assert narrated_steps(_examples(unnarrated_rate=0.6)) < 4

    def words(exs):
        return np.mean([len(c.split()) for e in exs for c in e.captions])

    assert words(_examples(filler_words_mean=4.0)) > words(_examples(filler_words_mean=0.0)) + 3


def test_frame_level_knobs():
    def cutaway_fraction(exs):
        inside = [e.frame_step[s:t] for e in exs for s, t in e.step_spans.tolist()]
        return float((torch.cat(inside) < 0).float().mean())

    assert cutaway_fraction(_examples(4, cutaway_rate=0.0)) == 0.0
    assert abs(cutaway_fraction(_examples(4, cutaway_rate=0.5)) - 0.5) < 0.1

    def own_cos(exs):
        vals = []
        for e in exs:
            k = e.frame_step >= 0
            vals.append((e.features[k] * e.step_prototypes[e.frame_step[k]]).sum(1).mean())
        return float(torch.stack(vals).mean())

    assert own_cos(_examples(3, frame_noise=0.5)) > own_cos(_examples(3)) + 0.3
    clean = _examples(2, frame_noise=0.0, style_weight=0.0, clutter_weight=0.0)
    assert own_cos(clean) > 0.999


def test_script_deviation_knobs():
    world = build_world(SyntheticConfig())
    task = next(k for k, t in enumerate(world.tasks) if len(t.steps) >= 8)

    def steps(n=40, **noise):
        out = []
        for i in range(n):
            plan = video._timeline(world, task, np.random.default_rng(i), NoiseConfig(**noise),
                                   60, 240)
            out.append([sid for sid, _, _ in plan.steps])
        return out

    script = list(world.tasks[task].steps)
    assert all(s == script for s in steps(step_skip_rate=0.0, step_variant_rate=0.0))
    skipped = steps(step_skip_rate=0.5, step_variant_rate=0.0)
    assert np.mean([len(s) for s in skipped]) < 0.7 * len(script)
    varied = steps(step_skip_rate=0.0, step_variant_rate=1.0)
    subst = np.mean([a != b for s in varied for a, b in zip(s, script)])
    assert subst > 0.3
    for s in varied:  # a variant keeps the action and the domain
        for a, b in zip(s, script):
            assert world.steps[a][0] == world.steps[b][0]
            assert world.step_domain[a] == world.step_domain[b]


# ------------------------------------------------------------------------ corpus management


def test_idempotent_and_regenerates_on_config_change(tmp_path):
    out = tmp_path / "corpus"
    cfg = tiny(0)
    generate_corpus(out, cfg, progress=False)
    manifest = out / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    generate_corpus(out, cfg, progress=False)
    assert manifest.stat().st_mtime_ns == stamp  # nothing rewritten
    # a smaller corpus replacing it on purpose leaves no stale shard behind
    smaller = dataclasses.replace(cfg, how2_train=3, noise=NoiseConfig(irrelevant_rate=0.0))
    root = generate_corpus(out, smaller, progress=False, overwrite=True)
    m = load_manifest(out)
    assert m["config"]["how2_train"] == 3 and m["counts"]["how2_alignable_fraction"] == 1.0
    assert sorted(p.name for p in root.how2_feature_shards.glob("train_*_data.npy")) == [
        "train_0_data.npy"]
    assert not (out / corpus._PARTIAL_NAME).exists()


def test_half_written_corpus_is_detected_and_redone(tmp_path):
    out = tmp_path / "corpus"
    generate_corpus(out, tiny(0), progress=False)
    # simulate a run killed half-way: the marker is there, the manifest is not
    (out / "manifest.json").unlink()
    (out / corpus._PARTIAL_NAME).write_text("{}")
    (out / "how2" / "how2_s3d_train.lst").write_text("garbage\n")
    assert load_manifest(out) is None
    root = generate_corpus(out, tiny(0), progress=False)
    assert load_manifest(out) is not None
    assert len(root.how2_list("train").read_text().split()) == 6


def test_refuses_to_overwrite_foreign_content(tmp_path):
    (tmp_path / "real_data.txt").write_text("precious")
    with pytest.raises(ValueError, match="out_dir: .* is not empty and holds no synthetic"):
        generate_corpus(tmp_path, tiny(0), progress=False)
    assert (tmp_path / "real_data.txt").read_text() == "precious"
    (tmp_path / "x" ).mkdir()
    (tmp_path / "x" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: not a readable manifest"):
        load_manifest(tmp_path / "x")
    with pytest.raises(ValueError, match="config: expected a SyntheticConfig"):
        generate_corpus(tmp_path / "y", {"seed": 0}, progress=False)


def test_ensure_corpus_and_cli(tmp_path, capsys):
    root = ensure_corpus(tmp_path / "c", "smoke", seed=0)
    spec = importlib.util.spec_from_file_location("synthetic_recipe",
                                                  ROOT / "data_recipes" / "synthetic.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main(["--out", str(root.root), "--size", "smoke", "--quiet"]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert cli.main(["--out", str(tmp_path / "d"), "--scale", "0", "--quiet"]) == 2
    assert "scale: expected an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "--scale" in capsys.readouterr().out


# ------------------------------------------------------------------------ cost


def test_smoke_size_is_fast(smoke):
    assert smoke[1] < 20.0  # ~2-3 s on an idle 2-core machine; generous for shared CI


@pytest.mark.slow
def test_default_size_generates_within_a_minute(tmp_path):
    load_tokenizer()
    t0 = time.perf_counter()
    generate_corpus(tmp_path, SyntheticConfig(), progress=False)
    elapsed = time.perf_counter() - t0
    counts = load_manifest(tmp_path)["counts"]
    assert counts["how2_train_videos"] == 800 and counts["youcook_val_videos"] == 120
    assert elapsed < 60.0


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, tempfile
    from nortonkit.synthetic.config import SyntheticConfig
    from nortonkit.synthetic.corpus import generate_corpus
    cfg = SyntheticConfig.preset("smoke", how2_train=int(sys.argv[1]), how2_val=2,
        how2_shard_size=32, how2_min_duration_s=200, how2_max_duration_s=240, youcook_val=5,
        youcook_train=1, msrvtt_test=5, msrvtt_train=2, msrvtt_captions=2, coin_videos=8,
        coin_tasks=2, htm_align_videos=2)
    generate_corpus(tempfile.mkdtemp(), cfg, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
""")


def _peak_rss_kib(n_videos: int) -> int:
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(n_videos)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_memory_does_not_grow_with_the_number_of_videos():
    small, large = _peak_rss_kib(100), _peak_rss_kib(400)
    # holding the 300 extra videos (200-240 s each) would take 300 x ~220 x 512 x 2 bytes
    # ~ 66 MiB more (float16; twice that as rendered float32). Streamed, the peak is flat.
    assert large - small < 16 * 1024, (small, large)


# ------------------------------------------------------------------------ readers round trip


def test_round_trip_howto100m_readers(root):
    gt = load_ground_truth(root.root, "how2")
    captions = json.loads(root.how2_captions_json.read_text())
    for split in ("train", "val"):
        ids = read_video_list(root.how2_list(split))
        feats = ShardedFeatures(root.how2_feature_shards, split)
        caps = ShardedCaptions(root.how2_caption_shards, split, feats.meta_path)
        assert list(feats) == ids
        for vid in ids[:6]:
            assert feats[vid].shape == (gt[vid]["duration"], 512)
            c = caps[vid]
            want = pretokenize(captions[vid]["text"], load_tokenizer())
            assert c["cap"] == [row[row >= 0].tolist() for row in want]
            np.testing.assert_allclose(c["start"], captions[vid]["start"], atol=1e-4)
    feats = ShardedFeatures(root.how2_feature_shards, "train")
    caps = ShardedCaptions(root.how2_caption_shards, "train", feats.meta_path)
    batch = next(iter(How2Dataset(feats, caps, videos_per_batch=4, seed=0)))
    assert batch.video.shape == (64, 16, 512) and batch.text_ids.shape[0] == 64
    assert bool(batch.video_mask.any(1).all())


def test_round_trip_youcook_readers(root):
    gt = load_ground_truth(root.root, "youcook")
    clips = load_youcook_clips(root)
    assert len(clips.keys) == load_manifest(root.root)["counts"]["youcook_val_clips"]
    assert not clips.skipped.counts
    for key, vid, cap, span in zip(clips.keys, clips.video_ids, clips.captions,
                                   clips.spans.tolist()):
        step = gt[vid]["steps"][int(key.rsplit("_", 1)[1])]
        assert span == step[1:] and cap.split()[:3] == gt[vid]["step_texts"][
            int(key.rsplit("_", 1)[1])].split()
    paras = load_youcook_paragraphs(root)
    assert paras.contiguous and sorted(paras.video_ids) == sorted(gt)
    full = load_youcook_full_videos(root)
    for item in full:
        T = gt[item.video_id]["duration"]
        assert item.windows.shape[0] == -(-T // 16)
        assert int(item.window_mask.sum()) == T
        assert len(item.captions) == len(gt[item.video_id]["steps"])


def test_round_trip_msrvtt_readers(root):
    gt = load_ground_truth(root.root, "msrvtt")
    test = load_msrvtt_test(root)
    assert test.video.shape == (16, 32, 512)
    for vid, mask in zip(test.video_ids, test.video_mask):
        assert int(mask.sum()) == gt[vid]["duration"]
    train = MSRVTTTrainDataset(root, dup=2)
    assert len(train) == 48 and train[0].video.shape == (32, 512)
    qa = load_msrvtt_qa(root)
    assert qa.video.shape == (16, 16, 512)
    assert qa.answers.tolist() == [gt[v]["qa_answer"] for v in qa.video_ids]


def test_round_trip_coin_reader(root):
    cg = load_ground_truth(root.root, "coin")
    m = load_manifest(root.root)["counts"]
    test = load_coin(root, subset="testing")
    assert len(test) == m["coin_testing_videos"]
    assert len(test.label_names) == m["coin_step_classes"] + 1  # + background "O"
    for item in test:
        g = cg["videos"][item.video_id]
        want = torch.zeros(g["duration"], dtype=torch.int64)
        for label, (_, s, e) in zip(g["labels"], g["steps"]):
            want[s:e] = label
        assert torch.equal(item.video_targets, want)
    assert len(load_coin(root, subset="training")) == 20 - m["coin_testing_videos"]


def test_round_trip_htm_align_reader(root):
    gt = load_ground_truth(root.root, "htm_align")
    data = load_htm_align(root)
    assert len(data) == 4
    for item in data:
        g = gt[item.video_id]
        assert item.features.shape == (g["duration"], 512)
        assert item.alignable.tolist() == [k >= 0 for k in g["sentences"]["step"]]
        assert len(item.window_spans) == len(item.text_ranges) > 0
