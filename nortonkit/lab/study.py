r"""The paper's two-stage recipe on the synthetic corpus, over seeds, read with error bars.

Stage 1 (:func:`stage1_config`, ``configs/synthetic_stage1.yaml``) pre-trains a dual encoder
with VideoCLIP's contrastive loss: the synthetic "VideoCLIP" checkpoint. Stage 2
(:func:`post_train_config`, ``configs/synthetic_stage2.yaml``) post-trains every compared
method from that same checkpoint with the same budget (Norton Sec. 4: VideoCLIP continued,
TempCLR, Norton, and the Table 7 rows A-J), LayerNorm only as the paper does or every
parameter (``trainable="all"``). Each run is scored by
:func:`nortonkit.lab.robustness.evaluate_encoder` (synthetic YouCookII clip R@1, paragraph R@1
with DTW on the annotated segments, HTM-Align recall).

:func:`run_methods` and :func:`noise_sweep` return tidy rows (one per method, seed and
metric); :func:`summarize` gives mean, std and ``n``; :func:`verdict` calls a difference real
only beyond twice the combined standard deviation; :func:`orderings` checks the paper's
orderings against the numbers and says which hold on this corpus. Nothing is tuned per method.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from ..checkpoint import load_checkpoint
from ..io import atomic_write
from ..synthetic.config import SyntheticConfig
from ..synthetic.corpus import ensure_corpus, generate_corpus
from ..train.config import TrainConfig, load_config
from ..train.loop import fit
from ..train.presets import preset_names
from ..validation import check_choice, check_int_at_least
from .robustness import evaluate_encoder

__all__ = ["PROFILES", "Profile", "METRICS", "METRIC_LABELS", "stage1_config",
           "post_train_config", "post_train", "run_methods", "noise_sweep", "summarize",
           "verdict", "paper_table", "orderings", "orderings_markdown", "summary_json",
           "write_json", "ensure_stage1", "gap_closed", "MIN_DIFFERENCE", "noise_verdicts"]

#: metric column -> the paper's name (percent).
METRIC_LABELS: dict[str, str] = {
    "clip_r1": "YouCookII clip R@1",
    "paragraph_r1": "YouCookII paragraph R@1 (DTW, bg removed)",
    "align_recall": "HTM-Align recall",
}
METRICS: tuple[str, ...] = tuple(METRIC_LABELS)
#: Table 7's rows in the paper's order; Norton is row J.
TABLE7: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H", "I", "norton")


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much of the study to run: updates, methods, seeds, noise levels."""

    name: str
    stage1_steps: int  # updates of stage 1
    post_steps: int  # updates of every stage-2 run
    methods: tuple[str, ...]  # presets compared in stage 2
    seeds: tuple[int, ...]  # post-training seeds (stage 1 runs once, seed 0)
    noise: dict[str, tuple[float, ...]]  # knob -> levels of the post-training noise sweep
    noise_methods: tuple[str, ...]
    all_params_methods: tuple[str, ...] = ()  # also post-trained with trainable="all"
    workers: int = 2  # runs in parallel (one thread each)
    corpus: str = "default"  # synthetic corpus size


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 4, 2, ("videoclip", "norton"), (0, 1), {"irrelevant_rate": (0.3,)},
                     ("norton",), corpus="smoke"),
    "demo": Profile("demo", 300, 40, ("videoclip", "tempclr", "norton"), (0, 1, 2), {}, ()),
    "full": Profile("full", 300, 100, ("videoclip", "tempclr", *TABLE7), (0, 1, 2),
                    {"irrelevant_rate": (0.3, 0.6, 0.9)}, ("videoclip", "tempclr", "norton"),
                    all_params_methods=("videoclip", "tempclr", "norton")),
}


def _yaml(name: str) -> str:
    return str(resources.files("nortonkit") / "configs" / name)


def _quiet() -> list[str]:
    return ["train.progress=false", "train.tensorboard=false", "train.resume=false"]


