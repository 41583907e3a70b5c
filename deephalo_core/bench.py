"""`python -m deephalo_core bench`: side-by-side speed benchmarks, as ratios measured in one run.

    python -m deephalo_core bench [--json OUT] [--data PATH] [--repeats N] [--quick] [--model SPEC]

- Halo load: our `load_halo` (labels and unwrap included) vs illustris_python's `loadHalo` vs a
  raw h5py slice of the same four fields, largest and typical (median-size) halo; the readers
  take turns within each repeat (deephalo_core.data.timing).
- Inference: the default model vs the hdbscan baseline on the same halos, particles per second
  including features and graph building (Method.predict), the two taking turns per halo.
- Training: seconds per epoch of the default model vs the seed model, same data and halos
  (`python -m deephalo_core train` in this process, one or two epochs each).
- Whole-snapshot predict vs SUBFIND (`--real PATH`, default the shipped GADGET-4 sample): the
  `predict` command on each output of a real snapshot whose SUBFIND time is known (GADGET-4's own
  log, 2 MPI ranks on 2 cores), as a fresh process (interpreter, imports and all) and again in this
  process once the imports are warm (SUBFIND's time, too, leaves out the code's start-up and the
  snapshot's reading); ours, SUBFIND's and the ratio.
- App: the Compare page's server-side work for the largest halo: load, predict, the analysis
  (matching, scores, agreement classes) and the packed scene the browser draws.

Machines here are shared and noisy, so each figure is a ratio of runs made side by side, and times
are medians over repeats. GPU rows appear only where CUDA is present. A piece that is missing
(no shipped model, a source that is not a chunked snapshot) is an "n/a: reason" row.
"""
import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deephalo_core import paths
from deephalo_core.atomic import write_json
from deephalo_core.errors import DataError

TARGETS = {"load_vs_illustris": 1.0, "load_vs_raw": 1.3, "inference_speedup": 2.0,
           "speedup_vs_subfind": 2.0}
# GADGET-4's SUBFIND (density, unbinding, SO masses, ordering) on the shipped sample's outputs, from
# its own log on 2 MPI ranks of a 2-core machine (assets/sample/README.md); an output is known by
# (FoF groups, particles in them).
SUBFIND_SECONDS = {(318, 127_668): 5.74,  # output 001, z = 0
                   (356, 87_817): 4.00}  # output 000, z = 1


def na(reason: str) -> dict:
    return {"status": "n/a", "reason": reason}


def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_avg_1min": round(os.getloadavg()[0], 2)}
    return info


def default_data() -> Path:
    """The embedded snapshot, generated first when it is not there yet."""
    path = paths.embedded_snapshot_dir()
    if not (path / "output").is_dir():
        from deephalo_core.synth import generate

        print(f"generating the embedded snapshot in {path} (about a minute) ...", file=sys.stderr)
        generate(path, seed=paths.EMBEDDED_SEED, n_groups=paths.embedded_groups(),
                 n_chunks=paths.EMBEDDED_CHUNKS, progress=False)
    return path


