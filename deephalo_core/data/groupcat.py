"""FoF + Subfind catalogs: TNG's chunks `output/groups_NNN/fof_subhalo_tab_NNN.K.hdf5`, or any
`outputs.FileSet` (GADGET-4's and AREPO's single file or pieces): names, dtypes, reads.

Catalog fields are small next to the particles (one row per object), so a field is read whole,
across all catalog chunks, and cached.

Names are TNG's. GADGET-4 writes a few differently and is read through them: SubhaloGroupNr
(TNG: SubhaloGrNr), Nsubhalos_ThisFile / Nsubhalos_Total (TNG: Nsubgroups_*). Its catalogs also
carry GroupOffsetType / SubhaloOffsetType (each object's first particle in the snapshot), which
TNG keeps in a separate offsets file.
"""
from pathlib import Path

import numpy as np

from deephalo_core.errors import DataError
from deephalo_core.data.snapshot import open_hdf5

# dtype and shape after the object axis (tng-format.md): counts and indices int32, floats float32.
GROUP_FIELDS = {
    "GroupLen": (np.int32, ()), "GroupLenType": (np.int32, (6,)),
    "GroupMass": (np.float32, ()), "GroupMassType": (np.float32, (6,)),
    "GroupPos": (np.float32, (3,)), "GroupCM": (np.float32, (3,)), "GroupVel": (np.float32, (3,)),
    "Group_M_Crit200": (np.float32, ()), "Group_R_Crit200": (np.float32, ()),
    "Group_M_Mean200": (np.float32, ()), "Group_R_Mean200": (np.float32, ()),
    "Group_M_TopHat200": (np.float32, ()), "Group_R_TopHat200": (np.float32, ()),
    "Group_M_Crit500": (np.float32, ()), "Group_R_Crit500": (np.float32, ()),
    "GroupNsubs": (np.int32, ()), "GroupFirstSub": (np.int32, ()),
}
SUBHALO_FIELDS = {
    "SubhaloLen": (np.int32, ()), "SubhaloLenType": (np.int32, (6,)),
    "SubhaloMass": (np.float32, ()), "SubhaloMassType": (np.float32, (6,)),
    "SubhaloPos": (np.float32, (3,)), "SubhaloCM": (np.float32, (3,)),
    "SubhaloVel": (np.float32, (3,)), "SubhaloSpin": (np.float32, (3,)),
    "SubhaloVelDisp": (np.float32, ()), "SubhaloVmax": (np.float32, ()),
    "SubhaloVmaxRad": (np.float32, ()), "SubhaloHalfmassRad": (np.float32, ()),
    "SubhaloIDMostbound": (np.uint64, ()), "SubhaloGrNr": (np.int32, ()),
    "SubhaloParent": (np.int32, ()),
}
CATALOG_FIELDS = {"Group": GROUP_FIELDS, "Subhalo": SUBHALO_FIELDS}
COUNT_ATTR = {"Group": "Ngroups", "Subhalo": "Nsubgroups"}
GADGET4_COUNT_ATTR = {"Group": "Ngroups", "Subhalo": "Nsubhalos"}
# TNG name -> GADGET-4 name, for the datasets the reader uses
GADGET4_NAMES = {"Subhalo": {"SubhaloGrNr": "SubhaloGroupNr"}}


def groupdir(output_dir: Path, snap: int) -> Path:
    return Path(output_dir) / f"groups_{snap:03d}"


def chunk_path(output_dir: Path, snap: int, chunk: int) -> Path:
    return groupdir(output_dir, snap) / f"fof_subhalo_tab_{snap:03d}.{chunk}.hdf5"


class CatalogCounts:
    """Object counts of a catalog from its `totals` ({"Group": n, "Subhalo": n})."""

    totals: dict

    @property
    def n_groups(self) -> int:
        return self.totals["Group"]

    @property
    def n_subhalos(self) -> int:
        return self.totals["Subhalo"]


