"""Compare: Subfind's labels and the chosen model's prediction for one halo, side by side in 3D.

The views share one camera, draw the primary faint so the subhalos stand out, can add a third
view colouring each particle by how the prediction relates to Subfind, and highlight the
subhalo picked in the per-subhalo table. Where the time goes is kept in
st.session_state["timings"] and written to the server log.
"""
import json
import time

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from streamlit.logger import get_logger

from deephalo_core import runs, scene, viz
from deephalo_core.agreement import agreement_classes, agreement_counts
from deephalo_core.errors import DataError
from deephalo_core.halo_views import highlight_focus
from explorer.halo_view import halo_view
from explorer.state import require_navigation, require_simulation

require_navigation()
st.title("Compare")
started = time.perf_counter()
state = st.session_state
sim = require_simulation()
source_key, spec = state["source_key"], state["model_spec"]
log = get_logger(__name__)
VIEW_HEIGHT = 520


@st.cache_resource(show_spinner=False, max_entries=6)
def load_halo(source_key: tuple, group_id: int, _sim):
    return _sim.load_halo(group_id)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_method(spec: str, mtime: float):
    from deephalo_core.methods import load_method as load

    return load(spec)


@st.cache_data(show_spinner=False, max_entries=64)
def predict(spec: str, mtime: float, source_key: tuple, group_id: int, _method, _halo, _sim=None):
    """(labels, seconds the prediction took, device) for one halo: from this server's memory, else
    from the predictions kept on disk (shared by restarts, other users and the Halos page's
    background scoring), else made now and kept there."""
    from deephalo_core.predictions import get_or_predict

    sim = _sim if _sim is not None else st.session_state["simulation"]
    labels, seconds, _ = get_or_predict(_method, sim, group_id, halo=_halo)
    return labels, seconds, str(_method.device)


@st.cache_data(show_spinner=False, max_entries=32)
def analyse(spec: str, mtime: float, source_key: tuple, group_id: int, _truth, _pred) -> dict:
    """Matching, scores and agreement classes of one prediction (the arguments name it)."""
    from deephalo_core.metrics import halo_metrics, match_subhalos

    matches = match_subhalos(_truth, _pred)
    classes = agreement_classes(_truth, _pred, matches)
    return dict(matches=matches, scores=halo_metrics(_truth, _pred), classes=classes,
                counts=agreement_counts(classes))


@st.cache_data(show_spinner=False, max_entries=16)
def scene_arrays(spec: str, mtime: float, source_key: tuple, group_id: int, budget: int, colour_by: str,
                 agreement: bool, _halo, _pred, _analysis) -> tuple[list[dict], bytes, dict]:
    """The views' packed arrays and what the header needs (the arguments name them)."""
    from deephalo_core.halo_views import halo_views

    return halo_views(_halo, _pred, _analysis["matches"] if _analysis else None,
                      _analysis["classes"] if _analysis else None, budget, colour_by, agreement)


def table_key(group_id: int) -> str:
    return f"subhalo_table_{source_key}_{group_id}_{spec}"


def picked_row(matches: pd.DataFrame | None, group_id: int) -> dict | None:
    """The per-subhalo table's selected row as {truth, pred} labels (None for a missing side)."""
    if matches is None:
        return None
    event = state.get(table_key(group_id))
    rows = event.get("selection", {}).get("rows", []) if event else []
    if not rows or rows[0] >= len(matches):
        return None
    row = matches.iloc[rows[0]]
    return dict(truth=int(row["true_rank"]) if row["true_rank"] >= 0 else None,
                pred=int(row["pred_rank"]) if row["pred_rank"] >= 0 else None)


halos = sim.halos.sort_values("n_particles", ascending=False)
group_ids = halos["group_id"].astype(int).tolist()
sizes = dict(zip(group_ids, halos["n_particles"].astype(int)))
if state.get("group_id") not in sizes:
    state["group_id"] = group_ids[0]

controls = st.columns([3, 3, 3])
with controls[0]:
    # a callback, not a rerun: the new halo is set before the next run, so the sidebar and the URL
    # follow it in that same run
    if state.get("compare_halo") != state["group_id"]:
        state["compare_halo"] = state["group_id"]  # the halo chosen elsewhere (Halos page, a link)
    st.selectbox("Halo", group_ids, key="compare_halo", format_func=lambda g: f"group {g} ({sizes[g]:,} particles)",
                 on_change=lambda: state.update(group_id=int(state["compare_halo"])))
with controls[1]:
    colour_by = st.radio("Colour by", ["label", "potential", "speed"], horizontal=True, key="colour_by")
with controls[2]:
    budget = st.select_slider("Points shown", [5_000, 10_000, 20_000, 40_000, 80_000, 160_000],
                              value=40_000, key="display_budget")
