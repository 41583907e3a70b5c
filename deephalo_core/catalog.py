"""Whole-snapshot prediction: every halo segmented, written as a TNG-style HDF5 catalog.

    python -m deephalo_core predict --data PATH --checkpoint FILE --out FILE.hdf5
        [--snap N] [--min-particles N] [--block-halos N] [--block-particles N]

The groups to predict (at least --min-particles particles) are cut into blocks of consecutive
groups (at most --block-halos halos and about --block-particles particles each; a bigger halo is a
block of its own). A finished block is saved atomically as one part file in `FILE.hdf5.parts/`,
so a killed run resumes where it stopped: finished blocks are not redone, and at most one block
per process is lost. Memory stays bounded by the largest halo plus one block of labels.

Under `torchrun --nproc_per_node=N -m deephalo_core predict ...` (or any launcher setting RANK and
WORLD_SIZE) block b belongs to rank b % WORLD_SIZE; rank 0 then waits for every part and
assembles the file, writing each block's particle range in one piece. The blocks are fixed when
the run starts (`manifest.json` in the parts folder), so a resumed run may use another world size.

Output layout (snapshot order, PartType1 only):
  /Header                      attrs: NumPart_Total, Ngroups_Total, Ngroups_Predicted,
                               Nsubgroups_Total, BoxSize, Time, Redshift, HubbleParam, method, ...
  /PartType1/PredSubhaloRank   (N,) int32  rank within its FoF group (0 primary), -1 fuzz / no halo
  /PartType1/PredSubhaloID     (N,) int64  global predicted subhalo id, -1 fuzz / no halo
  /Subhalo/SubhaloLen          (S,) int32
  /Subhalo/SubhaloMass         (S,) float32  1e10 Msun/h
  /Subhalo/SubhaloPos          (S,3) float32 ckpc/h, the member with the lowest potential
  /Subhalo/SubhaloCM           (S,3) float32 ckpc/h, centre of mass
  /Subhalo/SubhaloVel          (S,3) float32 km/s, mean peculiar velocity
  /Subhalo/SubhaloGrNr         (S,) int32  FoF group
  /Subhalo/SubhaloRankInGroup  (S,) int32
  /Group/GroupFirstSub, GroupNsubs (Ngroups,) int32  (-1 / 0 for groups not predicted)
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deephalo_core.atomic import save_npz, write_json
from deephalo_core.data import open_simulation
from deephalo_core.data.write import atomic_hdf5
from deephalo_core.errors import DataError

TABLE_KEYS = ("length", "mass", "pos", "cm", "vel")
MANIFEST = "manifest.json"


def rank_world() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) from the environment torchrun sets; (0, 1) without it."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise DataError(f"RANK={rank} is not in 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    return rank, world


def subhalo_table(halo, labels: np.ndarray) -> dict:
    """Per predicted subhalo (label 0..max) of one halo: length, mass, position of the member with
    the lowest potential (the centre of mass without potentials), centre of mass, mean velocity."""
    labels = np.asarray(labels)
    members = labels >= 0
    n_sub = int(labels.max()) + 1 if members.any() else 0
    lab = labels[members]
    length = np.bincount(lab, minlength=n_sub)
    safe = np.maximum(length, 1)[:, None]
    pos = np.asarray(halo.pos, dtype=np.float64)[members]
    cm = np.stack([np.bincount(lab, weights=pos[:, a], minlength=n_sub) for a in range(3)], 1) / safe
    vel = np.zeros((n_sub, 3))
    if halo.vel is not None:
        v = np.asarray(halo.vel, dtype=np.float64)[members]
        vel = np.stack([np.bincount(lab, weights=v[:, a], minlength=n_sub) for a in range(3)], 1) / safe
    centre = cm.copy()
    if halo.potential is not None and len(lab):
        order = np.lexsort((np.asarray(halo.potential)[members], lab))  # by label, then potential
        first = np.searchsorted(lab[order], np.arange(n_sub))
        present = length > 0
        centre[present] = pos[order[first[present]]]
    box = halo.box_size
    return dict(length=length.astype(np.int32),
                mass=(length * halo.particle_mass).astype(np.float32),
                pos=np.mod(centre, box).astype(np.float32), cm=np.mod(cm, box).astype(np.float32),
                vel=vel.astype(np.float32))


def plan_blocks(group_ids: list, sizes: list, block_halos: int, block_particles: int) -> list:
    """Consecutive runs of group ids, each at most `block_halos` halos and, unless it is a single
    halo, at most `block_particles` particles."""
    blocks, current, particles = [], [], 0
    for g, n in zip(group_ids, sizes):
        if current and (len(current) >= block_halos or particles + n > block_particles):
            blocks.append(current)
            current, particles = [], 0
        current.append(int(g))
        particles += int(n)
    if current:
        blocks.append(current)
    return blocks


def part_path(parts_dir: Path, index: int) -> Path:
    return parts_dir / f"block-{index:07d}.npz"


def _save_part(path: Path, rank: int, **arrays) -> None:
    """A part file is whole or absent; its temporary name says which rank wrote it."""
    save_npz(path, prefix=f".rank{rank}-", **arrays)


def predict_block(sim, method, groups: list) -> dict:
    """Labels and subhalo tables of the halos of one block, as arrays for its part file. The
    block's halos are segmented together (Method.predict_many batches a model's network)."""
    offsets, counts, n_subs, labels_all = [], [], [], []
    tables = {key: [] for key in TABLE_KEYS}
    halos = [sim.load_halo(int(g)) for g in groups]
    for g, halo, labels in zip(groups, halos, method.predict_many(halos)):
        labels = np.asarray(labels, dtype=np.int32)
        if labels.shape != (halo.n_particles,):
            raise DataError(f"method {method.name} returned {labels.shape} labels for group {g} "
                            f"of {halo.n_particles} particles")
        table = subhalo_table(halo, labels)
        offsets.append(halo.offset)
        counts.append(len(labels))
        n_subs.append(len(table["length"]))
        labels_all.append(labels)
        for key in TABLE_KEYS:
            tables[key].append(table[key])
    return dict(groups=np.asarray(groups, np.int64), offsets=np.asarray(offsets, np.int64),
                counts=np.asarray(counts, np.int64), n_subs=np.asarray(n_subs, np.int64),
                labels=np.concatenate(labels_all).astype(np.int32),
                **{key: np.concatenate(tables[key]) for key in TABLE_KEYS})


def predict_parts(sim, method, blocks: list, parts_dir: Path, rank: int = 0, world: int = 1,
                  progress: bool = True) -> int:
    """Predict this rank's blocks whose part file is missing. Returns the blocks done now."""
    for stale in parts_dir.glob(f".rank{rank}-*.tmp.npz"):  # left by a killed run of this rank
        stale.unlink(missing_ok=True)
    mine = [i for i in range(len(blocks)) if i % world == rank]
    todo = [i for i in mine if not part_path(parts_dir, i).exists()]
    halos = sum(len(blocks[i]) for i in mine)
    bar = tqdm(total=halos, initial=halos - sum(len(blocks[i]) for i in todo), unit="halo",
               desc=f"predict (rank {rank}/{world})", disable=not progress)
    for i in todo:
        _save_part(part_path(parts_dir, i), rank, **predict_block(sim, method, blocks[i]))
        bar.update(len(blocks[i]))
    bar.close()
    return len(todo)


