"""HTM-Align: HowTo100M videos with manually checked sentence alignments (80 videos, 49k sentences).

Files (``docs/protocols.md`` §7.8)::

    how2-align/htm_align.json   {vid: [[alignable 0/1, start, end, text], ...]}
    how2-align/<vid>.npy        S3D features, one per second

For an alignable sentence ``[start, end]`` is the annotated (true) segment; a non-alignable one
keeps its original ASR timestamps. The evaluation slides windows of 32 s with a step of 8 s and
scores each window against an "active" range of sentences chosen from the *non-alignable*
sentences' timestamps only, so the ground truth does not leak into the windowing. Each window
is zero-padded to ``max_video_len`` (32) seconds with a False mask on the padding, as the official
script pads it (:func:`pad_windows`). This module returns everything the evaluator needs; the hit
rule and the recall live with the metrics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .features import (
    FEATURE_DIM,
    SkipReport,
    feature_path,
    load_feature,
    pad_clips,
    read_json,
    resolve_paths,
)

__all__ = ["HTMAlignVideo", "HTMAlignSet", "active_text_windows", "pad_windows",
           "load_htm_align"]

TailRule = Literal["official", "all_sentences"]


def active_text_windows(
    n_frames: int,
    mid_times: np.ndarray,
    alignable: np.ndarray,
    window: int = 32,
    step: int | None = None,
    edge_windows: int = 4,
    tail_rule: TailRule = "official",
) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and the active sentence range of each window (HTM-Align protocol).

    Starts are ``arange(0, T - window // 2, step)``. For the window at ``s``, the non-alignable
    sentences whose mid-time lies in ``[s - window, s + 2 * window]`` are found; the active
    range runs from the smallest to the largest of their indices (inclusive). In the first
    ``edge_windows`` windows it starts at sentence 0; otherwise, in the last ``edge_windows``
    windows it is extended towards the last sentence (an ``elif``: a window that is both keeps
    only the start extension, as the official script does). Windows with no such sentence are
    dropped.

    The official tail extension sets the last index to ``T`` (seconds), not to ``S - 1``
    (sentences): ``text_window_right = vlen`` then ``mask[left : vlen + 1] = True``, so the
    range ends at sentence ``min(T, S - 1)``. The two agree unless a video has more than
    ``T + 1`` sentences.

    Parameters
    ----------
    n_frames : int
        ``T``, seconds of features.
    mid_times : numpy.ndarray, shape (S,)
        ``(start + end) / 2`` of every sentence.
    alignable : numpy.ndarray, shape (S,)
        bool alignable flags.
    window : int
        Window length (32 s).
    step : int, optional
        Window step (default ``window // 4`` = 8 s).
    edge_windows : int
        Windows at each end whose range is extended (4).
    tail_rule : {"official", "all_sentences"}
        ``"official"``: the last ``edge_windows`` windows run to sentence ``min(T, S - 1)``, as
        ``eval_zeroshot_align.py`` indexes them; ``"all_sentences"``: to sentence ``S - 1``.

    Returns
    -------
    starts : numpy.ndarray, shape (W,)
        int64 start second of each kept window.
    text_ranges : numpy.ndarray, shape (W, 2)
        int64 ``[first, last + 1)`` active sentence indices.

    Notes
    -----
    ``docs/protocols.md`` §7.8 (``N:eval_zeroshot_align.py``, ``test_alignment_htm``); Norton
    App. D ("a sliding window approach ... window size of 32 seconds and a step size of 8
    seconds").

    Examples
    --------
    >>> mids = np.array([5.0, 20.0, 50.0, 90.0, 130.0])
    >>> al = np.array([False, True, False, False, True])
    >>> s, r = active_text_windows(150, mids, al, edge_windows=2)
    >>> s.tolist()  # 128 is dropped: no non-alignable mid-time in [96, 192]
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120]
    >>> r[[0, 5, 14, 15]].tolist()  # windows 0-1 start at 0; window 15 of 17 runs to the end
    [[0, 3], [2, 4], [3, 4], [3, 5]]
    >>> mids = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])  # 6 sentences in T = 3 seconds
    >>> active_text_windows(3, mids, np.zeros(6, bool), window=2, step=1, edge_windows=1,
    ...                     tail_rule="official")[1].tolist()  # the tail stops at sentence T
    [[0, 6], [0, 4]]
    """
    if tail_rule not in ("official", "all_sentences"):
        raise ValueError(f"tail_rule: expected one of ('official', 'all_sentences'), got "
                         f"{tail_rule!r}")
    step = window // 4 if step is None else step
    for name, v in (("window", window), ("step", step), ("edge_windows", edge_windows)):
        low = 0 if name == "edge_windows" else 1
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    mid_times = np.asarray(mid_times, dtype=np.float64)
    alignable = np.asarray(alignable, dtype=bool)
    if mid_times.shape != alignable.shape or mid_times.ndim != 1:
        raise ValueError(f"mid_times: expected shape {alignable.shape} like alignable, "
                         f"got {mid_times.shape}")
    grid = np.arange(0, n_frames - window // 2, step)
    idx_na = np.flatnonzero(~alignable)
    mid_na = mid_times[idx_na]
    n_text = len(mid_times)
    starts, ranges = [], []
    for k, s in enumerate(grid.tolist()):
        active = idx_na[(s - window <= mid_na) & (mid_na <= s + 2 * window)]
        if len(active) == 0:
            continue
        first, last = int(active.min()), int(active.max())
        if k < edge_windows:
            first = 0
        elif k >= len(grid) - edge_windows:
            last = n_text - 1 if tail_rule == "all_sentences" else min(n_frames, n_text - 1)
        if last < first:  # the official tail can empty the range: the window is skipped
            continue
        starts.append(s)
        ranges.append((first, last + 1))
    return (np.asarray(starts, dtype=np.int64),
            np.asarray(ranges, dtype=np.int64).reshape(-1, 2))


def pad_windows(features: np.ndarray, spans: np.ndarray,
                max_video_len: int = 32) -> tuple[Tensor, Tensor]:
    """The evaluation windows of one video, zero-padded as the official script pads them.

    Window ``w`` holds the seconds ``features[s_w : e_w]`` followed by ``max_video_len -
    (e_w - s_w)`` zero vectors; its mask is True on the real seconds only. The video encoder
    then sees ``[CLS, f_1..f_V, SEP]`` with ``V = max_video_len`` (SEP at position ``V + 1``
    whatever the window's length) and the CLS attended, and only the frame outputs of the
    real seconds are scored.

    Parameters
    ----------
    features : numpy.ndarray, shape (T, D)
        The whole video.
    spans : numpy.ndarray, shape (W, 2)
        int ``[start, end)`` seconds of each window, ``end - start <= max_video_len``.
    max_video_len : int
        ``V``, the padded length: the model's ``max_video_len`` (32 in
        ``test_how2align_zs.yaml``).

    Returns
    -------
    windows : Tensor, shape (W, V, D)
        float32.
    window_mask : Tensor, shape (W, V)
        bool, True on the window's real seconds.

    Raises
    ------
    ValueError
        a window longer than ``max_video_len`` (the official padding would be negative).

    Notes
    -----
    ``docs/protocols.md`` §7.8 and §3.7 (``MMPTModel`` pads to ``max_video_len``);
    ``N:eval_zeroshot_align.py::get_text_visual_sim``: ``padding = zeros(bsz, max_video_len -
    seq_len, D)``, ``vmasks = [ones(seq_len), zeros(max_video_len - seq_len)]``.

    Examples
    --------
    >>> w, m = pad_windows(np.ones((40, 2)), np.array([[0, 32], [32, 40]]))
    >>> tuple(w.shape), m.sum(1).tolist(), float(w[1, 8:].abs().sum())
    ((2, 32, 2), [32, 8], 0.0)
    """
    spans = np.asarray(spans).reshape(-1, 2)
    lengths = spans[:, 1] - spans[:, 0]
    if len(spans) and int(lengths.max()) > max_video_len:
        raise ValueError(f"max_video_len: expected at least the longest window "
                         f"({int(lengths.max())} s), got {max_video_len!r}")
    if len(spans) == 0:
        d = features.shape[1]
        return (torch.zeros(0, max_video_len, d, dtype=torch.float32),
                torch.zeros(0, max_video_len, dtype=torch.bool))
    return pad_clips([features[s:e] for s, e in spans.tolist()], max_video_len)


class HTMAlignVideo(NamedTuple):
    """One HTM-Align video and its evaluation windows.

    Attributes
    ----------
    video_id : str
    features : Tensor, shape (T, D)
        float32 features, one per second.
    texts : list[str], length S
        Sentences in file order.
    alignable : Tensor, shape (S,)
        bool, True when the sentence is visually alignable.
    segments : Tensor, shape (S, 2)
        float32 ``[start, end]`` seconds: the true segment for alignable sentences, the ASR
        timestamps otherwise.
    window_spans : Tensor, shape (W, 2)
        int64 ``[start, min(start + window, T))`` of each kept window.
    text_ranges : Tensor, shape (W, 2)
        int64 ``[first, last + 1)`` active sentences of each window.
    windows : Tensor, shape (W, V, D)
        float32 window features zero-padded to ``V = max_video_len`` (:func:`pad_windows`).
    window_mask : Tensor, shape (W, V)
        bool, True on each window's real seconds.
    """

    video_id: str
    features: Tensor
    texts: list[str]
    alignable: Tensor
    segments: Tensor
    window_spans: Tensor
    text_ranges: Tensor
    windows: Tensor
    window_mask: Tensor


@dataclass
class HTMAlignSet(Sequence):
    """HTM-Align videos, loaded on access (a sequence of :class:`HTMAlignVideo`).

    Attributes
    ----------
    video_ids : list[str]
        Sorted video ids (the official order).
    annotations : dict[str, tuple[list[str], ndarray, ndarray]]
        Per video ``(texts, alignable (S,) bool, segments (S, 2) float32)``.
    feature_dir : Path
    window, step, edge_windows, expected_dim : int
    skipped : SkipReport
    max_video_len : int
        Padded window length ``V`` (32).
    tail_rule : {"official", "all_sentences"}
        See :func:`active_text_windows`.
    """

    video_ids: list[str]
    annotations: dict[str, tuple[list[str], np.ndarray, np.ndarray]]
    feature_dir: Path
    window: int
    step: int
    edge_windows: int
    expected_dim: int
    skipped: SkipReport
    max_video_len: int = 32
    tail_rule: TailRule = "official"

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> HTMAlignVideo:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("HTMAlignSet does not support slicing; index one video")
        vid = self.video_ids[i]
        feats = load_feature(feature_path(self.feature_dir, vid), self.expected_dim)
        texts, alignable, segs = self.annotations[vid]
        starts, ranges = active_text_windows(len(feats), segs.mean(1), alignable, self.window,
                                             self.step, self.edge_windows, self.tail_rule)
        spans = np.stack([starts, np.minimum(starts + self.window, len(feats))], 1)
        spans = spans.astype(np.int64).reshape(-1, 2)
        windows, window_mask = pad_windows(feats, spans, self.max_video_len)
        return HTMAlignVideo(
            vid, torch.from_numpy(feats.astype(np.float32)), list(texts),
            torch.from_numpy(alignable), torch.from_numpy(segs),
            torch.from_numpy(spans), torch.from_numpy(ranges), windows, window_mask,
        )

    def __iter__(self) -> Iterator[HTMAlignVideo]:
        for i in range(len(self)):
            yield self[i]

    @property
    def n_alignable(self) -> int:
        """Alignable sentences over all videos (the recall's denominator)."""
        return int(sum(a.sum() for _, a, _ in self.annotations.values()))


def _parse_video(path: Path, vid: str, rows: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path}: [{vid!r}]: expected a non-empty list of "
                         "[alignable, start, end, text]")
    texts, flags, segs = [], [], []
    for j, row in enumerate(rows):
        where = f"{path}: [{vid!r}][{j}]"
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ValueError(f"{where}: expected [alignable, start, end, text], got {row!r:.80}")
        a, s, e, t = row
        if a not in (0, 1) or isinstance(a, float) and not a.is_integer():
            raise ValueError(f"{where}: alignable flag expected 0 or 1, got {a!r}")
        try:
            s, e = float(s), float(e)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: start/end expected seconds, got {row[1:3]!r}") from None
        if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e < s:
            raise ValueError(f"{where}: start/end expected 0 <= start <= end, got {[s, e]}")
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"{where}: text expected a non-empty string, got {t!r}")
        texts.append(t)
        flags.append(bool(a))
        segs.append((s, e))
    return texts, np.asarray(flags, dtype=bool), np.asarray(segs, dtype=np.float32)