class ChunkedCatalog(CatalogCounts):
    """The /Group and /Subhalo tables of a catalog in one file or in pieces; each field read whole
    once, cached. `code` is "GADGET-4" when the names are GADGET-4's, else "AREPO" (TNG's code)."""

    def __init__(self, files):
        self.files = files  # an outputs.FileSet
        self.where = files.where
        with open_hdf5(files.path(0), "group catalog chunk") as f:
            if "Header" not in f:
                raise DataError(f"group catalog chunk {files.path(0)} has no /Header group; it is "
                                "not a FoF/Subfind catalog")
            attrs = f["Header"].attrs
            self.code = "GADGET-4" if "Nsubhalos_Total" in attrs else "AREPO"
            self.count_attr = GADGET4_COUNT_ATTR if self.code == "GADGET-4" else COUNT_ATTR
            self.n_files = int(attrs.get("NumFiles", 1))
            self.totals = {kind: int(attrs.get(f"{self.count_attr[kind]}_Total", 0))
                           for kind in CATALOG_FIELDS}
        self.counts = {kind: [] for kind in CATALOG_FIELDS}
        self._names = {kind: None for kind in CATALOG_FIELDS}
        for k in range(self.n_files):
            path = files.path(k)
            with open_hdf5(path, "group catalog chunk") as f:
                for kind in CATALOG_FIELDS:
                    n = int(f["Header"].attrs.get(f"{self.count_attr[kind]}_ThisFile", 0))
                    self.counts[kind].append(n)
                    if n and self._names[kind] is None:
                        if kind not in f:
                            raise DataError(f"group catalog chunk {path} says it holds {n} "
                                            f"{kind} objects but has no /{kind} group; it is "
                                            "corrupt: download or regenerate it")
                        self._names[kind] = {name: (ds.dtype, ds.shape[1:])
                                             for name, ds in f[kind].items()}
        for kind, counts in self.counts.items():
            if sum(counts) != self.totals[kind]:
                raise DataError(f"group catalog {self.where}: its chunks hold "
                                f"{sum(counts)} {kind} objects but the header says "
                                f"{self.totals[kind]}; a chunk is missing or from another "
                                "snapshot: download or regenerate it")
        self._cache = {}

    def stored_name(self, kind: str, name: str) -> str:
        """The dataset name in the file for a TNG name (GADGET-4 spells a few differently)."""
        alias = GADGET4_NAMES.get(kind, {}).get(name)
        return alias if alias is not None and alias in (self._names[kind] or ()) else name

    def names(self, kind: str) -> set:
        """Dataset names, GADGET-4's mapped to TNG's (SubhaloGroupNr is listed as SubhaloGrNr)."""
        stored = set(self._names[kind] or ())
        renamed = {tng for tng, theirs in GADGET4_NAMES.get(kind, {}).items() if theirs in stored}
        return stored - {GADGET4_NAMES[kind][tng] for tng in renamed} | renamed

    def field(self, kind: str, name: str) -> np.ndarray:
        """The whole /kind/name column over all chunks."""
        key = (kind, name)
        if key in self._cache:
            return self._cache[key]
        if self.totals[kind] == 0:
            dtype, tail = CATALOG_FIELDS[kind].get(name, (np.float32, ()))
            return np.zeros((0,) + tail, dtype=dtype)
        if name not in self.names(kind):
            raise DataError(f"group catalog {self.where} has no {kind}/{name}; it has "
                            f"{sorted(self.names(kind))}")
        stored = self.stored_name(kind, name)
        dtype, tail = self._names[kind][stored]
        out = np.empty((self.totals[kind],) + tuple(tail), dtype=dtype)
        at = 0
        for k, n in enumerate(self.counts[kind]):
            if not n:
                continue
            path = self.files.path(k)
            with open_hdf5(path, "group catalog chunk") as f:
                try:
                    f[kind][stored].read_direct(out, dest_sel=np.s_[at:at + n])
                except (OSError, KeyError, TypeError) as exc:
                    raise DataError(f"reading {kind}/{name} from {path} failed ({exc}); the chunk "
                                    "is probably truncated or corrupt: download or regenerate "
                                    "it") from exc
            at += n
        self._cache[key] = out
        return out

    def close(self):
        self._cache.clear()
