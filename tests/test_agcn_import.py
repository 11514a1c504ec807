"""The agcn (2s-AGCN/UmURL folders) and ctrgcn (.npz) importers, on tiny fake inputs."""

from __future__ import annotations

import argparse
import pickle

import numpy as np
import pytest

from harness.data.readers.ntu import agcn
from harness.data.prepared.format import open_prepared
from harness.errors import DataError

pytestmark = pytest.mark.unit

NAMES = {"train": ["S001C002P001R001A001.skeleton", "S001C003P002R002A002.skeleton",
                   "S002C002P004R001A003.skeleton"],
         "val": ["S001C001P003R001A001.skeleton", "S003C001P006R002A060.skeleton"]}


def _args(raw, out, **kw):
    base = dict(raw=str(raw), out=str(out), overwrite=False, split_name=None, num_classes=None, chunk=2)
    base.update(kw)
    return argparse.Namespace(**base)


def make_agcn(folder, *, t=12, labels_as="pkl", joints=25, persons=2, dtype=np.float32):
    """A UmURL-style split folder. Frames past num_frame hold padding junk, as in real files."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    arrays = {}
    for part, names in NAMES.items():
        n = len(names)
        data = rng.normal(size=(n, 3, t, joints, persons)).astype(dtype)
        num_frame = np.array([t, 5, 20, 1, 7][:n], dtype=np.int64)  # 20 > t: clamped to t
        labels = [int(x.split("A")[1][:3]) - 1 for x in names]
        np.save(folder / f"{part}_data_joint.npy", data)
        np.save(folder / f"{part}_num_frame.npy", num_frame)
        if labels_as == "pkl":
            with open(folder / f"{part}_label.pkl", "wb") as fh:
                pickle.dump((names, labels), fh)
        else:
            np.save(folder / f"{part}_label.npy", np.array(labels))
        arrays[part] = (data, np.minimum(num_frame, t), labels)
    return arrays


def test_agcn_folder(tmp_path):
    arrays = make_agcn(tmp_path / "xsub")
    ds = open_prepared(agcn.AgcnImport.prepare(_args(tmp_path / "xsub", tmp_path / "out"))[0])
    assert ds.kind == "agcn" and ds.num_samples == 5 and ds.num_classes == 60
    assert ds.data.shape == (5, 3, 12, 25, 2) and ds.topology.name == "ntu25"
    assert ds.split_counts() == {"xsub": {"train": 3, "test": 2}}
    assert ds.indices("xsub", "test").tolist() == [3, 4]
    assert ds.samples["name"].tolist()[0] == "S001C002P001R001A001"
    assert ds.samples["subject"].tolist() == [1, 2, 4, 3, 6] and ds.samples["setup"].tolist() == [1, 1, 2, 1, 3]
    assert ds.labels.tolist() == [0, 1, 2, 0, 59]
    assert ds.class_names[0] == "drink water"
    i = 0
    for part in ("train", "val"):
        data, lengths, _ = arrays[part]
        for k in range(len(data)):
            assert ds.lengths[i] == lengths[k]
            np.testing.assert_array_equal(ds.clip(i), data[k, :, :lengths[k]])
            assert not ds.data[i, :, lengths[k]:].any()  # padding junk past num_frame is zeroed
            i += 1


def test_agcn_npy_labels_and_split_name(tmp_path):
    make_agcn(tmp_path / "UmURL_NTU120_xsetup", labels_as="npy", dtype=np.float64)
    ds = open_prepared(agcn.AgcnImport.prepare(_args(tmp_path / "UmURL_NTU120_xsetup", tmp_path / "a"))[0])
    assert ds.split_names == ["xset"]  # UmURL's folder name maps to the harness split name
    assert ds.samples["name"].tolist()[:2] == ["train_000000", "train_000001"]
    assert ds.num_classes == 60  # max label + 1 = 60 → no NTU names known: plain class ids
    assert ds.class_names[:2] == ["0", "1"] and ds.data.dtype == np.float32
    ds = open_prepared(agcn.AgcnImport.prepare(_args(tmp_path / "UmURL_NTU120_xsetup", tmp_path / "b",
                                                     split_name="xview", num_classes=61))[0])
    assert ds.split_names == ["xview"] and ds.num_classes == 61


@pytest.mark.parametrize("kw, message", [
    (dict(joints=20), "has 20 joints; only NTU 25-joint"),
    (dict(persons=1), "has 1 persons; expected 2"),
])
def test_agcn_shape_errors(tmp_path, kw, message):
    make_agcn(tmp_path / "xsub", **kw)
    with pytest.raises(DataError, match=message):
        agcn.AgcnImport.prepare(_args(tmp_path / "xsub", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_agcn_input_errors(tmp_path):
    folder = tmp_path / "myfolder"
    make_agcn(folder)
    with pytest.raises(DataError, match="cannot tell the split"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out"))
    (folder / "val_num_frame.npy").unlink()
    with pytest.raises(DataError, match="val_num_frame.npy: missing"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub"))
    np.save(folder / "val_num_frame.npy", np.array([3, -1]))
    with pytest.raises(DataError, match="negative frame count at sample 1"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub"))
    np.save(folder / "val_num_frame.npy", np.array([3, 4]))
    with open(folder / "val_label.pkl", "wb") as fh:
        pickle.dump((NAMES["val"], [0, 1, 2]), fh)
    with pytest.raises(DataError, match="has 2 names / 3 labels for 2 samples"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub"))
    with open(folder / "val_label.pkl", "wb") as fh:
        pickle.dump((NAMES["val"], [0, 58]), fh)
    with pytest.raises(DataError, match=r"val_label.pkl: test sample 1 \(S003C001P006R002A060\): label 58, but action A060"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub"))
    with open(folder / "val_label.pkl", "wb") as fh:
        pickle.dump((["a", "b"], [0, 200]), fh)
    with pytest.raises(DataError, match="label 200 outside"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub", num_classes=60))
    with open(folder / "val_label.pkl", "wb") as fh:
        pickle.dump(np.ma.masked_array([1, 2]), fh)  # needs numpy.ma: refused
    with pytest.raises(DataError, match="val_label.pkl: refused to load numpy.ma"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub"))
    with open(folder / "val_label.pkl", "wb") as fh:
        pickle.dump((NAMES["val"], [0, 59]), fh)
    data = np.load(folder / "train_data_joint.npy")
    data[1, 0, 2, 3, 0] = np.nan
    np.save(folder / "train_data_joint.npy", data)
    with pytest.raises(DataError, match="train sample 1 .S001C003P002R002A002. has NaN"):
        agcn.AgcnImport.prepare(_args(folder, tmp_path / "out", split_name="xsub"))


# --- CTR-GCN .npz -----------------------------------------------------------------------------

def make_ctrgcn(path, *, n_train=3, n_test=2, t=10, classes=60, width=150, compressed=False):
    rng = np.random.default_rng(1)
    parts = {}
    for part, n in (("train", n_train), ("test", n_test)):
        x = np.zeros((n, t, width), dtype=np.float32)
        lengths = rng.integers(1, t + 1, size=n)
        for k, ln in enumerate(lengths):
            x[k, :ln] = rng.normal(size=(ln, width))
            if width == 150:
                x[k, :ln, 75:] = 0 if k == 0 else x[k, :ln, 75:]  # sample 0 has one person
        labels = rng.integers(0, classes, size=n)
        parts[f"x_{part}"] = x
        parts[f"y_{part}"] = np.eye(classes, dtype=np.float32)[labels]
        parts[f"_{part}"] = (lengths, labels)
    save = np.savez_compressed if compressed else np.savez
    save(path, **{k: v for k, v in parts.items() if not k.startswith("_")})
    return parts


@pytest.mark.parametrize("compressed", [False, True])
def test_ctrgcn_npz(tmp_path, compressed):
    path = tmp_path / "NTU60_XView.npz"
    parts = make_ctrgcn(path, compressed=compressed)
    ds = open_prepared(agcn.CtrGcnImport.prepare(_args(path, tmp_path / "out"))[0])
    assert ds.kind == "ctrgcn" and ds.split_names == ["xview"] and ds.num_classes == 60
    assert ds.class_names[-1] == "walking apart from each other"
    assert ds.split_counts() == {"xview": {"train": 3, "test": 2}}
    i = 0
    for part in ("train", "test"):
        lengths, labels = parts[f"_{part}"]
        x = parts[f"x_{part}"]
        for k in range(len(x)):
            assert ds.lengths[i] == lengths[k] and ds.labels[i] == labels[k]
            # the CTR-GCN feeder's layout: (T, 150) → (T, M, V, C) → (C, T, V, M)
            want = x[k].reshape(-1, 2, 25, 3).transpose(3, 0, 2, 1)[:, :lengths[k]]
            np.testing.assert_array_equal(ds.clip(i), want)
            i += 1
    assert not ds.data[0, :, :, :, 1].any()  # the one-person sample keeps an empty second person


def test_ctrgcn_errors(tmp_path):
    path = tmp_path / "NTU60_XSub.npz"
    make_ctrgcn(path, width=120)
    with pytest.raises(DataError, match="has 120 values per frame; expected 2 persons × 25 joints"):
        agcn.CtrGcnImport.prepare(_args(path, tmp_path / "out"))
    np.savez(path, x_train=np.zeros((2, 4, 150), np.float32), y_train=np.array([[1, 0], [1, 1]]),
             x_test=np.zeros((1, 4, 150), np.float32), y_test=np.array([[0, 1]]))
    with pytest.raises(DataError, match="row 1 is not one-hot"):
        agcn.CtrGcnImport.prepare(_args(path, tmp_path / "out"))
    np.savez(path, x_train=np.zeros((2, 4, 150), np.float32), y_train=np.eye(2))
    with pytest.raises(DataError, match="has no array 'x_test'"):
        agcn.CtrGcnImport.prepare(_args(path, tmp_path / "out"))
    other = tmp_path / "mine.npz"
    make_ctrgcn(other, classes=51)
    with pytest.raises(DataError, match="pass --split-name"):
        agcn.CtrGcnImport.prepare(_args(other, tmp_path / "out"))
    ds = open_prepared(agcn.CtrGcnImport.prepare(_args(other, tmp_path / "out", split_name="xsub"))[0])
    assert ds.num_classes == 51 and ds.class_names[50] == "50"  # not NTU: plain class ids
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable .npz"):
        agcn.CtrGcnImport.prepare(_args(tmp_path / "cut.npz", tmp_path / "o2", split_name="xsub"))


def test_npz_stream_reads_in_chunks(tmp_path):
    x = np.arange(7 * 4 * 3, dtype=np.float64).reshape(7, 4, 3)
    np.savez(tmp_path / "a.npz", x=x)
    stream = agcn.NpzStream(tmp_path / "a.npz", "x")
    got = [stream.read(3) for _ in range(3)]
    stream.close()
    assert [len(g) for g in got] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(got), x)


def test_infer_split_name():
    assert agcn.infer_split_name("NTU60_XSub") == "xsub"
    assert agcn.infer_split_name("NTU120_XSet") == "xset"
    assert agcn.infer_split_name("xsetup") == "xset"
    assert agcn.infer_split_name("xview") == "xview"
    assert agcn.infer_split_name("data") is None
