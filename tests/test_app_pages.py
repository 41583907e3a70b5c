"""Every page of the explorer under streamlit.testing.v1.AppTest, on a small embedded snapshot."""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer_app.py")
TIMEOUT = 180


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """AppTest re-detects the `pages/` folder on every run, so each run would start in Streamlit's
    old auto-discovered-pages mode and the app's require_navigation() would rerun it, which drops
    one-shot button clicks. A server detects it once per process; emulate that."""
    from streamlit.runtime import pages_manager
    from streamlit.testing.v1 import app_test

    class OncePerProcess(pages_manager.PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pages_manager.PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", OncePerProcess)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A data home with its own (small) embedded snapshot, made through the app's own code path."""
    patch = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("app-home")
    patch.setenv("DEEPHALO_HOME", str(home))
    patch.setenv("DEEPHALO_EMBEDDED_GROUPS", "8")
    yield home
    patch.undo()


@pytest.fixture(scope="module")
def simulation(home):
    from deephalo_core import sources

    seen = []
    root = sources.ensure_embedded(lambda fraction, message: seen.append((fraction, message)))
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "embedded snapshot ready")
    assert (root / "simulation.hdf5").exists() and sources.embedded_ready()
    return sources.open_source(sources.EMBEDDED)


def app(page=None, **query) -> AppTest:
    """The app run once (on the embedded snapshot unless the query names a source), then `page`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"source": "embedded", **query})
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at) -> str:
    return " ".join(str(e.value) for kind in (at.markdown, at.caption, at.success, at.info, at.warning)
                    for e in kind)


def test_halos_page_loads_with_table_and_plots(simulation):
    at = app()
    assert at.title[0].value == "Halos"
    table = at.dataframe[0].value
    assert len(table) == len(simulation.halos)
    assert table["particles"].tolist() == sorted(table["particles"], reverse=True)
    assert {"group", "particles", "subhalos", "fuzz fraction", "M200 [Msun/h]", "R200 [ckpc/h]"} <= set(table)
    assert "Halo mass function" in texts(at)
    largest = int(simulation.halos.loc[simulation.halos["n_particles"].idxmax(), "group_id"])
    assert at.session_state["group_id"] == largest
    assert at.query_params["halo"] == [str(largest)] or at.query_params["halo"] == str(largest)


def test_halos_filters_narrow_the_table(simulation):
    at = app()
    halos = simulation.halos
    cut = int(np.median(halos["n_particles"]))
    at.slider(key="filter_particles").set_value((cut, int(halos["n_particles"].max()))).run()
    assert not at.exception
    expected = int((halos["n_particles"] >= cut).sum())
    assert len(at.dataframe[0].value) == expected < len(halos)
    assert f"{expected} of {len(halos)} groups match" in texts(at)
    s_max = int(halos["n_subhalos"].max())
    at.slider(key="filter_subhalos").set_value((s_max, s_max)).run()
    table = at.dataframe[0].value
    assert len(table) >= 1 and set(table["subhalos"]) == {s_max}


def test_selecting_a_row_selects_the_halo(simulation):
    at = app()
    table = at.dataframe[0].value
    at.session_state["halo_table"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    chosen = int(table.iloc[2]["group"])
    assert at.session_state["group_id"] == chosen
    assert f"Selected group {chosen}" in texts(at)
    at.switch_page("pages/compare.py").run()  # the choice carries over to the other pages
    assert not at.exception and at.session_state["group_id"] == chosen
    assert next(s for s in at.selectbox if s.label == "Halo").value == chosen


def test_compare_page_segments_and_scores_the_halo(simulation):
    at = app("pages/compare.py", model="all-primary")
    assert at.title[0].value == "Compare"
    assert at.session_state["model_spec"] == "all-primary"
    metrics = {m.label: m.value for m in at.metric}
    group = at.session_state["group_id"]
    halo = simulation.load_halo(group)
    n_true = len(np.unique(halo.labels[halo.labels >= 0]))
    assert metrics["Subhalos found / expected"] == f"1 / {n_true}"  # all-primary predicts one subhalo
    assert float(metrics["ARI"]) < 0.9
    assert "segmented" in texts(at) and f"{halo.n_particles:,} particles" in texts(at)
    per_subhalo = at.dataframe[0].value
    assert per_subhalo["GT particles"].sum() == int((halo.labels >= 0).sum())
    assert "Subhalo mass function" in texts(at)
    downloads = [d.proto.label for d in at.get("download_button")]
    assert downloads.count("PNG of this view") == 2
    assert {"Predicted labels (CSV)", "Predicted labels (HDF5)"} <= set(downloads)


def test_compare_controls_change_the_view(simulation):
    at = app("pages/compare.py", model="all-primary")
    halo_box = next(s for s in at.selectbox if s.label == "Halo")
    smallest = int(simulation.halos.loc[simulation.halos["n_particles"].idxmin(), "group_id"])
    halo_box.set_value(smallest).run()
    assert not at.exception
    assert at.session_state["group_id"] == smallest
    assert at.query_params["halo"] in (str(smallest), [str(smallest)])
    at.radio(key="colour_by").set_value("speed").run()
    assert not at.exception and not any("Colour by label" in w.value for w in at.warning)
    at.select_slider(key="display_budget").set_value(5_000).run()
    shown = [c.value for c in at.caption if c.value.startswith("Showing")]
    halo = simulation.load_halo(smallest)
    assert shown and shown[0].startswith(f"Showing {min(5000, halo.n_particles):,} of")


def test_compare_with_the_hdbscan_baseline_finds_subhalos(simulation):
    at = app("pages/compare.py", model="hdbscan")
    metrics = {m.label: m.value for m in at.metric}
    found = int(metrics["Subhalos found / expected"].split("/")[0])
    assert found >= 1 and float(metrics["ARI"]) >= 0.0


def test_bad_path_shows_an_error_not_a_traceback(simulation):
    at = app()
    at.sidebar.radio(key="source_kind").set_value("tng").run()
    at.sidebar.text_input(key="source_path").input("/no/such/simulation").run()
    assert not at.exception
    assert any("/no/such/simulation" in e.value and "does not exist" in e.value for e in at.error)
    at.switch_page("pages/compare.py").run()
    assert not at.exception and any("does not exist" in e.value for e in at.error)
    at.sidebar.radio(key="source_kind").set_value("embedded").run()  # and the app is still usable
    assert not at.exception and not at.error and at.title[0].value == "Compare"


def test_unreadable_file_shows_an_error(simulation, tmp_path):
    junk = tmp_path / "not-a-snapshot.hdf5"
    junk.write_bytes(b"this is not HDF5")
    at = app(source="cutout", path=str(junk))
    assert not at.exception and at.error and str(junk) in at.error[0].value


def test_cutout_source_shows_its_particles_and_why_it_cannot_be_segmented(simulation, cutout_paths):
    at = app("pages/compare.py", source="cutout", path=str(cutout_paths[0]), model="all-primary")
    assert at.session_state["source_key"][0] == "cutout" and len(at.session_state["simulation"].halos) == 1
    # these real cutouts carry positions only: the error says so, and the particles are still drawn
    assert any("cannot segment" in e.value and "velocities" in e.value for e in at.error)
    assert any("not segmented" in m.value for m in at.markdown)


def test_missing_default_model_is_explained(simulation, monkeypatch, tmp_path):
    from deephalo_core import paths

    monkeypatch.setattr(paths, "DEFAULT_MODEL", tmp_path / "absent.pt")
    at = app("pages/compare.py")
    assert at.session_state["model_spec"] == "hdbscan"  # without the shipped model: a baseline
    at.sidebar.selectbox(key="model_spec").set_value("default").run()
    assert not at.exception
    assert any("not there yet" in w.value for w in at.sidebar.warning)
    assert any("missing" in e.value for e in at.error)  # the core's message, not a traceback
    linked = app("pages/compare.py", model="default")  # a link naming it gets the same message
    assert linked.session_state["model_spec"] == "default" and any("missing" in e.value for e in linked.error)


def test_train_page_form_and_one_run_at_a_time(simulation, home):
    from deephalo_core import runs

    at = app("pages/train.py")
    assert at.title[0].value == "Train"
    assert {"Model", "Loss (seed model)", "Features"} <= {s.label for s in at.selectbox}
    assert "seed" in next(s for s in at.selectbox if s.label == "Model").options
    # epochs are the model's own (20 for either) unless the user types a number
    assert next(n for n in at.number_input if n.label == "Epochs").value is None
    # a run is going (this test process stands in for it): Launch must refuse with a clear message
    root = runs.paths.runs_dir()
    (root / "busy").mkdir(parents=True, exist_ok=True)
    (root / runs.LOCK_NAME).write_text(json.dumps(dict(
        run_dir=str(root / "busy"), pid=os.getpid(), start_ticks=runs._process_start_ticks(os.getpid()))))
    try:
        at.button[0].click().run()
        assert not at.exception
        assert any("one run at a time" in w.value for w in at.warning)
    finally:
        (root / runs.LOCK_NAME).unlink()


def test_train_page_shows_a_failed_run_with_its_error(simulation, home):
    from deephalo_core import runs

    run_dir = runs.paths.runs_dir() / "20260101-000000-seed"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps(dict(state="failed", epoch=1, epochs=3,
                                                         error="out of memory in epoch 1")))
    (run_dir / "config.json").write_text(json.dumps(dict(model="seed")))
    at = app("pages/train.py")
    assert not at.exception
    assert any("out of memory in epoch 1" in e.value for e in at.error)
    history = at.dataframe[-1].value
    assert history.loc[history["run"] == run_dir.name, "state"].item() == "failed"


def test_evaluate_page_scores_baselines(simulation):
    at = app("pages/evaluate.py", model="all-primary")
    assert at.title[0].value == "Evaluate"
    at.multiselect(key="eval_models").set_value(["all-primary"])
    at.selectbox(key="eval_split").set_value("all")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert table["model"].tolist() == ["Baseline: all-primary"]
    assert table["n_halos"].item() == len(simulation.halos)
    assert 0.0 <= table["pq"].item() <= 1.0


def test_evaluate_page_means_over_the_large_halos(sample_dir):
    """On the real sample (halos of every size), "Means over" switches the table to the halos of
    >= 1000 particles: fewer halos, and all-primary's PQ drops there, where the satellites are."""
    from deephalo_core.data import open_simulation

    at = app("pages/evaluate.py", source="sample", model="all-primary")
    at.multiselect(key="eval_models").set_value(["all-primary"])
    at.selectbox(key="eval_split").set_value("all")
    at.button[0].click().run()
    everything = at.dataframe[0].value
    at.radio(key="eval_size").set_value("halos of ≥ 1000 particles").run()
    assert not at.exception, [e.value for e in at.exception]
    large = at.dataframe[0].value
    with open_simulation(sample_dir) as sim:  # the last output (z = 0), as the app opens it
        halos = sim.halos[sim.halos["n_subhalos"] > 0]
    assert everything["n_halos"].item() == len(halos)
    assert large["n_halos"].item() == int((halos["n_particles"] >= 1000).sum())
    assert large["pq"].item() < everything["pq"].item()
    assert "halos of ≥ 1000 particles" in " ".join(c.value for c in at.caption)


