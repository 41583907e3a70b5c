"""The 3D scene the explorer sends to the browser: one binary payload for side-by-side views.

All views of a halo share the particle positions and labels; each view adds one RGBA array whose
alpha byte is the particle's role (primary, fuzz, member), so the browser can draw the primary
faint and subhalo members large without a second copy of the positions. Nothing here renders:
the browser draws the payload with WebGL (explorer/halo_view.js).

Payload layout (little endian): b"DHV1", uint32 header length, the UTF-8 JSON header padded to a
multiple of 4 bytes, then the data section. The header's "arrays" list gives each array's name,
dtype, shape and byte offset from the start of the data section (each offset a multiple of 4).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"DHV1"
PRIMARY_ROLE, FUZZ_ROLE, MEMBER_ROLE = 0, 1, 2
_DTYPES = {"float32": np.float32, "int16": np.int16, "uint8": np.uint8}


@dataclass
class View:
    """One panel: its title, colour per shown particle (N, 3 uint8), role per shown particle, and
    which labels pick its highlighted particles ("truth", "pred" or both)."""
    title: str
    rgb: np.ndarray
    roles: np.ndarray
    highlight_by: tuple[str, ...] = ("truth", "pred")


def label_roles(labels: np.ndarray) -> np.ndarray:
    """Role of each particle from its labels: 0 primary -> PRIMARY_ROLE, -1 fuzz, >= 1 members."""
    labels = np.asarray(labels)
    roles = np.full(labels.shape, MEMBER_ROLE, dtype=np.uint8)
    roles[labels == 0] = PRIMARY_ROLE
    roles[labels < 0] = FUZZ_ROLE
    return roles


def _aligned(blob: bytes) -> bytes:
    return blob + b"\0" * (-len(blob) % 4)


def pack_arrays(arrays: dict[str, np.ndarray]) -> tuple[list[dict], bytes]:
    """(array descriptors, data section) for `arrays` (float32, int16 or uint8 each)."""
    descriptors, parts, offset = [], [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        dtype = array.dtype.name
        if dtype not in _DTYPES:
            raise ValueError(f"scene array {name!r} has dtype {dtype}; use one of {', '.join(_DTYPES)}")
        blob = _aligned(array.tobytes())
        descriptors.append(dict(name=name, dtype=dtype, shape=list(array.shape), offset=offset))
        parts.append(blob)
        offset += len(blob)
    return descriptors, b"".join(parts)


def build_arrays(pos: np.ndarray, centre, views: list[View], truth: np.ndarray | None,
                 pred: np.ndarray | None) -> dict[str, np.ndarray]:
    """The scene's arrays: positions relative to `centre` (float32), labels (int16) and one RGBA
    (role in alpha) per view, every array over the same shown particles."""
    pos = np.asarray(pos, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
    n = len(pos)
    arrays = {"pos": pos.astype(np.float32)}
    for name, labels in (("truth", truth), ("pred", pred)):
        values = np.full(n, -1, dtype=np.int16) if labels is None else \
            np.clip(np.asarray(labels), -1, np.iinfo(np.int16).max).astype(np.int16)
        arrays[name] = values
    for i, view in enumerate(views):
        if len(view.rgb) != n or len(view.roles) != n:
            raise ValueError(f"view {view.title!r} colours {len(view.rgb)} and roles {len(view.roles)} "
                             f"particles, the scene has {n}")
        rgba = np.empty((n, 4), dtype=np.uint8)
        rgba[:, :3] = view.rgb
        rgba[:, 3] = view.roles
        arrays[f"rgba{i}"] = rgba
    return arrays


def encode(header: dict, descriptors: list[dict], data: bytes) -> bytes:
    """The payload: magic, header length, JSON header (with the array descriptors), data section."""
    text = json.dumps({**header, "arrays": descriptors}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    return MAGIC + struct.pack("<I", len(text)) + text + data


def decode(payload: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) from a payload; the inverse of `encode` (the browser does the same)."""
    if payload[:4] != MAGIC:
        raise ValueError("not a halo scene payload (bad magic bytes)")
    (length,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8:8 + length])
    start = 8 + length
    arrays = {}
    for d in header["arrays"]:
        dtype = np.dtype(_DTYPES[d["dtype"]])
        count = int(np.prod(d["shape"])) if d["shape"] else 1
        arrays[d["name"]] = np.frombuffer(payload, dtype=dtype, count=count,
                                          offset=start + d["offset"]).reshape(d["shape"])
    return header, arrays


def extent(pos: np.ndarray, centre, quantile: float = 0.98) -> float:
    """Radius around `centre` holding `quantile` of the points: what the camera frames."""
    pos = np.asarray(pos, dtype=np.float64)
    if not len(pos):
        return 1.0
    radius = float(np.quantile(np.linalg.norm(pos - np.asarray(centre, dtype=np.float64), axis=1), quantile))
    return radius if radius > 0 else 1.0


def focus(pos: np.ndarray, centre, members: np.ndarray) -> dict | None:
    """Where the camera goes to show the particles selected by the boolean mask `members`: their
    median position (relative to `centre`) and a radius holding 90% of them; None if there are none."""
    members = np.asarray(members, dtype=bool)
    if not members.any():
        return None
    chosen = np.asarray(pos, dtype=np.float64)[members] - np.asarray(centre, dtype=np.float64)
    middle = np.median(chosen, axis=0)
    radius = float(np.quantile(np.linalg.norm(chosen - middle, axis=1), 0.9)) if len(chosen) > 1 else 0.0
    return {"centre": [float(v) for v in middle], "radius": max(radius, 1e-3)}
