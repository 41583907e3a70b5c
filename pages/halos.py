"""Halos: the snapshot's FoF groups as a sortable, filterable table; a selected row picks the halo."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from deephalo_core import viz
from explorer_app import require_navigation, require_simulation

require_navigation()
st.title("Halos")
state = st.session_state
halos = require_simulation().halos
COLUMNS = {
    "group_id": "group",
    "n_particles": "particles",
    "n_subhalos": "subhalos",
    "fuzz_fraction": "fuzz fraction",
    "m200_msun_h": "M200 [Msun/h]",
    "r200_ckpc_h": "R200 [ckpc/h]",
}
shown = [c for c in COLUMNS if c in halos.columns]


if state.get("_filters_for") != state["source_key"]:  # filters kept from another snapshot: reset
    for key in ("filter_particles", "filter_subhalos"):
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
table = halos.loc[keep, shown].sort_values("n_particles", ascending=False).reset_index(drop=True)
st.caption(f"{len(table)} of {len(halos)} groups match. Click a row to select that halo for the "
           "Compare page; click a column header to sort.")

event = st.dataframe(
    table.rename(columns=COLUMNS), key="halo_table", on_select="rerun", selection_mode="single-row",
    hide_index=True, width="stretch", height=360,
    column_config={"M200 [Msun/h]": st.column_config.NumberColumn(format="%.3e"),
                   "R200 [ckpc/h]": st.column_config.NumberColumn(format="%.1f"),
                   "fuzz fraction": st.column_config.NumberColumn(format="%.3f")},
)
rows = event.selection.rows if event is not None else []
if rows:
    state["group_id"] = int(table.iloc[rows[0]]["group_id"])
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
    st.altair_chart(alt.Chart(hmf).mark_line(point=True).encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"),
                  title="M200 [Msun/h]"),
        y=alt.Y("n_above:Q", scale=alt.Scale(type="log"), title="N(>M200)")), width="stretch")
with plot_right:
    st.markdown("**Subhalos per group**")
    counts = halos["n_subhalos"].to_numpy()
    values, number = np.unique(counts, return_counts=True)
    dist = pd.DataFrame({"subhalos": values, "groups": number})
    st.altair_chart(alt.Chart(dist).mark_bar().encode(
        x=alt.X("subhalos:Q", title="subhalos in the group"), y=alt.Y("groups:Q", title="groups")),
        width="stretch")
