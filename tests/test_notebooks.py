"""The ordered notebooks: percent scripts paired with their .ipynb, thin, parameterised, executable.

Each ``notebooks/NN_name.py`` (jupytext percent format, ``notebooks/jupytext.toml``) is the source
of ``NN_name.ipynb``, which keeps the expected outputs of the ``# NBVAL_CHECK_OUTPUT`` cells.
Static checks run on every notebook of the ordered set; the execution test runs the whole set
with papermill in smoke mode into a temporary folder, then ``pytest --nbval-lax`` compares the
deliberate ``# NBVAL_CHECK_OUTPUT`` cells.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

from nortonkit.lab.reports import NOTEBOOK_ORDER, ordered_notebooks, run_notebooks

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
REQUIRED = ("data_root", "checkpoint", "device", "dataset", "smoke", "seed", "out_dir")
MAX_BLOCK_LINES = 10
REPRODUCE_SUBSET = ("10_data_prep.ipynb", "20_pretrain.ipynb",
                    "30_youcook2_paragraph_retrieval.ipynb", "35_htm_align.ipynb",
                    "50_alignment_explorer.ipynb", "90_report.ipynb")
SYNC = "run .venv/bin/jupytext --sync notebooks/{} after editing it"

ALL = [p.name for p in ordered_notebooks(NB_DIR)]
SCRIPTS = sorted(p.name for p in NB_DIR.glob("[0-9]*.py"))


def _code(cell) -> str:
    """Cell source with IPython magics and shell escapes blanked, so that ast can parse it."""
    return "\n".join("pass" if ln.lstrip().startswith(("%", "!")) else ln
                     for ln in cell.source.splitlines())


def _cells(path: Path) -> list[tuple]:
    """(type, source, metadata) of each cell, as the percent script of ``path`` holds them."""
    text = jupytext.writes(jupytext.read(path), "py:percent")
    return [(c.cell_type, c.source, dict(c.metadata))
            for c in jupytext.reads(text, "py:percent").cells]


def _lint_pair_check(folder: Path) -> subprocess.CompletedProcess:
    """The pairing check of ``make lint`` (``NOTEBOOK_PAIRS`` in the Makefile) on ``folder``."""
    script = re.search(r"^define NOTEBOOK_PAIRS\n(.*?)^endef$", (ROOT / "Makefile").read_text(),
                       re.S | re.M).group(1)
    return subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True,
                          text=True, timeout=120)


def block_violations(source: str, limit: int = MAX_BLOCK_LINES) -> list[str]:
    """def/class/for/while blocks of a cell longer than ``limit`` lines."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For,
                             ast.AsyncFor, ast.While)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                out.append(f"{type(node).__name__} at line {node.lineno}: {n} lines")
    return out