def pick_halos(halos) -> dict:
    """Group ids of the largest halo and of a typical one (the median particle count)."""
    sizes = halos["n_particles"].to_numpy()
    order = np.argsort(sizes, kind="stable")
    return {"largest": int(halos["group_id"].iloc[order[-1]]),
            "typical": int(halos["group_id"].iloc[order[len(order) // 2]])}


def bench_halo_load(data: Path, repeats: int, quick: bool) -> dict:
    from deephalo_core.data import open_simulation
    from deephalo_core.data.timing import time_load_halo

    with open_simulation(data) as sim:
        if sim.kind != "snapshot":
            return na(f"{data} is a {sim.kind}; illustris_python needs a chunked snapshot")
        chosen = pick_halos(sim.halos)
    out = {}
    for name, g in chosen.items():
        r = time_load_halo(data, g, repeats=repeats, min_batch_s=0.0005 if quick else 0.002)
        out[name] = {**r, "target_vs_illustris": TARGETS["load_vs_illustris"],
                     "target_vs_raw": TARGETS["load_vs_raw"]}
    return out


def _inference_halos(halos, quick: bool) -> list[int]:
    """The same halos for every method: quartiles and the 90th percentile of the size
    distribution (the largest is the app row's), one median halo with --quick."""
    sizes = halos["n_particles"].to_numpy()
    order = np.argsort(sizes, kind="stable")
    quantiles = (0.5,) if quick else (0.25, 0.5, 0.75, 0.9)
    picks = {int(order[min(len(order) - 1, int(q * len(order)))]) for q in quantiles}
    return sorted(int(halos["group_id"].iloc[i]) for i in picks)


def time_methods(methods: dict, halos: list, repeats: int) -> dict:
    """Median seconds over `repeats` for each method to segment all `halos`, taking turns per
    halo (rotating which goes first), after one warm-up prediction each."""
    from deephalo_core.methods import timed_predict

    names = list(methods)
    for method in methods.values():
        timed_predict(method, halos[0])
    totals = {name: [] for name in names}
    for r in range(repeats):
        spent = dict.fromkeys(names, 0.0)
        for i, halo in enumerate(halos):
            turn = (r + i) % len(names)
            for name in names[turn:] + names[:turn]:
                spent[name] += timed_predict(methods[name], halo)[1]
        for name in names:
            totals[name].append(spent[name])
    return {name: float(np.median(values)) for name, values in totals.items()}


def bench_inference(data: Path, model: str, repeats: int, quick: bool) -> dict:
    import torch

    from deephalo_core.data import open_simulation
    from deephalo_core.methods import load_method

    try:
        default = load_method(model, device="cpu")
    except DataError as err:
        return na(f"model {model!r} cannot be loaded: {err}")
    baseline = load_method("hdbscan")
    with open_simulation(data) as sim:
        ids = _inference_halos(sim.halos, quick)
        halos = [sim.load_halo(g) for g in ids]
    n = sum(h.n_particles for h in halos)
    seconds = time_methods({"default": default, "hdbscan": baseline}, halos, repeats)
    out = {"halos": ids, "particles": n, "model": model,
           "default_s": seconds["default"], "hdbscan_s": seconds["hdbscan"],
           "default_particles_per_s": n / seconds["default"],
           "hdbscan_particles_per_s": n / seconds["hdbscan"],
           "speedup_vs_hdbscan": seconds["hdbscan"] / seconds["default"],
           "target_speedup": TARGETS["inference_speedup"]}
    if torch.cuda.is_available():
        gpu = load_method(model, device="cuda")
        both = time_methods({"cpu": default, "cuda": gpu}, halos, repeats)
        out["gpu"] = {"device": torch.cuda.get_device_name(0), "cuda_s": both["cuda"],
                      "cpu_s": both["cpu"], "cuda_particles_per_s": n / both["cuda"],
                      "speedup_vs_cpu": both["cpu"] / both["cuda"]}
    else:
        out["gpu"] = na("no GPU on this machine")
    return out


def _train_one_epoch_seconds(data: Path, model: str, out: Path, epochs: int, max_halos: int) -> float:
    """Seconds of the last epoch of a short `train` run (metrics.jsonl 'seconds')."""
    from deephalo_core import train

    argv = ["--data", str(data), "--model", model, "--out", str(out), "--epochs", str(epochs),
            "--max-halos", str(max_halos), "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()):
        code = train.main(argv)
    metrics = out / "metrics.jsonl"
    if code != 0 or not metrics.exists():
        log = (out / "train.log").read_text()[-2000:] if (out / "train.log").exists() else ""
        raise DataError(f"training {model} exited with {code}: {log}")
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return float(rows[-1]["seconds"])


def bench_training(data: Path, quick: bool) -> dict:
    import torch

    from deephalo_core.dataset import load_samples

    epochs, max_halos = (1, 2) if quick else (2, 16)
    load_samples(data, "train", progress=False)  # build the feature cache outside the timing
    out = {"epochs": epochs, "max_halos": max_halos,
           "note": "seconds of the last epoch, training steps plus validation"}
    with tempfile.TemporaryDirectory(prefix="deephalo-bench-") as tmp:
        for model in ("offset-cluster", "seed"):
            try:
                out[f"{model}_s_per_epoch"] = _train_one_epoch_seconds(
                    data, model, Path(tmp) / model, epochs, max_halos)
            except (DataError, ImportError) as err:
                out[f"{model}_s_per_epoch"] = None
                out[f"{model}_error"] = str(err)[:500]
    a, b = out.get("offset-cluster_s_per_epoch"), out.get("seed_s_per_epoch")
    out["seed_over_default"] = b / a if a and b else None
    card = paths.DEFAULT_MODEL_CARD
    wall = None
    if card.exists():
        info = json.loads(card.read_text())
        for section in (info, info.get("training") or {}):
            wall = wall if wall is not None else section.get("wall_seconds")
        wall = wall if isinstance(wall, (int, float)) else None
    out["default_run_wall_s"] = wall if wall is not None else na(
        f"no training wall time in {card}" if card.exists() else f"{card} is missing")
    out["gpu"] = (na("no GPU on this machine") if not torch.cuda.is_available() else
                  {"device": torch.cuda.get_device_name(0),
                   "note": "train ran on CUDA: the figures above are GPU figures"})
    return out


def bench_app(data: Path, model: str) -> dict:
    """Seconds of the Compare page's server-side work for the largest halo, step by step (the
    model itself is loaded once per server, so it is not part of a halo selection; the prediction
    is made afresh, as for a halo nobody has opened yet)."""
    from deephalo_core.agreement import agreement_classes
    from deephalo_core.data import open_simulation
    from deephalo_core.halo_views import halo_views
    from deephalo_core.methods import load_method, timed_predict
    from deephalo_core.metrics import halo_metrics, match_subhalos

    try:
        method = load_method(model)
    except DataError as err:
        return na(f"model {model!r} cannot be loaded: {err}")
    steps = {}
    with open_simulation(data) as sim:
        g = pick_halos(sim.halos)["largest"]
        t0 = time.perf_counter()
        halo = sim.load_halo(g)
        steps["load_s"] = time.perf_counter() - t0
    pred, steps["predict_s"] = timed_predict(method, halo)
    t = time.perf_counter()
    truth = halo.labels
    matches = classes = None
    if truth is not None:
        matches = match_subhalos(truth, pred)
        classes = agreement_classes(truth, pred, matches)
        halo_metrics(truth, pred)
    steps["analysis_s"] = time.perf_counter() - t
    t = time.perf_counter()
    descriptors, payload, info = halo_views(halo, pred, matches, classes, 40_000)
    steps["scene_s"] = time.perf_counter() - t
    total = sum(v for v in steps.values() if isinstance(v, float))
    return {"group_id": g, "n_particles": halo.n_particles, "shown": int(info["n"]), "model": model,
            "payload_bytes": len(payload), **steps, "total_s": total}


def _predict_argv(data: Path, snap: int, model: str, out: Path) -> list[str]:
    return ["--data", str(data), "--snap", str(snap), "--checkpoint", model, "--out", str(out),
            "--no-progress"]


def _predict_cold(data: Path, snap: int, model: str, out: Path) -> tuple[float, float, float]:
    """(wall seconds of `python -m deephalo_core predict` as a fresh process, the seconds it
    reports, the CPU seconds it used on all its threads)."""
    import resource
    import subprocess

    argv = [sys.executable, "-m", "deephalo_core", "predict", *_predict_argv(data, snap, model, out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(argv, cwd=paths.REPO_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise DataError(f"predict exited with {done.returncode}: {done.stderr[-1000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"]), cpu


def _predict_warm(data: Path, snap: int, model: str, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds on all threads) of the predict command run in this process
    (imports already loaded)."""
    from deephalo_core import catalog

    t, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        code = catalog.main(_predict_argv(data, snap, model, out))
    if code != 0:
        raise DataError(f"predict on {data} output {snap} exited with {code}")
    return time.perf_counter() - t, time.process_time() - cpu


def bench_real(real: Path | None, model: str, repeats: int, quick: bool) -> dict:
    """Whole-snapshot predict on each output of a real snapshot beside SUBFIND's time for it."""
    import torch

    from deephalo_core.data import list_outputs, open_simulation

    if real is None or not Path(real).exists():
        return na(f"no real snapshot at {real}: pass --real PATH (a GADGET-4 / AREPO / TNG output)")
    outputs = []
    for info in list_outputs(real):
        with open_simulation(real, snap=info.snap) as sim:
            halos = sim.halos
            key = (len(halos), int(halos["n_particles"].sum()))
        outputs.append((info, key, SUBFIND_SECONDS.get(key)))
    if not outputs:
        return na(f"{real} holds no output with both particles and a catalog")
    known = [o for o in outputs if o[2] is not None] or outputs[-1:]
    rows = []
    with tempfile.TemporaryDirectory(prefix="deephalo-bench-predict-") as tmp:
        for info, (n_groups, n_particles), subfind in known:
            out = Path(tmp) / f"pred-{info.snap:03d}.hdf5"
            try:
                cold = [_predict_cold(real, info.snap, model, out) for _ in range(1 if quick else 3)]
                _predict_warm(real, info.snap, model, out)  # warm-up: imports, first calls
                warm = [_predict_warm(real, info.snap, model, out) for _ in range(max(1, repeats))]
            except DataError as err:
                return na(f"predict failed: {err}")
            cold_wall = float(np.median([c[0] for c in cold]))
            warm_s = float(np.median([w[0] for w in warm]))
            rows.append({"snap": info.snap, "redshift": info.redshift, "n_groups": n_groups,
                         "particles_in_groups": n_particles, "warm_s": warm_s, "cold_wall_s": cold_wall,
                         "cold_reported_s": float(np.median([c[1] for c in cold])),
                         "warm_cpu_s": float(np.median([w[1] for w in warm])),
                         "cold_cpu_s": float(np.median([c[2] for c in cold])),
                         "subfind_s": subfind,
                         "speedup_warm": subfind / warm_s if subfind else None,
                         "speedup_cold": subfind / cold_wall if subfind else None})
    return {"path": str(real), "model": model, "outputs": rows,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "target_speedup": TARGETS["speedup_vs_subfind"],
            "note": "warm: the command in a process whose imports are loaded; cold: a fresh process; "
                    "cpu: CPU seconds on all threads (SUBFIND's 2 ranks had 2 cores for its wall time)"}


def run(data: Path, repeats: int, quick: bool, model: str = "default", real: Path | None = None) -> dict:
    from deephalo_core.data import open_simulation

    with open_simulation(data) as sim:
        size = {"n_particles": sim.header.n_particles, "n_groups": sim.header.n_groups}
    results = {"machine": machine_info(), "data": {"path": str(data), **size},
               "repeats": repeats, "quick": quick}
    sections = (("halo_load", lambda: bench_halo_load(data, repeats, quick)),
                ("inference", lambda: bench_inference(data, model, max(1, repeats // 2), quick)),
                ("training", lambda: bench_training(data, quick)),
                ("real", lambda: bench_real(real, model, repeats, quick)),
                ("app", lambda: bench_app(data, model)))
    for name, fn in sections:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            results[name] = fn()
        except (DataError, ImportError) as err:
            results[name] = na(f"{type(err).__name__}: {err}")
    return results


def _t(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "n/a"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else (
        f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s")


def _x(ratio) -> str:
    return f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else "n/a"


def format_table(r: dict) -> str:
    m = r["machine"]
    lines = [f"DeepHalo Explorer benchmarks on {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
             f"({m['torch_threads']} threads), load average {m['load_avg_1min']}; "
             + (f"GPU: {m['gpu']}" if m["gpu"] else "no GPU on this machine"),
             f"data: {r['data']['path']} ({r['data']['n_particles']:,} particles, "
             f"{r['data']['n_groups']:,} groups); medians over {r['repeats']} repeats", ""]
    load = r["halo_load"]
    lines.append("Halo load (labels + unwrap)   particles      ours  illustris   raw h5py  "
                 "vs illustris (<=1.0x)  vs raw (<=1.3x)")
    if load.get("status") == "n/a":
        lines.append(f"  n/a: {load['reason']}")
    else:
        for name in ("largest", "typical"):
            x = load[name]
            lines.append(f"  {name:8s} (group {x['group_id']:>5}) {x['n_particles']:>10,} "
                         f"{_t(x['ours_s']):>9} {_t(x['illustris_s']):>10} {_t(x['raw_h5py_s']):>10}  "
                         f"{_x(x['ratio_vs_illustris']):>20}  {_x(x['ratio_vs_raw']):>15}")
    lines.append("")
    inf = r["inference"]
    lines.append("Inference (particles/s incl. features + graph)      default     hdbscan  "
                 "default/hdbscan (>=2x)")
    if inf.get("status") == "n/a":
        lines.append(f"  n/a: {inf['reason']}")
    else:
        rates = (f"{inf['default_particles_per_s']:>10,.0f}  "
                 f"{inf['hdbscan_particles_per_s']:>10,.0f}  {_x(inf['speedup_vs_hdbscan']):>22}")
        lines.append(f"  {len(inf['halos'])} halos, {inf['particles']:,} particles, CPU"
                     f"{'':17s}{rates}")
        gpu = inf["gpu"]
        lines.append(f"  GPU: n/a: {gpu['reason']}" if gpu.get("status") == "n/a" else
                     f"  GPU {gpu['device']}: {gpu['cuda_particles_per_s']:,.0f} particles/s, "
                     f"{_x(gpu['speedup_vs_cpu'])} the CPU")
    lines.append("")
    tr = r["training"]
    lines.append("Training (s/epoch)                                  default        seed  "
                 "seed/default")
    if tr.get("status") == "n/a":
        lines.append(f"  n/a: {tr['reason']}")
    else:
        lines.append(f"  {tr['max_halos']} training halos, epoch {tr['epochs']} of {tr['epochs']}"
                     f"{'':19s}{_t(tr['offset-cluster_s_per_epoch']):>10}  {_t(tr['seed_s_per_epoch']):>10}  "
                     f"{_x(tr['seed_over_default']):>12}")
        for model in ("offset-cluster", "seed"):
            if tr.get(f"{model}_error"):
                lines.append(f"  n/a {model}: {tr[model + '_error'][:200]}")
        wall = tr["default_run_wall_s"]
        lines.append("  default training run to its quality target: "
                     + (f"{_t(wall)} (target <= 10 min on 2 CPU cores)" if not isinstance(wall, dict)
                        else f"n/a: {wall['reason']}"))
        gpu = tr["gpu"]
        lines.append(f"  GPU: n/a: {gpu['reason']}" if gpu.get("status") == "n/a" else
                     f"  GPU: {gpu['device']} ({gpu['note']})")
    lines.append("")
    real = r.get("real", na("not run"))
    lines.append("Whole-snapshot predict vs SUBFIND (GADGET-4's log, 2 ranks on 2 cores)        ours  "
                 "SUBFIND  SUBFIND/ours (>=2x)")
    if real.get("status") == "n/a":
        lines.append(f"  n/a: {real['reason']}")
    else:
        for o in real["outputs"]:
            where = (f"  output {o['snap']:03d} (z = {o['redshift']:.2f}), {o['n_groups']} groups, "
                     f"{o['particles_in_groups']:,} particles")
            for kind, key, ratio, cpu in (("warm", "warm_s", "speedup_warm", "warm_cpu_s"),
                                          ("cold", "cold_wall_s", "speedup_cold", "cold_cpu_s")):
                lines.append(f"{where:58s} {kind} {_t(o[key]):>8} {_t(o['subfind_s']):>8}  "
                             f"{_x(o[ratio]):>18}   (CPU {_t(o[cpu])})")
        lines.append(f"  ({real['device']}; warm: imports loaded, as SUBFIND inside a running code; "
                     "cold: a fresh `python -m deephalo_core predict`)")
    lines.append("")
    app = r["app"]
    if app.get("status") == "n/a":
        lines.append(f"App (Compare, largest halo): n/a: {app['reason']}")
    else:
        parts = ", ".join(f"{k[:-2]} {_t(v)}" for k, v in app.items()
                          if k.endswith("_s") and k != "total_s")
        lines.append(f"App (Compare, largest halo, group {app['group_id']}, "
                     f"{app['n_particles']:,} particles, {app['shown']:,} drawn): "
                     f"{_t(app['total_s'])} on the server until the scene is ready to send ({parts}; "
                     f"{app['payload_bytes'] / 1e6:.1f} MB)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deephalo_core bench",
                                     description="Side-by-side speed benchmarks (ratios).")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--data", type=Path, help="snapshot (default: the embedded one)")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 7, 3 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, halos and training steps (a smoke run)")
    parser.add_argument("--model", default="default",
                        help="the model to time against the baselines (default: the shipped one)")
    parser.add_argument("--real", type=Path, default=paths.SAMPLE_DIR,
                        help="a real snapshot for predict vs SUBFIND (default: the shipped GADGET-4 sample)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        data = args.data if args.data is not None else default_data()
        results = run(data, repeats, args.quick, args.model, args.real)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.json:
        write_json(args.json, results, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