look = st.columns([3, 2, 2, 2])
with look[0]:
    primary_style = st.segmented_control(
        "Primary subhalo", list(viz.PRIMARY_STYLES), default="faint", required=True, key="primary_style",
        help="The primary holds most particles; drawn faint (or hidden) it lets the subhalos stand out.")
with look[1]:
    show_fuzz = st.toggle("Show fuzz", value=False, key="show_fuzz")
with look[2]:
    agreement_view = st.toggle("Agreement view", value=False, key="agreement_view",
                               help="A third view colouring each particle by how the prediction "
                                    "relates to Subfind.")
with look[3]:
    point_size = st.slider("Point size", 1, 10, 4, key="point_size")

timings = dict(group=None, before_page_s=started - state.get("run_started", started))
group_id = int(state["group_id"])
wall = time.perf_counter()
try:
    with st.spinner(f"Loading group {group_id} ..."):
        halo = load_halo(source_key, group_id, sim)
except DataError as err:
    st.error(str(err))
    st.stop()
timings.update(group=group_id, particles=int(halo.n_particles), load_s=time.perf_counter() - wall)
style = viz.view_style(point_size, primary_style, show_fuzz)


def send_scene(pred, analysis, titles: dict, highlight: dict | None, focus: dict | None) -> tuple[dict, bytes]:
    """Build (cached) and send the scene; (scene info, payload) for the PNG downloads."""
    wall = time.perf_counter()
    descriptors, data, info = scene_arrays(spec, mtime, source_key, group_id, budget, colour_by,
                                           agreement_view, halo, pred, analysis)
    scene_id = f"{source_key}|{group_id}|{spec}|{mtime}|{budget}"
    header = dict(scene=scene_id, colours=f"{scene_id}|{colour_by}|{agreement_view}", n=info["n"],
                  radius=info["radius"], height=VIEW_HEIGHT, style=style,
                  views=[dict(title=titles[v["kind"]], highlight_by=v["highlight_by"]) for v in info["views"]],
                  highlight=highlight, focus=focus, colourbar=info["colourbar"], legend=info["legend"])
    payload = scene.encode(header, descriptors, data)
    timings.update(scene_s=time.perf_counter() - wall, payload_bytes=len(payload))
    halo_view(payload, key="halo_view")
    timings["sent_at"] = time.time()  # epoch seconds, to line up with the browser's clock
    return info, payload


def png_buttons(info: dict, payload: bytes) -> None:
    columns = st.columns(len(info["views"]))
    for i, (column, view) in enumerate(zip(columns, info["views"])):
        def render(i=i):
            _, arrays = scene.decode(payload)
            rgba = arrays[f"rgba{i}"]
            return viz.view_png(arrays["pos"], rgba[:, :3], rgba[:, 3], style)
        column.download_button("PNG of this view", render, file_name=f"group{group_id}-{view['kind']}.png",
                               mime="image/png", key=f"png_{view['kind']}", on_click="ignore")


def finish_timings() -> None:
    timings["page_s"] = time.perf_counter() - started
    state["timings"] = dict(timings)
    log.info("compare timings %s", json.dumps(timings, default=str))


mtime = runs.model_mtime(spec)
try:
    with st.spinner(f"Loading {state['model_label']} ..."):
        method = load_method(spec, mtime)
    with st.spinner(f"{state['model_label']} is segmenting {halo.n_particles:,} particles ..."):
        wall = time.perf_counter()
        pred, seconds, device = predict(spec, mtime, source_key, group_id, method, halo)
        timings["predict_s"] = time.perf_counter() - wall
        cached = timings["predict_s"] < 0.5 * seconds
        timings["predict_cached"] = cached
except (DataError, FileNotFoundError) as err:
    st.error(f"{state['model_label']} cannot segment group {group_id}: {err}")
    st.markdown(f"**Group {group_id}: {halo.n_particles:,} particles, not segmented**")
    agreement_view = False
    send_scene(None, None, {"truth": "Subfind (ground truth)", "particles": "Particles"}, None, None)
    finish_timings()
    st.stop()

st.caption(f"{state['model_label']} segmented {halo.n_particles:,} particles in {seconds:.2f} s on "
           f"{device}{' (cached)' if cached else ''}.")

truth = halo.labels
wall = time.perf_counter()
analysis = analyse(spec, mtime, source_key, group_id, truth, pred) if truth is not None else None
timings["analysis_s"] = time.perf_counter() - wall
matches = analysis["matches"] if analysis else None
if analysis is None:
    st.info("No ground truth for this source: metrics need Subfind labels.")
    agreement_view = False
else:
    scores = analysis["scores"]
    cards = st.columns(5)
    cards[0].metric("ARI", f"{scores['ari']:.3f}")
    cards[1].metric("PQ", f"{scores['pq']:.3f}")
    cards[2].metric("Matched IoU", f"{scores['matched_iou']:.3f}")
    cards[3].metric("Subhalos found / expected", f"{scores['n_pred']} / {scores['n_true']}")
    cards[4].metric("Primary IoU", f"{scores['primary_iou']:.3f}")