def test_train_page_watches_a_live_run_and_stops_it(simulation, home, tmp_path):
    import signal
    import sys

    from deephalo_core import runs

    trainer = tmp_path / "slow_trainer.py"  # speaks the trainer's on-disk contract, slowly
    trainer.write_text(
        "import json, os, sys, time\n"
        "out = sys.argv[1]\n"
        "json.dump(dict(state='running', pid=os.getpid(), epoch=1, epochs=4), open(out + '/status.json', 'w'))\n"
        "open(out + '/metrics.jsonl', 'w').write(json.dumps(dict(epoch=1, train_loss=2.0, val_loss=2.5,"
        " val_ari=0.4, val_pq=0.3, val_matched_iou=0.5, seconds=30.0)) + '\\n')\n"
        "print('epoch 1 done', flush=True)\n"
        "while not os.path.exists(out + '/STOP'):\n"
        "    time.sleep(0.05)\n"
        "json.dump(dict(state='stopped', pid=os.getpid(), epoch=1, epochs=4), open(out + '/status.json', 'w'))\n")
    run_dir = runs.launch(dict(model="seed", epochs=4), command=[sys.executable, str(trainer), "{run_dir}"])
    try:
        deadline = time.monotonic() + 20
        while runs.read_metrics(run_dir).empty and time.monotonic() < deadline:
            time.sleep(0.05)
        at = app("pages/train.py")
        assert f"Run {run_dir.name}: running" in [h.value for h in at.subheader]
        progress = at.get("progress")[0]
        assert "epoch 1 of 4" in progress.proto.text and "0:01:30 left" in progress.proto.text
        assert "epoch 1 done" in at.code[0].value
        stop = next(b for b in at.button if b.label == "Stop")
        stop.click().run()
        assert not at.exception
        assert runs.wait(run_dir, timeout=20)["state"] == "stopped"
        at.run()
        assert f"Run {run_dir.name}: stopped" in [h.value for h in at.subheader]
    finally:
        pid = json.loads((run_dir / "launch.json").read_text())["pid"]
        if runs.process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_page_choices_survive_navigation_and_a_source_change(simulation, cutout_paths):
    at = app("pages/compare.py", model="all-primary")
    at.radio(key="colour_by").set_value("potential").run()
    at.slider(key="point_size").set_value(6).run()
    at.switch_page("pages/halos.py").run()
    n_max = int(simulation.halos["n_particles"].max())
    at.slider(key="filter_particles").set_value((2000, n_max)).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert at.radio(key="colour_by").value == "potential" and at.slider(key="point_size").value == 6
    # another source with other ranges: the filters start afresh, not with an error
    at.sidebar.radio(key="source_kind").set_value("cutout").run()
    at.sidebar.text_input(key="source_path").input(str(cutout_paths[0])).run()
    at.switch_page("pages/halos.py").run()
    assert not at.exception
    n_cutout = int(at.session_state["simulation"].halos["n_particles"].iloc[0])
    assert at.slider(key="filter_particles").value == (n_cutout, n_cutout + 1)
    assert len(at.dataframe[0].value) == 1


