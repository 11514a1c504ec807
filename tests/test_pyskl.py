"""pyskl / MMAction2 pickles: a small file built from the format's key names, prepared and trained on."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.transforms.normalize import pre_normalization
from harness.data.prepared.format import open_prepared
from harness.data.readers.ntu.pyskl import prepare_pyskl
from harness.data.topology import NTU25
from harness.errors import DataError

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]

# (setup, camera, performer, action, persons, stored frames, total_frames)
SAMPLES = [(1, 1 + k % 3, (1, 2, 3, 6)[k % 4], 1 + k % 3, 1 + (k % 5 == 0), 18 + 3 * k, 18 + 3 * k)
           for k in range(20)]
SAMPLES[3] = SAMPLES[3][:4] + (3, 24, 30)  # three persons; total_frames beyond the stored 24
SAMPLES[7] = SAMPLES[7][:4] + (1, 40, 35)  # total_frames shorter than stored: 35 kept
TRAIN_PERFORMERS = (1, 2)  # in NTU's cross-subject training list; 3 and 6 are not


def name(k: int) -> str:
    s, c, p, a = SAMPLES[k][:4]
    return f"S{s:03d}C{c:03d}P{p:03d}R{k + 1:03d}A{a:03d}"  # the replication number keeps names unique


def motion(rng: np.random.Generator, persons: int, frames: int, action: int) -> np.ndarray:
    """(M, T, 25, 3) Kinect-like coordinates: a body at ~3 m whose joints swing at a per-action rate."""
    body = rng.normal(0, 0.3, (25, 3)) + [0.0, 0.0, 3.0]
    t = np.arange(frames)[:, None, None]
    kp = body + 0.1 * np.sin(0.2 * action * t + rng.uniform(0, 6, (1, 25, 3)))
    return np.stack([kp + [0.8 * p, 0, 0] for p in range(persons)])


def annotations(dtype=np.float16) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for k, (_, _, _, a, m, t, total) in enumerate(SAMPLES):
        out.append({"frame_dir": name(k), "label": np.int64(a - 1) if a == 2 else a - 1,
                    "keypoint": motion(rng, m, t, a).astype(dtype), "total_frames": total,
                    "img_shape": (1080, 1920), "original_shape": (1080, 1920)})
    return out


def splits(anns: list[dict]) -> dict[str, list[str]]:
    names = [a["frame_dir"] for a in anns]
    train = [n for n in names if int(n[9:12]) in TRAIN_PERFORMERS]
    view_train = [n for n in names if "C001" not in n]
    return {"xsub_train": train, "xsub_val": [n for n in names if n not in train],
            "xview_train": view_train, "xview_test": [n for n in names if n not in view_train]}


def write(path: Path, obj: dict, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.fixture
def pkl(tmp_path: Path) -> Path:
    anns = annotations()
    return write(tmp_path / "ntu60_3danno.pkl", {"split": splits(anns), "annotations": anns})


@pytest.mark.e2e
def test_prepare_counts_lengths_splits_labels(pkl: Path, tmp_path: Path, capsys):
    out = tmp_path / "prepared"
    assert main(["data", "prepare", "pyskl", "--raw", str(pkl), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 20 samples, 60 classes")
    ds = open_prepared(out)
    anns = annotations()
    expected_len = [min(a["keypoint"].shape[1], a["total_frames"]) for a in anns]
    assert ds.num_samples == 20 and ds.num_persons == 2 and ds.num_joints == 25
    assert ds.max_frames == max(expected_len) and ds.lengths.tolist() == expected_len
    assert ds.lengths[3] == 24 and ds.lengths[7] == 35
    assert ds.labels.tolist() == [a - 1 for _, _, _, a, *_ in SAMPLES]
    assert ds.class_names[0] == "drink water" and ds.topology.name == NTU25.name
    assert ds.samples["subject"].tolist() == [p for _, _, p, *_ in SAMPLES]
    assert ds.samples["camera"].tolist() == [c for _, c, *_ in SAMPLES]
    assert ds.split_names == ["xsub", "xview"]
    sp = splits(anns)
    names = ds.samples["name"].tolist()
    for split, key in (("xsub", "xsub"), ("xview", "xview")):
        test_key = "xsub_val" if split == "xsub" else "xview_test"
        assert [names[i] for i in ds.indices(split, "train")] == sp[f"{key}_train"]
        assert [names[i] for i in ds.indices(split, "test")] == sp[test_key]
    src = ds.meta["source"]
    assert src["samples_with_more_persons"] == 1 and src["total_frames_beyond_stored"] == 1
    assert src["persons_in_file"] == 3 and src["keypoint_dtype"] == "float16"
    # frames past each length are zero; real frames are not
    for i, n in enumerate(ds.lengths):
        assert not ds.data[i, :, n:].any() and ds.data[i, :, n - 1].any()
    # normalised: person 0's spine middle (the centre joint) sits at the origin in every frame
    assert np.abs(ds.data[:, :, :, NTU25.center, 0]).max() < 1e-5


def test_block_normalisation_equals_one_clip_at_a_time(pkl: Path, tmp_path: Path):
    ds = open_prepared(prepare_pyskl(pkl, tmp_path / "p", chunk=7))
    for i, a in enumerate(annotations()):
        n = int(ds.lengths[i])
        clip = a["keypoint"][:2, :n].astype(np.float32).transpose(3, 1, 2, 0)[None]
        one = pre_normalization(clip, topology=NTU25)[0]
        np.testing.assert_allclose(ds.clip(i)[..., :one.shape[-1]], one, atol=1e-6)


def test_raw_coordinates_and_limits(pkl: Path, tmp_path: Path):
    ds = open_prepared(prepare_pyskl(pkl, tmp_path / "raw", normalize=False, max_frames=30, max_persons=1))
    anns = annotations()
    assert ds.num_persons == 1 and ds.max_frames == 30
    assert ds.lengths.tolist() == [min(a["keypoint"].shape[1], a["total_frames"], 30) for a in anns]
    assert ds.meta["source"]["samples_cut_to_max_frames"] == sum(
        min(a["keypoint"].shape[1], a["total_frames"]) > 30 for a in anns)
    np.testing.assert_array_equal(ds.clip(3)[..., 0], anns[3]["keypoint"][0, :24].astype(np.float32).transpose(2, 0, 1))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol_and_float32(tmp_path: Path, protocol: int):
    anns = annotations(np.float32)
    raw = write(tmp_path / "f.pkl", {"split": splits(anns), "annotations": anns}, protocol)
    assert open_prepared(prepare_pyskl(raw, tmp_path / "p")).num_samples == 20


@pytest.mark.e2e
def test_train_on_it_with_harness_run(pkl: Path, tmp_path: Path, capsys):
    out = tmp_path / "prepared"
    prepare_pyskl(pkl, out)
    argv = ["run", "--preset", "smoke", "--method", "usdrl", "--dataset", str(out), "--protocol", "knn",
            "--workdir", str(tmp_path / "work"), "--results", str(tmp_path / "res"), "--no-progress",
            "--json", "--set", "train.num_threads=1", "--set", "train.batch_size=8"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in rows} == {"knn1", "knn20_weighted"}
    assert all(0 <= r["value"] <= 1 for r in rows)


def _broken(tmp_path: Path, change) -> Path:
    anns = annotations()
    obj = {"split": splits(anns), "annotations": anns}
    change(obj)
    return write(tmp_path / "bad.pkl", obj)


def _set(key, value, i=0):
    def change(obj):
        obj["annotations"][i][key] = value
    return change


def _nan(obj):
    obj["annotations"][2]["keypoint"][0, 5, 3, 1] = np.nan


@pytest.mark.parametrize("change, message", [
    (lambda o: o["annotations"][1].pop("total_frames"),
     rf"annotations\[1\] \({name(1)}\) has no 'total_frames' key"),
    (lambda o: o.pop("split"), "has no 'split' key"),
    (_set("keypoint", np.zeros((1, 10, 25), np.float32)), r"annotations\[0\].*numeric \(M, T, V, C\) array"),
    (_set("keypoint", np.zeros((1, 10, 17, 2), np.float32)), r"2D keypoints \(C=2\) are not supported"),
    (_set("keypoint", np.zeros((1, 10, 17, 3), np.float32)), r"shape \(1, 10, 17, 3\).*V = 25"),
    (_nan, rf"annotations\[2\] \({name(2)}\): keypoint has NaN .*frame 5"),
    (lambda o: o["split"]["xsub_val"].append("S009C001P003R001A001"),
     r"split 'xsub_val' names 1 sample\(s\) that no annotation has, e.g. 'S009C001P003R001A001'"),
    (lambda o: o["split"]["xsub_train"].append(o["split"]["xsub_val"][0]), "is in both 'xsub_train' and 'xsub_val'"),
    (lambda o: o["split"].update(xsub_test=[]), "'xsub_val' and 'xsub_test' are both the test part"),
    (lambda o: o["split"].update(fold1=[]), "split 'fold1': expected a name ending in _train"),
    (_set("label", 5, 1), rf"annotations\[1\] \({name(1)}\): label 5, but action A002 means label 1"),
    (_set("total_frames", 0), "no frames to keep"),
    (lambda o: o["annotations"].append(dict(o["annotations"][0])), r"also at annotations\[0\]"),
])
def test_errors_name_the_file_and_the_sample(tmp_path: Path, change, message):
    path = _broken(tmp_path, change)
    with pytest.raises(DataError, match=message) as err:
        prepare_pyskl(path, tmp_path / "out")
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written half


@pytest.mark.e2e
def test_cli_errors_and_unsafe_pickle(tmp_path: Path, capsys):
    import os

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = write(tmp_path / "evil.pkl", {"split": {}, "annotations": [{"frame_dir": Evil()}]})
    assert main(["data", "prepare", "pyskl", "--raw", str(evil), "--out", str(tmp_path / "o")]) == 2
    assert "refused to load posix.system" in capsys.readouterr().err and not marker.exists()
    assert main(["data", "prepare", "pyskl", "--out", str(tmp_path / "o")]) == 2
    assert "pyskl needs --raw FILE.pkl" in capsys.readouterr().err
