"""Noise-robustness sweep: retrieval and alignment quality against each noise knob.

For every noise knob of the synthetic corpus (:class:`nortonkit.data.synthetic.NoiseConfig`) and
every level of it, :func:`noise_sweep` generates a small corpus with that knob changed (all
other knobs at their defaults), trains the ``videoclip``, ``tempclr`` and ``norton`` presets
(:mod:`nortonkit.presets`) for the same number of updates from the same initialisation, and
evaluates each model on

* YouCookII-like clip retrieval (caption -> clip R@1, Norton Table 3),
* YouCookII-like video-paragraph retrieval, background removed (paragraph -> video R@1 with
  DTW on ``-cosine``, Norton Table 1),
* HTM-Align-like alignment recall (Norton Table 9, App. D): a sentence counts as recalled
  when its most similar second, averaged over the 32 s / 8 s sliding windows that see it,
  falls inside its true segment.

The knob changes the HowTo100M-like training narration (coarse and word-level noise) and the
features of every dataset (frame-level and visual noise); the evaluation sets change with it
where the generator applies the knob to them (HTM-Align narration, every video's frames). All
methods share every setting: nothing is tuned per method, and the sweep reports whatever it
measures. :func:`claims_table` states per knob and level whether Norton is ahead of the best
baseline by more than one standard deviation, behind it, or indistinguishable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from . import metrics
from .alignment import dtw
from .metrics import recall_at_k
from .validation import check_choice, check_int_at_least

__all__ = [
    "KNOBS",
    "SMOKE_KNOBS",
    "METHODS",
    "METRICS",
    "SweepResult",
    "noise_sweep",
    "evaluate_encoder",
    "summarize",
    "sweep_frame",
    "claims_table",
    "clip_r1",
    "paragraph_r1",
    "htm_align_recall",
]

# knob -> levels; one knob per kind of noise named by Norton Sec. 1 (the middle level is the
# generator's default).
KNOBS: dict[str, tuple[float, ...]] = {
    "irrelevant_rate": (0.3, 0.7, 0.9),  # coarse: irrelevant sentences
    "async_rate": (0.0, 0.5, 1.0),  # coarse: asynchronous sentences
    "filler_words_mean": (0.0, 2.0, 6.0),  # fine: filler words per sentence
    "cutaway_rate": (0.0, 0.1, 0.4),  # fine: background frames inside steps
    "frame_noise": (1.5, 3.0, 4.5),  # visual: per-second feature noise
}
SMOKE_KNOBS: dict[str, tuple[float, ...]] = {"irrelevant_rate": (0.3, 0.9)}
METHODS: tuple[str, ...] = ("videoclip", "tempclr", "norton")
METRICS: tuple[str, ...] = ("clip_r1", "paragraph_r1", "align_recall")

# A corpus a little smaller than the "smoke" size: only the datasets the sweep reads matter.
_CORPUS = dict(
    n_tasks=24, how2_train=48, how2_val=8, how2_shard_size=64, how2_min_duration_s=40,
    how2_max_duration_s=90, youcook_val=24, youcook_train=0, youcook_recipes=6,
    youcook_min_duration_s=40, youcook_max_duration_s=90, msrvtt_test=5, msrvtt_train=5,
    msrvtt_captions=1, coin_videos=8, coin_tasks=2, htm_align_videos=6,
)


class SweepResult(NamedTuple):
    """Outcome of :func:`noise_sweep`.

    Attributes
    ----------
    runs : DataFrame, one row per (knob, level, method, seed) with columns ``knob``,
        ``level``, ``method``, ``seed``, ``clip_r1``, ``paragraph_r1``, ``align_recall`` (in %),
        ``final_loss`` and ``seconds``.
    summary : DataFrame, one row per (knob, level, method) with ``<metric>_mean``,
        ``<metric>_std`` (sample std over seeds, NaN for one seed) and ``n_seeds``.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame


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
        \hat v(p) = \arg\min_v \mathrm{DTW}\big(-\cos(v_{i}, t_{j})\big)_{i \in v,\ j \in p}

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
    Norton Table 1 (DTW row): a paragraph is retrieved when DTW over its captions and the
    candidate's clips is lowest for its own video.

    Examples
    --------
    >>> v = torch.eye(4)
    >>> paragraph_r1(v, v, [torch.tensor([0, 1]), torch.tensor([2, 3])])
    100.0
    """
    if not blocks:
        raise ValueError("blocks: expected at least one video, got none")
    g, k = len(blocks), max(len(b) for b in blocks)
    idx = torch.zeros(g, k, dtype=torch.int64)
    mask = torch.zeros(g, k, dtype=torch.bool)
    for i, b in enumerate(blocks):
        idx[i, : len(b)], mask[i, : len(b)] = b, True
    sim = F.normalize(video.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T  # (N, N)
    cost = -sim[idx[:, None, :, None], idx[None, :, None, :]]  # (G videos, G paragraphs, K, K)
    rows = mask[:, None, :].expand(g, g, k).reshape(g * g, k)
    cols = mask[None, :, :].expand(g, g, k).reshape(g * g, k)
    score = dtw(cost.reshape(g * g, k, k), rows, cols).cost.reshape(g, g)  # (video, paragraph)
    return 100.0 * recall_at_k(-score.T, 1)  # (paragraph, video), ties count against


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
    from .data.htm_align import load_htm_align
    from .data.text import encode_texts, load_tokenizer
    from .data.youcook import load_youcook_paragraphs

    model.eval()
    tok = load_tokenizer()

    def text_vectors(texts: list[str]) -> Tensor:
        batch = encode_texts(texts, tok, max_tokens=30)
        return model.encode_text(batch.input_ids, batch.attention_mask).pooled

    par = load_youcook_paragraphs(data_root, max_video_len=16)
    clips = par.clips
    video = torch.cat([model.encode_video(clips.video[i : i + 256], clips.video_mask[i : i + 256])
                       .pooled for i in range(0, len(clips.video), 256)])  # (N, H)
    text = text_vectors(list(clips.captions))  # (N, H)
    return {
        "clip_r1": clip_r1(text, video),
        "paragraph_r1": paragraph_r1(text, video, par.blocks),
        "align_recall": htm_align_recall(model, load_htm_align(data_root), text_vectors),
    }


# ---------------------------------------------------------------------------------- the sweep


def _train_config(root: Path, method: str, seed: int, steps: int, out_dir: Path,
                  device: str) -> Any:
    from .config import config_from_dict

    return config_from_dict({
        "preset": method,
        "model": {"preset": "tiny", "hidden_size": 32, "num_heads": 2, "video_layers": 1,
                  "text_layers": 1, "intermediate_size": 64, "trainable": "all"},
        "data": {"root": str(root), "videos_per_batch": 8, "clips_per_video": 8},
        "retrieval": {"mode": "off"},
        "optim": {"lr": 2e-3, "warmup_updates": max(1, steps // 10), "total_num_update": steps},
        "train": {"out_dir": str(out_dir), "seed": seed, "epochs": 10_000, "max_steps": steps,
                  "log_every": steps, "val_every": 0, "save_every": 0, "keep_last": 0,
                  "progress": False, "tensorboard": False, "threads": 1, "device": device,
                  "resume": False},
    })


def _check_knobs(knobs: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
    from .data.synthetic import NoiseConfig

    names = [f.name for f in dataclasses.fields(NoiseConfig)]
    if not isinstance(knobs, Mapping) or not knobs:
        raise ValueError(f"knobs: expected a non-empty mapping knob -> levels, got {knobs!r}")
    out = {}
    for knob, levels in knobs.items():
        check_choice("knobs", knob, names)
        levels = tuple(float(x) for x in levels)
        if not levels:
            raise ValueError(f"knobs[{knob!r}]: expected at least one level, got none")
        for x in levels:  # NoiseConfig validates the range and names the knob
            NoiseConfig(**{knob: x})
        out[knob] = levels
    return out


def noise_sweep(
    knobs: Mapping[str, Sequence[float]] | None = None,
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0, 1),
    steps: int = 30,
    work_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> SweepResult:
    r"""Train and evaluate every method at every level of every noise knob, over seeds.

    Parameters
    ----------
    knobs : knob name (a :class:`~nortonkit.data.synthetic.NoiseConfig` field) -> levels;
        default :data:`KNOBS`.
    methods : preset names (:mod:`nortonkit.presets`); default VideoCLIP, TempCLR, Norton.
    seeds : each seed sets the corpus seed and the training seed (same for every method).
    steps : updates per training run (8 videos x 8 clips per batch).
    work_dir : where corpora and runs are written (default: a temporary folder, removed).
    device : ``"cpu"`` or ``"cuda"``.
    progress : show a tqdm bar over runs.

    Returns
    -------
    SweepResult
        ``runs`` (one row per knob, level, method, seed) and ``summary`` (mean and std over
        seeds); metrics in percent.

    Notes
    -----
    Norton Sec. 1 names the noise (asynchronous and irrelevant clip-caption pairs,
    fine-grained word and frame noise); Eq. 1 with the presets' ``beta`` / ``lambda``
    distinguishes the methods. Cost: ``len(knobs) x levels x seeds`` corpora and ``x methods``
    training runs of ``steps`` updates each (about 1-3 s per run on one CPU core).

    Examples
    --------
    A full call takes minutes (see ``tests/test_robustness.py`` for a tiny one); arguments
    are checked before anything is generated:

    >>> noise_sweep({"irrelevant_rate": (1.0,)})
    Traceback (most recent call last):
    ...
    ValueError: irrelevant_rate: expected a number in [0, 1), got 1.0
    """
    from .checkpoint import load_checkpoint
    from .data.synthetic import NoiseConfig, SyntheticConfig, generate_corpus
    from .presets import preset_names
    from .train import fit

    knobs = _check_knobs(KNOBS if knobs is None else knobs)
    methods = tuple(methods)
    if not methods:
        raise ValueError("methods: expected at least one preset name, got none")
    for m in methods:
        check_choice("methods", m, preset_names())
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    for s in seeds:
        check_int_at_least("seeds", s, 0)
    check_int_at_least("steps", steps, 1)
    check_choice("device", device, ("cpu", "cuda"))

    jobs = [(k, lv, s) for k, levels in knobs.items() for lv in levels for s in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs) * len(methods), desc="noise sweep", unit="run")
    rows = []
    with contextlib.ExitStack() as stack:
        base = Path(work_dir) if work_dir is not None else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="nortonkit-sweep-")))
        for knob, level, seed in jobs:
            tag = f"{knob}={level:g}/seed{seed}"
            cfg = SyntheticConfig(seed=seed, noise=NoiseConfig(**{knob: level}), **_CORPUS)
            root = generate_corpus(base / tag / "data", cfg, progress=False).root
            for method in methods:
                t0 = time.perf_counter()
                train_cfg = _train_config(root, method, seed, steps, base / tag / method, device)
                with contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    fitted = fit(train_cfg)
                model = load_checkpoint(fitted.last_checkpoint).model
                metrics = evaluate_encoder(model, root)
                loss = float(fitted.train_log[-1]["loss"]) if fitted.train_log else math.nan
                rows.append(dict(knob=knob, level=level, method=method, seed=seed, **metrics,
                                 final_loss=loss, seconds=round(time.perf_counter() - t0, 2)))
                if bar is not None:
                    bar.set_postfix_str(f"{tag} {method}")
                    bar.update(1)
        if bar is not None:
            bar.close()
    runs = pd.DataFrame(rows)
    return SweepResult(runs, summarize(runs))


# ---------------------------------------------------------------------------------- reading it


def summarize(runs: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean and standard deviation over seeds per (knob, level, method).

    Parameters
    ----------
    runs : the ``runs`` frame of :func:`noise_sweep`.
    metrics : metric columns to aggregate.

    Returns
    -------
    DataFrame with ``knob, level, method, n_seeds`` and ``<metric>_mean``, ``<metric>_std``
    (sample standard deviation, NaN with one seed).

    Examples
    --------
    >>> runs = pd.DataFrame(dict(knob="async_rate", level=[0.5, 0.5], method="norton",
    ...                          seed=[0, 1], clip_r1=[10.0, 20.0]))
    >>> row = summarize(runs, ["clip_r1"]).iloc[0]
    >>> float(row.clip_r1_mean), round(float(row.clip_r1_std), 4), int(row.n_seeds)
    (15.0, 7.0711, 2)
    """
    missing = [c for c in ("knob", "level", "method", "seed", *metrics) if c not in runs]
    if missing:
        raise ValueError(f"runs: expected columns {missing} (from noise_sweep), "
                         f"got {list(runs.columns)}")
    g = runs.groupby(["knob", "level", "method"], sort=True)
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n_seeds"] = g["seed"].nunique()
    return out.reset_index()


