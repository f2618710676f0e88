"""Batch runner, environment report, declared paths and tables.md."""

from __future__ import annotations

import json
import os

import nbformat
import pandas as pd
import pytest

from nortonkit.lab import demo
from nortonkit.lab.reports import (
    collect_results,
    environment_report,
    notebook_paths,
    paper_bars,
    run_notebooks,
    tables_markdown,
    write_tables_md,
)


def test_environment_report_checks_the_checkout(tmp_path):
    report = environment_report()
    assert report["device"] == "cpu" and report["nortonkit_path"].endswith("nortonkit")
    with pytest.raises(ValueError, match="nortonkit: expected to be imported from"):
        environment_report(expected_root=tmp_path)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without GPU")
def test_environment_report_refuses_cuda_without_gpu():
    with pytest.raises(ValueError, match="device"):
        environment_report(device="cuda")


def test_notebook_paths(tmp_path):
    smoke = notebook_paths(tmp_path / "a", tmp_path / "r", smoke=True)
    full = notebook_paths(tmp_path / "a", tmp_path / "r")
    assert smoke.data_root != full.data_root and smoke.results != full.results
    assert full.checkpoint == tmp_path / "a" / "runs" / "pretrain" / "checkpoint_last"
    real = notebook_paths(tmp_path / "a", tmp_path / "r", tmp_path / "d", tmp_path / "c", "real")
    assert real.data_root == tmp_path / "d" and real.checkpoint == tmp_path / "c"
    with pytest.raises(ValueError, match="data_root"):
        notebook_paths(tmp_path / "a", tmp_path / "r", dataset="real")
    with pytest.raises(ValueError, match="dataset"):
        notebook_paths(tmp_path / "a", tmp_path / "r", dataset="hub")


def _rows():
    return pd.DataFrame([
        dict(table="T1", method="ours", setting="zero-shot", measure="DTW", variant="corrected",
             metric="R@1", value=12.5),
        dict(table="T9", method="ours", setting="zero-shot", measure="alignment",
             variant="corrected", metric="recall", value=20.0),
    ])


def test_tables_md_sets_the_paper_beside_ours_only_on_real_data(tmp_path):
    _rows().to_csv(tmp_path / "r.csv", index=False)
    robust = pd.DataFrame(dict(knob=["async_rate"], clip_r1_mean=[3.0]))
    path = write_tables_md(tmp_path, tmp_path / "out" / "tables.md", extras={"Sweep": robust},
                           dataset="real")
    text = path.read_text()
    assert "## T1" in text and "## T9" in text and "## Sweep" in text
    assert "88.70" in text and "46.90" in text  # Norton's DTW R@1 (T1) and recall (T9)
    assert "| paper: Norton (Ours)" in text and "delta" not in text
    synthetic = write_tables_md(tmp_path, tmp_path / "syn" / "tables.md").read_text()
    assert "88.70" not in synthetic and "paper:" not in synthetic and "12.50" in synthetic
    tidy = pd.read_csv(tmp_path / "syn" / "results.csv")
    assert len(tidy) == 2 and "value" in tidy
    assert collect_results(tmp_path)["source"].tolist() == ["r", "r"]
    assert "No results" in tables_markdown(pd.DataFrame())
    with pytest.raises(ValueError, match="results_dir"):
        collect_results(tmp_path / "missing")


