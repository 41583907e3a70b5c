"""Session helpers every page calls first: the navigation guard, the open simulation, kept widgets."""
import streamlit as st

# the pages' own widget keys, whose values survive visits to other pages
PAGE_WIDGETS = ("filter_particles", "filter_subhalos", "filter_ari", "worst_first", "colour_by", "point_size",
                "display_budget", "primary_style", "show_fuzz", "agreement_view", "eval_models", "eval_split")


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


def keep_widget_state(*keys: str) -> None:
    """Keep a page's widget values while the user visits other pages.

    Streamlit forgets a keyed widget's value after a run in which the widget was not drawn;
    writing the value back as plain session state at the top of the page keeps it.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
