"""Evaluate: the evaluation CLI's metrics for chosen models and baselines on one split."""

import altair as alt
import pandas as pd
import streamlit as st

from deephalo_core import runs, sources
from deephalo_core.errors import DataError
from explorer.sidebar import data_argument
from explorer.state import require_navigation, require_simulation

require_navigation()
st.title("Evaluate")
state = st.session_state
source_key = state.get("source_key")
if source_key is None:
    require_simulation()  # says why there is no source and stops the page
if source_key[0] == sources.CUTOUT:
    st.info("A cutout is a single halo without a train/val/test split: evaluate on the embedded "
            "snapshot or a TNG simulation path.")
    st.stop()

SCORES = ["ari", "pq", "sq", "rq", "matched_iou", "completeness_100", "purity_100", "primary_iou"]


@st.cache_data(show_spinner=False, max_entries=64)
def evaluate(spec: str, mtime: float, data_path: str, split: str) -> dict:
    from deephalo_core.evaluate import evaluate as run

    return run(data_path, spec, split=split, progress=False)


choices = runs.model_choices()
labels = dict((spec, label) for label, spec in choices)
default_pick = [s for s in (state.get("model_spec"), "all-primary", "hdbscan") if s in labels]
if "eval_models" in state:  # a kept choice may name a run that is gone
    state["eval_models"] = [spec for spec in state["eval_models"] if spec in labels]
with st.form("evaluate"):
    picked = st.multiselect("Models and baselines", list(labels), default=list(dict.fromkeys(default_pick)),
                            format_func=labels.get, key="eval_models")
    split = st.selectbox("Split", ["test", "val", "train", "all"], key="eval_split")
    go = st.form_submit_button("Evaluate", type="primary")

if go:
    state["eval_request"] = (tuple(picked), split)
request = state.get("eval_request")
if not request:
    st.info("Choose models and a split, then press Evaluate. Results are cached per model, data and split.")
    st.stop()

SIZES = {"all halos": None, "halos of ≥ 100 particles": "ge100", "halos of ≥ 1000 particles": "ge1000"}
size = st.radio("Means over", list(SIZES), horizontal=True, key="eval_size",
                help="Small halos are mostly one primary subhalo, which even all-primary gets right; "
                     "the larger ones hold the satellites.")
rows = []
for spec in request[0]:
    try:
        with st.spinner(f"Evaluating {labels.get(spec, spec)} on the {request[1]} split ..."):
            result = evaluate(spec, runs.model_mtime(spec), data_argument(source_key), request[1])
    except (DataError, FileNotFoundError) as err:
        st.error(f"{labels.get(spec, spec)}: {err}")
        continue
    scores = result if SIZES[size] is None else result.get("by_size", {}).get(SIZES[size], {})
    rows.append({"model": labels.get(spec, spec), **{k: scores.get(k) for k in ["n_halos", *SCORES, "seconds"]}})
if not rows:
    st.stop()

table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch",
             column_config={k: st.column_config.NumberColumn(format="%.3f") for k in SCORES + ["seconds"]})
long = table.melt("model", [s for s in SCORES if s in table], var_name="metric", value_name="value")
st.altair_chart(alt.Chart(long).mark_bar().encode(
    x=alt.X("metric:N", title=None), xOffset="model:N", y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
    color=alt.Color("model:N", title=None)), width="stretch")
st.caption(f"Means over the {size} of the split (n_halos of them); seconds is the wall time of inference per "
           "halo, graph building included.")