def load_htm_align(
    data_root: Any = None,
    *,
    json_path: str | os.PathLike | None = None,
    feature_dir: str | os.PathLike | None = None,
    window: int = 32,
    step: int = 8,
    edge_windows: int = 4,
    expected_dim: int = FEATURE_DIM,
    on_missing: str = "raise",
    max_video_len: int = 32,
    tail_rule: TailRule = "official",
) -> HTMAlignSet:
    """HTM-Align videos with their sentences, alignable flags, segments and windows.

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; the keyword paths override its defaults.
    json_path : path-like, optional
        ``htm_align.json``.
    feature_dir : path-like, optional
        Folder of ``<vid>.npy`` (the ``how2-align`` folder itself).
    window, step : int
        Window length and step in seconds (32 / 8).
    edge_windows : int
        Windows at each end whose active range is extended (4).
    expected_dim : int
        Feature width ``D``.
    on_missing : {"raise", "skip"}
        A video without a feature file (the official script asserts every file exists).
    max_video_len : int
        ``V``: every window is zero-padded to it (32, the official ``max_video_len``); at
        least ``window``.
    tail_rule : {"official", "all_sentences"}
        How the last windows' sentence range is extended (:func:`active_text_windows`).

    Returns
    -------
    HTMAlignSet

    Notes
    -----
    ``docs/protocols.md`` §7.8 and Norton App. D (recall: a sentence is recalled when its best
    frame falls inside the annotated segment, averaged over all alignable sentences).

    Examples
    --------
    >>> import tempfile, json
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.htm_align_features.mkdir(parents=True)
    >>> rows = [[0, 0.0, 4.0, "hi there"], [1, 10.0, 14.0, "cut the bread"],
    ...         [0, 30.0, 33.0, "thanks"]]
    >>> _ = r.htm_align_json.write_text(json.dumps({"v": rows}))
    >>> np.save(r.htm_align_features / "v.npy", np.ones((60, 4), np.float16))
    >>> v = load_htm_align(r, expected_dim=4)[0]
    >>> v.window_spans.tolist()
    [[0, 32], [8, 40], [16, 48], [24, 56], [32, 60], [40, 60]]
    >>> v.text_ranges.tolist(), v.alignable.tolist()
    ([[0, 3], [0, 3], [0, 3], [0, 3], [0, 3], [2, 3]], [False, True, False])
    >>> tuple(v.windows.shape), v.window_mask.sum(1).tolist()  # every window padded to 32
    ((6, 32, 4), [32, 32, 32, 32, 28, 20])
    """
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing: expected one of ('raise', 'skip'), got {on_missing!r}")
    if tail_rule not in ("official", "all_sentences"):
        raise ValueError(f"tail_rule: expected one of ('official', 'all_sentences'), got "
                         f"{tail_rule!r}")
    for name, v in (("window", window), ("max_video_len", max_video_len)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if window > max_video_len:
        raise ValueError(f"max_video_len: expected at least window={window} (each window is "
                         f"padded to it), got {max_video_len}")
    p = resolve_paths(data_root, json_path=(json_path, "htm_align_json"),
                      feature_dir=(feature_dir, "htm_align_features"))
    path = p["json_path"]
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a non-empty {{video_id: [[alignable, start, end, "
                         "text], ...]}}")
    report = SkipReport(f"htm-align videos of {path.name}")
    ids, anns = [], {}
    for vid in sorted(data):
        parsed = _parse_video(path, vid, data[vid])
        if not feature_path(p["feature_dir"], vid).is_file():
            if on_missing == "raise":
                raise FileNotFoundError(f"{feature_path(p['feature_dir'], vid)}: feature file "
                                        f"not found (video {vid!r} of {path.name})")
            report.add(vid, "no feature file")
            continue
        ids.append(vid)
        anns[vid] = parsed
    if not ids:
        raise ValueError(f"{path}: no video has features; {report.summary()}")
    report.emit()
    return HTMAlignSet(ids, anns, p["feature_dir"], window, step, edge_windows, expected_dim,
                       report, max_video_len, tail_rule)