def stage1_config(data_root: str | os.PathLike, out_dir: str | os.PathLike,
                  steps: int | None = None, synthetic: str | None = "default", seed: int = 0,
                  device: str = "cpu", smoke: bool = False) -> TrainConfig:
    """``configs/synthetic_stage1.yaml`` re-rooted: the synthetic VideoCLIP pre-training.

    >>> cfg = stage1_config("d", "o", steps=120)
    >>> cfg.preset, cfg.train.max_steps, cfg.optim.total_num_update, cfg.model.trainable
    ('videoclip', 120, 120, 'all')
    """
    over = [f"data.root={data_root}", f"train.out_dir={out_dir}", f"train.seed={seed}",
            f"train.device={device}", f"data.synthetic={synthetic or 'null'}", *_quiet()]
    if smoke:
        over += _SMOKE_MODEL + ["data.videos_per_batch=4", "train.val_every=0",
                                "optim.warmup_updates=1"]
    if steps is not None:
        over += [f"train.max_steps={steps}", f"optim.total_num_update={max(steps, 2)}"]
    return load_config(_yaml("synthetic_stage1.yaml"), over)


_SMOKE_MODEL = ["model.hidden_size=32", "model.intermediate_size=64", "model.num_heads=2"]


def post_train_config(method: str, init_checkpoint: str | os.PathLike,
                      data_root: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0,
                      steps: int = 100, trainable: str = "layernorm_only",
                      synthetic: str | None = "default", device: str = "cpu",
                      smoke: bool = False) -> TrainConfig:
    """``configs/synthetic_stage2.yaml``: post-train ``method`` from ``init_checkpoint``.

    Parameters
    ----------
    method : a preset of :mod:`nortonkit.train.presets` (``videoclip``, ``tempclr``, ``norton``,
        ``A`` ... ``J``).
    init_checkpoint : the stage-1 checkpoint folder (its model sizes must match the yaml).
    trainable : ``"layernorm_only"`` (Norton's post-training) or ``"all"``.

    >>> cfg = post_train_config("tempclr", "ckpt", "d", "o", steps=50)
    >>> cfg.preset, cfg.model.trainable, cfg.train.init_checkpoint, cfg.loss.measure
    ('tempclr', 'layernorm_only', 'ckpt', 'dtw')
    >>> post_train_config("nope", "ckpt", "d", "o")
    Traceback (most recent call last):
    ...
    ValueError: method: expected one of (...), got 'nope'
    """
    check_choice("method", method, preset_names())
    check_choice("trainable", trainable, ("layernorm_only", "all"))
    check_int_at_least("steps", steps, 1)
    over = [f"preset={method}", f"model.trainable={trainable}",
            f"train.init_checkpoint={init_checkpoint}", f"data.root={data_root}",
            f"train.out_dir={out_dir}", f"train.seed={seed}", f"train.device={device}",
            f"data.synthetic={synthetic or 'null'}", f"train.max_steps={steps}",
            f"optim.total_num_update={max(steps, 2)}",
            f"optim.warmup_updates={max(1, min(10, steps // 5))}", *_quiet()]
    if smoke:
        over += _SMOKE_MODEL + ["data.videos_per_batch=2"]
    return load_config(_yaml("synthetic_stage2.yaml"), over)


def post_train(config: TrainConfig) -> dict[str, float]:
    """Run one stage-2 config and score it: ``{metric: percent, "seconds": s}``."""
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        fitted = fit(config)
    model = load_checkpoint(fitted.last_checkpoint).model
    scores = evaluate_encoder(model, config.data.root)
    loss = float(fitted.train_log[-1]["loss"]) if fitted.train_log else math.nan
    return dict(scores, final_loss=loss, seconds=round(time.perf_counter() - t0, 1))


def _job(args: tuple[dict[str, Any], dict[str, Any]]) -> list[dict[str, Any]]:
    keys, kwargs = args
    scores = post_train(post_train_config(**kwargs))
    meta = {k: scores.pop(k) for k in ("final_loss", "seconds")}
    return [dict(keys, metric=m, value=v, **meta) for m, v in scores.items()]


def _run(jobs: list[tuple[dict, dict]], workers: int) -> pd.DataFrame:
    check_int_at_least("workers", workers, 1)
    if workers == 1 or len(jobs) == 1:
        rows = [r for j in jobs for r in _job(j)]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            rows = [r for out in pool.map(_job, jobs) for r in out]
    return pd.DataFrame(rows)


