"""Snapshot files (TNG's `output/snapdir_NNN/snap_NNN.K.hdf5` chunks, or any `outputs.FileSet`):
names, dtypes, header, slice reads.

A snapshot is read as one global PartType1 index space spread over chunk files (one chunk for a
single-file output); `ChunkedParticles` maps a global slice onto the chunks it touches and reads
only those rows, keeping the file handles open so repeated halo loads do not reopen files.

TNG chunks store their datasets contiguous and unfiltered (checked on the real cutouts), so a
slice is one run of bytes at a known file offset: those are read with one `os.preadv` on HDF5's
own descriptor straight into the output array, which skips HDF5's per-call selection machinery
(about 3 us of a 5 us small read).
Chunked or filtered datasets go through h5py as usual.
"""
import bisect
import os
from pathlib import Path

import h5py
import numpy as np

from deephalo_core.errors import DataError

DM = "PartType1"

# PartType1 datasets: dtype and shape after the particle axis (tng-format.md).
PARTICLE_FIELDS = {
    "Coordinates": (np.float64, (3,)),
    "Velocities": (np.float32, (3,)),
    "ParticleIDs": (np.uint64, ()),
    "Potential": (np.float32, ()),
    "SubfindDensity": (np.float32, ()),
    "SubfindDMDensity": (np.float32, ()),
    "SubfindHsml": (np.float32, ()),
    "SubfindVelDisp": (np.float32, ()),
}
SUBFIND_FIELDS = ("SubfindDensity", "SubfindDMDensity", "SubfindHsml", "SubfindVelDisp")


def snapdir(output_dir: Path, snap: int) -> Path:
    return Path(output_dir) / f"snapdir_{snap:03d}"


def chunk_path(output_dir: Path, snap: int, chunk: int) -> Path:
    return snapdir(output_dir, snap) / f"snap_{snap:03d}.{chunk}.hdf5"


def open_hdf5(path: Path, what: str) -> h5py.File:
    """h5py.File(path, 'r'), with a DataError naming the file when it is not readable HDF5."""
    try:
        return h5py.File(path, "r")
    except FileNotFoundError as exc:
        raise DataError(f"{what} {path} does not exist; the snapshot is incomplete: copy or "
                        "regenerate the missing file") from exc
    except OSError as exc:
        raise DataError(f"{what} {path} cannot be read as HDF5 ({exc}); it is probably truncated "
                        "or corrupt: download or regenerate it") from exc


