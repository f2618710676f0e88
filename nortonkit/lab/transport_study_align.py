r"""The problems of the transport study and their three alignments, one seed's batch at a time.

:func:`study_examples` builds a seed's videos (with :func:`perturb_steps`' reordering and
skipping), :func:`clip_caption_similarity` their clip x caption similarities,
:func:`sequence_slices` cuts each video into sequences, and :func:`align_sequences` aligns every
sequence with DTW, vanilla OT and Norton's bucketed OT at once. The sweeps over noise knobs,
seeds and ``alpha`` / ``q`` / ``eps`` are :mod:`nortonkit.lab.transport_study`.

Inputs (the paper's training setting, Sec. 3.1 and App. B)
-----------------------------------------------------------
A video of :func:`nortonkit.synthetic.example.synthetic_example` is cut into one clip around each
caption's ASR span (:func:`nortonkit.lab.explore_examples.clip_windows`, 3 to 16 s), so clip
``j`` and caption ``j`` are the "originally aligned pair". The ``K`` pairs of a video are split
into sequences of at most ``seq_len = 8`` consecutive pairs (Norton's ``L = 8``); each sequence
is one ``K x K`` alignment problem. A seed's videos form the batch whose diagonal similarities
set ``p``. Per caption and clip:

* captions: the oracle text embedding (:meth:`nortonkit.synthetic.world.World.embed_text`: the
  exact prototype of a described step, the object vector for a sentence that only names an
  object, zero for chatter), as one token. Zero vectors get the explorer's fixed random
  direction, so every chatter caption is the same unit vector, unrelated to any step;
* clips (``clip_repr="tokens"``, default): the per-second frame features of the clip as tokens,
  so Eq. 5 reduces to ``S[a, b] = (mean_i <v_a^i, t_b> + alpha log sum_i exp(<v_a^i, t_b> /
  alpha)) / 2``: the soft maximum over frames is where ``alpha`` acts (``alpha -> 0``: the
  best frame; large ``alpha``: the mean plus ``alpha log f``, an offset that grows with the
  clip length ``f``);
* clips (``clip_repr="mean"``): the L2-normalised mean of the frames; with one token on each
  side Eq. 5 is the plain cosine for every ``alpha``, so ``alpha`` does not enter at all;
* ``model``: a :class:`nortonkit.encoders.DualEncoder` instead of the oracle encodes the same
  clips and captions (:func:`nortonkit.lab.explore_examples.example_from_encoder`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..alignment import dtw
from ..data.text import load_tokenizer
from ..masking import masked_mean
from ..similarity import token_lse_similarity
from ..synthetic.config import NoiseConfig
from ..synthetic.example import SyntheticExample, synthetic_example
from ..transport import bucket_sinkhorn, sinkhorn
from ..validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_positive,
    check_tensor,
)
from .explore_examples import AlignmentExample, example_from_encoder, example_from_synthetic

__all__ = [
    "STUDY_KNOBS",
    "SequenceAlignment",
    "perturb_steps",
    "study_examples",
    "clip_caption_similarity",
    "sequence_slices",
    "align_sequences",
]

#: Knobs applied by :func:`perturb_steps` (not NoiseConfig fields).
STUDY_KNOBS = ("reorder_rate", "skip_rate")
_NOISE_FIELDS = tuple(f.name for f in dataclasses.fields(NoiseConfig))
_VIDEO_STRIDE = 1000  # video v of seed s is synthetic_example(seed=s * 1000 + v)
_PERTURB_TAG = 55


def _check_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def perturb_steps(example: SyntheticExample, skip_rate: float = 0.0, reorder_rate: float = 0.0,
                  seed: int = 0) -> SyntheticExample:
    """Swap adjacent steps in the video and cut steps out of it, keeping every caption.

    Parameters
    ----------
    example : a :class:`~nortonkit.synthetic.example.SyntheticExample` (T seconds, S steps).
    skip_rate : probability that a step is removed from the video (at least ``min(2, S)``
        steps stay). Its seconds are cut out, later times shift back, and the captions that
        describe it get ``aligned_step_per_caption = -1`` (nothing shows what they say).
    reorder_rate : probability that steps ``k`` and ``k + 1`` trade places in the video
        (pairs do not overlap; the gap between them stays in between). Captions keep their
        times and texts, so the narration follows the script and the video does not.
    seed : seed of the draws (the same uniform draws for every rate, so a higher rate
        perturbs a superset of the steps).

    Returns
    -------
    SyntheticExample
        ``features`` (T', D), ``frame_step`` (T',), ``caption_spans`` (K, 2), ``step_spans``
        (S, 2; a skipped step keeps a zero-length span) and ``aligned_step_per_caption`` (K,)
        updated; the other fields unchanged.

    Examples
    --------
    >>> ex = synthetic_example(seed=0, n_steps=4)
    >>> swapped = perturb_steps(ex, reorder_rate=1.0)
    >>> ex.step_spans[:2].tolist(), swapped.step_spans[:2].tolist()
    ([[14, 26], [26, 44]], [[32, 44], [14, 32]])
    >>> cut = perturb_steps(ex, skip_rate=0.99)
    >>> len(cut.features) < len(ex.features), bool((cut.aligned_step_per_caption < 0).any())
    (True, True)
    """
    if not isinstance(example, SyntheticExample):
        raise ValueError(f"example: expected a SyntheticExample, got {type(example).__name__}")
    skip_rate = _check_rate("skip_rate", skip_rate)
    reorder_rate = _check_rate("reorder_rate", reorder_rate)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _PERTURB_TAG]))
    spans = example.step_spans.tolist()
    n_steps, duration = len(spans), len(example.features)
    u_swap, u_skip = rng.random(max(n_steps - 1, 0)), rng.random(n_steps)
    src = torch.arange(duration)  # new second t shows old second src[t]
    k = 0
    while k < n_steps - 1:
        if u_swap[k] < reorder_rate:
            (s1, e1), (s2, e2) = spans[k], spans[k + 1]
            src[s1:e2] = torch.cat([torch.arange(s2, e2), torch.arange(e1, s2),
                                    torch.arange(s1, e1)])
            spans[k + 1], spans[k] = [s1, s1 + e2 - s2], [e2 - (e1 - s1), e2]
            k += 2
        else:
            k += 1
    skipped = u_skip < skip_rate
    if skipped.sum() > n_steps - min(2, n_steps):
        keep_idx = np.argsort(u_skip)[::-1][: min(2, n_steps)]  # the least likely to skip
        skipped[keep_idx] = False
    cut = sorted(tuple(spans[i]) for i in np.flatnonzero(skipped))
    keep = torch.ones(duration, dtype=torch.bool)
    for s, e in cut:
        keep[s:e] = False

    def shift(t: Tensor) -> Tensor:  # time map with the cut seconds removed
        out = t.clone().float()
        for s, e in cut:
            out = out - (t.float() - s).clamp(0, e - s)
        return out

    step = example.aligned_step_per_caption.clone()
    gone = torch.from_numpy(np.flatnonzero(skipped))
    lost = torch.isin(step, gone)
    step[lost] = -1
    new_spans = shift(torch.tensor(spans, dtype=torch.int64).reshape(-1, 2)).round().long()
    return example._replace(
        features=example.features[src][keep],
        frame_step=example.frame_step[src][keep],
        caption_spans=shift(example.caption_spans),
        step_spans=new_spans,
        aligned_step_per_caption=step,
        caption_offsets=torch.where(lost, 0.0, example.caption_offsets),
    )


def _noise(noise: NoiseConfig | Mapping[str, float] | None) -> NoiseConfig:
    if noise is None:
        return NoiseConfig()
    if isinstance(noise, NoiseConfig):
        return noise
    if isinstance(noise, Mapping):
        unknown = sorted(set(noise) - set(_NOISE_FIELDS))
        if unknown:
            raise ValueError(f"noise: unknown NoiseConfig fields {unknown}; expected names "
                             f"among {list(_NOISE_FIELDS)}")
        return NoiseConfig(**noise)
    raise ValueError(f"noise: expected a NoiseConfig, a mapping or None, got "
                     f"{type(noise).__name__}")


def study_examples(seed: int = 0, noise: NoiseConfig | Mapping[str, float] | None = None,
                   skip_rate: float = 0.0, reorder_rate: float = 0.0, n_videos: int = 4,
                   n_steps: int = 6, model: Any = None,
                   device: str | torch.device = "cpu") -> list[AlignmentExample]:
    """The videos of one seed, each cut into one clip per caption, with ground truth.

    Parameters
    ----------
    seed : video ``v`` is ``synthetic_example(seed=seed * 1000 + v, n_steps=n_steps)``.
    noise : a NoiseConfig, a mapping of its fields, or None (defaults).
    skip_rate, reorder_rate : :func:`perturb_steps` (seeded by the video's seed).
    n_videos : videos per seed (the batch that sets the bucket value), at most 1000.
    n_steps : steps per video.
    model : None for the oracle encoders, or a :class:`nortonkit.encoders.DualEncoder`.
    device : where the model runs.

    Returns
    -------
    list of :class:`~nortonkit.lab.explore.AlignmentExample`, each ``K x K`` (clip ``j`` around
    caption ``j``) with ``truth`` (K, K) and ``irrelevant`` (K,).

    Examples
    --------
    >>> exs = study_examples(seed=1, n_videos=2)
    >>> [tuple(e.truth.shape) == (len(e.caption_labels),) * 2 for e in exs]
    [True, True]
    """
    check_int_at_least("seed", seed, 0)
    check_int_at_least("n_videos", n_videos, 1)
    if n_videos > _VIDEO_STRIDE:
        raise ValueError(f"n_videos: expected at most {_VIDEO_STRIDE}, got {n_videos}")
    cfg = _noise(noise)
    out = []
    for v in range(n_videos):
        vseed = seed * _VIDEO_STRIDE + v
        raw = perturb_steps(synthetic_example(seed=vseed, n_steps=n_steps, noise=cfg),
                            skip_rate, reorder_rate, seed=vseed)
        ex = example_from_synthetic(raw)._replace(title=f"synthetic {vseed}")
        if model is not None:
            ex = example_from_encoder(model, raw.features, raw.caption_spans, raw.captions,
                                      load_tokenizer(), truth=ex.truth, title=ex.title,
                                      device=device, irrelevant=ex.irrelevant)
        out.append(ex)
    return out


def clip_caption_similarity(example: AlignmentExample, alpha: float = 1.0,
                            clip_repr: str = "tokens") -> Tensor:
    r"""Clip x caption similarity of one example, shape (M, N).

    ``clip_repr="tokens"``: Norton Eq. 5 on the frame and word tokens
    (:func:`nortonkit.similarity.token_lse_similarity`). ``"mean"``: the cosine of the masked
    token means, :math:`S_{ab} = \cos(\bar v_a, \bar t_b)`, which is Eq. 5 with one token per
    side for every ``alpha``.

    >>> ex = study_examples(n_videos=1)[0]
    >>> clip_caption_similarity(ex, clip_repr="mean").shape == ex.truth.shape
    True
    """
    check_choice("clip_repr", clip_repr, ("tokens", "mean"))
    check_positive("alpha", alpha)
    if clip_repr == "tokens":
        return token_lse_similarity(example.clip_tokens, example.clip_mask,
                                    example.caption_tokens, example.caption_mask, alpha=alpha)
    v = F.normalize(masked_mean(example.clip_tokens, example.clip_mask[..., None], 1), dim=-1)
    t = F.normalize(masked_mean(example.caption_tokens, example.caption_mask[..., None], 1),
                    dim=-1)
    return v @ t.T  # (M, N)


def sequence_slices(n: int, seq_len: int | None = 8) -> list[slice]:
    """Split ``n`` consecutive pairs into the fewest near-equal sequences of <= ``seq_len``.

    >>> [(s.start, s.stop) for s in sequence_slices(19, 8)]
    [(0, 6), (6, 13), (13, 19)]
    >>> sequence_slices(5, None)
    [slice(0, 5, None)]
    """
    check_int_at_least("n", n, 1)
    if seq_len is None:
        return [slice(0, n)]
    check_int_at_least("seq_len", seq_len, 1)
    bounds = np.linspace(0, n, -(-n // seq_len) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class SequenceAlignment(NamedTuple):
    """The three alignments of one clip x caption problem (M, N).

    Attributes
    ----------
    similarity : shape (M, N).
    dtw_path : shape (M, N), 0/1 path on the cost ``-similarity``.
    ot_plan : shape (M, N), vanilla plan rescaled to total mass M (a caption column sums to
        ``M / N``).
    bucket_plan : shape (M, N), Norton's plan without the bucket, rescaled by ``M + N`` (a
        fully aligned caption column sums to 1).
    caption_to_bucket : shape (N,), ``1 - bucket_plan.sum(0)`` clamped to [0, 1].
    """

    similarity: Tensor
    dtw_path: Tensor
    ot_plan: Tensor
    bucket_plan: Tensor
    caption_to_bucket: Tensor


def align_sequences(similarities: Sequence[Tensor], bucket_value: float | Tensor,
                    eps: float = 0.1, n_iters: int = 50) -> list[SequenceAlignment]:
    r"""DTW, vanilla OT (Eq. 2-3) and bucketed OT (Eq. 6) of many problems, batched.

    Parameters
    ----------
    similarities : B tensors of shape (M_b, N_b), clips x captions.
    bucket_value : ``p`` of Eq. 6, shared by the batch (Norton: one value per batch).
    eps, n_iters : Sinkhorn regularisation and iterations (both problems).

    Returns
    -------
    list of :class:`SequenceAlignment`, one per problem, unpadded.

    Notes
    -----
    The problems are padded into (B, max M, max N) with prefix masks; masked Sinkhorn gives
    every problem its own uniform / SuperGlue marginals, exactly as one call per problem
    (:func:`nortonkit.lab.explore.explore_alignment`) does.

    Examples
    --------
    >>> s = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    >>> r = align_sequences([s, s[:1, :2]], bucket_value=0.5, eps=0.05, n_iters=200)
    >>> r[0].caption_to_bucket.round(decimals=1), r[1].dtw_path
    (tensor([0., 0., 1.]), tensor([[1., 1.]]))
    """
    if not isinstance(similarities, Sequence) or not similarities:
        raise ValueError("similarities: expected a non-empty sequence of (M, N) tensors, got "
                         f"{type(similarities).__name__ if not similarities else 'empty'}")
    for i, s in enumerate(similarities):
        check_tensor(f"similarities[{i}]", s, ndim=2)
        if 0 in s.shape:
            raise ValueError(f"similarities[{i}]: expected a non-empty matrix, got shape "
                             f"{tuple(s.shape)}")
        check_finite(f"similarities[{i}]", s)
    sizes = [tuple(s.shape) for s in similarities]
    mmax, nmax = max(m for m, _ in sizes), max(n for _, n in sizes)
    b = len(sizes)
    sim = similarities[0].new_zeros(b, mmax, nmax)  # (B, M, N)
    rm = torch.zeros(b, mmax, dtype=torch.bool)
    cm = torch.zeros(b, nmax, dtype=torch.bool)
    for i, ((m, n), s) in enumerate(zip(sizes, similarities)):
        sim[i, :m, :n] = s.detach()
        rm[i, :m], cm[i, :n] = True, True
    path = dtw(-sim, rm, cm, return_path=True).path  # (B, M, N)
    ot = sinkhorn(sim, eps=eps, n_iters=n_iters, row_mask=rm, col_mask=cm).plan
    bp = bucket_sinkhorn(sim, bucket_value, eps=eps, n_iters=n_iters, marginals="superglue",
                         row_mask=rm, col_mask=cm).plan
    out = []
    for i, (m, n) in enumerate(sizes):
        bplan = bp[i, :m, :n] * (m + n)
        out.append(SequenceAlignment(sim[i, :m, :n], path[i, :m, :n], ot[i, :m, :n] * m, bplan,
                                     (1 - bplan.sum(0)).clamp(0, 1)))
    return out
