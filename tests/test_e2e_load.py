"""Five browser sessions on one app server at once, while a training run is going.

Each session opens Compare on its own halo (from the URL) and picks its own colour mode (from the
UI), then visits Halos and comes back. Checked: no exception, traceback or error box on any page;
both 3D views draw in every session; every session keeps its own halo and colour mode after the
others chose theirs; all five download a PNG rendered on the server at the same moment; a sixth
browser opening the first session's link gets the prediction from the shared cache; the server's
memory grows far less than five-fold from one session to five, so the imported stack, snapshot,
halos and model are held once per server rather than once per session.

Needs Debian's chromium at /usr/bin/chromium; without it this test fails, it is never skipped.
DEEPHALO_LOAD_MODEL=SPEC picks the model (default: the shipped default model).
"""
import os
import time
from pathlib import Path

import pytest

from browser_helpers import (READY, drawn_fraction, launch_chromium, make_embedded, require_chromium, serve_app,
                             view_state, wait_views_drawn)

SESSIONS = 5
COLOUR_MODES = ["label", "potential", "speed", "potential", "speed"]
# Growth of the server's memory from one session to five, as a multiple of the first session's
# growth. Sessions that each held their own snapshot, halos and model would come near 5x; shared
# caches leave only per-session state (widgets, the scenes sent to the browser) to add up.
MAX_GROWTH_RATIO = 3.0
PAGE_TIMEOUT_S = 240


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/PID/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS line in /proc/{pid}/status")


def problems(page, page_errors: list[str]) -> list[str]:
    """Everything on the page that says something went wrong."""
    found = [f"page error: {e}" for e in page_errors]
    for testid in ("stException", "stAlertContentError"):
        boxes = page.locator(f"[data-testid='{testid}']")
        found += [f"{testid}: {text[:500]}" for text in boxes.all_inner_texts()]
    body = page.locator("[data-testid='stApp']").inner_text()
    if "Traceback" in body:
        found.append(f"traceback in the page: {body[body.index('Traceback'):][:800]}")
    return found


class Session:
    """One browser context (its own cookies and websocket, so its own Streamlit session)."""

    def __init__(self, browser, url: str, group_id: int, n_particles: int, colour: str, model: str):
        self.group_id, self.n_particles, self.colour, self.model = group_id, n_particles, colour, model
        self.context = browser.new_context(viewport={"width": 1400, "height": 1600})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.downloads = []
        self.page.on("download", lambda download: self.downloads.append(download))
        self.url = url

    def open_compare(self) -> None:  # returns once the request is sent: the sessions overlap
        self.page.goto(f"{self.url}/compare?source=embedded&model={self.model}&halo={self.group_id}",
                       wait_until="commit")

    def wait_compare(self, previous: str | None = None) -> None:
        self.page.get_by_text(f"segmented {self.n_particles:,} particles").wait_for(timeout=PAGE_TIMEOUT_S * 1000)
        wait_views_drawn(self.page, timeout_s=PAGE_TIMEOUT_S, group=self.group_id, previous=previous)
        self.page.wait_for_selector(READY, timeout=PAGE_TIMEOUT_S * 1000)

    def colour_radio(self):
        return self.page.locator("[data-testid='stRadio']").filter(has_text="Colour by")

    def choose_colour(self) -> str | None:
        """Click this session's colour mode; what the view drew before, to wait for the new colours."""
        if self.colour == "label":
            return None
        before = view_state(self.page)["drawnColours"]
        self.colour_radio().get_by_text(self.colour, exact=True).click()
        return before

    def go_to(self, title: str) -> None:
        self.page.locator("[data-testid='stSidebarNavLink']").filter(has_text=title).click()

    def wait_halos(self) -> None:
        self.page.get_by_text("Halo mass function").wait_for(timeout=PAGE_TIMEOUT_S * 1000)
        self.page.get_by_text(f"Selected group {self.group_id}: {self.n_particles:,} particles").wait_for(
            timeout=PAGE_TIMEOUT_S * 1000)
        self.page.wait_for_selector(READY, timeout=PAGE_TIMEOUT_S * 1000)

    def check_own_choices(self) -> None:
        """On Compare: the halo and colour mode are still this session's own."""
        box = self.page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first
        inputs = box.locator("input")  # the chosen option is the combobox input's value
        halo_box = box.inner_text() + " " + (inputs.first.input_value() if inputs.count() else "")
        assert f"group {self.group_id} (" in halo_box, \
            f"session on group {self.group_id} now shows {halo_box!r}"
        sidebar = self.page.locator("[data-testid='stSidebar']").inner_text()
        assert f"Selected halo: group {self.group_id}" in sidebar, sidebar
        assert f"halo={self.group_id}" in self.page.url, self.page.url
        checked = self.colour_radio().get_by_role("radio", name=self.colour, exact=True)
        assert checked.is_checked(), f"session on group {self.group_id} lost its colour mode {self.colour}"

    def assert_clean(self, where: str) -> None:
        found = problems(self.page, self.errors)
        assert not found, f"session on group {self.group_id}, {where}:\n" + "\n".join(found)


def download_pngs_at_once(sessions: list[Session], timeout_s: float = PAGE_TIMEOUT_S) -> list[bytes]:
    """Every session asks for the PNG of its prediction view at the same time (off-screen renders
    on the server, side by side); the PNG bytes each session got."""
    for s in sessions:
        s.downloads.clear()
        s.page.get_by_role("button", name="PNG of this view").last.click()
    deadline = time.monotonic() + timeout_s
    while not all(s.downloads for s in sessions):
        assert time.monotonic() < deadline, (
            f"PNG downloads did not arrive within {timeout_s:.0f} s: "
            f"{[len(s.downloads) for s in sessions]} per session")
        sessions[0].page.wait_for_timeout(200)  # lets Playwright deliver the download events
    return [Path(s.downloads[0].path()).read_bytes() for s in sessions]


