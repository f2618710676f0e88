"""``python -m nortonkit.lab.demo``: run the ordered notebooks with papermill (``make demo``).

With no arguments every notebook runs on the default-size synthetic corpus on the CPU and
writes the executed notebooks, ``tables.md`` and the figures to ``reports/`` (artifacts:
corpus, checkpoint, results, under ``artifacts/``). ``make reproduce`` passes the real data
root, a checkpoint and the device as papermill parameters; nothing else changes.

Examples
--------
``python -m nortonkit.lab.demo --smoke``: every notebook in seconds;
``python -m nortonkit.lab.demo --dataset real --data-root /data/norton --checkpoint ckpt --device
cuda``: the same notebooks at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..io import atomic_write
from .reports import NOTEBOOK_DIR, ordered_notebooks, run_notebooks
from .study import (
    gap_closed,
    noise_verdicts,
    orderings,
    orderings_markdown,
    paper_table,
    summarize,
    summary_json,
    write_json,
)
from .transport_study_summary import claims_markdown, paper_claims
from .transport_study_summary import summarize as transport_summarize

__all__ = ["main", "build_parser", "write_summary", "write_results_readme"]


def write_summary(study_dir: str | os.PathLike, path: str | os.PathLike,
                  meta: Mapping[str, Any] | None = None) -> Path | None:
    """``summary.json`` from the study folder that notebooks 40 and 55 wrote (None if absent).

    Reads ``references.json`` (baselines, stage 1), ``methods_runs.csv`` and
    ``alignment_accuracy.json``; see :func:`nortonkit.lab.study.summary_json` for the layout.
    """
    d = Path(study_dir)
    need = [d / "references.json", d / "methods_runs.csv", d / "alignment_accuracy.json"]
    if not all(p.is_file() for p in need):
        return None
    refs = json.loads(need[0].read_text())
    summary = summarize(pd.read_csv(need[1]))
    alignment = json.loads(need[2].read_text())
    return write_json(summary_json(summary, refs["baselines"], alignment, refs["stage1"],
                                   {**dict(meta or {}), "profile": refs.get("profile")}), path)


def _md(df: pd.DataFrame) -> str:
    if isinstance(df.index, pd.MultiIndex) or df.index.name:
        df = df.reset_index()
    elif not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index(names="method")
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _cells(acc: Mapping[str, Mapping[str, float]]) -> str:
    """``dtw 81.8 ± 5.9 (n = 5), ...`` from a ``{method: {mean, std, n}}`` mapping."""
    return ", ".join(f"{m} {v['mean']:.1f} ± {v['std']:.1f} (n = {v['n']})" for m, v in acc.items())


def write_results_readme(study_dir: str | os.PathLike, meta: Mapping[str, Any]) -> Path:
    """``{study_dir}/README.md``: the committed study, read (tables, checks, cost, machine).

    Built only from the files notebooks 40, 55 and 60 wrote into ``study_dir``.
    """
    d = Path(study_dir)
    refs = json.loads((d / "references.json").read_text())
    runs = pd.read_csv(d / "methods_runs.csv")
    summary = summarize(runs)
    base = refs["baselines"]
    lines = {m: {"clip_r1": base["youcook_clip_r1"][m],
                 "paragraph_r1": base["youcook_paragraph_dtw_r1"][m]}
             for m in ("ridge_asr", "ridge_true", "oracle", "linear_infonce")}
    seeds = sorted(int(s) for s in runs["seed"].unique())
    out = [
        "# The synthetic study (`make study`)", "",
        f"Profile `{refs.get('profile')}`; post-training seeds {seeds}; stage 1 trained once "
        f"(seed 0). Machine: {meta.get('machine')}; wall time of `make study`: "
        f"{meta.get('seconds')} s; written {meta.get('date')}. Regenerate with `make study` "
        "(the executed notebooks go to `results/report/`, not committed). Synthetic numbers, "
        "in percent; they are not comparable with the paper's and are not set beside them.",
        "", "## Stage 2: every method post-trained from the stage-1 checkpoint", "",
        "Rows are methods, columns the metrics, `mean ± std (n seeds)`; the first rows are "
        "linear baselines fitted on the same corpus and the stage-1 checkpoint itself.", "",
        _md(paper_table(summary, lines, refs["stage1"])), "",
        orderings_markdown(orderings(summary)), "",
        "Part of the noisy-to-clean gap (`ridge_true` - `ridge_asr`) each method's "
        "post-training closes over the stage-1 checkpoint (percent; 0 = none):", "",
        _md(gap_closed(summary, lines, refs["stage1"])), "",
        "![methods](report/figures/methods.png)", ""]
    if (d / "noise_runs.csv").is_file():
        noise = summarize(pd.read_csv(d / "noise_runs.csv"), by=("knob", "level", "method"))
        wide = noise.assign(cell=noise["mean"].round(1).astype(str) + " ± "
                            + noise["std"].round(1).astype(str)).pivot_table(
            index=["knob", "level", "metric"], columns="method", values="cell",
            aggfunc="first")
        out += ["## Noise sweep (post-trained from stage 1 on each corpus)", "", _md(wide), "",
                "Norton against the best other method (twice the combined std):", "",
                _md(noise_verdicts(noise)), "",
                "![noise](report/figures/noise_robustness.png)", ""]
    if (d / "transport_runs.csv").is_file():
        tr = pd.read_csv(d / "transport_runs.csv")
        acc = json.loads((d / "alignment_accuracy.json").read_text())
        out += ["## Transport against the ground truth", "",
                "Caption-to-segment accuracy at the corpus's default noise, oracle encoders: "
                f"{_cells(acc)}."]
        trained = d / "alignment_accuracy_trained.json"
        if trained.is_file():
            out += ["With the stage-1 checkpoint's encoders instead, same videos and seeds: "
                    f"{_cells(json.loads(trained.read_text()))}."]
        out += ["",
                claims_markdown(paper_claims(transport_summarize(tr)),
                                n_seeds=tr["seed"].nunique()), "",
                "![transport](report/figures/transport_study.png)", ""]
    path = d / "README.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(out))
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring).

    >>> build_parser().parse_args(["--smoke"]).smoke
    True
    """
    p = argparse.ArgumentParser(prog="python -m nortonkit.lab.demo",
                                description="Run nortonkit's ordered notebooks with papermill.")
    p.add_argument("--smoke", action="store_true", help="smoke sizes: seconds per notebook")
    p.add_argument("--data-root", default=None, help="real data root (implies --dataset real)")
    p.add_argument("--dataset", default=None, choices=("synthetic", "real"))
    p.add_argument("--checkpoint", default=None, help="checkpoint evaluated by 30-45")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="reports", help="executed notebooks, figures, tables")
    p.add_argument("--artifacts", default="artifacts", help="corpus, runs and results")
    p.add_argument("--profile", default="demo", choices=("demo", "full"),
                   help="study profile of nortonkit.lab.study.PROFILES (make study: full)")
    p.add_argument("--study-dir", default=None,
                   help="where the study writes (default: {artifacts}/study; make study: "
                        "results)")
    p.add_argument("--notebooks", nargs="*", default=None,
                   help="run only these notebooks (names or paths), in the given order")
    return p


