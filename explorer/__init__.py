"""What the explorer's pages share: session helpers, the sidebar, the 3D halo view component.

`explorer_app.py` (the entry script) only wires the navigation; pages import from here, never from it.
"""
