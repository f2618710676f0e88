"""The alignment explorer in a real browser: JupyterLab (Run All Cells) and Voila.

Each test starts its server on 127.0.0.1 with a random token on a free port, in a temporary
HOME, opens the explorer notebook with Playwright driving Debian's Chromium, moves the eps
slider with the keyboard and checks that the plan image changed (its bytes, fetched in the
page). Screenshots go to ``$NORTONKIT_ARTIFACTS`` (default ``reports/screenshots/``, which git
ignores); the path is printed. Servers and their kernels are shut down even when a check fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "50_alignment_explorer.ipynb"
CHROMIUM = Path(os.environ.get("NORTONKIT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
BIN = Path(sys.executable).parent
TIMEOUT_MS = 120_000
IMAGE = "img.nortonkit-plan-image"
EPS_HANDLE = ".nortonkit-eps .noUi-handle"
EPS_READOUT = ".nortonkit-eps .widget-readout"
FETCH_BYTES = """async (img) => {
    const r = await fetch(img.src);
    const b = new Uint8Array(await r.arrayBuffer());
    let s = ''; for (const x of b) s += String.fromCharCode(x);
    return btoa(s);
}"""
SRC_CHANGED = """([sel, old]) => {
    const i = document.querySelector(sel); return i && i.src && i.src !== old; }"""
# JupyterLab: every code cell has an execution count and the kernel is idle, or an error shows.
LAB_DONE = """(n) => {
    const err = document.querySelector(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]');
    if (err) return 'error: ' + err.innerText.slice(0, 2000);
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
    const done = prompts.filter(p => /^\\[\\d+\\]:$/.test(p.innerText.trim())).length;
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return done >= n && ind && ind.getAttribute('data-status') === 'idle' ? 'done' : '';
}"""
STARTED = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .some(p => /^\\[(\\*|\\d+)\\]:$/.test(p.innerText.trim()))"""
KERNEL_IDLE = """() => { const i = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return i && i.getAttribute('data-status') === 'idle'; }"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        msg = (f"BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM}. Install it with "
               "`apt-get install -y chromium` (CI always does) or set NORTONKIT_CHROMIUM.")
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture(scope="module")
def artifacts() -> Path:
    out = Path(os.environ.get("NORTONKIT_ARTIFACTS", ROOT / "reports")) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*_failure.png"):
        stale.unlink()
    return out


@pytest.fixture
def sandbox(tmp_path) -> tuple[Path, dict[str, str]]:
    """A folder with a smoke-mode copy of the notebook, and an environment with a private HOME."""
    home = tmp_path / "home"
    cfg = home / "jupyter-config"
    (cfg / "labconfig").mkdir(parents=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(cfg),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               MPLCONFIGDIR=str(home / "mpl"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("smoke = True  # injected by the test"))
    nbformat.write(nb, root / NOTEBOOK.name)
    return root, env


def _n_code_cells(root: Path) -> int:
    return sum(c.cell_type == "code" for c in nbformat.read(root / NOTEBOOK.name, 4).cells)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@contextlib.contextmanager
def _serve(cmd: list[str], port: int, cwd: Path, env: dict[str, str], log: Path,
           ready_path: str | None = None) -> Iterator[str]:
    """Run a server until it answers (``ready_path`` over HTTP, else a TCP connect); always
    stop it and its kernels."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n"
                                   f"{log.read_text()[-3000:]}")
            try:
                if ready_path is None:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                else:
                    urllib.request.urlopen(base + ready_path, timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[0]} not ready after 90 s:\n"
                                       f"{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield base
    except BaseException:
        print(f"--- {log} (last lines) ---\n{log.read_text()[-3000:]}")
        raise
    finally:
        family = _descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for pid in family:  # kernels live in their own sessions: stop any left over
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _page(chromium: Path, failure_shot: Path) -> Iterator[Page]:
    """A Chromium page; on failure a screenshot is saved to ``failure_shot`` first."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            try:
                yield page
            except BaseException:
                with contextlib.suppress(Exception):
                    page.screenshot(path=failure_shot, full_page=True)
                    print(f"failure screenshot: {failure_shot}")
                raise
        finally:
            browser.close()


def _move_eps_and_check_image(page: Page, artifacts: Path, prefix: str, key: str,
                              settle=None) -> None:
    if settle is not None:
        settle()
    image = page.locator(IMAGE).first
    image.wait_for(state="visible")
    image.scroll_into_view_if_needed()
    src, png = image.get_attribute("src"), image.evaluate(FETCH_BYTES)
    readout = page.locator(EPS_READOUT).first.inner_text()
    page.screenshot(path=artifacts / f"{prefix}_before.png", full_page=True)
    handle = page.locator(EPS_HANDLE).first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(4):
        page.keyboard.press(key)
    page.wait_for_function(SRC_CHANGED, arg=[IMAGE, src])
    if settle is not None:
        settle()
    assert page.locator(EPS_READOUT).first.inner_text() != readout
    assert image.evaluate(FETCH_BYTES) != png, "the plan image did not change"
    image.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"{prefix}_after.png", full_page=True)


def _run_all_cells(page: Page, attempts: int = 3) -> None:
    """Run > Run All Cells on the active notebook; retried until a cell starts running."""
    for _ in range(attempts):
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()  # make the notebook current
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        with contextlib.suppress(Exception):
            page.wait_for_function(STARTED, timeout=20_000)
            return
    raise AssertionError(f"Run All Cells did not start any cell after {attempts} attempts")


def test_explorer_in_jupyterlab(chromium, sandbox, artifacts, tmp_path, capsys):
    root, env = sandbox
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(BIN / "jupyter-lab"), "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0"]
    with _serve(cmd, port, root, env, tmp_path / "lab.log", f"/api/status?token={token}") as url, \
            _page(chromium, artifacts / "jupyterlab_failure.png") as page:
        page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
        page.wait_for_function(KERNEL_IDLE)
        _run_all_cells(page)
        n = _n_code_cells(root)

        def settle() -> None:
            state = page.wait_for_function(LAB_DONE, arg=n).json_value()
            assert state == "done", f"the notebook failed in JupyterLab: {state}"

        _move_eps_and_check_image(page, artifacts, "jupyterlab", "ArrowRight", settle)
        assert "Norton accuracy" in page.locator(".nortonkit-agreement").first.inner_text()
    assert (root.parent / "reports" / "alignment_explorer.png").is_file()  # out_dir ../reports
    with capsys.disabled():
        print(f"\nbrowser screenshots (JupyterLab): {artifacts}/jupyterlab_*.png")


def test_explorer_in_voila(chromium, sandbox, artifacts, tmp_path, capsys):
    root, env = sandbox
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(BIN / "voila"), NOTEBOOK.name, "--no-browser", "--Voila.ip=127.0.0.1",
           f"--port={port}", f"--token={token}", "--show_tracebacks=True"]
    with _serve(cmd, port, root, env, tmp_path / "voila.log") as url, \
            _page(chromium, artifacts / "voila_failure.png") as page:
        page.goto(f"{url}/?token={token}", wait_until="commit")
        _move_eps_and_check_image(page, artifacts, "voila", "ArrowLeft")
        assert "Norton accuracy" in page.locator(".nortonkit-agreement").first.inner_text()
        assert not page.locator("text=Traceback").count(), "the notebook raised in Voila"
    with capsys.disabled():
        print(f"\nbrowser screenshots (Voila): {artifacts}/voila_*.png")