def _resolve(names: Sequence[str] | None) -> list[Path] | None:
    if names is None:
        return None
    out = []
    for n in names:
        p = Path(n)
        p = p if p.is_file() else NOTEBOOK_DIR / p.name
        if not p.is_file():
            raise SystemExit(f"--notebooks: no notebook {n!r} (looked in {NOTEBOOK_DIR})")
        out.append(p)
    return out


def _check_inputs(dataset: str, data_root: str | None, checkpoint: str | None,
                  device: str) -> None:
    """Refuse bad inputs before the first notebook starts (``make reproduce`` runs for hours)."""
    if dataset == "real" and not data_root:
        raise SystemExit("--data-root: dataset 'real' needs the real data root "
                         "(make reproduce DATA_ROOT=/path/to/data ...), got none")
    if data_root and not Path(data_root).is_dir():
        raise SystemExit(f"--data-root: expected a directory, got {data_root!r} (not found)")
    if checkpoint is not None and not Path(checkpoint).exists():
        raise SystemExit(f"--checkpoint: expected a nortonkit checkpoint directory or a "
                         f"fairseq .pt file, got {checkpoint!r} (not found)")
    if device.startswith("cuda"):

        if not torch.cuda.is_available():
            raise SystemExit(f"--device: {device!r} requested but torch sees no CUDA device "
                             "(pass --device cpu, or DEVICE=cpu to make)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the notebooks; return 0 when all succeeded (the failing one is named otherwise)."""
    args = build_parser().parse_args(argv)
    dataset = args.dataset or ("real" if args.data_root else "synthetic")
    _check_inputs(dataset, args.data_root, args.checkpoint or None, args.device)
    params = {"device": args.device, "seed": args.seed, "dataset": dataset,
              "profile": args.profile}
    study_dir = Path(args.study_dir or Path(args.artifacts) / ("study-smoke" if args.smoke
                                                               else "study")).resolve()
    params["study_dir"] = str(study_dir)
    if args.data_root:
        params["data_root"] = str(Path(args.data_root).resolve())
    if args.checkpoint:
        params["checkpoint"] = str(Path(args.checkpoint).resolve())
    notebooks = _resolve(args.notebooks) or ordered_notebooks()
    print(f"nortonkit demo: {len(notebooks)} notebooks, dataset={dataset}, "
          f"smoke={args.smoke}, device={args.device} -> {args.out_dir}/", flush=True)
    t0 = time.perf_counter()
    try:
        run_notebooks(notebooks, out_dir=args.out_dir, parameters=params, smoke=args.smoke,
                      artifacts=args.artifacts)
    except RuntimeError as e:
        print(f"nortonkit demo: FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    seconds = time.perf_counter() - t0
    if dataset == "synthetic":
        meta = {"profile": "smoke" if args.smoke else args.profile, "seconds": round(seconds),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
                "dataset": dataset}
        for target in {Path(args.out_dir) / "summary.json", study_dir / "summary.json"}:
            path = write_summary(study_dir, target, meta)
            if path is not None:
                print(f"nortonkit demo: wrote {path}", flush=True)
    if dataset == "synthetic" and args.profile == "full" and not args.smoke:
        meta["date"] = time.strftime("%Y-%m-%d")
        print(f"nortonkit demo: wrote {write_results_readme(study_dir, meta)}", flush=True)
    print(f"nortonkit demo: done in {seconds:.0f} s; see "
          f"{args.out_dir}/tables.md and {args.out_dir}/figures/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
