"""The generic layout: the worked example of docs/datasets.md (built from the page itself) and errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main as cli
from harness.data.readers.generic import prepare_generic
from harness.data.prepared.format import check_prepared, open_prepared
from harness.data.topology import NTU25
from harness.errors import DataError, UnknownNameError

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"


def doc_files() -> dict[str, str]:
    """Every 'File `path`:' block of the worked example, path → content."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"File `([^`]+)`:\n```[a-z]*\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 7, "the worked example's file blocks were not found in docs/datasets.md"
    return dict(blocks)


def doc_console(command_start: str) -> str:
    """The output line printed under a `$ harness ...` command of the doc."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"^\$ " + re.escape(command_start) + r".*\n(.+)$", text, flags=re.M)
    assert m, f"no console example starting with {command_start!r}"
    return m.group(1)


@pytest.fixture()
def example(tmp_path: Path, monkeypatch) -> Path:
    """The doc's folders written under tmp_path (the current directory, so paths match the doc)."""
    monkeypatch.chdir(tmp_path)
    files = doc_files()
    for rel, content in files.items():
        if rel.startswith("stickfigures/"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(content)
    shutil.copytree(tmp_path / "stickfigures", tmp_path / "stickfigures-untrimmed")
    (tmp_path / "stickfigures-untrimmed" / "labels.csv").unlink()
    for rel, content in files.items():
        if rel.startswith("stickfigures-untrimmed/"):
            (tmp_path / rel).write_text(content)
    return tmp_path


@pytest.mark.e2e
def test_worked_example_trimmed(example: Path, capsys):
    assert cli(["data", "prepare", "generic", "--raw", "stickfigures", "--out", "prepared/stickfigures"]) == 0
    assert capsys.readouterr().out.strip() == doc_console("harness data prepare generic --raw stickfigures")
    ds = open_prepared(example / "prepared" / "stickfigures")
    assert list(ds.data.shape) == [2, 3, 4, 5, 1] and ds.topology.name == "stick5"
    assert ds.class_names == ["wave", "jump"] and ds.labels.tolist() == [0, 1]
    assert ds.samples["subject"].tolist() == [1, 2] and ds.lengths.tolist() == [4, 3]
    assert ds.split_counts() == {"default": {"train": 1, "test": 1}}
    # frame 1 of wave01: the right hand (joint 4) is at (0.4, 1.8, 3.0)
    np.testing.assert_allclose(ds.clip(0)[:, 1, 4, 0], [0.4, 1.8, 3.0], rtol=1e-6)
    np.testing.assert_allclose(ds.clip(1)[1, :, 0, 0], [0.9, 1.2, 0.9], rtol=1e-6)  # jump01 hip y
    assert check_prepared(ds) == []
    assert cli(["data", "info", "prepared/stickfigures", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [2, 3, 4, 5, 1] and info["splits"] == {"default": {"train": 1, "test": 1}}


@pytest.mark.e2e
def test_worked_example_untrimmed_and_its_error(example: Path, capsys):
    assert cli(["data", "prepare", "generic", "--raw", "stickfigures-untrimmed", "--out", "prepared/u"]) == 0
    ds = open_prepared(example / "prepared" / "u")
    assert ds.untrimmed and ds.num_samples == 2 and ds.split_counts() == {"xsub": {"train": 1, "test": 1}}
    assert list(ds.samples["name"]) == ["jump01", "wave01"]  # videos are the sequence files, sorted
    assert ds.intervals[["sample", "label", "start", "end"]].values.tolist() == [[1, 0, 0, 4], [0, 1, 1, 3]]
    capsys.readouterr()
    path = example / "stickfigures-untrimmed" / "intervals.csv"
    path.write_text(path.read_text().replace("wave01,wave,0,4", "wave01,wave,0,5"))
    assert cli(["data", "prepare", "generic", "--raw", "stickfigures-untrimmed", "--out", "prepared/untrimmed"]) == 2
    assert capsys.readouterr().err.strip() == doc_console("harness data prepare generic --raw stickfigures-untrimmed")
    assert not (example / "prepared" / "untrimmed").exists()


# --- other inputs -------------------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def test_npy_sequences_builtin_topology_and_integer_labels(tmp_path: Path):
    root = tmp_path / "d"
    (root / "sequences").mkdir(parents=True)
    rng = np.random.default_rng(0)
    one = rng.normal(size=(6, 25, 3))
    two = rng.normal(size=(9, 2, 25, 3)).astype(np.float32)
    np.save(root / "sequences" / "a.npy", one)
    np.save(root / "sequences" / "b.npy", two)
    write(root, {"labels.csv": "name,label,camera\na,2,1\nb,0,\n"})
    ds = open_prepared(prepare_generic(root, tmp_path / "out", topology="ntu25"))
    assert ds.topology == NTU25 and ds.data.shape == (2, 3, 9, 25, 2)
    assert ds.class_names == ["0", "1", "2"] and ds.labels.tolist() == [2, 0]
    assert ds.samples["camera"].tolist() == [1, -1] and ds.split_names == []
    np.testing.assert_allclose(ds.clip(0)[..., 0], one.transpose(2, 0, 1), rtol=1e-6)
    assert not ds.clip(0)[..., 1].any()  # the missing second person is zeros
    np.testing.assert_array_equal(ds.clip(1), two.transpose(3, 0, 2, 1))


STICK = doc_files()["stickfigures/topology.json"]
WAVE = doc_files()["stickfigures/sequences/wave01.csv"]


def stick(tmp_path: Path, changes: dict[str, str | None] | None = None) -> Path:
    """A two-clip stick-figure folder; `changes` replaces files (None leaves a file out)."""
    files = {"topology.json": STICK, "sequences/wave01.csv": WAVE, "sequences/other.csv": WAVE,
             "labels.csv": "name,label\nwave01,0\nother,1\n", **(changes or {})}
    return write(tmp_path / "d", {k: v for k, v in files.items() if v is not None})


@pytest.mark.parametrize("files,where,message", [
    ({"sequences/other.csv": WAVE.replace("0.4,1.8,3.0\n", "0.4,1.8\n", 1)}, ("sequences/other.csv", 2),
     "expected 15 numbers, found 14"),
    ({"sequences/other.csv": "0,0,0, 1,1,1\n"}, ("sequences/other.csv", 1), "expected a multiple of 15"),
    ({"sequences/other.csv": WAVE.replace("0.4,1.8,3.0\n", "0.4,nan,3.0\n", 1)}, ("sequences/other.csv", 2),
     "NaN or Inf"),
    ({"classes.txt": "wave\njump\n", "labels.csv": "name,label\nwave01,0\nother,2\n"}, ("labels.csv", 3),
     "label 2 is outside 0..1 (2 classes in classes.txt)"),
    ({"classes.txt": "wave\njump\n", "labels.csv": "name,label\nwave01,wave\nother,jumps\n"}, ("labels.csv", 3),
     "did you mean 'jump'"),
    ({"labels.csv": "name,label\nwave01,0\nother,-1\n"}, ("labels.csv", 3), "must be >= 0"),
    ({"labels.csv": "name,label\nwave01,0\nwave02,1\n"}, ("labels.csv", 3), "no sequence file sequences/wave02"),
    ({"labels.csv": "name,label\nwave01,0\nwave01,1\n"}, ("labels.csv", 3), "listed twice (also on line 2)"),
    ({"labels.csv": "name,lable\nwave01,0\n"}, ("labels.csv", 1), "did you mean 'label'"),
    ({"labels.csv": "name,label,subject\nwave01,0,x\n"}, ("labels.csv", 2), "'subject' must be an integer"),
    ({"labels.csv": "name,label\nwave01,0\nother\n"}, ("labels.csv", 3), "expected 2 comma-separated values"),
    ({"splits.csv": "name,split,part\nwave01,xsub,train\nwav01,xsub,test\n"}, ("splits.csv", 3),
     "unknown sequence name 'wav01' (did you mean 'wave01'?)"),
    ({"splits.csv": "name,split,part\nwave01,xsub,train\nwave01,xsub,test\n"}, ("splits.csv", 3),
     "already in split 'xsub' (line 2)"),
    ({"labels.csv": None, "intervals.csv": "name,label,start,end\nwave01,0,2,2\n"}, ("intervals.csv", 2),
     "start 2 is not before end 2"),
    ({"labels.csv": None, "intervals.csv": "name,label,start,end\nwave1,0,0,2\n"}, ("intervals.csv", 2),
     "did you mean 'wave01'"),
])
def test_errors_name_file_and_line(tmp_path: Path, files: dict, where: tuple[str, int], message: str):
    root = stick(tmp_path, files)
    with pytest.raises(DataError) as err:
        prepare_generic(root, tmp_path / "out")
    assert (err.value.path, err.value.line) == (str(root / where[0]), where[1])
    assert message in err.value.reason
    assert not (tmp_path / "out").exists()


def test_npy_errors(tmp_path: Path):
    root = stick(tmp_path)
    (root / "sequences" / "other.csv").unlink()
    np.save(root / "sequences" / "other.npy", np.zeros((4, 6, 3)))
    with pytest.raises(DataError, match=r"other.npy: shape \(4, 6, 3\) has 6 joints; the topology has 5"):
        prepare_generic(root, tmp_path / "out")
    bad = np.zeros((4, 5, 3))
    bad[2, 3, 1] = np.inf
    np.save(root / "sequences" / "other.npy", bad)
    with pytest.raises(DataError, match=r"frame 2 \(0-based\), person 0, joint 3 is NaN or Inf"):
        prepare_generic(root, tmp_path / "out")
    np.save(root / "sequences" / "wave01.npy", bad)
    with pytest.raises(DataError, match="two files for sequence 'wave01'"):
        prepare_generic(root, tmp_path / "out")


def test_layout_errors(tmp_path: Path):
    root = stick(tmp_path, {"intervals.csv": "name,label,start,end\n"})
    with pytest.raises(DataError, match="both labels.csv .* and intervals.csv"):
        prepare_generic(root, tmp_path / "out")
    root = stick(tmp_path / "b", {"topology.json": None})
    with pytest.raises(DataError, match="no topology: add topology.json or pass --topology"):
        prepare_generic(root, tmp_path / "out")
    with pytest.raises(UnknownNameError, match="Did you mean 'ntu25'"):
        prepare_generic(root, tmp_path / "out", topology="ntu52")


def test_split_column_and_splits_file_together(tmp_path: Path):
    root = stick(tmp_path, {"labels.csv": "name,label,split\nwave01,0,train\nother,1,\n",
                            "splits.csv": "name,split,part\nwave01,xview,test\nother,xview,train\n"})
    ds = open_prepared(prepare_generic(root, tmp_path / "out", split_name="mine"))
    assert ds.split_counts() == {"mine": {"train": 1}, "xview": {"test": 1, "train": 1}}
    with pytest.raises(DataError, match="also given by the 'split' column"):
        prepare_generic(root, tmp_path / "out2", split_name="xview")
