"""Where each FoF group and subhalo starts in the snapshot: computed from lengths, or read from
`postprocessing/offsets/offsets_NNN.hdf5`.

The snapshot is sorted by group, then subhalo, then binding energy, with each group's fuzz after its
last subhalo, so a group starts at the exclusive cumulative sum of GroupLenType and its subhalos
follow one another from the group's start (tng-format.md, "Particle order and offsets").
"""
from pathlib import Path

import h5py
import numpy as np

from deephalo_core.errors import DataError


def exclusive_cumsum(lengths: np.ndarray) -> np.ndarray:
    """Running start index of each row: [0, l0, l0+l1, ...] along axis 0, as int64."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.zeros_like(lengths)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], axis=0, out=starts[1:])
    return starts


def group_offsets(group_len_type: np.ndarray) -> np.ndarray:
    """Group/SnapByType (Ngroups, 6) int64 from GroupLenType (Ngroups, 6)."""
    return exclusive_cumsum(np.asarray(group_len_type).reshape(-1, 6))


def subhalo_offsets(group_snap_by_type: np.ndarray, group_first_sub: np.ndarray,
                    subhalo_len_type: np.ndarray, subhalo_grnr: np.ndarray) -> np.ndarray:
    """Subhalo/SnapByType (Nsubs, 6) int64: the group's start plus the lengths of the subhalos
    before it in the same group (a group's subhalos are consecutive from GroupFirstSub)."""
    subhalo_len_type = np.asarray(subhalo_len_type).reshape(-1, 6)
    if len(subhalo_len_type) == 0:
        return np.zeros((0, 6), dtype=np.int64)
    grnr = np.asarray(subhalo_grnr, dtype=np.int64)
    running = exclusive_cumsum(subhalo_len_type)
    first = np.asarray(group_first_sub, dtype=np.int64)[grnr]
    return np.asarray(group_snap_by_type, dtype=np.int64)[grnr] + running - running[first]


def chunk_starts(counts: np.ndarray) -> np.ndarray:
    """FileOffsets/*: first object (or particle, per type) index of each chunk."""
    return exclusive_cumsum(counts)


def read_offsets_file(path: Path) -> dict:
    """The offsets file's arrays: group (Ngroups,6), subhalo (Nsubs,6), file_group, file_subhalo,
    file_snap (Nchunks,6). Raises DataError naming the file when it is unreadable or incomplete."""
    wanted = {"group": "Group/SnapByType", "subhalo": "Subhalo/SnapByType",
              "file_group": "FileOffsets/Group", "file_subhalo": "FileOffsets/Subhalo",
              "file_snap": "FileOffsets/SnapByType"}
    try:
        with h5py.File(path, "r") as f:
            absent = [name for name in wanted.values() if name not in f]
            if absent:
                raise DataError(
                    f"offsets file {path} lacks {', '.join(absent)}; delete it to have offsets "
                    "computed from the group catalog lengths, or regenerate it")
            return {key: np.asarray(f[name][()], dtype=np.int64) for key, name in wanted.items()}
    except OSError as exc:
        raise DataError(f"offsets file {path} cannot be read as HDF5 ({exc}); it may be truncated "
                        "or corrupt: delete it (offsets are then computed from the catalog) or "
                        "download it again") from exc
