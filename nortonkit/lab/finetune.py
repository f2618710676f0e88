r"""Evaluations that train: fine-tuning (Tables 4-6), ablations (Table 7), step times (Table 8).

Honest protocol (``docs/protocols.md`` §9 items 18-19):

* fine-tuning carves a validation split from the *training* data (``val_fraction`` of the
  training videos, seeded) and selects the step (among ``0, eval_every, 2 eval_every, ...,
  steps``) with the best validation score; the test set is evaluated exactly once, with that
  model. The released yamls validated, and picked ``checkpoint_best``, on the test set.
* ablations train each preset from scratch for a fixed number of updates and evaluate the
  checkpoint of the last update (``checkpoint_last``), never the best of several on the test
  set.
* every training run is repeated over the given seeds and reported as mean and std.

Schedules (:data:`FINETUNE_SCHEDULES`, chosen by :func:`resolve_schedule`): on real data the
official fine-tuning yamls (``vtt_ft`` for MSR-VTT retrieval, ``vttqa`` for MSR-VTT QA,
``coin``: batch size, epochs over the training list repeated ``dup`` times, Adam (0.9, 0.98),
linear warm-up over 122 updates then fairseq's polynomial decay towards ``total_num_update =
1e6``, gradient clipping 2.0, fp16); on the synthetic corpus small CPU schedules
(``synthetic_cpu``, ``synthetic_cpu_coin``: a fixed number of updates at a constant rate), which
are not the paper's.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.features import feature_path, load_feature, pad_clips
from ..data.text import encode_texts, load_tokenizer
from ..encoders import DualEncoder
from ..eval.tasks import (
    coin_predict,
    encode_captions,
    encode_clips,
    eval_msrvtt_qa,
    eval_msrvtt_retrieval,
    eval_youcook_clip,
    eval_youcook_paragraph,
    split_validation,
    text_token_budget,
)
from ..metrics import frame_accuracy, recall_at_k
from ..threads import torch_threads
from ..train.schedule import polynomial_decay_lr
from ..validation import check_choice, check_int_at_least, check_positive

__all__ = [
    "FinetuneSchedule",
    "FINETUNE_SCHEDULES",
    "DEFAULT_SCHEDULES",
    "FINETUNE_TASKS",
    "DATASETS",
    "resolve_schedule",
    "epoch_batches",
    "FinetuneResult",
    "finetune",
    "aggregate_seeds",
    "eval_msrvtt_finetuned",
    "eval_coin_finetuned",
    "run_ablations",
    "EFFICIENCY_LINES",
    "run_efficiency",
]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

#: Tasks that fine-tune, and the datasets a schedule default is chosen for.
FINETUNE_TASKS: tuple[str, ...] = ("msrvtt_retrieval", "msrvtt_qa", "coin")
DATASETS: tuple[str, ...] = ("synthetic", "real")
Precision = Literal["fp32", "fp16"]


@dataclass(frozen=True)
class FinetuneSchedule:
    r"""One fine-tuning schedule: batch, length, Adam, learning-rate schedule, precision.

    The rate of update ``u + 1`` (``u`` updates done) is fairseq's ``polynomial_decay``
    (:func:`nortonkit.train.schedule.polynomial_decay_lr`, power 1, end rate 0):

    .. math::
        \eta(u) = \begin{cases} \eta\, u / w & u \le w \\
        \eta \big(1 - \frac{u - w}{U - w}\big) & w < u < U \end{cases}

    Attributes
    ----------
    name : the schedule's name (a key of :data:`FINETUNE_SCHEDULES`).
    tasks : the :func:`nortonkit.lab.evaluate.run_task` tasks it is meant for.
    batch_size : clip/caption pairs per update (MSR-VTT) or videos per update (COIN, all the
        windows of each video), as the yaml's ``batch_size``.
    epochs : passes over the training list repeated ``dup`` times, each of
        ``ceil(n_train * dup / batch_size)`` updates (the last batch may be smaller); None:
        exactly ``steps`` updates.
    steps : fixed number of updates (exclusive with ``epochs``).
    dup : repetitions of the training list per epoch (official MSR-VTT: 20, a random caption
        each time).
    lr : peak learning rate ``eta``.
    warmup_updates : ``w``, linear warm-up from 0 (0 = none).
    total_num_update : ``U``, where the rate would reach 0; None: constant rate ``lr``.
    betas, weight_decay : Adam's.
    clip_norm : global gradient-norm clipping (0 = off).
    precision : ``"fp16"`` (official ``--fp16``) or ``"fp32"``. nortonkit runs fp16 as CUDA
        autocast with a gradient scaler (fp32 master weights); the released code casts the
        whole model to half (``docs/protocols.md`` §6). On a CPU fp16 falls back to fp32.
    eval_every : updates between validations; None: once per epoch (``epochs``) or
        ``max(1, steps // 4)`` (``steps``).
    description : where the values come from.

    Notes
    -----
    ``docs/protocols.md`` §6 (optimizer, scheduler, precision) and §8 (``vtt_ft.yaml``,
    ``vttqa_ft.yaml``, ``coin_ft.yaml``): lr 5e-5, warm-up 122, clip 2.0, weight decay 0,
    fp16; batch 512 / 128 / 1 video; 15 / 8 / 8 epochs; MSR-VTT lists duplicated 20 times.

    Examples
    --------
    >>> s = FINETUNE_SCHEDULES["vtt_ft"]
    >>> s.updates_per_epoch(8100), s.total_updates(8100), s.validation_interval(8100)
    (317, 4755, 317)
    >>> FINETUNE_SCHEDULES["synthetic_cpu"].total_updates(20)
    100
    """

    name: str
    tasks: tuple[str, ...]
    batch_size: int
    epochs: int | None = None
    steps: int | None = None
    dup: int = 1
    lr: float = 5e-5
    warmup_updates: int = 0
    total_num_update: int | None = 1_000_000
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    clip_norm: float = 2.0
    precision: Precision = "fp32"
    eval_every: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for t in self.tasks:
            check_choice("tasks", t, FINETUNE_TASKS)
        check_int_at_least("batch_size", self.batch_size, 1)
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(f"schedule {self.name!r}: expected exactly one of epochs and "
                             f"steps, got epochs={self.epochs!r}, steps={self.steps!r}")
        if self.epochs is not None:
            check_int_at_least("epochs", self.epochs, 1)
        if self.steps is not None:
            check_int_at_least("steps", self.steps, 1)
        check_int_at_least("dup", self.dup, 1)
        check_positive("lr", self.lr)
        check_int_at_least("warmup_updates", self.warmup_updates, 0)
        if self.total_num_update is not None:
            check_int_at_least("total_num_update", self.total_num_update,
                               self.warmup_updates + 1)
        if not (isinstance(self.clip_norm, (int, float)) and self.clip_norm >= 0):
            raise ValueError(f"clip_norm: expected a number >= 0, got {self.clip_norm!r}")
        check_choice("precision", self.precision, ("fp32", "fp16"))
        if self.eval_every is not None:
            check_int_at_least("eval_every", self.eval_every, 1)

    def updates_per_epoch(self, n_train: int) -> int:
        """Updates of one pass over ``n_train`` training items repeated ``dup`` times."""
        check_int_at_least("n_train", n_train, 1)
        return math.ceil(n_train * self.dup / self.batch_size)

    def total_updates(self, n_train: int) -> int:
        """Updates of the whole schedule on ``n_train`` training items."""
        if self.steps is not None:
            return self.steps
        return self.epochs * self.updates_per_epoch(n_train)

    def validation_interval(self, n_train: int) -> int:
        """Updates between two validations on the carved split."""
        if self.eval_every is not None:
            return self.eval_every
        if self.epochs is not None:
            return self.updates_per_epoch(n_train)
        return max(1, self.steps // 4)

    def with_overrides(self, **changes: Any) -> FinetuneSchedule:
        """A copy with the non-None ``changes``; ``steps`` replaces ``epochs``.

        >>> s = FINETUNE_SCHEDULES["coin"].with_overrides(steps=20, lr=None)
        >>> s.epochs, s.steps, s.lr
        (None, 20, 5e-05)
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"schedule: unknown field(s) {unknown}")
        if "steps" in changes:
            changes.setdefault("epochs", None)
        if "epochs" in changes and changes["epochs"] is not None:
            changes.setdefault("steps", None)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for result metadata)."""
        return dataclasses.asdict(self)


_OFFICIAL = dict(lr=5e-5, warmup_updates=122, total_num_update=1_000_000, betas=(0.9, 0.98),
                 weight_decay=0.0, clip_norm=2.0, precision="fp16")

#: Named fine-tuning schedules: the official yamls and the CPU schedules of the synthetic corpus.
FINETUNE_SCHEDULES: dict[str, FinetuneSchedule] = {
    "vtt_ft": FinetuneSchedule(
        "vtt_ft", ("msrvtt_retrieval",), batch_size=512, epochs=15, dup=20, **_OFFICIAL,
        description="official vtt_ft.yaml: MSR-VTT 9k x dup 20, batch 512, 15 epochs, lr 5e-5, "
                    "warm-up 122, polynomial decay, fp16 (docs/protocols.md §7.5, §8)"),
    "vttqa": FinetuneSchedule(
        "vttqa", ("msrvtt_qa",), batch_size=128, epochs=8, dup=20, **_OFFICIAL,
        description="official vttqa_ft.yaml: MSR-VTT 7k x dup 20, batch 128, 8 epochs, lr 5e-5, "
                    "warm-up 122, polynomial decay, fp16 (docs/protocols.md §7.6, §8)"),
    "coin": FinetuneSchedule(
        "coin", ("coin",), batch_size=1, epochs=8, **_OFFICIAL,
        description="official coin_ft.yaml: 1 video (all its stride-8 windows) per update, "
                    "8 epochs, lr 5e-5, warm-up 122, polynomial decay, fp16 "
                    "(docs/protocols.md §7.7, §8)"),
    "synthetic_cpu": FinetuneSchedule(
        "synthetic_cpu", ("msrvtt_retrieval", "msrvtt_qa"), batch_size=32, steps=100,
        total_num_update=None,
        description="CPU schedule for the synthetic corpus (not the paper's): 100 updates of "
                    "32 pairs at a constant lr 5e-5, fp32"),
    "synthetic_cpu_coin": FinetuneSchedule(
        "synthetic_cpu_coin", ("coin",), batch_size=2, steps=100, total_num_update=None,
        description="CPU schedule for the synthetic corpus (not the paper's): 100 updates of "
                    "2 videos at a constant lr 5e-5, fp32"),
}

#: The schedule each (task, dataset) gets when none is named.
DEFAULT_SCHEDULES: dict[tuple[str, str], str] = {
    ("msrvtt_retrieval", "real"): "vtt_ft",
    ("msrvtt_qa", "real"): "vttqa",
    ("coin", "real"): "coin",
    ("msrvtt_retrieval", "synthetic"): "synthetic_cpu",
    ("msrvtt_qa", "synthetic"): "synthetic_cpu",
    ("coin", "synthetic"): "synthetic_cpu_coin",
}


def resolve_schedule(task: str, dataset: str = "synthetic",
                     schedule: str | FinetuneSchedule | None = None) -> FinetuneSchedule:
    """The fine-tuning schedule of ``task``: the named one, or the default of ``dataset``.

    Parameters
    ----------
    task : one of :data:`FINETUNE_TASKS`.
    dataset : ``"real"`` (the official schedule of the task) or ``"synthetic"`` (its CPU
        schedule); used only when ``schedule`` is None.
    schedule : a key of :data:`FINETUNE_SCHEDULES`, a :class:`FinetuneSchedule`, or None.

    Returns
    -------
    FinetuneSchedule

    Raises
    ------
    ValueError
        unknown task, dataset or schedule name, or a schedule meant for another task.

    Examples
    --------
    >>> resolve_schedule("msrvtt_retrieval", "real").name
    'vtt_ft'
    >>> resolve_schedule("coin", "synthetic").name
    'synthetic_cpu_coin'
    >>> resolve_schedule("msrvtt_qa", schedule="vtt_ft")
    Traceback (most recent call last):
    ...
    ValueError: schedule: 'vtt_ft' is a schedule for ('msrvtt_retrieval',), not 'msrvtt_qa' ...
    """
    check_choice("task", task, FINETUNE_TASKS)
    check_choice("dataset", dataset, DATASETS)
    if schedule is None:
        schedule = DEFAULT_SCHEDULES[(task, dataset)]
    if isinstance(schedule, str):
        if schedule not in FINETUNE_SCHEDULES:
            close = difflib.get_close_matches(schedule, list(FINETUNE_SCHEDULES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"schedule: unknown schedule {schedule!r}{hint} (known: "
                             f"{', '.join(FINETUNE_SCHEDULES)})")
        schedule = FINETUNE_SCHEDULES[schedule]
    if not isinstance(schedule, FinetuneSchedule):
        raise ValueError(f"schedule: expected a name or a FinetuneSchedule, got "
                         f"{type(schedule).__name__}")
    if task not in schedule.tasks:
        raise ValueError(f"schedule: {schedule.name!r} is a schedule for {schedule.tasks}, not "
                         f"{task!r} (known for {task!r}: "
                         f"{[k for k, v in FINETUNE_SCHEDULES.items() if task in v.tasks]})")
    return schedule


def epoch_batches(n_items: int, batch_size: int, dup: int,
                  rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index batches of epochs: each epoch shuffles ``range(n_items)`` repeated ``dup`` times.

    Consecutive chunks of ``batch_size`` indices, the last one of an epoch possibly smaller
    (fairseq keeps it); with ``dup > 1`` a batch can hold an item twice, as the official
    duplicated MSR-VTT list does (``docs/protocols.md`` §7.5).

    Examples
    --------
    >>> it = epoch_batches(3, 4, 2, np.random.default_rng(0))
    >>> [len(next(it)) for _ in range(4)]  # 6 items per epoch: batches of 4 and 2
    [4, 2, 4, 2]
    >>> it = epoch_batches(3, 2, 2, np.random.default_rng(0))
    >>> sorted(np.concatenate([next(it) for _ in range(3)]).tolist())  # one epoch
    [0, 0, 1, 1, 2, 2]
    """
    check_int_at_least("n_items", n_items, 1)
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("dup", dup, 1)
    items = np.tile(np.arange(n_items), dup)
    while True:
        order = rng.permutation(items)
        for i in range(0, len(order), batch_size):
            yield order[i : i + batch_size]


