"""`python -m deephalo_core realism`: does a synthetic snapshot look like a real one?

Halos of matched size (bins of FoF particle count) are compared between real and synthetic
snapshots, each read through `deephalo_core.data.open_simulation`. Per halo:
  satellites          subhalos other than the primary, counted at >= 20 and >= 100 particles
  satellite fraction  group particles in satellites
  fuzz fraction       group particles in no subhalo
  largest satellite   its particles / the primary's (a merger of comparable clumps reads near 1)
  outside R200        group particles beyond R200 (filaments, infall, streams)
  centre offset       |centre of mass within R200 - GroupPos| / R200 (lopsidedness)
  b/a, c/a            axis ratios from the inertia tensor sum d d^T of the particles within R200
  sigma(r)/V200       1-D velocity dispersion about the bulk velocity within R200, in r/R200 shells
and per satellite: m / M_host (particle counts) and d / R200 (its most-bound particle, the first
of its run). V200 = sqrt(G M200 / (a R200)), the physical scale of peculiar velocities, so halos
of any redshift compare. Real halos of several snapshots and runs can be pooled.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from deephalo_core.atomic import atomic_path, write_json
from deephalo_core.errors import DataError
from deephalo_core.physics import virial_velocity

HOST_BINS = ((100, 1_000), (1_000, 3_000), (3_000, 10_000), (10_000, 40_000), (40_000, None))
SIGMA_EDGES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5)  # r / R200 shells of the dispersion profile
MASS_RATIO_GRID = np.geomspace(1e-3, 0.5, 28)  # m / M_host for the cumulative N(>m/M_host)
MIN_SHELL = 10  # particles a shell needs for a dispersion
MASS_CODE_UNIT = 1e10  # catalog masses in the halos table are Msun/h, code units 1e10 Msun/h
MAJOR = 0.3  # a satellite at least this fraction of the primary makes a "major merger" host


def bin_name(lo: int, hi: int | None) -> str:
    return f">={lo:,}" if hi is None else f"{lo:,}-{hi:,}"


# --- per halo -------------------------------------------------------------------------------------

def halo_statistics(halo, time: float = 1.0) -> tuple[dict, list[dict]]:
    """(one row of per-halo statistics, one row per satellite) for a loaded halo with labels.

    time: the scale factor a, to turn the comoving R200 into the physical one for V200."""
    if halo.labels is None:
        raise DataError(f"halo {halo.group_id} has no Subfind labels; realism needs a snapshot "
                        "with its group catalog, not a cutout without subhalo lengths")
    n = halo.n_particles
    labels = np.asarray(halo.labels)
    counts = np.bincount(labels + 1, minlength=2)  # [fuzz, primary, satellite 1, ...]
    sats = counts[2:]
    row = dict(group_id=int(halo.group_id), n_particles=n, satellites_20=int((sats >= 20).sum()),
               satellites_100=int((sats >= 100).sum()), satellite_fraction=sats.sum() / n,
               fuzz_fraction=counts[0] / n,
               largest_satellite=(sats.max() / max(counts[1], 1)) if len(sats) else 0.0)
    d = np.asarray(halo.pos, dtype=np.float64) - np.asarray(halo.center, dtype=np.float64)
    r = np.sqrt((d * d).sum(axis=1))
    r200, m200 = halo.r200, halo.m200 / MASS_CODE_UNIT
    satellite_rows = []
    ranks, first = np.unique(labels, return_index=True)
    for rank, at in zip(ranks, first):
        if rank >= 1:
            satellite_rows.append(dict(group_id=int(halo.group_id), n_host=n,
                                       mass_ratio=counts[rank + 1] / n,
                                       distance=r[at] / r200 if r200 > 0 else np.nan))
    inside = r <= r200
    row.update(outside_r200=float(np.mean(~inside)), centre_offset=np.nan, b_a=np.nan, c_a=np.nan)
    row.update({f"sigma_{i}": np.nan for i in range(len(SIGMA_EDGES) - 1)})
    if not (r200 > 0 and m200 > 0 and inside.sum() >= MIN_SHELL) or halo.vel is None:
        return row, satellite_rows
    d_in = d[inside]
    row["centre_offset"] = float(np.linalg.norm(d_in.mean(axis=0)) / r200)
    axes = np.sqrt(np.maximum(np.linalg.eigvalsh(d_in.T @ d_in / len(d_in))[::-1], 0.0))
    row["b_a"], row["c_a"] = axes[1] / axes[0], axes[2] / axes[0]
    vel = np.asarray(halo.vel, dtype=np.float64)
    dv = vel - vel[inside].mean(axis=0)
    v200 = virial_velocity(m200, time * r200)
    shell = np.digitize(r / r200, SIGMA_EDGES) - 1
    for i in range(len(SIGMA_EDGES) - 1):
        sel = shell == i
        if sel.sum() >= MIN_SHELL:
            row[f"sigma_{i}"] = float(np.sqrt((dv[sel] ** 2).sum(axis=1).mean() / 3.0) / v200)
    return row, satellite_rows


def collect(sim, min_particles: int = HOST_BINS[0][0], progress: bool = True,
            desc: str = "halos") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-halo table, per-satellite table) over every group of `sim` with >= min_particles."""
    halos = sim.halos
    ids = halos["group_id"][halos["n_particles"] >= min_particles].to_numpy()
    rows, satellites = [], []
    for g in tqdm(ids, desc=desc, unit="halo", disable=not progress):
        row, sats = halo_statistics(sim.load_halo(int(g)), sim.header.time)
        row["redshift"] = sim.header.redshift
        rows.append(row)
        satellites += sats
    return pd.DataFrame(rows), pd.DataFrame(satellites, columns=["group_id", "n_host", "mass_ratio",
                                                                 "distance"])