def test_source_choices_that_cannot_be_opened_say_why(tmp_path):
    from deephalo_core import sources
    from deephalo_core.errors import DataError

    with pytest.raises(DataError, match="no path given.*TNG simulation root"):
        sources.source_path(sources.TNG_PATH, "  ")
    with pytest.raises(DataError, match="is a directory, not a cutout file"):
        sources.source_path(sources.CUTOUT, str(tmp_path))
    with pytest.raises(DataError, match="unknown data source 'ftp'"):
        sources.source_path("ftp", "x")
    with pytest.raises(DataError, match="not a TNG"):
        sources.open_source(sources.TNG_PATH, str(tmp_path))


def shown_scene(at) -> tuple[dict, dict]:
    """(header, arrays) of the scene the Compare page sent to its 3D view."""
    from deephalo_core import scene

    views = at.get("bidi_component")
    assert len(views) == 1, f"expected one 3D view component, found {len(views)}"
    return scene.decode(views[0].proto.bytes)


def busiest_group(simulation) -> int:
    halos = simulation.halos
    return int(halos.loc[halos["n_subhalos"].idxmax(), "group_id"])


def test_compare_scene_draws_both_views_with_a_faint_primary(simulation):
    group = busiest_group(simulation)
    at = app("pages/compare.py", model="all-primary", halo=str(group))
    header, arrays = shown_scene(at)
    halo = simulation.load_halo(group)
    assert [v["title"] for v in header["views"]] == ["Subfind (ground truth)", "Prediction: Baseline: all-primary"]
    assert header["n"] == len(arrays["pos"]) == min(halo.n_particles, 40_000)
    assert f"|{group}|" in header["scene"]
    assert header["style"]["primary_alpha"] < 0.5 and header["style"]["fuzz_alpha"] == 0  # the defaults
    assert header["style"]["primary_size"] < header["style"]["member_size"]
    roles = arrays["rgba0"][:, 3]
    truth = arrays["truth"]
    assert set(np.unique(roles[truth >= 1])) == {2} and set(np.unique(roles[truth == 0])) == {0}
    assert header["highlight"] is None and header["focus"] is None
    at.segmented_control(key="primary_style").set_value("hidden").run()
    at.toggle(key="show_fuzz").set_value(True).run()
    header, _ = shown_scene(at)
    assert header["style"]["primary_alpha"] == 0 and header["style"]["fuzz_alpha"] > 0
    assert at.session_state["timings"]["group"] == group and at.session_state["timings"]["payload_bytes"] > 0


