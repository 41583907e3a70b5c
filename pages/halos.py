"""Halos: the snapshot's FoF groups as a sortable, filterable table; a selected row picks the halo.

The chosen model's score on each halo (ARI, PQ, subhalos found / expected) joins the table as its
predictions appear: a background job (deephalo_core.predictions.Precompute, one per model and data
source, shared by every session of this server) segments every halo, largest first, and keeps the
labels on disk, where the Compare page finds them.
"""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from deephalo_core import paths, predictions, runs, viz
from deephalo_core.errors import DataError
from explorer.state import require_navigation, require_simulation

require_navigation()
st.title("Halos")
state = st.session_state
sim = require_simulation()
halos = sim.halos
COLUMNS = {
    "group_id": "group",
    "n_particles": "particles",
    "n_subhalos": "subhalos",
    "fuzz_fraction": "fuzz fraction",
    "m200_msun_h": "M200 [Msun/h]",
    "r200_ckpc_h": "R200 [ckpc/h]",
}
SCORES = {"ari": "ARI", "pq": "PQ", "n_found": "subhalos found", "n_expected": "subhalos expected"}
POLL_S = 2.0
shown = [c for c in COLUMNS if c in halos.columns]


@st.cache_resource(show_spinner=False, max_entries=4)
def load_method(spec: str, mtime: float):
    from deephalo_core.methods import load_method as load

    return load(spec)


@st.cache_resource(show_spinner=False, max_entries=2, on_release=lambda job: job.stop(timeout=0))
def scoring_job(model_key: str, source_key: str, cache_dir: str, _method, _sim) -> predictions.Precompute:
    """The background job that predicts and scores every halo (one per model, data source and
    prediction cache)."""
    return predictions.Precompute(_method, _sim)


if state.get("_filters_for") != state["source_key"]:  # filters kept from another snapshot: reset
    for key in ("filter_particles", "filter_subhalos", "filter_ari"):
        state.pop(key, None)
    state["_filters_for"] = state["source_key"]


def range_slider(label: str, key: str, values) -> tuple[int, int]:
    low, high = int(values.min()), int(values.max())
    high = max(high, low + 1)  # a slider needs a non-empty range
    return st.slider(label, low, high, (low, high), key=key)


left, right = st.columns(2)
with left:
    size_range = range_slider("Particles", "filter_particles", halos["n_particles"])
with right:
    sub_range = range_slider("Subhalos", "filter_subhalos", halos["n_subhalos"])
keep = halos["n_particles"].between(*size_range) & halos["n_subhalos"].between(*sub_range)

label = state.get("model_label", state["model_spec"])
try:
    method = load_method(state["model_spec"], runs.model_mtime(state["model_spec"]))
    job = scoring_job(predictions.model_key(method), predictions.source_key(sim), str(paths.cache_dir()),
                      method, sim)
except (DataError, FileNotFoundError) as err:
    method = job = None
    st.warning(f"{label} cannot score the halos: {err}")


def scored_table():
    """The filtered halos with the model's scores so far, in the order the controls ask for."""
    table = halos.loc[keep, shown]
    if method is not None:
        table = table.merge(predictions.halo_scores(method, sim), on="group_id", how="left")
        ari_max = state.get("filter_ari", 1.0)
        if ari_max < 1.0:
            table = table[table["ari"] <= ari_max]
    if state.get("worst_first") and "ari" in table:
        return predictions.worst_first(table)
    return table.sort_values("n_particles", ascending=False, ignore_index=True)


def show_progress() -> None:
    if job is None:
        return
    done, total = job.progress()
    if job.running:
        st.progress(done / max(total, 1), text=f"{label} is segmenting every halo, largest first, to "
                    f"score it against Subfind: {done:,} of {total:,} done")
    else:
        st.caption(f"{label}'s scores on {done:,} of {total:,} halos (ARI and PQ: 1 is Subfind's own "
                   "segmentation); the predictions are kept on disk for the Compare page."
                   + (f" {len(job.errors)} halo(s) could not be segmented." if job.errors else ""))


