r"""How accurate are the alignments themselves? DTW, vanilla OT and Norton's bucket vs the truth.

The synthetic world knows which seconds each caption describes and which captions describe
nothing. This module measures, without any training, how well three alignments recover that
truth, as each noise knob of the corpus and each hyper-parameter of Norton varies:

* **DTW**: the minimum-cost monotone path on the cost ``-S`` (Norton Fig. 1, right);
* **OT**: the vanilla entropic plan of Eq. 2-3 (uniform marginals);
* **Norton**: the plan with the alignable prompt bucket of Eq. 6 (SuperGlue marginals, bucket
  value ``p`` = the bottom-``q`` quantile of the originally aligned pairs of the batch).

Inputs (the paper's training setting, Sec. 3.1 and App. B)
-----------------------------------------------------------
A video of :func:`nortonkit.synthetic.corpus.synthetic_example` is cut into one clip around each
caption's ASR span (:func:`nortonkit.lab.explore.clip_windows`, 3 to 16 s), so clip ``j`` and
caption ``j`` are the "originally aligned pair". The ``K`` pairs of a video are split into
sequences of at most ``seq_len = 8`` consecutive pairs (Norton's ``L = 8``); each sequence is
one ``K x K`` alignment problem. A seed's videos form the batch whose diagonal similarities set
``p``. Per caption and clip:

* captions: the oracle text embedding (:meth:`nortonkit.synthetic.corpus.World.embed_text`: the
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
  clips and captions (:func:`nortonkit.lab.explore.example_from_encoder`).

Noise knobs
-----------
Every :class:`nortonkit.synthetic.corpus.NoiseConfig` field can be swept (:data:`KNOBS` lists the
default sweep), plus two knobs applied here to the in-memory video (:func:`perturb_steps`;
the generator is not changed):

* ``reorder_rate``: each pair of adjacent steps is swapped in the *video* with this
  probability while the narration keeps the script order, so captions come in another order
  than the actions (the non-sequential correspondence DTW cannot follow);
* ``skip_rate``: each step is cut out of the video with this probability while its captions
  stay, so they describe something that is never shown (they count as irrelevant).

``NoiseConfig.step_skip_rate`` is not applied by ``synthetic_example`` (and in the corpus it
drops a step from video and narration alike, which is no alignment noise), hence ``skip_rate``.

Everything is deterministic in the seed; nothing here is fitted or tuned.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from ..alignment import dtw
from ..alignment_metrics import COUNTS, METRICS, alignment_metrics, pool_metrics
from ..data.text import load_tokenizer
from ..masking import masked_mean
from ..similarity import token_lse_similarity
from ..synthetic.corpus import NoiseConfig, SyntheticExample, synthetic_example
from ..transport import bucket_sinkhorn, bucket_value_from_quantile, sinkhorn
from ..validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_open_unit,
    check_positive,
    check_tensor,
)
from .explore import AlignmentExample, example_from_encoder, example_from_synthetic

__all__ = [
    "METHODS",
    "METRICS",
    "KNOBS",
    "STUDY_KNOBS",
    "ALPHAS",
    "QUANTILES",
    "EPSILONS",
    "SMOKE_SWEEP",
    "SequenceAlignment",
    "perturb_steps",
    "study_examples",
    "clip_caption_similarity",
    "sequence_slices",
    "align_sequences",
    "transport_accuracy",
    "transport_sweep",
    "summarize",
    "default_accuracy",
    "summary_table",
    "compare_methods",
    "paper_claims",
    "claims_markdown",
]

METHODS = ("dtw", "ot", "norton")
_BUCKET_KEYS = ("bucket_precision", "bucket_recall", "n_to_bucket", "n_irrelevant_to_bucket")
#: Knobs applied by :func:`perturb_steps` (not NoiseConfig fields).
STUDY_KNOBS = ("reorder_rate", "skip_rate")
_NOISE_FIELDS = tuple(f.name for f in dataclasses.fields(NoiseConfig))
#: The default noise sweep: each knob alone, every other at its default (levels include it).
KNOBS: dict[str, tuple[float, ...]] = {
    "irrelevant_rate": (0.0, 0.3, 0.5, 0.7, 0.8, 0.9),
    "async_rate": (0.0, 0.25, 0.5, 0.75, 1.0),
    "async_max_s": (3.0, 10.0, 20.0, 40.0),
    "reorder_rate": (0.0, 0.25, 0.5, 1.0),
    "skip_rate": (0.0, 0.2, 0.4, 0.6),
    "frame_noise": (1.0, 2.0, 3.0, 4.0, 6.0),
    "cutaway_rate": (0.0, 0.1, 0.3, 0.5),
}
ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # Eq. 5 temperature; Norton: 1
QUANTILES = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)  # bucket quantile q; Norton: 0.3
EPSILONS = (0.01, 0.03, 0.1, 0.3, 1.0)  # entropic regularisation; Norton: 0.1 for L_video
_DEFAULTS = dict(alpha=1.0, quantile=0.3, eps=0.1)
_PARAMETERS = tuple(_DEFAULTS)
#: A sweep of a few seconds for papermill smoke runs: ``transport_sweep(**SMOKE_SWEEP)``.
SMOKE_SWEEP: dict[str, Any] = dict(
    knobs={"irrelevant_rate": (0.0, 0.9), "reorder_rate": (0.0, 1.0)},
    alphas=(0.1, 1.0), quantiles=(0.3, 0.7), epsilons=(0.03, 0.1), seeds=range(2), n_videos=2,
)
_VIDEO_STRIDE = 1000  # video v of seed s is synthetic_example(seed=s * 1000 + v)
_PERTURB_TAG = 55


def _note(metric: str, m: Mapping[str, float]) -> str:
    if metric in _BUCKET_KEYS and math.isnan(m["n_to_bucket"]):
        return "undefined: method has no bucket"
    if metric in ("accuracy", "strict_accuracy") and m["n_alignable"] == 0:
        return "undefined: no alignable caption"
    if metric == "bucket_precision" and m["n_to_bucket"] == 0:
        return "undefined: no caption sent to the bucket"
    if metric == "bucket_recall" and m["n_irrelevant"] == 0:
        return "undefined: no irrelevant caption"
    return ""


# --------------------------------------------------------------------------------------------
# Inputs: videos, perturbations, sequences, similarities
# --------------------------------------------------------------------------------------------


def _check_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def perturb_steps(example: SyntheticExample, skip_rate: float = 0.0, reorder_rate: float = 0.0,
                  seed: int = 0) -> SyntheticExample:
    """Swap adjacent steps in the video and cut steps out of it, keeping every caption.

    Parameters
    ----------
    example : a :class:`~nortonkit.synthetic.corpus.SyntheticExample` (T seconds, S steps).
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


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