# --- per bin --------------------------------------------------------------------------------------

def _in_bin(n: pd.Series, lo: int, hi: int | None) -> pd.Series:
    return (n >= lo) & (n < hi) if hi is not None else n >= lo


def _nan(value) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def summarise(halos: pd.DataFrame, satellites: pd.DataFrame) -> dict:
    """{bin name: statistics} for each host-size bin (absent bins have halos = 0)."""
    out = {}
    for lo, hi in HOST_BINS:
        h = halos[_in_bin(halos["n_particles"], lo, hi)] if len(halos) else halos
        s = satellites[_in_bin(satellites["n_host"], lo, hi)] if len(satellites) else satellites
        n = len(h)
        stats = dict(halos=n)
        if n:
            distance = s["distance"].dropna().to_numpy() if len(s) else np.zeros(0)
            quart = np.quantile(distance, [0.25, 0.5, 0.75]) if len(distance) else [np.nan] * 3
            ratios = np.sort(s["mass_ratio"].to_numpy()) if len(s) else np.zeros(0)
            stats.update(
                host_particles=float(h["n_particles"].median()),
                satellites_20=float(h["satellites_20"].mean()),
                satellites_per_10k=float((h["satellites_20"] / h["n_particles"]).mean() * 1e4),
                satellites_100=float(h["satellites_100"].mean()),
                n_above_0p01=float((ratios > 0.01).sum() / n),
                n_above_0p1=float((ratios > 0.1).sum() / n),
                satellite_fraction=float(h["satellite_fraction"].mean()),
                fuzz_fraction=float(h["fuzz_fraction"].mean()),
                major_merger_hosts=float((h["largest_satellite"] >= MAJOR).mean()),
                outside_r200=float(h["outside_r200"].mean()),
                centre_offset=_nan(h["centre_offset"].median()),
                b_a=_nan(h["b_a"].median()), c_a=_nan(h["c_a"].median()),
                distance_q25=_nan(quart[0]), distance_median=_nan(quart[1]),
                distance_q75=_nan(quart[2]),
                **{f"sigma_{i}": _nan(h[f"sigma_{i}"].median())
                   for i in range(len(SIGMA_EDGES) - 1)},
                # cumulative satellites per host above each m / M_host of the grid (for the plot)
                shmf=[float(len(ratios) - np.searchsorted(ratios, x, side="right")) / n
                      for x in MASS_RATIO_GRID],
                distances=sorted(float(x) for x in distance),
                shapes=[[float(a), float(b)] for a, b in h[["b_a", "c_a"]].dropna().to_numpy()],
            )
        out[bin_name(lo, hi)] = stats
    return out


