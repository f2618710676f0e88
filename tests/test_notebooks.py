"""The ordered notebooks: built from notebooks/_build.py, thin, parameterised, and executable.

Static checks run on every notebook of the ordered set; the execution test runs the whole set
with papermill in smoke mode into a temporary folder, then ``pytest --nbval-lax`` compares the
deliberate ``# NBVAL_CHECK_OUTPUT`` cells.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nortonkit.reports import NOTEBOOK_ORDER, ordered_notebooks, run_notebooks

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
REQUIRED = ("data_root", "checkpoint", "device", "dataset", "smoke", "seed", "out_dir")
MAX_BLOCK_LINES = 10
REPRODUCE_SUBSET = ("10_data_prep.ipynb", "20_pretrain.ipynb",
                    "30_youcook2_paragraph_retrieval.ipynb", "35_htm_align.ipynb",
                    "50_alignment_explorer.ipynb", "90_report.ipynb")


def _builder():
    spec = importlib.util.spec_from_file_location("nb_build", NB_DIR / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILT = sorted(_builder().build())
ALL = [p.name for p in ordered_notebooks(NB_DIR)]


def _code(cell) -> str:
    """Cell source with IPython magics and shell escapes blanked, so that ast can parse it."""
    return "\n".join("pass" if ln.lstrip().startswith(("%", "!")) else ln
                     for ln in cell.source.splitlines())


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


def test_ordered_set_is_complete():
    assert set(BUILT) <= set(NOTEBOOK_ORDER)
    missing = [n for n in BUILT if n not in ALL]
    assert not missing, f"notebooks not written: {missing} (run python notebooks/_build.py)"


@pytest.mark.parametrize("name", BUILT)
def test_committed_notebook_equals_build_script(name):
    nb = _builder().build()[name]
    assert (NB_DIR / name).read_text() == nbformat.writes(nb) + "\n", (
        f"{name} differs from notebooks/_build.py; run python notebooks/_build.py")


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


@pytest.mark.parametrize("name", BUILT)
def test_own_notebooks_report_environment_and_declare_artifacts(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    assert "artifacts" in nb.cells[1].source
    assert "environment_report(" in nb.cells[2].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"
               and "NBVAL_CHECK_OUTPUT" not in c.source), f"{name}: stray outputs committed"


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
