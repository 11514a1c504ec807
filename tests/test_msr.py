"""MSR Action3D reader and prepare: real-file facts, splits, errors, and the 1-NN reference point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main as cli
from harness.config import DataConfig
from harness.data.readers import msr
from harness.data.prepared.kinds import resolve_dataset
from harness.data.prepared.format import open_prepared
from harness.data.topology import MSR20
from harness.errors import DataError
from harness.registry import DATASETS
from nn_reference import raw_one_nn

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def msr_raw(real_data: Path) -> Path:
    return real_data / "msr_action3d"


@pytest.fixture(scope="module")
def msr_ds(msr_raw: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("msr") / "prepared"
    assert cli(["data", "prepare", "msr-action3d", "--raw", str(msr_raw), "--out", str(out)]) == 0
    return open_prepared(out)


def test_msr20_bones_equal_metadata_bones(msr_raw: Path):
    meta = json.loads((msr_raw / "metadata.json").read_text())
    # metadata lists (parent, child) 1-based; MSR20 keeps (child, parent) 0-based plus the root's self-pair
    converted = {(c - 1, p - 1) for p, c in meta["bones_1based"]}
    assert converted | {(6, 6)} == set(MSR20.bones)
    assert len(MSR20.bones) == len(meta["bones_1based"]) + 1
    spelled = [n.replace(" (shoulder centre)", "").replace("centre", "center").replace(" ", "_")
               for n in meta["joint_order_1based"]]
    assert spelled == list(MSR20.joint_names)
    assert [meta["actions"][f"a{i:02d}"] for i in range(1, 21)] == list(msr.ACTION_NAMES)


def test_read_skeleton_real_file(msr_raw: Path):
    seq = msr.read_skeleton(msr_raw / "skeletons" / "a01_s01_e01_skeleton3D.txt")
    assert seq.shape[1:] == (20, 3) and seq.dtype == np.float32
    np.testing.assert_allclose(seq[0, 0], [-0.371736, 0.371031, 2.674849], rtol=1e-6)
    assert seq[0, 19, 1] > seq[0, 17, 1]  # head above the left foot: y is up


def test_prepare_counts_and_splits(msr_ds):
    ds = msr_ds
    assert ds.data.shape == (557, 3, 76, 20, 1)
    assert ds.num_classes == 20 and ds.class_names[0] == "high arm wave"
    assert ds.topology == MSR20
    assert 13 == ds.lengths.min() and 76 == ds.lengths.max()
    assert int(np.median(ds.lengths)) == 39
    counts = ds.split_counts()
    assert counts["xsub"] == {"train": 284, "test": 273}
    assert counts["as1"] == {"train": 114, "test": 105}
    assert counts["as2"] == {"train": 116, "test": 112}
    assert counts["as3"] == {"train": 111, "test": 111}
    assert len([s for s in counts if s.startswith("rand")]) == 10
    subjects = ds.samples["subject"].to_numpy()
    assert set(subjects[ds.indices("xsub", "train")]) == {1, 3, 5, 7, 9}
    assert set(subjects[ds.indices("xsub", "test")]) == {2, 4, 6, 8, 10}
    assert set(ds.labels) == set(range(20))
    assert "a13_s09_e02" not in set(ds.samples["name"])  # the all-zero file is not used
    row = ds.samples.iloc[0]
    assert (row["name"], row["label"], row["subject"], row["replication"]) == ("a01_s01_e01", 0, 1, 1)
    clip = ds.clip(0)[..., 0]  # (3, T, V): normalised by default
    np.testing.assert_allclose(clip[:, :, MSR20.center], 0, atol=1e-6)  # hip centre at the origin
    left, right = MSR20.shoulders
    shoulder = clip[:, 0, right] - clip[:, 0, left]
    assert shoulder[0] > 0 and np.allclose(shoulder[1:], 0, atol=1e-5)  # shoulders on +x at frame 0


@pytest.mark.e2e
def test_info_json_describes_it(msr_ds, capsys):
    assert cli(["data", "info", str(msr_ds.root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "msr-action3d" and info["num_samples"] == 557
    assert info["topology"] == "msr20" and info["num_persons"] == 1


@pytest.fixture(scope="module")
def msr_raw_ds(msr_raw: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("msr_raw") / "prepared"
    assert cli(["data", "prepare", "msr-action3d", "--raw", str(msr_raw), "--out", str(out),
                "--raw-coordinates"]) == 0
    return open_prepared(out)


def test_one_nearest_neighbour_reference(msr_raw_ds):
    """README: 1-NN on hip-centred (not rotated), 32-frame resampled, z-scored joints ≈ 57 % top-1."""
    correct, total = raw_one_nn(msr_raw_ds, "xsub", MSR20.center)
    acc = correct / total
    print(f"MSR Action3D 1-NN top-1: {acc:.4f}")  # measured: 0.5714 (156 / 273)
    assert 0.50 <= acc <= 0.64


def test_auto_prepare_through_resolve_dataset(msr_raw: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HARNESS_REAL_DATA", str(msr_raw.parent))
    assert "msr-action3d" in DATASETS
    ds = resolve_dataset(DataConfig(dataset="msr-action3d"), tmp_path)
    assert ds.num_samples == 557 and ds.root.parent == tmp_path / "datasets"
    with pytest.raises(Exception, match="trimmed"):
        resolve_dataset(DataConfig(dataset="msr-action3d"), tmp_path, untrimmed=True)


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture()
def small_raw(msr_raw: Path, tmp_path: Path) -> Path:
    """A copy of three real sequences with their listing and metadata."""
    root = tmp_path / "msr"
    (root / "skeletons").mkdir(parents=True)
    names = ["a01_s01_e01", "a02_s02_e01", "a03_s03_e02"]
    for n in names:
        shutil.copy(msr_raw / "skeletons" / f"{n}_skeleton3D.txt", root / "skeletons")
    (root / "files_used.txt").write_text("\n".join(names))
    shutil.copy(msr_raw / "metadata.json", root)
    return root


def test_small_copy_prepares(small_raw: Path, tmp_path: Path):
    ds = open_prepared(msr.prepare_msr(small_raw, tmp_path / "out"))
    assert ds.num_samples == 3 and ds.split_counts()["xsub"] == {"train": 2, "test": 1}
    raw = open_prepared(msr.prepare_msr(small_raw, tmp_path / "raw", normalize=False))
    np.testing.assert_allclose(raw.clip(0)[:, 0, 0, 0], [-0.371736, 0.371031, 2.674849], rtol=1e-6)
    # normalisation is a per-frame translation plus one rotation: distances between joints are kept
    a, b = raw.clip(0)[..., 0], ds.clip(0)[..., 0]
    np.testing.assert_allclose(np.linalg.norm(a[:, :, 0] - a[:, :, 1], axis=0),
                               np.linalg.norm(b[:, :, 0] - b[:, :, 1], axis=0), rtol=1e-4)


def _corrupt(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_error_names_file_and_line_for_a_nan(small_raw: Path, tmp_path: Path):
    f = small_raw / "skeletons" / "a02_s02_e01_skeleton3D.txt"
    _corrupt(f, 7, "0.1 nan 2.5 1")
    with pytest.raises(DataError) as err:
        msr.prepare_msr(small_raw, tmp_path / "out")
    assert err.value.path == str(f) and err.value.line == 7 and "NaN" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_error_for_a_short_line_and_a_truncated_frame(small_raw: Path, tmp_path: Path):
    f = small_raw / "skeletons" / "a01_s01_e01_skeleton3D.txt"
    original = f.read_text()
    _corrupt(f, 3, "0.1 0.2 2.5")
    with pytest.raises(DataError, match=r"a01_s01_e01_skeleton3D.txt:3: .*expected 4 numbers, found 3"):
        msr.prepare_msr(small_raw, tmp_path / "out")
    f.write_text("\n".join(original.splitlines()[:-1]) + "\n")  # one joint line short
    with pytest.raises(DataError, match="not a multiple of 20"):
        msr.prepare_msr(small_raw, tmp_path / "out")


def test_error_for_a_bad_listing(small_raw: Path, tmp_path: Path):
    (small_raw / "files_used.txt").write_text("a01_s01_e01\nbogus_name\n")
    with pytest.raises(DataError, match=r"files_used.txt:2: 'bogus_name' is not an MSR"):
        msr.prepare_msr(small_raw, tmp_path / "out")
    (small_raw / "files_used.txt").write_text("a01_s01_e01\na05_s01_e01\n")
    with pytest.raises(DataError, match="a05_s01_e01_skeleton3D.txt: listed in files_used.txt but not found"):
        msr.prepare_msr(small_raw, tmp_path / "out")


def test_without_listing_uses_every_nonzero_file(small_raw: Path, tmp_path: Path):
    (small_raw / "files_used.txt").unlink()
    zero = small_raw / "skeletons" / "a04_s01_e01_skeleton3D.txt"
    zero.write_text("0 0 0 0\n" * 40)
    ds = open_prepared(msr.prepare_msr(small_raw, tmp_path / "out"))
    assert list(ds.samples["name"]) == ["a01_s01_e01", "a02_s02_e01", "a03_s03_e02"]
