"""Whole-snapshot prediction (`python -m deephalo_core predict`): layout, resuming, sharding."""
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from deephalo_core import catalog, methods
from deephalo_core.data import open_simulation

REPO = Path(__file__).resolve().parent.parent


def read_catalog(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        out = {name: f[name][()] for name in ("PartType1/PredSubhaloRank", "PartType1/PredSubhaloID",
                                              "Group/GroupFirstSub", "Group/GroupNsubs")}
        out.update({f"Subhalo/{k}": v[()] for k, v in f["Subhalo"].items()})
        out["attrs"] = dict(f["Header"].attrs)
    return out


def run_predict(sim_dir, out, *extra):
    argv = ["--data", str(sim_dir), "--out", str(out), "--no-progress", *extra]
    return catalog.main(argv)


@pytest.fixture(scope="module")
def hdbscan_run(small_sim_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred") / "hdbscan.hdf5"
    assert run_predict(small_sim_dir, out, "--checkpoint", "hdbscan", "--min-particles", "2000",
                       "--block-halos", "3") == 0
    return out


def test_catalog_follows_the_methods_labels_in_snapshot_order(small_sim_dir, hdbscan_run):
    cat = read_catalog(hdbscan_run)
    rank, ids = cat["PartType1/PredSubhaloRank"], cat["PartType1/PredSubhaloID"]
    method = methods.load_method("hdbscan")
    with open_simulation(small_sim_dir) as sim:
        assert len(rank) == len(ids) == sim.header.n_particles
        inside = np.zeros(len(rank), bool)
        predicted = sim.halos[sim.halos["n_particles"] >= 2000]["group_id"].tolist()
        assert 0 < len(predicted) < sim.header.n_groups  # the cut leaves some groups out
        for g in predicted:
            start, stop = sim.group_slice(g)
            labels = method.predict(sim.load_halo(g))
            np.testing.assert_array_equal(rank[start:stop], labels)
            inside[start:stop] = True
            first, n = cat["Group/GroupFirstSub"][g], cat["Group/GroupNsubs"][g]
            assert n == labels.max() + 1
            np.testing.assert_array_equal(ids[start:stop], np.where(labels >= 0, labels + first, -1))
        assert (rank[~inside] == -1).all() and (ids[~inside] == -1).all()
        skipped = sorted(set(range(sim.header.n_groups)) - set(predicted))
        assert (cat["Group/GroupFirstSub"][skipped] == -1).all()
        assert (cat["Group/GroupNsubs"][skipped] == 0).all()
        particle_mass = sim.header.particle_mass
    # The subhalo table agrees with the per-particle ids.
    n_sub = cat["attrs"]["Nsubgroups_Total"]
    length = cat["Subhalo/SubhaloLen"]
    assert len(length) == n_sub == cat["Group/GroupNsubs"].sum() > len(predicted)
    np.testing.assert_array_equal(length, np.bincount(ids[ids >= 0], minlength=n_sub))
    np.testing.assert_allclose(cat["Subhalo/SubhaloMass"], length * particle_mass, rtol=1e-6)
    for s in range(n_sub):
        g = cat["Subhalo/SubhaloGrNr"][s]
        assert cat["Group/GroupFirstSub"][g] + cat["Subhalo/SubhaloRankInGroup"][s] == s
    assert np.all(np.diff(cat["Subhalo/SubhaloGrNr"]) >= 0)
    assert cat["Subhalo/SubhaloPos"].shape == cat["Subhalo/SubhaloVel"].shape == (n_sub, 3)
    assert cat["attrs"]["method"] == "hdbscan"
    assert not list(hdbscan_run.parent.glob("*.tmp*")) and not hdbscan_run.with_name(
        hdbscan_run.name + ".parts").exists()


def test_subhalo_table_positions_and_velocities(small_sim_dir):
    with open_simulation(small_sim_dir) as sim:
        halo = sim.load_halo(0)
    labels = halo.labels
    table = catalog.subhalo_table(halo, labels)
    for r in range(labels.max() + 1):
        members = labels == r
        assert table["length"][r] == members.sum()
        np.testing.assert_allclose(table["vel"][r], halo.vel[members].mean(axis=0), rtol=1e-4,
                                   atol=1e-3)
        np.testing.assert_allclose(table["cm"][r], np.mod(halo.pos[members].mean(axis=0),
                                                          halo.box_size), rtol=1e-5)
        lowest = np.flatnonzero(members)[np.argmin(halo.potential[members])]
        np.testing.assert_allclose(table["pos"][r], np.mod(halo.pos[lowest], halo.box_size),
                                   rtol=1e-6)


class Killed(Exception):
    pass


def test_resume_after_a_kill_redoes_only_unfinished_blocks(small_sim_dir, tmp_path, monkeypatch):
    reference = tmp_path / "whole.hdf5"
    assert run_predict(small_sim_dir, reference, "--checkpoint", "all-primary",
                       "--block-halos", "2") == 0
    real_load = methods.load_method
    calls = {"n": 0, "limit": 5}

    def counting_load(spec, device=None):
        method = real_load(spec, device=device)
        inner = method.predict

        def predict(halo):
            calls["n"] += 1
            if calls["n"] > calls["limit"]:
                raise Killed("simulated kill")
            return inner(halo)

        method.predict = predict
        return method

    monkeypatch.setattr(methods, "load_method", counting_load)
    out = tmp_path / "resumed.hdf5"
    parts = out.with_name(out.name + ".parts")
    with pytest.raises(Killed):
        run_predict(small_sim_dir, out, "--checkpoint", "all-primary", "--block-halos", "2")
    finished = sorted(parts.glob("block-*.npz"))
    assert [p.name for p in finished] == ["block-0000000.npz", "block-0000001.npz"]  # 5th halo died
    assert not out.exists()
    (parts / ".rank0-stale.tmp.npz").write_bytes(b"half a file")  # as a kill mid-write leaves it
    calls.update(n=0, limit=10**9)
    assert run_predict(small_sim_dir, out, "--checkpoint", "all-primary", "--block-halos", "2") == 0
    n_groups = len(read_catalog(reference)["Group/GroupNsubs"])
    assert calls["n"] == n_groups - 4  # the 4 halos of the two finished blocks were not redone
    ours, theirs = read_catalog(out), read_catalog(reference)
    for key in theirs:
        if key != "attrs":
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert not parts.exists() and not list(tmp_path.glob("*.tmp*"))


def test_resume_refuses_other_settings(small_sim_dir, tmp_path, capsys):
    out = tmp_path / "cat.hdf5"
    parts = out.with_name(out.name + ".parts")
    parts.mkdir()
    catalog.write_json(parts / catalog.MANIFEST, {
        "meta": {"data": str(small_sim_dir), "min_particles": 999}, "blocks": [[0]]})
    assert run_predict(small_sim_dir, out, "--checkpoint", "all-primary") == 2
    assert "interrupted run with other settings" in capsys.readouterr().err


def test_bad_inputs_are_clear_errors(small_sim_dir, tmp_path, capsys):
    assert run_predict(tmp_path / "nowhere", tmp_path / "x.hdf5", "--checkpoint", "hdbscan") == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_predict(small_sim_dir, tmp_path / "x.hdf5", "--checkpoint", "no-such-model") == 2
    assert "no model 'no-such-model'" in capsys.readouterr().err


def test_two_ranks_give_the_single_process_catalog(small_sim_dir, tmp_path):
    single = tmp_path / "single.hdf5"
    assert run_predict(small_sim_dir, single, "--checkpoint", "all-primary",
                       "--block-halos", "2") == 0
    sharded = tmp_path / "sharded.hdf5"
    command = [sys.executable, "-m", "deephalo_core", "predict", "--data", str(small_sim_dir),
               "--checkpoint", "all-primary", "--out", str(sharded), "--block-halos", "2",
               "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "WORLD_SIZE": "2"}
    ranks = [subprocess.Popen(command, env={**env, "RANK": str(r)}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]  # rank 0 starts first, so it also waits for rank 1's blocks
    results = [p.communicate(timeout=300) for p in ranks]
    assert [p.returncode for p in ranks] == [0, 0], results
    assert '"world_size": 2' in results[0][0] and results[1][0] == ""
    ours, theirs = read_catalog(sharded), read_catalog(single)
    for key in theirs:
        if key != "attrs":
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert not list(tmp_path.glob("*.tmp*")) and not sharded.with_name(
        sharded.name + ".parts").exists()


def test_plan_blocks_caps_halos_and_particles():
    blocks = catalog.plan_blocks([0, 1, 2, 3, 4, 5], [5000, 10, 10, 10, 10, 10], 3, 100)
    assert blocks == [[0], [1, 2, 3], [4, 5]]
    assert catalog.plan_blocks([], [], 3, 100) == []


def test_predict_takes_the_last_output_unless_told(sample_dir, tmp_path):
    """A GADGET-4 output directory with two outputs: the last one by default, --snap for another;
    the default model's catalog holds, halo by halo, what it predicts for each halo."""
    last, first = tmp_path / "last.hdf5", tmp_path / "first.hdf5"
    assert run_predict(sample_dir, last, "--checkpoint", "default", "--min-particles", "1000") == 0
    assert run_predict(sample_dir, first, "--checkpoint", "all-primary", "--snap", "0") == 0
    method = methods.load_method("default", device="cpu")
    for path, snap in ((last, 1), (first, 0)):
        cat = read_catalog(path)
        with open_simulation(sample_dir, snap=snap) as sim:
            assert cat["attrs"]["snap"] == snap
            assert cat["attrs"]["NumPart_Total"] == sim.header.n_particles
            assert cat["attrs"]["Ngroups_Total"] == sim.header.n_groups
            if path is last:
                big = sim.halos[sim.halos["n_particles"] >= 1000]["group_id"].tolist()
                assert cat["attrs"]["Ngroups_Predicted"] == len(big) > 1
                for g in big:
                    start, stop = sim.group_slice(g)
                    np.testing.assert_array_equal(cat["PartType1/PredSubhaloRank"][start:stop],
                                                  method.predict(sim.load_halo(g)))
