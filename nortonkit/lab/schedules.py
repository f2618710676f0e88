r"""Fine-tuning schedules of Norton Tables 4-6 (COIN, MSR-VTT retrieval, MSR-VTT QA).

Holds :class:`FinetuneSchedule`, the named schedules (:data:`FINETUNE_SCHEDULES`), the default
of each task and dataset (:data:`DEFAULT_SCHEDULES`, chosen by :func:`resolve_schedule`) and
the epoch sampler of the training lists (:func:`epoch_batches`); the fine-tuning that follows
them is :mod:`nortonkit.lab.finetune`.

On real data the official fine-tuning yamls (``vtt_ft`` for MSR-VTT retrieval, ``vttqa`` for
MSR-VTT QA, ``coin``: batch size, epochs over the training list repeated ``dup`` times, Adam
(0.9, 0.98), linear warm-up over 122 updates then fairseq's polynomial decay towards
``total_num_update = 1e6``, gradient clipping 2.0, fp16); on the synthetic corpus small CPU
schedules (``synthetic_cpu``, ``synthetic_cpu_coin``: a fixed number of updates at a constant
rate), which are not the paper's.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..validation import check_choice, check_int_at_least, check_positive

__all__ = [
    "FinetuneSchedule",
    "FINETUNE_SCHEDULES",
    "DEFAULT_SCHEDULES",
    "FINETUNE_TASKS",
    "DATASETS",
    "Precision",
    "resolve_schedule",
    "epoch_batches",
]

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