def test_agreement_counts_and_view_for_the_all_primary_baseline(simulation):
    from deephalo_core.agreement import CLASS_COLOURS, MISSED, PRIMARY_FUZZ, RIGHT

    group = busiest_group(simulation)
    at = app("pages/compare.py", model="all-primary", halo=str(group))
    truth = simulation.load_halo(group).labels
    # every particle predicted primary: satellites are missed, fuzz swapped, the primary right
    expected = {"right": int((truth == 0).sum()), "missed": int((truth >= 1).sum()), "false member": 0,
                "wrong subhalo": 0, "primary/fuzz swap": int((truth == -1).sum())}
    shown = {m.label: int(m.value.replace(",", "")) for m in at.metric if m.label in expected}
    assert shown == expected and expected["missed"] > 0
    at.toggle(key="agreement_view").set_value(True).run()
    header, arrays = shown_scene(at)
    assert [v["title"] for v in header["views"]][-1] == "Agreement with Subfind"
    assert header["views"][2]["highlight_by"] == ["truth", "pred"]
    colours = arrays["rgba2"][:, :3]
    members, fuzz, primary = arrays["truth"] >= 1, arrays["truth"] == -1, arrays["truth"] == 0
    assert (colours[members] == CLASS_COLOURS[MISSED]).all()
    assert (colours[fuzz] == CLASS_COLOURS[PRIMARY_FUZZ]).all() and (colours[primary] == CLASS_COLOURS[RIGHT]).all()
    assert (arrays["rgba2"][members, 3] == 2).all()  # errors drawn as members: they stand out
    assert [item["name"] for item in header["legend"]][:4] == ["right", "missed", "false member", "wrong subhalo"]


