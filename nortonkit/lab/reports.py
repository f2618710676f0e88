"""The notebook batch runner, the environment report, declared notebook paths and tables.md.

The ordered notebooks (``notebooks/00_...`` to ``90_...``) are connected only through the
directories of :class:`NotebookPaths`: ``10_data_prep`` writes the corpus, ``20_pretrain``
writes the one named checkpoint that ``30``-``35`` evaluate, every benchmark notebook writes its
results (csv + json) to ``results/``, and ``90_report`` collects them into ``tables.md`` with
:func:`write_tables_md`. :func:`run_notebooks` executes the set with papermill, showing progress,
and passes the same parameters to every notebook (``make demo`` / ``make reproduce``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy
import pandas as pd
import torch

import nortonkit

from ..io import atomic_write
from .paper import compare_with_paper
from .study import stage1_config

__all__ = [
    "NOTEBOOK_ORDER",
    "PARAMETER_NAMES",
    "NotebookPaths",
    "NotebookRun",
    "environment_report",
    "notebook_paths",
    "ordered_notebooks",
    "run_notebooks",
    "collect_results",
    "tables_markdown",
    "write_tables_md",
    "paper_bars",
    "beside_paper",
    "pretrain_config",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: The ordered set run by ``make demo`` (a notebook absent from the checkout is skipped).
NOTEBOOK_ORDER: tuple[str, ...] = (
    "00_quickstart.ipynb",
    "10_data_prep.ipynb",
    "20_pretrain.ipynb",
    "30_youcook2_paragraph_retrieval.ipynb",
    "31_youcook2_clip_retrieval.ipynb",
    "32_msrvtt_retrieval.ipynb",
    "33_msrvtt_qa.ipynb",
    "34_coin_segmentation.ipynb",
    "35_htm_align.ipynb",
    "40_ablations.ipynb",
    "45_efficiency.ipynb",
    "50_alignment_explorer.ipynb",
    "55_transport_study.ipynb",
    "60_noise_robustness.ipynb",
    "90_report.ipynb",
)

#: Names every notebook's ``parameters`` cell defines.
PARAMETER_NAMES: tuple[str, ...] = (
    "data_root", "checkpoint", "device", "dataset", "smoke", "seed", "out_dir", "artifacts",
    "profile", "study_dir",
)


class NotebookPaths(NamedTuple):
    """The declared inputs and outputs shared by the ordered notebooks.

    Attributes
    ----------
    data_root : the corpus (synthetic under ``artifacts``, or the real data root).
    checkpoint : the one named checkpoint written by ``20_pretrain`` (or the one given).
    run_dir : the pre-training run folder (logs, checkpoints).
    results : csv/json results of the benchmark notebooks.
    figures : png figures.
    tables_md : ``out_dir/tables.md``.
    """

    data_root: Path
    checkpoint: Path
    run_dir: Path
    results: Path
    figures: Path
    tables_md: Path


class NotebookRun(NamedTuple):
    """One executed notebook: ``name``, ``output`` path, ``seconds``, ``ok`` and ``error``."""

    name: str
    output: Path
    seconds: float
    ok: bool
    error: str | None


def environment_report(expected_root: str | os.PathLike | None = None,
                       device: str = "cpu") -> dict[str, str]:
    """Versions, device and the location of ``nortonkit``; asserts it is this checkout.

    Parameters
    ----------
    expected_root : the repository root nortonkit must be imported from (default: the parent
        of the package folder, which must hold ``pyproject.toml``).
    device : the device the notebook will use (``"cpu"``, ``"cuda"``).

    Returns
    -------
    dict of strings: python, torch, numpy, pandas, nortonkit, device, nortonkit_path, cpus.

    Raises
    ------
    ValueError
        nortonkit is imported from elsewhere (e.g. an installed wheel), or ``device`` is
        ``"cuda"`` with no GPU visible.

    Examples
    --------
    >>> report = environment_report()
    >>> report["nortonkit"], report["device"]
    ('0.1.0', 'cpu')
    """


    pkg = Path(nortonkit.__file__).resolve().parent
    root = Path(expected_root).resolve() if expected_root is not None else pkg.parent
    if pkg.parent != root or not (root / "pyproject.toml").is_file():
        raise ValueError(f"nortonkit: expected to be imported from the checkout {root} "
                         f"(with pyproject.toml), got {pkg}; install with `pip install -e .`")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: expected a visible GPU for {device!r}, got none "
                         "(use device='cpu')")
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "-"
    report = {
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "pandas": pd.__version__,
        "nortonkit": nortonkit.__version__, "device": device, "gpu": gpu,
        "cpus": str(os.cpu_count()), "nortonkit_path": str(pkg),
    }
    return report


def notebook_paths(artifacts: str | os.PathLike, out_dir: str | os.PathLike,
                   data_root: str | os.PathLike | None = None,
                   checkpoint: str | os.PathLike | None = None, dataset: str = "synthetic",
                   smoke: bool = False) -> NotebookPaths:
    """Resolve the declared artifact paths from a notebook's parameters.

    Parameters
    ----------
    artifacts : folder of generated data, runs and results (gitignored).
    out_dir : folder of reports (figures, tables.md, executed notebooks).
    data_root : the real data root; default: the synthetic corpus under ``artifacts``.
    checkpoint : the checkpoint to evaluate; default: ``20_pretrain``'s.
    dataset : ``"synthetic"`` or ``"real"`` (``"real"`` needs ``data_root``).
    smoke : smoke-size corpus and run (separate folders, so sizes never mix).

    Returns
    -------
    NotebookPaths (folders created).

    Examples
    --------
    >>> import tempfile
    >>> p = notebook_paths(tempfile.mkdtemp(), tempfile.mkdtemp(), smoke=True)
    >>> p.data_root.name, p.checkpoint.name, p.results.is_dir()
    ('synthetic-smoke', 'checkpoint_last', True)
    """
    if dataset not in ("synthetic", "real"):
        raise ValueError(f"dataset: expected 'synthetic' or 'real', got {dataset!r}")
    if dataset == "real" and data_root is None:
        raise ValueError("data_root: expected the real data root for dataset='real', got None")
    art, out = Path(artifacts).resolve(), Path(out_dir).resolve()
    suffix = "-smoke" if smoke else ""
    root = Path(data_root).resolve() if data_root is not None else art / f"synthetic{suffix}"
    run_dir = art / "runs" / f"pretrain{suffix}"
    ckpt = Path(checkpoint).resolve() if checkpoint is not None else run_dir / "checkpoint_last"
    results, figures = art / f"results{suffix}", out / "figures"
    for d in (results, figures):
        d.mkdir(parents=True, exist_ok=True)
    return NotebookPaths(root, ckpt, run_dir, results, figures, out / "tables.md")


def ordered_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks of :data:`NOTEBOOK_ORDER` present in ``notebook_dir``, in order.

    Examples
    --------
    >>> [p.name for p in ordered_notebooks()][:1]
    ['00_quickstart.ipynb']
    """
    d = Path(notebook_dir)
    return [d / n for n in NOTEBOOK_ORDER if (d / n).is_file()]


