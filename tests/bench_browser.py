"""Browser benchmark of opening a halo's Compare link: from navigation until both 3D views have drawn.

    .venv/bin/python tests/bench_browser.py [--data PATH] [--halo G] [--model SPEC] [--json OUT]

Serves the app on a fresh data home (no prediction kept on disk yet), drives Debian's headless
Chromium and opens `/compare?source=...&halo=G` (default G: the largest halo) in a new tab each
time, after a warm-up link to a small halo (the server's imports, the model, the browser's copy of
the app's scripts):
  cold                  G's prediction made now (nobody has opened G yet)
  cached                the same link again (prediction in the server's memory)
  after restart, first  a new server on the same data home, its first visitor (prediction on disk)
  after restart         the same link once that server is warm
Each with the breakdown the Compare page logs (halo load, predict, analysis, scene, transfer, the
browser's parsing and drawing). Targets: <= 3 s cold, <= 1 s cached (2 CPU cores).

Without --data it runs on the embedded synthetic snapshot (made in the fresh home first, about a
minute; its largest halo has 134,657 particles). Not collected by pytest (no test_ prefix).
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from bench_compare_browser import breakdown, server_timings  # noqa: E402
from browser_helpers import READY, bench_snapshot, launch_chromium, serve_app, wait_drawn_at  # noqa: E402

TIMEOUT_S = 600
TARGETS = {"cold": 3.0, "cached": 1.0, "after restart": 1.0}


def open_link(context, link: str, group: int, log: Path, case: str) -> dict:
    """Open `link` in a new tab of `context`; the timing row once `group` is drawn."""
    tab = context.new_page()
    clicked = time.time()
    tab.goto(link, wait_until="commit")
    state = wait_drawn_at(tab, TIMEOUT_S, group, clicked * 1000)
    tab.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)  # the page run has ended and logged
    row = breakdown(case, clicked, state, server_timings(log, group, clicked))
    tab.close()
    return row


def serve_and_open(env: dict, log: Path, links: list[tuple[str, str, int]]) -> list[dict]:
    """Start a server, open each (case, link, group) in turn in one browser; the timing rows."""
    rows = []
    with serve_app(env, log) as (_url, _server), launch_chromium() as browser:
        context = browser.new_context(viewport={"width": 1600, "height": 1400})
        for case, link, group in links:
            rows.append(open_link(context, link.format(url=_url), group, log, case))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a snapshot or output directory (default: the embedded synthetic one)")
    parser.add_argument("--halo", type=int, help="the group to open (default: the largest)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)

    from deephalo_core.data import open_simulation

    home, env, snapshot, source = bench_snapshot(args.data, "deephalo-bench-browser-")
    halos = open_simulation(snapshot).halos.sort_values("n_particles")
    group = args.halo if args.halo is not None else int(halos["group_id"].iloc[-1])
    if group not in set(halos["group_id"]):
        parser.error(f"--halo {group}: no such group in {snapshot}")
    n = int(halos.set_index("group_id").loc[group, "n_particles"])
    warm = int(halos["group_id"].iloc[len(halos) // 2])
    print(f"halo: group {group}, {n:,} particles; warm-up halo {warm}; model {args.model}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    link = "{url}/compare?" + f"{source}&model={args.model}&halo="
    rows = serve_and_open(env, home / "server.log", [("warm-up", link + str(warm), warm),
                                                       ("cold", link + str(group), group),
                                                       ("cached", link + str(group), group)])
    rows += serve_and_open(env, home / "server-restarted.log", [("after restart, first", link + str(group), group),
                                                                ("after restart", link + str(group), group)])
    print()
    for row in rows:
        target = TARGETS.get(row["case"])
        verdict = "" if target is None else (" (target <= %.0f s: %s)" % (target, "met" if row["total_s"] <= target
                                                                         else "missed"))
        print(f"{row['case']:>21}: {row['total_s']:.2f} s{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(group=group, particles=n, rows=rows), indent=1))
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
