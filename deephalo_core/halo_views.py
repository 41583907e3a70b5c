"""What the Compare page's 3D views show of one halo: the particles drawn, and per view their
colours and roles, packed as a `deephalo_core.scene` data section.

Views, in order: Subfind's labels ("truth", when the source has them), the prediction ("pred",
when there is one), and optionally the agreement classes ("agreement"); with neither labels nor
a prediction, the bare particles ("particles"). Colours follow the labels (one palette, matched
subhalos share a colour) or a scalar (potential, speed) on a viridis ramp.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from deephalo_core import scene, viz
from deephalo_core.agreement import CLASS_COLOURS, CLASS_NAMES, RIGHT

SCALARS = {"potential": "potential [(km/s)²]", "speed": "speed [km/s]"}


def _scalar(halo, colour_by: str) -> np.ndarray | None:
    if colour_by == "potential":
        return halo.potential
    if colour_by == "speed" and halo.vel is not None:
        return viz.speed(halo.vel)
    return None


def halo_views(halo, pred: np.ndarray | None, matches: pd.DataFrame | None, classes: np.ndarray | None,
               budget: int, colour_by: str = "label", agreement: bool = False) -> tuple[list[dict], bytes, dict]:
    """(array descriptors, data section, info) of the views of `halo`.

    `matches` and `classes` are `metrics.match_subhalos` and `agreement.agreement_classes` of
    Subfind's labels and `pred` (None without either). At most `budget` particles are drawn
    (`viz.display_indices`: every small subhalo kept). `info` tells the page what the header
    needs: n (particles drawn), views (kind, highlight_by), radius (what the camera frames),
    colourbar (for a scalar colouring, else None) and legend (for the agreement view, else None).
    """
    truth = halo.labels
    label_arrays = [a for a in (truth, pred) if a is not None] or [np.zeros(halo.n_particles, np.int32)]
    shown = viz.display_indices(budget, *label_arrays)
    info = dict(n=int(len(shown)), colourbar=None, legend=None)
    scalars, values = None, _scalar(halo, colour_by)
    if values is not None:
        scalars, low, high = viz.scalar_colours(np.asarray(values)[shown])
        info["colourbar"] = dict(name=SCALARS[colour_by], low=f"{low:.3g}", high=f"{high:.3g}",
                                 stops=viz.viridis_stops())
    true_map, pred_map = viz.matched_colour_maps(truth, pred if pred is not None else np.empty(0, np.int32), matches)
    views = []
    for kind, labels, colour_map in (("truth", truth, true_map), ("pred", pred, pred_map)):
        if labels is not None:
            rgb = scalars if scalars is not None else viz.colours_for(labels[shown], colour_map)
            views.append((kind, scene.View(kind, rgb, scene.label_roles(labels[shown]), (kind,))))
    if agreement and classes is not None and truth is not None:
        drawn = np.asarray(classes)[shown]
        colours = np.array([CLASS_COLOURS[c] for c in sorted(CLASS_COLOURS)], dtype=np.uint8)
        # agreeing primary and fuzz stay in the background; every disagreement is drawn as a member
        roles = np.where(drawn == RIGHT, scene.label_roles(truth[shown]), scene.MEMBER_ROLE).astype(np.uint8)
        views.append(("agreement", scene.View("agreement", colours[drawn], roles, ("truth", "pred"))))
        info["legend"] = [dict(name=CLASS_NAMES[c], colour=viz.hex_colour(CLASS_COLOURS[c])) for c in CLASS_NAMES]
    if not views:
        white = np.full((len(shown), 3), 235, dtype=np.uint8)
        views.append(("particles", scene.View("particles", white,
                                              np.full(len(shown), scene.MEMBER_ROLE, np.uint8), ())))
    info["views"] = [dict(kind=kind, highlight_by=list(view.highlight_by)) for kind, view in views]
    info["radius"] = scene.extent(halo.pos[shown], halo.center)
    arrays = scene.build_arrays(halo.pos[shown], halo.center, [view for _, view in views],
                                truth[shown] if truth is not None else None,
                                pred[shown] if pred is not None else None)
    descriptors, data = scene.pack_arrays(arrays)
    return descriptors, data, info


def highlight_focus(halo, pred: np.ndarray | None, highlight: dict | None) -> dict | None:
    """Where the camera goes for a highlighted pair {truth: label or None, pred: label or None}:
    the particles of either side, all of them (not only those drawn); None for no highlight."""
    if not highlight:
        return None
    members = np.zeros(halo.n_particles, dtype=bool)
    if highlight.get("truth") is not None and halo.labels is not None:
        members |= halo.labels == highlight["truth"]
    if highlight.get("pred") is not None and pred is not None:
        members |= pred == highlight["pred"]
    return scene.focus(halo.pos, halo.center, members)
