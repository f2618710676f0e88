"""What the HowTo100M feature and caption shards share, and the video lists that order them.

A shard is a pair of ``.npy`` files: ``*_starts.npy`` holds int64 offsets (length
``n_videos + 1``, ``starts[0] = 0``, ``starts[-1] = len(data)``) and ``*_data.npy`` the rows of
the videos concatenated. This module holds the streamed ``.npy`` writer, the offset and data
checks of the readers, the file-name checks and ``how2_s3d_{split}.lst`` (:func:`read_video_list`).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ...io import atomic_write, load_npy
from ..features import SkipReport

__all__ = ["ShardWriteResult", "ShardIndex", "read_video_list"]


class ShardIndex(Mapping):
    """The video-id side of a shard reader: ``meta`` ``{shard_idx: [video_id, ...]}`` and
    ``_index`` ``{video_id: where}``, set by the subclass; iteration is in shard order."""

    meta: dict[int, list[str]]
    _index: dict[str, Any]

    def __iter__(self) -> Iterator[str]:
        for ids in self.meta.values():
            yield from ids

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index


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
