"""Readers, writers, sampler and converters of every dataset, on tiny hand-made fixtures."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import pickle
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from nortonkit.data import text as T
from nortonkit.data.coin import IGNORE_INDEX, load_coin, segment_targets
from nortonkit.data.features import (
    SkippedItemsWarning,
    SkipReport,
    load_feature,
    sliding_windows,
)
from nortonkit.data.howto100m import (
    How2Dataset,
    ShardedCaptions,
    ShardedFeatures,
    build_clip_batch,
    plan_batches,
    sample_video_clips,
    shard_feature_dir,
    write_caption_shards,
    write_feature_shards,
)
from nortonkit.data.htm_align import load_htm_align
from nortonkit.data.layout import CAPTION_PREFIX, DataRoot
from nortonkit.data.msrvtt import MSRVTTTrainDataset, load_msrvtt_qa, load_msrvtt_test
from nortonkit.data.youcook import (
    load_youcook_clips,
    load_youcook_full_videos,
    load_youcook_paragraphs,
)
from nortonkit.io import UnsafePickleError

REPO = Path(__file__).resolve().parents[1]
WORDS = ("crack the eggs into a bowl", "whisk them until smooth", "chop the onion finely",
         "now let me tell you about my channel", "heat the oil in a pan", "pour the batter",
         "flip it over", "serve with fresh herbs and a little salt on top")


def feat(n: int, rng: np.random.Generator, dim: int = 512) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


def asr(rng: np.random.Generator, duration: int) -> dict:
    """Sentencified ASR: consecutive sentences of 2-6 s covering the video."""
    start, end, text, t = [], [], [], 0.0
    while t < duration - 2:
        d = float(rng.uniform(2, 6))
        start.append(round(t, 2))
        end.append(round(min(t + d, duration), 2))
        text.append(WORDS[int(rng.integers(len(WORDS)))])
        t += d + float(rng.uniform(0, 1.5))
    return {"start": start, "end": end, "text": text}


@pytest.fixture(scope="module")
def tok():
    return T.load_tokenizer()


@pytest.fixture(scope="module")
def how2(tmp_path_factory, tok):
    """Six HowTo100M-like videos (40-100 s) in two shards of feature and caption files."""
    d = tmp_path_factory.mktemp("how2")
    rng = np.random.default_rng(0)
    vids = [f"vid{i:02d}" for i in range(6)]
    feats = {v: feat(int(rng.integers(40, 101)), rng) for v in vids}
    caps = {v: asr(rng, len(feats[v])) for v in vids}
    res = write_feature_shards(((v, feats[v]) for v in vids), d / "feat", "train", shard_size=4)
    write_caption_shards(caps, tok, res.meta, d / "caps", "train")
    f = ShardedFeatures(d / "feat", "train")
    return dict(dir=d, vids=vids, feats=feats, caps=caps, meta=res.meta, features=f,
                captions=ShardedCaptions(d / "caps", "train", f))


# ----------------------------------------------------------------------------- text


def test_tokenizer_is_bert_base_uncased(tok):
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, len(tok)) == (101, 102, 0, 30522)
    assert T.load_tokenizer() is tok  # cached
    assert tok.convert_tokens_to_ids(["[UNK]", "the"]) == [100, 1996]


def test_load_tokenizer_rejects_other_vocabularies(tmp_path):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]))
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tmp_path / "small")
    with pytest.raises(ValueError, match="small.*bert-base-uncased vocabulary"):
        T.load_tokenizer(tmp_path / "small")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        T.load_tokenizer(tmp_path / "nowhere")


def test_pretokenize_cuts_96_characters_then_32_tokens(tok):
    long_sentence = " ".join(["supercalifragilistic"] * 12)  # 251 characters, > 32 tokens
    rows = T.pretokenize([long_sentence, "whisk", ""], tok)
    assert rows.dtype == np.int32 and rows.shape == (3, 32)
    cut = tok(long_sentence[:96], add_special_tokens=False)["input_ids"]
    full = tok(long_sentence, add_special_tokens=False)["input_ids"]
    assert len(full) > len(cut)
    assert rows[0].tolist() == (cut + [-1] * 32)[:32]
    assert T.strip_padding(rows) == [cut[:32], tok("whisk", add_special_tokens=False)
                                     ["input_ids"], []]
    many = T.pretokenize([long_sentence] * 3, tok, max_chars=10_000)
    assert (many >= 0).all()  # 32 real tokens: truncated, no padding


def test_batch_tokenisation_matches_the_tokenizer_call(tok):
    texts = [" ".join(WORDS) * 4, "Ünïcödé façade — 東京 😀", "", "Whisk, THEN fold!"]
    want = tok(texts, add_special_tokens=False)["input_ids"]
    assert T.tokenize(texts, tok) == want and len(want[0]) > 128  # no 128-token truncation
    assert T.tokenize(texts) == want  # default tokenizer


def test_text_batch_layout_maps_to_official_caps():
    batch = T.build_text_batch([[5, 6, 7], [], list(range(1000, 1040))], max_tokens=29)
    ids, mask = batch
    assert ids.shape == (3, 31) and ids.dtype == torch.int64 and mask.dtype == torch.bool
    assert ids[:, 0].tolist() == [T.CLS_ID] * 3
    assert ids[0, :5].tolist() == [101, 5, 6, 7, 102] and mask[0].sum() == 5
    assert ids[1, :2].tolist() == [101, 102] and mask[1].sum() == 2
    assert ids[2, -1] == T.SEP_ID and mask[2].all()  # 29 tokens kept
    caps, cmasks = T.to_official_caps(batch)
    assert caps.shape == (3, 32)  # max_len 48 - max_video_len 16
    assert caps[:, 1].tolist() == [T.SEP_ID] * 3
    assert torch.equal(torch.cat([caps[:, :1], caps[:, 2:]], 1), ids)
    assert cmasks.sum(1).tolist() == [6, 3, 32]
    assert T.text_tokens_budget(48, 16) + 2 == ids.shape[1]
    with pytest.raises(ValueError, match="token_lists\\[0\\]"):
        T.build_text_batch([[-1]], max_tokens=3)


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("case, match", [
    ("missing", "feature file not found"),
    ("truncated", "truncated or corrupt"),
    ("wrong_dim", r"expected features of shape \(T, 512\), got \(4, 8\)"),
    ("rank1", r"expected features of shape \(T, 512\), got \(512,\)"),
    ("nan", "NaN/inf"),
    ("int", "dtype int64"),
    ("empty", "0 rows"),
])
def test_load_feature_errors_name_the_file(tmp_path, case, match):
    p = tmp_path / f"{case}.npy"
    good = np.ones((4, 512), np.float16)
    if case == "truncated":
        np.save(p, good)
        p.write_bytes(p.read_bytes()[:200])
    elif case == "wrong_dim":
        np.save(p, np.ones((4, 8), np.float16))
    elif case == "rank1":
        np.save(p, np.ones(512, np.float16))
    elif case == "nan":
        good[2, 7] = np.nan
        np.save(p, good)
    elif case == "int":
        np.save(p, np.ones((4, 512), np.int64))
    elif case == "empty":
        np.save(p, np.ones((0, 512), np.float16))
    err = FileNotFoundError if case == "missing" else ValueError
    with pytest.raises(err, match=match) as info:
        load_feature(p)
    assert str(p) in str(info.value)


def test_skip_report_warns_once():
    r = SkipReport("things")
    r.emit()  # nothing skipped: silent
    r.add("a", "gone")
    with pytest.warns(SkippedItemsWarning, match="things: skipped 1 item"):
        r.emit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r.emit()


@pytest.mark.parametrize("n, size, stride", [(1, 16, 16), (16, 16, 16), (17, 16, 16),
                                              (100, 32, 8), (33, 32, 16), (40, 32, 16)])
def test_sliding_windows_cover_the_video(n, size, stride):
    w = sliding_windows(n, size, stride)
    assert w[0, 0] == 0 and w[-1, 1] == n
    assert (w[:, 1] - w[:, 0] <= size).all() and (w[:, 1] - w[:, 0] >= 1).all()
    assert (np.diff(w[:, 0]) == stride).all()
    covered = np.zeros(n, bool)
    for s, e in w:
        covered[s:e] = True
    assert covered.all()
    assert (w[:-1, 1] - w[:-1, 0] == size).all()  # only the last one is partial


# ----------------------------------------------------------------------------- how2 shards


def test_feature_shards_round_trip(how2):
    d, f = how2["dir"] / "feat", how2["features"]
    assert how2["meta"] == {0: how2["vids"][:4], 1: how2["vids"][4:]}
    with open(d / "train_meta.pkl", "rb") as fh:
        assert pickle.load(fh) == how2["meta"]  # a plain dict pickle
    starts = np.load(d / "train_0_starts.npy")
    data = np.load(d / "train_0_data.npy")
    assert starts.dtype == np.int64 and starts[0] == 0 and len(starts) == 5
    assert data.dtype == np.float16 and data.shape == (starts[-1], 512)
    assert np.array_equal(np.load(d / "train_0_data.npy", mmap_mode="r"), data)
    for v in how2["vids"]:
        assert np.array_equal(f[v], how2["feats"][v]) and f.length(v) == len(how2["feats"][v])
    assert f.ids == how2["vids"] and len(f) == 6 and "nope" not in f
    with pytest.raises(KeyError, match="nope"):
        f["nope"]
    assert len(pickle.dumps(f)) < 10_000  # memory maps are not pickled into workers


def test_feature_writer_streams_one_video_at_a_time(tmp_path):
    rng = np.random.default_rng(1)
    refs: list[weakref.ref] = []
    alive_when_yielding = []

    def items():
        for i in range(12):
            alive_when_yielding.append(sum(r() is not None for r in refs))
            a = feat(30, rng)
            refs.append(weakref.ref(a))
            yield f"v{i}", a
            del a

    res = write_feature_shards(items(), tmp_path, "train", shard_size=5)
    assert res.n_videos == 12 and res.n_shards == 3
    assert max(alive_when_yielding) <= 2  # earlier videos are released as the writer goes


def test_feature_writer_removes_stale_shards_of_a_larger_run(tmp_path):
    rng = np.random.default_rng(1)
    write_feature_shards([(f"v{i}", feat(3, rng)) for i in range(7)], tmp_path, "val",
                         shard_size=2)
    assert len(list(tmp_path.glob("val_*_data.npy"))) == 4
    write_feature_shards([("w", feat(3, rng))], tmp_path, "val", shard_size=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val_0_data.npy", "val_0_starts.npy",
                                                          "val_meta.pkl"]
    assert ShardedFeatures(tmp_path, "val").ids == ["w"]


@pytest.mark.parametrize("items, match", [
    ([("a", np.ones((3, 512))), ("a", np.ones((3, 512)))], "duplicate video id 'a'"),
    ([("a", np.ones((3, 64)))], r"items\[0\] \(a\).*\(T >= 1, 512\)"),
    ([("a", np.full((3, 512), np.nan))], "NaN"),
    ([("a", np.full((3, 512), 1e6))], "float16 range"),
    ([("bad/id", np.ones((3, 512)))], "video id"),
    ([], "no videos"),
])
def test_feature_writer_rejects_bad_items(tmp_path, items, match):
    with pytest.raises(ValueError, match=match):
        write_feature_shards(iter(items), tmp_path, "train")
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "train_meta.pkl").exists()


def test_shard_feature_dir_skips_missing_and_unreadable(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "src"
    src.mkdir()
    for v in ("a", "b", "c"):
        np.save(src / f"{v}.npy", feat(20, rng))
    (src / "c.npy").write_bytes((src / "c.npy").read_bytes()[:100])
    with pytest.warns(SkippedItemsWarning) as rec:
        res = shard_feature_dir(src, ["a", "x", "b", "c"], tmp_path / "out", "val")
    assert len(rec) == 1 and "1 no feature file" in str(rec[0].message)
    assert res.meta == {0: ["a", "b"]} and len(res.skipped) == 2
    with pytest.raises(ValueError, match="no readable feature files"):
        shard_feature_dir(src, ["x", "c"], tmp_path / "out2", "val")


def test_sharded_features_detects_corrupt_shards(tmp_path):
    rng = np.random.default_rng(3)
    write_feature_shards([(v, feat(10, rng)) for v in "abc"], tmp_path, "val")
    starts = tmp_path / "val_0_starts.npy"
    np.save(starts, np.array([0, 10, 5, 30], np.int64))
    with pytest.raises(ValueError, match="val_0_starts.npy: offsets must start at 0"):
        ShardedFeatures(tmp_path, "val")
    np.save(starts, np.array([0, 10, 20, 31], np.int64))
    with pytest.raises(ValueError, match=r"val_0_data.npy: expected shape \(31, 512\)"):
        ShardedFeatures(tmp_path, "val")
    (tmp_path / "val_0_data.npy").unlink()
    with pytest.raises(FileNotFoundError, match="val_0_data.npy"):
        ShardedFeatures(tmp_path, "val")


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_meta_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "train_meta.pkl", "wb") as fh:
        pickle.dump({0: ["a"], "x": _Payload(marker)}, fh)
    with pytest.raises(UnsafePickleError, match="train_meta.pkl.*refusing.*system"):
        ShardedFeatures(tmp_path, "train")
    assert not marker.exists()
    with open(tmp_path / "train_meta.pkl", "wb") as fh:
        pickle.dump([["a"]], fh)
    with pytest.raises(ValueError, match=r"train_meta.pkl: expected a dict \{shard_idx"):
        ShardedFeatures(tmp_path, "train")


def test_caption_shards_round_trip(how2, tok):
    c = how2["captions"]
    prefix = how2["dir"] / "caps" / f"{CAPTION_PREFIX}train_0."
    se = np.load(f"{prefix}startends_data.npy")
    ids = np.load(f"{prefix}caps_ids_data.npy")
    assert se.dtype == np.float32 and se.shape[1] == 2
    assert ids.dtype == np.int32 and ids.shape == (len(se), 32) and ids.min() == -1
    assert np.load(f"{prefix}caps_ids_starts.npy").dtype == np.int64
    for v in how2["vids"]:
        want = how2["caps"][v]
        got = c[v]
        np.testing.assert_array_equal(got["start"], np.float32(want["start"]))
        np.testing.assert_array_equal(got["end"], np.float32(want["end"]))
        assert got["cap"] == [tok(t[:96], add_special_tokens=False)["input_ids"][:32]
                              for t in want["text"]]


def test_caption_writer_counts_missing_videos_and_names_bad_fields(tmp_path, tok):
    caps = {"a": json.dumps({"start": [0.0], "end": [2.0], "text": ["whisk"]})}  # JSON string
    with pytest.warns(SkippedItemsWarning, match="1 no captions"):
        res = write_caption_shards(caps, tok, {0: ["a", "b"]}, tmp_path, "val", source="x.json")
    assert res.n_rows == 1
    c = ShardedCaptions(tmp_path, "val", {0: ["a", "b"]})
    assert c["b"]["cap"] == [] and len(c["a"]["cap"]) == 1
    bad = {"a": {"start": [0.0, 1.0], "end": [2.0], "text": ["x", "y"]}}
    with pytest.raises(ValueError, match=r"x.json\['a'\]: expected lists start, end, text"):
        write_caption_shards(bad, tok, {0: ["a"]}, tmp_path, "val", source="x.json")
    bad = {"a": {"start": [float("nan")], "end": [2.0], "text": ["x"]}}
    with pytest.raises(ValueError, match=r"\['a'\]\['start'\]: expected finite times"):
        write_caption_shards(bad, tok, {0: ["a"]}, tmp_path, "val")


# ----------------------------------------------------------------------------- sampler


def _sample_many(how2, seed: int, **kw):
    rng = np.random.default_rng(seed)
    return {v: sample_video_clips(how2["features"][v], how2["captions"][v], rng, **kw)
            for v in how2["vids"]}


def test_sampler_statistics(how2):
    caps = how2["captions"]
    for _ in range(5):
        for v, s in _sample_many(how2, int(np.random.default_rng().integers(1 << 30))).items():
            n_frames, c = len(how2["features"][v]), caps[v]
            lens = np.array([len(x) for x in c["cap"]])
            assert len(s.tokens) == 16 and s.video_spans.shape == (16, 2)
            assert ((s.text_budget >= 8) & (s.text_budget <= 32)).all()
            assert all(len(t) <= 29 for t in s.tokens)
            assert [len(t) for t in s.tokens] == np.minimum(s.n_tokens, 29).tolist()
            for (a, b), n_tok, budget in zip(s.text_spans, s.n_tokens, s.text_budget):
                assert n_tok == lens[a:b].sum()
                span = c["end"][b - 1] - c["start"][a]
                exhausted = (a == 0 and b == len(lens)) or span >= 256
                assert n_tok >= budget or exhausted  # merged up to the threshold ...
                assert n_tok - max(lens[a], lens[b - 1]) < budget  # ... overshooting by <= 1
            length = s.video_spans[:, 1] - s.video_spans[:, 0]
            assert ((length >= 3) & (length <= 16)).all()
            assert (s.video_spans[:, 0] >= 0).all() and (s.video_spans[:, 1] <= n_frames).all()
            hi = np.minimum(np.ceil(s.text_times[:, 1]), n_frames - 1)
            lo = np.minimum(np.floor(s.text_times[:, 0]), n_frames - 1)
            assert (s.video_spans[:, 0] <= hi).all() and (s.video_spans[:, 1] >= lo).all()
            keys = list(zip(s.text_spans[:, 0], s.video_spans[:, 0], s.text_spans[:, 1],
                            s.video_spans[:, 1]))
            assert keys == sorted(keys)


def test_sampler_is_deterministic_and_seed_dependent(how2):
    a, b, c = _sample_many(how2, 7), _sample_many(how2, 7), _sample_many(how2, 8)
    for v in how2["vids"]:
        assert np.array_equal(a[v].video_spans, b[v].video_spans) and a[v].tokens == b[v].tokens
    assert any(not np.array_equal(a[v].video_spans, c[v].video_spans) for v in how2["vids"])


def test_sampler_replacement_option():
    long_caps = {"start": np.arange(20) * 5.0, "end": np.arange(20) * 5.0 + 4,
                 "cap": [list(range(1000, 1040))] * 20}  # 40 tokens: no merging
    dup_with, dup_without = 0, 0
    for seed in range(10):
        s = sample_video_clips(100, long_caps, np.random.default_rng(seed))
        assert ((s.text_spans[:, 1] - s.text_spans[:, 0]) == 1).all()
        dup_with += len(s.text_spans) - len(np.unique(s.text_spans[:, 0]))
        s = sample_video_clips(100, long_caps, np.random.default_rng(seed), replacement=False)
        dup_without += len(s.text_spans) - len(np.unique(s.text_spans[:, 0]))
    assert dup_without == 0 and dup_with > 0
    few = {"start": [0.0, 10.0], "end": [5.0, 15.0], "cap": [[1] * 40, [2] * 40]}
    s = sample_video_clips(30, few, np.random.default_rng(0), clips_per_video=5, replacement=False)
    assert sorted(np.bincount(s.text_spans[:, 0]).tolist()) == [2, 3]  # every caption used


def test_sampler_span_cap_and_short_videos():
    caps = {"start": [0.0, 300.0, 600.0], "end": [299.0, 599.0, 900.0], "cap": [[7], [8], [9]]}
    s = sample_video_clips(1000, caps, np.random.default_rng(0))
    assert (s.n_tokens == 1).all()  # a single caption already spans >= 256 s
    s = sample_video_clips(2, caps, np.random.default_rng(0))  # captions beyond the video
    assert (s.video_spans[:, 0] == 0).all() and (s.video_spans[:, 1] == 2).all()
    with pytest.raises(ValueError, match="no captions"):
        sample_video_clips(10, {"start": [], "end": [], "cap": []}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="min_clip_len: expected <= max_clip_len"):
        sample_video_clips(10, caps, np.random.default_rng(0), min_clip_len=9, max_clip_len=4)


def test_clip_batch_tensors(how2):
    samples = [(v, how2["features"][v], s) for v, s in _sample_many(how2, 3).items()][:2]
    b = build_clip_batch(samples)
    assert b.video.shape == (32, 16, 512) and b.video.dtype == torch.float32
    assert b.text_ids.shape == (32, 31) and b.text_ids.dtype == torch.int64
    assert b.video_index.tolist() == [0] * 16 + [1] * 16 and b.video_ids == [v for v, *_ in samples]
    for n in range(32):
        v, feats, s = samples[n // 16]
        v0, v1 = b.video_span[n].tolist()
        k = min(v1 - v0, 16)
        assert b.video_mask[n].sum() == k
        assert torch.equal(b.video[n, :k], torch.from_numpy(feats[v0:v0 + k].astype(np.float32)))
        assert (b.video[n, k:] == 0).all()
        toks = s.tokens[n % 16]
        assert b.text_ids[n, : len(toks) + 2].tolist() == [101, *toks, 102]
        assert b.text_mask[n].sum() == len(toks) + 2


def test_how2_dataset_shards_ranks_without_duplicates(how2):
    kw = dict(videos_per_batch=1, shuffle=True, seed=5)
    full = How2Dataset(how2["features"], how2["captions"], **kw)
    ranks = [How2Dataset(how2["features"], how2["captions"], rank=r, world_size=4, **kw)
             for r in range(4)]
    seen = [v for ds in ranks for b in ds for v in b.video_ids]
    assert len(seen) == len(set(seen)) == 4  # 6 batches -> 4 (equal counts per rank)
    assert [len(ds) for ds in ranks] == [1, 1, 1, 1]
    by_id = {b.video_ids[0]: b for b in full}
    for ds in ranks:  # the same batch, whatever the number of ranks
        for b in ds:
            assert torch.equal(b.video, by_id[b.video_ids[0]].video)
            assert torch.equal(b.text_ids, by_id[b.video_ids[0]].text_ids)
    again = How2Dataset(how2["features"], how2["captions"], **kw)
    assert [b.video_ids for b in again] == [b.video_ids for b in full]
    again.set_epoch(1)
    assert [b.video_ids for b in again] != [b.video_ids for b in full]


def test_how2_dataset_length_budget(how2):
    ds = How2Dataset(how2["features"], how2["captions"], videos_per_batch=3, shuffle=False,
                     clips_per_video=8, max_len=96, max_video_len=32, max_clip_len=40)
    b = next(iter(ds))
    assert b.video.shape == (24, 32, 512) and b.text_ids.shape == (24, 63)
    assert b.video_mask.sum(1).max() > 16 and (b.text_mask.sum(1) <= 63).all()


def test_how2_dataset_workers_split_batches(how2):
    ds = How2Dataset(how2["features"], how2["captions"], videos_per_batch=2, shuffle=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = sorted(tuple(b.video_ids) for b in loader)
    assert got == [tuple(how2["vids"][i:i + 2]) for i in (0, 2, 4)]


def test_how2_dataset_explicit_batches_and_skips(how2):
    batches = [["vid05", "vid00"], ["vid03", "ghost"]]
    ds = How2Dataset(how2["features"], how2["captions"], batches=batches, videos_per_batch=2)
    with pytest.warns(SkippedItemsWarning, match="1 no features"):
        out = list(ds)
    assert [b.video_ids for b in out] == [["vid05", "vid00"], ["vid03"]]
    assert out[0].video.shape == (32, 16, 512)


def test_plan_batches_rounding():
    ids = [str(i) for i in range(100)]
    assert len(plan_batches(ids, 8, batch_multiple=4)) == 12
    assert len(plan_batches(ids, 8, drop_last=False)) == 13
    shuffled = plan_batches(ids, 10, shuffle=True, seed=1)
    assert sorted(v for b in shuffled for v in b) == sorted(ids) and shuffled[0] != ids[:10]


# ----------------------------------------------------------------------------- youcook


@pytest.fixture(scope="module")
def youcook(tmp_path_factory):
    root = DataRoot(tmp_path_factory.mktemp("yc"))
    rng = np.random.default_rng(4)
    db, recs, feats = {}, [], {}
    for v, n in (("yA", 70), ("yB", 45), ("yC_x", 90), ("yD", 60)):
        segs, t = [], 3
        while t + 8 < n:
            e = t + int(rng.integers(4, 12))
            segs.append({"segment": [t, min(e, n)], "sentence": f"step {len(segs)} of {v}",
                         "id": len(segs)})
            t = e + int(rng.integers(1, 5))
        db[v] = {"annotations": segs, "subset": "validation", "duration": n}
        recs += [{"id": f"{v}_{i}", "caption": f"cap {i}", "video_id": v} for i in range(len(segs))]
        feats[v] = feat(n, rng)
    root.youcook_features.mkdir(parents=True)
    for v in ("yA", "yB", "yC_x"):  # yD has no features
        np.save(root.youcook_features / f"{v}.npy", feats[v])
    root.youcook_annotations.write_text(json.dumps({"database": db}))
    root.youcook_val_pkl.write_bytes(pickle.dumps(recs))
    return dict(root=root, db=db, recs=recs, feats=feats)


def test_youcook_clips(youcook):
    with pytest.warns(SkippedItemsWarning, match="no feature file"):
        c = load_youcook_clips(youcook["root"])
    kept = [r for r in youcook["recs"] if r["video_id"] != "yD"]
    assert c.keys == [r["id"] for r in kept] and len(c.skipped) == len(youcook["recs"]) - len(kept)
    assert c.video.shape == (len(kept), 32, 512)
    for i, r in enumerate(kept):
        vid, idx = r["id"].rsplit("_", 1)
        ann = youcook["db"][vid]["annotations"][int(idx)]
        assert c.video_ids[i] == vid and c.captions[i] == ann["sentence"]
        s, e = ann["segment"]
        assert c.spans[i].tolist() == [s, e]
        want = youcook["feats"][vid][s:e][:32].astype(np.float32)
        assert torch.equal(c.video[i, : len(want)], torch.from_numpy(want))
        assert c.video_mask[i].sum() == len(want)
    with pytest.warns(SkippedItemsWarning):
        c2 = load_youcook_clips(youcook["root"], use_annotation_text=False)
    assert c2.captions[0] == "cap 0"


def test_youcook_paragraphs_are_explicit_blocks(youcook):
    with pytest.warns(SkippedItemsWarning):
        p = load_youcook_paragraphs(youcook["root"])
    assert p.video_ids == ["yA", "yB", "yC_x"] and p.contiguous
    for vid, block in zip(p.video_ids, p.blocks):
        assert {p.clips.video_ids[i] for i in block.tolist()} == {vid}
        starts = p.clips.spans[block, 0]
        assert (starts[1:] > starts[:-1]).all()  # chronological


def test_youcook_full_videos_keep_background(youcook):
    with pytest.warns(SkippedItemsWarning):
        full = load_youcook_full_videos(youcook["root"])
    assert full.video_ids == ["yA", "yB", "yC_x"]
    for v in full:
        n = len(youcook["feats"][v.video_id])
        assert v.windows.shape == (math.ceil(n / 16), 32, 512)
        assert v.window_mask.sum() == n and v.window_mask[:, 16:].sum() == 0
        assert v.window_spans[:, 0].tolist() == list(range(0, n, 16))
        assert v.captions == [a["sentence"] for a in youcook["db"][v.video_id]["annotations"]]
    assert full.text_lengths == [len(youcook["db"][v]["annotations"]) for v in full.video_ids]


def test_youcook_segment_beyond_features_is_an_error(youcook, tmp_path):
    root = DataRoot(tmp_path)
    root.youcook_features.mkdir(parents=True)
    np.save(root.youcook_features / "yA.npy", youcook["feats"]["yA"][:5])  # truncated video
    root.youcook_annotations.write_bytes(youcook["root"].youcook_annotations.read_bytes())
    root.youcook_val_pkl.write_bytes(pickle.dumps([{"id": "yA_3"}]))
    with pytest.raises(ValueError, match="yA.npy: segment .* starts at or after the end"):
        load_youcook_clips(root)
    root.youcook_val_pkl.write_bytes(pickle.dumps([{"id": "yA_99"}]))
    with pytest.raises(ValueError, match=r"\['yA'\]\['annotations'\]\[99\] missing"):
        load_youcook_clips(root)
    root.youcook_val_pkl.write_bytes(pickle.dumps([{"id": "yA-3"}]))
    with pytest.raises(ValueError, match=r"youcook_val.pkl: record 0\['id'\]"):
        load_youcook_clips(root)


# ----------------------------------------------------------------------------- msr-vtt


@pytest.fixture(scope="module")
def msrvtt(tmp_path_factory):
    root = DataRoot(tmp_path_factory.mktemp("vtt"))
    rng = np.random.default_rng(5)
    root.msrvtt_features.mkdir(parents=True)
    lens = {f"video{i}": int(rng.integers(10, 45)) for i in range(8)}
    for v, n in lens.items():
        np.save(root.msrvtt_features / f"{v}.npy", feat(n, rng))
    rows = [f"ret{i},msr{i},video{i},\"a person, {WORDS[i]}\"" for i in range(5)]
    root.msrvtt_test_csv.write_text("key,vid_key,video_id,sentence\n" + "\n".join(rows) + "\n")
    root.msrvtt_train_csv("9k").write_text("video_id\nvideo5\nvideo6\nvideo7\n")
    root.msrvtt_train_csv("7k").write_text("video_id\nvideo6\n")
    sents = [{"video_id": f"video{i}", "caption": f"caption {j} of {i}", "sen_id": j}
             for i in range(5, 8) for j in range(4)]
    root.msrvtt_data_json.write_text(json.dumps({"videos": [], "sentences": sents}))
    qa = [f"msr{i}\t" + "\t".join(f"answer {k} for {i}" for k in range(5)) + f"\t{i % 5}"
          for i in range(4)]
    root.msrvtt_qa_csv.write_text("vid_key\ta1\ta2\ta3\ta4\ta5\tanswer\n" + "\n".join(qa) + "\n")
    return dict(root=root, lens=lens)


def test_msrvtt_test_set(msrvtt):
    t = load_msrvtt_test(msrvtt["root"])
    assert t.video_ids == [f"video{i}" for i in range(5)] and t.keys[0] == "ret0"
    assert t.captions[1] == f"a person, {WORDS[1]}"
    assert t.video.shape == (5, 32, 512)
    assert t.video_mask.sum(1).tolist() == [min(msrvtt["lens"][v], 32) for v in t.video_ids]
    assert t.spans[:, 1].tolist() == t.video_mask.sum(1).tolist()
    assert load_msrvtt_test(msrvtt["root"], max_video_len=8).video.shape == (5, 8, 512)


def test_msrvtt_missing_features(msrvtt, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("video_id,sentence\nvideo1,x\nvideo99,y\n")
    with pytest.raises(FileNotFoundError, match="video99.npy"):
        load_msrvtt_test(msrvtt["root"], csv=csv)
    with pytest.warns(SkippedItemsWarning, match="video99"):
        t = load_msrvtt_test(msrvtt["root"], csv=csv, on_missing="skip")
    assert t.video_ids == ["video1"]


def test_msrvtt_train_random_captions(msrvtt):
    ds = MSRVTTTrainDataset(msrvtt["root"], dup=20, seed=3)
    assert len(ds) == 60 and ds.video_ids == ["video5", "video6", "video7"]
    items = [ds[i] for i in range(len(ds))]
    assert all(it.caption.endswith(it.video_id[5:]) for it in items)
    assert [it.caption for it in items] == [ds[i].caption for i in range(len(ds))]
    assert len({it.caption for it in items if it.video_id == "video5"}) > 1
    ds.set_epoch(1)
    assert [ds[i].caption for i in range(len(ds))] != [it.caption for it in items]
    assert MSRVTTTrainDataset(msrvtt["root"], size="7k", dup=1).video_ids == ["video6"]
    batch = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=__import__(
        "nortonkit.data.msrvtt", fromlist=["x"]).collate_msrvtt).__iter__().__next__()
    assert batch.video.shape == (4, 32, 512) and len(batch.captions) == 4


def test_msrvtt_qa(msrvtt, tmp_path):
    q = load_msrvtt_qa(msrvtt["root"])
    assert q.video_ids == [f"video{i}" for i in range(4)] and q.video.shape == (4, 16, 512)
    assert q.answers.tolist() == [0, 1, 2, 3] and q.candidates[2][4] == "answer 4 for 2"
    bad = tmp_path / "qa.csv"
    bad.write_text("vid_key\ta1\ta2\tanswer\nmsr1\tx\ty\t2\n")
    with pytest.raises(ValueError, match=r"qa.csv: line 2: 'answer' expected .* \[0, 2\)"):
        load_msrvtt_qa(msrvtt["root"], csv=bad)
    bad.write_text("vid_key,a1,a2,answer\nmsr1,x,y,1\n")  # commas, not tabs
    with pytest.raises(ValueError, match="qa.csv: expected columns"):
        load_msrvtt_qa(msrvtt["root"], csv=bad)


# ----------------------------------------------------------------------------- coin


def _coin_db(n_test_labels: int = 6) -> dict:
    seg = lambda s, e, i: {"segment": [s, e], "id": str(i), "label": f"step {i}"}  # noqa: E731
    return {"database": {
        "c1": {"subset": "testing", "annotation": [seg(2.4, 10.2, 1), seg(9.0, 20.0, 3),
                                                   seg(50.5, 60.0, n_test_labels)]},
        "c2": {"subset": "testing", "annotation": [seg(0.0, 5.0, 2)]},
        "c3": {"subset": "training", "annotation": [seg(1.0, 4.0, 2), seg(30.0, 39.5, 1)]},
        "c4": {"subset": "testing", "annotation": [seg(0, 3, 1)]},  # no features
    }}


@pytest.fixture(scope="module")
def coin(tmp_path_factory):
    root = DataRoot(tmp_path_factory.mktemp("coin"))
    rng = np.random.default_rng(6)
    root.coin_features.mkdir(parents=True)
    for v, n in (("c1", 75), ("c2", 20), ("c3", 41)):
        np.save(root.coin_features / f"{v}.npy", feat(n, rng))
    root.coin_json.write_text(json.dumps(_coin_db()))
    return root


def test_coin_windows_and_targets(coin):
    with pytest.warns(SkippedItemsWarning, match="c4"):
        test = load_coin(coin)
    assert test.video_ids == ["c1", "c2"] and test.n_classes == 7
    assert test.label_names == ["O", "step 1", "step 2", "step 3", "none", "none", "step 6"]
    v = test[0]
    assert v.window_starts.tolist() == [0, 16, 32, 48]  # 75 s, 32 / 16
    assert v.windows.shape == (4, 32, 512) and v.window_mask.sum(1).tolist() == [32, 32, 32, 27]
    want = np.zeros(75, np.int64)
    want[2:11], want[9:20], want[50:60] = 1, 3, 6  # later segments overwrite
    assert v.video_targets.tolist() == want.tolist()
    for w, s in enumerate(v.window_starts.tolist()):
        n = int(v.window_mask[w].sum())
        assert v.targets[w, :n].tolist() == want[s:s + n].tolist()
        assert (v.targets[w, n:] == IGNORE_INDEX).all()
    train = load_coin(coin, subset="train")
    assert train.video_ids == ["c3"] and train.stride == 8
    assert train[0].window_starts.tolist() == [0, 8, 16]


def test_coin_label_set_from_testing_subset(tmp_path):
    root = DataRoot(tmp_path)
    root.coin_features.mkdir(parents=True)
    np.save(root.coin_features / "big.npy", feat(5, np.random.default_rng(0)))
    segs = [{"segment": [i, i + 1], "id": str(i + 1), "label": f"s{i}"} for i in range(778)]
    db = {"database": {"big": {"subset": "testing", "annotation": segs}}}
    root.coin_json.write_text(json.dumps(db))
    assert load_coin(root).n_classes == 779  # the released COIN: 778 steps + background
    db = _coin_db(n_test_labels=3)
    db["database"]["c3"]["annotation"][0]["id"] = "9"
    root.coin_json.write_text(json.dumps(db))
    with pytest.raises(ValueError, match=r"COIN.json: database\['c3'\].*step id 9 is outside"):
        load_coin(root, subset="training")


def test_segment_targets_matches_a_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = np.sort(rng.uniform(0, 40, 4))
        e = s + rng.uniform(0, 10, 4)
        lab = rng.integers(1, 9, 4)
        off = int(rng.integers(0, 30))
        got = segment_targets(16, s, e, lab, offset=off)
        for t in range(16):
            sec = off + t
            hits = [lab[k] for k in range(4) if math.floor(s[k]) <= sec < math.ceil(e[k])]
            assert got[t] == (hits[-1] if hits else 0)


# ----------------------------------------------------------------------------- htm-align


def test_htm_align_windows(tmp_path):
    root = DataRoot(tmp_path)
    root.htm_align_features.mkdir(parents=True)
    rng = np.random.default_rng(7)
    data, lens = {}, {"zeta": 130, "alpha": 95}
    for v, n in lens.items():
        np.save(root.htm_align_features / f"{v}.npy", feat(n, rng))
        a = asr(rng, n)
        data[v] = [[int(rng.random() < 0.4), s, e, t] for s, e, t in zip(a["start"], a["end"],
                                                                        a["text"])]
    root.htm_align_json.write_text(json.dumps(data))
    ds = load_htm_align(root)
    assert ds.video_ids == ["alpha", "zeta"]
    assert ds.n_alignable == sum(r[0] for rows in data.values() for r in rows)
    for v in ds:
        rows, n = data[v.video_id], lens[v.video_id]
        assert v.features.shape == (n, 512) and v.features.dtype == torch.float32
        assert v.alignable.tolist() == [bool(r[0]) for r in rows]
        grid = list(range(0, n - 16, 8))
        mids = np.array([(r[1] + r[2]) / 2 for r in rows])
        expect = []
        for k, s in enumerate(grid):  # the protocol, written out
            act = [i for i, r in enumerate(rows) if not r[0] and s - 32 <= mids[i] <= s + 64]
            if not act:
                continue
            lo, hi = min(act), max(act)
            lo = 0 if k <= 3 else lo
            hi = len(rows) - 1 if k > 3 and k >= len(grid) - 4 else hi
            expect.append((s, min(s + 32, n), lo, hi + 1))
        got = [(*a, *b) for a, b in zip(v.window_spans.tolist(), v.text_ranges.tolist())]
        assert got == expect and len(got) > 0
    (root.htm_align_features / "zeta.npy").unlink()
    with pytest.raises(FileNotFoundError, match="zeta.npy"):
        load_htm_align(root)


# ----------------------------------------------------------------------------- converters


def _load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "data_recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["convert_howto100m", "convert_youcook2", "convert_msrvtt",
                                  "convert_coin", "convert_htm_align"])
def test_converter_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        _load_recipe(name).main(["--help"])
    assert info.value.code == 0 and "usage" in capsys.readouterr().out


def test_convert_howto100m_round_trip(tmp_path, capsys):
    rng = np.random.default_rng(8)
    raw = tmp_path / "raw"
    (raw / "feat").mkdir(parents=True)
    vids = [f"h{i}" for i in range(5)]
    feats = {v: feat(int(rng.integers(40, 80)), rng) for v in vids}
    for v in vids[:4]:  # h4 has no features
        np.save(raw / "feat" / f"{v}.npy", feats[v])
    (raw / "val.lst").write_text("\n".join(vids) + "\n")
    (raw / "sent.json").write_text(json.dumps({v: asr(rng, len(feats[v])) for v in vids}))
    conv = _load_recipe("convert_howto100m")
    root = DataRoot(tmp_path / "data")
    args = ["features", "--root", str(root.root), "--feature-dir", str(raw / "feat"),
            "--list", str(raw / "val.lst"), "--split", "val", "--shard-size", "3", "--quiet"]
    with pytest.warns(SkippedItemsWarning):
        assert conv.main(args) == 0
    cap_args = ["captions", "--root", str(root.root), "--json", str(raw / "sent.json"),
                "--split", "val", "--quiet"]
    assert conv.main(cap_args) == 0
    f = ShardedFeatures(root.how2_feature_shards, "val")
    c = ShardedCaptions(root.how2_caption_shards, "val", f)
    assert f.ids == vids[:4] and root.how2_list("val").read_text().split() == vids
    assert all(np.array_equal(f[v], feats[v]) for v in f.ids) and len(c["h2"]["cap"]) > 3
    mtimes = {p: p.stat().st_mtime_ns for p in root.root.rglob("*.npy")}
    capsys.readouterr()
    assert conv.main(args) == 0 and conv.main(cap_args) == 0  # idempotent: nothing rewritten
    assert capsys.readouterr().out.count("already") == 2
    assert {p: p.stat().st_mtime_ns for p in root.root.rglob("*.npy")} == mtimes


def test_convert_eval_sets_round_trip(youcook, msrvtt, coin, tmp_path):
    root = DataRoot(tmp_path / "data")
    yc, vt = youcook["root"], msrvtt["root"]
    runs = [
        ("convert_youcook2", ["--annotations", str(yc.youcook_annotations), "--val-pkl",
                              str(yc.youcook_val_pkl), "--features", str(yc.youcook_features)]),
        ("convert_msrvtt", ["--features", str(vt.msrvtt_features), "--test-csv",
                            str(vt.msrvtt_test_csv), "--train-9k", str(vt.msrvtt_train_csv("9k")),
                            "--data-json", str(vt.msrvtt_data_json), "--qa-csv",
                            str(vt.msrvtt_qa_csv)]),
        ("convert_coin", ["--json", str(coin.coin_json), "--features", str(coin.coin_features),
                          "--mode", "symlink"]),
    ]
    for name, args in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedItemsWarning)
            assert _load_recipe(name).main(["--root", str(root.root), "--quiet", *args]) == 0
    mtimes = {p: p.lstat().st_mtime_ns for p in root.root.rglob("*") if p.is_file()}
    for name, args in runs:  # second run: everything already in place
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedItemsWarning)
            assert _load_recipe(name).main(["--root", str(root.root), "--quiet", *args]) == 0
    assert {p: p.lstat().st_mtime_ns for p in root.root.rglob("*") if p.is_file()} == mtimes
    assert (root.coin_features / "c1.npy").is_symlink()
    with pytest.warns(SkippedItemsWarning):
        assert len(load_youcook_clips(root).keys) == len(load_youcook_clips(yc).keys)
    assert load_msrvtt_qa(root).answers.tolist() == [0, 1, 2, 3]
    # a corrupt feature file stops the conversion with its name
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "video1.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="video1.npy"):
        _load_recipe("convert_msrvtt").main(["--root", str(tmp_path / "d2"), "--quiet",
                                             "--features", str(bad), "--test-csv",
                                             str(vt.msrvtt_test_csv)])


def test_convert_htm_align_round_trip(tmp_path):
    rng = np.random.default_rng(9)
    raw = tmp_path / "raw"
    raw.mkdir()
    data = {}
    for v in ("h1", "h2"):
        np.save(raw / f"{v}.npy", feat(60, rng))
        a = asr(rng, 60)
        data[v] = [[i % 2, s, e, t] for i, (s, e, t) in enumerate(zip(a["start"], a["end"],
                                                                       a["text"]))]
    (raw / "htm_align.json").write_text(json.dumps(data))
    root = DataRoot(tmp_path / "data")
    conv = _load_recipe("convert_htm_align")
    assert conv.main(["--root", str(root.root), "--json", str(raw / "htm_align.json"),
                      "--features", str(raw), "--quiet"]) == 0
    ds = load_htm_align(root)
    assert ds.video_ids == ["h1", "h2"] and len(ds[0].texts) == len(data["h1"])


# ----------------------------------------------------------------------------- hygiene


def test_data_modules_import_heavy_packages_lazily():
    heavy = {"transformers", "pandas", "matplotlib", "ipywidgets", "tqdm"}
    for f in (REPO / "nortonkit" / "data").glob("*.py"):
        if f.name == "synthetic.py":
            continue
        tree = ast.parse(f.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
        assert not names & heavy, (f.name, names & heavy)


def test_no_np_long_anywhere():
    files = [*(REPO / "nortonkit" / "data").glob("*.py"), *(REPO / "data_recipes").glob("*.py")]
    assert files
    for f in files:
        assert "np.long" not in f.read_text().replace("np.longdouble", ""), f
