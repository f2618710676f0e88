"""Per-video S3D feature files: loading, validation, skip accounting and installation.

Every dataset in the released layout stores one ``<video_id>.npy`` per video: float16 (or
float32) features of shape ``(T, D)``, one 512-d S3D vector per second (Norton App. B:
"one video token per second at 30 fps"). All readers go through :func:`load_feature`, so a
missing, truncated, wrong-rank, wrong-width or non-finite file always fails the same way: with
an error naming the file.

Where the official pipeline *skips* an item (a video without a feature file in YouCookII and
COIN, an unreadable file while sharding HowTo100M), the readers record it in a
:class:`SkipReport` and report all skips once, at the end, with a single
:class:`SkippedItemsWarning`. Anything else is an error.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..io import atomic_write, load_npy
from .layout import DataRoot

__all__ = [
    "FEATURE_DIM",
    "SkippedItemsWarning",
    "SkipReport",
    "ClipSet",
    "load_feature",
    "feature_path",
    "pad_clips",
    "sliding_windows",
    "windowed_video",
    "read_json",
    "read_table",
    "resolve_paths",
    "install_file",
    "install_features",
]

FEATURE_DIM = 512  # S3D (HowTo100M MIL-NCE) video embedding width


class SkippedItemsWarning(UserWarning):
    """Items were skipped the way the official pipeline skips them (summary in the message)."""


@dataclass
class SkipReport:
    """Counts of skipped items per reason, reported once.

    Parameters
    ----------
    what : str
        What is being read, used in the summary (e.g. ``"youcook clips"``).

    Examples
    --------
    >>> r = SkipReport("youcook clips")
    >>> r.add("vid1", "no feature file")
    >>> r.add("vid2", "no feature file")
    >>> len(r), r.counts["no feature file"]
    (2, 2)
    >>> r.summary()
    'youcook clips: skipped 2 item(s): 2 no feature file (e.g. vid1, vid2)'
    """

    what: str
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    _emitted: bool = field(default=False, repr=False)

    def add(self, key: str, reason: str) -> None:
        """Record that item ``key`` was skipped for ``reason``."""
        self.counts[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(str(key))

    def __len__(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: how many items were skipped, per reason, with a few example keys."""
        parts = [
            f"{n} {reason} (e.g. {', '.join(self.examples[reason])})"
            for reason, n in sorted(self.counts.items())
        ]
        return f"{self.what}: skipped {len(self)} item(s): " + "; ".join(parts)

    def emit(self) -> None:
        """Warn once with :meth:`summary` if anything was skipped (later calls do nothing)."""
        if len(self) and not self._emitted:
            self._emitted = True
            warnings.warn(self.summary(), SkippedItemsWarning, stacklevel=2)


def feature_path(feature_dir: str | os.PathLike, video_id: str) -> Path:
    """``<feature_dir>/<video_id>.npy`` (the layout of every released feature folder).

    >>> feature_path("/data/msrvtt/feats", "video7010")
    PosixPath('/data/msrvtt/feats/video7010.npy')
    """
    if not isinstance(video_id, str) or not video_id or "/" in video_id or video_id in (".", ".."):
        raise ValueError(f"video_id: expected a non-empty file-name-safe string, got {video_id!r}")
    return Path(feature_dir) / f"{video_id}.npy"


