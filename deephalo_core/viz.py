"""Drawing halos: one palette for ground truth and prediction, display subsampling, PyVista scenes.

Colours follow the labels' meaning, not their numbers: ground-truth rank r always gets palette
colour r, a predicted subhalo takes the colour of the ground-truth subhalo it is Hungarian-matched
to, unmatched predictions get extra colours no ground-truth subhalo uses, and fuzz is grey.
"""
from __future__ import annotations

import colorsys
import io
import os
import tempfile
import threading

import numpy as np
import pandas as pd

from deephalo_core.agreement import matched_pairs

# trame-vtklocal (a dependency of trame-pyvista) fetches a VTK WebAssembly bundle from the internet
# whenever a scene is exported; the HTML export stpyvista uses does not need it, and nothing here may
# download at run time. An existing, empty override directory makes it skip the fetch.
_NO_VTK_WASM = os.path.join(tempfile.gettempdir(), "deephalo-no-vtk-wasm")
os.makedirs(_NO_VTK_WASM, exist_ok=True)
os.environ.setdefault("VTK_WASM_DIR_OVERRIDE", _NO_VTK_WASM)

FUZZ_COLOUR = (150, 150, 150)
BACKGROUND = "#10131a"

# Hand-picked, mutually distinct first colours (primary first); further ones come from golden-ratio
# hue steps so that any number of subhalos gets a colour.
_BASE_COLOURS = [
    (66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180),
    (255, 225, 25), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 255, 255),
]


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 RGB colours, the same first colours for every n."""
    colours = list(_BASE_COLOURS[:n])
    hue = 0.11
    while len(colours) < n:
        hue = (hue + 0.618033988749895) % 1.0
        lightness = 0.45 + 0.2 * ((len(colours) // 7) % 2)
        r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.85)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return np.array(colours, dtype=np.uint8).reshape(n, 3)


def hex_colour(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def matched_colour_maps(true_labels: np.ndarray | None, pred_labels: np.ndarray,
                        matches: pd.DataFrame | None, min_iou: float = 0.5) -> tuple[dict, dict]:
    """({true label: rgb}, {pred label: rgb}) sharing one palette.

    `matches` is `deephalo_core.metrics.match_subhalos(true, pred)` (columns true_rank, pred_rank,
    iou). A Hungarian pair shares a colour when its IoU reaches `min_iou` (0.5, the panoptic-quality
    match criterion), so a weak pairing never looks like agreement. Fuzz (-1) is grey in both maps.
    """
    true_ranks = [] if true_labels is None else sorted(int(v) for v in np.unique(true_labels) if v >= 0)
    pred_ranks = sorted(int(v) for v in np.unique(pred_labels) if v >= 0)
    pred_to_true = matched_pairs(matches, min_iou)
    n_true = (max(true_ranks) + 1) if true_ranks else 0
    unmatched = [p for p in pred_ranks if p not in pred_to_true]
    colours = palette(n_true + len(unmatched))
    true_map = {-1: FUZZ_COLOUR, **{t: tuple(int(c) for c in colours[t]) for t in true_ranks}}
    pred_map = {-1: FUZZ_COLOUR}
    for p in pred_ranks:
        if p in pred_to_true:
            pred_map[p] = true_map.get(pred_to_true[p], tuple(int(c) for c in colours[pred_to_true[p]]))
    for j, p in enumerate(unmatched):
        pred_map[p] = tuple(int(c) for c in colours[n_true + j])
    return true_map, pred_map


def colours_for(labels: np.ndarray, colour_map: dict) -> np.ndarray:
    """(N, 3) uint8 colours of each particle from a label -> rgb map (unknown labels grey)."""
    labels = np.asarray(labels)
    keys = np.array(sorted(colour_map), dtype=np.int64)
    table = np.array([colour_map[k] for k in keys], dtype=np.uint8)
    where = np.searchsorted(keys, labels)
    where = np.clip(where, 0, len(keys) - 1)
    out = table[where]
    out[keys[where] != labels] = FUZZ_COLOUR
    return out


def legend(labels: np.ndarray, colour_map: dict) -> pd.DataFrame:
    """One row per label present: label name, particle count, hex colour (fuzz last)."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    rows = []
    for v, c in zip(values.tolist(), counts.tolist()):
        name = "fuzz" if v < 0 else ("primary (rank 0)" if v == 0 else f"rank {v}")
        rows.append(dict(label=v, subhalo=name, particles=c, colour=hex_colour(colour_map.get(v, FUZZ_COLOUR))))
    rows.sort(key=lambda r: (r["label"] < 0, r["label"]))
    return pd.DataFrame(rows, columns=["label", "subhalo", "particles", "colour"])