def test_ordered_set_is_complete_and_paired():
    assert ALL == list(NOTEBOOK_ORDER)
    assert sorted(p.name for p in NB_DIR.glob("*.ipynb")) == sorted(ALL)
    assert SCRIPTS == sorted(n.removesuffix(".ipynb") + ".py" for n in ALL)
    assert sorted(p.name for p in NB_DIR.glob("*.py")) == SCRIPTS
    config = (NB_DIR / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("name", ALL)
def test_script_and_notebook_hold_the_same_cells(name):
    script = NB_DIR / name.replace(".ipynb", ".py")
    assert script.read_text().startswith("# %% [markdown]\n"), f"{script.name}: not percent"
    ours, theirs = _cells(script), _cells(NB_DIR / name)
    assert len(ours) == len(theirs), f"{name}: cell count differs; " + SYNC.format(script.name)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"{name}, cell {i} differs from {script.name}; " + SYNC.format(script.name)


def test_pair_checks_fail_on_a_mismatch(tmp_path):
    assert _lint_pair_check(NB_DIR).returncode == 0
    for suffix in (".py", ".ipynb"):
        shutil.copy(NB_DIR / f"00_quickstart{suffix}", tmp_path)
    script, notebook = tmp_path / "00_quickstart.py", tmp_path / "00_quickstart.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
    nbformat.write(nb, notebook)  # outputs live in the .ipynb only: still paired
    assert _lint_pair_check(tmp_path).returncode == 0 and _cells(script) == _cells(notebook)
    text = script.read_text()
    for edited in (text.replace("n_steps=5", "n_steps=6"),                # a source
                   text.replace('# %% tags=["parameters"]', "# %%"),      # a tag
                   text + "\n# %%\nprint(1)\n"):                         # a new cell
        assert edited != text
        script.write_text(edited)
        res = _lint_pair_check(tmp_path)
        assert res.returncode == 1 and "00_quickstart" in res.stderr, res.stderr
        assert _cells(script) != _cells(notebook)
    script.unlink()  # a notebook without its script
    assert "00_quickstart" in _lint_pair_check(tmp_path).stderr


def test_block_checker_catches_long_loops_and_defs():
    long_loop = "for x in range(3):\n" + "    y = x\n" * 11
    long_def = "def f():\n" + "    y = 1\n" * 10 + "    return y\n"
    assert block_violations(long_loop) and block_violations(long_def)
    assert not block_violations("for x in range(3):\n    print(x)\n")


@pytest.mark.parametrize("name", ALL)
def test_notebook_structure(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3" and "language_info" in nb.metadata
    head = nb.cells[0]
    assert head.cell_type == "markdown" and head.source.startswith("# "), name
    assert "inputs" in head.source.lower() and "outputs" in head.source.lower(), name
    params = nb.cells[1]
    assert params.cell_type == "code" and "parameters" in params.metadata.get("tags", []), name
    assigned = {t.id: n.value for n in ast.parse(params.source).body
                if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    missing = [p for p in REQUIRED if p not in assigned]
    assert not missing, f"{name}: parameters cell lacks {missing}"
    assert ast.literal_eval(assigned["dataset"]) == "synthetic"
    codes = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(codes):
        bad = block_violations(_code(cell))
        assert not bad, f"{name}, code cell {i}: {bad} (move it into nortonkit/)"
        assert "pip install" not in cell.source, f"{name}, code cell {i}: pip install"
    assert "assert " in codes[-1].source, f"{name}: the last cell must assert something"


@pytest.mark.parametrize("name", ALL)
def test_notebooks_report_environment_and_declare_artifacts(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    assert "artifacts" in nb.cells[1].source
    assert "environment_report(" in nb.cells[2].source
    codes = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") for c in codes if "NBVAL_CHECK_OUTPUT" not in c.source), (
        f"{name}: stray outputs committed")
    checked = [c for c in codes if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert all(c.get("outputs") for c in checked), f"{name}: an expected output was lost"


def _env(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home), "MPLBACKEND": "Agg",
            "IPYTHONDIR": str(home / "ipython"), "MPLCONFIGDIR": str(home / "mpl")}


@pytest.mark.slow
def test_every_notebook_runs_in_smoke_mode_and_nbval_checks_pass(tmp_path, monkeypatch):
    env = _env(tmp_path)
    for key in ("HOME", "MPLBACKEND", "IPYTHONDIR", "MPLCONFIGDIR"):
        monkeypatch.setenv(key, env[key])
    out, art = tmp_path / "reports", tmp_path / "artifacts"
    t0 = time.perf_counter()
    runs = run_notebooks(ordered_notebooks(NB_DIR), out_dir=out, artifacts=art, smoke=True,
                         progress=False)
    seconds = time.perf_counter() - t0
    assert [r.name for r in runs] == ALL and all(r.ok for r in runs)
    assert seconds < 600, f"smoke run of the notebooks took {seconds:.0f} s"
    text = (out / "tables.md").read_text()
    assert text.startswith("# ") and "## T1" in text and "## T9" in text
    assert (out / "figures" / "quickstart_plan.png").is_file()
    assert (art / "runs" / "pretrain-smoke" / "checkpoint_last").is_dir()
    executed = [out / "notebooks" / n for n in ("00_quickstart.ipynb", "10_data_prep.ipynb")]
    committed = tmp_path / "committed" / "00_quickstart.ipynb"  # its ../reports stays in tmp
    committed.parent.mkdir()
    committed.write_text((NB_DIR / "00_quickstart.ipynb").read_text())
    (tmp_path / "nbval.ini").write_text("[pytest]\n")
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
           "-c", str(tmp_path / "nbval.ini"), "--rootdir", str(tmp_path),
           str(committed), *map(str, executed)]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]

    # `make reproduce`: the same notebooks, by papermill parameters alone, on a data root that
    # is only read and a named checkpoint (here the smoke corpus and run stand in for both)
    real = dict(dataset="real", data_root=str(art / "synthetic-smoke"),
                checkpoint=str(art / "runs" / "pretrain-smoke" / "checkpoint_last"))
    subset = [NB_DIR / n for n in REPRODUCE_SUBSET]
    runs = run_notebooks(subset, out_dir=tmp_path / "reports-real", parameters=real,
                         artifacts=tmp_path / "artifacts-real", smoke=True, progress=False)
    assert all(r.ok for r in runs), [r.error for r in runs if not r.ok]
    assert not (tmp_path / "artifacts-real" / "runs").exists()  # nothing trained
    assert "## T9" in (tmp_path / "reports-real" / "tables.md").read_text()