class FinetuneResult(NamedTuple):
    """Output of :func:`finetune`.

    Attributes
    ----------
    model : the selected model (eval mode), a copy; the input model is left unchanged.
    best_step : the update whose weights were selected (0 = the starting model).
    best_val : its validation score (higher = better).
    log : one dict per validation: ``step``, ``val``, ``loss`` (mean since the last one),
        ``lr`` (rate of the last update).
    precision : the precision the updates ran in (``"fp16"`` only under CUDA autocast).
    """

    model: DualEncoder
    best_step: int
    best_val: float
    log: list[dict[str, float]]
    precision: str = "fp32"


def finetune(
    model: DualEncoder,
    sample: Callable[[np.random.Generator], Any],
    loss_fn: Callable[[DualEncoder, Any], Tensor],
    validate: Callable[[DualEncoder], float],
    steps: int,
    lr: float = 5e-5,
    eval_every: int | None = None,
    seed: int = 0,
    clip_norm: float = 2.0,
    warmup_updates: int = 0,
    total_num_update: int | None = None,
    precision: Precision = "fp32",
    betas: tuple[float, float] = (0.9, 0.98),
    weight_decay: float = 0.0,
) -> FinetuneResult:
    r"""Full fine-tuning with Adam; the weights are selected on a validation score.

    .. math:: \theta^* = \theta_{s^*},\quad s^* = \arg\max_{s \in \{0, e, 2e, \dots\}}
              \mathrm{val}(\theta_s)

    Update ``u + 1`` runs at :func:`nortonkit.train.schedule.polynomial_decay_lr` ``(u, lr,
    warmup_updates, total_num_update)`` (linear warm-up from 0, then fairseq's polynomial
    decay), or at ``lr`` throughout when ``total_num_update`` is None and there is no warm-up.

    Parameters
    ----------
    model : the starting model (copied, never modified).
    sample : draws one training batch from a seeded ``numpy.random.Generator``.
    loss_fn : ``loss_fn(model, batch)`` -> scalar loss.
    validate : score on the validation split carved from the training data (higher = better).
    steps : number of updates (>= 1).
    lr : Adam learning rate (official fine-tuning: 5e-5).
    eval_every : updates between validations (default: ``max(1, steps // 4)``).
    seed : seeds dropout and the batch sampler.
    clip_norm : global gradient-norm clipping (0 = off).
    warmup_updates, total_num_update : the learning-rate schedule (see above).
    precision : ``"fp16"``: CUDA autocast with a gradient scaler (on a CPU model: fp32, with a
        warning); ``"fp32"``.
    betas, weight_decay : Adam's (official 0.9, 0.98 and 0).

    Returns
    -------
    FinetuneResult

    Notes
    -----
    Replaces the released fine-tuning's selection of ``checkpoint_best`` on the *test* set
    (``docs/protocols.md`` §7.0, §9 item 19). Ties between validations keep the earlier step.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny", video_layers=1, text_layers=1))
    >>> v = torch.randn(4, 3, 512); vm = torch.ones(4, 3, dtype=torch.bool)
    >>> def loss(model, batch):
    ...     p = model.encode_video(v, vm).pooled
    ...     return F.cross_entropy(p @ p.T, torch.arange(4))
    >>> r = finetune(m, lambda rng: None, loss, lambda model: 0.0, steps=2, eval_every=1)
    >>> r.best_step, [e["step"] for e in r.log]
    (0, [0, 1, 2])
    """
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    check_int_at_least("warmup_updates", warmup_updates, 0)
    if total_num_update is not None:
        check_int_at_least("total_num_update", total_num_update, warmup_updates + 1)
    check_choice("precision", precision, ("fp32", "fp16"))
    every = max(1, steps // 4) if eval_every is None else check_int_at_least("eval_every",
                                                                              eval_every, 1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas),
                           weight_decay=weight_decay)
    device_type = next(model.parameters()).device.type
    if precision == "fp16" and device_type != "cuda":
        warnings.warn("fine-tuning: fp16 autocast needs a CUDA model; running in fp32",
                      stacklevel=2)
        precision = "fp32"
    use_amp = precision == "fp16"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def rate(done: int) -> float:
        if total_num_update is None:
            return lr * done / warmup_updates if done < warmup_updates else lr
        return polynomial_decay_lr(done, lr, warmup_updates, total_num_update)

    def run_validation() -> float:
        model.eval()
        with torch.no_grad():
            val = float(validate(model))
        model.train()
        return val

    best_val = run_validation()
    best_step, best_state = 0, copy.deepcopy(model.state_dict())
    log = [dict(step=0, val=best_val, loss=float("nan"), lr=float("nan"))]
    losses: list[float] = []
    model.train()
    for step in range(1, steps + 1):
        batch = sample(rng)
        current = rate(step - 1)
        for group in opt.param_groups:
            group["lr"] = current
        opt.zero_grad(set_to_none=True)
        ctx = (torch.autocast(device_type, dtype=torch.float16) if use_amp else nullcontext())
        with ctx:
            loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"fine-tuning: non-finite loss {float(loss)} at step {step}")
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm if clip_norm > 0 else math.inf)
        scaler.step(opt)
        scaler.update()
        model.clamp_logit_scales_()
        losses.append(float(loss.detach()))
        if step % every == 0 or step == steps:
            val = run_validation()
            log.append(dict(step=step, val=val, loss=float(np.mean(losses)), lr=current))
            losses = []
            if val > best_val:
                best_val, best_step, best_state = val, step, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return FinetuneResult(model.eval(), best_step, best_val, log, precision)


