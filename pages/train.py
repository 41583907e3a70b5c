"""Train: launch a training run in the background, watch it live, stop it, browse past runs.

Everything shown is read from the run directories on disk, so the page survives reloads,
navigation and server restarts.
"""
from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from deephalo_core import runs, sources
from deephalo_core.dataset import FEATURE_SETS
from deephalo_core.models import model_names
from deephalo_core.models.seed import LOSSES
from explorer.sidebar import data_argument
from explorer.state import require_navigation

require_navigation()
st.title("Train")
state = st.session_state
source_key = state.get("source_key")

with st.form("new_run"):
    st.markdown("**New training run** on the data source chosen in the sidebar")
    names = model_names()
    row1 = st.columns(4)
    model = row1[0].selectbox("Model", names, key="train_model")
    loss = row1[1].selectbox("Loss (seed model)", ["model default", *LOSSES], key="train_loss")
    epochs = row1[2].number_input("Epochs", 1, 500, None, key="train_epochs", placeholder="model default")
    lr = row1[3].number_input("Learning rate", 1e-6, 1.0, None, format="%.5f", key="train_lr",
                              placeholder="model default")
    row2 = st.columns(4)
    k = row2[0].number_input("k (neighbours)", 1, 64, None, key="train_k", placeholder="model default")
    max_points = row2[1].number_input("Points cap per halo", 100, 1_000_000, None, step=1000,
                                      key="train_max_points", placeholder="no cap")
    features = row2[2].selectbox("Features", ["model default", *FEATURE_SETS], key="train_features",
                                 help="seed: position, velocity, potential (the seed model's default). "
                                      "binding: the same in the halo's physical frame plus energies "
                                      "that do not depend on the potential's zero point (the default "
                                      "model's). seed+subfind adds Subfind's own density and "
                                      "velocity-dispersion fields (an easier task). seed+energy: the "
                                      "earlier synthetic model's, kept to score it.")
    seed = row2[3].number_input("Random seed", 0, 2**31 - 1, 0, key="train_seed")
    submitted = st.form_submit_button("Launch", type="primary")

if submitted:
    if source_key is None:
        st.error(state.get("source_error") or "Open a data source in the sidebar first.")
    elif source_key[0] == sources.CUTOUT:
        st.error("A cutout is one halo and may lack velocities and potentials: train on the shipped "
                 "sample, the synthetic snapshot or a simulation path instead.")
    else:
        config = dict(data=data_argument(source_key), model=model,
                      epochs=None if epochs is None else int(epochs), lr=lr, k=k,
                      max_points=max_points, seed=int(seed),
                      features=None if features == "model default" else features,
                      loss=None if loss == "model default" else loss)
        try:
            run_dir = runs.launch(config)
            state["watched_run"] = str(run_dir)
            st.success(f"Started run {run_dir.name}.")
        except runs.RunBusyError as err:
            st.warning(str(err))


EPOCH_AXIS = alt.X("epoch:Q", axis=alt.Axis(format="d", tickMinStep=1), title="epoch")


def eta_text(seconds) -> str:
    return ", estimating the time left" if seconds is None else f", about {timedelta(seconds=int(seconds))} left"


@st.fragment(run_every="2s")
def live_view():
    """The watched run (the active one, else the latest), refreshed every two seconds from disk."""
    active = runs.active_run()
    history = runs.list_runs()
    if active is not None:
        run_dir = active
    elif state.get("watched_run"):
        run_dir = state["watched_run"]
    elif history:
        run_dir = history[0]["run_dir"]
    else:
        st.info("No training runs yet: fill in the form above and press Launch.")
        return
    info = runs.status(run_dir)
    seen = state.get("_watched_state")
    state["_watched_state"] = (info["run"], info["state"])
    if seen and seen[0] == info["run"] and seen[1] in ("running", "starting") \
            and info["state"] in runs.TERMINAL_STATES:
        st.rerun(scope="app")  # the sidebar's model picker lists the new checkpoint
    st.subheader(f"Run {info['run']}: {info['state']}")
    epochs, epoch = info["epochs"] or 0, int(info["epoch"] or 0)
    if epochs:
        st.progress(min(1.0, epoch / epochs), text=f"epoch {epoch} of {epochs}"
                    + (eta_text(info["eta_seconds"]) if info["state"] == "running" else ""))
    if info["state"] == "failed":
        st.error(f"The run failed: {info['error'] or 'no error message recorded'}")
    elif info["state"] in ("running", "starting"):
        if st.button("Stop", key=f"stop_{info['run']}", disabled=info["stop_requested"]):
            runs.request_stop(run_dir)
            st.info("Stop requested: the run ends after the current step and keeps its last checkpoint.")
    metrics = runs.read_metrics(run_dir)
    if len(metrics):
        losses = [c for c in ("train_loss", "val_loss") if c in metrics]
        scores = [c for c in ("val_matched_iou", "val_pq", "val_ari") if c in metrics]
        left, right = st.columns(2)
        with left:
            long = metrics.melt("epoch", losses, var_name="curve", value_name="loss")
            st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
                x=EPOCH_AXIS, y="loss:Q", color=alt.Color("curve:N", title=None)), width="stretch")
        with right:
            long = metrics.melt("epoch", scores, var_name="metric", value_name="value")
            st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
                x=EPOCH_AXIS, y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("metric:N", title=None)), width="stretch")
    st.code(runs.log_tail(run_dir, 15) or "(no output yet)", language=None)

    if history:
        st.subheader("Run history")
        table = pd.DataFrame([dict(run=r["run"], model=r["model"], state=r["state"],
                                   epochs=f"{r['epoch']}/{r['epochs']}",
                                   val_ari=r["final"].get("val_ari"), val_pq=r["final"].get("val_pq"),
                                   val_matched_iou=r["final"].get("val_matched_iou"),
                                   error=(r["error"] or "")[:200]) for r in history])
        st.dataframe(table, hide_index=True, width="stretch")


live_view()