def _evaluate(examples: Sequence[AlignmentExample], alpha: float, quantile: float, eps: float,
              n_iters: int, seq_len: int | None, clip_repr: str) -> dict[str, dict[str, float]]:
    """Pooled metrics per method over every sequence of ``examples`` (one seed's batch)."""
    sims = [clip_caption_similarity(ex, alpha, clip_repr) for ex in examples]
    p = bucket_value_from_quantile(torch.cat([torch.diagonal(s) for s in sims]), quantile)
    blocks, truths, irrs = [], [], []
    for ex, s in zip(examples, sims):
        for sl in sequence_slices(s.shape[1], seq_len):
            blocks.append(s[sl, sl])
            truths.append(ex.truth[sl, sl].bool())
            irrs.append(ex.irrelevant[sl])
    found: dict[str, list[dict[str, float]]] = {k: [] for k in METHODS}
    for r, t, irr in zip(align_sequences(blocks, p, eps, n_iters), truths, irrs):
        found["dtw"].append(alignment_metrics(r.dtw_path, t, irr, scores=r.similarity))
        found["ot"].append(alignment_metrics(r.ot_plan, t, irr, scores=r.similarity))
        found["norton"].append(alignment_metrics(r.bucket_plan, t, irr, r.caption_to_bucket,
                                                 scores=r.similarity))
    return {k: pool_metrics(v) for k, v in found.items()}


