"""The sidebar: data source, snapshot and model pickers, mirrored into the URL.

The choices live in st.session_state and in the URL's query parameters (source, path, snap, model,
halo), so a link reproduces the view. What the pages read from st.session_state:
  simulation   the opened Simulation (None when the source could not be read)
  source_key   a hashable (kind, path, snap) naming it, for caches
  source_error the message to show when it could not be read
  model_spec   the method spec for deephalo_core.methods.load_method; model_label its name
  group_id     the selected halo
"""
from pathlib import Path

import streamlit as st

from deephalo_core import paths, runs, sources
from deephalo_core.data import simulation
from deephalo_core.errors import DataError

# source kinds that name their own data; the others need a typed path
PATHLESS_KINDS = (sources.SAMPLE, sources.EMBEDDED)
PATH_HINTS = {
    sources.TNG_PATH: "TNG / GADGET-4 / AREPO output directory, simulation root or snapshot file",
    sources.CUTOUT: "path of a cutout .hdf5 file",
}


def _int_param(params, name: str) -> int | None:
    value = params.get(name, "")
    return int(value) if value.lstrip("-").isdigit() else None


def data_argument(source_key: tuple) -> str:
    """The source as the training and evaluation CLIs take it: PATH, or PATH#SNAP for a chosen output."""
    _, path, snap = source_key
    return path if snap is None else f"{path}#{snap}"


def adopt_url_once() -> None:
    """First run of a session: take the choices a shared link carries."""
    state = st.session_state
    if state.get("_url_adopted"):
        return
    params = st.query_params
    if params.get("source") in sources.KINDS:
        state["source_kind"] = params["source"]
    if params.get("path"):
        state["source_path"] = params["path"]
    if _int_param(params, "snap") is not None:
        state["source_snap"] = _int_param(params, "snap")
    if params.get("model"):
        state["model_spec_wanted"] = params["model"]
    if _int_param(params, "halo") is not None:
        state["group_id"] = _int_param(params, "halo")
    state["_url_adopted"] = True


@st.cache_resource(show_spinner="Opening the snapshot ...", max_entries=4)
def _open(kind: str, typed: str, snap: int | None, mtime: float):
    sim = sources.open_source(kind, typed or None, snap=snap)
    simulation.warm_up_in_background(sim)  # the first large halo then loads without the wait
    return sim


@st.cache_data(show_spinner=False, max_entries=16)
def _outputs(kind: str, typed: str, mtime: float) -> list:
    return list(sources.list_outputs(kind, typed or None))


def _prepare(kind: str) -> None:
    """Make the embedded synthetic snapshot on first use, with a progress bar."""
    if kind == sources.EMBEDDED and not sources.embedded_ready():
        bar = st.progress(0.0, text="Preparing the embedded synthetic snapshot ...")
        sources.ensure_embedded(lambda frac, msg: bar.progress(min(max(frac, 0.0), 1.0), text=msg))
        bar.empty()


def snapshot_label(output) -> str:
    return f"snap {int(output.snap):03d} (z = {float(output.redshift):.2f})"


def _pick_snapshot(kind: str, typed: str, path: Path) -> int | None:
    """The snapshot picker (the last output by default); None when the source lists none."""
    state = st.session_state
    outputs = _outputs(kind, typed, path.stat().st_mtime)
    if not outputs:
        state.pop("source_snap", None)
        return None
    by_snap = {int(o.snap): o for o in outputs}
    snaps = sorted(by_snap)
    if state.get("source_snap") not in by_snap:
        state["source_snap"] = snaps[-1]
    st.selectbox("Snapshot", snaps, format_func=lambda s: snapshot_label(by_snap[s]), key="source_snap",
                 disabled=len(snaps) == 1, help="The simulation's outputs that have both particles and "
                                                "a group catalog; the last one by default.")
    return int(state["source_snap"])


def _resolve_source(kind: str, typed: str) -> None:
    state = st.session_state
    state["simulation"], state["source_error"], state["source_key"] = None, None, None
    try:
        _prepare(kind)
        path = sources.source_path(kind, typed)
        snap = _pick_snapshot(kind, typed, path)
        state["simulation"] = _open(kind, typed if kind not in PATHLESS_KINDS else "", snap,
                                    path.stat().st_mtime)
        state["source_key"] = (kind, str(path), snap)
    except DataError as err:
        state["source_error"] = str(err)
        return
    halos = state["simulation"].halos
    if len(halos) == 0:
        state["source_error"] = f"{sources.describe(kind, typed)} holds no FoF groups"
        state["simulation"] = None
        return
    if state.get("group_id") not in set(halos["group_id"].tolist()):
        state["group_id"] = int(halos.loc[halos["n_particles"].idxmax(), "group_id"])


def _pick_model() -> None:
    state = st.session_state
    choices = runs.model_choices()
    specs = [spec for _, spec in choices]
    wanted = state.pop("model_spec_wanted", None)
    if wanted in specs:
        state["model_spec"] = wanted
    if state.get("model_spec") not in specs:
        state["model_spec"] = "default" if paths.DEFAULT_MODEL.exists() else "hdbscan"
    labels = dict((spec, label) for label, spec in choices)
    st.selectbox("Model", specs, format_func=labels.get, key="model_spec", label_visibility="collapsed")
    state["model_label"] = labels[state["model_spec"]]
    if state["model_spec"] == "default" and not paths.DEFAULT_MODEL.exists():
        st.warning(f"The shipped model {paths.DEFAULT_MODEL.name} is not "
                   "there yet: pick a baseline or a finished training run.")


def _mirror_into_url(kind: str, typed: str) -> None:
    state = st.session_state
    params = {"source": kind, "model": state["model_spec"]}
    if typed:
        params["path"] = typed
    if state.get("source_key") and state["source_key"][2] is not None:
        params["snap"] = str(state["source_key"][2])
    if state.get("group_id") is not None:
        params["halo"] = str(state["group_id"])
    for stale in ("path", "snap"):
        if stale not in params and stale in st.query_params:
            del st.query_params[stale]
    st.query_params.update(params)


def sidebar() -> None:
    state = st.session_state
    adopt_url_once()
    if state.get("source_kind") not in sources.KINDS:
        state["source_kind"] = sources.DEFAULT_KIND
    with st.sidebar:
        logo = paths.ASSETS_DIR / "logo.svg"
        if logo.exists():
            st.logo(str(logo))
        st.subheader("Data source")
        kind = st.radio("Source", list(sources.KINDS), format_func=sources.KINDS.get,
                        key="source_kind", label_visibility="collapsed")
        typed = ""
        if kind not in PATHLESS_KINDS:
            typed = st.text_input("Path", key="source_path", placeholder=PATH_HINTS.get(kind, "path"))
        _resolve_source(kind, typed)
        if state["simulation"] is not None:
            header = state["simulation"].header
            st.caption(f"{len(state['simulation'].halos)} groups, {header.n_particles:,} particles, "
                       f"z = {header.redshift:.2f}")

        st.subheader("Model")
        _pick_model()
        if state.get("group_id") is not None and state["simulation"] is not None:
            st.caption(f"Selected halo: group {state['group_id']}")
    _mirror_into_url(kind, typed)
