r"""How accurate are the alignments themselves? DTW, vanilla OT and Norton's bucket vs the truth.

The synthetic world knows which seconds each caption describes and which captions describe
nothing. This module measures, without any training, how well three alignments recover that
truth, as each noise knob of the corpus and each hyper-parameter of Norton varies:

* **DTW**: the minimum-cost monotone path on the cost ``-S`` (Norton Fig. 1, right);
* **OT**: the vanilla entropic plan of Eq. 2-3 (uniform marginals);
* **Norton**: the plan with the alignable prompt bucket of Eq. 6 (SuperGlue marginals, bucket
  value ``p`` = the bottom-``q`` quantile of the originally aligned pairs of the batch).

Noise knobs
-----------
Every :class:`nortonkit.synthetic.config.NoiseConfig` field can be swept (:data:`KNOBS` lists the
default sweep), plus two knobs applied here to the in-memory video
(:func:`~nortonkit.lab.transport_study_align.perturb_steps`; the generator is not changed):

* ``reorder_rate``: each pair of adjacent steps is swapped in the *video* with this
  probability while the narration keeps the script order, so captions come in another order
  than the actions (the non-sequential correspondence DTW cannot follow);
* ``skip_rate``: each step is cut out of the video with this probability while its captions
  stay, so they describe something that is never shown (they count as irrelevant).

``NoiseConfig.step_skip_rate`` is not applied by ``synthetic_example`` (and in the corpus it
drops a step from video and narration alike, which is no alignment noise), hence ``skip_rate``.

Everything is deterministic in the seed; nothing here is fitted or tuned.

The videos, similarities, sequences and the three alignments of one seed's batch
(:func:`~nortonkit.lab.transport_study_align.study_examples`,
:func:`~nortonkit.lab.transport_study_align.align_sequences`; the inputs in detail) are
:mod:`nortonkit.lab.transport_study_align`; reading the sweep (mean ± std over seeds, the
table, the paper-claims verdicts) is :mod:`nortonkit.lab.transport_study_summary`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from ..alignment_metrics import COUNTS, METRICS, alignment_metrics, pool_metrics
from ..synthetic.config import NoiseConfig
from ..transport import bucket_value_from_quantile
from ..validation import check_choice, check_int_at_least, check_open_unit, check_positive
from .explore_examples import AlignmentExample
from .transport_study_align import (
    _NOISE_FIELDS,
    STUDY_KNOBS,
    _noise,
    align_sequences,
    clip_caption_similarity,
    sequence_slices,
    study_examples,
)

__all__ = [
    "METHODS",
    "METRICS",
    "KNOBS",
    "ALPHAS",
    "QUANTILES",
    "EPSILONS",
    "SMOKE_SWEEP",
    "transport_accuracy",
    "transport_sweep",
    "default_accuracy",
]

METHODS = ("dtw", "ot", "norton")
_BUCKET_KEYS = ("bucket_precision", "bucket_recall", "n_to_bucket", "n_irrelevant_to_bucket")
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
