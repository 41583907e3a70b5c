"""Browser benchmark of the Compare page: from opening a halo until every 3D view has drawn it.

    .venv/bin/python tests/bench_compare_browser.py [--snapshot DIR] [--model SPEC] [--json OUT]

Serves the app on a fresh data home (so no prediction is cached on disk), drives Debian's
headless Chromium and prints, for the largest halo of the snapshot:
  cold selection    picking it in the Halo box of an open Compare page, its prediction not yet made
  cached selection  picking it again after another halo (prediction cached)
  cached link       its /compare link opened in a new tab (the browser has the app's scripts
                    cached) and in a fresh browser profile (prediction cached)
each with the breakdown: the server's page run (halo load, predict, analysis, scene) from the
page's timing log, the transfer to the browser, and the browser's parsing and drawing.

--snapshot names a snapshot or output directory in any layout the app reads (default: the
embedded synthetic one, 150 groups, made in the fresh home first, about a minute). The model defaults to the shipped one.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from browser_helpers import (READY, bench_snapshot, launch_chromium, serve_app,  # noqa: E402
                             wait_drawn_at, wait_views_drawn)

TIMEOUT_S = 600


def server_timings(log: Path, group: int, after: float) -> dict:
    """The Compare page's last timing record for `group` sent after epoch `after`."""
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        if "compare timings " in line:
            record = json.loads(line.split("compare timings ", 1)[1])
            if record.get("group") == group and record.get("sent_at", 0) >= after:
                found = record
    return found


def breakdown(name: str, clicked: float, state: dict, server: dict) -> dict:
    drawn, received = float(state["drawnAt"]) / 1000, float(state["receivedAt"]) / 1000
    row = dict(case=name, total_s=drawn - clicked, until_sent_s=server.get("sent_at", clicked) - clicked,
               transfer_s=received - server.get("sent_at", received), draw_s=drawn - received,
               **{k: server.get(k) for k in ("load_s", "predict_s", "predict_cached", "analysis_s",
                                             "scene_s", "payload_bytes", "particles")})
    print(f"{name:>17}: {row['total_s']:.2f} s to drawn | request + page run until the scene was sent "
          f"{row['until_sent_s']:.2f} s (load {row['load_s'] or 0:.2f}, predict {row['predict_s'] or 0:.2f}"
          f"{' cached' if row['predict_cached'] else ''}, analysis {row['analysis_s'] or 0:.2f}, scene "
          f"{row['scene_s'] or 0:.2f}) | transfer {row['transfer_s']:.2f} s "
          f"({(row['payload_bytes'] or 0) / 1e6:.1f} MB) | parse + draw {row['draw_s']:.2f} s")
    return row


def pick_halo(page, group: int, n_particles: int) -> float:
    """Choose `group` in the Halo box; the epoch time of the click."""
    page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
    page.keyboard.type(f"group {group} (")  # the option list is virtualised: filter it first
    option = page.get_by_role("option", name=f"group {group} ({n_particles:,} particles)")
    option.wait_for(timeout=60_000)
    clicked = time.time()
    option.click()
    return clicked


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshot", help="snapshot or output directory, any layout the app reads "
                        "(default: the embedded synthetic one)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)

    from deephalo_core.data import open_simulation

    home, env, snapshot, source = bench_snapshot(args.snapshot, "deephalo-bench-")
    halos = open_simulation(snapshot).halos.sort_values("n_particles")
    # the warm-up halo: a middling one, large enough to cover pixels (a real snapshot's median halo
    # has ~70 particles, too few for the drawn check to see)
    visible = halos[halos["n_particles"] >= 1000]
    visible = visible if len(visible) >= 2 else halos
    largest, small = halos.iloc[-1], visible.iloc[(len(visible) - 1) // 2]
    big, n_big = int(largest.group_id), int(largest.n_particles)
    print(f"largest halo: group {big}, {n_big:,} particles; model {args.model}", flush=True)
    rows = []
    log = home / "server.log"
    with serve_app(env, log) as (url, _server), launch_chromium() as browser:
        link = f"{url}/compare?{source}&model={args.model}"
        page = browser.new_context(viewport={"width": 1600, "height": 1400}).new_page()
        page.goto(f"{link}&halo={int(small.group_id)}", wait_until="domcontentloaded")
        wait_views_drawn(page, TIMEOUT_S, group=int(small.group_id))  # warm-up: model loaded
        page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)

        clicked = pick_halo(page, big, n_big)
        state = wait_drawn_at(page, TIMEOUT_S, big, clicked * 1000)
        rows.append(breakdown("cold selection", clicked, state, server_timings(log, big, clicked)))
        page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)

        clicked = pick_halo(page, int(small.group_id), int(small.n_particles))
        wait_drawn_at(page, TIMEOUT_S, int(small.group_id), clicked * 1000)
        page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)
        clicked = pick_halo(page, big, n_big)
        state = wait_drawn_at(page, TIMEOUT_S, big, clicked * 1000)
        rows.append(breakdown("cached selection", clicked, state, server_timings(log, big, clicked)))

        # a link opened in a new tab of the same browser (the app's scripts in its cache), then in
        # a fresh browser profile, which first fetches Streamlit's ~100 script chunks
        for name, context in (("cached link, tab", page.context),
                              ("cached link, new", browser.new_context(viewport={"width": 1600, "height": 1400}))):
            tab = context.new_page()
            clicked = time.time()
            tab.goto(f"{link}&halo={big}", wait_until="commit")
            state = wait_drawn_at(tab, TIMEOUT_S, big, clicked * 1000)
            rows.append(breakdown(name, clicked, state, server_timings(log, big, clicked)))
            tab.close()
        # the floor under any link: Streamlit's own page start, measured on the lightest page
        tab = page.context.new_page()
        clicked = time.time()
        tab.goto(f"{url}/evaluate?{source}&model={args.model}", wait_until="commit")
        tab.get_by_role("heading", name="Evaluate", exact=True).wait_for(timeout=TIMEOUT_S * 1000)
        tab.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)
        rows.append(dict(case="reference: Evaluate page link, tab", total_s=time.time() - clicked))
        print(f"reference: the Evaluate page (no 3D view) from a link in a new tab to ready: "
              f"{rows[-1]['total_s']:.2f} s")
        tab.close()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
