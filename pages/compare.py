"""Compare: Subfind's labels and the chosen model's prediction for one halo, side by side in 3D."""
import time

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from deephalo_core import runs, viz
from deephalo_core.errors import DataError
from explorer_app import require_navigation, require_simulation

require_navigation()
st.title("Compare")
state = st.session_state
sim = require_simulation()
source_key, spec = state["source_key"], state["model_spec"]


@st.cache_resource(show_spinner=False, max_entries=6)
def load_halo(source_key: tuple, group_id: int, _sim):
    return _sim.load_halo(group_id)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_method(spec: str, mtime: float):
    from deephalo_core.methods import load_method as load

    return load(spec)


@st.cache_data(show_spinner=False, max_entries=64)
def predict(spec: str, mtime: float, source_key: tuple, group_id: int, _method, _halo):
    from deephalo_core.methods import timed_predict

    labels, seconds = timed_predict(_method, _halo)
    return np.asarray(labels, dtype=np.int32), seconds, str(_method.device)


halos = sim.halos.sort_values("n_particles", ascending=False)
group_ids = halos["group_id"].astype(int).tolist()
sizes = dict(zip(group_ids, halos["n_particles"].astype(int)))
if state.get("group_id") not in sizes:
    state["group_id"] = group_ids[0]

controls = st.columns([2, 2, 1, 2])
with controls[0]:
    chosen = st.selectbox("Halo", group_ids, index=group_ids.index(state["group_id"]),
                          format_func=lambda g: f"group {g} ({sizes[g]:,} particles)")
    if chosen != state["group_id"]:
        state["group_id"] = int(chosen)
        st.rerun()  # the sidebar and the URL follow the new halo
with controls[1]:
    colour_by = st.radio("Colour by", ["label", "potential", "speed"], horizontal=True, key="colour_by")
with controls[2]:
    point_size = st.slider("Point size", 1, 10, 3, key="point_size")
with controls[3]:
    budget = st.select_slider("Points shown", [5_000, 10_000, 20_000, 40_000, 80_000, 160_000],
                              value=40_000, key="display_budget")

group_id = int(state["group_id"])
try:
    with st.spinner(f"Loading group {group_id} ..."):
        halo = load_halo(source_key, group_id, sim)
except DataError as err:
    st.error(str(err))
    st.stop()

mtime = runs.model_mtime(spec)
try:
    with st.spinner(f"Loading {state['model_label']} ..."):
        method = load_method(spec, mtime)
    with st.spinner(f"{state['model_label']} is segmenting {halo.n_particles:,} particles ..."):
        wall = time.perf_counter()
        pred, seconds, device = predict(spec, mtime, source_key, group_id, method, halo)
        cached = time.perf_counter() - wall < 0.5 * seconds
except (DataError, FileNotFoundError) as err:
    st.error(f"{state['model_label']} cannot segment group {group_id}: {err}")
    from stpyvista import stpyvista  # still show the particles themselves

    st.markdown(f"**Group {group_id}: {halo.n_particles:,} particles, not segmented**")
    subset = viz.display_indices(budget, np.zeros(halo.n_particles, dtype=np.int32))
    stpyvista(viz.build_plotter(halo.pos[subset], point_size=point_size, centre=halo.center), key="positions")
    st.stop()

st.caption(f"{state['model_label']} segmented {halo.n_particles:,} particles in {seconds:.2f} s on "
           f"{device}{' (cached)' if cached else ''}.")

truth = halo.labels
matches = None
if truth is not None:
    from deephalo_core.metrics import halo_metrics, match_subhalos

    matches = match_subhalos(truth, pred)
true_map, pred_map = viz.matched_colour_maps(truth, pred, matches)

if truth is None:
    st.info("No ground truth for this source: metrics need Subfind labels.")
else:
    scores = halo_metrics(truth, pred)
    cards = st.columns(5)
    cards[0].metric("ARI", f"{scores['ari']:.3f}")
    cards[1].metric("PQ", f"{scores['pq']:.3f}")
    cards[2].metric("Matched IoU", f"{scores['matched_iou']:.3f}")
    cards[3].metric("Subhalos found / expected", f"{scores['n_pred']} / {scores['n_true']}")
    cards[4].metric("Primary IoU", f"{scores['primary_iou']:.3f}")