def sweep_frame(runs: pd.DataFrame, knob: str) -> pd.DataFrame:
    """The runs of one knob with ``level`` renamed to the knob's name (for plotting).

    Examples
    --------
    >>> runs = pd.DataFrame(dict(knob=["a", "b"], level=[1.0, 2.0], method="m", seed=0))
    >>> list(sweep_frame(runs, "b").columns), sweep_frame(runs, "b")["b"].tolist()
    (['knob', 'b', 'method', 'seed'], [2.0])
    """
    check_choice("knob", knob, sorted(set(runs["knob"])))
    return runs[runs["knob"] == knob].rename(columns={"level": knob})


def claims_table(summary: pd.DataFrame, metric: str, method: str = "norton") -> pd.DataFrame:
    """Where ``method`` is ahead of, behind, or level with the best other method.

    Parameters
    ----------
    summary : the ``summary`` frame of :func:`noise_sweep`.
    metric : one of :data:`METRICS`.
    method : the method under test (Norton).

    Returns
    -------
    DataFrame, one row per (knob, level): ``ours``, ``best_other``, ``best_other_method``,
    ``delta = ours - best_other`` and ``verdict``: "ahead" / "behind" when ``|delta|``
    exceeds the larger of the two standard deviations (and 0.5 points), else "level".

    Notes
    -----
    Norton's claim is robustness to the noise of Sec. 1; this reads the sweep without any
    tuning, so a "behind" is reported as such.

    Examples
    --------
    >>> s = pd.DataFrame(dict(knob="k", level=0.1, method=["norton", "tempclr"],
    ...                       clip_r1_mean=[30.0, 20.0], clip_r1_std=[1.0, 2.0]))
    >>> claims_table(s, "clip_r1")[["delta", "verdict"]].values.tolist()
    [[10.0, 'ahead']]
    """
    mean, std = f"{metric}_mean", f"{metric}_std"
    for col in (mean, std):
        if col not in summary:
            raise ValueError(f"summary: expected column {col!r}, got {list(summary.columns)}")
    check_choice("method", method, sorted(set(summary["method"])))
    rows = []
    for (knob, level), g in summary.groupby(["knob", "level"], sort=True):
        ours = g[g["method"] == method]
        others = g[g["method"] != method]
        if ours.empty or others.empty:
            continue
        best = others.loc[others[mean].idxmax()]
        o_mean, o_std = float(ours[mean].iloc[0]), float(np.nan_to_num(ours[std].iloc[0]))
        delta = o_mean - float(best[mean])
        margin = max(o_std, float(np.nan_to_num(best[std])), 0.5)
        verdict = "ahead" if delta > margin else "behind" if delta < -margin else "level"
        rows.append(dict(knob=knob, level=level, ours=o_mean, best_other=float(best[mean]),
                         best_other_method=best["method"], delta=delta, verdict=verdict))
    return pd.DataFrame(rows)