def load_feature(
    path: str | os.PathLike, expected_dim: int = FEATURE_DIM, *, mmap: bool = False
) -> np.ndarray:
    """Load one per-video feature file and check it.

    Parameters
    ----------
    path : path-like
        A ``.npy`` file holding features of shape ``(T, D)``, one row per second.
    expected_dim : int
        Required width ``D`` (512 for S3D).
    mmap : bool
        Memory-map the file read-only instead of reading it (finite-ness is still checked).

    Returns
    -------
    numpy.ndarray, shape (T, D)
        float16 or float32 as stored (float64 is converted to float32), ``T >= 1``.

    Raises
    ------
    FileNotFoundError
        The file does not exist (message names the file).
    ValueError
        The file is truncated or not an ``.npy`` array, is not 2-D, has the wrong width, is
        not floating point, has no rows, or holds NaN/inf; the message names the file.

    Notes
    -----
    Norton App. B: video tokens are S3D features, one per second at 30 fps; the official
    extractor stores them L2-normalised as float16 (``docs/protocols.md`` §1).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "v.npy"
    >>> np.save(p, np.ones((3, 4), np.float16))
    >>> load_feature(p, expected_dim=4).shape
    (3, 4)
    >>> load_feature(p, expected_dim=512)
    Traceback (most recent call last):
    ...
    ValueError: .../v.npy: expected features of shape (T, 512), got (3, 4)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: feature file not found")
    arr = load_npy(path, mmap=mmap)
    if arr.ndim != 2 or arr.shape[1] != expected_dim:
        raise ValueError(
            f"{path}: expected features of shape (T, {expected_dim}), got {tuple(arr.shape)}"
        )
    if arr.dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(f"{path}: expected float16/float32 features, got dtype {arr.dtype}")
    if arr.shape[0] == 0:
        raise ValueError(f"{path}: feature file has 0 rows (T = 0 seconds)")
    finite = np.isfinite(arr)
    if not finite.all():
        row = int(np.argwhere(~finite)[0, 0])
        raise ValueError(
            f"{path}: expected finite features, found {int((~finite).sum())} NaN/inf values "
            f"(first in row {row})"
        )
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return arr


class ClipSet(NamedTuple):
    """Padded video clips with one caption each (clip-level retrieval sets).

    Attributes
    ----------
    video : Tensor, shape (B, V, D)
        float32 features, zero-padded after each clip's valid seconds.
    video_mask : Tensor, shape (B, V)
        bool, True on valid seconds.
    video_ids : list[str], length B
        Parent video of each clip.
    keys : list[str], length B
        Record id of each clip (``"<video_id>_<clip_idx>"`` for YouCookII, the csv ``key``
        for MSR-VTT).
    captions : list[str], length B
        Caption text of each clip.
    spans : Tensor, shape (B, 2)
        int64 ``[start, end)`` seconds of the clip inside its video (before the ``V`` cut).
    skipped : SkipReport
        Records skipped the way the official pipeline skips them.
    """

    video: Tensor
    video_mask: Tensor
    video_ids: list[str]
    keys: list[str]
    captions: list[str]
    spans: Tensor
    skipped: SkipReport


def pad_clips(clips: Sequence[np.ndarray], max_video_len: int) -> tuple[Tensor, Tensor]:
    """Stack variable-length clips into a zero-padded float32 tensor, keeping the first seconds.

    Parameters
    ----------
    clips : sequence of numpy.ndarray, each shape (T_i, D)
        Clip features; ``T_i`` may exceed ``max_video_len`` (only the first seconds are kept,
        as the official ``DSAligner`` does).
    max_video_len : int
        ``V``, the padded length.

    Returns
    -------
    video : Tensor, shape (B, V, D)
        float32.
    video_mask : Tensor, shape (B, V)
        bool, True on valid seconds.

    Notes
    -----
    ``docs/protocols.md`` §3.2: ``vfeats`` is float32 ``(max_video_len, 512)``, zero-padded,
    and ``vmasks`` a bool of length ``max_video_len``.

    Examples
    --------
    >>> v, m = pad_clips([np.ones((3, 2)), np.ones((1, 2))], max_video_len=2)
    >>> v.shape, m.tolist()
    (torch.Size([2, 2, 2]), [[True, True], [True, False]])
    """
    if isinstance(max_video_len, bool) or not isinstance(max_video_len, int) or max_video_len < 1:
        raise ValueError(f"max_video_len: expected an integer >= 1, got {max_video_len!r}")
    if len(clips) == 0:
        raise ValueError("clips: expected at least one clip, got an empty sequence")
    dims = {c.shape[1] if c.ndim == 2 else None for c in clips}
    if len(dims) != 1 or None in dims:
        shapes = sorted({tuple(c.shape) for c in clips})[:4]
        raise ValueError(f"clips: expected 2-D arrays (T_i, D) with one common D, got {shapes}")
    d = dims.pop()
    video = torch.zeros(len(clips), max_video_len, d, dtype=torch.float32)
    mask = torch.zeros(len(clips), max_video_len, dtype=torch.bool)
    for i, c in enumerate(clips):
        n = min(len(c), max_video_len)
        if n:
            video[i, :n] = torch.from_numpy(np.asarray(c[:n], dtype=np.float32))
            mask[i, :n] = True
    return video, mask


def sliding_windows(n_frames: int, size: int, stride: int) -> np.ndarray:
    """``[start, end)`` windows of ``size`` seconds every ``stride`` seconds, the last one partial.

    Windows start at ``0, stride, 2*stride, ...``; the scan stops after the first window that
    reaches the end of the video (``T - start <= size``).

    Parameters
    ----------
    n_frames : int
        ``T``, seconds of features.
    size, stride : int
        Window length and step (YouCookII with background: 16 / 16; COIN: 32 / 8 for
        training and 32 / 16 for testing).

    Returns
    -------
    numpy.ndarray, shape (W, 2)
        int64 ``[start, min(start + size, T))``.

    Notes
    -----
    ``docs/protocols.md`` §7.4 (``YoucookFullVideoBGAligner``) and §7.7
    (``COINActionSegmentationAligner``) use this loop.

    Examples
    --------
    >>> sliding_windows(40, 16, 16).tolist()
    [[0, 16], [16, 32], [32, 40]]
    >>> sliding_windows(40, 32, 16).tolist()
    [[0, 32], [16, 40]]
    """
    for name, v in (("n_frames", n_frames), ("size", size), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    out = []
    for start in range(0, int(n_frames), int(stride)):
        out.append((start, min(start + size, n_frames)))
        if n_frames - start <= size:
            break
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def windowed_video(feature_dir: str | os.PathLike, video_id: str, expected_dim: int, size: int,
                   stride: int, max_video_len: int
                   ) -> tuple[np.ndarray, np.ndarray, Tensor, Tensor]:
    """One video's features cut into :func:`sliding_windows` and padded (:func:`pad_clips`).

    Returns
    -------
    feats : numpy.ndarray, shape (T, D)
        The whole video, as :func:`load_feature` reads it.
    spans : numpy.ndarray, shape (W, 2)
        ``[start, end)`` of each window.
    windows : Tensor, shape (W, max_video_len, D), and mask : Tensor, shape (W, max_video_len)
        The padded windows and their valid-second mask.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> np.save(d / "v.npy", np.ones((40, 4), np.float16))
    >>> feats, spans, windows, mask = windowed_video(d, "v", 4, 16, 16, 16)
    >>> spans.tolist(), tuple(windows.shape), mask.sum(1).tolist()
    ([[0, 16], [16, 32], [32, 40]], (3, 16, 4), [16, 16, 8])
    """
    feats = load_feature(feature_path(feature_dir, video_id), expected_dim)
    spans = sliding_windows(len(feats), size, stride)
    windows, mask = pad_clips([feats[s:e] for s, e in spans], max_video_len)
    return feats, spans, windows, mask


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; missing or malformed files raise errors naming the file.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = p.write_text("{oops")
    >>> read_json(p)
    Traceback (most recent call last):
    ...
    ValueError: .../a.json: not valid JSON (line 1, column 2): Expecting property name ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}"
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 JSON file: {e}") from None


def read_table(
    path: str | os.PathLike, required: Sequence[str], *, sep: str = ","
) -> list[dict[str, str]]:
    """Rows of a delimited text file with a header, checking the required columns exist.

    Parameters
    ----------
    path : path-like
        A ``.csv`` (``sep=","``) or tab-separated (``sep="\\t"``) file.
    required : sequence of str
        Column names that must be present (extra columns are allowed).
    sep : str
        Field separator.

    Returns
    -------
    list of dict
        One ``{column: value}`` per data row.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text('video_id,sentence\\nvideo1,"a man, cooking"\\n')
    >>> read_table(p, ["video_id", "sentence"])
    [{'video_id': 'video1', 'sentence': 'a man, cooking'}]
    >>> read_table(p, ["vid_key"])
    Traceback (most recent call last):
    ...
    ValueError: .../t.csv: expected columns ['vid_key'], got header ['video_id', 'sentence']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=sep)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file, expected a header with {list(required)}")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(f"{path}: expected columns {list(required)}, got header {header}")
            rows = []
            for line, rec in enumerate(reader, start=2):
                if not rec or all(not x.strip() for x in rec):
                    continue
                if len(rec) != len(header):
                    raise ValueError(
                        f"{path}: line {line}: expected {len(header)} fields "
                        f"(sep {sep!r}), got {len(rec)}"
                    )
                rows.append(dict(zip(header, rec)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a readable text table: {e}") from None
    return rows


def resolve_paths(data_root: Any, **paths: Any) -> dict[str, Path]:
    """Fill unset paths from a :class:`~nortonkit.data.layout.DataRoot` (explicit ones win).

    Parameters
    ----------
    data_root : DataRoot, path-like or None
        The data root; ``None`` requires every path to be given.
    **paths : (path-like or None, str)
        ``name=(explicit_path, DataRoot attribute)``.

    Returns
    -------
    dict[str, Path]

    Examples
    --------
    >>> resolve_paths("/data", coin_json=(None, "coin_json"))
    {'coin_json': PosixPath('/data/coin/COIN.json')}
    """

    root = None if data_root is None else (
        data_root if isinstance(data_root, DataRoot) else DataRoot(data_root))
    out = {}
    for name, (explicit, attr) in paths.items():
        if explicit is not None:
            out[name] = Path(explicit)
        elif root is None:
            raise ValueError(
                f"{name}: expected a path (or a data_root to derive it from), got None"
            )
        else:
            out[name] = Path(getattr(root, attr))
    return out


def install_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    mode: Literal["copy", "symlink", "hardlink"] = "copy",
) -> bool:
    """Place one released file at its data-root path; skip it when already identical.

    Parameters
    ----------
    src, dst : path-like
        Source file and destination path.
    mode : {"copy", "symlink", "hardlink"}
        Copies are atomic (complete or absent).

    Returns
    -------
    bool
        True when something was written, False when ``dst`` already matched ``src``.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("x")
    >>> src, dst = d / "a.txt", d / "sub" / "a.txt"
    >>> install_file(src, dst), install_file(src, dst)
    (True, False)
    """
    if mode not in ("copy", "symlink", "hardlink"):
        raise ValueError(f"mode: expected one of ('copy', 'symlink', 'hardlink'), got {mode!r}")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: file not found")
    if dst.exists():
        if src.resolve() == dst.resolve():
            return False
        if dst.stat().st_size == src.stat().st_size and _same_bytes(src, dst):
            return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    if mode == "symlink":
        dst.symlink_to(src.resolve())
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 20)
    return True


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def install_features(
    src_dir: str | os.PathLike,
    dst_dir: str | os.PathLike,
    video_ids: Iterable[str],
    *,
    expected_dim: int = FEATURE_DIM,
    mode: Literal["copy", "symlink", "hardlink"] = "copy",
    progress: Callable[[Iterable[str]], Iterable[str]] | None = None,
    what: str = "features",
) -> SkipReport:
    """Validate ``<src_dir>/<vid>.npy`` files and place them at ``<dst_dir>/<vid>.npy``.

    Every file goes through :func:`load_feature` (a corrupt file raises, naming it); a missing
    one is skipped and counted. Files already present at the destination with the same size are
    left alone, so re-runs are cheap. Copies are atomic.

    Parameters
    ----------
    src_dir, dst_dir : path-like
        Source folder of released features and the folder of the data-root layout.
    video_ids : iterable of str
        Videos to install.
    expected_dim : int
        Feature width ``D``.
    mode : {"copy", "symlink", "hardlink"}
        How to place each file.
    progress : callable, optional
        Wraps the id iterable (e.g. ``tqdm``).
    what : str
        Name used in the skip report.

    Returns
    -------
    SkipReport
        Missing source files (not yet emitted).

    Notes
    -----
    The layout is ``nortonkit.data.layout.DataRoot``; the feature format is Norton App. B
    (one S3D vector per second).

    Examples
    --------
    >>> import tempfile
    >>> src, dst = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> np.save(src / "a.npy", np.zeros((2, 4), np.float16))
    >>> report = install_features(src, dst, ["a", "b"], expected_dim=4)
    >>> sorted(p.name for p in dst.iterdir()), report.counts["no feature file"]
    (['a.npy'], 1)
    """
    if mode not in ("copy", "symlink", "hardlink"):
        raise ValueError(f"mode: expected one of ('copy', 'symlink', 'hardlink'), got {mode!r}")
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: feature folder not found")
    dst_dir.mkdir(parents=True, exist_ok=True)
    report = SkipReport(what)
    ids = list(video_ids)
    for vid in progress(ids) if progress is not None else ids:
        src, dst = feature_path(src_dir, vid), feature_path(dst_dir, vid)
        if not src.is_file():
            report.add(vid, "no feature file")
            continue
        load_feature(src, expected_dim, mmap=True)
        if dst.exists() and (
            src.resolve() == dst.resolve() or dst.stat().st_size == src.stat().st_size
        ):
            continue  # feature files are large: equal size counts as already installed
        install_file(src, dst, mode)
    return report


