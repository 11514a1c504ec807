import json

import numpy as np
import pytest

from harness.cli import main
from harness.data.prepared.loader import ClipBatches, read_clips
from harness.data.prepared.format import PreparedWriter, check_prepared, open_prepared
from harness.data.topology import MSR20, NTU25, Topology, get_topology
from harness.errors import DataError

pytestmark = pytest.mark.unit


def _write(out, n=6, t_max=12, topology=MSR20, m=1, untrimmed=False, bad=None):
    rng = np.random.default_rng(0)
    with PreparedWriter(out, kind="toy", topology=topology, num_samples=n, max_frames=t_max,
                        num_persons=m, class_names=["a", "b", "c"], untrimmed=untrimmed) as w:
        for i in range(n):
            t = 3 + i
            clip = rng.normal(size=(3, t, topology.num_joints, m)).astype(np.float32)
            if bad == "nan" and i == 2:
                clip[0, 0, 0, 0] = np.nan
            w.set_sample(i, clip, name=f"s{i}", label=-1 if untrimmed else i % 3, subject=i)
            if untrimmed:
                w.add_interval(i, i % 3, 0, 2 if bad != "interval" else t + 5)
        w.add_split("xsub", "train", [0, 1, 2, 3])
        w.add_split("xsub", "test", [4, 5])
    return out


def test_roundtrip_is_memory_mapped_and_described(tmp_path):
    ds = open_prepared(_write(tmp_path / "toy"))
    assert isinstance(ds.data, np.memmap)
    assert ds.data.shape == (6, 3, 12, 20, 1) and ds.lengths.tolist() == [3, 4, 5, 6, 7, 8]
    assert ds.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.split_counts() == {"xsub": {"train": 4, "test": 2}}
    assert ds.topology == MSR20
    assert ds.clip(2).shape == (3, 5, 20, 1)
    assert np.all(ds.data[0, :, 3:] == 0)  # padding stays zero
    assert check_prepared(ds) == []


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match="s2.*NaN"):
        _write(tmp_path / "bad", bad="nan")
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir()]  # no temporary folder left either


def test_interval_beyond_video_is_refused(tmp_path):
    with pytest.raises(DataError, match="outside the video"):
        _write(tmp_path / "iv", untrimmed=True, bad="interval")
    assert not (tmp_path / "iv").exists()


def test_validation_names_the_file(tmp_path):
    out = _write(tmp_path / "toy")
    meta = json.loads((out / "meta.json").read_text())
    meta["format"] = "something-else"
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="meta.json"):
        open_prepared(out)
    with pytest.raises(DataError, match="not a folder"):
        open_prepared(tmp_path / "missing")


def test_check_finds_all_zero_samples(tmp_path):
    out = _write(tmp_path / "toy")
    data = np.load(out / "data.npy", mmap_mode="r+")
    data[1] = 0
    data.flush()
    problems = check_prepared(open_prepared(out))
    assert len(problems) == 1 and "s1" in problems[0] and "zero" in problems[0]


def test_loader_reads_batches_in_order_and_shuffled(tmp_path):
    ds = open_prepared(_write(tmp_path / "toy"))
    idx = ds.indices("xsub", "train")
    batches = list(ClipBatches(ds, idx, batch_size=3))
    assert [b.x.shape[0] for b in batches] == [3, 1]
    assert batches[0].x.shape[2] == 5  # only up to the longest valid length in the batch
    assert batches[0].index.tolist() == [0, 1, 2] and batches[0].labels.tolist() == [0, 1, 2]
    clips, lengths = read_clips(ds, np.array([3, 0]))
    np.testing.assert_array_equal(clips[0, :, :6], ds.data[3, :, :6])
    np.testing.assert_array_equal(clips[1, :, :3], ds.data[0, :, :3])
    loader = ClipBatches(ds, idx, batch_size=2, shuffle=True, seed=1)
    loader.set_epoch(0)
    e0 = [b.index.tolist() for b in loader]
    loader.set_epoch(1)
    e1 = [b.index.tolist() for b in loader]
    assert sorted(sum(e0, [])) == [0, 1, 2, 3] and e0 != e1  # reshuffled per epoch
    loader.set_epoch(0)
    assert [b.index.tolist() for b in loader] == e0  # deterministic per (seed, epoch)


def test_topology_json_and_builtins(tmp_path):
    f = tmp_path / "topo.json"
    f.write_text(json.dumps({"name": "stick3", "joint_names": ["a", "b", "c"], "bones": [[1, 0], [2, 1]],
                             "center": 0, "shoulders": [1, 2]}))
    topo = get_topology(str(f))
    assert topo.num_joints == 3 and topo.parents().tolist() == [0, 0, 1]
    assert get_topology("ntu25") is NTU25 and NTU25.num_joints == 25 and MSR20.num_joints == 20
    assert NTU25.parents()[20] == 20  # joint 21 pairs with itself
    f.write_text(json.dumps({"name": "broken"}))
    with pytest.raises(DataError, match="topo.json"):
        get_topology(str(f))
    with pytest.raises(ValueError, match="outside"):
        Topology("x", ("a",), ((0, 3),), 0, (0, 0))


@pytest.mark.e2e
def test_data_info_and_check_cli(tmp_path, capsys):
    out = _write(tmp_path / "toy")
    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_samples"] == 6 and info["num_classes"] == 3 and info["topology"] == "msr20"
    assert info["splits"] == {"xsub": {"train": 4, "test": 2}}
    assert main(["data", "check", str(out)]) == 0
    assert main(["data", "info", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