def run_notebooks(
    notebooks: Sequence[str | os.PathLike] | None = None,
    out_dir: str | os.PathLike = "reports",
    parameters: Mapping[str, Any] | None = None,
    smoke: bool = False,
    artifacts: str | os.PathLike = "artifacts",
    stop_on_error: bool = True,
    progress: bool = True,
    kernel_name: str = "python3",
) -> list[NotebookRun]:
    """Execute notebooks in order with papermill; executed copies go to ``out_dir/notebooks``.

    Parameters
    ----------
    notebooks : paths (default: :func:`ordered_notebooks`).
    out_dir : reports folder (figures, tables.md, executed notebooks).
    parameters : extra papermill parameters (``data_root``, ``checkpoint``, ``device``, ...).
    smoke : pass ``smoke=True`` (seconds per notebook).
    artifacts : the artifacts folder passed to every notebook.
    stop_on_error : stop at the first failing notebook and raise.
    progress : print one line per notebook and show papermill's cell bar.
    kernel_name : Jupyter kernel.

    Returns
    -------
    list of NotebookRun.

    Raises
    ------
    RuntimeError
        A notebook failed and ``stop_on_error`` (names the notebook and the executed copy).
    """
    import papermill as pm  # noqa: PLC0415 -- optional heavy dependency (papermill)

    paths = [Path(p) for p in notebooks] if notebooks is not None else ordered_notebooks()
    if not paths:
        raise ValueError("notebooks: expected at least one notebook, got none")
    for p in paths:
        if not p.is_file():
            raise ValueError(f"notebooks: expected an existing .ipynb file, got {p}")
    out, art = Path(out_dir).resolve(), Path(artifacts).resolve()
    executed = out / "notebooks"
    executed.mkdir(parents=True, exist_ok=True)
    params = {"smoke": bool(smoke), "out_dir": str(out), "artifacts": str(art),
              **dict(parameters or {})}
    runs: list[NotebookRun] = []
    t_all = time.perf_counter()
    for i, nb in enumerate(paths, 1):
        target = executed / nb.name
        if progress:
            print(f"[{i}/{len(paths)}] {nb.name} ...", flush=True)
        t0 = time.perf_counter()
        error = None
        try:
            pm.execute_notebook(str(nb), str(target), parameters=params, cwd=str(nb.parent),
                                kernel_name=kernel_name, progress_bar=progress,
                                log_output=False)
        except Exception as e:  # papermill raises PapermillExecutionError and friends
            error = f"{type(e).__name__}: {e}"
        run = NotebookRun(nb.name, target, round(time.perf_counter() - t0, 1), error is None,
                          error)
        runs.append(run)
        if progress:
            status = "ok" if run.ok else "FAILED"
            print(f"[{i}/{len(paths)}] {nb.name} {status} in {run.seconds:.1f} s "
                  f"(total {time.perf_counter() - t_all:.0f} s)", flush=True)
        if error is not None and stop_on_error:
            raise RuntimeError(f"{nb.name}: execution failed, see {target}\n{error}")
    summary = [dict(notebook=r.name, seconds=r.seconds, ok=r.ok, error=r.error) for r in runs]
    with atomic_write(out / "run_summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    return runs


def pretrain_config(paths: NotebookPaths, smoke: bool = False, seed: int = 0,
                    device: str = "cpu", max_steps: int | None = None) -> Any:
    """Stage 1 of ``20_pretrain``: ``configs/synthetic_stage1.yaml`` re-rooted.

    Parameters
    ----------
    paths : from :func:`notebook_paths` (data root in, run folder out).
    smoke : 4 updates on the smoke corpus with a smaller model (``max_steps`` is ignored).
    seed : training seed.
    device : ``"cpu"`` or ``"cuda"``.
    max_steps : cap on updates (default: the yaml's 300, or 4 in smoke mode).

    Returns
    -------
    nortonkit.train.config.TrainConfig

    Examples
    --------
    >>> import tempfile
    >>> p = notebook_paths(tempfile.mkdtemp(), tempfile.mkdtemp(), smoke=True)
    >>> cfg = pretrain_config(p, smoke=True, max_steps=120)
    >>> cfg.train.max_steps, cfg.preset, cfg.data.synthetic
    (4, 'videoclip', 'smoke')
    """
    synthetic = None if paths.data_root.parent != paths.run_dir.parents[1] else (
        "smoke" if smoke else "default")
    return stage1_config(paths.data_root, paths.run_dir, 4 if smoke else max_steps, synthetic,
                         seed=seed, device=device, smoke=smoke)


# ---------------------------------------------------------------------------------- tables


def collect_results(results_dir: str | os.PathLike) -> Any:
    """Concatenate every ``*.csv`` result table in ``results_dir`` (tidy rows).

    Returns
    -------
    pandas.DataFrame with a ``source`` column (the file stem); empty when there is none.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> d = Path(tempfile.mkdtemp())
    >>> pd.DataFrame(dict(table=["T9"], value=[40.0])).to_csv(d / "htm.csv", index=False)
    >>> collect_results(d)[["table", "value", "source"]].values.tolist()
    [['T9', 40.0, 'htm']]
    """

    d = Path(results_dir)
    if not d.is_dir():
        raise ValueError(f"results_dir: expected a folder of csv results, got {d}")
    frames = []
    for p in sorted(d.glob("*.csv")):
        df = pd.read_csv(p)
        df["source"] = p.stem
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _md_table(df: Any) -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v))
                 for v in row]
        out.append("| " + " | ".join(c.replace("nan", "–") for c in cells) + " |")
    return "\n".join(out)