def converter_parser(prog: str, doc: str, folder: str,
                     inputs: Sequence[tuple[str, str, bool]] = ()) -> argparse.ArgumentParser:
    """The argument parser shared by ``data_recipes/convert_*.py``.

    Every converter takes ``--root`` (the data root; files go to ``<root>/<folder>/``),
    ``--features`` (a folder of released ``<video_id>.npy`` S3D features), ``--mode``, ``--dim``
    and ``--quiet``; ``inputs`` adds the dataset's own files as ``(flag, help, required)``.

    Examples
    --------
    >>> p = converter_parser("convert_x.py", "Convert X.", "x", [("--json", "x.json", True)])
    >>> a = p.parse_args(["--root", "r", "--features", "f", "--json", "j"])
    >>> a.root, a.json, a.mode, a.dim, a.quiet
    ('r', 'j', 'copy', 512, False)
    """
    p = argparse.ArgumentParser(prog=prog, description=doc.strip().split("\n")[0])
    p.add_argument("--root", required=True, help=f"data root (files go to <root>/{folder}/)")
    for flag, help_text, required in inputs:
        p.add_argument(flag, required=required, help=help_text)
    p.add_argument("--features", required=True, help="folder of <video_id>.npy S3D features")
    p.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy",
                   help="how feature files are placed (copy)")
    p.add_argument("--dim", type=int, default=FEATURE_DIM, help=f"feature width ({FEATURE_DIM})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def install_converter_features(args: argparse.Namespace, dst_dir: str | os.PathLike,
                               video_ids: Iterable[str], what: str) -> SkipReport:
    """:func:`install_features` with a converter's ``--features/--dim/--mode/--quiet``."""
    progress = None
    if not args.quiet:
        from tqdm.auto import tqdm  # noqa: PLC0415 -- optional heavy dependency (tqdm)

        progress = partial(tqdm, desc=f"{what} features", unit="video")
    return install_features(args.features, dst_dir, video_ids, expected_dim=args.dim,
                            mode=args.mode, progress=progress, what=f"{what} videos")
