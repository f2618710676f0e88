"""Clip sampling for pre-training: the VideoCLIP/Norton sampler and the clip batch it fills.

:func:`sample_video_clips` draws ``K`` overlapping clip/caption pairs from one video (Norton
App. B, "Data sampling", steps 1-3; ``docs/protocols.md`` §5.4) and :func:`build_clip_batch`
stacks the samples of ``B`` videos into a :class:`ClipBatch`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..text import build_text_batch

__all__ = ["VideoClips", "sample_video_clips", "ClipBatch", "build_clip_batch"]


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


def _caption_times(captions: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, Sequence]:
    """Checked float64 ``start`` and ``end`` times (n,) and the ``cap`` token lists of a video."""
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
    return starts, ends, caps


def _check_sampler_options(
    clips_per_video: int, min_text_len: int, max_text_len: int, min_clip_len: int,
    max_clip_len: int, max_tokens: int, max_caption_span: float,
) -> None:
    """Check the options of :func:`sample_video_clips`, naming the bad one."""
    k = clips_per_video
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"clips_per_video: expected an integer >= 1, got {k!r}")
    _check_range("min_text_len", min_text_len, "max_text_len", max_text_len)
    _check_range("min_clip_len", min_clip_len, "max_clip_len", max_clip_len)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
    if not max_caption_span > 0:
        raise ValueError(f"max_caption_span: expected seconds > 0, got {max_caption_span!r}")


def _draw_centres(n: int, k: int, replacement: bool, rng: np.random.Generator) -> np.ndarray:
    """``k`` centre caption indices in ``[0, n)`` (step 1), with or without replacement."""
    if replacement:
        return rng.integers(0, n, size=k)
    reps = -(-k // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:k]


def _video_clips(rows: list[tuple[int, ...]], caps: Sequence, starts: np.ndarray,
                 ends: np.ndarray, max_tokens: int) -> VideoClips:
    """:class:`VideoClips` of sorted ``(first, v0, last, v1, n_tok, budget)`` rows (step 6)."""
    tokens = []
    for first, _, last, _, _, _ in rows:
        merged = [t for j in range(first, last) for t in caps[j]]
        tokens.append(merged[:max_tokens])
    arr = np.asarray(rows, dtype=np.int64).reshape(len(rows), 6)
    text_times = np.stack([starts[arr[:, 0]], ends[arr[:, 2] - 1]], 1).astype(np.float32)
    return VideoClips(
        video_spans=arr[:, [1, 3]].copy(),
        text_spans=arr[:, [0, 2]].copy(),
        text_times=text_times,
        tokens=tokens,
        n_tokens=arr[:, 4].copy(),
        text_budget=arr[:, 5].copy(),
    )


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
    starts, ends, caps = _caption_times(captions)
    _check_sampler_options(clips_per_video, min_text_len, max_text_len, min_clip_len,
                           max_clip_len, max_tokens, max_caption_span)

    centres = _draw_centres(len(caps), clips_per_video, replacement, rng)
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
    return _video_clips(rows, caps, starts, ends, max_tokens)


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