def _pivot(g: Any, value: str = "value") -> Any:
    """Rows = methods (and settings), columns = ``measure metric``, as the paper prints tables."""
    index = [c for c in ("method", "setting", "variant") if c in g and g[c].notna().any()]
    index = index or ["table"]
    cols = [c for c in ("measure", "metric") if c in g]
    g = g.assign(column=g[cols].astype(str).agg(" ".join, axis=1))
    wide = g.pivot_table(index=index, columns="column", values=value, aggfunc="first", sort=False)
    return wide.reset_index()


def tables_markdown(results: Any, title: str | None = None, dataset: str = "synthetic") -> str:
    """Markdown with one table per paper table, in the paper's layout.

    Parameters
    ----------
    results : tidy DataFrame (``table``, ``measure``, ``metric``, ``value``, ...), e.g. from
        :func:`collect_results`.
    title : heading (default says which data the numbers are on).
    dataset : ``"synthetic"``: our numbers only (they are measured on other data than the
        paper's and are not comparable); ``"real"``: the paper's row of each table
        (:func:`nortonkit.lab.paper.compare_with_paper`) under ours, with the same columns.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame([dict(table="T9", method="ours", measure="alignment",
    ...                        metric="recall", setting="zero-shot", value=20.0)])
    >>> text = tables_markdown(r)
    >>> text.splitlines()[2], "paper:" in text, "delta" in text
    ('## T9', False, False)
    >>> "| paper: Norton (Ours)" in tables_markdown(r, dataset="real")
    True
    """

    if dataset not in ("synthetic", "real"):
        raise ValueError(f"dataset: expected 'synthetic' or 'real', got {dataset!r}")
    if title is None:
        title = ("nortonkit results on the synthetic corpus (not comparable with the paper's)"
                 if dataset == "synthetic" else "nortonkit results beside the paper")
    lines = [f"# {title}", ""]
    if results is None or len(results) == 0:
        return "\n".join([*lines, "No results were found.", ""])
    has_key = {"table", "measure", "metric", "value"} <= set(results.columns)
    if not has_key:
        return "\n".join([*lines, _md_table(results), ""])
    for table, g in results.groupby(results["table"].astype(str), sort=True):
        wide = _pivot(g)
        if dataset == "real":
            cmp = compare_with_paper(g)
            paper = cmp[cmp["paper_value"].notna()]
            if len(paper):
                pw = _pivot(paper.assign(method="paper: " + paper["paper_method"].astype(str)),
                            "paper_value")
                wide = pd.concat([wide, pw], ignore_index=True)
        lines += [f"## {table}", "", _md_table(wide), ""]
    note = ("synthetic corpus: no paper column, the data differ" if dataset == "synthetic"
            else "paper rows from nortonkit/paper_tables.json")
    lines += [f"_{len(results)} results; {note}; values in % unless the metric says "
              "otherwise. The tidy rows are in the results CSVs._", ""]
    return "\n".join(lines)


