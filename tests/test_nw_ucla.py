"""NW-UCLA reader and prepare: real-file facts, topology, splits, errors, single-frame clips
downstream, and the raw 1-NN reference point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.cli import main as cli
from harness.config import DataConfig, load_config
from harness.data.readers import nw_ucla
from harness.augment import crop_resize
from harness.data.prepared.kinds import resolve_dataset
from harness.data.prepared.loader import ClipBatches
from harness.data.readers.nw_ucla import UCLA20
from harness.data.prepared.format import open_prepared
from harness.transforms.resample import resample
from harness.errors import DataError
from harness.contracts import DataInfo, build_method
from harness.registry import DATASETS
from nn_reference import raw_one_nn

pytestmark = pytest.mark.unit

FIRST_JOINT = [-0.619699, 0.328046, 3.18186]  # a01_s01_e00_v01, frame 0, hip centre


@pytest.fixture(scope="module")
def ucla_raw(real_data: Path) -> Path:
    return real_data / "nw_ucla" / "all_sqe"


@pytest.fixture(scope="module")
def ucla_ds(ucla_raw: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("ucla") / "prepared"
    assert cli(["data", "prepare", "nw-ucla", "--raw", str(ucla_raw), "--out", str(out)]) == 0
    return open_prepared(out)


@pytest.fixture(scope="module")
def ucla_raw_ds(ucla_raw: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("ucla_raw") / "prepared"
    assert cli(["data", "prepare", "nw-ucla", "--raw", str(ucla_raw), "--out", str(out),
                "--raw-coordinates"]) == 0
    return open_prepared(out)


# --- topology -----------------------------------------------------------------------------------


def test_ucla20_bones_and_flip():
    assert UCLA20.num_joints == 20 and UCLA20.joint_names[UCLA20.center] == "hip_center"
    assert [UCLA20.joint_names[j] for j in UCLA20.shoulders] == ["left_shoulder", "right_shoulder"]
    # the 19 child→parent bones, 1-based, of the dataset's skeleton graph, plus the root's self-pair
    readme = [(2, 1), (3, 2), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
              (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]
    assert set(UCLA20.bones) == {(c - 1, p - 1) for c, p in readme} | {(0, 0)}
    assert len(UCLA20.bones) == 20 and len(UCLA20.edges()) == 19
    parent = UCLA20.parents()
    for j in range(20):  # a tree: every joint reaches the hip centre
        seen = 0
        while j != 0 and seen < 20:
            j, seen = parent[j], seen + 1
        assert j == 0
    names = UCLA20.joint_names
    for j, k in enumerate(UCLA20.flip):
        assert names[k] == names[j].replace("left", "@").replace("right", "left").replace("@", "right")
    # the flip maps bones onto bones
    flipped = {(UCLA20.flip[c], UCLA20.flip[p]) for c, p in UCLA20.bones}
    assert flipped == set(UCLA20.bones)


@pytest.mark.slow
def test_left_and_right_bones_match_on_real_data(ucla_raw_ds):
    """A wrong joint order shows up as unequal left/right limb lengths."""
    ds = ucla_raw_ds
    x = np.array(ds.data[..., 0])  # (N, 3, T, V)
    valid = np.arange(ds.max_frames)[None] < ds.lengths[:, None]  # (N, T)
    length = {}
    for c, p in UCLA20.edges():
        d = np.linalg.norm(x[:, :, :, c] - x[:, :, :, p], axis=1)
        length[c] = float(np.median(d[valid]))
    for c, _ in UCLA20.edges():
        mirror = UCLA20.flip[c]
        assert length[c] == pytest.approx(length[mirror], rel=0.03), UCLA20.joint_names[c]
    assert 0.1 < length[9] < 0.4 and 0.2 < length[13] < 0.6  # upper arm, thigh in metres


# --- the real files -------------------------------------------------------------------------------


def test_read_clip_real_file(ucla_raw: Path):
    seq = nw_ucla.read_clip(ucla_raw / "a01_s01_e00_v01.json")
    assert seq.shape[1:] == (20, 3) and seq.dtype == np.float32
    np.testing.assert_allclose(seq[0, 0], FIRST_JOINT, rtol=1e-6)
    assert seq[0, 3, 1] > seq[0, 15, 1]  # head above the left foot: y is up
    assert seq[0, 4, 0] < seq[0, 8, 0]  # left shoulder has the smaller x, as in MSR and NTU


@pytest.mark.slow
def test_prepare_counts_and_splits(ucla_ds):
    ds = ucla_ds
    assert ds.data.shape == (1484, 3, 201, 20, 1)
    assert ds.topology == UCLA20 and ds.num_classes == 10
    assert ds.class_names == list(nw_ucla.ACTION_NAMES)
    assert ds.class_names[0] == "pick up with one hand" and ds.class_names[9] == "carry"
    assert ds.lengths.min() == 1 and ds.lengths.max() == 201 and int(np.median(ds.lengths)) == 31
    assert (ds.lengths == 1).sum() == 2  # single-frame clips are kept
    counts = np.bincount(ds.labels, minlength=10)
    assert counts.min() == 141 and counts.max() == 173 and counts.sum() == 1484
    # labels follow the action ids, skipping the unused a07 and a10
    action = ds.samples["name"].str.slice(1, 3).astype(int).to_numpy()
    assert {int(a): int(lab) for a, lab in zip(action, ds.labels)} == {
        1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 8: 6, 9: 7, 11: 8, 12: 9}
    splits = ds.split_counts()
    assert splits == {"xview": {"train": 1020, "test": 464}, "xsub": {"train": 724, "test": 760}}
    views, subjects = ds.samples["camera"].to_numpy(), ds.samples["subject"].to_numpy()
    assert set(views[ds.indices("xview", "train")]) == {1, 2}
    assert set(views[ds.indices("xview", "test")]) == {3}
    assert set(subjects[ds.indices("xsub", "train")]) == {1, 3, 5, 7, 9}
    assert set(subjects[ds.indices("xsub", "test")]) == {2, 4, 6, 8, 10}
    for split in ("xview", "xsub"):
        both = np.concatenate([ds.indices(split, "train"), ds.indices(split, "test")])
        assert sorted(both) == list(range(1484))
    row = ds.samples.iloc[0]
    assert (row["name"], row["label"], row["subject"], row["replication"], row["camera"]) == (
        "a01_s01_e00_v01", 0, 1, 0, 1)
    clip = ds.clip(0)[..., 0]  # normalised by default
    np.testing.assert_allclose(clip[:, :, UCLA20.center], 0, atol=1e-6)
    left, right = UCLA20.shoulders
    shoulder = clip[:, 0, right] - clip[:, 0, left]
    assert shoulder[0] > 0 and np.allclose(shoulder[1:], 0, atol=1e-5)


@pytest.mark.e2e
def test_info_json_describes_it(ucla_ds, capsys):
    assert cli(["data", "info", str(ucla_ds.root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "nw-ucla" and info["num_samples"] == 1484
    assert info["topology"] == "ucla20" and info["num_persons"] == 1
    assert cli(["data", "check", str(ucla_ds.root)]) == 0


@pytest.mark.usefixtures("one_thread")
def test_single_frame_clips_work_downstream(ucla_ds):
    ds = ucla_ds
    single = np.flatnonzero(ds.lengths == 1)
    idx = np.concatenate([single, ds.indices("xview", "train")[:6]])
    batch = next(iter(ClipBatches(ds, idx, batch_size=len(idx))))
    frames = 16
    y = resample(batch.x, batch.lengths, frames)
    for k in range(len(single)):  # resampling repeats the one frame
        assert torch.equal(y[k], batch.x[k, :, :1].expand_as(y[k]))
        assert y[k].abs().sum() > 0
    g = torch.Generator().manual_seed(0)
    crops = crop_resize(batch.x, batch.lengths, frames, generator=g)
    assert torch.equal(crops[0], batch.x[0, :, :1].expand_as(crops[0]))
    cfg = load_config("smoke", overrides={"method.name": "usdrl", "data.frames": frames})
    torch.manual_seed(0)
    method = build_method(cfg, DataInfo(ds.topology, ds.num_classes, frames, 1))
    out = method.forward(method.make_views(batch.x, batch.lengths, g), batch.labels)
    assert torch.isfinite(out["loss"])
    with torch.no_grad():
        feats = method.backbone().eval()(y).pooled
    assert feats.shape[0] == len(idx) and torch.isfinite(feats).all()


def test_one_nearest_neighbour_reference(ucla_raw_ds):
    """1-NN on hip-centred (not rotated), 32-frame resampled, z-scored joints: about 52 % cross-view."""
    correct, total = raw_one_nn(ucla_raw_ds, "xview", UCLA20.center)
    print(f"NW-UCLA xview 1-NN top-1: {correct / total:.4f}")  # measured: 0.5108 (237 / 464)
    assert total == 464 and 0.46 <= correct / total <= 0.58
    correct, total = raw_one_nn(ucla_raw_ds, "xsub", UCLA20.center)
    print(f"NW-UCLA xsub 1-NN top-1: {correct / total:.4f}")  # measured: 0.6329 (481 / 760)
    assert total == 760 and 0.57 <= correct / total <= 0.70


@pytest.mark.slow
def test_auto_prepare_through_resolve_dataset(real_data: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HARNESS_REAL_DATA", str(real_data))
    assert "nw-ucla" in DATASETS
    ds = resolve_dataset(DataConfig(dataset="nw-ucla", split="xview"), tmp_path)
    assert ds.num_samples == 1484 and ds.root.parent == tmp_path / "datasets"
    assert ds.split_counts()["xview"] == {"train": 1020, "test": 464}
    again = resolve_dataset(DataConfig(dataset="nw-ucla", split="xview"), tmp_path)
    assert again.root == ds.root  # cached, not rebuilt
    with pytest.raises(Exception, match="trimmed"):
        resolve_dataset(DataConfig(dataset="nw-ucla"), tmp_path, untrimmed=True)
    monkeypatch.setenv("HARNESS_REAL_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(Exception, match="NW-UCLA not found"):
        resolve_dataset(DataConfig(dataset="nw-ucla", options={"x": 1}), tmp_path)


# --- bad input ------------------------------------------------------------------------------------

NAMES = ["a01_s01_e00_v01", "a08_s02_e01_v02", "a12_s03_e02_v03"]


@pytest.fixture()
def small_raw(ucla_raw: Path, tmp_path: Path) -> Path:
    """A copy of three real clips (views 1, 2, 3; subjects 1, 2, 3)."""
    root = tmp_path / "nw_ucla" / "all_sqe"
    root.mkdir(parents=True)
    for n in NAMES:
        shutil.copy(ucla_raw / f"{n}.json", root)
    return root


def _rewrite(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_small_copy_prepares(small_raw: Path, tmp_path: Path):
    ds = open_prepared(nw_ucla.prepare_nw_ucla(small_raw.parent, tmp_path / "out"))  # all_sqe/ found
    assert list(ds.samples["name"]) == NAMES and list(ds.labels) == [0, 6, 9]
    assert ds.split_counts() == {"xview": {"train": 2, "test": 1}, "xsub": {"train": 2, "test": 1}}
    raw = open_prepared(nw_ucla.prepare_nw_ucla(small_raw, tmp_path / "raw", normalize=False))
    np.testing.assert_allclose(raw.clip(0)[:, 0, 0, 0], FIRST_JOINT, rtol=1e-6)
    # normalisation is a per-frame translation plus one rotation: distances between joints are kept
    a, b = raw.clip(0)[..., 0], ds.clip(0)[..., 0]
    np.testing.assert_allclose(np.linalg.norm(a[:, :, 3] - a[:, :, 15], axis=0),
                               np.linalg.norm(b[:, :, 3] - b[:, :, 15], axis=0), rtol=1e-4)


def test_single_frame_file_prepares(small_raw: Path, tmp_path: Path):
    _rewrite(small_raw / f"{NAMES[1]}.json", lambda d: d.update(skeletons=d["skeletons"][:1]))
    ds = open_prepared(nw_ucla.prepare_nw_ucla(small_raw, tmp_path / "out"))
    assert list(ds.lengths)[1] == 1
    np.testing.assert_allclose(ds.clip(1)[:, 0, UCLA20.center, 0], 0, atol=1e-6)


@pytest.mark.e2e
def test_error_for_invalid_json_names_file_and_line(small_raw: Path, tmp_path: Path, capsys):
    f = small_raw / f"{NAMES[1]}.json"
    f.write_text('{"file_name": "a08_s02_e01_v02",\n "skeletons": [[[0.1, 0.2,]]]}')
    with pytest.raises(DataError) as err:
        nw_ucla.prepare_nw_ucla(small_raw, tmp_path / "out")
    assert err.value.path == str(f) and err.value.line == 2 and "invalid JSON" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert cli(["data", "prepare", "nw-ucla", "--raw", str(small_raw), "--out", str(tmp_path / "o")]) == 2
    assert f"{f}:2: invalid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["skeletons"][3].pop(), "not a T × 20 × 3 array"),
    (lambda d: d.update(skeletons=[[j[:2] for j in f] for f in d["skeletons"]]), r"shape \(\d+, 20, 2\)"),
    (lambda d: d.update(skeletons=[f[:19] for f in d["skeletons"]]), r"shape \(\d+, 19, 3\)"),
    (lambda d: d.update(skeletons=[]), "has no frames"),
    (lambda d: d["skeletons"][2][5].__setitem__(1, float("nan")),
     "non-finite value .* frame 2, joint 5, axis y"),
    (lambda d: d["skeletons"][0][0].__setitem__(2, None), "non-finite value .* frame 0, joint 0, axis z"),
    (lambda d: d["skeletons"][0][0].__setitem__(2, "x"), "not a T × 20 × 3 array of numbers"),
    (lambda d: d.pop("skeletons"), 'a "skeletons" list'),
    (lambda d: d.update(file_name="a08_s02_e01_v01"), "but the file is named 'a08_s02_e01_v02'"),
])
def test_error_for_malformed_clip(small_raw: Path, tmp_path: Path, edit, message):
    f = small_raw / f"{NAMES[1]}.json"
    _rewrite(f, edit)
    with pytest.raises(DataError, match=message) as err:
        nw_ucla.prepare_nw_ucla(small_raw, tmp_path / "out")
    assert err.value.path == str(f)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, message", [
    ("clip01.json", "'clip01' is not an NW-UCLA clip name"),
    ("a07_s01_e00_v01.json", "action 7 is not one of the NW-UCLA actions"),
    ("a01_s01_e00_v04.json", "view 4 is outside v01–v03"),
])
def test_error_for_a_bad_file_name(small_raw: Path, tmp_path: Path, name: str, message: str):
    shutil.copy(small_raw / f"{NAMES[0]}.json", small_raw / name)
    with pytest.raises(DataError, match=message) as err:
        nw_ucla.prepare_nw_ucla(small_raw, tmp_path / "out")
    assert err.value.path == str(small_raw / name)


def test_error_for_a_folder_without_clips(tmp_path: Path):
    with pytest.raises(DataError, match="expected a folder of NW-UCLA clips"):
        nw_ucla.prepare_nw_ucla(tmp_path, tmp_path / "out")
