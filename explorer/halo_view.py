"""The 3D halo view: a Streamlit component that draws a `deephalo_core.scene` payload with WebGL.

The browser gets the particles as one binary message (no HTML export, no child process) and
draws every view in one canvas with one shared camera, so the views rotate and zoom together.
"""
from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent
_CSS = """
.halo-view { position: relative; width: 100%; min-height: 200px; }
.halo-view canvas { display: block; width: 100%; height: 100%; touch-action: none; cursor: grab; }
.halo-view .overlay { position: absolute; inset: 0; pointer-events: none;
  font: 13px/1.3 "Source Sans Pro", sans-serif; color: #e8e8ec; }
.halo-view .title { position: absolute; top: 6px; padding: 2px 7px; border-radius: 4px;
  background: rgba(0, 0, 0, 0.45); }
.halo-view .colourbar { position: absolute; left: 8px; bottom: 8px; padding: 2px 7px;
  background: rgba(0, 0, 0, 0.45); border-radius: 4px; }
.halo-view .ramp { display: inline-block; width: 120px; height: 10px; margin: 0 6px; vertical-align: middle; }
.halo-view .legend { position: absolute; right: 8px; bottom: 8px; padding: 4px 8px;
  background: rgba(0, 0, 0, 0.55); border-radius: 4px; }
.halo-view .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 50%; }
"""
_component = st.components.v2.component(
    "deephalo.halo_view", js=(_HERE / "halo_view.js").read_text(), css=_CSS, isolate_styles=True)


def halo_view(payload: bytes, key: str = "halo_view") -> None:
    """Draw a scene payload (`deephalo_core.scene.encode`) in the page."""
    _component(data=payload, key=key, width="stretch", height="content")
