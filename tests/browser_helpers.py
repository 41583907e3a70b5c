"""Shared pieces of the browser tests: start the app on a free localhost port, launch Debian's
headless Chromium, and tell whether the 3D views (explorer/halo_view.js) have drawn.

Chromium missing is a failure, never a skip.
"""
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--disable-quic"]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium. Install it with "
                    "`apt-get install -y chromium chromium-driver` (the README's test command does this)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_embedded(env: dict) -> Path:
    """Generate the embedded snapshot for `env` first, so browser timings measure the app."""
    made = subprocess.run([sys.executable, "-c", "from deephalo_core import sources; print(sources.ensure_embedded())"],
                          env=env, cwd=REPO, check=True, timeout=600, capture_output=True, text=True)
    return Path(made.stdout.strip().splitlines()[-1])


def bench_snapshot(data: str | None, prefix: str) -> tuple[Path, dict, Path, str]:
    """(fresh data home, server env, snapshot, the link's source parameters) for a browser benchmark.

    The home is fresh, so no prediction is on disk yet. Without `data` the snapshot is the embedded
    synthetic one (150 groups): shared from the usual data home when it is there (it is only read),
    else made in the fresh home first (about a minute)."""
    import tempfile

    from deephalo_core import paths

    home = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ, DEEPHALO_HOME=str(home))
    if data:
        snapshot = Path(data).resolve()
        return home, env, snapshot, f"source=tng&path={snapshot}"
    env["DEEPHALO_EMBEDDED_GROUPS"] = env.get("DEEPHALO_EMBEDDED_GROUPS", "150")
    made = paths.data_home() / f"synthetic-seed{paths.EMBEDDED_SEED}-groups{env['DEEPHALO_EMBEDDED_GROUPS']}"
    if (made / ".complete").exists():
        (home / made.name).symlink_to(made)
    else:
        print("making the embedded snapshot in a fresh data home ...", flush=True)
    return home, env, make_embedded(env), "source=embedded"


@contextmanager
def serve_app(env: dict, log_path: Path, start_timeout_s: float = 60):
    """Run `streamlit run explorer_app.py` on a free localhost port; yield (url, server process)."""
    port = free_port()
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "explorer_app.py", "--server.port", str(port),
         "--server.address", "localhost", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + start_timeout_s
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start:\n{Path(log_path).read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@contextmanager
def launch_chromium():
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def shots_dir(tmp_path) -> Path:
    wanted = os.environ.get("DEEPHALO_E2E_SHOTS")
    out = Path(wanted) if wanted else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


def drawn_fraction(png: bytes) -> float:
    """Share of pixels that differ from the image's dominant (background) colour."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    colours, counts = np.unique(image, axis=0, return_counts=True)
    background = colours[np.argmax(counts)]
    return float(np.mean(np.abs(image - background).sum(axis=1) > 40))


VIEW = "[data-testid='halo-view']"


def view_state(page) -> dict:
    """The 3D view's data attributes (camera, what it drew and when), {} before it exists."""
    view = page.locator(VIEW)
    if view.count() == 0:
        return {}
    return view.first.evaluate("el => Object.assign({}, el.dataset)")


def camera(page) -> dict:
    return json.loads(view_state(page)["camera"])


def panel_shots(page) -> list[bytes]:
    """A PNG of each view: the canvas's own pixels (no titles or legend over them), split into panels."""
    import base64

    from PIL import Image

    view = page.locator(VIEW).first
    n = int(view_state(page)["views"])
    url = view.locator("canvas").evaluate("canvas => canvas.toDataURL('image/png')")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    width = image.width // n
    shots = []
    for i in range(n):
        buffer = io.BytesIO()
        image.crop((i * width + 4, 0, (i + 1) * width - 4, image.height)).save(buffer, format="PNG")
        shots.append(buffer.getvalue())
    return shots


def views_drawn(page, group: int | None = None, previous: str | None = None) -> list[float] | None:
    """Drawn fractions of every view once they show points (of `group`, and a drawing other than
    `previous`, a `view_state(page)["drawnColours"]` taken before); None while they do not yet."""
    state = view_state(page)
    if not state.get("frames") or not state.get("drawnColours"):
        return None
    if group is not None and f"|{group}|" not in state["drawnScene"]:
        return None
    if previous is not None and state["drawnColours"] == previous:
        return None
    box = page.locator(VIEW).first.bounding_box()
    if not box or box["height"] < 50:
        return None
    fractions = [drawn_fraction(shot) for shot in panel_shots(page)]
    return fractions if min(fractions) > 0.002 else None


def poll_until(condition, what, timeout_s: float, poll_s: float = 0.05):
    """The first truthy value of condition(), asked every poll_s seconds; after timeout_s an
    AssertionError saying `what` (a string, or a function giving it then, for the state at the end)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(poll_s)
    raise AssertionError(what() if callable(what) else what)


def wait_views_drawn(page, timeout_s: float, group: int | None = None, previous: str | None = None,
                     poll_s: float = 0.05) -> list[float]:
    """Wait for every view to show drawn points (see `views_drawn`); return their drawn fractions."""
    return poll_until(lambda: views_drawn(page, group, previous),
                      lambda: f"the 3D views were not drawn within {timeout_s:.0f} s (view: {view_state(page)})",
                      timeout_s, poll_s)


def wait_drawn_at(page, timeout_s: float, group: int, after_ms: float) -> dict:
    """Wait until the view drew `group` at or after the epoch time `after_ms`; its state then.
    Reads only data attributes (no screenshots), so it does not slow what it measures."""
    handle = page.locator(VIEW).first.element_handle(timeout=timeout_s * 1000)
    page.wait_for_function(
        """([el, group, after]) => el.isConnected && (el.dataset.drawnScene || "").includes(`|${group}|`)
            && Number(el.dataset.drawnAt) >= after""",
        arg=[handle, group, after_ms], timeout=timeout_s * 1000, polling=25)
    return view_state(page)
