"""DeepHalo Explorer: `streamlit run explorer_app.py`.

The entry page wires the navigation and the sidebar pickers (data source, model). The choices
live in st.session_state and are mirrored into the URL's query parameters, so a link reproduces
the view. The pages read what the sidebar resolved from st.session_state:
  simulation   the opened Simulation (None when the source could not be read)
  source_key   a hashable (kind, path) naming it, for caches
  source_error the message to show when it could not be read
  model_spec   the method spec for deephalo_core.methods.load_method; model_label its name
  group_id     the selected halo
"""
from pathlib import Path

import streamlit as st

from deephalo_core import paths, runs, sources
from deephalo_core.errors import DataError


def require_navigation() -> None:
    """Make sure this run went through the entry script's navigation and sidebar.

    Streamlit treats a `pages/` folder beside the entry script as old-style auto-discovered pages
    until st.navigation first runs in the server process, so a page opened straight from a link
    on a fresh server would run without the sidebar. Each page calls this first: it switches the
    process to st.navigation and reruns through the entry script.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def require_simulation():
    """The Simulation the sidebar opened; without one, say why in the page and stop it there."""
    simulation = st.session_state.get("simulation")
    if simulation is None:
        st.error(st.session_state.get("source_error") or "No data source is open: pick one in the sidebar.")
        st.stop()
    return simulation


# the pages' own widget keys, whose values survive visits to other pages
PAGE_WIDGETS = ("filter_particles", "filter_subhalos", "colour_by", "point_size", "display_budget",
                "eval_models", "eval_split")


def keep_widget_state(*keys: str) -> None:
    """Keep a page's widget values while the user visits other pages.

    Streamlit forgets a keyed widget's value after a run in which the widget was not drawn;
    writing the value back as plain session state at the top of the page keeps it.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _adopt_url_once():
    """First run of a session: take the choices a shared link carries."""
    if st.session_state.get("_url_adopted"):
        return
    params = st.query_params
    if params.get("source") in sources.KINDS:
        st.session_state["source_kind"] = params["source"]
    if params.get("path"):
        st.session_state["source_path"] = params["path"]
    if params.get("model"):
        st.session_state["model_spec_wanted"] = params["model"]
    if params.get("halo", "").lstrip("-").isdigit():
        st.session_state["group_id"] = int(params["halo"])
    st.session_state["_url_adopted"] = True


@st.cache_resource(show_spinner="Opening the snapshot ...", max_entries=4)
def _open(kind: str, path: str, mtime: float):
    return sources.open_source(kind, path or None)


def _resolve_source(kind: str, typed: str) -> None:
    state = st.session_state
    state["simulation"], state["source_error"], state["source_key"] = None, None, None
    try:
        if kind == sources.EMBEDDED and not sources.embedded_ready():
            bar = st.progress(0.0, text="Preparing the embedded synthetic snapshot ...")
            sources.ensure_embedded(lambda frac, msg: bar.progress(min(max(frac, 0.0), 1.0), text=msg))
            bar.empty()
        path = str(sources.source_path(kind, typed))
        state["simulation"] = _open(kind, path if kind != sources.EMBEDDED else "", Path(path).stat().st_mtime)
        state["source_key"] = (kind, path)
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


def sidebar() -> None:
    state = st.session_state
    _adopt_url_once()
    with st.sidebar:
        logo = paths.ASSETS_DIR / "logo.svg"
        if logo.exists():
            st.logo(str(logo))
        st.subheader("Data source")
        kind = st.radio("Source", list(sources.KINDS), format_func=sources.KINDS.get,
                        key="source_kind", label_visibility="collapsed")
        typed = ""
        if kind != sources.EMBEDDED:
            hint = "simulation root, its output/ or simulation.hdf5" if kind == sources.TNG_PATH \
                else "path of a cutout .hdf5 file"
            typed = st.text_input("Path", key="source_path", placeholder=hint)
        _resolve_source(kind, typed)
        if state["simulation"] is not None:
            header = state["simulation"].header
            st.caption(f"{len(state['simulation'].halos)} groups, {header.n_particles:,} particles, "
                       f"z = {header.redshift:.2f}")

        st.subheader("Model")
        choices = runs.model_choices()
        specs = [spec for _, spec in choices]
        wanted = state.pop("model_spec_wanted", None)
        if wanted in specs:
            state["model_spec"] = wanted
        if state.get("model_spec") not in specs:
            state["model_spec"] = "default" if paths.DEFAULT_MODEL.exists() else "hdbscan"
        labels = dict((spec, label) for label, spec in choices)
        st.selectbox("Model", specs, format_func=labels.get, key="model_spec",
                     label_visibility="collapsed")
        state["model_label"] = labels[state["model_spec"]]
        if state["model_spec"] == "default" and not paths.DEFAULT_MODEL.exists():
            st.warning(f"The shipped model {paths.DEFAULT_MODEL.name} is not "
                       "there yet: pick a baseline or a finished training run.")
        if state.get("group_id") is not None and state["simulation"] is not None:
            st.caption(f"Selected halo: group {state['group_id']}")

    params = {"source": kind, "model": state["model_spec"]}
    if typed:
        params["path"] = typed
    if state.get("group_id") is not None:
        params["halo"] = str(state["group_id"])
    if not typed and "path" in st.query_params:
        del st.query_params["path"]
    st.query_params.update(params)


def main() -> None:
    st.set_page_config(page_title="DeepHalo Explorer", page_icon=str(paths.ASSETS_DIR / "logo.svg"),
                       layout="wide")
    pages = [
        st.Page("pages/halos.py", title="Halos", icon=":material/table_view:", default=True),
        st.Page("pages/compare.py", title="Compare", icon=":material/view_in_ar:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/leaderboard:"),
    ]
    navigation = st.navigation(pages)
    keep_widget_state(*PAGE_WIDGETS)
    sidebar()
    navigation.run()


if __name__ == "__main__":  # streamlit runs the entry script as __main__; pages import helpers
    main()
