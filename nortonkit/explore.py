"""The computation behind the alignment explorer: one video, its captions, three alignments.

Given the frame tokens of ``M`` clips and the word tokens of ``N`` captions of one video,
:func:`explore_alignment` computes the fine-grained similarity (Eq. 5) and, side by side, the
DTW path, the vanilla entropic OT plan (Eq. 2-3) and Norton's plan with the alignable prompt
bucket (Eq. 6), the mass each clip and caption sends to the bucket, and agreement with the
ground truth where it is known. ``nortonkit.widgets`` only wires sliders to this function and
``nortonkit.viz`` draws the result, so tests and papermill drive the same code headlessly.

Clip ``i`` is the stretch of video around caption ``i``'s ASR timestamps (as in pre-training),
so the "originally aligned pairs" that set the bucket value are the diagonal ``(i, i)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .alignment import dtw
from .masking import pad_sequences
from .similarity import token_lse_similarity
from .sinkhorn import bucket_sinkhorn, bucket_value_from_quantile, sinkhorn
from .validation import check_int_at_least, check_open_unit, check_positive, check_tensor

__all__ = [
    "AlignmentExample",
    "ExplorerResult",
    "explore_alignment",
    "example_from_synthetic",
    "example_from_encoder",
    "clip_windows",
]


class AlignmentExample(NamedTuple):
    """One video cut into clips around its captions.

    Attributes
    ----------
    clip_tokens : shape (M, V, D), frame tokens of each clip (zero-padded).
    clip_mask : shape (M, V), True on valid frames.
    caption_tokens : shape (N, T, D), word tokens of each caption (zero-padded).
    caption_mask : shape (N, T), True on valid words.
    clip_labels : length M, e.g. ``"12-18 s"``.
    caption_labels : length N, the caption texts.
    truth : shape (M, N) bool, ``truth[i, j]`` = clip ``i`` shows what caption ``j`` says;
        a caption with an all-False column has no visual counterpart. ``None`` if unknown.
    title : a short description of the example.
    """

    clip_tokens: Tensor
    clip_mask: Tensor
    caption_tokens: Tensor
    caption_mask: Tensor
    clip_labels: list[str]
    caption_labels: list[str]
    truth: Tensor | None
    title: str


class ExplorerResult(NamedTuple):
    """Everything the explorer draws, as arrays of the example's shapes.

    Attributes
    ----------
    similarity : shape (M, N), Eq. 5 clip-caption similarity.
    dtw_path : shape (M, N), 0/1 DTW path on the cost ``-similarity``.
    ot_plan : shape (M, N), vanilla OT plan (uniform marginals), rescaled to total mass M.
    bucket_plan : shape (M, N), Norton's plan with the bucket dropped, rescaled by ``M + N``
        so that a clip or caption that aligns fully carries mass 1.
    clip_to_bucket : shape (M,), fraction of each clip's mass sent to the bucket.
    caption_to_bucket : shape (N,), fraction of each caption's mass sent to the bucket.
    bucket_value : the bucket value ``p`` (k-th smallest diagonal similarity).
    agreement : metric name -> value; empty without ground truth (see :func:`_agreement`).
    """

    similarity: Tensor
    dtw_path: Tensor
    ot_plan: Tensor
    bucket_plan: Tensor
    clip_to_bucket: Tensor
    caption_to_bucket: Tensor
    bucket_value: float
    agreement: dict[str, float]


def explore_alignment(
    example: AlignmentExample,
    alpha: float = 1.0,
    bucket_quantile: float = 0.3,
    eps: float = 0.1,
    n_iters: int = 50,
) -> ExplorerResult:
    r"""Similarity, DTW path, vanilla OT plan and bucketed plan of one example.

    Parameters
    ----------
    example : an :class:`AlignmentExample` with ``M`` clips and ``N`` captions.
    alpha : log-sum-exp temperature of Eq. 5 (alpha -> 0: max over tokens).
    bucket_quantile : the bucket value is the k-th smallest diagonal similarity,
        ``k = int(bucket_quantile * min(M, N))``.
    eps : entropic regularisation of both transport problems.
    n_iters : Sinkhorn iterations.

    Returns
    -------
    ExplorerResult

    Notes
    -----
    Norton Eq. 5 (similarity), Eq. 2-3 (vanilla OT) and Eq. 6 (prompt bucket, SuperGlue
    marginals ``1/(M+N)`` per clip and caption). Bucket fractions are
    ``1 - (M + N) * row_sum`` and ``1 - (M + N) * col_sum``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> ones = lambda *s: torch.ones(*s, dtype=torch.bool)
    >>> ex = AlignmentExample(torch.randn(4, 3, 8, generator=g), ones(4, 3),
    ...                       torch.randn(4, 2, 8, generator=g), ones(4, 2),
    ...                       list("0123"), list("abcd"), torch.eye(4, dtype=torch.bool), "random")
    >>> r = explore_alignment(ex, eps=0.1)
    >>> r.similarity.shape, r.dtw_path.shape, round(float(r.ot_plan.sum()), 4)
    (torch.Size([4, 4]), torch.Size([4, 4]), 4.0)
    """
    check_positive("alpha", alpha)
    check_positive("eps", eps)
    check_int_at_least("n_iters", n_iters, 1)
    check_open_unit("bucket_quantile", bucket_quantile)
    sim = token_lse_similarity(example.clip_tokens, example.clip_mask, example.caption_tokens,
                               example.caption_mask, alpha=alpha)  # (M, N)
    m, n = sim.shape
    path = dtw(-sim[None], return_path=True).path[0]  # (M, N)
    ot_plan = sinkhorn(sim, eps=eps, n_iters=n_iters).plan * m  # (M, N), total mass M
    diag = torch.diagonal(sim)  # (min(M, N),)
    p = bucket_value_from_quantile(diag, bucket_quantile)
    bplan = bucket_sinkhorn(sim, p, eps=eps, n_iters=n_iters, marginals="superglue").plan
    bplan = bplan * (m + n)  # each real row / column carries mass 1 when fully aligned
    clip_to_bucket = (1 - bplan.sum(1)).clamp(0, 1)
    caption_to_bucket = (1 - bplan.sum(0)).clamp(0, 1)
    agreement = {} if example.truth is None else _agreement(
        example.truth, path, ot_plan, bplan, caption_to_bucket)
    return ExplorerResult(sim, path, ot_plan, bplan, clip_to_bucket, caption_to_bucket,
                          float(p), agreement)


def _agreement(truth: Tensor, path: Tensor, ot_plan: Tensor, bplan: Tensor,
               caption_to_bucket: Tensor) -> dict[str, float]:
    """Caption-level agreement with the ground truth.

    ``<method> accuracy``: over captions with a visual counterpart, the fraction whose
    highest-weight clip (DTW: any clip on the path) is a true clip. ``bucket mass, alignable`` /
    ``bucket mass, unalignable``: mean fraction of caption mass sent to the bucket.
    """
    truth = truth.bool()
    alignable = truth.any(0)  # (N,)
    out: dict[str, float] = {}
    if bool(alignable.any()):
        cols = alignable.nonzero().squeeze(1)
        hit_dtw = (path.bool() & truth)[:, cols].any(0).float().mean()
        for name, plan in (("OT", ot_plan), ("Norton", bplan)):
            best = plan[:, cols].argmax(0)  # (n_alignable,)
            out[f"{name} accuracy"] = float(truth[best, cols].float().mean())
        out["DTW accuracy"] = float(hit_dtw)
        out["bucket mass, alignable"] = float(caption_to_bucket[alignable].mean())
    if bool((~alignable).any()):
        out["bucket mass, unalignable"] = float(caption_to_bucket[~alignable].mean())
    return out


def clip_windows(caption_spans: Tensor, duration: int, min_len: int = 3,
                 max_len: int = 16) -> Tensor:
    """Integer clip windows ``[start, end)`` around each caption's ASR span, shape (N, 2).

    The caption span is rounded outwards, grown symmetrically to at least ``min_len`` seconds,
    cut to ``max_len`` seconds around its centre and clipped to ``[0, duration)``.

    >>> clip_windows(torch.tensor([[2.2, 3.1], [10.0, 40.0]]), duration=30).tolist()
    [[1, 4], [17, 30]]
    """
    check_tensor("caption_spans", caption_spans, ndim=2, shape=(None, 2))
    start = caption_spans[:, 0].floor()
    end = caption_spans[:, 1].ceil().maximum(start + 1)
    centre = (start + end) / 2
    length = (end - start).clamp(min_len, max_len)
    s = (centre - length / 2).floor().clamp(0, max(duration - 1, 0))
    e = (s + length).clamp(max=duration).maximum(s + 1)
    return torch.stack([s, e], 1).long()


def _frames(features: Tensor, windows: Tensor) -> tuple[Tensor, Tensor]:
    clips = [features[s:e] for s, e in windows.tolist()]
    return pad_sequences(clips)


def example_from_synthetic(example, word_tokens: list[Tensor] | None = None,
                           max_clip_len: int = 16) -> AlignmentExample:
    """An :class:`AlignmentExample` from :func:`nortonkit.data.synthetic.synthetic_example`.

    Frame tokens are the per-second features inside each caption's clip window. Word tokens are
    ``word_tokens`` when given (e.g. from a trained text encoder), otherwise the generator's
    oracle sentence embedding as a single token (chatter, which the oracle maps to zero, gets a
    fixed random direction). The ground truth marks clip ``i`` for caption ``j`` when the clip
    overlaps the true span of the step that caption ``j`` describes.
    """
    feats = example.features.float()
    windows = clip_windows(example.caption_spans, len(feats), max_len=max_clip_len)
    clips, clip_mask = _frames(feats, windows)
    if word_tokens is None:
        gen = torch.Generator().manual_seed(12345)
        chatter = torch.randn(feats.shape[1], generator=gen)
        caps = example.caption_features.float().clone()
        caps[caps.norm(dim=1) == 0] = chatter / chatter.norm()
        word_tokens = [c[None] for c in caps]
    cap_tokens, cap_mask = pad_sequences(word_tokens)
    step = example.aligned_step_per_caption
    truth = torch.zeros(len(windows), len(step), dtype=torch.bool)
    for j, sid in enumerate(step.tolist()):
        if sid < 0:
            continue
        s, e = example.step_spans[sid].tolist()
        truth[:, j] = (windows[:, 0] < e) & (windows[:, 1] > s)
    labels = [f"{s}-{e} s" for s, e in windows.tolist()]
    return AlignmentExample(clips, clip_mask, cap_tokens, cap_mask, labels,
                            list(example.captions), truth, "synthetic video")


@torch.no_grad()
def example_from_encoder(model, features: np.ndarray | Tensor, caption_spans: Tensor,
                         captions: list[str], tokenizer, truth: Tensor | None = None,
                         title: str = "video", max_clip_len: int = 16,
                         max_text_len: int = 32) -> AlignmentExample:
    """An :class:`AlignmentExample` encoded by a :class:`nortonkit.encoders.DualEncoder`.

    ``features`` (T, 512) per-second video features; ``caption_spans`` (N, 2) ASR seconds.
    The tokens are the encoders' last hidden states restricted to the valid frame / word
    positions (CLS excluded), as in Norton's fine-grained similarity.
    """
    feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    windows = clip_windows(caption_spans, len(feats), max_len=max_clip_len)
    clips, clip_mask = _frames(feats, windows)
    model.eval()
    video = model.encode_video(clips, clip_mask)
    enc = tokenizer(list(captions), padding=True, truncation=True, max_length=max_text_len,
                    return_tensors="pt")
    text = model.encode_text(enc["input_ids"], enc["attention_mask"].bool())
    labels = [f"{s}-{e} s" for s, e in windows.tolist()]
    return AlignmentExample(video.tokens, video.mask, text.tokens, text.mask, labels,
                            list(captions), truth, title)
