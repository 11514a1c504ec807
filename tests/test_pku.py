"""PKU-MMD: the real skeleton and split files, and the whole prepare path on a small fake ROOT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main as cli
from harness.data.readers.pku import pku_mmd as pku
from harness.data.prepared.format import check_prepared, open_prepared
from harness.data.topology import NTU25
from harness.errors import DataError, HarnessError
from harness.pipeline import label_subset
from harness.results import ResultRow

pytestmark = pytest.mark.unit

REAL_VIDEO = "A10N08-L"


@pytest.fixture(scope="module")
def real_skeleton(real_data: Path) -> Path:
    return real_data / "pku_mmd" / "skeleton" / f"{REAL_VIDEO}.txt"


@pytest.fixture(scope="module")
def real_frames(real_skeleton: Path) -> np.ndarray:
    return pku.read_skeleton(real_skeleton)


# --- the real files ---------------------------------------------------------------------------


def test_real_skeleton_counts(real_skeleton: Path, real_frames: np.ndarray):
    assert real_frames.shape == (1040, 2, 25, 3) and real_frames.dtype == np.float32
    body2_absent = (real_frames[:, 1] == 0).all(axis=(1, 2))
    assert int(body2_absent.sum()) == 312
    assert not (real_frames[:, 0] == 0).all(axis=(1, 2)).any()  # body 1 is always there
    first = [float(v) for v in real_skeleton.read_text().split("\n", 1)[0].split()[:6]]
    np.testing.assert_allclose(real_frames[0, 0, :2].ravel(), first, rtol=1e-6)  # x1 y1 z1 x2 y2 z2
    assert len(pku.scan_frames(real_skeleton)) == 1040
    assert not pku.scan_frames(real_skeleton).any()  # no frame is entirely zero


def test_real_split_file(real_data: Path):
    path = real_data / "pku_mmd" / "splits" / "pkuv1_cross_subject.txt"
    parts = pku.read_split_file(path)
    train, test = set(parts["train"]), set(parts["test"])
    assert (len(parts["train"]), len(parts["test"])) == (944, 132)
    assert "0060-L" not in train | test and {"0060-M", "0060-R", "0059-L", "0002-L"} <= train
    assert {"0291-L", "0334-R"} <= test and "0290-R" in train and "0335-L" in train
    assert not ({"0001-L", "0247-M", "0250-R"} & (train | test))
    assert pku.split_name_for(path) == "xsub"


def test_builtin_phase1_rule_equals_the_real_split_file(real_data: Path):
    parts = pku.read_split_file(real_data / "pku_mmd" / "splits" / "pkuv1_cross_subject.txt")
    universe = [pku.parse_video_name(f"{n:04d}-{v}", 1) for n in range(1, 365) for v in "LMR"]
    universe = [u for u in universe if u.name != "0060-L"]  # does not exist
    built = pku.builtin_splits(universe, 1)["xsub"]
    assert built["train"] == parts["train"] and built["test"] == parts["test"]


def test_video_names():
    v = pku.parse_video_name("A10N08-L", 2)
    assert (v.sequence, v.subject, v.view, v.columns()) == (10, 8, "L", {"subject": 8, "camera": 1, "setup": 10})
    v = pku.parse_video_name("0002-M", 1)
    assert v.columns() == {"subject": -1, "camera": 2, "setup": 2}
    with pytest.raises(DataError, match="pass --phase 2"):
        pku.parse_video_name("A01N01-R", 1)


# --- a fake ROOT: the real video plus a shorter one, with label files we write ----------------

LABELS_08 = "3,10,60,1\n51,100,450,2\n12 500 600 1\n7,1000,1040,1\n"  # spaces too; one long clip
LABELS_02 = "1,1,50,1\n5,300,350,2\n2,200,400,2\n"  # [300, 350) is all zeros in the fake video


@pytest.fixture()
def root(real_skeleton: Path, tmp_path: Path) -> Path:
    root = tmp_path / "PKU"
    (root / "skeleton").mkdir(parents=True)
    (root / "label").mkdir()
    shutil.copy(real_skeleton, root / "skeleton" / f"{REAL_VIDEO}.txt")
    lines = real_skeleton.read_text().splitlines()[:400]
    zero = " ".join(["0.000000"] * 150)
    lines[300:350] = [zero] * 50
    (root / "skeleton" / "A10N02-R.txt").write_text("\n".join(lines) + "\n")
    (root / "label" / f"{REAL_VIDEO}.txt").write_text(LABELS_08)
    (root / "label" / "A10N02-R.txt").write_text(LABELS_02)
    return root


def test_untrimmed_prepare(root: Path, tmp_path: Path, real_frames: np.ndarray):
    (path,) = pku.prepare_pku(root, tmp_path / "out")
    ds = open_prepared(path)
    assert ds.untrimmed and ds.kind == "pku-mmd" and ds.topology.name == "ntu25"
    assert ds.data.shape == (2, 3, 1040, 25, 2) and ds.num_classes == 51
    assert list(ds.samples["name"]) == ["A10N02-R", REAL_VIDEO]
    assert list(ds.lengths) == [400, 1040] and list(ds.labels) == [-1, -1]
    assert list(ds.samples["subject"]) == [2, 8] and list(ds.samples["camera"]) == [3, 1]
    np.testing.assert_array_equal(ds.clip(1), pku.to_clip(pku.normalize_video(real_frames, "umurl")))
    iv = ds.video_intervals(1)
    assert iv[["label", "start", "end"]].values.tolist() == [[2, 10, 60], [50, 100, 450], [11, 500, 600],
                                                             [6, 1000, 1040]]
    assert ds.video_intervals(0)[["label", "start", "end"]].values.tolist() == [[0, 1, 50], [4, 300, 350],
                                                                                [1, 200, 400]]
    # built-in Phase II splits: test subjects N02, N03, N07; test view L
    assert ds.indices("xsub", "test").tolist() == [0] and ds.indices("xsub", "train").tolist() == [1]
    assert ds.indices("xview", "test").tolist() == [1] and ds.indices("xview", "train").tolist() == [0]
    assert check_prepared(ds) == []


def test_inclusive_convention_shifts_starts(root: Path, tmp_path: Path):
    (path,) = pku.prepare_pku(root, tmp_path / "out", end_convention="inclusive")
    iv = open_prepared(path).video_intervals(1)
    assert iv[["start", "end"]].values.tolist() == [[9, 60], [99, 450], [499, 600], [999, 1040]]


@pytest.mark.parametrize("convention,offset", [("exclusive", 0), ("inclusive", 1)])
def test_trimmed_prepare(root: Path, tmp_path: Path, real_frames: np.ndarray, convention: str, offset: int):
    (path,) = pku.prepare_pku(root, tmp_path / "out", mode="trimmed", end_convention=convention, normalize="none")
    ds = open_prepared(path)
    assert not ds.untrimmed and ds.num_samples == 7 and ds.max_frames == 300
    names = ds.samples["name"].tolist()
    assert names[:3] == ["A10N02-R_000", "A10N02-R_001", "A10N02-R_002"]
    assert ds.labels.tolist() == [0, 4, 1, 2, 50, 11, 6]
    # end - start frames (+1 when inclusive); the 350-frame clip is stored with its clamped length
    assert ds.lengths.tolist() == [49 + offset, 50 + offset, 200 + offset, 50 + offset, 300, 100 + offset,
                                   40 + offset]
    assert json.loads((path / "meta.json").read_text())["source"]["longest_clip_raw_frames"] == 350 + offset
    k = names.index(f"{REAL_VIDEO}_001")  # label 51, frames 100..450: kept are the first 300
    np.testing.assert_array_equal(ds.clip(k), pku.to_clip(real_frames[100 - offset:400 - offset]))
    k = names.index(f"{REAL_VIDEO}_000")
    np.testing.assert_array_equal(ds.clip(k), pku.to_clip(real_frames[10 - offset:60]))
    assert ds.indices("xsub", "test").tolist() == [0, 1, 2]  # the clips of A10N02-R


def test_default_normalisation_centres_every_frame_and_keeps_clips_inside_their_video(
        root: Path, tmp_path: Path, real_frames: np.ndarray):
    out = pku.prepare_pku(root, tmp_path / "out", mode="both")
    video, trimmed = (open_prepared(p) for p in out)
    assert json.loads((out[1] / "meta.json").read_text())["source"]["normalize"] == "umurl"
    v = video.samples["name"].tolist().index(REAL_VIDEO)
    clip = video.clip(v)  # (3, T, V, M)
    np.testing.assert_allclose(clip[:, :, NTU25.center, 0], 0.0, atol=1e-6)  # body 0's spine, every frame
    left, right = NTU25.shoulders
    x_axis = clip[:, 0, right, 0] - clip[:, 0, left, 0]
    np.testing.assert_allclose(x_axis[1:], 0.0, atol=1e-5)  # frame-0 shoulders along x
    assert (clip[:, :, :, 1][:, (real_frames[:, 1] == 0).all(axis=(1, 2))] == 0).all()  # an absent body stays 0
    k = trimmed.samples["name"].tolist().index(f"{REAL_VIDEO}_000")  # frames 10..60 of the video
    np.testing.assert_array_equal(trimmed.clip(k), clip[:, 10:60])


def test_raw_coordinates_on_request(root: Path, tmp_path: Path, real_frames: np.ndarray):
    (path,) = pku.prepare_pku(root, tmp_path / "out", normalize="none")
    ds = open_prepared(path)
    np.testing.assert_array_equal(ds.clip(ds.samples["name"].tolist().index(REAL_VIDEO)), pku.to_clip(real_frames))
    with pytest.raises(HarnessError, match="--normalize must be one of none, umurl"):
        pku.prepare_pku(root, tmp_path / "bad", normalize="zscore")


def test_center_crop_and_max_frames(root: Path, tmp_path: Path, real_frames: np.ndarray):
    (path,) = pku.prepare_pku(root, tmp_path / "out", mode="trimmed", crop_mode="center", max_frames=100,
                              normalize="none")
    ds = open_prepared(path)
    k = ds.samples["name"].tolist().index(f"{REAL_VIDEO}_001")  # 350 frames → the middle 100
    assert ds.max_frames == 100 and ds.lengths[k] == 100
    np.testing.assert_array_equal(ds.clip(k), pku.to_clip(real_frames[100 + 125:100 + 225]))


def test_all_zero_clips_are_counted_or_dropped(root: Path, tmp_path: Path):
    (kept,) = pku.prepare_pku(root, tmp_path / "a", mode="trimmed")
    assert json.loads((kept / "meta.json").read_text())["source"]["all_zero_clips"] == 1
    assert any("all coordinates are zero" in p for p in check_prepared(open_prepared(kept)))
    (dropped,) = pku.prepare_pku(root, tmp_path / "b", mode="trimmed", drop_empty_clips=True)
    ds = open_prepared(dropped)
    assert ds.num_samples == 6 and "A10N02-R_001" not in set(ds.samples["name"])
    assert check_prepared(ds) == []


@pytest.mark.e2e
def test_both_modes_through_the_cli(root: Path, tmp_path: Path, capsys):
    split = tmp_path / "my_cross_view.txt"
    split.write_text(f"Training videos: \nA10N02-R, \nValidataion videos: \n{REAL_VIDEO}, \n")
    out = tmp_path / "out"
    assert cli(["data", "prepare", "pku-mmd", "--raw", str(root), "--out", str(out), "--phase", "2",
                "--mode", "both", "--split-file", str(split), f"mine={split}"]) == 0
    capsys.readouterr()
    for sub, n in (("untrimmed", 2), ("trimmed", 7)):
        assert cli(["data", "info", str(out / sub), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["num_samples"] == n and info["untrimmed"] == (sub == "untrimmed")
        assert set(info["splits"]) == {"xview", "mine"}
    assert open_prepared(out / "untrimmed").info()["num_intervals"] == 7
    assert open_prepared(out / "trimmed").split_counts()["xview"] == {"train": 3, "test": 4}


def test_split_file_naming_a_missing_video(root: Path, tmp_path: Path):
    split = tmp_path / "cross_subject.txt"
    split.write_text(f"Training videos: \nA10N02-R, A10N09-L\nValidataion videos: \n{REAL_VIDEO}\n")
    with pytest.raises(DataError, match="1 train video.* no skeleton file, e.g. 'A10N09-L'"):
        pku.prepare_pku(root, tmp_path / "out", split_files={"xsub": split})
    (path,) = pku.prepare_pku(root, tmp_path / "out", split_files={"xsub": split}, allow_missing_videos=True)
    assert open_prepared(path).split_counts() == {"xsub": {"train": 1, "test": 1}}
    # a folder with videos left out says it is a subset; the user may name it
    assert open_prepared(path).subset == "a subset: 2 of the 3 videos its split files name"
    (path,) = pku.prepare_pku(root, tmp_path / "named", split_files={"xsub": split}, allow_missing_videos=True,
                              subset_label="the interaction videos")
    assert open_prepared(path).subset == "the interaction videos"
    (labelled,) = label_subset([ResultRow("m", "pku-mmd", "detection", "mAP_a", 0.1, extra='{"theta": 0.5}')],
                               open_prepared(path))
    assert json.loads(labelled.extra) == {"theta": 0.5, "dataset_subset": "the interaction videos"}
    (path,) = pku.prepare_pku(root, tmp_path / "whole")
    assert open_prepared(path).subset == ""


def test_split_file_format_errors(tmp_path: Path):
    bad = tmp_path / "s.txt"
    bad.write_text("Training videos: \n0002-L\nTest: \n0002-L\n")
    with pytest.raises(DataError, match="in both"):
        pku.read_split_file(bad)
    bad.write_text("Videos: \n0002-L\nValidataion videos: \n0003-L\n")
    with pytest.raises(DataError, match=r"s.txt:1: expected 'Training videos:'"):
        pku.read_split_file(bad)
    bad.write_text("Training videos: \n0002-L\n")
    with pytest.raises(DataError, match="expected 4 non-empty lines"):
        pku.read_split_file(bad)


# --- bad input names the file and line ---------------------------------------------------------


@pytest.mark.parametrize("labels,line,message", [
    ("3,10,60,1\n52,1,5,1\n", 2, "label 52 is outside 1..51"),
    ("0,1,5,1\n", 1, "label 0 is outside"),
    ("3,10,60,1\n\n3,70,70,1\n", 3, "start 70 is not before end 70"),
    ("3,10,1041,1\n", 1, "ends beyond the video's 1040 frames"),
    ("3,10\n", 1, "expected 'label,start,end,confidence'"),
    ("3,a,5,1\n", 1, "must be integers"),
])
def test_label_errors(root: Path, tmp_path: Path, labels: str, line: int, message: str):
    path = root / "label" / f"{REAL_VIDEO}.txt"
    path.write_text(labels)
    with pytest.raises(DataError) as err:
        pku.prepare_pku(root, tmp_path / "out")
    assert (err.value.path, err.value.line) == (str(path), line) and message in err.value.reason
    assert not (tmp_path / "out").exists()


def test_inclusive_start_zero_is_an_error(root: Path, tmp_path: Path):
    (root / "label" / f"{REAL_VIDEO}.txt").write_text("3,0,60,1\n")
    pku.prepare_pku(root, tmp_path / "ok")  # valid 0-based
    with pytest.raises(DataError, match=r":1: start 0 is below the first frame"):
        pku.prepare_pku(root, tmp_path / "out", end_convention="inclusive")


@pytest.mark.parametrize("replacement,message", [
    (" ".join(["0.5"] * 149), "expected 150 numbers, found 149"),
    (" ".join(["0.5"] * 149 + ["nan"]), "NaN or Inf"),
    (" ".join(["0.5"] * 149 + ["x"]), "not a number: 'x'"),
])
def test_skeleton_line_errors(root: Path, tmp_path: Path, replacement: str, message: str):
    path = root / "skeleton" / f"{REAL_VIDEO}.txt"
    lines = path.read_text().splitlines()
    lines[516] = replacement
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        pku.prepare_pku(root, tmp_path / "out")
    assert (err.value.path, err.value.line) == (str(path), 517) and message in err.value.reason


def test_layout_errors(root: Path, tmp_path: Path):
    (root / "label" / "A10N02-R.txt").unlink()
    with pytest.raises(DataError, match="no label file for video A10N02-R"):
        pku.prepare_pku(root, tmp_path / "out")
    with pytest.raises(DataError, match="not a Phase 1 video name.*pass --phase 2"):
        pku.prepare_pku(root, tmp_path / "out", phase=1)
    with pytest.raises(DataError, match="ROOT has: label, skeleton.*--skeleton-dir"):
        pku.prepare_pku(root, tmp_path / "out", skeleton_dir="skeletons")
    with pytest.raises(HarnessError, match="both named 'xsub'"):
        pku.parse_split_arguments(["a_cross_subject.txt", "b_cross_subject.txt"])


@pytest.mark.e2e
def test_phase1_names_with_the_real_split_file(real_data: Path, real_skeleton: Path, tmp_path: Path):
    """Phase I names, the official split file through the CLI, two of its videos present."""
    root = tmp_path / "PKU1"
    (root / "skeleton").mkdir(parents=True)
    (root / "label").mkdir()
    lines = real_skeleton.read_text().splitlines()
    for name, n in (("0002-L", 500), ("0291-M", 300), ("0001-R", 200)):  # 0001 is in neither list
        (root / "skeleton" / f"{name}.txt").write_text("\n".join(lines[:n]) + "\n")
        (root / "label" / f"{name}.txt").write_text("4,10,20,1\n")
    split = real_data / "pku_mmd" / "splits" / "pkuv1_cross_subject.txt"
    out = tmp_path / "out"
    args = ["data", "prepare", "pku-mmd", "--raw", str(root), "--out", str(out), "--split-file", str(split)]
    assert cli(args) == 2  # 942 listed train videos and 131 test videos are missing
    assert cli(args + ["--allow-missing-videos", "--mode", "both"]) == 0
    ds = open_prepared(out / "untrimmed")
    assert list(ds.samples["name"]) == ["0001-R", "0002-L", "0291-M"]
    assert ds.samples["setup"].tolist() == [1, 2, 291] and ds.samples["subject"].tolist() == [-1, -1, -1]
    assert ds.split_counts() == {"xsub": {"train": 1, "test": 1}}
    assert ds.indices("xsub", "train").tolist() == [1] and ds.indices("xsub", "test").tolist() == [2]
    trimmed = open_prepared(out / "trimmed")
    assert trimmed.lengths.tolist() == [10, 10, 10] and trimmed.labels.tolist() == [3, 3, 3]
    # without split files, the built-in Phase I rule gives the same assignment
    (path,) = pku.prepare_pku(root, tmp_path / "builtin")
    assert open_prepared(path).split_counts() == {"xsub": {"train": 1, "test": 1}}
