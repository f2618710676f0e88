"""Fuzzing the readers with corrupted inputs: every failure must be a clear error naming a file.

Each property writes a (mostly) valid dataset, corrupts one file (truncation, wrong shapes,
NaN, garbage bytes, random JSON/CSV/pickle content, structural mutations of a valid file) and
requires that the reader either succeeds or raises ``ValueError`` / ``FileNotFoundError`` whose
message contains the path of the offending file. Any other exception is a bug.
"""

from __future__ import annotations

import copy
import json
import pickle
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nortonkit.data.coin import load_coin
from nortonkit.data.features import load_feature
from nortonkit.data.howto100m import ShardedCaptions, ShardedFeatures, write_feature_shards
from nortonkit.data.htm_align import load_htm_align
from nortonkit.data.layout import CAPTION_PREFIX, DataRoot
from nortonkit.data.msrvtt import MSRVTTTrainDataset, load_msrvtt_qa, load_msrvtt_test
from nortonkit.data.youcook import load_youcook_clips, load_youcook_full_videos

FUZZ = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids,
                                                              max_size=4),
    max_leaves=12,
)


def expect_clean_failure(fn: Callable[[], object], *paths: Path) -> None:
    """``fn()`` succeeds, or fails with ValueError/FileNotFoundError naming one of ``paths``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
            if hasattr(out, "__getitem__") and hasattr(out, "__len__") and len(out):
                out[0]  # lazily loaded sets: touch the first item too
    except (ValueError, FileNotFoundError) as e:
        msg = str(e)
        assert any(str(p) in msg for p in paths), f"error does not name a file: {msg!r}"


def feats(n: int, dim: int = 512) -> np.ndarray:
    x = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


def mutate(doc: object, data: st.DataObject) -> object:
    """Replace or delete one randomly chosen node of a JSON document."""
    doc = copy.deepcopy(doc)
    parent, key, node = None, None, doc
    for _ in range(data.draw(st.integers(0, 6))):
        if isinstance(node, dict) and node:
            k = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            k = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        parent, key, node = node, k, node[k]
    if parent is None:
        return data.draw(json_values)
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = data.draw(json_values)
    return doc


# ----------------------------------------------------------------------------- feature files


@FUZZ
@given(n=st.integers(1, 40), cut=st.floats(0, 0.999))
def test_truncated_feature_files(n, cut):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.npy"
        np.save(p, feats(n))
        raw = p.read_bytes()
        p.write_bytes(raw[: int(len(raw) * cut)])
        with pytest.raises(ValueError, match="v.npy"):
            load_feature(p)


@FUZZ
@given(
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)
    | st.tuples(st.integers(0, 5), st.sampled_from([511, 512, 513])),
    dtype=st.sampled_from(["float16", "float32", "float64", "int32", "bool", "complex64"]),
    nan_at=st.none() | st.integers(0, 10_000),
)
def test_feature_files_of_any_shape_and_dtype(shape, dtype, nan_at):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.npy"
        a = np.ones(shape, dtype=dtype)
        if nan_at is not None and a.size and a.dtype.kind in "fc":
            a.flat[nan_at % a.size] = np.nan
        np.save(p, a)
        try:
            out = load_feature(p)
        except ValueError as e:
            assert str(p) in str(e)
        else:
            assert out.ndim == 2 and out.shape[1] == 512 and len(out) >= 1
            assert out.dtype in (np.float16, np.float32) and np.isfinite(out).all()


@FUZZ
@given(junk=st.binary(max_size=300), magic=st.booleans())
def test_garbage_feature_files(junk, magic):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.npy"
        p.write_bytes((b"\x93NUMPY\x01\x00" if magic else b"") + junk)
        with pytest.raises(ValueError, match="v.npy"):
            load_feature(p)


# ----------------------------------------------------------------------------- shards


@FUZZ
@given(which=st.sampled_from(["train_0_starts.npy", "train_0_data.npy", "train_1_data.npy",
                              "train_meta.pkl"]),
       cut=st.floats(0, 0.999), junk=st.binary(max_size=64))
def test_corrupted_feature_shards(which, cut, junk):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_feature_shards([(f"v{i}", feats(5 + i)) for i in range(5)], d, "train",
                             shard_size=3)
        p = d / which
        raw = p.read_bytes()
        p.write_bytes(raw[: int(len(raw) * cut)] + junk)
        expect_clean_failure(lambda: [f[v] for f in [ShardedFeatures(d, "train")] for v in f],
                             p)


@FUZZ
@given(kind=st.sampled_from(["startends_starts", "startends_data", "caps_ids_starts",
                             "caps_ids_data"]),
       cut=st.floats(0, 0.999))
def test_corrupted_caption_shards(kind, cut):
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        starts = np.array([0, 2, 5], np.int64)
        files = {"startends_data": np.arange(10, dtype=np.float32).reshape(5, 2),
                 "caps_ids_data": np.full((5, 32), 7, np.int32),
                 "startends_starts": starts, "caps_ids_starts": starts}
        for k, a in files.items():
            np.save(d / f"{CAPTION_PREFIX}val_0.{k}.npy", a)
        p = d / f"{CAPTION_PREFIX}val_0.{kind}.npy"
        raw = p.read_bytes()
        p.write_bytes(raw[: int(len(raw) * cut)])
        expect_clean_failure(lambda: ShardedCaptions(d, "val", {0: ["a", "b"]})["b"], p)


# ----------------------------------------------------------------------------- evaluation sets


def _youcook(root: DataRoot) -> None:
    root.youcook_features.mkdir(parents=True)
    seg = lambda s, e: {"segment": [s, e], "sentence": f"do {s}"}  # noqa: E731
    db = {"database": {"a": {"annotations": [seg(1, 5), seg(6, 12)]},
                       "b": {"annotations": [seg(0, 4)]}}}
    root.youcook_annotations.write_text(json.dumps(db))
    root.youcook_val_pkl.write_bytes(pickle.dumps([{"id": "a_0"}, {"id": "a_1"}, {"id": "b_0"}]))
    for v in "ab":
        np.save(root.youcook_features / f"{v}.npy", feats(20))


@FUZZ
@given(data=st.data(), garbage=st.none() | st.binary(max_size=80))
def test_youcook_annotation_json(data, garbage):
    with tempfile.TemporaryDirectory() as d:
        root = DataRoot(d)
        _youcook(root)
        p = root.youcook_annotations
        if garbage is not None:
            p.write_bytes(garbage)
        else:
            p.write_text(json.dumps(mutate(json.loads(p.read_text()), data)))
        expect_clean_failure(lambda: load_youcook_clips(root), p, root.youcook_val_pkl)
        expect_clean_failure(lambda: load_youcook_full_videos(root), p, root.youcook_val_pkl)


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(["id", "caption"]),
                                        st.text(max_size=8) | st.integers()), max_size=4)
       | json_values, raw=st.none() | st.binary(max_size=60))
def test_youcook_val_pickle(records, raw):
    with tempfile.TemporaryDirectory() as d:
        root = DataRoot(d)
        _youcook(root)
        p = root.youcook_val_pkl
        p.write_bytes(raw if raw is not None else pickle.dumps(records))
        expect_clean_failure(lambda: load_youcook_clips(root, use_annotation_text=False), p,
                             root.youcook_annotations)


def _coin(root: DataRoot) -> None:
    root.coin_features.mkdir(parents=True)
    seg = lambda s, e, i: {"segment": [s, e], "id": str(i), "label": f"s{i}"}  # noqa: E731
    db = {"database": {"a": {"subset": "testing", "annotation": [seg(0.5, 4, 1), seg(5, 9, 2)]},
                       "b": {"subset": "training", "annotation": [seg(1, 3, 2)]}}}
    root.coin_json.write_text(json.dumps(db))
    for v in "ab":
        np.save(root.coin_features / f"{v}.npy", feats(40))


@FUZZ
@given(data=st.data(), garbage=st.none() | st.binary(max_size=80),
       subset=st.sampled_from(["testing", "training"]))
def test_coin_json(data, garbage, subset):
    with tempfile.TemporaryDirectory() as d:
        root = DataRoot(d)
        _coin(root)
        p = root.coin_json
        if garbage is not None:
            p.write_bytes(garbage)
        else:
            p.write_text(json.dumps(mutate(json.loads(p.read_text()), data)))
        expect_clean_failure(lambda: load_coin(root, subset=subset), p)


@FUZZ
@given(data=st.data(), garbage=st.none() | st.binary(max_size=80))
def test_htm_align_json(data, garbage):
    with tempfile.TemporaryDirectory() as d:
        root = DataRoot(d)
        root.htm_align_features.mkdir(parents=True)
        rows = [[0, 0.0, 3.0, "hello"], [1, 4.0, 9.0, "cut it"], [0, 20.0, 24.0, "bye"]]
        root.htm_align_json.write_text(json.dumps({"a": rows, "b": rows[:2]}))
        for v in "ab":
            np.save(root.htm_align_features / f"{v}.npy", feats(50))
        p = root.htm_align_json
        if garbage is not None:
            p.write_bytes(garbage)
        else:
            p.write_text(json.dumps(mutate(json.loads(p.read_text()), data)))
        feature_files = [root.htm_align_features / f"{v}.npy" for v in "ab"]
        expect_clean_failure(lambda: load_htm_align(root), p, root.htm_align_features,
                             *feature_files)


csv_cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)


@FUZZ
@given(header=st.lists(st.sampled_from(["key", "vid_key", "video_id", "sentence", "a1", "a2",
                                        "a3", "answer", "junk"]), min_size=1, max_size=5),
       rows=st.lists(st.lists(csv_cells, min_size=1, max_size=5), max_size=3),
       sep=st.sampled_from([",", "\t"]), raw=st.none() | st.binary(max_size=60))
def test_msrvtt_tables(header, rows, sep, raw):
    with tempfile.TemporaryDirectory() as d:
        root = DataRoot(d)
        root.msrvtt_features.mkdir(parents=True)
        np.save(root.msrvtt_features / "video1.npy", feats(10))
        text = "\n".join(sep.join(r) for r in [header, *rows]) + "\n"
        for p in (root.msrvtt_test_csv, root.msrvtt_qa_csv, root.msrvtt_train_csv("9k")):
            if raw is None:
                p.write_text(text)
            else:
                p.write_bytes(raw)
        root.msrvtt_data_json.write_text(json.dumps(
            {"sentences": [{"video_id": "video1", "caption": "x"}]}))
        any_feature = root.msrvtt_features
        expect_clean_failure(lambda: load_msrvtt_test(root), root.msrvtt_test_csv, any_feature)
        expect_clean_failure(lambda: load_msrvtt_qa(root), root.msrvtt_qa_csv, any_feature)
        expect_clean_failure(lambda: MSRVTTTrainDataset(root, dup=1),
                             root.msrvtt_train_csv("9k"), any_feature)


@FUZZ
@given(doc=json_values, garbage=st.none() | st.binary(max_size=60))
def test_msrvtt_data_json(doc, garbage):
    with tempfile.TemporaryDirectory() as d:
        root = DataRoot(d)
        root.msrvtt_features.mkdir(parents=True)
        np.save(root.msrvtt_features / "video1.npy", feats(10))
        root.msrvtt_train_csv("9k").write_text("video_id\nvideo1\n")
        p = root.msrvtt_data_json
        if garbage is not None:
            p.write_bytes(garbage)
        else:
            p.write_text(json.dumps({"sentences": doc} if isinstance(doc, list) else doc))
        expect_clean_failure(lambda: MSRVTTTrainDataset(root, dup=1), p)
