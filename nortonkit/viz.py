"""Plots a researcher would rather look at than read. Pure functions: arrays in, Figure out.

Every function takes numpy arrays or tensors and an optional matplotlib ``ax``; it returns the
``Figure``. Nothing here computes a method: callers pass results from the library.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_similarity",
    "plot_plan",
    "plot_alignment_path",
    "plot_recall_bars",
    "plot_training_curves",
    "plot_noise_sweep",
]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def _ax(ax: Axes | None, figsize=(4.5, 4.0)) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _label_axes(ax: Axes, row_labels, col_labels, max_chars: int = 28) -> None:
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)))
        ax.set_yticklabels([str(s)[:max_chars] for s in row_labels], fontsize=7)
    if col_labels is not None:
        ax.set_xticks(range(len(col_labels)))
        ax.set_xticklabels([str(s)[:max_chars] for s in col_labels], fontsize=7, rotation=60,
                           ha="right")


def plot_similarity(
    sim,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "clip-caption similarity",
    ax: Axes | None = None,
    cmap: str = "viridis",
) -> Figure:
    """Heat map of a similarity matrix, shape (M, N): rows clips, columns captions."""
    sim = _np(sim)
    if sim.ndim != 2:
        raise ValueError(f"sim: expected shape (M, N), got {sim.shape}")
    fig, ax = _ax(ax)
    im = ax.imshow(sim, cmap=cmap, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    _label_axes(ax, row_labels, col_labels)
    ax.set_title(title, fontsize=9)
    return fig


def plot_plan(
    plan,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "transport plan",
    ax: Axes | None = None,
    truth=None,
    row_bucket=None,
    col_bucket=None,
) -> Figure:
    """Transport plan, shape (M, N), with optional ground truth and bucket masses.

    ``truth`` (M, N) 0/1 marks the true pairs with red outlines; ``row_bucket`` (M,) and
    ``col_bucket`` (N,) are the masses each row/column sends to the bucket, drawn as a side
    strip (right) and a bottom strip.
    """
    plan = _np(plan)
    if plan.ndim != 2:
        raise ValueError(f"plan: expected shape (M, N), got {plan.shape}")
    fig, ax = _ax(ax)
    m, n = plan.shape
    show = plan
    if row_bucket is not None or col_bucket is not None:
        rb = np.zeros(m) if row_bucket is None else _np(row_bucket).reshape(m)
        cb = np.zeros(n) if col_bucket is None else _np(col_bucket).reshape(n)
        show = np.full((m + 1, n + 1), np.nan)
        show[:m, :n] = plan
        show[:m, n] = rb
        show[m, :n] = cb
    im = ax.imshow(show, cmap="magma", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if truth is not None:
        for i, j in zip(*np.nonzero(_np(truth))):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.2))
    rows = list(row_labels) if row_labels is not None else None
    cols = list(col_labels) if col_labels is not None else None
    if show is not plan:
        rows = (rows or [str(i) for i in range(m)]) + ["bucket"]
        cols = (cols or [str(j) for j in range(n)]) + ["bucket"]
        ax.axhline(m - 0.5, color="white", lw=1)
        ax.axvline(n - 0.5, color="white", lw=1)
    _label_axes(ax, rows, cols)
    ax.set_title(title, fontsize=9)
    return fig


def plot_alignment_path(
    cost,
    path,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "DTW path",
    ax: Axes | None = None,
    truth=None,
) -> Figure:
    """A cost matrix (M, N) in grey with a 0/1 alignment path (M, N) drawn on top."""
    cost, path = _np(cost), _np(path)
    if cost.shape != path.shape or cost.ndim != 2:
        raise ValueError(
            f"cost, path: expected equal (M, N) shapes, got {cost.shape}, {path.shape}"
        )
    fig, ax = _ax(ax)
    ax.imshow(cost, cmap="Greys", aspect="auto", interpolation="nearest")
    ii, jj = np.nonzero(path)
    order = np.lexsort((jj, ii))
    ax.plot(jj[order], ii[order], "-o", color="tab:orange", ms=3, lw=1.5)
    if truth is not None:
        for i, j in zip(*np.nonzero(_np(truth))):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.2))
    _label_axes(ax, row_labels, col_labels)
    ax.set_title(title, fontsize=9)
    return fig


def plot_recall_bars(
    ours: dict[str, float],
    paper: dict[str, float] | None = None,
    title: str = "recall",
    ax: Axes | None = None,
    ylabel: str = "%",
) -> Figure:
    """Bars for our metrics (e.g. ``{"R@1": 12.3, ...}``) with the paper's numbers as markers."""
    fig, ax = _ax(ax, figsize=(4.5, 3.2))
    keys = list(ours)
    x = np.arange(len(keys))
    ax.bar(x, [ours[k] for k in keys], color="tab:blue", label="nortonkit")
    if paper:
        px = [i for i, k in enumerate(keys) if k in paper]
        ax.scatter(px, [paper[keys[i]] for i in px], marker="_", s=600, color="tab:red",
                   lw=2.5, label="paper", zorder=3)
        ax.legend(fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(keys, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return fig


def plot_training_curves(log, x: str = "step", ys: Sequence[str] = ("loss",),
                         ax: Axes | None = None, title: str = "training") -> Figure:
    """Lines of the columns ``ys`` against ``x`` from a DataFrame (e.g. the CSV training log)."""
    fig, ax = _ax(ax, figsize=(5, 3.2))
    for y in ys:
        if y in log:
            data = log[[x, y]].dropna()
            ax.plot(data[x], data[y], label=y)
    ax.set_xlabel(x)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return fig


def plot_noise_sweep(df, knob: str, metric: str, method_col: str = "method",
                     ax: Axes | None = None) -> Figure:
    """Mean +- std of ``metric`` against noise level ``knob`` per method (a tidy DataFrame)."""
    fig, ax = _ax(ax, figsize=(4.5, 3.2))
    for method, g in df.groupby(method_col):
        stats = g.groupby(knob)[metric].agg(["mean", "std"]).reset_index()
        ax.errorbar(stats[knob], stats["mean"], yerr=stats["std"].fillna(0), label=method,
                    capsize=3, marker="o", ms=3)
    ax.set_xlabel(knob)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.set_title(f"{metric} vs {knob}", fontsize=9)
    return fig
