"""End to end in real headless Chromium: the app serves, Compare draws both 3D views with metrics,
and a one-epoch training run launched from the Train page finishes.

Needs Debian's chromium at /usr/bin/chromium (the README's test command installs it). Without it
this test fails, loudly: it is never skipped.

Set DEEPHALO_E2E_SHOTS=DIR to keep the screenshots, DEEPHALO_E2E_GROUPS=N for a bigger snapshot,
DEEPHALO_E2E_MODEL=SPEC for another model on Compare (default hdbscan); the time from selecting the
largest halo to both views drawn is printed.
"""
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from browser_helpers import (drawn_fraction, launch_chromium, make_embedded, require_chromium, READY,
                             serve_app, shots_dir, wait_views_drawn)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    require_chromium()
    home = tmp_path_factory.mktemp("e2e-home")
    env = dict(os.environ, DEEPHALO_HOME=str(home),
               DEEPHALO_EMBEDDED_GROUPS=os.environ.get("DEEPHALO_E2E_GROUPS", "8"))
    snapshot = make_embedded(env)
    with serve_app(env, home / "server.log") as (url, _server):
        yield url, home, snapshot


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


def test_compare_draws_both_views_and_training_runs(app_url, browser, tmp_path):
    from deephalo_core.data import open_simulation

    url, home, snapshot = app_url
    model = os.environ.get("DEEPHALO_E2E_MODEL", "hdbscan")
    halos = open_simulation(snapshot).halos.sort_values("n_particles")
    small, largest = halos.iloc[len(halos) // 2], halos.iloc[-1]
    out = shots_dir(tmp_path)
    page = browser.new_page(viewport={"width": 1600, "height": 2200})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # A shared link straight to Compare on a fresh server: the sidebar's choices come from the URL.
    page.goto(f"{url}/compare?source=embedded&model={model}&halo={int(small.group_id)}",
              wait_until="domcontentloaded")
    wait_views_drawn(page, timeout_s=240, group=int(small.group_id))
    page.get_by_text(f"segmented {int(small.n_particles):,} particles").wait_for(timeout=60_000)
    page.wait_for_selector(READY, timeout=60_000)

    # Select the largest halo and time it until both views show it.
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    started = time.monotonic()
    page.get_by_role("option", name=f"group {int(largest.group_id)} ({int(largest.n_particles):,} particles)").click()
    page.get_by_text(f"segmented {int(largest.n_particles):,} particles").wait_for(timeout=240_000)
    fractions = wait_views_drawn(page, timeout_s=240, group=int(largest.group_id))
    elapsed = time.monotonic() - started
    print(f"\n[e2e] halo selection to both views drawn: largest halo, group {int(largest.group_id)}, "
          f"{int(largest.n_particles):,} particles, {model}, {len(halos)} groups: {elapsed:.1f} s; "
          f"drawn fractions {[round(f, 3) for f in fractions]}")
    page.get_by_text("This halo, subhalo by subhalo").wait_for(timeout=60_000)
    metrics = page.locator("[data-testid='stMetric']")
    labels = " ".join(metrics.all_inner_texts())
    assert "ARI" in labels and "PQ" in labels and "Subhalos found / expected" in labels
    assert re.search(r"\d+ / \d+", labels)
    page.wait_for_selector(READY, timeout=60_000)
    time.sleep(1.0)  # let vtk.js finish its first frame before the screenshot
    page.screenshot(path=str(out / "compare.png"), full_page=True)
    assert f"halo={int(largest.group_id)}" in page.url and f"model={model}" in page.url  # shareable
    # downloads: a PNG of a view (rendered off-screen on the server) and the predicted labels
    with page.expect_download(timeout=120_000) as png:
        page.get_by_role("button", name="PNG of this view").first.click()
    png_bytes = Path(png.value.path()).read_bytes()
    assert png_bytes[:8] == b"\x89PNG\r\n\x1a\n" and drawn_fraction(png_bytes) > 0.01
    with page.expect_download(timeout=60_000) as csv:
        page.get_by_role("button", name="Predicted labels (CSV)").click()
    rows = Path(csv.value.path()).read_text().splitlines()
    assert rows[0].startswith("particle_id,") and len(rows) == int(largest.n_particles) + 1

    # The Halos page lists the snapshot.
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(READY, timeout=120_000)
    page.get_by_text("Halo mass function").wait_for(timeout=60_000)
    page.screenshot(path=str(out / "halos.png"), full_page=True)

    # Train: one epoch from the form, run in the background, watched until it finishes.
    page.goto(f"{url}/train", wait_until="domcontentloaded")
    page.wait_for_selector(READY, timeout=60_000)
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Points cap per halo").fill("2000")
    page.get_by_role("button", name="Launch").click()
    page.get_by_text(re.compile(r"Started run")).wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^Run .*: (finished|failed|stopped)$")).first.wait_for(timeout=420_000)
    page.wait_for_selector(READY, timeout=60_000)  # the whole page reruns once the run ends
    time.sleep(1.0)
    page.screenshot(path=str(out / "train.png"), full_page=True)
    heading = page.get_by_text(re.compile(r"^Run .*: (finished|failed|stopped)$")).first.inner_text()
    run_dirs = [p for p in (home / "runs").iterdir() if p.is_dir()]
    assert heading.endswith("finished"), f"{heading}\n{(run_dirs[0] / 'train.log').read_text()[-3000:]}"
    assert len(run_dirs) == 1 and (run_dirs[0] / "best.pt").exists()
    # the finished run's checkpoint is now a model the sidebar offers
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").last.click()  # the model picker
    page.get_by_role("option", name=re.compile(f"Run {run_dirs[0].name}")).wait_for(timeout=30_000)
    page.keyboard.press("Escape")
    assert not errors, errors
    page.close()
    if not os.environ.get("DEEPHALO_E2E_SHOTS"):
        shutil.rmtree(out, ignore_errors=True)