def test_picking_a_table_row_highlights_and_centres_that_subhalo(simulation):
    group = busiest_group(simulation)
    at = app("pages/compare.py", model="all-primary", halo=str(group))
    table = at.dataframe[0].value
    row = 1  # Subfind's first satellite
    rank = int(table.iloc[row]["GT rank"])
    key = next(k for k in at.session_state._state.filtered_state if str(k).startswith("subhalo_table"))
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    header, _ = shown_scene(at)
    assert header["highlight"] == {"truth": rank, "pred": None}  # all-primary has no satellite to match
    halo = simulation.load_halo(group)
    middle = np.median(halo.pos[halo.labels == rank] - halo.center, axis=0)
    assert np.allclose(header["focus"]["centre"], middle) and header["focus"]["radius"] > 0
    assert any(c.value == f"Highlighted: Subfind rank {rank}." for c in at.caption)
    other = int(simulation.halos.loc[simulation.halos["group_id"] != group, "group_id"].iloc[0])
    next(s for s in at.selectbox if s.label == "Halo").set_value(other).run()
    header, _ = shown_scene(at)  # another halo: nothing picked in its own table yet
    assert f"|{other}|" in header["scene"] and header["highlight"] is None and header["focus"] is None


def test_the_real_sample_is_the_default_source_at_its_last_output(home):
    from deephalo_core import sources

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["model"] = "all-primary"  # no source in the link; a baseline keeps the test light
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    outputs = sources.list_outputs(sources.SAMPLE)
    assert len(outputs) >= 2 and at.session_state["source_kind"] == sources.DEFAULT_KIND == sources.SAMPLE
    last, first = outputs[-1], outputs[0]
    assert at.session_state["source_key"][2] == last.snap
    assert at.query_params["snap"] in (str(last.snap), [str(last.snap)])
    picker = at.sidebar.selectbox(key="source_snap")
    assert picker.options == [f"snap {o.snap:03d} (z = {o.redshift:.2f})" for o in outputs]
    picker.set_value(first.snap).run()
    assert not at.exception
    earlier = sources.open_source(sources.SAMPLE, snap=first.snap)
    assert at.session_state["source_key"][2] == first.snap
    assert len(at.session_state["simulation"].halos) == len(earlier.halos)
    assert any(f"z = {first.redshift:.2f}" in c.value for c in at.sidebar.caption)
    assert at.query_params["snap"] in (str(first.snap), [str(first.snap)])


def test_a_link_chooses_the_snapshot_and_caches_keep_snapshots_apart(home):
    from deephalo_core import sources

    first, last = sources.list_outputs(sources.SAMPLE)[0], sources.list_outputs(sources.SAMPLE)[-1]
    at = app("pages/compare.py", source="sample", snap=str(first.snap), model="all-primary")
    assert at.session_state["source_key"][2] == first.snap
    halo_early = at.session_state["group_id"]
    early = shown_scene(at)[0]
    at.sidebar.selectbox(key="source_snap").set_value(last.snap).run()
    assert not at.exception and at.session_state["source_key"][2] == last.snap
    late = shown_scene(at)[0]
    assert early["scene"] != late["scene"] and f", {last.snap})" in late["scene"]
    assert halo_early in set(sources.open_source(sources.SAMPLE, snap=first.snap).halos["group_id"])
