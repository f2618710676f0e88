"""The interactive alignment explorer: ipywidgets controls wired to the library, nothing more.

Sliders for the log-sum-exp temperature ``alpha`` (Eq. 5), the bucket quantile ``p`` (Eq. 6),
the entropy ``eps`` (Eq. 2-3) and the Sinkhorn iteration count, and a picker over examples
(:func:`nortonkit.lab.explore_examples.explorer_examples`). Every change calls
:meth:`AlignmentExplorer.update`, which calls :func:`render_explorer`: the computation is
:func:`nortonkit.lab.explore.explore_alignment`, the picture
:func:`nortonkit.lab.viz.plot_explorer`.
Both are plain functions, so tests and papermill drive the explorer without a browser, and the
same notebook serves as a standalone page with Voila.

The plan picture is an ``ipywidgets.Image`` with the CSS class ``nortonkit-plan-image``; the
agreement table is an ``HTML`` widget with the class ``nortonkit-agreement``; each slider
carries ``nortonkit-<name>`` (``nortonkit-eps``, ...), so a browser test can find them.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import ipywidgets as W

from ..io import atomic_write
from ..validation import check_int_at_least
from .explore import ExplorerResult, explore_alignment
from .explore_examples import AlignmentExample
from .viz import figure_png, plot_explorer

__all__ = ["ExplorerView", "render_explorer", "agreement_html", "AlignmentExplorer",
           "alignment_explorer"]

PLAN_IMAGE_CLASS = "nortonkit-plan-image"
AGREEMENT_CLASS = "nortonkit-agreement"


class ExplorerView(NamedTuple):
    """What one explorer update shows.

    Attributes
    ----------
    result : the :class:`nortonkit.lab.explore.ExplorerResult` (arrays of shape (M, N), (M,), (N,)).
    png : the four-panel figure as PNG bytes.
    html : the agreement and bucket-mass table.
    """

    result: ExplorerResult
    png: bytes
    html: str


def agreement_html(example: AlignmentExample, result: ExplorerResult) -> str:
    """HTML table: agreement with the ground truth and each caption's mass sent to the bucket.

    Parameters
    ----------
    example : the example (N caption texts, optional truth of shape (M, N)).
    result : its :class:`nortonkit.lab.explore.ExplorerResult` (``caption_to_bucket`` (N,)).

    Returns
    -------
    str
        An HTML fragment (caption texts escaped).

    Notes
    -----
    The bucket fraction of caption ``j`` is ``1 - (M + N) * sum_i Q[i, j]`` of Norton Eq. 6's
    plan; captions without a visual counterpart should send most of their mass there.

    Examples
    --------
    >>> import torch
    >>> from nortonkit.lab.explore import explore_alignment
    >>> from nortonkit.lab.explore_examples import example_from_synthetic
    >>> from nortonkit.synthetic.example import synthetic_example
    >>> ex = example_from_synthetic(synthetic_example(seed=0, n_steps=3))
    >>> "Norton accuracy" in agreement_html(ex, explore_alignment(ex))
    True
    """
    rows = [f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>"
            for k, v in result.agreement.items()]
    head = ("<b>agreement with the ground truth</b><table>" + "".join(rows) + "</table>"
            if rows else "<b>no ground truth for this example</b>")
    alignable = None if example.truth is None else example.truth.bool().any(0).tolist()
    caps = []
    for j, (text, frac) in enumerate(zip(example.caption_labels,
                                         result.caption_to_bucket.tolist())):
        flag = "" if alignable is None else ("alignable" if alignable[j] else "no counterpart")
        caps.append(f"<tr><td>{j}</td><td>{html.escape(str(text))}</td><td>{flag}</td>"
                    f"<td>{frac:.2f}</td></tr>")
    table = ("<table><tr><th>#</th><th>caption</th><th>truth</th><th>to bucket</th></tr>"
             + "".join(caps) + "</table>")
    return (f"<div>{head}<p>bucket value p = {result.bucket_value:.3f}</p>"
            f"<details><summary>caption mass sent to the bucket</summary>{table}</details></div>")


def render_explorer(example: AlignmentExample, alpha: float = 1.0, bucket_quantile: float = 0.3,
                    eps: float = 0.1, n_iters: int = 50, dpi: int = 72) -> ExplorerView:
    """Compute and draw one explorer state (the update callback's work, without widgets).

    Parameters
    ----------
    example : an :class:`nortonkit.lab.explore_examples.AlignmentExample` (M clips, N captions).
    alpha, bucket_quantile, eps, n_iters : as in :func:`nortonkit.lab.explore.explore_alignment`.
    dpi : resolution of the PNG.

    Returns
    -------
    ExplorerView
        ``result``, ``png`` (four panels, :func:`nortonkit.lab.viz.plot_explorer`) and ``html``.

    Notes
    -----
    Norton Eq. 5 (similarity), Eq. 2-3 (vanilla OT) and Eq. 6 (prompt bucket).

    Examples
    --------
    >>> from nortonkit.lab.explore_examples import explorer_examples
    >>> ex = explorer_examples(smoke=True)["synthetic 0: clean narration"]()
    >>> a, b = render_explorer(ex, eps=0.05), render_explorer(ex, eps=0.5)
    >>> a.png[1:4], a.png != b.png
    (b'PNG', True)
    """
    check_int_at_least("dpi", dpi, 10)
    result = explore_alignment(example, alpha=alpha, bucket_quantile=bucket_quantile, eps=eps,
                               n_iters=n_iters)
    params = {"alpha": alpha, "p quantile": bucket_quantile, "eps": eps, "iters": n_iters}
    fig = plot_explorer(result, example.clip_labels, example.caption_labels, example.truth,
                        example.title, params)
    return ExplorerView(result, figure_png(fig, dpi=dpi), agreement_html(example, result))


ExampleSource = AlignmentExample | Callable[[], AlignmentExample]


class AlignmentExplorer:
    """Controls wired to :func:`render_explorer`; display it (or its ``widget``) in a notebook.

    Parameters
    ----------
    examples : ordered mapping name -> :class:`~nortonkit.lab.explore_examples.AlignmentExample`
        or a function that builds one (called once, on first selection).
    alpha, bucket_quantile, eps, n_iters : initial slider values.
    dpi : resolution of the plan image.

    Attributes
    ----------
    picker : ``Dropdown`` over the example names.
    alpha, bucket_quantile, eps, n_iters : the sliders (``FloatLogSlider`` for ``alpha`` and
        ``eps``, ``FloatSlider`` for the quantile, ``IntSlider`` for the iterations).
    image : ``Image`` with the four panels (CSS class ``nortonkit-plan-image``).
    summary : ``HTML`` agreement table (CSS class ``nortonkit-agreement``).
    status : ``HTML`` line with the last error, if any.
    widget : the ``VBox`` holding everything.
    view : the last :class:`ExplorerView` (``None`` before the first successful update).
    n_updates : successful updates so far.

    Notes
    -----
    Norton Eq. 2-3, 5 and 6; see :func:`nortonkit.lab.explore.explore_alignment`.

    Examples
    --------
    >>> from nortonkit.lab.explore_examples import explorer_examples
    >>> ex = AlignmentExplorer(explorer_examples(smoke=True))
    >>> before = ex.image.value
    >>> ex.eps.value = 0.5  # fires the observer, as a slider move in the browser does
    >>> ex.n_updates, ex.image.value != before
    (2, True)
    """

    def __init__(self, examples: Mapping[str, ExampleSource], alpha: float = 1.0,
                 bucket_quantile: float = 0.3, eps: float = 0.1, n_iters: int = 50,
                 dpi: int = 72):
        if not isinstance(examples, Mapping) or not examples:
            got = type(examples).__name__ if not isinstance(examples, Mapping) else "empty"
            raise ValueError(f"examples: expected a non-empty mapping name -> example, got {got}")
        check_int_at_least("dpi", dpi, 10)
        self.examples = dict(examples)
        self.dpi = dpi
        self._built: dict[str, AlignmentExample] = {}
        wide = W.Layout(width="420px")
        style = {"description_width": "150px"}
        self.picker = W.Dropdown(options=list(self.examples), description="example",
                                 layout=W.Layout(width="600px"), style=style)
        self.alpha = W.FloatLogSlider(value=alpha, base=10, min=-2, max=1, step=0.05,
                                      description="alpha (log-sum-exp)", readout_format=".3g",
                                      continuous_update=False, layout=wide, style=style)
        self.bucket_quantile = W.FloatSlider(value=bucket_quantile, min=0.05, max=0.95,
                                             step=0.05, description="p (bucket quantile)",
                                             continuous_update=False, layout=wide, style=style)
        self.eps = W.FloatLogSlider(value=eps, base=10, min=-2.5, max=0.5, step=0.05,
                                    description="eps (entropy)", readout_format=".3g",
                                    continuous_update=False, layout=wide, style=style)
        self.n_iters = W.IntSlider(value=n_iters, min=1, max=300, step=1,
                                   description="Sinkhorn iterations", continuous_update=False,
                                   layout=wide, style=style)
        for name in ("picker", "alpha", "bucket_quantile", "eps", "n_iters"):
            getattr(self, name).add_class(f"nortonkit-{name.replace('_', '-')}")
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.image.add_class(PLAN_IMAGE_CLASS)
        self.summary = W.HTML()
        self.summary.add_class(AGREEMENT_CLASS)
        self.status = W.HTML()
        self.status.add_class("nortonkit-status")
        self.widget = W.VBox([
            self.picker,
            W.HBox([self.alpha, self.bucket_quantile]),
            W.HBox([self.eps, self.n_iters]),
            self.status, self.image, self.summary,
        ])
        self.widget.add_class("nortonkit-explorer")
        self.view: ExplorerView | None = None
        self.n_updates = 0
        for control in (self.picker, self.alpha, self.bucket_quantile, self.eps, self.n_iters):
            control.observe(self.update, names="value")
        self.update()

    @property
    def example(self) -> AlignmentExample:
        """The selected example (built on first selection)."""
        name = self.picker.value
        if name not in self._built:
            src = self.examples[name]
            ex = src() if callable(src) else src
            if not isinstance(ex, AlignmentExample):
                raise ValueError(f"examples[{name!r}]: expected an AlignmentExample (or a "
                                 f"function returning one), got {type(ex).__name__}")
            self._built[name] = ex
        return self._built[name]

    @property
    def result(self) -> ExplorerResult | None:
        """The last :class:`~nortonkit.lab.explore.ExplorerResult`."""
        return None if self.view is None else self.view.result

    def update(self, change=None) -> ExplorerView | None:
        """Recompute and redraw from the current control values (the observers' callback).

        Returns the new :class:`ExplorerView`, or ``None`` when the inputs were rejected; the
        error message is then shown in ``status`` and the previous picture stays.
        """
        try:
            view = render_explorer(self.example, alpha=self.alpha.value,
                                   bucket_quantile=self.bucket_quantile.value,
                                   eps=self.eps.value, n_iters=self.n_iters.value, dpi=self.dpi)
        except (ValueError, FileNotFoundError) as e:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
            return None
        self.view = view
        self.image.value = view.png
        self.summary.value = view.html
        self.status.value = ""
        self.n_updates += 1
        return view

    def save(self, path: str | os.PathLike) -> Path:
        """Write the current four-panel picture to ``path`` (PNG, atomically); returns the path.

        >>> import tempfile
        >>> from nortonkit.lab.explore_examples import explorer_examples
        >>> ex = AlignmentExplorer(explorer_examples(smoke=True))
        >>> ex.save(Path(tempfile.mkdtemp()) / "explorer.png").read_bytes()[1:4]
        b'PNG'
        """
        if self.view is None:
            raise ValueError(f"path: nothing to save to {path}; the explorer has no picture yet "
                             f"(status: {self.status.value!r})")
        path = Path(path)
        with atomic_write(path, "wb") as f:
            f.write(self.view.png)
        return path

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def alignment_explorer(examples: Mapping[str, ExampleSource], alpha: float = 1.0,
                       bucket_quantile: float = 0.3, eps: float = 0.1, n_iters: int = 50,
                       dpi: int = 72) -> AlignmentExplorer:
    """Build the alignment explorer over a catalogue of examples.

    Parameters
    ----------
    examples : name -> :class:`~nortonkit.lab.explore_examples.AlignmentExample` or builder, e.g.
        :func:`nortonkit.lab.explore_examples.explorer_examples`.
    alpha, bucket_quantile, eps, n_iters : initial values (Norton: alpha 1, quantile 0.3,
        eps 0.1, 50 iterations).
    dpi : resolution of the plan image.

    Returns
    -------
    AlignmentExplorer
        Display it; ``.widget`` is the ``VBox``, ``.update`` the callback.

    Notes
    -----
    Norton Eq. 2-3, 5 and 6.

    Examples
    --------
    >>> from nortonkit.lab.explore_examples import explorer_examples
    >>> ex = alignment_explorer(explorer_examples(smoke=True))
    >>> ex.picker.value = "synthetic 0: HTM-Align-like noise"
    >>> ex.view.result.similarity.shape[0] > 4, ex.n_updates
    (True, 2)
    """
    return AlignmentExplorer(examples, alpha=alpha, bucket_quantile=bucket_quantile, eps=eps,
                             n_iters=n_iters, dpi=dpi)