def display_indices(budget: int, *label_arrays, min_per_group: int = 64, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `budget` particles to draw, keeping every small subhalo visible.

    Particles are grouped by their combination of labels over `label_arrays` (ground truth and
    prediction together, so a small subhalo of either stays in view). Each group keeps up to
    `min_per_group` particles (all of a small group), the rest of the budget is shared in
    proportion to group size. Deterministic for a given seed. The full halo is still what the
    model segments and the metrics score; this only limits what the browser must draw.
    """
    arrays = [np.asarray(a) for a in label_arrays if a is not None]
    if not arrays:
        raise ValueError("display_indices needs at least one label array")
    n = len(arrays[0])
    if budget <= 0:
        raise ValueError(f"display budget must be positive, got {budget}")
    if n <= budget:
        return np.arange(n)
    key = np.stack(arrays, axis=1) if len(arrays) > 1 else arrays[0][:, None]
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.ravel()
    sizes = np.bincount(group)
    floor = min(min_per_group, max(1, budget // max(1, len(sizes))))
    keep = np.minimum(sizes, floor)
    spare = budget - keep.sum()
    if spare > 0:
        extra = sizes - keep
        share = np.floor(extra * (spare / max(1, extra.sum()))).astype(np.int64)
        keep = keep + np.minimum(share, extra)
    rng = np.random.default_rng(seed)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = []
    for g in np.nonzero(keep)[0]:
        members = order[starts[g]:starts[g] + sizes[g]]
        chosen.append(members if keep[g] >= sizes[g] else rng.choice(members, keep[g], replace=False))
    return np.sort(np.concatenate(chosen))


def speed(vel: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(vel, dtype=np.float64), axis=1)


def cumulative_counts(values: np.ndarray, n_bins: int = 30) -> pd.DataFrame:
    """N(>x) on log-spaced x: the form of a (sub)halo mass function. Non-positive values dropped."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return pd.DataFrame({"x": [], "n_above": []})
    edges = np.logspace(np.log10(v.min()), np.log10(v.max()), n_bins)
    # exact ends: log/exp round-off must not push an edge past the largest value (N = 0 breaks
    # a log axis), and a single distinct value gives a single point
    edges = np.unique(np.clip(np.concatenate([[v.min()], edges[1:-1], [v.max()]]), v.min(), v.max()))
    n_above = v.size - np.searchsorted(np.sort(v), edges, side="left")
    return pd.DataFrame({"x": edges, "n_above": n_above})


def build_plotter(pos: np.ndarray, rgb: np.ndarray | None = None, scalars: np.ndarray | None = None,
                  scalar_name: str = "value", cmap: str = "viridis", point_size: float = 3.0,
                  window_size=(560, 480), centre: np.ndarray | None = None, camera=None):
    """An off-screen PyVista Plotter drawing the points, coloured by `rgb` (N,3 uint8) or `scalars`.

    Positions are shifted by `centre` (default: their mean) so the view orbits the halo. Pass the
    same `camera` (a `camera_position`) to two plotters to show both from the same viewpoint.
    """
    import pyvista as pv

    pv.OFF_SCREEN = True
    pos = np.asarray(pos, dtype=np.float64)
    centre = pos.mean(axis=0) if centre is None else np.asarray(centre, dtype=np.float64)
    cloud = pv.PolyData((pos - centre).astype(np.float32))
    plotter = pv.Plotter(off_screen=True, window_size=list(window_size))
    plotter.set_background(BACKGROUND)
    if rgb is not None:
        cloud["rgb"] = np.asarray(rgb, dtype=np.uint8)
        plotter.add_points(cloud, scalars="rgb", rgb=True, point_size=point_size)
    elif scalars is not None:
        cloud[scalar_name] = np.asarray(scalars, dtype=np.float32)
        plotter.add_points(cloud, scalars=scalar_name, cmap=cmap, point_size=point_size,
                           scalar_bar_args=dict(title=scalar_name, color="white"))
    else:
        plotter.add_points(cloud, color="white", point_size=point_size)
    if camera is not None:
        plotter.camera_position = camera
    else:
        plotter.view_isometric()
    return plotter


# How the views draw each particle role: by default the primary is faint and small and fuzz is
# hidden, so the subhalos (drawn full size, opaque, on top) stand out.
PRIMARY_STYLES = {"faint": dict(alpha=0.2, size=0.5), "full": dict(alpha=1.0, size=1.0),
                  "hidden": dict(alpha=0.0, size=0.0)}
FUZZ_STYLE = dict(alpha=0.5, size=0.6)
# viridis at nine evenly spaced stops, for colouring by a scalar without importing matplotlib
_VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                     (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], dtype=np.float64)


