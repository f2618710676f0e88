"""Clip-caption retrieval: YouCookII clips (Norton Table 3) and the rows of any retrieval matrix.

Every caption is scored against every clip by the dot product of the pooled vectors
(:func:`caption_clip_scores`; the truth is the diagonal) and ranked: R@1/5/10 and median rank,
with ties counted against the model (``"corrected"``) and broken as the released evaluation's
``argsort`` does (``"official-compatible"``, :func:`retrieval_rows`). MSR-VTT retrieval
(:mod:`nortonkit.eval.msrvtt`) reuses both; ``docs/protocols.md`` §7.2.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..data.youcook import load_youcook_clips
from ..encoders import DualEncoder
from ..metrics import retrieval_metrics
from .common import RECALL_KS, encode_captions, encode_clips

__all__ = ["retrieval_rows", "caption_clip_scores", "eval_youcook_clip"]


def retrieval_rows(scores: Tensor, measure: str = "clip") -> list[dict]:
    """R@1/5/10 and MR of a text x video matrix, in both tie conventions.

    Examples
    --------
    >>> import torch
    >>> rows = retrieval_rows(torch.ones(2, 2))  # a constant model: every score tied
    >>> [(r["variant"], r["metric"], r["value"]) for r in rows if r["metric"] == "R@1"]
    [('corrected', 'R@1', 0.0), ('official-compatible', 'R@1', 50.0)]
    """
    rows = []
    for variant, ties in (("corrected", "pessimistic"), ("official-compatible", "official")):
        m = retrieval_metrics(scores, RECALL_KS, ties=ties)
        vals = {f"R@{k}": 100 * v for k, v in m.recall.items()}
        vals["MR"] = m.median_rank
        for metric, value in vals.items():
            rows.append(dict(measure=measure, variant=variant, metric=metric, value=value,
                             n=scores.shape[0]))
    return rows


def caption_clip_scores(model: DualEncoder, clips: Any, device: str = "cpu",
                        batch_size: int = 256) -> Tensor:
    """Caption x clip dot products ``(N, N)`` of a clip set; rows = captions, columns = clips.

    Parameters
    ----------
    model : the dual encoder.
    clips : a clip set with ``video (N, V, D)``, ``video_mask (N, V)`` and ``N`` ``captions``
        (:func:`~nortonkit.data.youcook.load_youcook_clips`,
        :func:`~nortonkit.data.msrvtt.load_msrvtt_test`).
    device, batch_size : where and how many clips or sentences per forward pass.

    Returns
    -------
    Tensor of shape (N, N); the ground truth is the diagonal.
    """
    video = encode_clips(model, clips.video, clips.video_mask, device, batch_size)
    text = encode_captions(model, clips.captions, device, batch_size)
    return text @ video.T  # (N, N): rows = captions, columns = clips


def eval_youcook_clip(model: DualEncoder, root: Any, device: str = "cpu",
                      batch_size: int = 256) -> list[dict]:
    """Norton Table 3: YouCookII clip-caption (text-to-video) retrieval, zero-shot."""
    clips = load_youcook_clips(root, expected_dim=model.config.video_feature_dim)
    rows = retrieval_rows(caption_clip_scores(model, clips, device, batch_size))
    return [dict(r, table="T3", setting="zero-shot") for r in rows]
