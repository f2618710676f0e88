"""The task registry of :func:`nortonkit.lab.evaluate.run_task`: one spec and one runner per task.

Each task of Norton's Tables 1-9 is registered once, with :func:`register_task`, as a
:class:`TaskSpec`: its table(s), its options and their defaults, the files it reads under the
data root, whether it evaluates the named checkpoint, reads a data root or fine-tunes, and its
runner ``runner(model, root, options, run) -> rows``. :func:`nortonkit.lab.evaluate.run_task`
looks the task up (:func:`task_spec`), loads what the spec asks for and calls the runner.

Runners of the zero-shot protocols call :mod:`nortonkit.eval`; the runners of the tasks that
train call :mod:`nortonkit.lab.finetune` (fine-tuned MSR-VTT and COIN),
:mod:`nortonkit.lab.ablations` (Table 7) and :mod:`nortonkit.lab.efficiency` (Table 8 timing),
so that :mod:`nortonkit.eval` never imports training.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ..data.layout import DataRoot
from ..encoders import DualEncoder
from ..eval.clip import eval_youcook_clip
from ..eval.coin import eval_coin_zero_shot
from ..eval.htm_align import eval_htm_align
from ..eval.msrvtt import eval_msrvtt_qa, eval_msrvtt_retrieval
from ..eval.paragraph import MEASURES, eval_youcook_paragraph
from .ablations import run_ablations
from .efficiency import run_efficiency
from .finetune import eval_coin_finetuned, eval_msrvtt_finetuned

__all__ = ["TaskRun", "Runner", "TaskSpec", "TASKS", "register_task", "task_spec"]


class TaskRun(NamedTuple):
    """What a runner gets beside the model, the data root and the resolved options.

    Attributes
    ----------
    task : the task's name (a key of :data:`TASKS`).
    device : torch device.
    seeds : training seeds; tasks that train report the mean and the std over them.
    smoke : small corpus and few training steps.
    out_dir : the results folder, or None.
    schedule : the :class:`~nortonkit.lab.schedules.FinetuneSchedule` of a run that fine-tunes
        (:meth:`TaskSpec.fine_tunes`), else None.
    extra : metadata the runner adds to ``df.attrs["meta"]`` (``selection``, ``runs``).
    """

    task: str
    device: str
    seeds: tuple[int, ...]
    smoke: bool
    out_dir: str | Path | None
    schedule: Any
    extra: dict[str, Any]


#: ``runner(model, root, options, run) -> rows``: the model is None for tasks that train from
#: scratch, the root None for tasks that read no data; rows are dicts with the columns of
#: :data:`nortonkit.lab.evaluate.COLUMNS` (``task``, ``method`` and ``checkpoint`` are added).
Runner = Callable[[DualEncoder | None, DataRoot | None, dict[str, Any], TaskRun], list[dict]]


class TaskSpec(NamedTuple):
    """One evaluation task: its table(s), what it does, its options and their defaults.

    ``smoke`` overrides defaults when ``smoke=True``; ``trains`` says whether it trains (then
    ``seeds`` are repeated and aggregated).

    Attributes
    ----------
    runner : computes the result rows (:data:`Runner`); None: the task cannot run.
    required : ``required(root, options)``, the files the task reads under the data root
        (None: none).
    needs_model : whether the task evaluates the named checkpoint
        (:func:`nortonkit.lab.evaluate.load_model`).
    needs_data : whether the task reads a data root.
    finetunes : ``finetunes(options)``, whether this run follows a fine-tuning schedule
        (:func:`nortonkit.lab.evaluate.finetune_schedule`); None: never.
    """

    tables: str
    description: str
    options: dict[str, Any]
    smoke: dict[str, Any]
    trains: bool
    runner: Runner | None = None
    required: Callable[[DataRoot, dict[str, Any]], list[Path]] | None = None
    needs_model: bool = True
    needs_data: bool = True
    finetunes: Callable[[dict[str, Any]], bool] | None = None

    def required_files(self, root: DataRoot, options: dict[str, Any]) -> list[Path]:
        """The files this task reads under ``root`` with ``options``."""
        return [] if self.required is None else list(self.required(root, options))

    def fine_tunes(self, options: dict[str, Any]) -> bool:
        """Whether a run with ``options`` fine-tunes (and so follows a schedule)."""
        return self.finetunes is not None and bool(self.finetunes(options))


#: The registered tasks, in the order of Norton's tables.
TASKS: dict[str, TaskSpec] = {}


def register_task(
    name: str,
    tables: str,
    description: str,
    options: dict[str, Any],
    *,
    smoke: dict[str, Any] | None = None,
    trains: bool = False,
    required: Callable[[DataRoot, dict[str, Any]], list[Path]] | None = None,
    needs_model: bool = True,
    needs_data: bool = True,
    finetunes: Callable[[dict[str, Any]], bool] | None = None,
) -> Callable[[Runner], Runner]:
    """Decorator: register the decorated runner as task ``name`` with its :class:`TaskSpec`.

    Raises
    ------
    ValueError
        when ``name`` is already registered.

    Examples
    --------
    >>> TASKS["htm_align"].tables, TASKS["htm_align"].runner.__name__
    ('T9', '_run_htm_align')
    """
    def add(runner: Runner) -> Runner:
        if name in TASKS:
            raise ValueError(f"task: {name!r} is already registered")
        TASKS[name] = TaskSpec(tables, description, dict(options), dict(smoke or {}), trains,
                               runner, required, needs_model, needs_data, finetunes)
        return runner

    return add


def task_spec(task: str) -> TaskSpec:
    """The registered spec of ``task``.

    Raises
    ------
    ValueError
        naming the argument, the closest known task and every known task.

    Examples
    --------
    >>> task_spec("coin").tables
    'T4'
    >>> task_spec("youcook_clips")
    Traceback (most recent call last):
    ...
    ValueError: task: unknown task 'youcook_clips'; did you mean 'youcook_clip'? (known: ...)
    """
    if task not in TASKS:
        close = difflib.get_close_matches(str(task), list(TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"task: unknown task {task!r}{hint} (known: {', '.join(TASKS)})")
    return TASKS[task]


# ---------------------------------------------------------------------------------------------
# the files each task reads


def _youcook_files(root: DataRoot, options: dict[str, Any]) -> list[Path]:
    return [root.youcook_val_pkl, root.youcook_annotations, root.youcook_features]


def _msrvtt_retrieval_files(root: DataRoot, options: dict[str, Any]) -> list[Path]:
    extra = [root.msrvtt_train_csv("9k"), root.msrvtt_data_json] if options["finetune"] else []
    return [root.msrvtt_test_csv, root.msrvtt_features, *extra]


def _msrvtt_qa_files(root: DataRoot, options: dict[str, Any]) -> list[Path]:
    extra = [root.msrvtt_train_csv("7k"), root.msrvtt_data_json] if options["finetune"] else []
    return [root.msrvtt_qa_csv, root.msrvtt_features, *extra]


def _coin_files(root: DataRoot, options: dict[str, Any]) -> list[Path]:
    return [root.coin_json, root.coin_features]


def _htm_align_files(root: DataRoot, options: dict[str, Any]) -> list[Path]:
    return [root.htm_align_json, root.htm_align_features]


def _ablation_files(root: DataRoot, options: dict[str, Any]) -> list[Path]:
    return [root.how2_list("train"), root.how2_list("val"), root.how2_feature_shards,
            root.how2_caption_shards, *_youcook_files(root, options)]


def _finetune_option(options: dict[str, Any]) -> bool:
    return bool(options["finetune"])


def _not_zero_shot(options: dict[str, Any]) -> bool:
    return not options["zero_shot"]


# ---------------------------------------------------------------------------------------------
# the tasks, in the order of the tables

# Fine-tuning options: None takes the value of the schedule (official on real data).
_FT = dict(schedule=None, steps=None, lr=None, val_fraction=0.1, eval_every=None)
_FT_SMOKE = dict(steps=2, eval_every=1)


@register_task(
    "youcook_paragraph", "T1, T2",
    "YouCookII video-paragraph retrieval, background removed and kept",
    dict(settings=("bg_removed", "bg_kept"), preset="norton", measures=MEASURES, ot_eps=0.1,
         ot_iters=50, batch_size=256, window=16, bucket_quantile=0.3),
    required=_youcook_files)
def _run_youcook_paragraph(model: DualEncoder, root: DataRoot, options: dict[str, Any],
                           run: TaskRun) -> list[dict]:
    return eval_youcook_paragraph(model, root, run.device, **options)


@register_task("youcook_clip", "T3", "YouCookII clip-caption retrieval (zero-shot)",
               dict(batch_size=256), required=_youcook_files)
def _run_youcook_clip(model: DualEncoder, root: DataRoot, options: dict[str, Any],
                      run: TaskRun) -> list[dict]:
    return eval_youcook_clip(model, root, run.device, options["batch_size"])


@register_task(
    "msrvtt_retrieval", "T5", "MSR-VTT text-to-video retrieval, zero-shot or fine-tuned",
    dict(finetune=False, batch_size=256, train_batch_size=None, **_FT), smoke=_FT_SMOKE,
    required=_msrvtt_retrieval_files, finetunes=_finetune_option)
def _run_msrvtt_retrieval(model: DualEncoder, root: DataRoot, options: dict[str, Any],
                          run: TaskRun) -> list[dict]:
    if options["finetune"]:
        rows, run.extra["selection"] = eval_msrvtt_finetuned(
            model, root, run.task, run.device, run.seeds, run.schedule, options["val_fraction"])
        return rows
    return eval_msrvtt_retrieval(model, root, run.device, options["batch_size"])


@register_task(
    "msrvtt_qa", "T6", "MSR-VTT multiple-choice QA, zero-shot or fine-tuned",
    dict(finetune=False, batch_size=256, train_batch_size=None, max_video_len=16, **_FT),
    smoke=_FT_SMOKE, required=_msrvtt_qa_files, finetunes=_finetune_option)
def _run_msrvtt_qa(model: DualEncoder, root: DataRoot, options: dict[str, Any],
                   run: TaskRun) -> list[dict]:
    if options["finetune"]:
        rows, run.extra["selection"] = eval_msrvtt_finetuned(
            model, root, run.task, run.device, run.seeds, run.schedule, options["val_fraction"],
            qa_max_video_len=options["max_video_len"])
        return rows
    return eval_msrvtt_qa(model, root, run.device, options["batch_size"],
                          options["max_video_len"])


@register_task(
    "coin", "T4", "COIN action segmentation, fine-tuned per-frame head (or zero-shot)",
    dict(zero_shot=False, batch_videos=None, batch_size=256, **_FT), smoke=_FT_SMOKE,
    trains=True, required=_coin_files, finetunes=_not_zero_shot)
def _run_coin(model: DualEncoder, root: DataRoot, options: dict[str, Any],
              run: TaskRun) -> list[dict]:
    if options["zero_shot"]:
        return eval_coin_zero_shot(model, root, run.device, options["batch_size"])
    rows, run.extra["selection"] = eval_coin_finetuned(
        model, root, run.device, run.seeds, run.schedule, options["val_fraction"])
    return rows


@register_task("htm_align", "T9", "HTM-Align alignment recall and AUC (zero-shot)", {},
               required=_htm_align_files)
def _run_htm_align(model: DualEncoder, root: DataRoot, options: dict[str, Any],
                   run: TaskRun) -> list[dict]:
    return eval_htm_align(model, root, run.device)


@register_task(
    "ablations", "T7", "train and evaluate the Table 7 presets A-J",
    dict(presets=tuple("ABCDEFGHIJ"), steps=20, videos_per_batch=8, overrides=()),
    smoke=dict(steps=1, videos_per_batch=4), trains=True, required=_ablation_files,
    needs_model=False)
def _run_ablations(model: None, root: DataRoot, options: dict[str, Any],
                   run: TaskRun) -> list[dict]:
    rows, run.extra["runs"] = run_ablations(
        root, run.device, run.seeds, run.out_dir, tuple(options["presets"]), options["steps"],
        options["videos_per_batch"], run.smoke, tuple(options["overrides"]))
    return rows


@register_task(
    "efficiency", "T8", "seconds per training step of each Table 8 line",
    dict(repeats=5, videos_per_batch=8, clips_per_video=16, threads=1),
    smoke=dict(repeats=1, videos_per_batch=4, clips_per_video=8), trains=True,
    needs_model=False, needs_data=False)
def _run_efficiency(model: None, root: None, options: dict[str, Any],
                    run: TaskRun) -> list[dict]:
    return run_efficiency(run.device, run.seeds, options["repeats"], options["videos_per_batch"],
                          options["clips_per_video"], threads=options["threads"])