shown = viz.display_indices(budget, *(a for a in (truth, pred) if a is not None))
points = halo.pos[shown]
centre = np.asarray(halo.center, dtype=np.float64)

label_views = {"truth": dict(rgb=viz.colours_for(truth[shown], true_map)) if truth is not None else None,
               "pred": dict(rgb=viz.colours_for(pred[shown], pred_map))}
views = label_views
if colour_by != "label":
    values = halo.potential if colour_by == "potential" else (
        viz.speed(halo.vel) if halo.vel is not None else None)
    if values is None:
        st.warning(f"This source has no {'potential' if colour_by == 'potential' else 'velocities'}: "
                   "colouring by label instead.")
    else:
        name = "potential [(km/s)^2]" if colour_by == "potential" else "speed [km/s]"
        scalars = dict(scalars=np.asarray(values)[shown], scalar_name=name)
        views = {"truth": scalars if truth is not None else None, "pred": scalars}

st.caption(f"Showing {len(shown):,} of {halo.n_particles:,} particles (every small subhalo kept); "
           "the model and the metrics use all of them. Drag to rotate, scroll to zoom.")


def draw(column, title: str, view: dict | None, key: str):
    with column:
        st.markdown(f"**{title}**")
        if view is None:
            st.info("This source carries no Subfind labels, so there is no ground truth to show.")
            return
        from stpyvista import stpyvista

        plotter = viz.build_plotter(points, point_size=point_size, centre=centre, **view)
        stpyvista(plotter, key=key)
        st.download_button(
            "PNG of this view", lambda: viz.screenshot_png(
                viz.build_plotter(points, point_size=point_size, centre=centre, window_size=(1000, 850), **view)),
            file_name=f"group{group_id}-{key}.png", mime="image/png", key=f"png_{key}", on_click="ignore")


left, right = st.columns(2)
draw(left, "Subfind (ground truth)", views["truth"], "truth")
draw(right, f"Prediction: {state['model_label']}", views["pred"], "pred")


def legend_html(labels, colour_map) -> str:
    rows = viz.legend(labels, colour_map)
    return "<br>".join(f"<span style='color:{r.colour};font-size:1.2em'>&#9632;</span> {r.subhalo}: "
                       f"{r.particles:,}" for r in rows.itertuples())


if colour_by == "label":
    legend_left, legend_right = st.columns(2)
    if truth is not None:
        with legend_left, st.container(height=160):
            st.markdown(legend_html(truth, true_map), unsafe_allow_html=True)
    with legend_right, st.container(height=160):
        st.markdown(legend_html(pred, pred_map), unsafe_allow_html=True)
    st.caption("A predicted subhalo takes the colour of the Subfind subhalo it is matched to (Hungarian "
               "matching on IoU, shared colour from IoU 0.5, the PQ criterion); other predictions get "
               "colours of their own; fuzz is grey.")

downloads = st.columns(4)
downloads[0].download_button("Predicted labels (CSV)", lambda: viz.labels_csv(halo, pred),
                             file_name=f"group{group_id}-labels.csv", mime="text/csv", on_click="ignore")
downloads[1].download_button("Predicted labels (HDF5)",
                             lambda: viz.labels_hdf5(halo, pred, state["model_label"]),
                             file_name=f"group{group_id}-labels.hdf5", mime="application/x-hdf5",
                             on_click="ignore")

if truth is None:
    st.stop()
st.subheader("This halo, subhalo by subhalo")
table_col, plot_col = st.columns(2)
with table_col:
    st.markdown("**Per subhalo** (Subfind rank, its size, the matched prediction)")
    st.dataframe(matches.rename(columns={"true_rank": "GT rank", "true_size": "GT particles",
                                         "pred_rank": "pred rank", "pred_size": "pred particles",
                                         "iou": "IoU"}),
                 hide_index=True, height=300, width="stretch",
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
        y=alt.Y("n_above:Q", scale=alt.Scale(type="log"), title="N(>m)"),
        color=alt.Color("labels:N", title=None)), width="stretch")
