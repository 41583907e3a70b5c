"""DeepHalo Explorer: `streamlit run explorer_app.py`.

The entry script only wires the navigation and the sidebar; pages import what they share from the
`explorer` package, never from here.

Every page has an explicit URL path (/halos, /compare, /train, /evaluate), so a pasted link opens
that page with its parameters. Streamlit serves its default page at the root and gives it no name
of its own (a link to the default page's name finds nothing), so the default is a hidden root page
that forwards to /halos, keeping the link's parameters.
"""
import time

import streamlit as st

from deephalo_core import paths
from explorer.sidebar import sidebar
from explorer.state import PAGE_WIDGETS, keep_widget_state

PAGES = {
    "halos": st.Page("pages/halos.py", title="Halos", icon=":material/table_view:", url_path="halos"),
    "compare": st.Page("pages/compare.py", title="Compare", icon=":material/view_in_ar:", url_path="compare"),
    "train": st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    "evaluate": st.Page("pages/evaluate.py", title="Evaluate", icon=":material/leaderboard:",
                        url_path="evaluate"),
}


def home() -> None:
    """The root URL: the Halos page, with whatever parameters the link carried."""
    st.switch_page(PAGES["halos"], query_params=st.query_params.to_dict())


def main() -> None:
    st.session_state["run_started"] = time.perf_counter()  # pages time themselves from here
    st.set_page_config(page_title="DeepHalo Explorer", page_icon=str(paths.ASSETS_DIR / "logo.svg"),
                       layout="wide")
    root = st.Page(home, title="DeepHalo Explorer", url_path="home", default=True, visibility="hidden")
    navigation = st.navigation([root, *PAGES.values()])
    keep_widget_state(*PAGE_WIDGETS)
    sidebar()
    navigation.run()


if __name__ == "__main__":  # streamlit runs the entry script as __main__
    main()
