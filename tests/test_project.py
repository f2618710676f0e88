"""Project-level checks: dependency lists agree, layers import downwards, config globs match."""

from __future__ import annotations

import ast
import re
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


# Lower layers never import higher ones (HOUSE_STYLE R2).
LAYERS = {
    "validation": 0, "masking": 0, "io": 0,
    "sinkhorn": 1, "similarity": 1, "alignment": 1, "compat": 1, "metrics": 1,
    "losses": 2,
    "encoders": 3, "checkpoint": 3, "s3d": 3, "data": 3,
    "config": 4, "presets": 4, "retrieval": 4, "distributed": 4,
    "train": 5, "evaluate": 5, "evaluate_tasks": 5, "evaluate_finetune": 5,
    "robustness": 5, "reports": 5, "explore": 5, "convert": 5, "paper": 5,
    "alignment_metrics": 1, "baselines": 4, "study": 5, "transport_study": 5,
    "viz": 6, "widgets": 7, "demo": 8, "utils": 0,
}
PLOTTING = {"matplotlib", "seaborn", "ipywidgets", "IPython"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the nortonkit package
                base = "nortonkit" if path.parent.name == "nortonkit" else "nortonkit.data"
                if node.level == 2:
                    base = "nortonkit"
                mod = f"{base}.{node.module}" if node.module else base
                out |= {mod} if node.module else {f"{base}.{a.name}" for a in node.names}
            elif node.module:
                out.add(node.module)
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "nortonkit" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def test_layering():
    files = [p for p in (ROOT / "nortonkit").rglob("*.py")]
    assert files
    for path in files:
        rel = path.relative_to(ROOT / "nortonkit")
        own = LAYERS.get(rel.parts[0].removesuffix(".py"))
        if own is None:
            continue
        for mod in _imports(path):
            other = _layer(mod)
            assert other is None or other <= own, (
                f"{rel} (layer {own}) imports {mod} (layer {other})"
            )
            if own < LAYERS["viz"]:
                assert mod.split(".")[0] not in PLOTTING, f"{rel} imports plotting module {mod}"


def test_import_nortonkit_is_light():
    import subprocess
    import sys

    heavy = "('matplotlib', 'pandas', 'transformers', 'ipywidgets')"
    code = f"import sys, nortonkit; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