def run_methods(init_checkpoint: str | os.PathLike, data_root: str | os.PathLike,
                work_dir: str | os.PathLike, methods: Sequence[str] = ("videoclip", "norton"),
                seeds: Sequence[int] = (0, 1, 2), steps: int = 100,
                trainable: str = "layernorm_only", workers: int = 2,
                synthetic: str | None = "default", device: str = "cpu",
                smoke: bool = False) -> pd.DataFrame:
    """Post-train every method from the same checkpoint for every seed and score it.

    Returns
    -------
    pandas.DataFrame
        Tidy rows ``method, seed, trainable, metric, value`` (percent) plus ``final_loss`` and
        ``seconds`` of the run.
    """
    if not methods or not seeds:
        raise ValueError(f"methods, seeds: expected at least one of each, got {methods!r}, "
                         f"{seeds!r}")
    for m in methods:
        check_choice("methods", m, preset_names())
    jobs = [(dict(method=m, seed=s, trainable=trainable),
             dict(method=m, init_checkpoint=str(init_checkpoint), data_root=str(data_root),
                  out_dir=str(Path(work_dir) / f"{m}-{trainable}-seed{s}"), seed=s,
                  steps=steps, trainable=trainable, synthetic=synthetic, device=device,
                  smoke=smoke)) for m in methods for s in seeds]
    return _run(jobs, workers)


def noise_sweep(init_checkpoint: str | os.PathLike, work_dir: str | os.PathLike,
                knobs: Mapping[str, Sequence[float]], methods: Sequence[str] = ("videoclip",
                                                                               "norton"),
                seeds: Sequence[int] = (0, 1, 2), steps: int = 100, corpus: str = "default",
                workers: int = 2, device: str = "cpu", smoke: bool = False) -> pd.DataFrame:
    """Post-train each method from the stage-1 checkpoint on corpora noisier or cleaner in one
    knob, and score it on that corpus's evaluation sets.

    Every corpus shares the stage-1 corpus's world (seed 0: same actions, objects and
    vocabulary), so the checkpoint's knowledge transfers; only the noise knob changes. Seeds
    vary the post-training. Returns the rows of :func:`run_methods` plus ``knob`` and
    ``level``.
    """
    frames = []
    for knob, levels in knobs.items():
        for level in levels:
            base = SyntheticConfig.preset(corpus, seed=0)
            cfg = dataclasses.replace(base, noise=dataclasses.replace(
                base.noise, **{knob: float(level)}))
            root = Path(work_dir) / f"{knob}={level:g}" / "data"
            if not (root / "manifest.json").is_file():
                with contextlib.redirect_stdout(io.StringIO()):
                    generate_corpus(root, cfg, progress=False)
            df = run_methods(init_checkpoint, root, root.parent / "runs", methods, seeds, steps,
                             workers=workers, synthetic=None, device=device, smoke=smoke)
            frames.append(df.assign(knob=knob, level=float(level)))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------ reading it


