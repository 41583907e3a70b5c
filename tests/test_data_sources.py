"""The explorer's data sources: the shipped real sample first and default, its outputs listed from
headers, any output opened by number (None: the last)."""
import pytest

import handmade_tng as hm
from deephalo_core import paths, sources
from deephalo_core.data import OutputInfo, list_outputs
from deephalo_core.errors import DataError


def test_sample_is_the_first_and_default_kind():
    assert list(sources.KINDS)[0] == sources.SAMPLE == sources.DEFAULT_KIND == "sample"
    assert set(sources.KINDS) == {"sample", "embedded", "tng", "cutout"}
    for words in ("TNG", "GADGET-4", "AREPO"):
        assert words in sources.KINDS[sources.TNG_PATH]
    assert "GADGET-4" in sources.describe(sources.SAMPLE)


def test_sample_outputs_and_opening(sample_dir):
    assert sources.source_path(sources.SAMPLE, "ignored") == paths.SAMPLE_DIR == sample_dir
    outputs = sources.list_outputs(sources.SAMPLE)
    assert [o.snap for o in outputs] == [0, 1]
    assert outputs[0].redshift == pytest.approx(0.995, abs=1e-3) and outputs[1].time == pytest.approx(1.0)
    with sources.open_source(sources.SAMPLE) as sim:
        assert (sim.snap, sim.kind) == (1, "gadget4")
    with sources.open_source(sources.SAMPLE, snap=0) as sim:
        assert sim.snap == 0 and sim.header.redshift == pytest.approx(outputs[0].redshift)


def test_typed_paths_of_any_code(sample_dir, tmp_path):
    root = hm.write_handmade(tmp_path / "tng")
    assert sources.list_outputs(sources.TNG_PATH, str(root)) == [OutputInfo(99, 0.0, 1.0)]
    assert sources.list_outputs(sources.TNG_PATH, f"  {sample_dir}  ") == list_outputs(sample_dir)
    with sources.open_source(sources.TNG_PATH, str(sample_dir / "snapshot_000.hdf5")) as sim:
        assert sim.snap == 0
    with pytest.raises(DataError, match=r"snapshot 5 is not in .*snapshots there: \[0, 1\]"):
        sources.open_source(sources.TNG_PATH, str(sample_dir), snap=5)
    with pytest.raises(DataError, match=r"type the path of a TNG simulation root, a TNG, GADGET-4 "
                                        r"or AREPO output directory"):
        sources.list_outputs(sources.TNG_PATH, " ")


def test_embedded_outputs_are_listed_without_generating(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path))
    assert not sources.embedded_ready()
    assert sources.list_outputs(sources.EMBEDDED) == [OutputInfo(99, 0.0, 1.0)]
    assert not sources.embedded_ready() and not any(tmp_path.iterdir())


def test_missing_sample_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "SAMPLE_DIR", tmp_path / "gone")
    with pytest.raises(DataError, match=r"the shipped sample is missing from .*gone"):
        sources.list_outputs(sources.SAMPLE)
