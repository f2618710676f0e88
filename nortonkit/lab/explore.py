"""The computation behind the alignment explorer: one video, its captions, three alignments.

Given the frame tokens of ``M`` clips and the word tokens of ``N`` captions of one video,
:func:`explore_alignment` computes the fine-grained similarity (Eq. 5) and, side by side, the
DTW path, the vanilla entropic OT plan (Eq. 2-3) and Norton's plan with the alignable prompt
bucket (Eq. 6), the mass each clip and caption sends to the bucket, and agreement with the
ground truth where it is known (:func:`nortonkit.alignment_metrics.alignment_metrics`, the
same metric as the transport-accuracy study). ``nortonkit.lab.widgets`` only wires sliders to
this function and ``nortonkit.lab.viz`` draws the result, so tests and papermill drive the same
code headlessly.

The examples themselves (:class:`~nortonkit.lab.explore_examples.AlignmentExample`, built from
the synthetic world, a data root or a trained encoder, and the picker's catalogue) are
:mod:`nortonkit.lab.explore_examples`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..alignment import dtw
from ..alignment_metrics import alignment_metrics
from ..similarity import token_lse_similarity
from ..transport import bucket_sinkhorn, bucket_value_from_quantile, sinkhorn
from ..validation import (
    check_finite,
    check_int_at_least,
    check_mask,
    check_open_unit,
    check_positive,
    check_tensor,
)
from .explore_examples import AlignmentExample

__all__ = ["ExplorerResult", "explore_alignment"]


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
    bucket_value : the bucket value ``p`` (k-th smallest similarity of the original pairs).
    agreement : metric name -> value in [0, 1]; empty without ground truth (see
        :func:`_agreement`).
    """

    similarity: Tensor
    dtw_path: Tensor
    ot_plan: Tensor
    bucket_plan: Tensor
    clip_to_bucket: Tensor
    caption_to_bucket: Tensor
    bucket_value: float
    agreement: dict[str, float]


