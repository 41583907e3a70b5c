"""Shared pieces of the browser tests: start the app on a free localhost port, launch Debian's
headless Chromium, and tell whether the two stpyvista views have drawn.

Chromium missing is a failure, never a skip.
"""
import io
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


def scene_sizes(page) -> list[int]:
    frames = page.locator("iframe#stpyvistaframe")
    return [frames.nth(i).evaluate("el => el.srcdoc.length") for i in range(frames.count())]


def views_drawn(page, previous: list[int] | None = None) -> list[float] | None:
    """Drawn fractions of both stpyvista iframes once both show points (new scenes, when
    `previous` scene sizes are given); None while they do not yet."""
    frames = page.locator("iframe#stpyvistaframe")
    if frames.count() != 2 or (previous is not None and not all(
            a != b for a, b in zip(scene_sizes(page), previous))):
        return None
    fractions = []
    for i in range(2):
        if frames.nth(i).content_frame.locator("canvas").count() == 0:
            return None
        box = frames.nth(i).bounding_box()
        if not box or box["height"] < 50:
            return None
        fractions.append(drawn_fraction(frames.nth(i).screenshot()))
    return fractions if min(fractions) > 0.002 else None


def wait_views_drawn(page, timeout_s: float, previous: list[int] | None = None) -> list[float]:
    """Wait for both stpyvista iframes to show drawn points (new scenes, when `previous` scene
    sizes are given); return their drawn fractions."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fractions = views_drawn(page, previous)
        if fractions is not None:
            return fractions
        time.sleep(0.25)
    raise AssertionError(f"the two 3D views were not drawn within {timeout_s:.0f} s "
                         f"(iframes: {page.locator('iframe#stpyvistaframe').count()})")
