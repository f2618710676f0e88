"""Plots a researcher would rather look at than read. Pure functions: arrays in, Figure out.

Every function takes numpy arrays or tensors and an optional matplotlib ``ax``; it returns the
``Figure``. Nothing here computes a method: callers pass results from the library
(:func:`plot_explorer` draws a :class:`nortonkit.lab.explore.ExplorerResult`, and
:func:`figure_png` turns any figure into PNG bytes for an ``ipywidgets.Image``).
"""

from __future__ import annotations

import io
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
    "plot_method_bars",
    "plot_transport_sweep",
    "plot_explorer",
    "figure_png",
]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def _matrix(name: str, x, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``x`` as a finite 2-D float array, optionally of a given shape."""
    a = _np(x)
    if a.ndim != 2 or (shape is not None and a.shape != shape):
        want = "(M, N)" if shape is None else str(shape)
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    return a.astype(np.float64)


def _vector(name: str, x, length: int) -> np.ndarray:
    a = _np(x).astype(np.float64)
    if a.shape != (length,):
        raise ValueError(f"{name}: expected shape ({length},), got {a.shape}")
    return a


def _labels(name: str, labels, length: int) -> list[str] | None:
    if labels is None:
        return None
    labels = [str(s) for s in labels]
    if len(labels) != length:
        raise ValueError(f"{name}: expected {length} labels, got {len(labels)}")
    return labels


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


def _outline(ax: Axes, truth) -> None:
    for i, j in zip(*np.nonzero(_np(truth))):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.2))


def plot_similarity(
    sim,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "clip-caption similarity",
    ax: Axes | None = None,
    cmap: str = "viridis",
    truth=None,
) -> Figure:
    """Heat map of a similarity matrix: rows clips, columns captions.

    Parameters
    ----------
    sim : shape (M, N), e.g. Norton's fine-grained similarity (Eq. 5).
    row_labels, col_labels : M clip labels (times) and N caption labels (texts).
    title, ax, cmap : plot title, target axes (default a new figure), colour map.
    truth : shape (M, N) 0/1, optional; true pairs get red outlines.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Draws :math:`S_{ab}` of Norton Eq. 5 (clip ``a``, caption ``b``) as computed by
    :func:`nortonkit.similarity.token_lse_similarity`.

    Examples
    --------
    >>> fig = plot_similarity(np.eye(3), ["0-4 s", "4-8 s", "8-12 s"], list("abc"))
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b', 'c']
    >>> plt.close(fig)
    """
    sim = _matrix("sim", sim)
    m, n = sim.shape
    rows, cols = _labels("row_labels", row_labels, m), _labels("col_labels", col_labels, n)
    fig, ax = _ax(ax)
    im = ax.imshow(sim, cmap=cmap, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if truth is not None:
        _outline(ax, _matrix("truth", truth, (m, n)))
    _label_axes(ax, rows, cols)
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
    r"""Transport plan with optional ground truth and the masses sent to the bucket.

    Parameters
    ----------
    plan : shape (M, N), a transport plan (clips x captions), non-negative.
    row_labels, col_labels : M and N tick labels.
    title, ax : plot title and target axes (default a new figure).
    truth : shape (M, N) 0/1, optional; true pairs get red outlines.
    row_bucket : shape (M,), mass each row sends to the bucket, drawn as a right-hand column.
    col_bucket : shape (N,), mass each column sends to the bucket, drawn as a bottom row.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Draws :math:`Q^*` of Norton Eq. 2-3 or, with the bucket strips, the kept block of
    :math:`\bar Q^*` of Eq. 6 next to the row and column that go to the prompt bucket.

    Examples
    --------
    >>> fig = plot_plan(np.eye(2), ["c0", "c1"], ["t0", "t1"], row_bucket=[0.0, 0.5],
    ...                 col_bucket=[0.1, 0.2])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['c0', 'c1', 'bucket']
    >>> plt.close(fig)
    """
    plan = _matrix("plan", plan)
    m, n = plan.shape
    rows, cols = _labels("row_labels", row_labels, m), _labels("col_labels", col_labels, n)
    fig, ax = _ax(ax)
    show = plan
    if row_bucket is not None or col_bucket is not None:
        rb = np.zeros(m) if row_bucket is None else _vector("row_bucket", row_bucket, m)
        cb = np.zeros(n) if col_bucket is None else _vector("col_bucket", col_bucket, n)
        show = np.full((m + 1, n + 1), np.nan)
        show[:m, :n] = plan
        show[:m, n] = rb
        show[m, :n] = cb
    im = ax.imshow(show, cmap="magma", aspect="auto", interpolation="nearest", vmin=0)
    fig.colorbar(im, ax=ax, shrink=0.8)
    if truth is not None:
        _outline(ax, _matrix("truth", truth, (m, n)))
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
    r"""A cost matrix in grey with a 0/1 monotone alignment path drawn on top.

    Parameters
    ----------
    cost : shape (M, N), pairwise costs (lower = better), e.g. ``-similarity``.
    path : shape (M, N), 0/1 path, e.g. :func:`nortonkit.alignment.dtw` with
        ``return_path=True``.
    row_labels, col_labels : M and N tick labels.
    title, ax : plot title and target axes (default a new figure).
    truth : shape (M, N) 0/1, optional; true pairs get red outlines.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The DTW recurrence :math:`R_{i,j} = C_{i,j} + \min(R_{i-1,j-1}, R_{i-1,j}, R_{i,j-1})`,
    the "DTW" sequence measure of Norton Sec. 4.1.

    Examples
    --------
    >>> fig = plot_alignment_path(-np.eye(3), np.eye(3))
    >>> fig.axes[0].lines[0].get_xydata().tolist()
    [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    >>> plt.close(fig)
    """
    cost = _matrix("cost", cost)
    m, n = cost.shape
    path = _matrix("path", path, (m, n))
    rows, cols = _labels("row_labels", row_labels, m), _labels("col_labels", col_labels, n)
    fig, ax = _ax(ax)
    ax.imshow(cost, cmap="Greys", aspect="auto", interpolation="nearest")
    ii, jj = np.nonzero(path)
    order = np.lexsort((jj, ii))
    ax.plot(jj[order], ii[order], "-o", color="tab:orange", ms=3, lw=1.5)
    if truth is not None:
        _outline(ax, _matrix("truth", truth, (m, n)))
    _label_axes(ax, rows, cols)
    ax.set_title(title, fontsize=9)
    return fig


def plot_explorer(result, clip_labels: Sequence[str] | None = None,
                  caption_labels: Sequence[str] | None = None, truth=None,
                  title: str = "", params: dict[str, float] | None = None) -> Figure:
    r"""The explorer's four panels side by side: similarity, DTW path, OT plan, Norton's plan.

    Parameters
    ----------
    result : a :class:`nortonkit.lab.explore.ExplorerResult` (``similarity``, ``dtw_path``,
        ``ot_plan``, ``bucket_plan`` of shape (M, N); ``clip_to_bucket`` (M,);
        ``caption_to_bucket`` (N,); ``bucket_value``; ``agreement``).
    clip_labels : M clip times (y axes); caption_labels : N caption texts (x axes).
    truth : shape (M, N) 0/1, optional; true pairs get red outlines in every panel.
    title : first line of the figure title (e.g. the example's name).
    params : slider values shown in the title, e.g. ``{"alpha": 1.0, "eps": 0.1}``.

    Returns
    -------
    matplotlib.figure.Figure
        Four axes (plus colour bars); the suptitle lists ``p`` and the agreement numbers.

    Notes
    -----
    Norton Eq. 5 (similarity), Eq. 2-3 (vanilla OT plan) and Eq. 6 (plan with the alignable
    prompt bucket; the bottom row and right column are the masses sent to the bucket).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> r = SimpleNamespace(similarity=np.eye(2), dtw_path=np.eye(2), ot_plan=np.eye(2),
    ...                     bucket_plan=0.5 * np.eye(2), clip_to_bucket=np.full(2, 0.5),
    ...                     caption_to_bucket=np.full(2, 0.5), bucket_value=0.3,
    ...                     agreement={"OT accuracy": 1.0})
    >>> fig = plot_explorer(r, ["0-8 s", "8-16 s"], ["cut", "fry"], truth=np.eye(2))
    >>> [ax.get_title().split(" (")[0] for ax in fig.axes[:4]]
    ['similarity', 'DTW path', 'vanilla OT plan', "Norton's plan"]
    >>> plt.close(fig)
    """
    sim = _matrix("result.similarity", result.similarity)
    m, n = sim.shape
    rows = _labels("clip_labels", clip_labels, m)
    cols = _labels("caption_labels", caption_labels, n)
    # Fixed margins (in inches) instead of a layout engine: the picture is redrawn on every
    # slider move, and constrained layout doubles the drawing time of the tick labels.
    longest = max([len(c[:28]) for c in cols or ["0"]])
    bottom_in, left_in, top_in = 0.3 + 0.055 * longest, 0.25 + 0.055 * max(
        [len(r[:28]) for r in rows or ["0"]]), 0.55
    panel_w, panel_h = max(2.6, 0.15 * n + 1.2), max(2.2, 0.15 * m + 0.6)
    width = left_in + 4 * (panel_w + 1.0)
    height = bottom_in + panel_h + top_in
    fig = plt.figure(figsize=(width, height))
    fig.subplots_adjust(left=left_in / width, right=1 - 0.2 / width, bottom=bottom_in / height,
                        top=1 - top_in / height, wspace=0.2)
    axes = fig.subplots(1, 4)
    plot_similarity(sim, rows, cols, "similarity (Eq. 5)", ax=axes[0], truth=truth)
    plot_alignment_path(-sim, result.dtw_path, rows, cols, "DTW path (on -similarity)",
                        ax=axes[1], truth=truth)
    plot_plan(result.ot_plan, rows, cols, "vanilla OT plan (Eq. 2-3)", ax=axes[2], truth=truth)
    plot_plan(result.bucket_plan, rows, cols, "Norton's plan (Eq. 6), bucket strips",
              ax=axes[3], truth=truth, row_bucket=result.clip_to_bucket,
              col_bucket=result.caption_to_bucket)
    knobs = ", ".join(f"{k}={v:.3g}" for k, v in (params or {}).items())
    scores = ", ".join(f"{k} {v:.2f}" for k, v in result.agreement.items())
    lines = [s for s in (title, knobs, f"bucket value p={result.bucket_value:.3f}",
                         scores) if s]
    fig.suptitle("  |  ".join(lines), fontsize=9, y=1 - 0.12 / height, va="top")
    for ax in axes[1:3]:
        ax.tick_params(labelleft=False)
    return fig


def figure_png(fig: Figure, dpi: int = 72, close: bool = True) -> bytes:
    """PNG bytes of a figure (e.g. for ``ipywidgets.Image``), closing it by default.

    Parameters
    ----------
    fig : the figure.
    dpi : resolution.
    close : close the figure afterwards (figures drawn per slider move would pile up).

    Returns
    -------
    bytes
        A PNG file.

    Examples
    --------
    >>> png = figure_png(plot_similarity(np.eye(2)))
    >>> png[1:4]
    b'PNG'
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    return buf.getvalue()


def plot_recall_bars(
    ours: dict[str, float],
    paper: dict[str, float] | None = None,
    title: str = "recall",
    ax: Axes | None = None,
    ylabel: str = "%",
) -> Figure:
    """Bars for our metrics (e.g. ``{"R@1": 12.3, ...}``) with the paper's numbers as markers.

    ``ours`` and ``paper`` map metric names to values (length-K bars, up to K markers).

    >>> fig = plot_recall_bars({"R@1": 10.0, "R@5": 30.0}, {"R@1": 12.0})
    >>> len(fig.axes[0].patches)
    2
    >>> plt.close(fig)
    """
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
    """Lines of the columns ``ys`` against ``x`` from a DataFrame (e.g. the CSV training log).

    >>> import pandas as pd
    >>> fig = plot_training_curves(pd.DataFrame({"step": [0, 1], "loss": [2.0, 1.0]}))
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [2.0, 1.0]
    >>> plt.close(fig)
    """
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
    """Mean +- std of ``metric`` against noise level ``knob`` per method (a tidy DataFrame).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"method": ["a", "a"], "rate": [0.0, 0.5], "R@1": [9.0, 7.0]})
    >>> plot_noise_sweep(df, "rate", "R@1").axes[0].get_xlabel()
    'rate'
    >>> plt.close("all")
    """
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


def plot_method_bars(summary, metric: str, references: dict[str, float] | None = None,
                     title: str = "", ax: Axes | None = None) -> Figure:
    """Mean ± std over seeds of one metric per method (a :func:`nortonkit.lab.study.summarize`
    frame), with reference levels (baselines, the stage-1 checkpoint) as labelled lines.

    >>> import pandas as pd
    >>> s = pd.DataFrame(dict(method=["a", "b"], metric="r", mean=[1.0, 2.0], std=[0.1, 0.2],
    ...                       n=3))
    >>> fig = plot_method_bars(s, "r", {"ridge": 3.0}, title="t")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b']
    >>> plt.close("all")
    """
    sub = summary[summary["metric"] == metric]
    if sub.empty:
        raise ValueError(f"metric: expected one of {sorted(set(summary['metric']))}, "
                         f"got {metric!r}")
    fig, ax = _ax(ax, figsize=(max(4.0, 0.55 * len(sub) + 2.5), 3.4))
    x = np.arange(len(sub))
    ax.bar(x, sub["mean"], yerr=sub["std"], capsize=3, color="#4c72b0")
    ax.set_xticks(x, [str(m) for m in sub["method"]], rotation=45, ha="right", fontsize=8)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls="--", lw=1, color=colors[(i + 1) % len(colors)],
                   label=f"{name} {value:.1f}")
    if references:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    n = sorted(set(int(k) for k in sub["n"]))
    ax.set_ylabel(f"{metric} (mean ± std, n = {'/'.join(map(str, n))})", fontsize=8)
    ax.set_title(title, fontsize=9)
    return fig


_TRANSPORT_PARAMETERS = ("alpha", "quantile", "eps")  # nortonkit.lab.transport_study


def _transport_panel(runs, knob: str, metric: str, ax,
                     methods=("dtw", "ot", "norton")) -> None:
    sub = runs[(runs["knob"] == knob) & (runs["metric"] == metric)
               & runs["method"].isin(methods)].dropna(subset=["value"])
    df = sub[["method", "level", "value"]].set_axis(["method", knob, metric], axis=1)
    plot_noise_sweep(df, knob, metric, ax=ax)
    if knob in ("alpha", "eps"):
        ax.set_xscale("log")


def plot_transport_sweep(runs, metric: str = "accuracy") -> Figure:
    """Mean ± std over seeds of ``metric`` against every swept knob, one panel per knob.

    Top row: the noise knobs. Bottom row: ``alpha``, ``quantile``, ``eps`` at the default
    noise, then Norton's bucket precision and recall against the irrelevant rate (if swept).

    >>> from nortonkit.lab.transport_study import transport_sweep
    >>> runs = transport_sweep({"reorder_rate": (0.0, 1.0)}, alphas=(0.1, 1.0),
    ...                        quantiles=(0.3,), epsilons=(0.1,), seeds=[0], n_videos=1)
    >>> len(plot_transport_sweep(runs).axes)
    4
    >>> plt.close("all")
    """
    knobs = [k for k in runs["knob"].unique() if k not in (*_TRANSPORT_PARAMETERS, "default")]
    params = [k for k in _TRANSPORT_PARAMETERS if k in set(runs["knob"])]
    extra = ["bucket_precision", "bucket_recall"] if "irrelevant_rate" in knobs else []
    cols = max(len(knobs), len(params) + len(extra), 1)
    fig, axes = plt.subplots(2, cols, figsize=(3.3 * cols, 6.4), squeeze=False,
                             layout="constrained")
    for ax, knob in zip(axes[0], knobs):
        _transport_panel(runs, knob, metric, ax)
    for ax, knob in zip(axes[1], params):
        _transport_panel(runs, knob, metric, ax)
    for ax, m in zip(axes[1, len(params):], extra):
        _transport_panel(runs, "irrelevant_rate", m, ax, methods=("norton",))
    for ax in [*axes[0, len(knobs):], *axes[1, len(params) + len(extra):]]:
        fig.delaxes(ax)
    return fig