def read_points(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """ds[rows] for a 1-D dataset and sorted rows, as one HDF5 point selection (h5py's own fancy
    indexing builds a hyperslab per row, far slower for many rows)."""
    out = np.empty(len(rows), dtype=ds.dtype)
    if len(rows):
        file_space = ds.id.get_space()
        file_space.select_elements(np.asarray(rows, np.uint64).reshape(-1, 1))
        ds.id.read(h5py.h5s.create_simple(out.shape), file_space, out)
    return out


def total_count(header_attrs, part_type: int = 1) -> int:
    """NumPart_Total + (NumPart_Total_HighWord << 32) for one particle type."""
    total = int(np.asarray(header_attrs["NumPart_Total"])[part_type])
    if "NumPart_Total_HighWord" in header_attrs:
        total += int(np.asarray(header_attrs["NumPart_Total_HighWord"])[part_type]) << 32
    return total


class ChunkedParticles:
    """PartType1 of a chunked snapshot, read by global index ranges."""

    def __init__(self, files, chunk_starts: np.ndarray | None = None):
        self.files = files  # an outputs.FileSet
        self.where = files.where
        self._files = {0: open_hdf5(files.path(0), "snapshot chunk")}
        self._datasets = {}
        self._raw = {}  # (chunk, field) -> (fd, byte offset, dtype, tail, row bytes) or None
        self._span = (-1, -1, [])  # the last (start, stop) read and its chunk pieces
        try:
            self._read_layout(chunk_starts)
        except Exception:
            self.close()
            raise

    def _read_layout(self, chunk_starts):
        first = self._files[0]
        if "Header" not in first:
            raise DataError(f"snapshot chunk {first.filename} has no /Header group; it is not a "
                            "snapshot file of TNG, GADGET-4 or AREPO")
        self.header_attrs = dict(first["Header"].attrs)
        # GADGET-4 keeps the cosmology (HubbleParam, Omega0, ...) here rather than in /Header
        self.parameters = dict(first["Parameters"].attrs) if "Parameters" in first else {}
        self.n_chunks = int(self.header_attrs.get("NumFilesPerSnapshot", 1))
        self.n_particles = total_count(self.header_attrs)
        if chunk_starts is None:
            counts = [int(self._file(k)["Header"].attrs["NumPart_ThisFile"][1])
                      for k in range(self.n_chunks)]
            chunk_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            if sum(counts) != self.n_particles:
                raise DataError(
                    f"snapshot {self.where}: its chunks hold {sum(counts)} "
                    f"PartType1 particles but the header says {self.n_particles}; a chunk is "
                    "missing or from another snapshot: regenerate or re-download it")
        self.chunk_starts = np.asarray(chunk_starts, dtype=np.int64).reshape(self.n_chunks)
        self.chunk_ends = np.append(self.chunk_starts[1:], self.n_particles)
        self._bounds = (self.chunk_starts.tolist(), self.chunk_ends.tolist())
        self.fields = self._field_info()

    @property
    def paths(self) -> list[Path]:
        return [self.files.path(k) for k in range(self.n_chunks)]

    def field_attrs(self, field: str) -> dict:
        """Attributes of PartType1/field (a_scaling, to_cgs, ...) in the first non-empty chunk."""
        for k in range(self.n_chunks):
            if self.chunk_ends[k] > self.chunk_starts[k] and field in self.fields:
                return dict(self._dataset(k, field).attrs)
        return {}

    def read_rows(self, field: str, rows: np.ndarray) -> np.ndarray:
        """1-D PartType1/field at the given global rows (sorted, unique): one point read per chunk."""
        rows = np.asarray(rows, dtype=np.int64)
        dtype, tail = self.fields[field]
        out = np.empty((len(rows),) + tuple(tail), dtype=dtype)
        bounds = np.searchsorted(rows, self.chunk_starts.tolist() + [self.n_particles])
        k = 0
        try:
            for k in range(self.n_chunks):
                lo, hi = int(bounds[k]), int(bounds[k + 1])
                if hi > lo:
                    out[lo:hi] = read_points(self._dataset(k, field),
                                             rows[lo:hi] - self.chunk_starts[k])
        except (OSError, KeyError) as exc:
            raise DataError(f"reading PartType1/{field} from {self.files.path(k)} failed ({exc}); "
                            "the file is probably truncated or corrupt: download or regenerate "
                            "it") from exc
        return out

    def _file(self, k: int) -> h5py.File:
        f = self._files.get(k)
        if f is None:
            f = self._files[k] = open_hdf5(self.files.path(k), "snapshot chunk")
        return f

    def _dataset(self, k: int, field: str) -> h5py.Dataset:
        """PartType1/field of chunk k; cached: h5py name lookups cost more than small reads."""
        ds = self._datasets.get((k, field))
        if ds is None:
            ds = self._datasets[(k, field)] = self._file(k)[DM][field]
        return ds

    def _raw_layout(self, k: int, field: str):
        """Where PartType1/field of chunk k lies in its file when it is one contiguous, unfiltered
        run of bytes (else None: h5py reads it)."""
        key = (k, field)
        if key in self._raw:
            return self._raw[key]
        ds = self._dataset(k, field)
        f = self._file(k)
        layout = None
        plist = ds.id.get_create_plist()
        offset = ds.id.get_offset()
        if (hasattr(os, "preadv") and f.driver == "sec2"
                and plist.get_layout() == h5py.h5d.CONTIGUOUS and plist.get_nfilters() == 0
                and offset is not None and not ds.is_virtual and plist.get_external_count() == 0):
            # HDF5's own descriptor of the open file: the bytes are those h5py would read, even
            # if the path has since been replaced. pread leaves its file position alone.
            fd = int(f.id.get_vfd_handle())
            tail = tuple(ds.shape[1:])
            layout = (fd, int(offset), ds.dtype, tail, ds.dtype.itemsize * int(np.prod(tail)))
        self._raw[key] = layout
        return layout

    def _read_chunk(self, k: int, field: str, lo: int, hi: int, out=None) -> np.ndarray:
        """Chunk-local rows [lo, hi) of PartType1/field of chunk k (into `out` when given)."""
        layout = self._raw.get((k, field), False)
        if layout is False:
            layout = self._raw_layout(k, field)
        if layout is None:
            # Plain slicing takes h5py's fast path; read_direct costs ~10x more per call.
            if out is None:
                return self._dataset(k, field)[lo:hi]
            out[...] = self._dataset(k, field)[lo:hi]
            return out
        fd, offset, dtype, tail, row_bytes = layout
        if out is None:
            out = np.empty((hi - lo,) + tail, dtype=dtype)
        want, at = (hi - lo) * row_bytes, offset + lo * row_bytes
        got = os.preadv(fd, [out], at) if want else 0
        if got != want:  # Linux returns at most ~2 GiB per call; a shorter read means truncation
            view = memoryview(out).cast("B")
            while got < want:
                step = os.preadv(fd, [view[got:]], at + got)
                if step <= 0:
                    raise OSError(f"file ends after {got} of {want} bytes from byte {at}")
                got += step
        return out

    def _field_info(self) -> dict:
        """name -> (dtype, tail shape) of each PartType1 dataset, from the first non-empty chunk."""
        for k in range(self.n_chunks):
            if self.chunk_ends[k] > self.chunk_starts[k]:
                f = self._file(k)
                if DM not in f:
                    raise DataError(f"snapshot chunk {f.filename} should hold PartType1 particles "
                                    "(NumPart_ThisFile) but has no /PartType1 group")
                return {name: (ds.dtype, ds.shape[1:]) for name, ds in f[DM].items()}
        return {}

    def _pieces(self, start: int, stop: int) -> list:
        """(chunk, chunk-local lo, hi) of each chunk holding part of global rows [start, stop)."""
        pieces = []
        starts, ends = self._bounds  # plain ints: numpy scalars cost more than small reads here
        for k in range(bisect.bisect_right(ends, start), self.n_chunks):
            lo, hi = max(start, starts[k]), min(stop, ends[k])
            if lo >= stop:
                break
            if hi > lo:
                pieces.append((k, lo - starts[k], hi - starts[k]))
        return pieces

    def read(self, field: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of PartType1/field, reading only the chunks that hold them."""
        if field not in self.fields:
            raise DataError(f"snapshot {self.where} has no PartType1/{field}; it has "
                            f"{sorted(self.fields)}")
        span = self._span  # a halo load reads several fields of one range: map it once
        if span[0] != start or span[1] != stop:
            span = self._span = (start, stop, self._pieces(start, stop))
        pieces, k = span[2], None
        try:
            if len(pieces) == 1:
                k, lo, hi = pieces[0]
                return self._read_chunk(k, field, lo, hi)
            dtype, tail = self.fields[field]
            out = np.empty((stop - start,) + tuple(tail), dtype=dtype)
            at = 0
            for k, lo, hi in pieces:  # each chunk's rows straight into their place in `out`
                self._read_chunk(k, field, lo, hi, out=out[at:at + hi - lo])
                at += hi - lo
            return out
        except (OSError, KeyError) as exc:
            raise DataError(f"reading PartType1/{field} rows {start}..{stop} from "
                            f"{self._file(k).filename} failed ({exc}); the chunk is probably "
                            "truncated or corrupt: download or regenerate it") from exc

    def close(self):
        self._datasets = {}
        self._raw = {}
        for f in self._files.values():
            f.close()
        self._files = {}