def visit_all(sessions: list[Session]) -> None:
    """Compare with own colour mode, then Halos, then Compare again; each step started in every
    session before any is waited for, so the server runs them side by side."""
    for s in sessions:
        s.open_compare()
    for s in sessions:
        s.wait_compare()
        s.assert_clean("Compare, first draw")
    befores = [s.choose_colour() for s in sessions]
    for s, before in zip(sessions, befores):
        if before is not None:
            s.wait_compare(previous=before)
        s.assert_clean(f"Compare, coloured by {s.colour}")
    for s in sessions:
        s.go_to("Halos")
    for s in sessions:
        s.wait_halos()
        s.assert_clean("Halos")
    for s in sessions:
        s.go_to("Compare")
    for s in sessions:
        s.wait_compare()
        s.check_own_choices()
        s.assert_clean("Compare, back from Halos")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_chromium()
    home = tmp_path_factory.mktemp("load-home")
    env = dict(os.environ, DEEPHALO_HOME=str(home), DEEPHALO_EMBEDDED_GROUPS="8")
    snapshot = make_embedded(env)
    with serve_app(env, home / "server.log") as (url, server):
        yield url, server, home, snapshot


@pytest.fixture(scope="module")
def training_run(served):
    """A training run going in the background for the whole test (niced: the machine is small)."""
    from deephalo_core import runs

    _, _, home, snapshot = served
    config = dict(data=str(snapshot), model="offset-cluster", epochs=200, max_points=2000, seed=0,
                  no_progress=True)
    command = ["env", f"DEEPHALO_HOME={home}", "nice", "-n", "19", *runs.train_command(config, "{run_dir}")]
    run_dir = runs.launch(config, root=home / "runs", command=command)
    yield run_dir
    runs.request_stop(run_dir)
    try:
        runs.wait(run_dir, timeout=120)
    except TimeoutError:
        os.kill(runs.status(run_dir)["pid"], 9)
        raise


def test_five_sessions_during_training(served, training_run):
    from deephalo_core import runs
    from deephalo_core.data import open_simulation

    url, server, home, snapshot = served
    model = os.environ.get("DEEPHALO_LOAD_MODEL", "default")
    # five different halos, the smallest ones, so the test measures the app rather than the model
    halos = open_simulation(snapshot).halos.sort_values("n_particles").head(SESSIONS)
    assert len(halos) == SESSIONS, f"the embedded snapshot has only {len(halos)} groups"
    started = time.monotonic()
    with launch_chromium() as browser:
        rss_idle = rss_mib(server.pid)
        sessions = [Session(browser, url, int(row.group_id), int(row.n_particles), colour, model)
                    for row, colour in zip(halos.itertuples(), COLOUR_MODES)]
        visit_all(sessions[:1])
        time.sleep(2.0)
        rss_one = rss_mib(server.pid)
        assert runs.status(training_run)["state"] in ("starting", "running"), runs.status(training_run)

        visit_all(sessions[1:])
        time.sleep(2.0)
        rss_five = rss_mib(server.pid)
        # the first session, after the others chose theirs: still its own halo, on both pages
        first = sessions[0]
        first.check_own_choices()
        first.go_to("Halos")
        first.wait_halos()
        first.assert_clean("Halos, after the other sessions")
        first.go_to("Compare")
        first.wait_compare()
        first.check_own_choices()
        pngs = download_pngs_at_once(sessions)
        # the first session's link opened in a new browser: its prediction comes from the cache
        # the sessions share, not computed again
        newcomer = Session(browser, url, first.group_id, first.n_particles, first.colour, model)
        newcomer.open_compare()
        newcomer.wait_compare()
        caption = newcomer.page.get_by_text(f"segmented {first.n_particles:,} particles").inner_text()
        assert "(cached)" in caption, f"a second session recomputed the prediction: {caption!r}"
        newcomer.assert_clean("Compare, shared link")
        newcomer.context.close()
        training = runs.status(training_run)
        for s in sessions:
            s.assert_clean("end")
            s.context.close()
    elapsed = time.monotonic() - started

    log = (home / "server.log").read_text()
    for s, png in zip(sessions, pngs):  # the primary is drawn faint: small halos leave the PNG mostly dark
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and drawn_fraction(png) > 0.002, \
            f"session on group {s.group_id} got no drawn PNG ({len(png)} bytes)"
    assert "Traceback" not in log, log[log.index("Traceback"):][:3000]
    assert training["state"] == "running", \
        f"the training run was not going during the test: {training}\n{runs.log_tail(training_run)}"
    growth_one, growth_five = rss_one - rss_idle, rss_five - rss_idle
    ratio = growth_five / growth_one
    print(f"\n[load] server RSS: idle {rss_idle:.0f} MiB, 1 session {rss_one:.0f} MiB "
          f"(+{growth_one:.0f}), 5 sessions {rss_five:.0f} MiB (+{growth_five:.0f}); "
          f"growth 5 vs 1 session: {ratio:.2f}x (bound {MAX_GROWTH_RATIO}x); "
          f"per extra session +{(rss_five - rss_one) / (SESSIONS - 1):.0f} MiB; "
          f"training at epoch {training['epoch']}/{training['epochs']}; {elapsed:.0f} s")
    assert growth_one > 0, f"the first session did not grow the server (idle {rss_idle:.0f}, one {rss_one:.0f} MiB)"
    assert ratio < MAX_GROWTH_RATIO, (
        f"server memory grew {ratio:.2f}x from one session to five (+{growth_one:.0f} MiB vs "
        f"+{growth_five:.0f} MiB): caches look duplicated per session")