highlight = picked_row(matches, group_id)
focus = highlight_focus(halo, pred, highlight)

titles = {"truth": "Subfind (ground truth)", "pred": f"Prediction: {state['model_label']}",
          "agreement": "Agreement with Subfind"}
info, payload = send_scene(pred, analysis, titles, highlight, focus)
n_shown = info["n"]
st.caption(f"Showing {n_shown:,} of {halo.n_particles:,} particles (every small subhalo kept); "
           "the model and the metrics use all of them. Drag to rotate (the views turn together), "
           "shift-drag to pan, scroll to zoom, double-click to reset. Pick a row of the table below "
           "to highlight that subhalo in every view.")
if highlight:
    which = " and ".join(f"{side} {'rank ' + str(v) if v else 'primary'}"
                         for side, v in (("Subfind", highlight["truth"]), ("predicted", highlight["pred"]))
                         if v is not None)
    st.caption(f"Highlighted: {which}.")
png_buttons(info, payload)

if analysis is not None:
    counts = analysis["counts"]
    total = max(1, sum(counts.values()))
    st.markdown("**Agreement with Subfind**, particles by class (all particles of the halo)")
    boxes = st.columns(len(counts))
    for box, (name, count) in zip(boxes, counts.items()):
        box.metric(name, f"{count:,}", f"{100 * count / total:.1f}%", delta_color="off", delta_arrow="off")
    st.caption("right: same role (a satellite member in the predicted satellite matched to its own); "
               "missed: a satellite member predicted as primary or fuzz; false member: a primary or "
               "fuzz particle predicted in a satellite; wrong subhalo: in a satellite not matched to "
               "its own; primary/fuzz swap: primary predicted as fuzz or the reverse.")

downloads = st.columns(4)
downloads[0].download_button("Predicted labels (CSV)", lambda: viz.labels_csv(halo, pred),
                             file_name=f"group{group_id}-labels.csv", mime="text/csv", on_click="ignore")
downloads[1].download_button("Predicted labels (HDF5)",
                             lambda: viz.labels_hdf5(halo, pred, state["model_label"]),
                             file_name=f"group{group_id}-labels.hdf5", mime="application/x-hdf5",
                             on_click="ignore")

if analysis is None:
    finish_timings()
    st.stop()


def swatch(colour_map: dict):
    def style_column(column: pd.Series) -> list[str]:
        styles = []
        for value in column:
            rgb = colour_map.get(int(value)) if value >= 0 else None
            text = "#000" if rgb is not None and sum(rgb) > 380 else "#fff"
            styles.append(f"background-color: {viz.hex_colour(rgb)}; color: {text}" if rgb else "")
        return styles
    return style_column


st.subheader("This halo, subhalo by subhalo")
table_col, plot_col = st.columns(2)
with table_col:
    st.markdown("**Per subhalo** (Subfind rank, its size, the matched prediction); its colours are "
                "the views'. Pick a row to highlight it.")
    true_map, pred_map = viz.matched_colour_maps(truth, pred, matches)
    table = matches.rename(columns={"true_rank": "GT rank", "true_size": "GT particles",
                                    "pred_rank": "pred rank", "pred_size": "pred particles", "iou": "IoU"})
    styled = (table.style.apply(swatch(true_map), subset=["GT rank"]).apply(swatch(pred_map), subset=["pred rank"])
              .format(lambda v: "—" if v < 0 else f"{v}", subset=["GT rank", "pred rank"])  # unmatched
              .format(lambda v: "—" if v <= 0 else f"{v:,}", subset=["GT particles", "pred particles"]))
    st.dataframe(styled, hide_index=True, height=300, width="stretch", key=table_key(group_id),
                 on_select="rerun", selection_mode="single-row",
                 column_config={"IoU": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                       format="%.2f")})
with plot_col:
    st.markdown("**Subhalo mass function** of the satellites (rank 1 and up), Subfind vs predicted")
    mass_unit = halo.particle_mass * 1e10
    curves = []
    for name, labels in (("Subfind", truth), ("predicted", pred)):
        sizes_ = np.bincount(labels[labels >= 1])
        curve = viz.cumulative_counts(sizes_[sizes_ > 0] * mass_unit)
        curve["labels"] = name
        curves.append(curve)
    smf = pd.concat(curves)
    st.altair_chart(alt.Chart(smf).mark_line(point=True).encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"),
                  title="subhalo mass [Msun/h]"),
        y=alt.Y("n_above:Q", scale=alt.Scale(type="log"), title="N(>m)", axis=alt.Axis(format="~s")),
        color=alt.Color("labels:N", title=None)), width="stretch")
finish_timings()