def test_paper_bars_filters():
    from nortonkit.lab.paper import compare_with_paper

    ours, paper = paper_bars(compare_with_paper(_rows()), table="T1")
    assert ours == {"R@1": 12.5} and paper == {"R@1": 88.7}
    with pytest.raises(ValueError, match="where"):
        paper_bars(_rows(), colour="red")


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("smoke = False\nout_dir = 'x'\nartifacts = 'y'\nseed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def quiet_home(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "home" / "ipython"))
    return tmp_path


@pytest.mark.slow
def test_run_notebooks_passes_parameters_and_names_failures(quiet_home):
    tmp = quiet_home
    good = _notebook(tmp / "good.ipynb", "import pathlib\n"
                     "pathlib.Path(artifacts, 'done.txt').write_text(f'{smoke} {seed}')")
    bad = _notebook(tmp / "bad.ipynb", "assert smoke is False, 'boom'")
    (tmp / "art").mkdir()
    code = demo.main(["--notebooks", str(good), "--smoke", "--seed", "3",
                      "--out-dir", str(tmp / "rep"), "--artifacts", str(tmp / "art")])
    assert code == 0
    assert (tmp / "art" / "done.txt").read_text() == "True 3"
    executed = nbformat.read(tmp / "rep" / "notebooks" / "good.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    summary = json.loads((tmp / "rep" / "run_summary.json").read_text())
    assert summary[0]["ok"] is True
    with pytest.raises(RuntimeError, match="bad.ipynb"):
        run_notebooks([bad], out_dir=tmp / "rep2", smoke=True, artifacts=tmp / "art",
                      progress=False)
    runs = run_notebooks([bad, good], out_dir=tmp / "rep3", smoke=True, artifacts=tmp / "art",
                         progress=False, stop_on_error=False)
    assert [r.ok for r in runs] == [False, True] and "boom" in runs[0].error
    with pytest.raises(ValueError, match="notebooks"):
        run_notebooks([tmp / "missing.ipynb"], out_dir=tmp / "rep4")
    assert os.environ["HOME"] == str(tmp / "home")


def test_demo_cli_rejects_unknown_notebooks(tmp_path):
    with pytest.raises(SystemExit, match="--notebooks"):
        demo.main(["--notebooks", "99_missing.ipynb", "--out-dir", str(tmp_path)])


@pytest.mark.parametrize("argv, match", [
    (["--dataset", "real"], "--data-root: dataset 'real' needs"),
    (["--dataset", "real", "--data-root", ""], "--data-root: dataset 'real' needs"),
    (["--data-root", "/no/such/root"], "--data-root: expected a directory"),
    (["--checkpoint", "/no/such/ckpt.pt"], "--checkpoint: expected"),
])
def test_demo_cli_refuses_bad_inputs_before_running(tmp_path, argv, match, monkeypatch):
    monkeypatch.setattr(demo, "run_notebooks", lambda *a, **k: pytest.fail("ran notebooks"))
    with pytest.raises(SystemExit, match=match):
        demo.main([*argv, "--out-dir", str(tmp_path)])


def test_demo_cli_refuses_cuda_without_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(demo, "run_notebooks", lambda *a, **k: pytest.fail("ran notebooks"))
    with pytest.raises(SystemExit, match="--device: 'cuda'"):
        demo.main(["--device", "cuda", "--out-dir", str(tmp_path)])


def test_results_readme_is_built_from_the_study_files(tmp_path):
    """The committed study's files give the README: tables, checks and both transport lines."""
    import shutil
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "results"
    for name in ("references.json", "methods_runs.csv", "noise_runs.csv", "transport_runs.csv",
                 "alignment_accuracy.json"):
        shutil.copy(results / name, tmp_path)
    meta = dict(machine="test box", seconds=12, date="2026-01-01")
    text = demo.write_results_readme(tmp_path, meta).read_text()
    assert "wall time of `make study`: 12 s" in text and "test box" in text
    assert "| norton |" in text and "## Noise sweep" in text
    assert "oracle encoders: dtw " in text and "checkpoint's encoders instead" not in text
    trained = {m: dict(mean=40.0 + i, std=1.0, n=5) for i, m in enumerate(("dtw", "ot", "norton"))}
    (tmp_path / "alignment_accuracy_trained.json").write_text(json.dumps(trained))
    text = demo.write_results_readme(tmp_path, meta).read_text()
    assert ("With the stage-1 checkpoint's encoders instead, same videos and seeds: dtw 40.0 ± "
            "1.0 (n = 5), ot 41.0 ± 1.0 (n = 5), norton 42.0 ± 1.0 (n = 5).") in text
    assert "**holds**: The bucket catches irrelevant captions better than chance" in text