def wait_for_parts(parts_dir: Path, n_blocks: int, poll_s: float = 2.0,
                   timeout_s: float | None = None) -> None:
    """Block until every part file exists (other ranks are still predicting)."""
    started, said = time.monotonic(), False
    while True:
        missing = [i for i in range(n_blocks) if not part_path(parts_dir, i).exists()]
        if not missing:
            return
        if not said:
            print(f"rank 0: waiting for {len(missing)} block(s) from the other ranks "
                  f"(first missing: {part_path(parts_dir, missing[0]).name})", file=sys.stderr)
            said = True
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise DataError(f"{len(missing)} block(s) never appeared in {parts_dir} (first: "
                            f"{part_path(parts_dir, missing[0]).name}); a rank died: rerun the "
                            "same command to resume")
        time.sleep(poll_s)


def assemble(sim, blocks: list, parts_dir: Path, out: Path, meta: dict,
             progress: bool = True) -> dict:
    """Write the final catalog from the part files, one block at a time, then rename it into
    place. Each block's particle range is written in one piece; unwritten rows read as -1."""
    header = sim.header
    n_total, n_groups = header.n_particles, header.n_groups
    first_sub = np.full(n_groups, -1, np.int32)
    nsubs = np.zeros(n_groups, np.int32)
    tables = {key: [] for key in TABLE_KEYS + ("grnr", "rank")}
    next_id = 0
    with atomic_hdf5(out) as f:
        part = f.create_group("PartType1")
        chunk = (max(1, min(n_total, 1 << 20)),)
        rank_ds = part.create_dataset("PredSubhaloRank", (n_total,), np.int32, fillvalue=-1,
                                      chunks=chunk)
        id_ds = part.create_dataset("PredSubhaloID", (n_total,), np.int64, fillvalue=-1,
                                    chunks=chunk)
        for i in tqdm(range(len(blocks)), desc="assemble", unit="block", disable=not progress):
            with np.load(part_path(parts_dir, i)) as p:
                p = {key: p[key] for key in p.files}
            if p["groups"].tolist() != blocks[i]:
                raise DataError(f"{part_path(parts_dir, i)} holds groups other than its block's; "
                                f"the parts folder {parts_dir} is from another run: delete it")
            lo = int(p["offsets"].min())
            hi = int((p["offsets"] + p["counts"]).max())
            ranks = np.full(hi - lo, -1, np.int32)
            ids = np.full(hi - lo, -1, np.int64)
            at = 0
            for g, offset, count, n_sub in zip(p["groups"].tolist(), p["offsets"].tolist(),
                                               p["counts"].tolist(), p["n_subs"].tolist()):
                labels = p["labels"][at:at + count]
                at += count
                ranks[offset - lo:offset - lo + count] = labels
                ids[offset - lo:offset - lo + count] = np.where(labels >= 0, labels + next_id, -1)
                if n_sub:
                    first_sub[g], nsubs[g] = next_id, n_sub
                tables["grnr"].append(np.full(n_sub, g, np.int32))
                tables["rank"].append(np.arange(n_sub, dtype=np.int32))
                next_id += n_sub
            rank_ds[lo:hi] = ranks
            id_ds[lo:hi] = ids
            for key in TABLE_KEYS:
                tables[key].append(p[key])
        sub = f.create_group("Subhalo")
        names = dict(length=("SubhaloLen", np.int32, ()), mass=("SubhaloMass", np.float32, ()),
                     pos=("SubhaloPos", np.float32, (3,)), cm=("SubhaloCM", np.float32, (3,)),
                     vel=("SubhaloVel", np.float32, (3,)), grnr=("SubhaloGrNr", np.int32, ()),
                     rank=("SubhaloRankInGroup", np.int32, ()))
        for key, (name, dtype, tail) in names.items():
            data = (np.concatenate(tables[key]).astype(dtype) if tables[key]
                    else np.zeros((0,) + tail, dtype))
            sub.create_dataset(name, data=data)
        grp = f.create_group("Group")
        grp.create_dataset("GroupFirstSub", data=first_sub)
        grp.create_dataset("GroupNsubs", data=nsubs)
        attrs = f.create_group("Header").attrs
        attrs["NumPart_Total"] = np.int64(n_total)
        attrs["Ngroups_Total"] = np.int64(n_groups)
        attrs["Ngroups_Predicted"] = np.int64(sum(len(b) for b in blocks))
        attrs["Nsubgroups_Total"] = np.int64(next_id)
        attrs["BoxSize"], attrs["Time"] = header.box_size, header.time
        attrs["Redshift"], attrs["HubbleParam"] = header.redshift, header.hubble_param
        attrs["label_convention"] = "-1 fuzz or not in a predicted halo, 0 primary, 1.. by size"
        for key, value in meta.items():
            attrs[key] = value
    return dict(n_halos=sum(len(b) for b in blocks), n_subhalos=next_id, n_particles=n_total)