def _check_example(example: AlignmentExample) -> tuple[int, int]:
    if not isinstance(example, AlignmentExample):
        raise ValueError(f"example: expected an AlignmentExample, got {type(example).__name__}")
    m, _, d = check_tensor("example.clip_tokens", example.clip_tokens, ndim=3).shape
    n = check_tensor("example.caption_tokens", example.caption_tokens, ndim=3,
                     shape=(d,)).shape[0]
    check_mask("example.clip_mask", example.clip_mask, example.clip_tokens.shape[:2])
    check_mask("example.caption_mask", example.caption_mask, example.caption_tokens.shape[:2])
    if m == 0 or n == 0:
        raise ValueError(f"example: expected at least one clip and one caption, got M={m}, N={n}")
    for name, mask in (("example.clip_mask", example.clip_mask),
                       ("example.caption_mask", example.caption_mask)):
        empty = (~mask.any(1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"{name}: rows {empty[:5]} have no valid token; expected >= 1 each")
    check_finite("example.clip_tokens", example.clip_tokens, example.clip_mask[..., None])
    check_finite("example.caption_tokens", example.caption_tokens,
                 example.caption_mask[..., None])
    if len(example.clip_labels) != m or len(example.caption_labels) != n:
        raise ValueError(
            f"example.clip_labels, example.caption_labels: expected lengths (M, N) = ({m}, {n}), "
            f"got ({len(example.clip_labels)}, {len(example.caption_labels)})"
        )
    if example.truth is not None:
        if not isinstance(example.truth, Tensor) or tuple(example.truth.shape) != (m, n):
            got = tuple(example.truth.shape) if isinstance(example.truth, Tensor) else \
                type(example.truth).__name__
            raise ValueError(f"example.truth: expected shape (M, N) = ({m}, {n}), got {got}")
    if example.anchors is not None:
        a = example.anchors
        if not isinstance(a, Tensor) or a.shape != (n,) or a.is_floating_point():
            got = f"{tuple(a.shape)} {a.dtype}" if isinstance(a, Tensor) else type(a).__name__
            raise ValueError(f"example.anchors: expected an integer tensor of shape (N,) = "
                             f"({n},), got {got}")
        if bool(((a < -1) | (a >= m)).any()):
            raise ValueError(f"example.anchors: expected clip indices in [-1, {m}), got range "
                             f"[{int(a.min())}, {int(a.max())}]")
    if example.irrelevant is not None:
        irr = example.irrelevant
        if not isinstance(irr, Tensor) or irr.dtype != torch.bool or tuple(irr.shape) != (n,):
            got = f"{tuple(irr.shape)} {irr.dtype}" if isinstance(irr, Tensor) else \
                type(irr).__name__
            raise ValueError(f"example.irrelevant: expected a bool tensor of shape (N,) = "
                             f"({n},), got {got}")
    return m, n


def _bucket_value(pairs: Tensor, quantile: float) -> Tensor:
    """:func:`~nortonkit.transport.bucket_value_from_quantile`, with ``k`` clamped to >= 1.

    With fewer than ``1 / quantile`` original pairs, ``int(quantile * K)`` is 0; the explorer
    then takes the smallest pair (``k = 1``) so that every slider position stays valid.
    """
    if int(quantile * len(pairs)) >= 1:
        return bucket_value_from_quantile(pairs, quantile)
    return pairs.detach().min()


def _original_pairs(sim: Tensor, anchors: Tensor | None) -> Tensor:
    """Similarities of the originally paired (clip, caption), shape (K,)."""
    if anchors is None:
        return torch.diagonal(sim)  # (min(M, N),)
    cols = (anchors >= 0).nonzero().flatten()
    if len(cols) == 0:  # no timestamps at all: every pair is a candidate
        return sim.flatten()
    return sim[anchors[cols], cols]


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
    bucket_quantile : the bucket value ``p`` is the k-th *smallest* similarity of the ``K``
        originally paired (clip, caption), ``k = max(1, int(bucket_quantile * K))``
        (:func:`nortonkit.transport.bucket_value_from_quantile`).
    eps : entropic regularisation of both transport problems.
    n_iters : Sinkhorn iterations.

    Returns
    -------
    ExplorerResult
        ``similarity``, ``dtw_path``, ``ot_plan``, ``bucket_plan`` of shape (M, N),
        ``clip_to_bucket`` (M,), ``caption_to_bucket`` (N,), ``bucket_value``, ``agreement``.

    Notes
    -----
    Norton Eq. 5 (similarity), Eq. 2-3 (vanilla OT, :math:`\max_Q \langle Q, S\rangle +
    \varepsilon H(Q)` with uniform marginals) and Eq. 6 (the prompt bucket: ``S`` grows one row
    and one column of value ``p``; SuperGlue marginals ``1/(M+N)`` per clip and caption).
    Bucket fractions are ``1 - (M + N) * row_sum`` and ``1 - (M + N) * col_sum``. ``p`` comes
    from :func:`nortonkit.transport.bucket_value_from_quantile`, except that ``k`` is clamped
    to at least 1, so that every slider position of the explorer is valid for short videos.
    The agreement numbers are :func:`nortonkit.alignment_metrics.alignment_metrics` of the three
    alignments (DTW ties broken by the similarity).

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
    >>> bool(((r.caption_to_bucket >= 0) & (r.caption_to_bucket <= 1)).all())
    True
    """
    check_positive("alpha", alpha)
    check_positive("eps", eps)
    check_int_at_least("n_iters", n_iters, 1)
    check_open_unit("bucket_quantile", bucket_quantile)
    m, n = _check_example(example)
    sim = token_lse_similarity(example.clip_tokens, example.clip_mask, example.caption_tokens,
                               example.caption_mask, alpha=alpha)  # (M, N)
    path = dtw(-sim[None], return_path=True).path[0]  # (M, N)
    ot_plan = sinkhorn(sim, eps=eps, n_iters=n_iters).plan * m  # (M, N), total mass M
    pairs = _original_pairs(sim, example.anchors)  # (K,)
    p = _bucket_value(pairs, bucket_quantile)
    bplan = bucket_sinkhorn(sim, p, eps=eps, n_iters=n_iters, marginals="superglue").plan
    bplan = bplan * (m + n)  # (M, N): a real row / column carries mass 1 when fully aligned
    clip_to_bucket = (1 - bplan.sum(1)).clamp(0, 1)  # (M,)
    caption_to_bucket = (1 - bplan.sum(0)).clamp(0, 1)  # (N,)
    agreement = {} if example.truth is None else _agreement(
        example.truth, example.irrelevant, sim, path, ot_plan, bplan, caption_to_bucket)
    return ExplorerResult(sim, path, ot_plan, bplan, clip_to_bucket, caption_to_bucket,
                          float(p), agreement)


def _agreement(truth: Tensor, irrelevant: Tensor | None, sim: Tensor, path: Tensor,
               ot_plan: Tensor, bplan: Tensor, caption_to_bucket: Tensor) -> dict[str, float]:
    """Caption-level agreement with the ground truth; undefined entries are left out.

    ``DTW accuracy``, ``OT accuracy``, ``Norton accuracy``: caption-to-segment accuracy of
    :func:`nortonkit.alignment_metrics.alignment_metrics` (over captions with a true clip, the
    fraction whose assigned clip is a true one; DTW: the path's clip of highest similarity).
    ``Norton strict accuracy``: a caption sent to the bucket counts as a miss.
    ``bucket precision`` / ``bucket recall``: of the captions sent to the bucket (bucket mass
    above the mass to any clip), the irrelevant fraction / of the irrelevant captions, the
    fraction sent. ``bucket mass, alignable`` / ``bucket mass, unalignable``: mean fraction of
    caption mass sent to the bucket, over captions with / without a true clip.
    """
    truth = truth.bool()
    irrelevant = ~truth.any(0) if irrelevant is None else irrelevant
    alignable = truth.any(0)  # (N,)
    found = {
        "DTW": alignment_metrics(path, truth, irrelevant, scores=sim),
        "OT": alignment_metrics(ot_plan, truth, irrelevant, scores=sim),
        "Norton": alignment_metrics(bplan, truth, irrelevant, caption_to_bucket, scores=sim),
    }
    out = {f"{name} accuracy": m["accuracy"] for name, m in found.items()}
    out["Norton strict accuracy"] = found["Norton"]["strict_accuracy"]
    out["bucket precision"] = found["Norton"]["bucket_precision"]
    out["bucket recall"] = found["Norton"]["bucket_recall"]
    if bool(alignable.any()):
        out["bucket mass, alignable"] = float(caption_to_bucket[alignable].mean())
    if bool((~alignable).any()):
        out["bucket mass, unalignable"] = float(caption_to_bucket[~alignable].mean())
    return {k: v for k, v in out.items() if not math.isnan(v)}
