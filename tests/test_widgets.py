"""The explorer driven headlessly: setting a control's value fires the update callback."""

from __future__ import annotations

import ipywidgets as W
import pytest
import torch

from nortonkit.lab.explore_examples import AlignmentExample, explorer_examples
from nortonkit.lab.widgets import (
    AGREEMENT_CLASS,
    PLAN_IMAGE_CLASS,
    AlignmentExplorer,
    agreement_html,
    alignment_explorer,
    render_explorer,
)


@pytest.fixture(scope="module")
def catalogue():
    return explorer_examples(smoke=True)


@pytest.fixture
def explorer(catalogue):
    return alignment_explorer(catalogue, dpi=30)


def test_builds_all_controls_with_stable_css_classes(explorer):
    assert isinstance(explorer.widget, W.VBox)
    assert PLAN_IMAGE_CLASS in explorer.image._dom_classes
    assert AGREEMENT_CLASS in explorer.summary._dom_classes
    for name in ("alpha", "bucket_quantile", "eps", "n_iters"):
        slider = getattr(explorer, name)
        assert f"nortonkit-{name.replace('_', '-')}" in slider._dom_classes
    assert isinstance(explorer.alpha, W.FloatLogSlider) and isinstance(explorer.eps,
                                                                        W.FloatLogSlider)
    assert isinstance(explorer.n_iters, W.IntSlider)
    assert explorer.n_updates == 1 and explorer.image.value[1:4] == b"PNG"
    assert "Norton accuracy" in explorer.summary.value


@pytest.mark.parametrize("name, value", [("eps", 0.5), ("alpha", 0.05),
                                         ("bucket_quantile", 0.8), ("n_iters", 3)])
def test_each_slider_fires_the_callback_and_changes_the_plan(explorer, name, value):
    before_png, before = explorer.image.value, explorer.result
    getattr(explorer, name).value = value
    assert explorer.n_updates == 2
    assert explorer.image.value != before_png
    after = explorer.result
    if name == "alpha":
        assert not torch.allclose(after.similarity, before.similarity)
    elif name == "bucket_quantile":
        assert after.bucket_value > before.bucket_value
    else:
        assert not torch.allclose(after.bucket_plan, before.bucket_plan)


def test_picker_switches_example_and_agreement_is_reported(explorer, catalogue):
    first = explorer.result.similarity.shape
    explorer.picker.value = list(catalogue)[1]
    assert explorer.example.title == list(catalogue)[1]
    assert explorer.result.similarity.shape != first
    agreement = explorer.result.agreement
    assert {"OT accuracy", "Norton accuracy", "DTW accuracy"} <= set(agreement)
    assert all(0.0 <= v <= 1.0 for v in agreement.values())


def test_render_explorer_matches_the_widget(explorer):
    explorer.eps.value = 0.2
    view = render_explorer(explorer.example, alpha=explorer.alpha.value,
                           bucket_quantile=explorer.bucket_quantile.value, eps=0.2,
                           n_iters=explorer.n_iters.value, dpi=30)
    torch.testing.assert_close(view.result.bucket_plan, explorer.result.bucket_plan)
    assert view.html == explorer.summary.value


def test_examples_are_built_lazily_once():
    calls = []
    base = explorer_examples(smoke=True)
    name, build = next(iter(base.items()))

    def counted() -> AlignmentExample:
        calls.append(1)
        return build()

    ex = AlignmentExplorer({name: counted, "other": base[list(base)[1]]}, dpi=30)
    ex.eps.value = 0.3
    ex.alpha.value = 0.5
    assert len(calls) == 1 and ex.n_updates == 3


def test_rejected_inputs_show_an_error_and_keep_the_picture(catalogue):
    bad = {"bad": lambda: "not an example", **catalogue}
    ex = AlignmentExplorer(bad, dpi=30)
    assert ex.view is None and "bad" in ex.status.value
    with pytest.raises(ValueError, match="path"):
        ex.save("never.png")
    ex.picker.value = list(catalogue)[0]
    assert ex.view is not None and ex.status.value == ""


def test_agreement_html_escapes_captions(catalogue):
    example = next(iter(catalogue.values()))()
    example = example._replace(caption_labels=["<b>x</b>"] * len(example.caption_labels))
    view = render_explorer(example, dpi=30)
    assert "&lt;b&gt;x&lt;/b&gt;" in agreement_html(example, view.result)
    no_truth = example._replace(truth=None)
    html = render_explorer(no_truth, dpi=30).html
    assert "no ground truth" in html and "alignable" not in html


def test_save_writes_the_current_picture(explorer, tmp_path):
    path = explorer.save(tmp_path / "sub" / "explorer.png")
    assert path.read_bytes() == explorer.image.value


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="examples"):
        AlignmentExplorer({})
    with pytest.raises(ValueError, match="dpi"):
        AlignmentExplorer(explorer_examples(smoke=True), dpi=1)
