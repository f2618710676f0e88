"""Smoke tests of the plotting functions under matplotlib's Agg backend (set in conftest)."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from nortonkit.lab import viz


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() == "agg"


def test_plot_similarity_accepts_tensors_and_labels(generator):
    sim = torch.rand(3, 4, generator=generator)
    fig = viz.plot_similarity(sim, ["a", "b", "c"], ["w", "x", "y", "z"],
                              truth=torch.eye(3, 4))
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), sim.numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert len(ax.patches) == 3  # one red outline per true pair


def test_plot_plan_bucket_strips_hold_the_masses():
    plan = np.array([[0.5, 0.0], [0.0, 0.2]])
    fig = viz.plot_plan(plan, row_bucket=[0.1, 0.7], col_bucket=[0.3, 0.4])
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (3, 3)
    np.testing.assert_allclose(shown[:2, :2], plan)
    np.testing.assert_allclose(shown[:2, 2], [0.1, 0.7])
    np.testing.assert_allclose(shown[2, :2], [0.3, 0.4])


def test_plot_alignment_path_draws_the_path_in_order():
    path = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    fig = viz.plot_alignment_path(np.zeros((3, 3)), path)
    xy = fig.axes[0].lines[0].get_xydata()
    np.testing.assert_allclose(xy, [[0, 0], [0, 1], [1, 1], [2, 2]])


@pytest.mark.parametrize("call, match", [
    (lambda: viz.plot_similarity(np.zeros(3)), "sim"),
    (lambda: viz.plot_plan(np.zeros((2, 2)), row_bucket=np.zeros(3)), "row_bucket"),
    (lambda: viz.plot_plan(np.zeros((2, 2)), truth=np.zeros((3, 2))), "truth"),
    (lambda: viz.plot_alignment_path(np.zeros((2, 2)), np.zeros((2, 3))), "path"),
    (lambda: viz.plot_similarity(np.zeros((2, 2)), row_labels=["a"]), "row_labels"),
    (lambda: viz.figure_png("not a figure"), "fig"),
])
def test_bad_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_plot_explorer_four_panels_and_png():
    m, n = 3, 4
    r = SimpleNamespace(similarity=torch.rand(m, n), dtw_path=torch.eye(m, n),
                        ot_plan=torch.rand(m, n), bucket_plan=torch.rand(m, n),
                        clip_to_bucket=torch.rand(m), caption_to_bucket=torch.rand(n),
                        bucket_value=0.25, agreement={"Norton accuracy": 0.5})
    fig = viz.plot_explorer(r, ["0-8 s", "8-16 s", "16-24 s"], ["a", "b", "c", "d"],
                            truth=torch.eye(m, n, dtype=torch.bool), title="toy",
                            params={"eps": 0.1})
    title = fig._suptitle.get_text()
    assert "toy" in title and "eps=0.1" in title and "Norton accuracy 0.50" in title
    assert fig.axes[3].images[0].get_array().shape == (m + 1, n + 1)
    png = viz.figure_png(fig, dpi=40)
    assert png.startswith(b"\x89PNG") and not plt.fignum_exists(fig.number)


def test_other_plots_smoke():
    fig = viz.plot_recall_bars({"R@1": 10.0, "R@5": 30.0}, {"R@1": 12.0})
    assert len(fig.axes[0].patches) == 2
    log = pd.DataFrame({"step": [0, 1, 2], "loss": [3.0, 2.0, 1.5]})
    fig = viz.plot_training_curves(log)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [3.0, 2.0, 1.5])
    df = pd.DataFrame({"method": ["a", "a", "b", "b"], "level": [0.0, 0.5, 0.0, 0.5],
                       "recall": [0.9, 0.7, 0.8, 0.8]})
    fig = viz.plot_noise_sweep(df, "level", "recall")
    assert len(fig.axes[0].get_legend().get_texts()) == 2
