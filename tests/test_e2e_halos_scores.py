"""The Halos page gains the model's per-halo scores in real headless Chromium: a progress bar while
the background job segments every halo, then ARI, PQ and subhalos found / expected columns holding
the numbers the predictions on disk give, and "Worst first" putting the lowest ARI on top.

Runs on the shipped real sample (the default source; no snapshot to generate) with a fresh data
home, so every prediction is made by the page's background job. Needs Debian's chromium at
/usr/bin/chromium; without it this test fails, it is never skipped.
"""
import os

import numpy as np
import pytest

from browser_helpers import READY, launch_chromium, poll_until, require_chromium, serve_app

TIMEOUT_S = 300
SCORE_HEADERS = ("ARI", "PQ", "subhalos found", "subhalos expected")


def table_rows(page) -> tuple[list[str], list[list[str]]]:
    """(headers, the rows the grid has drawn) of the Halos table, from its accessible HTML table."""
    return page.evaluate("""() => {
        const t = document.querySelector("[data-testid='stDataFrame'] table");
        if (!t) return [[], []];
        const heads = Array.from(t.querySelectorAll("thead th")).map(th => th.innerText.trim());
        const rows = Array.from(t.querySelectorAll("tbody tr")).map(
            tr => Array.from(tr.querySelectorAll("td")).map(td => td.innerText.trim()));
        return [heads, rows];
    }""")


def scored_rows(page, first_ari=None):
    """(headers, rows) once every row drawn has an ARI (the first equal to `first_ari` when given).

    Every row, not just the first: the caption saying all halos are scored reaches the browser
    before the table of the same run, so for a moment the table drawn is the previous poll's, with
    the largest halos scored and the rest still empty."""
    headers, rows = table_rows(page)
    if not rows or "ARI" not in headers or not all(row[headers.index("ARI")] for row in rows):
        return None
    if first_ari is not None and abs(float(rows[0][headers.index("ARI")]) - first_ari) > 1e-6:
        return None
    return headers, rows


def wait_for(condition, what: str, timeout_s: float = TIMEOUT_S):
    return poll_until(condition, what, timeout_s, poll_s=0.2)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """(page, headers and rows of the finished table, the halos, the model's scores on disk)."""
    from deephalo_core import predictions, sources
    from deephalo_core.methods import load_method

    require_chromium()
    home = tmp_path_factory.mktemp("scores-home")
    env = dict(os.environ, DEEPHALO_HOME=str(home))
    with serve_app(env, home / "server.log") as (url, _server), launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/halos?source=sample&model=default", wait_until="domcontentloaded")
        progress = wait_for(lambda: page.locator("[data-testid='stProgress']").count() and
                            page.locator("[data-testid='stMain']").inner_text(),
                            "no progress bar while the halos were being scored")
        sim = sources.open_source(sources.SAMPLE)
        n = len(sim.halos)
        wait_for(lambda: f"scores on {n} of {n} halos" in page.locator("[data-testid='stMain']").inner_text(),
                 "the background job did not score every halo")
        page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)
        headers, rows = wait_for(lambda: scored_rows(page), "the score columns stayed empty")
        with pytest.MonkeyPatch.context() as patch:  # read the server's predictions on disk
            patch.setenv("DEEPHALO_HOME", str(home))
            scores = predictions.halo_scores(load_method("default"), sim)
        yield dict(page=page, progress=progress, headers=headers, rows=rows, sim=sim, scores=scores)
        assert not errors, errors
        page.close()


def test_scores_fill_in_with_progress(scored):
    n = len(scored["sim"].halos)
    assert f"of {n:,} done" in scored["progress"]  # the progress bar's own text
    assert set(SCORE_HEADERS) <= set(scored["headers"])
    assert len(scored["scores"]) == n  # every halo predicted and scored on disk


def test_score_columns_hold_the_predictions_scores(scored):
    headers, rows, scores = scored["headers"], scored["rows"], scored["scores"].set_index("group_id")
    halos = scored["sim"].halos.set_index("group_id")
    col = {name: headers.index(name) for name in ("group", "subhalos", *SCORE_HEADERS)}
    assert len(rows) >= 5
    for row in rows[:5]:  # the largest halos, as the table opens sorted by size
        g = int(row[col["group"]])
        ari, pq = float(row[col["ARI"]]), float(row[col["PQ"]])
        found, expected = float(row[col["subhalos found"]]), float(row[col["subhalos expected"]])
        assert -1 <= ari <= 1 and 0 <= pq <= 1 and found >= 0
        assert ari == pytest.approx(scores.loc[g, "ari"], abs=1e-6)
        assert pq == pytest.approx(scores.loc[g, "pq"], abs=1e-6)
        assert found == scores.loc[g, "n_found"]
        assert expected == halos.loc[g, "n_subhalos"] == int(row[col["subhalos"]])
    # the largest halo's ARI, from a prediction made here, independently of the page
    from deephalo_core.methods import load_method
    from deephalo_core.metrics import halo_metrics

    g = int(rows[0][col["group"]])
    assert g == int(halos["n_particles"].idxmax())
    halo = scored["sim"].load_halo(g)
    labels = np.asarray(load_method("default").predict(halo))
    assert halo_metrics(halo.labels, labels)["ari"] == pytest.approx(float(rows[0][col["ARI"]]), abs=1e-6)


def test_worst_first_puts_the_lowest_ari_on_top(scored):
    """The lowest ARI opens the list, leaving aside halos that Subfind keeps as one subhalo with no
    fuzz (ARI is 0 there once a single particle differs); those come after the rest."""
    page = scored["page"]
    page.get_by_text("Worst first").click()
    halos = scored["sim"].halos
    one_label = halos.loc[(halos["n_subhalos"] <= 1) & (halos["fuzz_fraction"] <= 0), "group_id"]
    scores = scored["scores"]
    assert scores["group_id"].isin(one_label).any()  # the real sample has such halos
    lowest = scores.loc[~scores["group_id"].isin(one_label), "ari"].min()
    headers, rows = wait_for(lambda: scored_rows(page, first_ari=lowest),
                             "Worst first did not put the lowest ARI on top", timeout_s=60)
    aris = [float(r[headers.index("ARI")]) for r in rows if r[headers.index("ARI")]]
    assert aris == sorted(aris)
    assert not {int(r[headers.index("group")]) for r in rows} & set(one_label.tolist())
