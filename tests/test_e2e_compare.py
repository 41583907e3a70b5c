"""The Compare page's 3D views in real headless Chromium: linked cameras, the agreement view's
counts on a known case, and a table row highlighting its subhalo.

One server and one page for the module (the machine is small): the page opens the embedded
snapshot's halo with the most subhalos under the all-primary baseline, whose agreement with
Subfind is known exactly (satellites missed, fuzz swapped, the primary right).

Needs Debian's chromium at /usr/bin/chromium; without it this test fails, it is never skipped.
"""
import io
import json
import os

import numpy as np
import pytest

from browser_helpers import (READY, VIEW, camera, launch_chromium, make_embedded, panel_shots, poll_until,
                             require_chromium, serve_app, view_state, wait_views_drawn)

TIMEOUT_S = 240


@pytest.fixture(scope="module")
def compare(tmp_path_factory):
    """(page, group, halo) with Compare drawn for the halo with the most subhalos."""
    from deephalo_core.data import open_simulation

    require_chromium()
    home = tmp_path_factory.mktemp("compare-home")
    env = dict(os.environ, DEEPHALO_HOME=str(home), DEEPHALO_EMBEDDED_GROUPS="8")
    sim = open_simulation(make_embedded(env))
    group = int(sim.halos.loc[sim.halos["n_subhalos"].idxmax(), "group_id"])
    halo = sim.load_halo(group)
    with serve_app(env, home / "server.log") as (url, _server), launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/compare?source=embedded&model=all-primary&halo={group}", wait_until="domcontentloaded")
        wait_views_drawn(page, TIMEOUT_S, group=group)
        page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)
        yield page, group, halo
        assert not errors, errors
        page.close()


def image(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def changed(before: bytes, after: bytes) -> float:
    """Share of pixels that differ between two shots of one view."""
    a, b = image(before), image(after)
    return float(np.mean(np.abs(a - b).sum(axis=-1) > 30))


def wait_for(page, condition, what: str, timeout_s: float = 30) -> dict:
    """The view's state once `condition(state)` holds."""
    def met():
        state = view_state(page)
        return state if condition(state) else None
    return poll_until(met, lambda: f"{what}: not within {timeout_s} s (view: {view_state(page)})", timeout_s)


def panel_centre(page, panel: int) -> tuple[float, float]:
    box = page.locator(VIEW).first.locator("canvas").bounding_box()
    n = int(view_state(page)["views"])
    return box["x"] + box["width"] * (panel + 0.5) / n, box["y"] + box["height"] / 2


def test_rotating_or_zooming_one_view_moves_the_other(compare):
    page, _, _ = compare
    page.locator(VIEW).first.scroll_into_view_if_needed()
    before, camera_before, frames = panel_shots(page), camera(page), int(view_state(page)["frames"])
    x, y = panel_centre(page, 0)
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(x + 15 * step, y + 5 * step)
    page.mouse.up()
    state = wait_for(page, lambda s: int(s["frames"]) > frames and json.loads(s["camera"])["q"] != camera_before["q"],
                     "a drag in the left view did not turn the camera")
    assert state["lastInput"] == "0"  # the drag was in the left view ...
    after = panel_shots(page)
    assert changed(before[0], after[0]) > 0.01
    assert changed(before[1], after[1]) > 0.01  # ... and the right view turned with it

    x, y = panel_centre(page, 1)
    page.mouse.move(x, y)
    page.mouse.wheel(0, 400)
    state = wait_for(page, lambda s: json.loads(s["camera"])["distance"] > 1.15 * camera_before["distance"],
                     "scrolling in the right view did not zoom out")
    assert state["lastInput"] == "1"
    zoomed = panel_shots(page)
    assert changed(after[0], zoomed[0]) > 0.01  # the left view zoomed out too


def test_agreement_view_counts_and_colours_on_a_known_case(compare):
    from deephalo_core.agreement import CLASS_COLOURS, FALSE_MEMBER, MISSED, WRONG_SUBHALO

    page, group, halo = compare
    before = view_state(page)["drawnColours"]
    page.locator("[data-testid='stCheckbox']").filter(has_text="Agreement view").locator("label").click()
    wait_views_drawn(page, TIMEOUT_S, group=group, previous=before)
    page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)
    assert view_state(page)["views"] == "3"
    truth = halo.labels
    expected = {"right": (truth == 0).sum(), "missed": (truth >= 1).sum(), "false member": 0,
                "wrong subhalo": 0, "primary/fuzz swap": (truth == -1).sum()}
    for name, count in expected.items():
        card = page.locator("[data-testid='stMetric']").filter(
            has=page.locator("[data-testid='stMetricLabel']", has_text=name))
        assert card.locator("[data-testid='stMetricValue']").first.inner_text() == f"{int(count):,}", name
    agreement = image(panel_shots(page)[2])

    def pixels(rgb) -> int:
        return int((np.abs(agreement - np.array(rgb)).sum(axis=-1) < 24).sum())

    assert pixels(CLASS_COLOURS[MISSED]) > 50  # every satellite member is missed by all-primary
    assert pixels(CLASS_COLOURS[FALSE_MEMBER]) == 0 and pixels(CLASS_COLOURS[WRONG_SUBHALO]) == 0


def test_a_table_row_highlights_its_subhalo_and_centres_the_camera(compare):
    page, group, halo = compare
    table = page.locator("[data-testid='stDataFrame']").first
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = table.bounding_box()
    row, header_px, row_px = 1, 35, 35  # Subfind's first satellite; the grid's row geometry
    page.mouse.click(box["x"] + 14, box["y"] + header_px + row_px * row + row_px / 2)
    state = wait_for(page, lambda s: s.get("highlight") and json.loads(s["highlight"])["truth"] == 1,
                     "picking the table row did not highlight Subfind's rank 1", timeout_s=TIMEOUT_S)
    centre = np.median(halo.pos[halo.labels == 1] - halo.center, axis=0)
    state = wait_for(page, lambda s: np.allclose(json.loads(s["camera"])["target"], centre, atol=1e-3),
                     "the camera did not centre on the highlighted subhalo")
    assert json.loads(state["highlight"]) == {"truth": 1, "pred": None}
    page.locator(VIEW).first.scroll_into_view_if_needed()
    shot = image(panel_shots(page)[0])
    # in the Subfind view the highlighted satellite is drawn in its own colour at the centre
    from deephalo_core import viz

    colour = np.array(viz.palette(2)[1])
    middle = shot[shot.shape[0] // 3: 2 * shot.shape[0] // 3, shot.shape[1] // 3: 2 * shot.shape[1] // 3]
    assert (np.abs(middle - colour).sum(axis=-1) < 40).mean() > 0.02
