"""Project-level checks: dependency lists agree, the layer contracts hold, config globs match."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = _pyproject()["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, (
        f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    )
    assert "python=3.11" in env["dependencies"]


def test_pytest_testpaths_match_files():
    for path in _pyproject()["tool"]["pytest"]["ini_options"]["testpaths"]:
        assert list((ROOT / path).rglob("*.py")), f"testpaths entry {path!r} matches no file"


# The layers are import-linter contracts in pyproject.toml, run by `make lint`; these tests keep
# them complete (every module is library or lab) and run them.
def _contracts() -> list[dict]:
    return _pyproject()["tool"]["importlinter"]["contracts"]


def _modules() -> set[str]:
    """Every module of the package, and every subpackage (``nortonkit.train``, ...)."""
    names = set()
    for path in (ROOT / "nortonkit").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names - {"nortonkit"}


def _covered(module: str, listed: set[str]) -> bool:
    """True when ``module`` or a package above it is listed (contracts cover subpackages)."""
    return any(module == name or module.startswith(name + ".") for name in listed)


def test_every_module_is_library_or_lab():
    library_rule = next(c for c in _contracts() if c["name"].startswith("The library never"))
    library, lab = set(library_rule["source_modules"]), set(library_rule["forbidden_modules"])
    both = {m for m in _modules() if _covered(m, library) and _covered(m, lab)}
    assert not both, f"both library and lab: {sorted(both)}"
    unplaced = {m for m in _modules() if not _covered(m, library) and not _covered(m, lab)}
    assert not unplaced, f"add to the library or the lab list of pyproject.toml: {sorted(unplaced)}"
    stale = (library | lab) - _modules()
    assert not stale, f"contracts name modules that do not exist: {sorted(stale)}"


def test_layer_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"{len(_contracts())} kept, 0 broken" in out.stdout


def test_import_nortonkit_is_light():
    heavy = "('matplotlib', 'pandas', 'transformers', 'ipywidgets')"
    code = f"import sys, nortonkit; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_but_viz_and_widgets_is_kept_from_drawing():
    rule = next(c for c in _contracts() if c["name"] == "Only viz and widgets draw")
    drawing = {"nortonkit.lab.viz", "nortonkit.lab.widgets"}
    unchecked = {m for m in _modules() - drawing - {"nortonkit.lab"}
                 if not _covered(m, set(rule["source_modules"]))}
    assert not unchecked, f"add to the 'Only viz and widgets draw' contract: {sorted(unchecked)}"
