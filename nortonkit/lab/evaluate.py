r"""Evaluation of Norton's tables: ``python -m nortonkit.lab.evaluate --task <task> ...``.

=====================  =====  ==================================================================
task                   table  protocol
=====================  =====  ==================================================================
``youcook_paragraph``  T1-2   YouCookII video-paragraph retrieval, background removed (T1) and
                              kept (T2): Cap. Avg., DTW, OTAM, plain OT and Norton's bucketed
                              OT, R@1/5/10
``youcook_clip``       T3     YouCookII clip-caption retrieval, zero-shot
``msrvtt_retrieval``   T5     MSR-VTT 1k-A text-to-video retrieval; ``finetune=True`` fine-tunes
``msrvtt_qa``          T6     MSR-VTT multiple-choice QA; ``finetune=True`` fine-tunes
``coin``               T4     COIN action segmentation, fine-tuned per-frame head (classes from
                              the data: 779 on COIN), frame accuracy; ``zero_shot=True`` variant
``htm_align``          T9     HTM-Align alignment recall and ROC AUC
``ablations``          T7     trains and evaluates the presets A-J
``efficiency``         T8     time per training step per Table 8 line
=====================  =====  ==================================================================

Each task is registered once in :mod:`nortonkit.lab.registry` (:data:`TASKS`: its
:class:`TaskSpec` with options, required files and runner); :func:`run_task` looks it up, loads
the checkpoint and the data root the spec asks for, resolves the fine-tuning schedule and calls
the runner. The protocols themselves live in :mod:`nortonkit.eval`, one module per table.

Protocol (``docs/protocols.md`` §7, §9 items 18-26):

* exactly one named checkpoint is evaluated (``checkpoint=None``: an *untrained* tiny model,
  labelled so); there is no sweep over checkpoints on the test set;
* fine-tuning selects its weights on a validation split carved from the training data, never
  on the test set (:mod:`nortonkit.lab.finetune`); ablations evaluate the last update
  (:mod:`nortonkit.lab.ablations`);
* fine-tuning follows a named schedule (``schedule`` option,
  :data:`nortonkit.lab.schedules.FINETUNE_SCHEDULES`): by default the official yaml's on
  real data (``vtt_ft``, ``vttqa``, ``coin``) and a small CPU schedule on the synthetic corpus
  (``dataset``: given, or inferred from the data root, :func:`resolve_dataset`); ``steps``,
  ``lr``, ``train_batch_size`` / ``batch_videos`` and ``eval_every`` override it;
* tasks that train report the mean and the sample std over ``seeds``;
* every number is labelled ``variant="corrected"`` (nortonkit's measures, ties ranked
  pessimistically) or ``"official-compatible"`` (the released evaluation, quirks included, see
  :mod:`nortonkit.compat`; ties broken as the official ``argsort`` does). Where the released
  evaluation has no quirk (QA, COIN, HTM-Align, clip retrieval without ties) the two agree.

Results are tidy DataFrames with the columns of :data:`COLUMNS` (recalls and accuracies in
percent, like the paper); :func:`save_results` writes them as CSV and JSON with the resolved
options, the checkpoint's sha256, the data root and the package version, atomically;
:func:`nortonkit.lab.paper.compare_with_paper` puts the paper's numbers beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import yaml

from .. import __version__
from ..checkpoint import checkpoint_hash, load_any_checkpoint
from ..data.layout import DataRoot
from ..encoders import DualEncoder, EncoderConfig
from ..io import atomic_write, load_npy
from ..synthetic.corpus import ensure_corpus, load_manifest
from .paper import NORTON, compare_with_paper
from .registry import TASKS, TaskRun, TaskSpec, task_spec
from .schedules import DATASETS, resolve_schedule

__all__ = [
    "TASKS",
    "COLUMNS",
    "TaskSpec",
    "LoadedModel",
    "load_model",
    "resolve_data_root",
    "resolve_dataset",
    "finetune_schedule",
    "check_data_root",
    "run_task",
    "save_results",
    "format_results",
    "main",
]

#: Columns of every result DataFrame, in order.
COLUMNS: tuple[str, ...] = ("task", "table", "setting", "method", "measure", "variant", "metric",
                            "value", "std", "n_seeds", "seed", "n", "checkpoint")


# ---------------------------------------------------------------------------------------------
# model


class LoadedModel(NamedTuple):
    """Output of :func:`load_model`.

    Attributes
    ----------
    model : DualEncoder in eval mode on the requested device.
    label : ``"untrained (tiny, seed 0)"`` or the checkpoint's name.
    sha256 : hash of the weights file (``"untrained"`` without checkpoint).
    source : the checkpoint path, or ``None``.
    kind : ``"untrained"``, ``"nortonkit"`` or ``"fairseq"``.
    """

    model: DualEncoder
    label: str
    sha256: str
    source: str | None
    kind: str


def load_model(checkpoint: str | Path | None = None, device: str = "cpu",
               seed: int = 0) -> LoadedModel:
    """The model to evaluate: one named checkpoint, or an untrained tiny model.

    Parameters
    ----------
    checkpoint : a nortonkit checkpoint directory (or its ``model.safetensors``), a fairseq
        ``.pt`` (the architecture is read from its weights), or None for an *untrained*
        tiny model (``EncoderConfig(preset="tiny")``, initialised with ``seed``).
    device : torch device.
    seed : initialisation seed of the untrained model.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ValueError, FileNotFoundError
        naming the checkpoint: missing file, foreign format, or weights that do not fit the
        architecture (missing / unexpected keys, shapes).

    Examples
    --------
    >>> m = load_model(None)
    >>> m.label, m.kind, m.model.config.hidden_size
    ('untrained (tiny, seed 0)', 'untrained', 64)
    """
    if checkpoint is None:
        torch.manual_seed(seed)
        model = DualEncoder(EncoderConfig(preset="tiny"), load_pretrained=False)
        return LoadedModel(model.to(device).eval(), f"untrained (tiny, seed {seed})",
                           "untrained", None, "untrained")
    path = Path(checkpoint)
    try:
        model, kind = load_any_checkpoint(path)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ValueError(f"checkpoint: {path}: cannot load it as a DualEncoder: {e}") from None
    label = path.name if path.name != "model.safetensors" else path.parent.name
    return LoadedModel(model.to(device).eval(), label, checkpoint_hash(path), str(path), kind)


# ---------------------------------------------------------------------------------------------
# data


def _first_feature(folder: Path) -> Path | None:
    for p in sorted(folder.glob("*.npy")):
        if not p.name.endswith(("_starts.npy", "_data.npy")):
            return p
    return None


def check_data_root(root: DataRoot, task: str, options: dict[str, Any],
                    feature_dim: int | None = None) -> None:
    """Fail fast: every file the task reads exists, and features have the model's width.

    Raises
    ------
    FileNotFoundError
        listing every missing file of the task under the data root.
    ValueError
        when a feature file's second dimension differs from ``feature_dim``.

    Examples
    --------
    >>> import tempfile
    >>> check_data_root(DataRoot(tempfile.mkdtemp()), "htm_align", {})
    Traceback (most recent call last):
    ...
    FileNotFoundError: data root ...: task 'htm_align' needs 2 missing file(s): ...
    """
    required = task_spec(task).required_files(root, options)
    missing = [p for p in required if not p.exists()]
    if missing:
        listing = ", ".join(str(p.relative_to(root.root)) for p in missing)
        raise FileNotFoundError(f"data root {root.root}: task {task!r} needs {len(missing)} "
                                f"missing file(s): {listing}")
    if feature_dim is None:
        return
    for p in required:
        if p.is_dir() and p.name != "feat_shard" and p.name != "caps_shard":
            first = _first_feature(p)
            if first is None:
                continue
            arr = load_npy(first, mmap=True)
            if arr.ndim != 2 or arr.shape[1] != feature_dim:
                raise ValueError(f"{first}: expected features of shape (T, {feature_dim}) for "
                                 f"the model's video_feature_dim, got {tuple(arr.shape)}")


def resolve_data_root(data_root: str | Path | DataRoot | None = None, smoke: bool = False,
                      seed: int = 0) -> DataRoot:
    """The data root to evaluate on; ``None`` = the embedded synthetic corpus.

    ``None`` generates (once) the synthetic corpus under ``artifacts/synthetic`` (size
    ``"default"``) or ``artifacts/synthetic-smoke`` (``smoke=True``), in the released layout.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> resolve_data_root(d).root == Path(d)
    True
    >>> resolve_data_root("/no/such/root")
    Traceback (most recent call last):
    ...
    FileNotFoundError: data_root: /no/such/root is not a directory
    """
    if isinstance(data_root, DataRoot):
        return data_root
    if data_root is not None:
        path = Path(data_root)
        if not path.is_dir():
            raise FileNotFoundError(f"data_root: {path} is not a directory")
        return DataRoot(path)
    folder = Path("artifacts") / ("synthetic-smoke" if smoke else "synthetic")
    return ensure_corpus(folder, "smoke" if smoke else "default", seed=seed)


def resolve_dataset(root: DataRoot | None, dataset: str | None = None) -> str:
    """``"synthetic"`` or ``"real"``: ``dataset`` when given, else what ``root`` holds.

    A root with the manifest of nortonkit's synthetic corpus (or no root: the embedded corpus)
    is ``"synthetic"``; any other data root is ``"real"``.

    Examples
    --------
    >>> import tempfile
    >>> resolve_dataset(None), resolve_dataset(DataRoot(tempfile.mkdtemp()))
    ('synthetic', 'real')
    >>> resolve_dataset(None, "real")
    'real'
    """
    if dataset is not None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset: expected one of {DATASETS}, got {dataset!r}")
        return dataset
    if root is None:
        return "synthetic"
    return "synthetic" if load_manifest(root.root) is not None else "real"


def finetune_schedule(task: str, dataset: str, options: dict[str, Any]) -> Any:
    """The :class:`~nortonkit.lab.schedules.FinetuneSchedule` a training task runs.

    ``options["schedule"]`` names it (None: the default of ``dataset``, official on ``"real"``,
    :func:`~nortonkit.lab.schedules.resolve_schedule`); ``steps``, ``lr``,
    ``train_batch_size`` (MSR-VTT) or ``batch_videos`` (COIN) and ``eval_every`` override its
    values when not None.

    Examples
    --------
    >>> s = finetune_schedule("msrvtt_retrieval", "real", dict(TASKS["msrvtt_retrieval"].options))
    >>> s.name, s.batch_size, s.epochs, s.warmup_updates, s.precision
    ('vtt_ft', 512, 15, 122, 'fp16')
    """
    sched = resolve_schedule(task, dataset, options.get("schedule"))
    batch = options.get("batch_videos") if task == "coin" else options.get("train_batch_size")
    return sched.with_overrides(steps=options.get("steps"), lr=options.get("lr"),
                                batch_size=batch, eval_every=options.get("eval_every"))


# ---------------------------------------------------------------------------------------------
# run


def _options(task: str, smoke: bool, options: dict[str, Any]) -> dict[str, Any]:
    spec = task_spec(task)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        known = ", ".join(sorted(spec.options)) or "none"
        raise ValueError(f"options: unknown option(s) {unknown} for task {task!r} "
                         f"(known: {known})")
    resolved = dict(spec.options)
    if smoke:
        resolved.update(spec.smoke)
    resolved.update(options)
    return resolved


def _seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = (int(seeds),)
    if (not isinstance(seeds, Sequence) or isinstance(seeds, str) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in seeds)):
        raise ValueError(f"seeds: expected a non-empty sequence of integers, got {seeds!r}")
    return tuple(int(s) for s in seeds)


def _frame(rows: list[dict], task: str, label: str) -> Any:
    import pandas as pd  # noqa: PLC0415 -- optional heavy dependency (pandas)

    full = []
    for r in rows:
        row = {"task": task, "method": label, "std": float("nan"), "n_seeds": 1,
               "seed": "", "checkpoint": label, **r}
        row["seed"] = str(row["seed"])
        full.append(row)
    df = pd.DataFrame(full, columns=list(COLUMNS))
    return df.astype({"value": float, "std": float, "n_seeds": int, "n": int})


def run_task(
    task: str,
    checkpoint: str | Path | None = None,
    data_root: str | Path | DataRoot | None = None,
    device: str = "cpu",
    smoke: bool = False,
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    dataset: str | None = None,
    **options: Any,
) -> Any:
    """Run one evaluation task and return its tidy result table.

    Parameters
    ----------
    task : a key of :data:`TASKS`.
    checkpoint : the one checkpoint to evaluate (see :func:`load_model`); None = untrained.
    data_root : a data root in the released layout; None = the embedded synthetic corpus.
    device : torch device (``"cpu"``, ``"cuda"``).
    smoke : small corpus and few training steps (seconds).
    seeds : training seeds (fine-tuning, ablations, timing): mean and std are reported. For
        zero-shot tasks only ``seeds[0]`` matters (the initialisation of an untrained model).
    out_dir : when given, the table is saved there as ``<task>.csv`` / ``<task>.json``.
    dataset : ``"real"`` or ``"synthetic"``; None infers it from the data root
        (:func:`resolve_dataset`). It chooses the default fine-tuning schedule: the official
        one on real data, the CPU one on the synthetic corpus (:func:`finetune_schedule`).
    **options : task options (:data:`TASKS` lists them with their defaults); unknown ones are
        an error.

    Returns
    -------
    pandas.DataFrame with the columns :data:`COLUMNS`; ``df.attrs["meta"]`` holds the resolved
    options, the checkpoint hash, the data root, the versions and the run time.

    Raises
    ------
    ValueError, FileNotFoundError
        unknown task or option, a checkpoint that does not load, a data root without the
        task's files, features of another width: all before any long computation.

    Notes
    -----
    Norton Tables 1-9; ``docs/protocols.md`` §7 for each protocol. See the module docstring.

    Examples
    --------
    >>> run_task("youcook_clips")
    Traceback (most recent call last):
    ...
    ValueError: task: unknown task 'youcook_clips'; did you mean 'youcook_clip'? (known: ...)
    """
    spec = task_spec(task)
    if spec.runner is None:
        raise ValueError(f"task: {task!r} is registered without a runner")
    opts = _options(task, smoke, options)
    seeds = _seeds(seeds)
    t0 = time.perf_counter()
    loaded = load_model(checkpoint, device, seeds[0]) if spec.needs_model else None
    root = resolve_data_root(data_root, smoke) if spec.needs_data else None
    if root is not None:
        dim = loaded.model.config.video_feature_dim if loaded else 512
        check_data_root(root, task, opts, dim)
    dataset = resolve_dataset(root, dataset)
    extra: dict[str, Any] = {}
    sched = finetune_schedule(task, dataset, opts) if spec.fine_tunes(opts) else None
    if sched is not None:
        extra["schedule"] = sched.to_dict()
    run = TaskRun(task, device, seeds, smoke, out_dir, sched, extra)
    rows = spec.runner(loaded.model if loaded else None, root, opts, run)
    label = loaded.label if loaded else "trained from scratch (tiny)"
    init_seed = seeds[0] if loaded is not None and loaded.kind == "untrained" else ""
    rows = [r if "seed" in r else dict(r, seed=init_seed) for r in rows]
    df = _frame(rows, task, label)
    df.attrs["meta"] = dict(
        task=task, tables=spec.tables, options=_jsonable(opts), seeds=list(seeds),
        smoke=bool(smoke), device=str(device), dataset=dataset,
        checkpoint=loaded.source if loaded else None,
        checkpoint_kind=loaded.kind if loaded else None,
        checkpoint_sha256=loaded.sha256 if loaded else None,
        model_config=loaded.model.config.to_dict() if loaded else None,
        data_root=str(root.root.resolve()) if root is not None else None,
        seconds=round(time.perf_counter() - t0, 3), **_jsonable(extra))
    if out_dir is not None:
        save_results(df, out_dir, task, df.attrs["meta"])
    return df


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def save_results(df: Any, out_dir: str | Path, name: str,
                 meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<name>.csv`` and ``<name>.json`` (rows + metadata) under ``out_dir``, atomically.

    The JSON holds ``rows`` (one dict per row), ``meta`` (the given mapping: resolved config,
    checkpoint sha256, data root, ...) and ``versions`` (nortonkit, torch, python).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> csv, js = save_results(pd.DataFrame({"metric": ["R@1"], "value": [1.5]}), d, "t",
    ...                        {"checkpoint_sha256": "abc"})
    >>> json.loads(js.read_text())["rows"], json.loads(js.read_text())["meta"]
    ([{'metric': 'R@1', 'value': 1.5}], {'checkpoint_sha256': 'abc'})
    """
    import pandas as pd  # noqa: PLC0415 -- optional heavy dependency (pandas)

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: expected a plain file stem, got {name!r}")
    out = Path(out_dir)
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    with atomic_write(csv_path, "w") as f:
        df.to_csv(f, index=False)
    doc = {
        "name": name,
        "rows": _jsonable(df.to_dict(orient="records")),
        "meta": _jsonable(dict(meta or {})),
        "versions": {"nortonkit": __version__, "torch": torch.__version__,
                     "python": platform.python_version()},
    }
    with atomic_write(json_path, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
    return csv_path, json_path


def format_results(df: Any, method: str | None = None) -> str:
    """A plain-text table of ``df`` with the paper's numbers beside ours.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame([dict(table="T9", setting="zero-shot", method="x", measure="alignment",
    ...                         variant="corrected", metric="recall", value=20.0, std=float("nan"),
    ...                         n=10)])
    >>> "46.9" in format_results(df)
    True
    """
    cmp = compare_with_paper(df, method=method or NORTON)
    cols = [c for c in ("table", "setting", "method", "measure", "variant", "metric", "value",
                        "std", "n", "paper_value", "paper_method") if c in cmp.columns]
    return cmp[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run one task, print the table beside the paper, save csv + json."""
    parser = argparse.ArgumentParser(prog="python -m nortonkit.lab.evaluate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help=f"one of: {', '.join(TASKS)}")
    parser.add_argument("--checkpoint", default=None,
                        help="nortonkit checkpoint dir or fairseq .pt (default: untrained)")
    parser.add_argument("--data-root", default=None,
                        help="data root (default: the synthetic corpus under artifacts/)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true", help="small corpus, few steps")
    parser.add_argument("--dataset", default=None, choices=("synthetic", "real"),
                        help="chooses the default fine-tuning schedules: official on 'real', "
                             "CPU on 'synthetic' (default: inferred from the data root)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--out", default="reports/eval", help="output folder of csv + json")
    parser.add_argument("--paper-method", default=None,
                        help="paper row to compare with (default 'Norton (Ours)')")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="task option, YAML value (e.g. finetune=true, steps=50)")
    args = parser.parse_args(argv)
    options = {}
    for item in args.option:
        key, sep, raw = item.partition("=")
        if not sep:
            parser.error(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(raw)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    try:
        df = run_task(args.task, args.checkpoint, args.data_root, args.device, args.smoke,
                      seeds, args.out, args.dataset, **options)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.task} ({TASKS[args.task].tables}), checkpoint: {df.attrs['meta']['checkpoint']}"
          f" [{df['checkpoint'].iloc[0]}], data: {df.attrs['meta']['data_root']}")
    print(format_results(df, args.paper_method))
    print(f"saved {Path(args.out) / (args.task + '.csv')} and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