def write_tables_md(results_dir: str | os.PathLike, path: str | os.PathLike,
                    extras: Mapping[str, Any] | None = None, dataset: str = "synthetic") -> Path:
    """Collect the csv results of ``results_dir`` and write them as markdown to ``path``.

    Tables as :func:`tables_markdown` lays them out (atomic write); ``extras`` maps a section
    title to a DataFrame appended as it is (e.g. the post-trained methods of the study). The
    long tidy rows are written beside it as ``results.csv``.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> pd.DataFrame([dict(table="T9", method="ours", measure="alignment", metric="recall",
    ...                    setting="zero-shot", value=20.0)]).to_csv(d / "t9.csv", index=False)
    >>> text = write_tables_md(d, d / "out" / "tables.md", dataset="real").read_text()
    >>> "46.90" in text, (d / "out" / "results.csv").is_file()
    (True, True)
    """
    results = collect_results(results_dir)
    text = tables_markdown(results, dataset=dataset)
    for title, df in (extras or {}).items():
        text += f"\n## {title}\n\n{_md_table(df)}\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path.with_name("results.csv"), "w") as f:
        results.to_csv(f, index=False)
    with atomic_write(path, "w") as f:
        f.write(text)
    return path


def paper_bars(compared: Any, **where: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Our values and the paper's, keyed by metric, for :func:`nortonkit.lab.viz.plot_recall_bars`.

    Parameters
    ----------
    compared : output of :func:`nortonkit.lab.paper.compare_with_paper`.
    **where : column == value filters (e.g. ``measure="DTW"``); the first row per metric wins.

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame(dict(measure="DTW", metric=["R@1", "R@5"], value=[10.0, 30.0],
    ...                       paper_value=[88.7, float("nan")]))
    >>> paper_bars(c, measure="DTW")
    ({'R@1': 10.0, 'R@5': 30.0}, {'R@1': 88.7})
    """
    sel = compared
    for col, val in where.items():
        if col not in sel:
            raise ValueError(f"where: expected a column of compared, got {col!r}")
        sel = sel[sel[col] == val]
    sel = sel.drop_duplicates("metric")
    ours = {str(m): float(v) for m, v in zip(sel["metric"], sel["value"])}
    paper = {}
    if "paper_value" in sel:
        paper = {str(m): float(v) for m, v in zip(sel["metric"], sel["paper_value"]) if v == v}
    return ours, paper


def beside_paper(results: Any, dataset: str) -> Any:
    """``results`` with the paper's numbers beside them on real data, and alone otherwise.

    Parameters
    ----------
    results : pandas.DataFrame from :func:`nortonkit.lab.evaluate.run_task`.
    dataset : ``"real"`` adds ``paper_method``, ``paper_value``, ``paper_source`` and ``delta``
        (:func:`nortonkit.lab.paper.compare_with_paper`); ``"synthetic"`` returns a copy of
        ``results``: numbers measured on the synthetic corpus are never set beside the paper's.

    Examples
    --------
    >>> ours = pd.DataFrame([dict(table="T9", setting="zero-shot", method="untrained",
    ...                           measure="alignment", metric="recall", value=20.0)])
    >>> "paper_value" in beside_paper(ours, "synthetic"), "delta" in beside_paper(ours, "real")
    (False, True)
    """
    if dataset not in ("real", "synthetic"):
        raise ValueError(f"dataset: expected 'real' or 'synthetic', got {dataset!r}")
    return compare_with_paper(results) if dataset == "real" else results.copy()


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(environment_report(), indent=1))
    sys.exit(0)