STAT_LABELS = {
    "halos": "halos",
    "host_particles": "host particles (median)",
    "satellites_20": "satellites / host (>= 20 particles)",
    "satellites_per_10k": "satellites (>= 20) per 10,000 host particles",
    "satellites_100": "satellites / host (>= 100 particles)",
    "n_above_0p01": "N(> 0.01 M_host) / host",
    "n_above_0p1": "N(> 0.1 M_host) / host",
    "satellite_fraction": "group mass in satellites",
    "fuzz_fraction": "fuzz fraction",
    "major_merger_hosts": f"hosts with a satellite >= {MAJOR:g} primary",
    "outside_r200": "group mass beyond R200",
    "centre_offset": "centre-of-mass offset / R200 (median)",
    "b_a": "b/a within R200 (median)",
    "c_a": "c/a within R200 (median)",
    "distance_q25": "satellite d/R200, 25th percentile",
    "distance_median": "satellite d/R200, median",
    "distance_q75": "satellite d/R200, 75th percentile",
    **{f"sigma_{i}": f"sigma/V200 at r/R200 {a:g}-{b:g} (median)"
       for i, (a, b) in enumerate(zip(SIGMA_EDGES[:-1], SIGMA_EDGES[1:]))},
}


def compare(real: dict, synthetic: dict) -> list[dict]:
    """Rows of (bin, statistic, real, synthetic, synthetic - real) for bins either side has."""
    rows = []
    for name in real:
        a, b = real[name], synthetic.get(name, {"halos": 0})
        if not a["halos"] and not b["halos"]:
            continue
        for key in STAT_LABELS:
            x, y = a.get(key, float("nan")), b.get(key, float("nan"))
            rows.append(dict(bin=name, statistic=key, real=float(x), synthetic=float(y),
                             difference=float(y - x)))
    return rows


def _fmt(v: float, key: str) -> str:
    if not np.isfinite(v):
        return "-"
    if key in ("halos", "host_particles"):
        return f"{v:.0f}"
    return f"{v:+.3f}" if key == "difference" else f"{v:.3f}"


def format_table(rows: list[dict]) -> str:
    """One Markdown table per host-size bin: statistic | real | synthetic | synthetic - real."""
    lines = []
    for name in dict.fromkeys(r["bin"] for r in rows):
        lines += ["", f"host particles {name}", "",
                  "| statistic | real | synthetic | synthetic - real |", "|---|---|---|---|"]
        for r in (r for r in rows if r["bin"] == name):
            diff = "-" if r["statistic"] == "halos" else _fmt(r["difference"], "difference")
            lines.append(f"| {STAT_LABELS[r['statistic']]} | {_fmt(r['real'], r['statistic'])} | "
                         f"{_fmt(r['synthetic'], r['statistic'])} | {diff} |")
    return "\n".join(lines[1:])


# --- plot -----------------------------------------------------------------------------------------