def view_style(point_size: float, primary: str = "faint", show_fuzz: bool = False) -> dict:
    """Point sizes (pixels) and opacities of members, primary and fuzz for the 3D views."""
    if primary not in PRIMARY_STYLES:
        raise ValueError(f"primary style {primary!r} is not one of {', '.join(PRIMARY_STYLES)}")
    look = PRIMARY_STYLES[primary]
    return dict(member_size=float(point_size),
                primary_size=max(1.0, point_size * look["size"]), primary_alpha=look["alpha"],
                fuzz_size=max(1.0, point_size * FUZZ_STYLE["size"]),
                fuzz_alpha=FUZZ_STYLE["alpha"] if show_fuzz else 0.0)


def scalar_colours(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(N, 3) uint8 viridis colours of `values` over their 1st-99th percentile range, and that range."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    span = high - low if high > low else 1.0
    t = np.clip((np.nan_to_num(values, nan=low) - low) / span, 0.0, 1.0) * (len(_VIRIDIS) - 1)
    below = np.minimum(t.astype(np.int64), len(_VIRIDIS) - 2)
    frac = (t - below)[:, None]
    rgb = _VIRIDIS[below] * (1 - frac) + _VIRIDIS[below + 1] * frac
    return np.rint(rgb).astype(np.uint8), float(low), float(high)


def viridis_stops() -> list[str]:
    return [hex_colour(c) for c in _VIRIDIS.astype(int)]


def view_plotter(pos: np.ndarray, rgb: np.ndarray, roles: np.ndarray, style: dict,
                 window_size=(1000, 850)):
    """An off-screen PyVista Plotter drawing one view as the browser does: primary and fuzz
    translucent and small (or hidden), members opaque at full size; `pos` already centred."""
    import pyvista as pv

    from deephalo_core.scene import FUZZ_ROLE, MEMBER_ROLE, PRIMARY_ROLE

    pv.OFF_SCREEN = True
    pos = np.asarray(pos, dtype=np.float32)
    roles = np.asarray(roles)
    plotter = pv.Plotter(off_screen=True, window_size=list(window_size))
    plotter.set_background(BACKGROUND)
    for role, alpha, size in ((PRIMARY_ROLE, style["primary_alpha"], style["primary_size"]),
                              (FUZZ_ROLE, style["fuzz_alpha"], style["fuzz_size"]),
                              (MEMBER_ROLE, 1.0, style["member_size"])):
        chosen = roles == role
        if alpha <= 0 or not chosen.any():
            continue
        cloud = pv.PolyData(pos[chosen])
        rgba = np.empty((int(chosen.sum()), 4), dtype=np.uint8)
        rgba[:, :3], rgba[:, 3] = np.asarray(rgb)[chosen], int(round(alpha * 255))
        cloud["rgba"] = rgba
        plotter.add_points(cloud, scalars="rgba", rgba=True, point_size=size)
    plotter.view_isometric()
    return plotter


# VTK's off-screen rendering is not thread-safe, and Streamlit serves downloads from several
# threads at once: one render at a time per process.
_RENDER_LOCK = threading.Lock()


def view_png(pos: np.ndarray, rgb: np.ndarray, roles: np.ndarray, style: dict, window_size=(1000, 850)) -> bytes:
    """PNG bytes of one view drawn as the browser draws it (`view_plotter`), rendered off-screen."""
    with _RENDER_LOCK:
        plotter = view_plotter(pos, rgb, roles, style, window_size)
        try:
            return screenshot_png(plotter)
        finally:
            plotter.close()


def screenshot_png(plotter) -> bytes:
    """The plotter's current view as PNG bytes (off-screen render)."""
    from PIL import Image

    image = plotter.screenshot(None, return_img=True)
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def labels_table(halo, labels: np.ndarray) -> pd.DataFrame:
    """Per-particle table for download: particle id (or index), position, predicted label."""
    labels = np.asarray(labels)
    ids = halo.ids if halo.ids is not None else np.arange(len(labels)) + halo.offset
    frame = pd.DataFrame({"particle_id": ids, "x": halo.pos[:, 0], "y": halo.pos[:, 1],
                          "z": halo.pos[:, 2], "predicted_label": labels.astype(np.int32)})
    if halo.labels is not None:
        frame["subfind_label"] = np.asarray(halo.labels, dtype=np.int32)
    return frame


def labels_csv(halo, labels: np.ndarray) -> bytes:
    return labels_table(halo, labels).to_csv(index=False).encode()


def labels_hdf5(halo, labels: np.ndarray, method_name: str = "") -> bytes:
    """An HDF5 file (bytes) with one dataset per column of `labels_table`, attrs naming the source."""
    import h5py

    table = labels_table(halo, labels)
    handle, path = tempfile.mkstemp(suffix=".hdf5")
    os.close(handle)
    try:
        with h5py.File(path, "w") as f:
            f.attrs["group_id"] = int(halo.group_id)
            f.attrs["method"] = method_name
            f.attrs["label_convention"] = "-1 fuzz, 0 primary subhalo, 1.. subhalo rank by size"
            for column in table.columns:
                f.create_dataset(column, data=table[column].to_numpy())
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.remove(path)