def aggregate_seeds(rows: Sequence[dict], seeds: Sequence[int]) -> list[dict]:
    """Mean and (sample) std over seeds of rows that share every key but ``value``/``seed``.

    Examples
    --------
    >>> rows = [dict(metric="R@1", value=v, seed=s, n=3) for s, v in [(0, 10.0), (1, 20.0)]]
    >>> out = aggregate_seeds(rows, (0, 1))
    >>> out[0]["value"], round(out[0]["std"], 4), out[0]["n_seeds"], out[0]["seed"]
    (15.0, 7.0711, 2, '0,1')
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("value", "seed")))
        groups.setdefault(key, []).append(r)
    out = []
    for items in groups.values():
        vals = [float(r["value"]) for r in items]
        first = {k: v for k, v in items[0].items() if k != "seed"}
        first["value"] = float(np.mean(vals))
        first["std"] = float(statistics.stdev(vals)) if len(vals) > 1 else float("nan")
        first["n_seeds"] = len(vals)
        first["seed"] = ",".join(str(r.get("seed")) for r in items)
        out.append(first)
    return out


# ---------------------------------------------------------------------------------------------
# MSR-VTT fine-tuning (T5, T6)


class _Features:
    """First ``max_video_len`` seconds of each video, read on demand and cached."""

    def __init__(self, feature_dir: Path, max_video_len: int, dim: int):
        self.dir, self.v, self.dim, self.cache = feature_dir, max_video_len, dim, {}

    def batch(self, vids: Sequence[str]) -> tuple[Tensor, Tensor]:
        for vid in vids:
            if vid not in self.cache:
                self.cache[vid] = load_feature(feature_path(self.dir, vid), self.dim)[: self.v]
        return pad_clips([self.cache[v] for v in vids], self.v)


def _run_schedule(model: DualEncoder, sample: Callable, loss_fn: Callable, validate: Callable,
                  schedule: FinetuneSchedule, n_train: int, seed: int) -> FinetuneResult:
    """:func:`finetune` with the updates, validations, rate and precision of ``schedule``."""
    return finetune(model, sample, loss_fn, validate, schedule.total_updates(n_train),
                    schedule.lr, schedule.validation_interval(n_train), seed, schedule.clip_norm,
                    schedule.warmup_updates, schedule.total_num_update, schedule.precision,
                    schedule.betas, schedule.weight_decay)


def _selection(seed: int, res: FinetuneResult, schedule: FinetuneSchedule, n_train: int,
               n_val: int) -> dict[str, Any]:
    return dict(seed=seed, best_step=res.best_step, best_val=100 * res.best_val,
                n_train=n_train, n_val=n_val, schedule=schedule.name,
                updates=schedule.total_updates(n_train), precision=res.precision)


def eval_msrvtt_finetuned(
    model: DualEncoder,
    root: Any,
    task: str,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    schedule: str | FinetuneSchedule | None = None,
    val_fraction: float = 0.1,
    max_video_len: int = 32,
    qa_max_video_len: int = 16,
    dataset: str = "synthetic",
) -> tuple[list[dict], list[dict]]:
    """Fine-tune on MSR-VTT training videos, select on a carved validation split, test once.

    ``task="msrvtt_retrieval"`` (Table 5): the 9k list, text-to-video cross-entropy on raw dot
    products (``T2VContraLoss``). ``task="msrvtt_qa"`` (Table 6): the 7k list, video-to-text
    cross-entropy (``V2TContraLoss``), tested on multiple choice with the first 16 s.
    Validation: R@1 of the same direction on the held-out training videos (first caption).

    Parameters
    ----------
    model, root, task, device, seeds : the model, the data root, the task and the seeds.
    schedule : a :data:`FINETUNE_SCHEDULES` name or a :class:`FinetuneSchedule`; None: the
        default of ``dataset`` (:func:`resolve_schedule`: ``vtt_ft`` / ``vttqa`` on real data,
        ``synthetic_cpu`` on the synthetic corpus). Each epoch is a shuffled pass over the
        training list repeated ``dup`` times, one random caption per item
        (:func:`epoch_batches`).
    val_fraction : training videos carved out for validation.
    max_video_len : seconds per training clip (32); ``qa_max_video_len``: per QA test video (16).
    dataset : ``"real"`` or ``"synthetic"`` (only to choose the default schedule).

    Returns
    -------
    (rows, selection): result rows (mean/std over seeds) and one dict per seed with the
    selected step, its validation score and the schedule.
    """
    from ..data.msrvtt import MSRVTTTrainDataset

    sched = resolve_schedule(task, dataset, schedule)
    size, direction = ("9k", "t2v") if task == "msrvtt_retrieval" else ("7k", "v2t")
    dim = model.config.video_feature_dim
    ds = MSRVTTTrainDataset(root, size=size, dup=1, expected_dim=dim)
    feats = _Features(ds.feature_dir, max_video_len, dim)
    tok = load_tokenizer()
    budget = text_token_budget(max_video_len)  # 61 tokens with 32-s clips (official 96 / 32)
    rows, selection = [], []
    for seed in seeds:
        train_ids, val_ids = split_validation(ds.video_ids, val_fraction, seed)
        bs = min(sched.batch_size, len(train_ids) * sched.dup)
        batches: list[Iterator[np.ndarray]] = []

        def sample(rng: np.random.Generator, train_ids=train_ids, bs=bs, batches=batches):
            if not batches:
                batches.append(epoch_batches(len(train_ids), bs, sched.dup, rng))
            vids = [train_ids[i] for i in next(batches[0])]
            caps = [ds.captions[v][int(rng.integers(len(ds.captions[v])))] for v in vids]
            video, mask = feats.batch(vids)
            return video, mask, encode_texts(caps, tok, budget)

        def loss_fn(m: DualEncoder, batch) -> Tensor:
            video, mask, text = batch
            v = m.encode_video(video.to(device), mask.to(device)).pooled
            t = m.encode_text(text.input_ids.to(device), text.attention_mask.to(device)).pooled
            logits = t @ v.T if direction == "t2v" else v @ t.T  # raw dot products (official)
            return F.cross_entropy(logits.float(), torch.arange(len(v), device=logits.device))

        def validate(m: DualEncoder, val_ids=val_ids) -> float:
            video, mask = feats.batch(val_ids)
            v = encode_clips(m, video, mask, device)
            t = encode_captions(m, [ds.captions[x][0] for x in val_ids], device,
                                max_tokens=budget, tokenizer=tok)
            s = t @ v.T if direction == "t2v" else v @ t.T
            return recall_at_k(s, 1)

        sched_bs = sched.with_overrides(batch_size=bs)
        res = _run_schedule(model, sample, loss_fn, validate, sched_bs, len(train_ids), seed)
        selection.append(_selection(seed, res, sched_bs, len(train_ids), len(val_ids)))
        if task == "msrvtt_retrieval":
            test = eval_msrvtt_retrieval(res.model, root, device, setting="fine-tuned")
        else:
            test = eval_msrvtt_qa(res.model, root, device, max_video_len=qa_max_video_len,
                                  setting="fine-tuned")
        rows += [dict(r, seed=seed) for r in test]
    return aggregate_seeds(rows, seeds), selection


# ---------------------------------------------------------------------------------------------
# COIN fine-tuning (T4)


def coin_model(model: DualEncoder, n_classes: int) -> DualEncoder:
    """A copy of ``model`` with a fresh ``n_classes``-way per-frame head (video CLS masked).

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> m = coin_model(DualEncoder(EncoderConfig(preset="tiny")), 5)
    >>> m.config.n_classes, m.config.video_cls_attend
    (5, False)
    """
    check_int_at_least("n_classes", n_classes, 2)
    cfg = dataclasses.replace(model.config, n_classes=n_classes, trainable="all",
                              video_cls_attend=False)
    out = DualEncoder(cfg, load_pretrained=False).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if "classifier" not in k}
    missing, unexpected = out.load_state_dict(state, strict=False)
    bad = [k for k in missing if "classifier" not in k] + list(unexpected)
    if bad:
        raise ValueError(f"checkpoint: cannot transfer weights into the COIN model; mismatched "
                         f"keys {bad[:10]}")
    return out


def eval_coin_finetuned(
    model: DualEncoder,
    root: Any,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    schedule: str | FinetuneSchedule | None = None,
    val_fraction: float = 0.1,
    dataset: str = "synthetic",
) -> tuple[list[dict], list[dict]]:
    """Norton Table 4: fine-tune a per-frame head (classes from the data: 779 on COIN).

    Training windows: 32 s, stride 8 (``coin_ft.yaml``), cross-entropy ignoring padding, video
    CLS masked; ``schedule.batch_size`` videos (all their windows) per update, epochs of
    shuffled passes over the training videos; validation: frame accuracy on held-out
    *training* videos; test: stride-16 windows, logits averaged over overlaps, frame accuracy
    over all test seconds (background included).

    ``schedule`` None: the default of ``dataset`` (:func:`resolve_schedule`: ``coin`` on real
    data, 1 video per update for 8 epochs; ``synthetic_cpu_coin`` on the synthetic corpus).
    """
    from ..data.coin import IGNORE_INDEX, load_coin

    sched = resolve_schedule("coin", dataset, schedule)
    dim = model.config.video_feature_dim
    train_set = load_coin(root, subset="training", expected_dim=dim)
    test_set = load_coin(root, subset="testing", expected_dim=dim)
    if len(test_set) == 0:
        raise ValueError(f"coin: no testing video with features under {test_set.feature_dir}")
    index = {v: i for i, v in enumerate(train_set.video_ids)}
    rows, selection = [], []
    for seed in seeds:
        train_ids, val_ids = split_validation(train_set.video_ids, val_fraction, seed)
        base = coin_model(model, train_set.n_classes)
        k = min(sched.batch_size, len(train_ids) * sched.dup)
        batches: list[Iterator[np.ndarray]] = []

        def sample(rng: np.random.Generator, train_ids=train_ids, k=k, batches=batches):
            if not batches:
                batches.append(epoch_batches(len(train_ids), k, sched.dup, rng))
            items = [train_set[index[train_ids[i]]] for i in next(batches[0])]
            return (torch.cat([it.windows for it in items]),
                    torch.cat([it.window_mask for it in items]),
                    torch.cat([it.targets for it in items]))

        def loss_fn(m: DualEncoder, batch) -> Tensor:
            win, mask, target = batch
            logits = m.frame_logits(win.to(device), mask.to(device), cls_attend=False)
            return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                   target.to(device).reshape(-1), ignore_index=IGNORE_INDEX)

        def validate(m: DualEncoder, val_ids=val_ids) -> float:
            items = [train_set[index[v]] for v in val_ids]
            return frame_accuracy([coin_predict(m, it, device) for it in items],
                                  [it.video_targets for it in items])

        sched_k = sched.with_overrides(batch_size=k)
        res = _run_schedule(base, sample, loss_fn, validate, sched_k, len(train_ids), seed)
        selection.append(_selection(seed, res, sched_k, len(train_ids), len(val_ids)))
        preds, targets = [], []
        for it in test_set:
            preds.append(coin_predict(res.model, it, device))
            targets.append(it.video_targets)
        acc = frame_accuracy(preds, targets)
        n = int(sum(len(t) for t in targets))
        rows += [dict(table="T4", setting="fine-tuned", measure="frame accuracy", variant=v,
                      metric="frame_accuracy", value=100 * acc, n=n, seed=seed)
                 for v in ("corrected", "official-compatible")]
    return aggregate_seeds(rows, seeds), selection


# ---------------------------------------------------------------------------------------------
# T7 ablations


_T7_MEASURES = {"bg_removed": "DTW, background removed", "bg_kept": "DTW, background kept"}


def _fit(overrides: list[str]) -> Any:
    from ..train.config import load_config
    from ..train.loop import fit

    return fit(load_config(CONFIG_DIR / "tiny_synthetic.yaml", overrides))  # restores threads


def run_ablations(
    root: Any,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    presets: Sequence[str] = tuple("ABCDEFGHIJ"),
    steps: int = 20,
    videos_per_batch: int = 8,
    smoke: bool = False,
    overrides: Sequence[str] = (),
) -> tuple[list[dict], list[dict]]:
    """Norton Table 7: train each preset (tiny model, synthetic HowTo100M-like corpus), evaluate.

    Each (preset, seed) trains from scratch with ``nortonkit/configs/tiny_synthetic.yaml`` for
    ``steps`` updates, then ``checkpoint_last`` is evaluated on YouCookII clip retrieval (R@1,
    R@5) and video-paragraph DTW with the background removed and kept (R@1, R@5).

    Returns
    -------
    (rows, runs): result rows (mean/std over seeds; ``method`` = preset letter) and one dict per
    run with its directory, steps and training time.
    """
    from ..checkpoint import load_checkpoint
    from ..train.presets import LOSS_PRESETS

    for p in presets:
        if p not in LOSS_PRESETS:
            raise ValueError(f"presets: unknown preset {p!r} (known: {', '.join(LOSS_PRESETS)})")
    check_int_at_least("steps", steps, 1)
    base = Path(out_dir) / "ablations" if out_dir is not None else Path(
        tempfile.mkdtemp(prefix="nortonkit-ablations-"))
    rows, runs = [], []
    for preset in presets:
        for seed in seeds:
            run_dir = base / preset / f"seed{seed}"
            ov = [f"preset={preset}", f"data.root={root.root}", "data.synthetic=null",
                  f"train.out_dir={run_dir}", f"train.seed={seed}", f"train.max_steps={steps}",
                  "train.progress=false", "train.tensorboard=false", f"train.device={device}",
                  f"optim.total_num_update={steps}", f"data.videos_per_batch={videos_per_batch}",
                  f"optim.warmup_updates={steps // 10}", "train.epochs=1000",
                  f"train.val_every={steps}", f"train.save_every={steps}",
                  f"train.log_every={max(1, steps // 5)}"]
            if smoke:
                ov += ["retrieval.mode=off", "data.val_videos=2"]
            t0 = time.perf_counter()
            result = _fit(ov + list(overrides))
            seconds = time.perf_counter() - t0
            if result.last_checkpoint is None:
                raise RuntimeError(f"ablation {preset}: training wrote no checkpoint in {run_dir}")
            model = load_checkpoint(result.last_checkpoint).model.to(device)
            runs.append(dict(preset=preset, seed=seed, steps=result.step, seconds=seconds,
                             checkpoint=str(result.last_checkpoint)))
            found = eval_youcook_clip(model, root, device)
            found = [r for r in found if r["metric"] in ("R@1", "R@5")]
            par = eval_youcook_paragraph(model, root, device, measures=("DTW",))
            for r in par:
                if r["metric"] in ("R@1", "R@5"):
                    kind = "bg_removed" if r["table"] == "T1" else "bg_kept"
                    found.append(dict(r, measure=_T7_MEASURES[kind]))
            for r in found:
                rows.append(dict(r, table="T7", method=preset, seed=seed,
                                 setting=f"zero-shot after {result.step} updates"))
    return aggregate_seeds(rows, seeds), runs


# ---------------------------------------------------------------------------------------------
# T8 efficiency


#: Table 8 lines: (approach as printed, preset, loss overrides, frames per clip).
EFFICIENCY_LINES: tuple[tuple[str, str, dict[str, Any], int], ...] = (
    ("Clip-caption Contrast (16f)", "A", {}, 16),
    ("+ Faulty Negative Exploitation", "B", {}, 16),
    ("+ Video-paragraph Contrast (16f×8)", "norton", {"similarity": "mean"}, 16),
    ("+ Fine-grained Soft-maximum Operator (16f×8)", "norton", {}, 16),
    ("Clip-caption Contrast (32f)", "A", {}, 32),
)


def _step_time(preset: str, loss: dict[str, Any], frames: int, videos: int, clips: int,
               repeats: int, seed: int, device: str) -> list[float]:
    from ..train.config import config_from_dict
    from ..train.objective import NortonObjective, train_step
    from ..train.schedule import build_optimizer

    cfg = config_from_dict({"preset": preset, "loss": loss,
                            "model": {"preset": "tiny", "trainable": "all"},
                            "data": {"videos_per_batch": videos, "clips_per_video": clips,
                                     "max_video_len": frames}})
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc = DualEncoder(cfg.model).to(device).train()
    obj = NortonObjective(enc, cfg.loss, clips_per_video=clips)
    opt = build_optimizer(enc, cfg)
    n = videos * clips
    ids = torch.randint(1000, 30000, (n, 32), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    batch = (torch.randn(n, frames, 512, generator=g).to(device),
             torch.ones(n, frames, dtype=torch.bool, device=device), ids.to(device),
             torch.ones(n, 32, dtype=torch.bool, device=device))
    times = []
    for i in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(obj, enc, opt, batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first step is a warm-up
            times.append(time.perf_counter() - t0)
    return times


def run_efficiency(
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    repeats: int = 5,
    videos_per_batch: int = 8,
    clips_per_video: int = 16,
    lines: Sequence[tuple[str, str, dict[str, Any], int]] = EFFICIENCY_LINES,
    threads: int | None = 1,
) -> list[dict]:
    """Norton Table 8: seconds per training update of each line (tiny model), and the ratio.

    Each line is timed as the median of ``repeats`` updates after one warm-up, on a random
    batch of ``videos_per_batch x clips_per_video`` clips (the time does not depend on the
    values); ``relative_to_line1`` divides by the first line, which the paper also reports
    (minutes per epoch on an A100 are not comparable with seconds per step here). ``threads``
    sets torch's CPU threads while timing (1 by default, like ``tiny_synthetic.yaml``: on a
    small shared CPU more threads make tiny steps slower and noisier); None keeps torch's.
    """
    check_int_at_least("repeats", repeats, 1)
    with torch_threads(threads):
        return _efficiency(device, seeds, repeats, videos_per_batch, clips_per_video, lines)


def _efficiency(device, seeds, repeats, videos_per_batch, clips_per_video, lines) -> list[dict]:
    rows = []
    for seed in seeds:
        per_line = []
        for approach, preset, loss, frames in lines:
            t = statistics.median(_step_time(preset, loss, frames, videos_per_batch,
                                             clips_per_video, repeats, seed, device))
            per_line.append((approach, preset, t))
        first = per_line[0][2]
        for approach, preset, t in per_line:
            common = dict(table="T8", setting=f"tiny model, {device}", method=preset,
                          measure=approach, n=repeats, seed=seed)
            rows.append(dict(common, variant="corrected", metric="seconds_per_step", value=t))
            rows.append(dict(common, variant="corrected", metric="relative_to_line1",
                             value=t / first))
    return aggregate_seeds(rows, seeds)
