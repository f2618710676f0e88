"""HowTo100M feature shards: their writers and :class:`ShardedFeatures`, the memory-mapped reader.

:func:`write_feature_shards` streams ``(video_id, features)`` pairs; :func:`shard_feature_dir`
shards a folder of per-video ``<video_id>.npy`` files.

Files (``docs/protocols.md`` §5.3, ``shard_feature.py``)::

    feat_shard/{split}_{s}_starts.npy     int64 offsets, length n_videos + 1
    feat_shard/{split}_{s}_data.npy       float16 (sum T, 512), videos concatenated
    feat_shard/{split}_meta.pkl           {shard_idx: [video_id, ...]} (plain dict pickle)

The writers stream (at most one video in memory) and are atomic; the meta file is written last.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from ...io import atomic_save_npy, atomic_write, safe_pickle_load
from ..features import FEATURE_DIM, SkipReport, feature_path, load_feature
from .shard_files import (
    ShardIndex,
    ShardWriteResult,
    _check_split,
    _check_video_id,
    _load_starts,
    _NpyStream,
    _open_data,
    _remove_stale,
    _write_meta,
)

__all__ = ["write_feature_shards", "shard_feature_dir", "ShardedFeatures"]


class _FeatureShardStream:
    """Write ``{split}_{s}_data.npy`` shards of ``shard_size`` videos in turn, with their offsets.

    ``meta`` is ``{shard_idx: [video_id, ...]}`` of the videos added so far.
    """

    def __init__(self, out_dir: Path, split: str, shard_size: int, dim: int):
        self.out_dir, self.split, self.shard_size, self.dim = out_dir, split, shard_size, dim
        self.meta: dict[int, list[str]] = {}
        self.shard, self._ctx, self._stream, self._starts = -1, None, None, [0]

    def add(self, vid: str, rows: np.ndarray) -> None:
        """Append one video's float16 rows, opening the next shard when this one is full."""
        if self._stream is None or len(self.meta[self.shard]) >= self.shard_size:
            self.close()
            self.shard += 1
            self.meta[self.shard], self._starts = [], [0]
            self._ctx = atomic_write(self.out_dir / f"{self.split}_{self.shard}_data.npy", "wb")
            self._stream = _NpyStream(self._ctx.__enter__(), np.float16, self.dim)
        self._stream.append(rows)
        self._starts.append(self._starts[-1] + len(rows))
        self.meta[self.shard].append(vid)

    def close(self) -> None:
        """Finish the open shard: its data file, then its offsets."""
        if self._ctx is not None:
            self._stream.finish()
            self._ctx.__exit__(None, None, None)
            atomic_save_npy(self.out_dir / f"{self.split}_{self.shard}_starts.npy",
                            np.asarray(self._starts, np.int64))
            self._ctx, self._stream = None, None

    def abort(self, e: BaseException) -> None:
        """Give up the open shard after ``e`` (removes its temporary data file)."""
        if self._ctx is not None:
            self._ctx.__exit__(type(e), e, e.__traceback__)


def _check_feature_item(i: int, item: object, dim: int, seen: set[str]) -> tuple[str, np.ndarray]:
    """The video id and float16 ``(T, dim)`` features of ``items[i]``; ValueError naming it."""
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
    return vid, arr16


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
    shards = _FeatureShardStream(out_dir, split, shard_size, dim)
    seen: set[str] = set()
    n_rows = 0
    try:
        for i, item in enumerate(items):
            vid, arr16 = _check_feature_item(i, item, dim, seen)
            shards.add(vid, arr16)
            seen.add(vid)
            n_rows += len(arr16)
        shards.close()
    except BaseException as e:
        shards.abort(e)  # removes the temporary file
        raise
    meta = shards.meta
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


class ShardedFeatures(ShardIndex):
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

    @property
    def ids(self) -> list[str]:
        """Video ids in shard order."""
        return list(self)
