"""Scores of a dual encoder on the synthetic evaluation sets, fast enough for every study run.

:func:`evaluate_encoder` gives, in percent,

* YouCookII-like clip retrieval (caption -> clip R@1, Norton Table 3),
* YouCookII-like video-paragraph retrieval, background removed (paragraph -> video R@1 with
  DTW on ``-cosine``, Norton Table 1),
* HTM-Align-like alignment recall (Norton Table 9, App. D): a sentence counts as recalled
  when its most similar second, averaged over the 32 s / 8 s sliding windows that see it,
  falls inside its true segment.

:mod:`nortonkit.lab.study` scores every post-trained model of the two-stage recipe and of the
noise sweep with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import metrics
from ..data.htm_align import load_htm_align
from ..data.text import encode_texts, load_tokenizer
from ..data.youcook import load_youcook_paragraphs
from ..metrics import recall_at_k
from .baselines import sequence_scores

__all__ = ["METRICS", "evaluate_encoder", "clip_r1", "paragraph_r1", "htm_align_recall",
           "encode_clips"]

METRICS: tuple[str, ...] = ("clip_r1", "paragraph_r1", "align_recall")


# ---------------------------------------------------------------------------------- metrics


def clip_r1(text: Tensor, video: Tensor) -> float:
    r"""Caption -> clip recall at 1, in percent.

    .. math:: \mathrm{R@1} = \frac{100}{N} \sum_i [\arg\max_j \cos(t_i, v_j) = i]

    Parameters
    ----------
    text : shape (N, H), caption vectors; row ``i`` belongs to clip ``i``.
    video : shape (N, H), clip vectors.

    Returns
    -------
    float in [0, 100].

    Notes
    -----
    Norton Table 3 (YouCookII clip-caption retrieval, zero-shot).

    Examples
    --------
    >>> clip_r1(torch.eye(3), torch.eye(3)), clip_r1(torch.eye(2), torch.eye(2).flip(0))
    (100.0, 0.0)
    """
    if text.ndim != 2 or text.shape != video.shape:
        raise ValueError(f"text, video: expected equal shapes (N, H), got {tuple(text.shape)} "
                         f"and {tuple(video.shape)}")
    sim = F.normalize(text.float(), dim=-1) @ F.normalize(video.float(), dim=-1).T  # (N, N)
    return 100.0 * recall_at_k(sim, 1)  # ties count against the query


def paragraph_r1(text: Tensor, video: Tensor, blocks: Sequence[Tensor]) -> float:
    r"""Paragraph -> video recall at 1 with DTW, background removed, in percent.

    .. math::
        \hat v(p) = \arg\min_v \frac{1}{|v|\,|p|}
            \mathrm{DTW}\big(1 - \cos(t_{i}, v_{j})\big)_{i \in p,\ j \in v}

    Parameters
    ----------
    text : shape (N, H), caption vectors.
    video : shape (N, H), clip vectors (clip ``i`` and caption ``i`` share an index).
    blocks : G int64 index tensors, the chronological clips of each video.

    Returns
    -------
    float in [0, 100].

    Notes
    -----
    Norton Table 1 (DTW row): a paragraph is retrieved when the block-scaled DTW over its
    captions and the candidate's clips is lowest for its own video. The protocol is exactly that
    of the linear baselines this number is compared with
    (:func:`nortonkit.lab.baselines.sequence_scores`: cost ``1 - cos``, DTW scaled by
    ``1 / (rows * cols)`` as the official metric scales its blocks, docs/protocols.md §7.3).

    Examples
    --------
    >>> v = torch.eye(4)
    >>> paragraph_r1(v, v, [torch.tensor([0, 1]), torch.tensor([2, 3])])
    100.0
    """
    if not blocks:
        raise ValueError("blocks: expected at least one video, got none")
    t = F.normalize(text.detach().double(), dim=-1).numpy()
    v = F.normalize(video.detach().double(), dim=-1).numpy()
    ids = list(range(len(blocks)))
    scores = sequence_scores({i: t[b.numpy()] for i, b in enumerate(blocks)},
                             {i: v[b.numpy()] for i, b in enumerate(blocks)}, ids, select=False,
                             with_otam=False)
    return 100.0 * recall_at_k(torch.from_numpy(scores["dtw"]), 1)  # (paragraph, video)


@torch.no_grad()
def htm_align_recall(model: Any, htm: Any, text_vectors: Callable[[list[str]], Tensor]) -> float:
    r"""HTM-Align-like recall of alignable sentences, in percent.

    For every window ``w`` and active sentence ``s`` the per-second similarity
    ``cos(frame_t, text_s)`` is accumulated; a sentence is recalled when

    .. math:: \arg\max_t \frac{1}{|W_{s,t}|}\sum_{w \in W_{s,t}} \cos(f^w_t, x_s)
        \in [\mathrm{start}_s, \mathrm{end}_s]

    Parameters
    ----------
    model : a :class:`~nortonkit.encoders.DualEncoder`.
    htm : :class:`~nortonkit.data.htm_align.HTMAlignSet` (windows of 32 s, step 8 s).
    text_vectors : maps a list of sentences to their vectors, shape (S, H).

    Returns
    -------
    float in [0, 100]: recalled alignable sentences over all alignable sentences.

    Notes
    -----
    Norton Table 9 and App. D (HTM-Align, sliding windows of 32 s with step 8 s).
    """
    hits = total = 0
    for item in htm:
        n_t, n_s = len(item.features), len(item.texts)
        txt = F.normalize(text_vectors(item.texts).float(), dim=-1)  # (S, H)
        acc = torch.zeros(n_s, n_t)
        cnt = torch.zeros(n_s, n_t)
        for (s, e), (a, b) in zip(item.window_spans.tolist(), item.text_ranges.tolist()):
            feats = item.features[s:e][None]  # (1, V, D)
            out = model.encode_video(feats, torch.ones(1, e - s, dtype=torch.bool))
            frames = F.normalize(out.tokens[0, 1 : e - s + 1], dim=-1)  # (V, H)
            acc[a:b, s:e] += txt[a:b] @ frames.T
            cnt[a:b, s:e] += 1
        mean = torch.where(cnt > 0, acc / cnt.clamp_min(1), torch.full_like(acc, -math.inf))
        seen = cnt.sum(1) > 0  # a sentence no window sees counts as a miss
        r = metrics.alignment_recall(mean[None], item.segments[None], (item.alignable & seen)[None])
        hits += r.hits
        total += int(item.alignable.sum())
    if total == 0:
        raise ValueError("htm: expected at least one alignable sentence, got none")
    return 100.0 * hits / total


@torch.no_grad()
@torch.no_grad()
def encode_clips(model: Any, video: Tensor, video_mask: Tensor, batch: int = 256) -> Tensor:
    """Pooled vectors (N, H) of clips (N, V, D) with mask (N, V), ``batch`` clips at a time."""
    return torch.cat([model.encode_video(video[i:i + batch], video_mask[i:i + batch]).pooled
                      for i in range(0, len(video), batch)])


def evaluate_encoder(model: Any, data_root: str | Path) -> dict[str, float]:
    """Clip R@1, paragraph R@1 (DTW) and alignment recall of ``model`` on a synthetic corpus.

    Parameters
    ----------
    model : a :class:`~nortonkit.encoders.DualEncoder` (put in eval mode here).
    data_root : a data root with the YouCookII-like and HTM-Align-like sets.

    Returns
    -------
    dict with ``clip_r1``, ``paragraph_r1``, ``align_recall`` (percent).

    Notes
    -----
    Norton Tables 1, 3 and 9 in miniature; see :func:`clip_r1`, :func:`paragraph_r1`,
    :func:`htm_align_recall`.
    """

    model.eval()
    tok = load_tokenizer()

    def text_vectors(texts: list[str]) -> Tensor:
        batch = encode_texts(texts, tok, max_tokens=30)
        return model.encode_text(batch.input_ids, batch.attention_mask).pooled

    par = load_youcook_paragraphs(data_root, max_video_len=16)
    clips = par.clips
    video = encode_clips(model, clips.video, clips.video_mask)  # (N, H)
    text = text_vectors(list(clips.captions))  # (N, H)
    return {
        "clip_r1": clip_r1(text, video),
        "paragraph_r1": paragraph_r1(text, video, par.blocks),
        "align_recall": htm_align_recall(model, load_htm_align(data_root), text_vectors),
    }