def pick_row(table: pd.DataFrame, rows: list) -> None:
    """Select the halo of the row clicked; only a new click counts (the table refills while
    scores arrive, so an old selection may point at another row now)."""
    if rows == state.get("_halo_rows_seen"):
        return
    state["_halo_rows_seen"] = rows
    if rows and rows[0] < len(table):
        chosen = int(table.iloc[rows[0]]["group_id"])
        if chosen != state.get("group_id"):
            state["group_id"] = chosen
            st.rerun(scope="app")  # the sidebar and the URL follow the new halo


@st.fragment(run_every=POLL_S if job is not None and job.running else None)
def halo_table() -> None:
    """The table and the scoring progress, refreshed every POLL_S seconds while the job runs."""
    show_progress()
    if job is not None:
        filter_col, sort_col = st.columns([3, 1])
        filter_col.slider("ARI at most (halos without a score yet are hidden below 1)", -0.5, 1.0,
                          1.0, 0.01, key="filter_ari")
        sort_col.toggle("Worst first", key="worst_first",
                        help="sort by ARI, then PQ, lowest first; halos that Subfind leaves as one "
                             "subhalo with no fuzz come last, as ARI is 0 there once one particle differs")
    table = scored_table()
    st.caption(f"{len(table)} of {len(halos)} groups match. Click a row to select that halo for the "
               "Compare page; click a column header to sort.")
    names = {**COLUMNS, **SCORES}
    event = st.dataframe(
        table.rename(columns=names), key="halo_table", on_select="rerun", selection_mode="single-row",
        hide_index=True, width="stretch", height=360,
        column_config={"M200 [Msun/h]": st.column_config.NumberColumn(format="%.3e"),
                       "R200 [ckpc/h]": st.column_config.NumberColumn(format="%.1f"),
                       "fuzz fraction": st.column_config.NumberColumn(format="%.3f"),
                       "ARI": st.column_config.NumberColumn(format="%.3f"),
                       "PQ": st.column_config.NumberColumn(format="%.3f"),
                       "subhalos found": st.column_config.NumberColumn(format="%d"),
                       "subhalos expected": st.column_config.NumberColumn(format="%d")},
    )
    pick_row(table, list(event.selection.rows) if event is not None else [])
    if job is not None and not job.running and state.get("_scoring_seen_running"):
        state["_scoring_seen_running"] = False
        st.rerun(scope="app")  # the job just ended: draw the page once more, without polling
    state["_scoring_seen_running"] = job is not None and job.running


halo_table()
selected = state.get("group_id")
if selected is not None:
    row = halos.loc[halos["group_id"] == selected]
    if len(row):
        row = row.iloc[0]
        st.success(f"Selected group {selected}: {int(row['n_particles']):,} particles, "
                   f"{int(row['n_subhalos'])} subhalos. Open **Compare** to see it in 3D.")

mass_col = "m200_msun_h" if "m200_msun_h" in halos.columns else "mass_msun_h"
plot_left, plot_right = st.columns(2)
with plot_left:
    st.markdown("**Halo mass function** (number of groups above M200)")
    hmf = viz.cumulative_counts(halos[mass_col].to_numpy())
    # y labels as "1k": a long "1,000" pushes the axis title out of the chart
    st.altair_chart(alt.Chart(hmf).mark_line(point=True).encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"),
                  title="M200 [Msun/h]"),
        y=alt.Y("n_above:Q", scale=alt.Scale(type="log"), title="N(>M200)",
                  axis=alt.Axis(format="~s"))), width="stretch")
with plot_right:
    st.markdown("**Subhalos per group**")
    counts = halos["n_subhalos"].to_numpy()
    values, number = np.unique(counts, return_counts=True)
    dist = pd.DataFrame({"subhalos": values, "groups": number})
    st.altair_chart(alt.Chart(dist).mark_bar().encode(
        x=alt.X("subhalos:Q", title="subhalos in the group"), y=alt.Y("groups:Q", title="groups")),
        width="stretch")
