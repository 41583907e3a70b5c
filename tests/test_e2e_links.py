"""Every page opens from a pasted link, with the link's choices, on a fresh server and in a fresh
browser, in real headless Chromium.

Each case starts its own server (a fresh server first runs a `pages/` folder in Streamlit's legacy
mode until st.navigation runs) and opens the link twice, each time in a new browser context: the
server's first visitor, then the next one (the case that used to show "Page not found" for
/halos). Checked: no "Page not found", the page's title, the address keeps the page and its
parameters, and the halo and model of the link are the ones in use.

Needs Debian's chromium at /usr/bin/chromium; without it this test fails, it is never skipped.
"""
import os
import re

import pytest

from browser_helpers import READY, launch_chromium, require_chromium, serve_app

TIMEOUT_MS = 240_000
MODEL, MODEL_LABEL = "all-primary", "Baseline: all-primary"
# link path -> (the page it opens, its title)
LINKS = {"halos": ("halos", "Halos"), "compare": ("compare", "Compare"), "train": ("train", "Train"),
         "evaluate": ("evaluate", "Evaluate"), "": ("halos", "Halos")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(environment, the link's query, a halo that is not the default choice, its particle count).

    The link names the shipped real sample (the default source) at its first output, not the
    last one the sidebar would pick by itself, and a halo other than the largest."""
    from deephalo_core import sources

    require_chromium()
    env = dict(os.environ, DEEPHALO_HOME=str(tmp_path_factory.mktemp("links-home")))
    snap = sources.list_outputs(sources.SAMPLE)[0].snap
    halos = sources.open_source(sources.SAMPLE, snap=snap).halos.sort_values("n_particles")
    chosen = halos.iloc[-3]  # big enough to have subhalos, not the largest (the app's own pick)
    query = {"source": sources.SAMPLE, "snap": str(snap), "model": MODEL, "halo": str(int(chosen.group_id))}
    return env, query, int(chosen.group_id), int(chosen.n_particles)


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


def shown_choice(box) -> str:
    """What a Streamlit selectbox shows (its text, or its combobox input's value)."""
    inputs = box.locator("input")
    return box.inner_text() + " " + (inputs.first.input_value() if inputs.count() else "")


def check_page(page, opens: str, title: str, query: dict, group: int, n_particles: int) -> None:
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=TIMEOUT_MS)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # a "Page not found" dialog would be up by now
    body = page.locator("body").inner_text()
    assert "Page not found" not in body, body[:2000]
    assert re.search(rf"/{opens}\?", page.url), page.url
    for name, value in query.items():
        assert f"{name}={value}" in page.url, (name, value, page.url)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert f"Selected halo: group {group}" in sidebar.inner_text()
    assert MODEL_LABEL in shown_choice(sidebar.locator("[data-testid='stSelectbox']").last)
    assert f"snap {int(query['snap']):03d} (" in shown_choice(sidebar.locator("[data-testid='stSelectbox']").first)
    if opens == "halos":
        page.get_by_text(f"Selected group {group}: {n_particles:,} particles").wait_for(timeout=TIMEOUT_MS)
    elif opens == "compare":
        page.get_by_text(f"{MODEL_LABEL} segmented {n_particles:,} particles").wait_for(timeout=TIMEOUT_MS)
        box = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first
        assert f"group {group} (" in shown_choice(box)
    elif opens == "evaluate":
        assert MODEL_LABEL in page.locator("[data-testid='stMultiSelect']").first.inner_text()


@pytest.mark.parametrize("path", list(LINKS), ids=[p or "root" for p in LINKS])
def test_a_pasted_link_opens_its_page(data, browser, tmp_path, path):
    env, query, group, n_particles = data
    opens, title = LINKS[path]
    with serve_app(env, tmp_path / "server.log") as (url, _server):
        for visitor in ("first visitor of a fresh server", "next visitor"):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/{path}?" + "&".join(f"{k}={v}" for k, v in query.items()),
                      wait_until="domcontentloaded")
            try:
                check_page(page, opens, title, query, group, n_particles)
            except AssertionError as err:
                raise AssertionError(f"/{path}, {visitor}: {err}") from err
            assert not errors, (visitor, errors)
            context.close()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[log.index("Traceback"):][:3000]
