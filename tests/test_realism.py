"""`python -m deephalo_core realism`: per-halo statistics on a hand-built halo with known answers,
bins and the cumulative mass function, and the CLI end to end on small synthetic snapshots."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deephalo_core import realism
from deephalo_core.data.types import Halo
from deephalo_core.errors import DataError
from deephalo_core.physics import virial_velocity

R200, M200 = 200.0, 100.0  # ckpc/h, 1e10 Msun/h
SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample" / "L8750-N64-s181170" / "output"


def handmade_halo(sigma: float = 150.0, seed: int = 0) -> Halo:
    """A Gaussian ellipsoid primary (axes 1 : 0.6 : 0.3) of 20,000 particles, satellites of 150 and
    50 particles whose most-bound particle sits at 0.5 and 1.5 R200, and 300 fuzz particles far out;
    isotropic velocities of dispersion `sigma` everywhere."""
    rng = np.random.default_rng(seed)
    primary = rng.standard_normal((20_000, 3)) * np.array([1.0, 0.6, 0.3]) * 0.3 * R200
    primary = primary[np.linalg.norm(primary, axis=1) < 0.95 * R200][:18_000]
    sat_big = np.array([0.5 * R200, 0, 0]) + rng.normal(0, 2.0, (150, 3))
    sat_big[0] = [0.5 * R200, 0, 0]
    sat_small = np.array([0, 1.5 * R200, 0]) + rng.normal(0, 2.0, (50, 3))
    sat_small[0] = [0, 1.5 * R200, 0]
    fuzz = 2.5 * R200 * np.eye(3)[rng.integers(0, 3, 300)] + rng.normal(0, 5.0, (300, 3))
    pos = np.concatenate([primary, sat_big, sat_small, fuzz])
    labels = np.concatenate([np.zeros(len(primary)), np.full(150, 1), np.full(50, 2),
                             np.full(300, -1)]).astype(np.int32)
    vel = (sigma * rng.standard_normal((len(pos), 3)) + 300.0).astype(np.float32)
    centre = np.array([1000.0, 2000.0, 3000.0])
    return Halo(group_id=4, pos=pos + centre, vel=vel, potential=np.zeros(len(pos), np.float32),
                ids=np.arange(len(pos), dtype=np.uint64), labels=labels,
                subhalo_ids=np.arange(3, dtype=np.int64), center=centre,
                catalog=dict(r200_ckpc_h=R200, m200_msun_h=M200 * 1e10), particle_mass=0.01,
                box_size=35000.0)


def test_halo_statistics_recovers_the_built_halo():
    halo = handmade_halo()
    n = halo.n_particles
    row, satellites = realism.halo_statistics(halo)
    assert row["satellites_20"] == 2 and row["satellites_100"] == 1
    assert row["satellite_fraction"] == pytest.approx(200 / n)
    assert row["fuzz_fraction"] == pytest.approx(300 / n)
    assert row["largest_satellite"] == pytest.approx(150 / 18_000)
    # the fuzz and the small satellite lie beyond R200, the rest inside
    assert row["outside_r200"] == pytest.approx(350 / n)
    assert row["b_a"] == pytest.approx(0.6, abs=0.04) and row["c_a"] == pytest.approx(0.3, abs=0.03)
    assert row["centre_offset"] < 0.02
    assert [s["distance"] for s in satellites] == pytest.approx([0.5, 1.5])
    assert [s["mass_ratio"] for s in satellites] == pytest.approx([150 / n, 50 / n])
    v200 = virial_velocity(M200, R200)
    inner = [row[f"sigma_{i}"] for i in range(4)]
    assert inner == pytest.approx([150.0 / v200] * 4, rel=0.1)


def test_velocity_scale_uses_the_physical_r200():
    """At a = 0.5 the physical R200 is half the comoving one, so V200 grows by sqrt(2) and the
    same velocities read sqrt(2) times smaller in units of V200."""
    now, _ = realism.halo_statistics(handmade_halo(), time=1.0)
    then, _ = realism.halo_statistics(handmade_halo(), time=0.5)
    assert then["sigma_1"] == pytest.approx(now["sigma_1"] / np.sqrt(2.0), rel=1e-6)


def test_halo_without_labels_is_a_data_error():
    halo = handmade_halo()
    halo.labels = None
    with pytest.raises(DataError, match="no Subfind labels"):
        realism.halo_statistics(halo)


def test_summary_bins_and_cumulative_mass_function():
    halos = pd.DataFrame([dict(n_particles=n, satellites_20=k, satellites_100=0,
                               satellite_fraction=0.1, fuzz_fraction=0.02, largest_satellite=ls,
                               outside_r200=0.1, centre_offset=0.05, b_a=0.8, c_a=0.6,
                               **{f"sigma_{i}": 0.7 for i in range(6)})
                          for n, k, ls in ((1_500, 2, 0.5), (2_500, 0, 0.0), (50_000, 1, 0.01))])
    satellites = pd.DataFrame(dict(n_host=[1_500, 1_500, 50_000], mass_ratio=[0.2, 0.005, 0.02],
                                   distance=[0.3, 1.1, 0.8]))
    s = realism.summarise(halos, satellites)
    assert [s[k]["halos"] for k in s] == [0, 2, 0, 0, 1]
    small = s["1,000-3,000"]
    assert small["satellites_20"] == 1.0 and small["major_merger_hosts"] == 0.5
    assert small["host_particles"] == 2_000 and small["satellites_per_10k"] == pytest.approx(
        (2 / 1_500) * 1e4 / 2)
    assert small["n_above_0p01"] == 0.5 and small["n_above_0p1"] == 0.5
    assert small["distance_median"] == pytest.approx(0.7)
    grid = realism.MASS_RATIO_GRID
    assert small["shmf"][0] == 1.0  # both satellites above 1e-3 of the host, over 2 hosts
    assert small["shmf"][int(np.searchsorted(grid, 0.1))] == 0.5
    rows = realism.compare(s, realism.summarise(halos.iloc[:1], satellites.iloc[:2]))
    by_key = {(r["bin"], r["statistic"]): r for r in rows}
    assert by_key[("1,000-3,000", "satellites_20")]["difference"] == pytest.approx(1.0)
    assert ("3,000-10,000", "halos") not in by_key  # empty on both sides: left out


def test_cli_same_snapshot_twice_gives_zero_differences(small_sim_dir, tmp_path, capsys):
    png, out = tmp_path / "plots" / "realism.png", tmp_path / "realism.json"
    code = realism.main(["--real", f"{small_sim_dir}#99", "--synthetic", str(small_sim_dir),
                         "--out", str(png), "--json", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "| satellites / host (>= 20 particles) |" in text and "host particles 1,000-3,000" in text
    result = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert result["rows"]
    for row in result["rows"]:
        if row["real"] is not None and row["statistic"] != "halos":
            assert row["difference"] == 0.0, row
    assert sum(result["real"][k]["halos"] for k in result["real"]) >= 10
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 800
    assert sorted(p.name for p in png.parent.iterdir()) == ["realism.png"]  # no temporary left


def test_cli_bad_path_exits_with_a_message(tmp_path, capsys):
    code = realism.main(["--real", str(tmp_path / "nowhere"), "--synthetic", str(tmp_path),
                         "--no-progress"])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_cli_missing_snapshot_names_the_ones_there(small_sim_dir, capsys):
    code = realism.main(["--real", str(small_sim_dir), "--snap", "5", "--synthetic",
                         str(small_sim_dir), "--no-progress"])
    assert code == 2
    assert "99" in capsys.readouterr().err


def test_real_sample_against_synthetic_pools_outputs_and_shows_differences(small_sim_dir, tmp_path):
    """The shipped GADGET-4 sample, both outputs pooled (z = 1 and 0), against a synthetic
    snapshot: real halos in every bin up to 40,000 particles, small real hosts with few
    satellites, and differences that are not zero."""
    out = tmp_path / "realism.json"
    assert realism.main(["--real", f"{SAMPLE}#all", "--synthetic", str(small_sim_dir),
                         "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    real = result["real"]
    assert real["100-1,000"]["halos"] >= 150 and real["1,000-3,000"]["halos"] >= 20
    assert real["10,000-40,000"]["halos"] >= 1
    assert real["100-1,000"]["satellites_20"] < 0.5  # most small real hosts have no satellite
    assert 0.5 < real["1,000-3,000"]["b_a"] < 0.95
    diffs = [r["difference"] for r in result["rows"]
             if r["statistic"] != "halos" and r["difference"] is not None]
    assert diffs and any(abs(d) > 1e-3 for d in diffs)