def plot(real: dict, synthetic: dict, path) -> None:
    """A PNG of the comparison (real solid, synthetic dashed, one colour per bin), atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state in a library

    names = [name for name in real if real[name]["halos"] or synthetic[name]["halos"]]
    colours = dict(zip(names, ("#7f7f7f", "#1f77b4", "#2ca02c", "#d62728", "#9467bd")))
    fig = Figure(figsize=(15, 13), layout="constrained")
    ax = fig.subplots(3, 3).ravel()
    sides = (("real", real, "-", "o"), ("synthetic", synthetic, "--", "s"))
    x = np.arange(len(names))
    for side, stats, line, marker in sides:
        for name in names:
            s = stats[name]
            if not s["halos"]:
                continue
            kw = dict(color=colours[name], ls=line)
            ax[0].loglog(MASS_RATIO_GRID, np.maximum(s["shmf"], 1e-3), **kw)
            if s["distances"]:
                ax[4].plot(s["distances"], np.linspace(0, 1, len(s["distances"])), **kw)
            profile = [s[f"sigma_{i}"] for i in range(len(SIGMA_EDGES) - 1)]
            ax[5].plot(0.5 * (np.array(SIGMA_EDGES[:-1]) + SIGMA_EDGES[1:]), profile, marker=marker, **kw)
            if s["shapes"]:
                b_a, c_a = np.array(s["shapes"]).T
                ax[6].scatter(b_a, c_a, color=colours[name], marker=marker, s=14,
                              alpha=0.8 if side == "real" else 0.35)
        for i, (key, title) in enumerate((("satellites_20", "satellites / host (>= 20)"),
                                          ("satellite_fraction", "group mass in satellites"),
                                          ("fuzz_fraction", "fuzz fraction"),
                                          ("outside_r200", "group mass beyond R200"),
                                          ("major_merger_hosts", STAT_LABELS["major_merger_hosts"]))):
            target = ax[[1, 2, 3, 7, 8][i]]
            values = [stats[n].get(key, np.nan) for n in names]
            target.plot(x + (0.08 if side == "synthetic" else -0.08), values, ls=line, marker=marker,
                        color="k" if side == "real" else "#ff7f0e", label=side)
            target.set_title(title)
            target.set_xticks(x, names, rotation=20, fontsize=8)
    ax[0].set(title="cumulative satellites per host", xlabel="m / M_host", ylabel="N(> m/M_host)",
              ylim=(1e-3, None))
    ax[4].set(title="satellite distances (CDF)", xlabel="d / R200", ylabel="fraction", xlim=(0, 2))
    ax[5].set(title="velocity dispersion (median)", xlabel="r / R200", ylabel="sigma / V200")
    ax[6].set(title="host shape within R200", xlabel="b/a", ylabel="c/a", xlim=(0, 1), ylim=(0, 1))
    ax[6].plot([0, 1], [0, 1], color="0.8", lw=0.8)
    for name in names:
        ax[0].plot([], [], color=colours[name], label=name)
    ax[0].plot([], [], color="k", ls="-", label="real")
    ax[0].plot([], [], color="k", ls="--", label="synthetic")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    fig.suptitle("realism: real (solid, circles) vs synthetic (dashed, squares), by host particles")
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)


# --- CLI ------------------------------------------------------------------------------------------

def gather(specs: list[str], snaps: str, progress: bool, side: str):
    """Pooled (per-halo, per-satellite) tables of every chosen snapshot of every source
    (PATH or PATH#SNAPS, as training and evaluation take them)."""
    from deephalo_core.data import open_simulation
    from deephalo_core.dataset import expand_sources, source_label

    halos, satellites = [], []
    for path, snap in expand_sources(specs, snaps):
        with open_simulation(path, snap=snap) as sim:
            h, s = collect(sim, progress=progress, desc=f"{side} {Path(path).name}#{sim.snap}")
        h["source"] = source_label(path, sim.snap)
        halos.append(h)
        satellites.append(s)
    h, s = pd.concat(halos, ignore_index=True), pd.concat(satellites, ignore_index=True)
    if not len(h):
        raise DataError(f"no halos with >= {HOST_BINS[0][0]} particles in the {side} source(s) "
                        f"{', '.join(specs)}: give snapshots that hold FoF groups of that size")
    return h, s


def run(real: list[str], synthetic: list[str], snaps: str = "last", progress: bool = True) -> dict:
    """Summaries of both sides and their comparison rows. snaps: the outputs of `real` paths
    given without #SNAPS ("last", "all" or numbers like 0,1,4); synthetic ones take their last."""
    real_h, real_s = gather(real, snaps, progress, "real")
    synth_h, synth_s = gather(synthetic, "last", progress, "synthetic")
    real_sum, synth_sum = summarise(real_h, real_s), summarise(synth_h, synth_s)
    return dict(real_sources=real, synthetic_sources=synthetic, sigma_edges=list(SIGMA_EDGES),
                mass_ratio_grid=MASS_RATIO_GRID.tolist(), real=real_sum, synthetic=synth_sum,
                rows=compare(real_sum, synth_sum))


def _finite(value):
    """NaN -> None throughout, so the JSON is strict (no bare NaN tokens)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m deephalo_core realism",
                                description="Compare halos of matched size between real and synthetic "
                                "snapshots: subhalo mass function, satellite and fuzz fractions, radial "
                                "distribution, velocity dispersion profile, shapes.")
    p.add_argument("--real", action="append", required=True, metavar="PATH[#SNAPS]",
                   help="real simulation output (repeatable, pooled; #SNAPS: last, all or 0,1,4)")
    p.add_argument("--synthetic", action="append", required=True, metavar="PATH[#SNAPS]",
                   help="synthetic simulation (repeatable, pooled)")
    p.add_argument("--snap", default="last", metavar="SNAPS",
                   help="outputs of --real paths given without #SNAPS: last (default), all, or "
                   "numbers like 0,1,4")
    p.add_argument("--out", type=Path, help="write the plots to this PNG")
    p.add_argument("--json", type=Path, help="write every statistic to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args.real, args.synthetic, str(args.snap), progress=not args.no_progress)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result["rows"]))
    if args.out:
        plot(result["real"], result["synthetic"], args.out)
        print(f"plots: {args.out}")
    if args.json:
        write_json(args.json, _finite(result))
        print(f"statistics: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