def summarize(runs: pd.DataFrame, by: Sequence[str] = ("method",)) -> pd.DataFrame:
    """Mean, sample std and ``n`` over seeds of every metric, one row per ``by`` + metric.

    >>> runs = pd.DataFrame(dict(method=["a", "a"], seed=[0, 1], metric="r", value=[1.0, 3.0]))
    >>> summarize(runs)[["method", "metric", "mean", "std", "n"]].values.tolist()
    [['a', 'r', 2.0, 1.4142135623730951, 2]]
    """
    g = runs.groupby([*by, "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


#: Differences below this many percentage points are never called real, however small the
#: std: about one query of the smallest synthetic evaluation set (120 paragraphs).
MIN_DIFFERENCE = 1.0


def verdict(a: tuple[float, float], b: tuple[float, float],
            min_difference: float = MIN_DIFFERENCE) -> str:
    """``"better"`` / ``"worse"`` when ``a``'s mean beats / trails ``b``'s by more than twice
    the combined std ``sqrt(std_a² + std_b²)`` (and by more than ``min_difference``), else
    ``"not separated"``.

    >>> verdict((10.0, 1.0), (5.0, 1.0)), verdict((10.0, 3.0), (5.0, 1.0))
    ('better', 'not separated')
    >>> verdict((9.9, 0.0), (9.8, 0.0))
    'not separated'
    """
    margin = max(2.0 * math.hypot(a[1], b[1]), min_difference)
    diff = a[0] - b[0]
    return "better" if diff > margin else "worse" if -diff > margin else "not separated"


def _stat(summary: pd.DataFrame, method: str, metric: str) -> tuple[float, float, int] | None:
    row = summary[(summary["method"] == method) & (summary["metric"] == metric)]
    if row.empty:
        return None
    r = row.iloc[0]
    return float(r["mean"]), float(r["std"]), int(r["n"])


def paper_table(summary: pd.DataFrame, baselines: Mapping[str, Mapping[str, float]] | None = None,
                stage1: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The paper's layout: rows are methods, columns the metrics, cells ``mean ± std (n)``.

    ``baselines`` (``{metric: {name: percent}}``) and ``stage1`` (``{metric: percent}``, the
    checkpoint every method starts from) add rows of single numbers.

    >>> s = pd.DataFrame(dict(method="norton", metric="clip_r1", mean=[9.0], std=[0.5], n=3))
    >>> paper_table(s).to_dict("index")
    {'norton': {'YouCookII clip R@1': '9.0 ± 0.5 (3)'}}
    """
    rows: dict[str, dict[str, str]] = {}
    for name, scores in (baselines or {}).items():
        rows[name] = {METRIC_LABELS[m]: f"{v:.1f}" for m, v in scores.items()}
    if stage1:
        rows["stage 1 (VideoCLIP checkpoint)"] = {METRIC_LABELS[m]: f"{v:.1f}"
                                                  for m, v in stage1.items() if m in METRICS}
    for r in summary.itertuples():
        if r.metric in METRIC_LABELS:
            rows.setdefault(r.method, {})[METRIC_LABELS[r.metric]] = \
                f"{r.mean:.1f} ± {r.std:.1f} ({r.n})"
    cols = [METRIC_LABELS[m] for m in METRICS if any(METRIC_LABELS[m] in v
                                                    for v in rows.values())]
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=cols).fillna("")


#: The paper's orderings (Tables 1, 3, 7): (better, worse, what the paper says).
PAPER_ORDERINGS: tuple[tuple[str, str, str], ...] = (
    ("norton", "videoclip", "Norton beats VideoCLIP post-trained alike (Tables 1, 3)"),
    ("norton", "tempclr", "Norton beats TempCLR (Tables 1, 3)"),
    ("B", "A", "faulty-negative exploitation helps (Table 7, B > A)"),
    ("G", "C", "the fine-grained similarity beats mean pooling in L_video (Table 7, G > C)"),
    ("norton", "G", "the prompt bucket helps (Table 7, J > G)"),
    ("norton", "A", "the full method beats L_clip alone (Table 7, J > A)"),
)


def orderings(summary: pd.DataFrame, metrics: Sequence[str] = ("clip_r1", "paragraph_r1"),
              ) -> pd.DataFrame:
    """Which of :data:`PAPER_ORDERINGS` hold on these numbers (pairs not run are skipped).

    ``holds`` when the better method is ahead beyond twice the combined std (:func:`verdict`),
    ``reversed`` when it is behind beyond it, ``not separated`` otherwise.

    >>> s = pd.DataFrame(dict(method=["norton", "videoclip"], metric="clip_r1",
    ...                       mean=[10.0, 5.0], std=[1.0, 1.0], n=3))
    >>> orderings(s, ["clip_r1"])[["claim", "verdict"]].values.tolist()
    [['Norton beats VideoCLIP post-trained alike (Tables 1, 3)', 'holds']]
    """
    names = {"better": "holds", "worse": "reversed", "not separated": "not separated"}
    rows = []
    for a, b, claim in PAPER_ORDERINGS:
        for metric in metrics:
            sa, sb = _stat(summary, a, metric), _stat(summary, b, metric)
            if sa is None or sb is None:
                continue
            rows.append(dict(claim=claim, metric=metric, verdict=names[verdict(sa[:2], sb[:2])],
                             evidence=f"{a} {sa[0]:.1f} ± {sa[1]:.1f} vs {b} {sb[0]:.1f} ± "
                                      f"{sb[1]:.1f} (n = {sa[2]}, {sb[2]})"))
    return pd.DataFrame(rows, columns=["claim", "metric", "verdict", "evidence"])


def noise_verdicts(summary: pd.DataFrame, method: str = "norton") -> pd.DataFrame:
    """``method`` against the best other method at each knob level and metric (:func:`verdict`).

    ``summary`` is :func:`summarize` with ``by=("knob", "level", "method")``.

    >>> s = pd.DataFrame(dict(knob="k", level=0.3, method=["norton", "videoclip"], metric="r",
    ...                       mean=[5.0, 9.0], std=[0.5, 0.5], n=3))
    >>> noise_verdicts(s)[["best_other", "verdict"]].values.tolist()
    [['videoclip', 'worse']]
    """
    rows = []
    for (knob, level, metric), g in summary.groupby(["knob", "level", "metric"], sort=False):
        stats = {r.method: (r.mean, r.std) for r in g.itertuples()}
        others = [m for m in stats if m != method]
        if method in stats and others:
            best = max(others, key=lambda m: stats[m][0])
            rows.append(dict(knob=knob, level=level, metric=metric, best_other=best,
                             verdict=verdict(stats[method], stats[best])))
    return pd.DataFrame(rows, columns=["knob", "level", "metric", "best_other", "verdict"])


def gap_closed(summary: pd.DataFrame, references: Mapping[str, Mapping[str, float]],
               stage1: Mapping[str, float]) -> pd.DataFrame:
    """The part of the noisy-to-clean supervision gap each method's post-training closes.

    ``(method - stage 1) / (ridge_true - ridge_asr)`` in percent, per metric: 0 = no better
    than the stage-1 checkpoint it started from, 100 = as much better as clean supervision
    makes a linear model over noisy supervision. ``references`` maps ``ridge_asr`` and
    ``ridge_true`` to ``{metric: percent}``.

    >>> s = pd.DataFrame(dict(method="norton", metric="clip_r1", mean=[11.0], std=0.1, n=3))
    >>> refs = {"ridge_asr": {"clip_r1": 25.0}, "ridge_true": {"clip_r1": 27.0}}
    >>> float(gap_closed(s, refs, {"clip_r1": 10.0}).loc["norton", "clip_r1"])
    50.0
    """
    out: dict[str, dict[str, float]] = {}
    for r in summary.itertuples():
        gap = references["ridge_true"].get(r.metric, math.nan) - \
            references["ridge_asr"].get(r.metric, math.nan)
        if r.metric in stage1 and gap > 0:
            out.setdefault(r.method, {})[r.metric] = round(
                100.0 * (r.mean - stage1[r.metric]) / gap, 1)
    return pd.DataFrame.from_dict(out, orient="index")


def orderings_markdown(table: pd.DataFrame) -> str:
    """One sentence per checked ordering, built from :func:`orderings`."""
    if table.empty:
        return "No ordering of the paper can be checked with the methods run."
    lines = []
    for r in table.itertuples():
        lines.append(f"- {r.claim}, on {METRIC_LABELS.get(r.metric, r.metric)}: "
                     f"**{r.verdict}** ({r.evidence}).")
    held = int((table["verdict"] == "holds").sum())
    head = (f"{held} of {len(table)} checks of the paper's orderings hold on this corpus "
            "(a difference counts only beyond twice the combined std over seeds and beyond "
            f"{MIN_DIFFERENCE:g} point):")
    return head + "\n\n" + "\n".join(lines)


def summary_json(summary: pd.DataFrame, baselines: Mapping[str, Mapping[str, float]],
                 alignment: Mapping[str, Mapping[str, float]],
                 stage1: Mapping[str, float] | None = None,
                 meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The demo's ``reports/summary.json``: every number the synthetic default stands on.

    ``baselines`` is :func:`nortonkit.lab.baselines.youcook_baselines`' output (keys
    ``youcook_clip_r1`` and ``youcook_paragraph_dtw_r1``); methods map to ``{"mean", "std",
    "n"}`` in percent; ``alignment`` is :func:`nortonkit.lab.transport_study.default_accuracy`.
    """
    names = {"youcook_clip_r1": "clip_r1", "youcook_paragraph_dtw_r1": "paragraph_r1"}
    out: dict[str, Any] = {}
    for key, metric in names.items():
        entry: dict[str, Any] = {m: float(v) for m, v in baselines[key].items()
                                 if m != "untrained"}
        if stage1 is not None:
            entry["stage1"] = float(stage1[metric])
        for r in summary[summary["metric"] == metric].itertuples():
            entry[str(r.method).lower()] = {"mean": float(r.mean), "std": float(r.std),
                                            "n": int(r.n)}
        out[key] = entry
    out["alignment_accuracy"] = {m: dict(alignment[m]) for m in ("dtw", "ot", "norton")}
    if meta:
        out["meta"] = dict(meta)
    return out


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
    return path


def ensure_stage1(data_root: str | os.PathLike, out_dir: str | os.PathLike,
                  profile: Profile, device: str = "cpu") -> Path:
    """Train stage 1 unless ``out_dir`` already holds its final checkpoint; returns it."""
    ckpt = Path(out_dir) / "checkpoint_last"
    cfg = stage1_config(data_root, out_dir, profile.stage1_steps, profile.corpus,
                        device=device, smoke=profile.name == "smoke")
    if not (ckpt / "config.json").is_file():
        ensure_corpus(data_root, profile.corpus)
        fit(cfg)
    return ckpt
