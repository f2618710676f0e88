"""HowTo100M pre-training data: feature and caption shards, the clip sampler and the batch stream.

Files (``docs/protocols.md`` §5.2-5.3, layout in :class:`nortonkit.data.layout.DataRoot`)::

    feat_shard/{split}_{s}_starts.npy     int64 offsets, length n_videos + 1
    feat_shard/{split}_{s}_data.npy       float16 (sum T, 512), videos concatenated
    feat_shard/{split}_meta.pkl           {shard_idx: [video_id, ...]} (plain dict pickle)
    caps_shard/<prefix>{split}_{s}.startends_{starts,data}.npy   float32 (sum n_caps, 2)
    caps_shard/<prefix>{split}_{s}.caps_ids_{starts,data}.npy    int32 (sum n_caps, 32), pad -1

Writers stream (at most one video in memory for features, one shard for captions) and are
atomic; readers memory-map. :func:`sample_video_clips` is the VideoCLIP/Norton sampler
(Norton App. B, "Data sampling", steps 1-3; ``docs/protocols.md`` §5.4) and
:class:`How2Dataset` yields whole batches of ``videos_per_batch`` videos (§5.5).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..io import atomic_save_npy, atomic_write, load_npy, safe_pickle_load
from .features import FEATURE_DIM, SkipReport, feature_path, load_feature
from .layout import CAPTION_PREFIX
from .text import (
    CAPTION_CHARS,
    CAPTION_TOKENS,
    build_text_batch,
    pretokenize,
    text_tokens_budget,
)

__all__ = [
    "ShardWriteResult",
    "write_feature_shards",
    "shard_feature_dir",
    "ShardedFeatures",
    "write_caption_shards",
    "ShardedCaptions",
    "read_video_list",
    "VideoClips",
    "sample_video_clips",
    "ClipBatch",
    "build_clip_batch",
    "plan_batches",
    "How2Dataset",
]


# ----------------------------------------------------------------------------- shard writing


class ShardWriteResult(NamedTuple):
    """What a shard writer wrote.

    Attributes
    ----------
    n_videos : int
        Videos written.
    n_shards : int
        Shards written.
    n_rows : int
        Feature seconds (feature shards) or captions (caption shards) written.
    meta : dict[int, list[str]]
        ``{shard_idx: [video_id, ...]}``.
    skipped : SkipReport
        Items skipped (already emitted).
    """

    n_videos: int
    n_shards: int
    n_rows: int
    meta: dict[int, list[str]]
    skipped: SkipReport


_HEADER_BYTES = 128  # fixed .npy header size, so the shape can be patched in after streaming


class _NpyStream:
    """Append rows to an open binary file as one ``.npy`` array; the header is written last."""

    def __init__(self, f: Any, dtype: np.dtype, width: int):
        self.f, self.dtype, self.width, self.rows = f, np.dtype(dtype), width, 0
        f.write(b"\0" * _HEADER_BYTES)

    def append(self, rows: np.ndarray) -> None:
        self.f.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def finish(self) -> None:
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": (self.rows, self.width)}
        text = repr(d).encode("latin1")
        room = _HEADER_BYTES - 10 - 1
        header = b"\x93NUMPY\x01\x00" + (_HEADER_BYTES - 10).to_bytes(2, "little")
        header += text.ljust(room, b" ") + b"\n"
        self.f.seek(0)
        self.f.write(header)
        self.f.seek(0, os.SEEK_END)


def _check_split(split: object) -> str:
    if not isinstance(split, str) or not split or "/" in split or os.sep in split:
        raise ValueError(f"split: expected a file-name-safe name such as 'train', got {split!r}")
    return split


def _check_video_id(name: str, vid: object) -> str:
    if not isinstance(vid, str) or not vid or vid != vid.strip() or "/" in vid:
        raise ValueError(f"{name}: expected a non-empty id without '/' or edge spaces, got {vid!r}")
    return vid


def _remove_stale(out_dir: Path, pattern: str, n_shards: int) -> None:
    """Delete shard files of an earlier, larger run (index >= n_shards)."""
    for p in out_dir.iterdir():
        m = re.fullmatch(pattern, p.name)
        if m and int(m.group(1)) >= n_shards:
            p.unlink()


def _write_meta(path: Path, meta: dict[int, list[str]]) -> None:
    with atomic_write(path, "wb") as f:
        pickle.dump({int(k): list(v) for k, v in meta.items()}, f, protocol=4)


def write_feature_shards(
    items: Iterable[tuple[str, np.ndarray]],
    out_dir: str | os.PathLike,
    split: str,
    shard_size: int = 4096,
    *,
    dim: int = FEATURE_DIM,
) -> ShardWriteResult:
    """Stream ``(video_id, features)`` pairs into sharded feature files.

    Parameters
    ----------
    items : iterable of (str, numpy.ndarray of shape (T, D))
        Videos in list order; consumed lazily (only one video is held in memory).
    out_dir : path-like
        The ``feat_shard`` folder.
    split : str
        ``"train"`` or ``"val"`` (any file-name-safe name).
    shard_size : int
        Videos per shard (official: 4096).
    dim : int
        Feature width ``D``.

    Returns
    -------
    ShardWriteResult

    Raises
    ------
    ValueError
        A bad item (wrong rank/width, no rows, NaN/inf, duplicate or malformed id), naming it.

    Notes
    -----
    ``docs/protocols.md`` §5.3 (``shard_feature.py``, ``ShardedTensor``): per shard
    ``{split}_{s}_starts.npy`` int64 offsets (length n + 1, ``starts[0] = 0``,
    ``starts[-1] = len(data)``) and ``{split}_{s}_data.npy`` float16 ``(sum T, 512)``, then
    ``{split}_meta.pkl``. Offsets are int64 (the official code used a NumPy alias removed in
    NumPy 1.24). Every file is written atomically; the meta file is written last, so its
    presence marks a complete set.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> feats = [(f"v{i}", np.ones((i + 2, 4), np.float32)) for i in range(3)]
    >>> res = write_feature_shards(feats, d, "train", shard_size=2, dim=4)
    >>> res.n_videos, res.n_shards, res.n_rows, res.meta
    (3, 2, 9, {0: ['v0', 'v1'], 1: ['v2']})
    >>> ShardedFeatures(d, "train", expected_dim=4)["v2"].shape
    (4, 4)
    """
    split = _check_split(split)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size: expected an integer >= 1, got {shard_size!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[int, list[str]] = {}
    seen: set[str] = set()
    n_rows = 0
    shard, ctx, stream, starts = -1, None, None, [0]

    def close() -> None:
        nonlocal ctx, stream
        if ctx is not None:
            stream.finish()
            ctx.__exit__(None, None, None)
            atomic_save_npy(out_dir / f"{split}_{shard}_starts.npy", np.asarray(starts, np.int64))
            ctx, stream = None, None

    try:
        for i, item in enumerate(items):
            if not isinstance(item, tuple) or len(item) != 2:
                raise ValueError(f"items[{i}]: expected a (video_id, features) pair")
            vid = _check_video_id(f"items[{i}] video id", item[0])
            if vid in seen:
                raise ValueError(f"items[{i}]: duplicate video id {vid!r}")
            arr = np.asarray(item[1])
            if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] < 1:
                raise ValueError(
                    f"items[{i}] ({vid}): expected features of shape (T >= 1, {dim}), "
                    f"got {arr.shape}"
                )
            if not np.issubdtype(arr.dtype, np.floating):
                raise ValueError(f"items[{i}] ({vid}): expected floating features, got {arr.dtype}")
            with np.errstate(over="ignore"):
                arr16 = arr.astype(np.float16)
            if not np.isfinite(arr16).all():
                raise ValueError(f"items[{i}] ({vid}): NaN/inf features (or beyond float16 range)")
            if stream is None or len(meta[shard]) >= shard_size:
                close()
                shard += 1
                meta[shard], starts = [], [0]
                ctx = atomic_write(out_dir / f"{split}_{shard}_data.npy", "wb")
                stream = _NpyStream(ctx.__enter__(), np.float16, dim)
            stream.append(arr16)
            starts.append(starts[-1] + len(arr16))
            meta[shard].append(vid)
            seen.add(vid)
            n_rows += len(arr16)
        close()
    except BaseException as e:
        if ctx is not None:
            ctx.__exit__(type(e), e, e.__traceback__)  # removes the temporary file
        raise
    if not meta:
        raise ValueError("items: no videos to write")
    _write_meta(out_dir / f"{split}_meta.pkl", meta)
    _remove_stale(out_dir, rf"{re.escape(split)}_(\d+)_(starts|data)\.npy", len(meta))
    return ShardWriteResult(len(seen), len(meta), n_rows, meta, SkipReport(f"{split} features"))


def shard_feature_dir(
    feature_dir: str | os.PathLike,
    video_ids: Iterable[str],
    out_dir: str | os.PathLike,
    split: str,
    shard_size: int = 4096,
    *,
    expected_dim: int = FEATURE_DIM,
    progress: Callable[[Iterable[str]], Iterable[str]] | None = None,
) -> ShardWriteResult:
    """Shard a folder of per-video ``<video_id>.npy`` features (``shard_feature.py``).

    Missing and unreadable files (truncated, wrong shape, NaN) are skipped, as the official
    script skips files that fail to load; they are counted and reported once at the end.

    Parameters
    ----------
    feature_dir : path-like
        Folder of ``<video_id>.npy`` float16 ``(T, D)`` files.
    video_ids : iterable of str
        Videos in list order (e.g. :func:`read_video_list` of ``how2_s3d_train.lst``).
    out_dir, split, shard_size :
        As in :func:`write_feature_shards`.
    expected_dim : int
        Feature width ``D``.
    progress : callable, optional
        Wraps the id iterable (e.g. ``tqdm``).

    Returns
    -------
    ShardWriteResult
        ``skipped`` counts the missing/unreadable files.

    Notes
    -----
    ``docs/protocols.md`` §5.3.

    Examples
    --------
    >>> import tempfile
    >>> src = Path(tempfile.mkdtemp())
    >>> np.save(src / "a.npy", np.zeros((3, 4), np.float16))
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     res = shard_feature_dir(src, ["a", "missing"], src / "shards", "val", expected_dim=4)
    >>> res.n_videos, dict(res.skipped.counts)
    (1, {'no feature file': 1})
    """
    report = SkipReport(f"{split} feature files in {feature_dir}")
    ids = list(video_ids)

    def gen() -> Iterator[tuple[str, np.ndarray]]:
        for vid in progress(ids) if progress is not None else ids:
            try:
                arr = load_feature(feature_path(feature_dir, vid), expected_dim)
            except FileNotFoundError:
                report.add(vid, "no feature file")
                continue
            except ValueError as e:
                report.add(vid, f"unreadable ({str(e).split(': ', 1)[-1][:60]})")
                continue
            yield vid, arr

    try:
        res = write_feature_shards(gen(), out_dir, split, shard_size, dim=expected_dim)
    except ValueError as e:
        if str(e).startswith("items: no videos") and len(report):
            raise ValueError(f"{feature_dir}: no readable feature files; {report.summary()}") from e
        raise
    report.emit()
    return res._replace(skipped=report)


# ----------------------------------------------------------------------------- shard reading


def _load_meta(meta: str | os.PathLike | Mapping | ShardedFeatures) -> tuple[dict, str]:
    if isinstance(meta, ShardedFeatures):
        return meta.meta, str(meta.meta_path)
    if isinstance(meta, Mapping):
        obj, source = meta, "meta"
    else:
        obj, source = safe_pickle_load(meta), str(meta)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: expected a dict {{shard_idx: [video_id, ...]}}, got "
                         f"{type(obj).__name__}")
    out: dict[int, list[str]] = {}
    seen: set[str] = set()
    for k, v in obj.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"{source}: expected non-negative int shard keys, got {k!r}")
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
            raise ValueError(f"{source}: shard {k}: expected a list of video id strings")
        dup = seen.intersection(v)
        if dup or len(set(v)) != len(v):
            raise ValueError(f"{source}: shard {k}: duplicate video ids {sorted(dup)[:3] or v[:3]}")
        seen.update(v)
        out[int(k)] = list(v)
    return out, source


def _load_starts(path: Path, n: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard offsets file not found")
    s = load_npy(path)
    if s.ndim != 1 or not np.issubdtype(s.dtype, np.integer) or len(s) != n + 1:
        raise ValueError(
            f"{path}: expected int64 offsets of shape ({n + 1},) for {n} videos, "
            f"got {s.dtype} {s.shape}"
        )
    if s[0] != 0 or (np.diff(s) < 0).any():
        raise ValueError(f"{path}: offsets must start at 0 and be non-decreasing")
    return s.astype(np.int64)


def _open_data(
    path: Path, rows: int, width: int | None, dtypes: tuple, offsets: Path
) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard data file not found")
    d = load_npy(path, mmap=True)
    want_w = "W" if width is None else width
    if d.ndim != 2 or d.shape[0] != rows or (width is not None and d.shape[1] != width):
        raise ValueError(
            f"{path}: expected shape ({rows}, {want_w}) as given by the offsets in {offsets}, "
            f"got {d.shape}"
        )
    if d.dtype not in dtypes:
        raise ValueError(f"{path}: expected dtype in {[str(t) for t in dtypes]}, got {d.dtype}")
    return d


class ShardedFeatures(Mapping):
    """Memory-mapped HowTo100M feature shards: ``features[video_id] -> (T, D) float16``.

    Parameters
    ----------
    directory : path-like
        The ``feat_shard`` folder.
    split : str
        Split name in the file names.
    expected_dim : int
        Feature width ``D``.

    Notes
    -----
    ``docs/protocols.md`` §5.3. Offsets and shapes of every shard are checked when the reader
    is built; each access checks the video's rows are finite. Pickling (e.g. to DataLoader
    workers) drops the open memory maps.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = write_feature_shards([("a", np.ones((2, 4)))], d, "val", dim=4)
    >>> f = ShardedFeatures(d, "val", expected_dim=4)
    >>> len(f), f["a"].dtype, f.length("a")
    (1, dtype('float16'), 2)
    """

    def __init__(self, directory: str | os.PathLike, split: str, expected_dim: int = FEATURE_DIM):
        self.directory, self.split = Path(directory), _check_split(split)
        self.expected_dim = expected_dim
        self.meta_path = self.directory / f"{split}_meta.pkl"
        self.meta, _ = _load_meta(self.meta_path)
        self._index: dict[str, tuple[int, int]] = {}
        self._starts: dict[int, np.ndarray] = {}
        self._data: dict[int, np.ndarray] = {}
        for s, ids in self.meta.items():
            starts = _load_starts(self._starts_path(s), len(ids))
            short = np.flatnonzero(np.diff(starts) < 1)
            if len(short):
                raise ValueError(f"{self._starts_path(s)}: video {ids[short[0]]!r} has 0 "
                                 "feature rows")
            _open_data(self._data_path(s), int(starts[-1]), expected_dim,
                       (np.float16, np.float32), self._starts_path(s))
            self._starts[s] = starts
            for i, vid in enumerate(ids):
                self._index[vid] = (s, i)

    def _data_path(self, s: int) -> Path:
        return self.directory / f"{self.split}_{s}_data.npy"

    def _starts_path(self, s: int) -> Path:
        return self.directory / f"{self.split}_{s}_starts.npy"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = {}
        return state

    def _shard(self, s: int) -> np.ndarray:
        if s not in self._data:
            rows = int(self._starts[s][-1])
            self._data[s] = _open_data(self._data_path(s), rows, self.expected_dim,
                                       (np.float16, np.float32), self._starts_path(s))
        return self._data[s]

    def __getitem__(self, video_id: str) -> np.ndarray:
        if video_id not in self._index:
            raise KeyError(f"{video_id!r}: no features in {self.meta_path}")
        s, i = self._index[video_id]
        a, b = self._starts[s][i], self._starts[s][i + 1]
        out = self._shard(s)[a:b]
        if not np.isfinite(out).all():
            raise ValueError(f"{self._data_path(s)}: NaN/inf features for video {video_id!r}")
        return out

    def length(self, video_id: str) -> int:
        """Number of seconds ``T`` of a video (no data read)."""
        s, i = self._index[video_id]
        return int(self._starts[s][i + 1] - self._starts[s][i])

    def __iter__(self) -> Iterator[str]:
        for ids in self.meta.values():
            yield from ids

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index

    @property
    def ids(self) -> list[str]:
        """Video ids in shard order."""
        return list(self)


def _caption_paths(directory: Path, prefix: str, split: str, s: int) -> dict[str, Path]:
    base = f"{prefix}{split}_{s}."
    return {f"{k}_{p}": directory / f"{base}{k}_{p}.npy"
            for k in ("startends", "caps_ids") for p in ("starts", "data")}


def _parse_caption_entry(source: str, vid: str, rec: Any) -> tuple[np.ndarray, list[str]]:
    where = f"{source}[{vid!r}]"
    if isinstance(rec, str):  # the official pickle stores each value as a JSON string
        try:
            rec = json.loads(rec)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(rec, Mapping) or not {"start", "end", "text"} <= set(rec):
        got = sorted(rec) if isinstance(rec, Mapping) else type(rec).__name__
        raise ValueError(f"{where}: expected a dict with keys start, end, text; got {got}")
    lens = {k: len(rec[k]) if isinstance(rec[k], (list, tuple)) else None
            for k in ("start", "end", "text")}
    if None in lens.values() or len(set(lens.values())) != 1:
        raise ValueError(f"{where}: expected lists start, end, text of equal length, got {lens}")
    try:
        se = np.asarray([rec["start"], rec["end"]], dtype=np.float64).T.reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"{where}['start'/'end']: expected numbers (seconds)") from None
    if not np.isfinite(se).all() or (se < 0).any():
        bad = "start" if (~np.isfinite(se[:, 0]) | (se[:, 0] < 0)).any() else "end"
        raise ValueError(f"{where}[{bad!r}]: expected finite times >= 0 seconds")
    texts = rec["text"]
    for j, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{where}['text'][{j}]: expected a string, got {type(t).__name__}")
    return se.astype(np.float32), list(texts)


def write_caption_shards(
    captions: Mapping[str, Any],
    tokenizer: Any,
    meta: str | os.PathLike | Mapping | ShardedFeatures,
    out_dir: str | os.PathLike,
    split: str,
    *,
    prefix: str = CAPTION_PREFIX,
    max_chars: int = CAPTION_CHARS,
    max_tokens: int = CAPTION_TOKENS,
    source: str = "captions",
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> ShardWriteResult:
    """Pre-tokenise sentencified captions into shards that follow the feature shards.

    Parameters
    ----------
    captions : mapping
        ``{video_id: {"start": [s..], "end": [e..], "text": [str..]}}`` (the layout of
        ``sentencified_htm_1200k.json``; a value may also be that dict as a JSON string).
    tokenizer : tokenizer
        From :func:`nortonkit.data.text.load_tokenizer`.
    meta : path-like, mapping or ShardedFeatures
        The feature shards' ``{shard_idx: [video_id, ...]}``; caption shard ``s`` holds the
        videos of feature shard ``s`` in the same order.
    out_dir : path-like
        The ``caps_shard`` folder.
    split : str
        Split name.
    prefix : str
        File-name prefix (``sentencified_htm_1200k.bert-base-uncased.``).
    max_chars, max_tokens : int
        Pre-tokenisation cut (96 characters, 32 tokens).
    source : str
        Name of the caption source used in error messages (e.g. the json path).
    progress : callable, optional
        Wraps the shard iterable (e.g. ``tqdm``).

    Returns
    -------
    ShardWriteResult
        ``n_rows`` counts captions; videos without captions are written with zero captions,
        counted in ``skipped`` and reported once.

    Notes
    -----
    ``docs/protocols.md`` §5.2: ``startends`` float32 ``(sum n_caps, 2)`` and ``caps_ids``
    int32 ``(sum n_caps, 32)`` padded with -1, each with int64 ``_starts`` offsets. Strings
    are cut to 96 *characters* before tokenisation.

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.text import load_tokenizer
    >>> d = tempfile.mkdtemp()
    >>> caps = {"a": {"start": [0.0, 4.0], "end": [3.0, 9.0], "text": ["crack eggs", "whisk"]}}
    >>> res = write_caption_shards(caps, load_tokenizer(), {0: ["a"]}, d, "val")
    >>> ShardedCaptions(d, "val", {0: ["a"]})["a"]["cap"]
    [[8579, 6763], [1059, 24158, 2243]]
    """
    split = _check_split(split)
    meta_d, _ = _load_meta(meta)
    if not isinstance(captions, Mapping):
        raise ValueError(f"{source}: expected a dict {{video_id: {{start, end, text}}}}, got "
                         f"{type(captions).__name__}")
    out_dir = Path(out_dir)
    report = SkipReport(f"{split} captions from {source}")
    n_rows = 0
    shards = sorted(meta_d)
    for s in progress(shards) if progress is not None else shards:
        spans, texts, counts = [], [], []
        for vid in meta_d[s]:
            if vid not in captions:
                report.add(vid, "no captions")
                counts.append(0)
                continue
            se, tx = _parse_caption_entry(source, vid, captions[vid])
            if not tx:
                report.add(vid, "no captions")
            spans.append(se)
            texts.extend(tx)
            counts.append(len(tx))
        ids = pretokenize(texts, tokenizer, max_chars=max_chars, max_tokens=max_tokens)
        se_all = np.concatenate(spans) if spans else np.zeros((0, 2), np.float32)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        paths = _caption_paths(out_dir, prefix, split, s)
        atomic_save_npy(paths["startends_data"], se_all.astype(np.float32))
        atomic_save_npy(paths["caps_ids_data"], ids)
        atomic_save_npy(paths["startends_starts"], starts)
        atomic_save_npy(paths["caps_ids_starts"], starts)
        n_rows += len(texts)
    if shards == list(range(len(shards))):
        pattern = rf"{re.escape(prefix)}{re.escape(split)}_(\d+)\.(startends|caps_ids)_\w+\.npy"
        _remove_stale(out_dir, pattern, len(shards))
    report.emit()
    n_videos = sum(len(v) for v in meta_d.values())
    return ShardWriteResult(n_videos, len(shards), n_rows, meta_d, report)


class ShardedCaptions(Mapping):
    """Pre-tokenised caption shards: ``captions[video_id] -> {"start", "end", "cap"}``.

    Parameters
    ----------
    directory : path-like
        The ``caps_shard`` folder.
    split : str
        Split name.
    meta : path-like, mapping or ShardedFeatures
        The feature shards' meta (caption shards carry no index of their own).
    prefix : str
        File-name prefix.

    Returns
    -------
    Each item is ``{"start": ndarray (n,) float32, "end": ndarray (n,) float32,
    "cap": list of n token-id lists}`` with the ``-1`` padding stripped, as the official
    ``ShardedTextProcessor`` returns.

    Notes
    -----
    ``docs/protocols.md`` §5.2. Caption times may fall after the end of the video features
    (ASR timing); the sampler clamps, as the official aligner does.

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.text import load_tokenizer
    >>> d = tempfile.mkdtemp()
    >>> caps = {"a": {"start": [1.0], "end": [2.5], "text": ["whisk"]}}
    >>> _ = write_caption_shards(caps, load_tokenizer(), {0: ["a"]}, d, "val")
    >>> c = ShardedCaptions(d, "val", {0: ["a"]})["a"]
    >>> c["start"].tolist(), c["end"].tolist(), c["cap"]
    ([1.0], [2.5], [[1059, 24158, 2243]])
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        split: str,
        meta: str | os.PathLike | Mapping | ShardedFeatures,
        prefix: str = CAPTION_PREFIX,
    ):
        self.directory, self.split, self.prefix = Path(directory), _check_split(split), prefix
        self.meta, self.meta_source = _load_meta(meta)
        self._index: dict[str, tuple[int, int]] = {}
        self._starts: dict[int, np.ndarray] = {}
        self._data: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for s, ids in self.meta.items():
            paths = _caption_paths(self.directory, prefix, split, s)
            st = _load_starts(paths["startends_starts"], len(ids))
            ct = _load_starts(paths["caps_ids_starts"], len(ids))
            if not np.array_equal(st, ct):
                raise ValueError(f"{paths['caps_ids_starts']}: offsets differ from "
                                 f"{paths['startends_starts'].name}")
            self._open(s, st)
            self._starts[s] = st
            for i, vid in enumerate(ids):
                self._index[vid] = (s, i)

    def _open(self, s: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        paths = _caption_paths(self.directory, self.prefix, self.split, s)
        rows = int(starts[-1])
        se = _open_data(paths["startends_data"], rows, 2, (np.float32, np.float64),
                        paths["startends_starts"])
        ids = _open_data(paths["caps_ids_data"], rows, None, (np.int32, np.int64, np.int16),
                         paths["caps_ids_starts"])
        return se, ids

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = {}
        return state

    def __getitem__(self, video_id: str) -> dict[str, Any]:
        if video_id not in self._index:
            raise KeyError(f"{video_id!r}: not in the caption shards' meta ({self.meta_source})")
        s, i = self._index[video_id]
        if s not in self._data:
            self._data[s] = self._open(s, self._starts[s])
        se, ids = self._data[s]
        a, b = self._starts[s][i], self._starts[s][i + 1]
        span = np.asarray(se[a:b], dtype=np.float32)
        if not np.isfinite(span).all():
            path = _caption_paths(self.directory, self.prefix, self.split, s)["startends_data"]
            raise ValueError(f"{path}: NaN/inf caption times for video {video_id!r}")
        rows = np.asarray(ids[a:b])
        return {"start": span[:, 0].copy(), "end": span[:, 1].copy(),
                "cap": [r[r >= 0].tolist() for r in rows]}

    def __iter__(self) -> Iterator[str]:
        for ids in self.meta.values():
            yield from ids

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index


def read_video_list(path: str | os.PathLike) -> list[str]:
    """Video ids of a ``how2_s3d_{split}.lst`` file (one per line, blanks ignored).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "val.lst"
    >>> _ = p.write_text("a\\nb\\n\\n")
    >>> read_video_list(p)
    ['a', 'b']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video list not found")
    try:
        ids = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text list of video ids: {e}") from None
    if len(set(ids)) != len(ids):
        dup = next(v for i, v in enumerate(ids) if v in ids[:i])
        raise ValueError(f"{path}: duplicate video id {dup!r}")
    return ids


# ----------------------------------------------------------------------------- sampling


class VideoClips(NamedTuple):
    """``K`` clip/caption samples of one video, time-sorted.

    Attributes
    ----------
    video_spans : numpy.ndarray, shape (K, 2)
        int64 ``[start, end)`` seconds of each clip.
    text_spans : numpy.ndarray, shape (K, 2)
        int64 ``[first, last + 1)`` indices of the merged captions.
    text_times : numpy.ndarray, shape (K, 2)
        float32 seconds: start of the first and end of the last merged caption.
    tokens : list of list of int, length K
        Merged token ids, truncated to ``max_tokens``.
    n_tokens : numpy.ndarray, shape (K,)
        int64 merged token counts before truncation.
    text_budget : numpy.ndarray, shape (K,)
        int64 sampled token thresholds ``~ U{min_text_len..max_text_len}``.
    """

    video_spans: np.ndarray
    text_spans: np.ndarray
    text_times: np.ndarray
    tokens: list[list[int]]
    n_tokens: np.ndarray
    text_budget: np.ndarray


def _merge_captions(
    cap_lens: Sequence[int], starts: np.ndarray, ends: np.ndarray, centre: int, budget: int,
    max_span: float, rng: np.random.Generator,
) -> tuple[int, int, int]:
    n = len(cap_lens)
    first, last = centre, centre + 1  # [first, last)
    n_tok = cap_lens[centre]
    span = max(0.0, float(ends[centre] - starts[centre]))
    while (first > 0 or last < n) and n_tok < budget and span < max_span:
        if rng.random() > 0.5 and last < n:
            n_tok += cap_lens[last]
            last += 1
        elif first > 0:
            first -= 1
            n_tok += cap_lens[first]
        else:
            n_tok += cap_lens[last]
            last += 1
        span = max(0.0, float(ends[last - 1] - starts[first]))
    return first, last, n_tok


def _grow_clip(n_frames: int, centre: int, length: int, rng: np.random.Generator) -> tuple:
    start = end = centre
    grown = 0
    while (start > 0 or end < n_frames) and grown < length:
        if start <= 0:
            end += 1
        elif end >= n_frames:
            start -= 1
        elif rng.random() > 0.5:
            end += 1
        else:
            start -= 1
        grown += 1
    return start, end


def _check_range(lo_name: str, lo: int, hi_name: str, hi: int) -> None:
    for name, v in ((lo_name, lo), (hi_name, hi)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if lo > hi:
        raise ValueError(f"{lo_name}: expected <= {hi_name} ({hi}), got {lo}")


def sample_video_clips(
    features: np.ndarray | int,
    captions: Mapping[str, Any],
    rng: np.random.Generator,
    clips_per_video: int = 16,
    min_text_len: int = 8,
    max_text_len: int = 32,
    min_clip_len: int = 3,
    max_clip_len: int = 16,
    max_tokens: int = 29,
    replacement: bool = True,
    max_caption_span: float = 256.0,
) -> VideoClips:
    """Sample ``K`` overlapping clip/caption pairs from one video (VideoCLIP/Norton sampler).

    For each of the ``K = clips_per_video`` samples:

    1. a centre caption (uniform; with replacement by default);
    2. a token threshold ``n* ~ U{min_text_len..max_text_len}``;
    3. caption merging: while captions remain, fewer than ``n*`` tokens are merged and the
       merged span is under ``max_caption_span`` s, extend right with probability 0.5 when
       possible, otherwise left, otherwise right (may overshoot by one caption);
    4. a video centre ``c ~ U{floor(start_first)..ceil(end_last)}`` (the midpoint when that
       range is empty) clamped to ``[0, T-1]``;
    5. clip growth from ``[c, c)``: target length ``~ U{min_clip_len..max_clip_len}``, one
       second at a time to the right or left with probability 0.5 (forced at the borders);
    6. tokens concatenated and truncated to ``max_tokens``.

    The samples are then sorted by (text start, video start, text end, video end), which makes
    consecutive clips chronological; the video-paragraph loss groups them into sequences of
    ``L = 8`` consecutive clips.

    Parameters
    ----------
    features : numpy.ndarray, shape (T, D), or int
        The video's features (only ``T`` is used) or ``T`` itself.
    captions : mapping
        ``{"start": (n,), "end": (n,), "cap": n token lists}`` (a :class:`ShardedCaptions`
        item); ``n >= 1``.
    rng : numpy.random.Generator
        Source of all randomness.
    clips_per_video : int
        ``K`` (16).
    min_text_len, max_text_len : int
        Token threshold range (8, 32).
    min_clip_len, max_clip_len : int
        Clip length range in seconds (3, 16).
    max_tokens : int
        Text truncation (29 = 48 - 16 - 3 in pre-training).
    replacement : bool
        Draw centre captions with replacement (official). Without replacement, every caption
        is a centre at most once until all have been used.
    max_caption_span : float
        Cap on the merged captions' time span (256 s).

    Returns
    -------
    VideoClips

    Notes
    -----
    Norton App. B, "Data sampling" steps 1-3 ("a text caption with 8~32 tokens ... a
    timestamp within the boundary of the caption as the center ... a video clip with random
    duration (3~16 seconds)"); ``docs/protocols.md`` §5.4 and §9 items 13-14.

    Examples
    --------
    >>> caps = {"start": np.array([0., 5., 9.]), "end": np.array([4., 8., 12.]),
    ...         "cap": [[1, 2, 3, 4, 5], [6, 7, 8], [9, 10, 11, 12]]}
    >>> s = sample_video_clips(15, caps, np.random.default_rng(0), clips_per_video=4)
    >>> s.video_spans.shape, bool((np.diff(s.video_spans, axis=1) >= 3).all())
    ((4, 2), True)
    >>> bool((s.text_spans[:-1, 0] <= s.text_spans[1:, 0]).all())
    True
    """
    n_frames = int(features) if isinstance(features, (int, np.integer)) else len(features)
    if n_frames < 1:
        raise ValueError(f"features: expected at least 1 second of features, got T = {n_frames}")
    if not isinstance(captions, Mapping) or not {"start", "end", "cap"} <= set(captions):
        raise ValueError("captions: expected a mapping with keys start, end, cap")
    starts = np.asarray(captions["start"], dtype=np.float64)
    ends = np.asarray(captions["end"], dtype=np.float64)
    caps = captions["cap"]
    n = len(caps)
    if n == 0:
        raise ValueError("captions: the video has no captions to sample from")
    if starts.shape != (n,) or ends.shape != (n,):
        raise ValueError(f"captions: expected start/end of shape ({n},), got "
                         f"{starts.shape} and {ends.shape}")
    if not (np.isfinite(starts).all() and np.isfinite(ends).all()):
        raise ValueError("captions: start/end times must be finite")
    k = clips_per_video
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"clips_per_video: expected an integer >= 1, got {k!r}")
    _check_range("min_text_len", min_text_len, "max_text_len", max_text_len)
    _check_range("min_clip_len", min_clip_len, "max_clip_len", max_clip_len)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
    if not max_caption_span > 0:
        raise ValueError(f"max_caption_span: expected seconds > 0, got {max_caption_span!r}")

    if replacement:
        centres = rng.integers(0, n, size=k)
    else:
        reps = -(-k // n)
        centres = np.concatenate([rng.permutation(n) for _ in range(reps)])[:k]
    cap_lens = [len(c) for c in caps]
    rows = []
    for centre in centres.tolist():
        budget = int(rng.integers(min_text_len, max_text_len + 1))
        first, last, n_tok = _merge_captions(cap_lens, starts, ends, centre, budget,
                                             max_caption_span, rng)
        lo, hi = math.floor(starts[first]), math.ceil(ends[last - 1])
        c = int(rng.integers(lo, hi + 1)) if lo < hi else (lo + hi) // 2
        c = min(max(c, 0), n_frames - 1)
        length = int(rng.integers(min_clip_len, max_clip_len + 1))
        v0, v1 = _grow_clip(n_frames, c, length, rng)
        rows.append((first, v0, last, v1, n_tok, budget))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    tokens = []
    for first, _, last, _, _, _ in rows:
        merged = [t for j in range(first, last) for t in caps[j]]
        tokens.append(merged[:max_tokens])
    arr = np.asarray(rows, dtype=np.int64).reshape(k, 6)
    text_times = np.stack([starts[arr[:, 0]], ends[arr[:, 2] - 1]], 1).astype(np.float32)
    return VideoClips(
        video_spans=arr[:, [1, 3]].copy(),
        text_spans=arr[:, [0, 2]].copy(),
        text_times=text_times,
        tokens=tokens,
        n_tokens=arr[:, 4].copy(),
        text_budget=arr[:, 5].copy(),
    )


class ClipBatch(NamedTuple):
    """A pre-training batch: ``B`` videos x ``K`` clips, flattened video-major (``N = B*K``).

    Clip ``n`` belongs to video ``n // K``; within a video the clips are time-sorted, and the
    video-paragraph loss forms sequences from ``L = 8`` consecutive clips (so each video
    gives ``K / L`` sequences).

    Attributes
    ----------
    video : Tensor, shape (N, V, D)
        float32 clip features, zero-padded (``V = max_video_len``, 16).
    video_mask : Tensor, shape (N, V)
        bool, True on valid seconds.
    text_ids : Tensor, shape (N, T)
        int64 ``[CLS] tokens [SEP] PAD..``, ``T = max_tokens + 2`` (31).
    text_mask : Tensor, shape (N, T)
        bool, True on CLS, tokens and SEP.
    video_ids : list[str], length B
        Videos in batch order.
    video_index : Tensor, shape (N,)
        int64 index into ``video_ids`` of each clip.
    video_span : Tensor, shape (N, 2)
        int64 ``[start, end)`` seconds of each clip.
    text_span : Tensor, shape (N, 2)
        int64 ``[first, last + 1)`` caption indices of each clip's text.
    text_time : Tensor, shape (N, 2)
        float32 seconds covered by each clip's captions.
    """

    video: Tensor
    video_mask: Tensor
    text_ids: Tensor
    text_mask: Tensor
    video_ids: list[str]
    video_index: Tensor
    video_span: Tensor
    text_span: Tensor
    text_time: Tensor


def build_clip_batch(
    samples: Sequence[tuple[str, np.ndarray, VideoClips]],
    max_video_len: int = 16,
    max_tokens: int = 29,
) -> ClipBatch:
    """Stack per-video samples into a :class:`ClipBatch`.

    Parameters
    ----------
    samples : sequence of (video_id, features (T, D), VideoClips)
        One entry per video, all with the same ``K``.
    max_video_len : int
        ``V``; each clip keeps at most its first ``V`` seconds (16 in pre-training).
    max_tokens : int
        Text budget (29).

    Returns
    -------
    ClipBatch

    Notes
    -----
    ``docs/protocols.md`` §5.4 step 6 (``_build_video_seq``/``_build_text_seq``) and §2.1
    (video-major flattening of (64 videos, 16 clips) into 1024 rows).

    Examples
    --------
    >>> caps = {"start": np.array([0.0]), "end": np.array([5.0]), "cap": [[7, 8, 9] * 4]}
    >>> f = np.zeros((20, 4), np.float16)
    >>> s = sample_video_clips(f, caps, np.random.default_rng(0), clips_per_video=2)
    >>> b = build_clip_batch([("v", f, s)])
    >>> b.video.shape, b.text_ids.shape, b.video_index.tolist()
    (torch.Size([2, 16, 4]), torch.Size([2, 31]), [0, 0])
    """
    if not samples:
        raise ValueError("samples: expected at least one video")
    ks = {len(s[2].tokens) for s in samples}
    if len(ks) != 1:
        raise ValueError(f"samples: expected the same clips_per_video for every video, got {ks}")
    if isinstance(max_video_len, bool) or not isinstance(max_video_len, int) or max_video_len < 1:
        raise ValueError(f"max_video_len: expected an integer >= 1, got {max_video_len!r}")
    k = ks.pop()
    dims = {s[1].shape[1] for s in samples}
    if len(dims) != 1:
        raise ValueError(f"samples: expected one feature width D, got {sorted(dims)}")
    d = dims.pop()
    n = len(samples) * k
    video = torch.zeros(n, max_video_len, d, dtype=torch.float32)
    vmask = torch.zeros(n, max_video_len, dtype=torch.bool)
    tokens, ids = [], []
    for b, (vid, feats, clips) in enumerate(samples):
        ids.append(vid)
        tokens.extend(clips.tokens)
        for j, (v0, v1) in enumerate(clips.video_spans.tolist()):
            seg = np.asarray(feats[v0:v1][:max_video_len], dtype=np.float32)
            row = b * k + j
            video[row, : len(seg)] = torch.from_numpy(seg)
            vmask[row, : len(seg)] = True
    text = build_text_batch(tokens, max_tokens)

    def cat(name: str, dtype: torch.dtype) -> Tensor:
        return torch.from_numpy(np.concatenate([getattr(s[2], name) for s in samples])).to(dtype)

    return ClipBatch(
        video=video, video_mask=vmask, text_ids=text.input_ids, text_mask=text.attention_mask,
        video_ids=ids,
        video_index=torch.arange(len(samples)).repeat_interleave(k),
        video_span=cat("video_spans", torch.int64),
        text_span=cat("text_spans", torch.int64),
        text_time=cat("text_times", torch.float32),
    )


# ----------------------------------------------------------------------------- batching


def _seed_seq(*parts: int | str) -> np.random.SeedSequence:
    ints = [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) & 0xFFFFFFFF for p in parts]
    return np.random.SeedSequence(ints)


def plan_batches(
    video_ids: Sequence[str],
    videos_per_batch: int = 64,
    *,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = True,
    batch_multiple: int = 1,
) -> list[list[str]]:
    """Cut a video list into batches of ``videos_per_batch`` consecutive ids.

    Parameters
    ----------
    video_ids : sequence of str
        Video list (e.g. ``how2_s3d_val.lst`` order).
    videos_per_batch : int
        ``B`` (64).
    shuffle : bool
        Shuffle the list first with a generator seeded by ``(seed, epoch)``.
    seed, epoch : int
        Shuffle seed.
    drop_last : bool
        Drop an incomplete last batch.
    batch_multiple : int
        Round the number of batches down to a multiple of this (official validation: 8,
        "multi-GPU split integer batch").

    Returns
    -------
    list of list of str

    Notes
    -----
    ``docs/protocols.md`` §5.5: initial and validation batching are consecutive chunks of 64
    ids with the total rounded down to a multiple of 8 x 64.

    Examples
    --------
    >>> plan_batches([str(i) for i in range(7)], 2)
    [['0', '1'], ['2', '3'], ['4', '5']]
    >>> plan_batches([str(i) for i in range(7)], 2, batch_multiple=2)
    [['0', '1'], ['2', '3']]
    """
    for name, v in (("videos_per_batch", videos_per_batch), ("batch_multiple", batch_multiple)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    ids = list(video_ids)
    if shuffle:
        order = np.random.default_rng(_seed_seq(seed, epoch)).permutation(len(ids))
        ids = [ids[i] for i in order]
    batches = [ids[i : i + videos_per_batch] for i in range(0, len(ids), videos_per_batch)]
    if drop_last and batches and len(batches[-1]) < videos_per_batch:
        batches.pop()
    return batches[: len(batches) // batch_multiple * batch_multiple]


class How2Dataset(torch.utils.data.IterableDataset):
    """Stream of pre-training :class:`ClipBatch` es, one per ``videos_per_batch`` videos.

    Use with ``DataLoader(dataset, batch_size=None, num_workers=w)``: every item is already a
    batch. Batches are planned globally (consecutive or shuffled chunks of the video list, or
    an explicit ``batches=`` list, e.g. retrieval-augmented batches built elsewhere), then
    dealt to DDP ranks (``batches[rank::world_size]``) and to DataLoader workers
    (``[worker::n_workers]``), so no batch is produced twice. The sampling of each video is
    seeded by ``(seed, epoch, global batch index, video id)``: the stream does not depend on
    the number of ranks or workers.

    Parameters
    ----------
    features : ShardedFeatures
        Video features.
    captions : ShardedCaptions
        Pre-tokenised captions.
    video_ids : sequence of str, optional
        Videos to use (default: all of ``features``, in shard order).
    videos_per_batch : int
        ``B`` (64; 32 in the official low-memory advice).
    clips_per_video : int
        ``K`` (16).
    seed : int
        Seed of the shuffle and of the sampling.
    shuffle : bool
        Shuffle the video list every epoch (off: consecutive chunks in list order, the
        official initial/validation batching).
    drop_last : bool
        Drop an incomplete last batch, and batches that would give ranks unequal counts.
    batch_multiple : int
        Round the number of batches down to a multiple of this (official validation: 8).
    batches : sequence of sequence of str, optional
        Explicit batches (used as given, in order); overrides the planning above.
    rank, world_size : int
        DDP position.
    min_text_len, max_text_len, min_clip_len, max_clip_len, replacement :
        Passed to :func:`sample_video_clips`.
    max_len, max_video_len : int
        The official length budget: clips keep at most ``max_video_len`` seconds (16) and text
        at most ``max_len - max_video_len - 3`` tokens (48 - 16 - 3 = 29), so ``text_ids`` has
        ``max_len - max_video_len - 1`` = 31 columns.

    Notes
    -----
    Norton App. B: 64 videos x 16 clips, sequences of 8 consecutive clips (128 per batch);
    ``docs/protocols.md`` §5.4-5.5. Videos without captions or features are skipped and
    reported once per pass (``self.skipped``).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.text import load_tokenizer
    >>> d = Path(tempfile.mkdtemp())
    >>> vids = ["a", "b", "c", "d"]
    >>> _ = write_feature_shards([(v, np.ones((30, 4))) for v in vids], d / "f", "train", dim=4)
    >>> caps = {v: {"start": [0.0, 9.0], "end": [8.0, 20.0], "text": ["crack the eggs",
    ...         "whisk them well"]} for v in vids}
    >>> _ = write_caption_shards(caps, load_tokenizer(), {0: vids}, d / "c", "train")
    >>> feats = ShardedFeatures(d / "f", "train", expected_dim=4)
    >>> ds = How2Dataset(feats, ShardedCaptions(d / "c", "train", feats), videos_per_batch=2,
    ...                  shuffle=False, rank=1, world_size=2)
    >>> [b.video_ids for b in ds], next(iter(ds)).video.shape
    ([['c', 'd']], torch.Size([32, 16, 4]))
    """

    def __init__(
        self,
        features: ShardedFeatures,
        captions: ShardedCaptions,
        video_ids: Sequence[str] | None = None,
        *,
        videos_per_batch: int = 64,
        clips_per_video: int = 16,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        batch_multiple: int = 1,
        batches: Sequence[Sequence[str]] | None = None,
        rank: int = 0,
        world_size: int = 1,
        min_text_len: int = 8,
        max_text_len: int = 32,
        min_clip_len: int = 3,
        max_clip_len: int = 16,
        max_len: int = 48,
        max_video_len: int = 16,
        replacement: bool = True,
    ):
        super().__init__()
        max_tokens = text_tokens_budget(max_len, max_video_len)
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size: expected an integer >= 1, got {world_size!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank: expected an integer in [0, {world_size}), got {rank!r}")
        if isinstance(clips_per_video, bool) or not isinstance(clips_per_video, int) \
                or clips_per_video < 1:
            raise ValueError(f"clips_per_video: expected an integer >= 1, got {clips_per_video!r}")
        _check_range("min_text_len", min_text_len, "max_text_len", max_text_len)
        _check_range("min_clip_len", min_clip_len, "max_clip_len", max_clip_len)
        self.features, self.captions = features, captions
        self.video_ids = list(video_ids) if video_ids is not None else features.ids
        for i, v in enumerate(self.video_ids):
            _check_video_id(f"video_ids[{i}]", v)
        if batches is not None:
            batches = [list(b) for b in batches]
            for i, b in enumerate(batches):
                if not b or not all(isinstance(v, str) and v for v in b):
                    raise ValueError(f"batches[{i}]: expected a non-empty list of video ids")
        self.batches = batches
        self.videos_per_batch, self.clips_per_video = videos_per_batch, clips_per_video
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.batch_multiple, self.rank, self.world_size = batch_multiple, rank, world_size
        self.sampler_kwargs = dict(
            clips_per_video=clips_per_video, min_text_len=min_text_len,
            max_text_len=max_text_len, min_clip_len=min_clip_len, max_clip_len=max_clip_len,
            max_tokens=max_tokens, replacement=replacement,
        )
        self.max_video_len, self.max_tokens = max_video_len, max_tokens
        self.epoch = 0
        self.skipped = SkipReport("how2 videos")
        plan_batches(self.video_ids, videos_per_batch, batch_multiple=batch_multiple)  # validate

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (changes the shuffle and the sampling)."""
        self.epoch = int(epoch)

    def global_batches(self) -> list[list[str]]:
        """All batches of this epoch, before rank/worker sharding."""
        if self.batches is not None:
            return [list(b) for b in self.batches]
        return plan_batches(self.video_ids, self.videos_per_batch, shuffle=self.shuffle,
                            seed=self.seed, epoch=self.epoch, drop_last=self.drop_last,
                            batch_multiple=self.batch_multiple)

    def _rank_batches(self) -> list[tuple[int, list[str]]]:
        batches = list(enumerate(self.global_batches()))
        if self.drop_last:
            batches = batches[: len(batches) // self.world_size * self.world_size]
        return batches[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self._rank_batches())

    def make_batch(self, index: int, video_ids: Sequence[str]) -> ClipBatch | None:
        """Sample and stack one batch (``index`` = global batch index, part of the seed)."""
        samples = []
        for vid in video_ids:
            if vid not in self.features:
                self.skipped.add(vid, "no features")
                continue
            if vid not in self.captions:
                self.skipped.add(vid, "no captions")
                continue
            caps = self.captions[vid]
            if not caps["cap"]:
                self.skipped.add(vid, "no captions")
                continue
            feats = self.features[vid]
            rng = np.random.default_rng(_seed_seq(self.seed, self.epoch, index, vid))
            samples.append((vid, feats, sample_video_clips(feats, caps, rng,
                                                           **self.sampler_kwargs)))
        if not samples:
            return None
        return build_clip_batch(samples, self.max_video_len, self.max_tokens)

    def __iter__(self) -> Iterator[ClipBatch]:
        self.skipped = SkipReport("how2 videos")
        mine = self._rank_batches()
        info = torch.utils.data.get_worker_info()
        if info is not None:
            mine = mine[info.id :: info.num_workers]
        for index, vids in mine:
            batch = self.make_batch(index, vids)
            if batch is not None:
                yield batch
        self.skipped.emit()