def _rows(pooled: Mapping[str, Mapping[str, float]], seed: int, knob: str, level: float,
          params: Mapping[str, float]) -> list[dict[str, Any]]:
    rows = []
    for method, mets in pooled.items():
        if mets["n_alignable"] == 0:
            raise ValueError(
                f"seeds: seed {seed} ({knob}={level}) has no alignable caption among its "
                f"{int(mets['n_captions'])} captions; expected at least one (use more "
                "n_videos or a milder noise level)")
        for metric in (*METRICS, "irrelevant_share", *COUNTS):
            rows.append(dict(knob=knob, level=float(level), method=method, seed=seed,
                             metric=metric, value=mets[metric], note=_note(metric, mets),
                             **params))
    return rows


def _seeds(seeds: Iterable[int]) -> list[int]:
    out = list(seeds)
    if not out:
        raise ValueError("seeds: expected at least one seed, got none")
    for s in out:
        check_int_at_least("seeds", s, 0)
    return out


def _check_params(alpha: float, quantile: float, eps: float, n_iters: int,
                  seq_len: int | None, clip_repr: str) -> None:
    check_positive("alpha", alpha)
    check_open_unit("quantile", quantile)
    check_positive("eps", eps)
    check_int_at_least("n_iters", n_iters, 1)
    if seq_len is not None:
        check_int_at_least("seq_len", seq_len, 1)
    check_choice("clip_repr", clip_repr, ("tokens", "mean"))


def transport_accuracy(
    noise: NoiseConfig | Mapping[str, float] | None = None,
    *,
    skip_rate: float = 0.0,
    reorder_rate: float = 0.0,
    alpha: float = 1.0,
    quantile: float = 0.3,
    eps: float = 0.1,
    n_iters: int = 50,
    seq_len: int | None = 8,
    clip_repr: str = "tokens",
    seeds: Iterable[int] = range(5),
    n_videos: int = 4,
    n_steps: int = 6,
    model: Any = None,
    device: str | torch.device = "cpu",
    knob: str = "default",
    level: float = 0.0,
) -> pd.DataFrame:
    """Alignment metrics of DTW, OT and Norton for one configuration, one value per seed.

    Parameters
    ----------
    noise, skip_rate, reorder_rate, n_videos, n_steps, model, device : the videos
        (:func:`study_examples`).
    alpha : Eq. 5 temperature (``clip_repr="tokens"`` only).
    quantile : bucket quantile ``q``: ``p`` is the ``int(q K)``-th smallest of the ``K``
        originally aligned pairs of the seed's batch (Norton: 0.3).
    eps, n_iters : Sinkhorn (Norton: 0.1, 50).
    seq_len : pairs per sequence (Norton: ``L = 8``); None aligns each whole video at once.
    clip_repr : ``"tokens"`` (Eq. 5 on frame tokens) or ``"mean"`` (cosine of mean-pooled
        clips); see :func:`clip_caption_similarity`.
    seeds : one batch of ``n_videos`` videos per seed.
    knob, level : labels written into the ``knob`` and ``level`` columns.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``knob, level, method, seed, metric, value, note, alpha, quantile, eps``, one row
        per (method, seed, metric). ``metric`` is one of :data:`METRICS`, ``irrelevant_share``
        or a count (``n_alignable``, ...), each pooled over the seed's sequences
        (:func:`pool_metrics`). ``value`` is NaN only where ``note`` says why (the bucket
        metrics of DTW and OT, which have no bucket, are "undefined: method has no bucket").

    Notes
    -----
    Metrics: :func:`alignment_metrics`. Norton Eq. 2-3 (OT), Eq. 5 (similarity), Eq. 6 (bucket).

    Examples
    --------
    >>> df = transport_accuracy(seeds=[0], n_videos=2)
    >>> acc = df[df.metric == "accuracy"].set_index("method").value
    >>> sorted(acc.index), bool(acc.between(0, 1).all())
    (['dtw', 'norton', 'ot'], True)
    >>> df[(df.method == "ot") & (df.metric == "bucket_recall")].note.item()
    'undefined: method has no bucket'
    """
    _check_params(alpha, quantile, eps, n_iters, seq_len, clip_repr)
    cfg = _noise(noise)
    rows = []
    for s in _seeds(seeds):
        exs = study_examples(s, cfg, skip_rate, reorder_rate, n_videos, n_steps, model, device)
        pooled = _evaluate(exs, alpha, quantile, eps, n_iters, seq_len, clip_repr)
        rows += _rows(pooled, s, knob, level, dict(alpha=alpha, quantile=quantile, eps=eps))
    return pd.DataFrame(rows)