def _manifest(parts_dir: Path, blocks: list, meta: dict) -> list:
    """The run's blocks: from an earlier, interrupted run when there is one (it must be the same
    data, method and settings), else these ones, saved for later resumes."""
    path = parts_dir / MANIFEST
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["meta"] != meta:
            changed = sorted(k for k in set(meta) | set(saved["meta"])
                             if meta.get(k) != saved["meta"].get(k))
            raise DataError(f"{parts_dir} holds an interrupted run with other settings "
                            f"({', '.join(changed)} differ): rerun with the same arguments to "
                            "resume it, or delete that folder to start over")
        return saved["blocks"]
    write_json(path, {"meta": meta, "blocks": blocks}, indent=None)
    return blocks


def _device(rank: int, world: int) -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()}"
    if world > 1:  # ranks on one machine share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return "cpu"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deephalo_core predict",
                                     description="Predict every halo of a snapshot into an HDF5 "
                                     "catalog (resumable; shardable under torchrun).")
    parser.add_argument("--data", required=True,
                        help="simulation root, output dir or simulation.hdf5")
    parser.add_argument("--checkpoint", required=True,
                        help="model checkpoint (.pt), run directory, 'default', or a baseline "
                        "(all-primary, hdbscan)")
    parser.add_argument("--out", required=True, help="output FILE.hdf5")
    parser.add_argument("--min-particles", type=int, default=20,
                        help="skip FoF groups smaller than this (their particles get -1)")
    parser.add_argument("--block-halos", type=int, default=64,
                        help="at most this many halos per part file (the unit of resuming)")
    parser.add_argument("--block-particles", type=int, default=2_000_000,
                        help="at most about this many particles per part file")
    parser.add_argument("--snap", type=int, default=None,
                        help="output number (default: the last one with particles and a catalog)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.min_particles < 1 or args.block_halos < 1 or args.block_particles < 1:
        parser.error("--min-particles, --block-halos and --block-particles must be at least 1")

    from deephalo_core.methods import load_method

    started = time.perf_counter()
    out = Path(args.out)
    parts_dir = out.with_name(out.name + ".parts")
    try:
        rank, world = rank_world()
        sim = open_simulation(args.data, snap=args.snap)
        method = load_method(args.checkpoint, device=_device(rank, world))
        out.parent.mkdir(parents=True, exist_ok=True)
        parts_dir.mkdir(exist_ok=True)
        halos = sim.halos
        chosen = halos[halos["n_particles"] >= args.min_particles]
        checkpoint = method.checkpoint  # None for a baseline
        meta = dict(data=str(Path(args.data).resolve()), method=method.name,
                    checkpoint=str(checkpoint.resolve()) if checkpoint else args.checkpoint,
                    checkpoint_mtime=checkpoint.stat().st_mtime if checkpoint else 0.0,
                    min_particles=args.min_particles, block_halos=args.block_halos,
                    block_particles=args.block_particles, snap=sim.snap)
        blocks = _manifest(parts_dir, plan_blocks(chosen["group_id"].tolist(),
                                                  chosen["n_particles"].tolist(),
                                                  args.block_halos, args.block_particles), meta)
        progress = not args.no_progress
        predict_parts(sim, method, blocks, parts_dir, rank, world, progress=progress)
        if rank != 0:
            return 0
        wait_for_parts(parts_dir, len(blocks))
        summary = assemble(sim, blocks, parts_dir, out,
                           {k: v for k, v in meta.items() if k != "checkpoint_mtime"},
                           progress=progress)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shutil.rmtree(parts_dir)  # the catalog is complete; the parts were only there for resuming
    seconds = time.perf_counter() - started
    n_in_halos = int(chosen["n_particles"].sum())
    summary.update(out=str(out), seconds=round(seconds, 3), world_size=world,
                   particles_in_halos=n_in_halos,
                   particles_per_second=round(n_in_halos / max(seconds, 1e-9), 1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