def _check_knobs(knobs: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
    if not isinstance(knobs, Mapping):
        raise ValueError(f"knobs: expected a mapping knob -> levels, got {type(knobs).__name__}")
    allowed = (*_NOISE_FIELDS, *STUDY_KNOBS)
    out = {}
    for name, levels in knobs.items():
        if name not in allowed:
            raise ValueError(f"knobs: expected names among {list(allowed)}, got {name!r}")
        levels = tuple(levels)
        if not levels:
            raise ValueError(f"knobs[{name!r}]: expected at least one level, got none")
        out[name] = levels
    return out


def _levels(name: str, values: Sequence[float]) -> tuple[float, ...]:
    values = tuple(values)
    for v in values:
        (check_open_unit if name == "quantiles" else check_positive)(name, v)
    return values


def transport_sweep(
    knobs: Mapping[str, Sequence[float]] = KNOBS,
    alphas: Sequence[float] = ALPHAS,
    quantiles: Sequence[float] = QUANTILES,
    epsilons: Sequence[float] = EPSILONS,
    seeds: Iterable[int] = range(5),
    *,
    n_videos: int = 4,
    n_steps: int = 6,
    n_iters: int = 50,
    seq_len: int | None = 8,
    clip_repr: str = "tokens",
    model: Any = None,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Each noise knob alone, then ``alpha``, ``q`` and ``eps`` at the default noise.

    Parameters
    ----------
    knobs : knob -> levels; NoiseConfig field names or :data:`STUDY_KNOBS`. Every other knob
        stays at its default (NoiseConfig defaults; study knobs 0).
    alphas, quantiles, epsilons : levels of ``alpha``, ``quantile`` and ``eps`` (knob names
        ``"alpha"``, ``"quantile"``, ``"eps"``), each with the others at Norton's values
        (1, 0.3, 0.1) and the videos of the default noise.
    seeds, n_videos, n_steps, n_iters, seq_len, clip_repr, model, device : as in
        :func:`transport_accuracy`.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`transport_accuracy` for ``knob="default"`` (level 0), every knob
        level and every parameter level.

    Examples
    --------
    >>> df = transport_sweep({"reorder_rate": (0.0, 1.0)}, alphas=(0.1,), quantiles=(0.5,),
    ...                      epsilons=(0.05,), seeds=[0], n_videos=1)
    >>> sorted(set(df.knob))
    ['alpha', 'default', 'eps', 'quantile', 'reorder_rate']
    """
    knobs = _check_knobs(knobs)
    params = {"alpha": _levels("alphas", alphas), "quantile": _levels("quantiles", quantiles),
              "eps": _levels("epsilons", epsilons)}
    _check_params(1.0, 0.3, 0.1, n_iters, seq_len, clip_repr)
    seeds = _seeds(seeds)
    common = dict(n_videos=n_videos, n_steps=n_steps, model=model, device=device)
    rows: list[dict[str, Any]] = []
    for s in seeds:  # the default noise: its videos serve the default and parameter sweeps
        exs = study_examples(s, None, **common)
        for name, levels in (("default", (None,)), *params.items()):
            for level in levels:
                kw = dict(_DEFAULTS) | ({} if level is None else {name: level})
                pooled = _evaluate(exs, n_iters=n_iters, seq_len=seq_len,
                                   clip_repr=clip_repr, **kw)
                rows += _rows(pooled, s, name, 0.0 if level is None else level, kw)
    frames = [pd.DataFrame(rows)]
    for name, levels in knobs.items():
        for level in levels:
            study = {name: level} if name in STUDY_KNOBS else {}
            noise = None if study else {name: level}
            frames.append(transport_accuracy(noise, **study, n_iters=n_iters, seq_len=seq_len,
                                             clip_repr=clip_repr, seeds=seeds, knob=name,
                                             level=level, **common))
    return pd.concat(frames, ignore_index=True)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count over seeds per (knob, level, method, metric).

    Returns
    -------
    pandas.DataFrame
        ``knob, level, method, metric, mean, std, n, note``: ``n`` counts the seeds with a
        defined value; ``mean`` is NaN only when none is defined, ``std`` when ``n < 2``, and
        ``note`` then says why.

    Examples
    --------
    >>> runs = pd.DataFrame(dict(knob="k", level=0.0, method="ot", seed=[0, 1],
    ...                          metric="accuracy", value=[0.5, 0.7], note=""))
    >>> summarize(runs)[["mean", "n"]].round(3).values.tolist()
    [[0.6, 2.0]]
    """
    need = {"knob", "level", "method", "seed", "metric", "value", "note"}
    if not isinstance(runs, pd.DataFrame) or not need <= set(runs.columns):
        got = list(runs.columns) if isinstance(runs, pd.DataFrame) else type(runs).__name__
        raise ValueError(f"runs: expected a DataFrame with columns {sorted(need)}, got {got}")
    rows = []
    for (knob, level, method, metric), g in runs.groupby(["knob", "level", "method", "metric"],
                                                          sort=False):
        vals = g["value"].dropna()
        notes = sorted(set(g.loc[g["value"].isna(), "note"]))
        note = "; ".join(notes)
        if len(vals) == 1:
            note = "; ".join(filter(None, [note, "std undefined: one seed"]))
        rows.append(dict(knob=knob, level=level, method=method, metric=metric,
                         mean=vals.mean() if len(vals) else math.nan,
                         std=vals.std(ddof=1) if len(vals) > 1 else math.nan, n=len(vals),
                         note=note))
    return pd.DataFrame(rows)


def default_accuracy(seeds: Iterable[int] = range(5), model: Any = None) -> dict[str, dict]:
    """Caption-to-segment accuracy (%) of each method at the corpus's default noise.

    Returns
    -------
    dict
        ``{"dtw": {"mean": x, "std": s, "n": k}, "ot": {...}, "norton": {...}}``: mean and
        sample std over seeds of :func:`alignment_metrics`'s ``accuracy`` in percent, ``n``
        seeds; Norton's defaults (``alpha = 1``, ``q = 0.3``, ``eps = 0.1``, ``L = 8``).

    Examples
    --------
    >>> acc = default_accuracy(seeds=[0, 1])
    >>> sorted(acc), sorted(acc["norton"]), acc["dtw"]["n"]
    (['dtw', 'norton', 'ot'], ['mean', 'n', 'std'], 2)
    """
    runs = transport_accuracy(seeds=seeds, model=model)
    acc = runs[runs["metric"] == "accuracy"]
    out = {}
    for method in METHODS:
        vals = acc.loc[acc["method"] == method, "value"] * 100
        out[method] = {"mean": float(vals.mean()),
                       "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                       "n": int(len(vals))}
    return out


# --------------------------------------------------------------------------------------------
# Reading the sweep: table, claims, figure
# --------------------------------------------------------------------------------------------


def summary_table(summary: pd.DataFrame, metric: str = "accuracy",
                  scale: float = 100.0) -> pd.DataFrame:
    """``mean ± std`` strings of one metric, index (knob, level), one column per method.

    >>> s = pd.DataFrame(dict(knob="k", level=0.0, method=["dtw", "ot"], metric="accuracy",
    ...                       mean=[0.5, 0.6], std=[0.1, 0.05], n=5, note=""))
    >>> summary_table(s).values.tolist()
    [['50.0 ± 10.0', '60.0 ± 5.0']]
    """
    sub = summary[summary["metric"] == metric]
    if sub.empty:
        raise ValueError(f"metric: expected one of {sorted(set(summary['metric']))}, "
                         f"got {metric!r}")
    cell = sub.apply(lambda r: "undefined" if r["n"] == 0 else
                     f"{r['mean'] * scale:.1f} ± {np.nan_to_num(r['std']) * scale:.1f}", axis=1)
    table = sub.assign(cell=cell).pivot(index=["knob", "level"], columns="method", values="cell")
    return table[[m for m in METHODS if m in table.columns]]


def _stat(summary: pd.DataFrame, knob: str, level: float, method: str,
          metric: str) -> tuple[float, float, int] | None:
    row = summary[(summary["knob"] == knob) & np.isclose(summary["level"], level)
                  & (summary["method"] == method) & (summary["metric"] == metric)]
    if row.empty or row["n"].iloc[0] == 0:
        return None
    return float(row["mean"].iloc[0]), float(row["std"].iloc[0]), int(row["n"].iloc[0])


def compare_methods(summary: pd.DataFrame, a: str, b: str, metric: str = "accuracy",
                    knob: str = "default", level: float = 0.0) -> dict[str, Any]:
    r"""Is ``a`` better than ``b``? Real only beyond twice the combined standard deviation.

    Returns ``delta = mean_a - mean_b``, ``sigma = sqrt(std_a^2 + std_b^2)`` and ``verdict``:
    ``"a > b"`` if ``delta > 2 sigma``, ``"a < b"`` if ``delta < -2 sigma``, ``"tie"``
    otherwise, ``"unresolved"`` with fewer than two seeds, ``"missing"`` if not swept.

    >>> s = pd.DataFrame(dict(knob="default", level=0.0, method=["norton", "dtw"],
    ...                       metric="accuracy", mean=[0.8, 0.5], std=[0.05, 0.05], n=5))
    >>> compare_methods(s, "norton", "dtw")["verdict"]
    'norton > dtw'
    """
    sa, sb = _stat(summary, knob, level, a, metric), _stat(summary, knob, level, b, metric)
    if sa is None or sb is None:
        return dict(delta=math.nan, sigma=math.nan, verdict="missing", a=sa, b=sb)
    delta = sa[0] - sb[0]
    if min(sa[2], sb[2]) < 2:
        return dict(delta=delta, sigma=math.nan, verdict="unresolved", a=sa, b=sb)
    sigma = math.hypot(sa[1], sb[1])
    verdict = f"{a} > {b}" if delta > 2 * sigma else f"{a} < {b}" if delta < -2 * sigma \
        else "tie"
    return dict(delta=delta, sigma=sigma, verdict=verdict, a=sa, b=sb)


def _pct(s: tuple[float, float, int] | None) -> str:
    return "n/a" if s is None else f"{100 * s[0]:.1f} ± {100 * np.nan_to_num(s[1]):.1f}"


def _drop(summary: pd.DataFrame, knob: str, method: str) -> dict[str, Any] | None:
    """Accuracy at the lowest minus at the highest level of ``knob`` (a real drop > 2 sigma)."""
    levels = sorted(summary.loc[summary["knob"] == knob, "level"].unique())
    if len(levels) < 2:
        return None
    lo = _stat(summary, knob, levels[0], method, "accuracy")
    hi = _stat(summary, knob, levels[-1], method, "accuracy")
    if lo is None or hi is None:
        return None
    sigma = math.hypot(lo[1], hi[1])
    real = bool(min(lo[2], hi[2]) >= 2 and lo[0] - hi[0] > 2 * sigma)
    return dict(lo=lo, hi=hi, levels=(levels[0], levels[-1]), real=real)


def paper_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """The claims of Norton Fig. 1 and Fig. 3 (App. G), checked against the sweep.

    Returns
    -------
    pandas.DataFrame
        ``claim, verdict, evidence``: verdict ``"holds"``, ``"does not hold"``, ``"no real
        difference"`` (within twice the combined std) or ``"not tested"`` (not in the sweep).

    Notes
    -----
    Claims: Norton beats DTW and vanilla OT at the default noise (Fig. 3); OT follows
    asynchronous and reordered narration better than DTW (Fig. 1, right); Norton beats vanilla
    OT when most captions are irrelevant, because OT must place every caption (App. G); the
    bucket keeps Norton's accuracy as the irrelevant rate grows while DTW's drops (Fig. 1); the
    bucket's precision for irrelevant captions beats the irrelevant share (sending at random).
    """
    rows = []

    def pair(claim: str, a: str, b: str, knob: str, level: float | None,
             metric: str = "accuracy", b_metric: str | None = None) -> None:
        if level is None:
            rows.append(dict(claim=claim, verdict="not tested", evidence=f"{knob} not swept"))
            return
        sub = summary
        if b_metric is not None:  # compare a metric of method a with another of the same rows
            own = summary[summary["method"] == a]
            sub = pd.concat([own[own["metric"] == metric],
                             own[own["metric"] == b_metric].assign(method=b, metric=metric)])
        c = compare_methods(sub, a, b, metric, knob, level)
        verdict = {"missing": "not tested", "unresolved": "no real difference",
                   "tie": "no real difference", f"{a} > {b}": "holds"}.get(c["verdict"],
                                                                         "does not hold")
        where = "default noise" if knob == "default" else f"{knob} = {level:g}"
        rows.append(dict(claim=claim, verdict=verdict, evidence=(
            f"{where}: {a} {_pct(c['a'])} vs {b} {_pct(c['b'])} (% {metric}; difference "
            f"{100 * c['delta']:+.1f}, 2 sigma = {200 * np.nan_to_num(c['sigma']):.1f})")))

    def top(knob: str) -> float | None:
        levels = summary.loc[summary["knob"] == knob, "level"]
        return None if levels.empty else float(levels.max())

    pair("Norton aligns captions better than DTW", "norton", "dtw", "default", 0.0)
    pair("Norton aligns captions better than vanilla OT", "norton", "ot", "default", 0.0)
    pair("OT follows reordered narration better than DTW", "ot", "dtw", "reorder_rate",
         top("reorder_rate"))
    pair("OT follows asynchronous narration better than DTW", "ot", "dtw", "async_rate",
         top("async_rate"))
    pair("With mostly irrelevant captions the bucket beats vanilla OT", "norton", "ot",
         "irrelevant_rate", top("irrelevant_rate"))
    n, d = _drop(summary, "irrelevant_rate", "norton"), _drop(summary, "irrelevant_rate", "dtw")
    claim = "Norton's bucket keeps caption accuracy as the irrelevant rate grows, DTW does not"
    if n is None or d is None:
        rows.append(dict(claim=claim, verdict="not tested", evidence="irrelevant_rate not swept"))
    else:
        verdict = "holds" if (not n["real"] and d["real"]) else "does not hold"
        lv = "irrelevant_rate {:g} -> {:g}".format(*n["levels"])
        rows.append(dict(claim=claim, verdict=verdict, evidence=(
            f"{lv}: Norton {_pct(n['lo'])} -> {_pct(n['hi'])} (real drop: {n['real']}), DTW "
            f"{_pct(d['lo'])} -> {_pct(d['hi'])} (real drop: {d['real']})")))
    pair("The bucket catches irrelevant captions better than chance", "norton", "chance",
         "default", 0.0, metric="bucket_precision", b_metric="irrelevant_share")
    return pd.DataFrame(rows)


def claims_markdown(claims: pd.DataFrame, n_seeds: int | None = None) -> str:
    """The claims table as a markdown paragraph with a bullet per claim.

    >>> c = pd.DataFrame(dict(claim=["x"], verdict=["holds"], evidence=["1 vs 2"]))
    >>> text = claims_markdown(c, 5)
    >>> text.splitlines()[0][:50]
    "**The paper's claims on this corpus** (5 seeds; a "
    >>> text.splitlines()[-1]
    '- **holds**: x. 1 vs 2'
    """
    seeds = "" if n_seeds is None else f"{n_seeds} seeds; "
    head = (f"**The paper's claims on this corpus** ({seeds}a difference is real beyond twice "
            "the combined std):\n")
    lines = [f"- **{r.verdict}**: {r.claim}. {r.evidence}" for r in claims.itertuples()]
    return head + "\n" + "\n".join(lines)
