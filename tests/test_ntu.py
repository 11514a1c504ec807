"""The NTU .skeleton parser, the UmURL preprocessing steps and the ntu60/ntu120 dataset kinds."""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest

from harness.data.readers.ntu import ntu_rgbd as ntu
from harness.transforms import normalize as pp
from harness.data.readers.ntu.ntu_splits import training_mask
from harness.data.prepared.format import open_prepared
from harness.data.topology import NTU25
from harness.errors import DataError

pytestmark = pytest.mark.unit

REAL = {"S001C001P001R001A011": (82, 1), "S001C003P008R002A058": (70, 2), "S004C002P003R001A017": (124, 1)}


# --- writing small .skeleton files ------------------------------------------------------------

def skeleton_text(frames: list[list[np.ndarray]]) -> str:
    """frames[t] = list of (25, 3) arrays, one per body → .skeleton text with CRLF endings."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for b, xyz in enumerate(bodies):
            out.append(f"7205759403793{b:04d} 0 1 1 1 1 0 -0.1 0.14 2")
            out.append(str(len(xyz)))
            for x, y, z in xyz:
                out.append(f"{x:.7g} {y:.7g} {z:.7g} 276.1 190.1 1032.3 514.1 -0.17 0.04 0.97 -0.16 2")
    return "\r\n".join(out) + "\r\n"


def random_body(rng, t_offset=0.0):
    return rng.normal(size=(25, 3)).round(4) + np.array([0, 0, 3.0]) + t_offset


def write(path, frames):
    path.write_bytes(skeleton_text(frames).encode("ascii"))
    return path


# --- the parser -------------------------------------------------------------------------------

@pytest.mark.real
def test_real_files(real_data):
    for name, (frames, bodies) in REAL.items():
        sk = ntu.read_skeleton(real_data / "ntu" / "samples" / f"{name}.skeleton")
        assert sk.joints.shape == (4, frames, 25, 3)
        assert (sk.body_counts == bodies).all()
        assert (sk.joints[:bodies] != 0).any(axis=(2, 3)).all()  # every kept body in every frame
        assert not sk.joints[bodies:].any()
    sk = ntu.read_skeleton(real_data / "ntu" / "samples" / "S001C001P001R001A011.skeleton")
    np.testing.assert_array_equal(sk.joints[0, 0, 0], [0.2058097, 0.1920515, 3.810989])  # line 5


def test_round_trip_and_body_cap(tmp_path):
    rng = np.random.default_rng(0)
    frames = [[random_body(rng) for _ in range(k)] for k in (1, 0, 5, 2)]
    sk = ntu.read_skeleton(write(tmp_path / "S001C001P001R001A001.skeleton", frames))
    assert sk.body_counts.tolist() == [1, 0, 5, 2]
    assert sk.joints.shape == (4, 4, 25, 3)
    for t, bodies in enumerate(frames):
        for b in range(4):
            want = bodies[b] if b < len(bodies) else np.zeros((25, 3))
            np.testing.assert_allclose(sk.joints[b, t], want, rtol=1e-6)  # the 5th body is dropped


def _lines(frames):
    return skeleton_text(frames).split("\r\n")


@pytest.mark.parametrize("edit, message, line", [
    (lambda ls: ls[:20], r"file ends early \(truncated\?\) inside frame 1, body 1", 21),
    (lambda ls: ls[:3], "file ends early", 4),
    (lambda ls: ls[:1], "expected the body count of frame 1", 2),
    (lambda ls: ls[:3] + ["24"] + ls[4:], "expected 25 joints", 4),
    (lambda ls: ls[:6] + ["0.1 nan 3.0 1 1 1 1 0 0 0 0 2"] + ls[7:], r"NaN or infinite coordinate", 7),
    (lambda ls: ls[:6] + ["0.1 0.2 3.0 1 1 1 1 0 0 0 2"] + ls[7:], "expected 12 joint values", 7),
    (lambda ls: ls[:6] + ["0.1 abc 3.0 1 1 1 1 0 0 0 0 2"] + ls[7:], "'abc' is not a number", 7),
    (lambda ls: ls[:2] + ["1 2 3"] + ls[3:], "expected 10 body-info values", 3),
    (lambda ls: ["two"] + ls[1:], "expected the frame count", 1),
    (lambda ls: ["0"], "the file holds no frames", 1),
    (lambda ls: ls + ["1", "junk"], "unexpected content after the last of the 2 frames", 59),  # 58 is blank
])
def test_broken_files_name_file_and_line(tmp_path, edit, message, line):
    rng = np.random.default_rng(1)
    lines = edit(_lines([[random_body(rng)], [random_body(rng)]]))
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes("\r\n".join(lines).encode("ascii"))
    with pytest.raises(DataError, match=message) as err:
        ntu.read_skeleton(path)
    assert err.value.path == str(path) and err.value.line == line


def test_empty_and_binary_files(tmp_path):
    empty = tmp_path / "S001C001P001R001A001.skeleton"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        ntu.read_skeleton(empty)
    binary = tmp_path / "S001C001P001R001A002.skeleton"
    binary.write_bytes(b"1\r\n\xff\xfe")
    with pytest.raises(DataError, match="non-ASCII") as err:
        ntu.read_skeleton(binary)
    assert err.value.line == 2


# --- preprocessing steps on hand-made arrays ---------------------------------------------------

def test_body_energy_and_selection():
    t = np.linspace(0, 1, 6)[:, None, None]
    still = np.ones((6, 25, 3))
    small = 1 + 0.1 * t * np.ones((6, 25, 3))
    big = 1 + t * np.ones((6, 25, 3))
    bodies = np.stack([small, np.zeros((6, 25, 3)), big, still])
    energy = pp.body_energy(bodies)
    assert energy[1] == 0 and energy[3] == 0
    np.testing.assert_allclose(energy[[0, 2]], [3 * (0.1 * t).std(), 3 * t.std()])
    chosen, order = pp.select_bodies(bodies, 2)
    assert order.tolist() == [2, 0]
    np.testing.assert_array_equal(chosen[0], big)
    # energy uses only non-empty frames: a body present in 2 of 6 frames
    part = np.zeros((6, 25, 3))
    part[[1, 4]] = big[[1, 4]]
    assert np.isclose(pp.body_energy(part[None])[0], 3 * big[[1, 4], 0, 0].std())
    # ties keep the reference order (argsort then reverse): the later body first
    assert pp.select_bodies(np.stack([still, still * 2, still * 3]), 2)[1].tolist() == [2, 1]


def _person(pattern):
    """(1, 1, T, 2, 3) with frame value k+1 where pattern has k >= 0, zeros where it has -1."""
    s = np.zeros((1, 1, len(pattern), 2, 3), dtype=np.float32)
    for t, k in enumerate(pattern):
        if k >= 0:
            s[0, 0, t] = k + 1
    return s


def _frame_ids(s):
    return [int(f[0, 0]) - 1 if f.any() else -1 for f in s[0, 0]]


@pytest.mark.parametrize("pattern, expected", [
    ([0, 1, -1, -1, -1, -1, -1], [0, 1, 0, 1, 0, 1, 0]),  # cyclic repeat of frames [0, f)
    ([-1, 0, -1, 1, -1, -1, -1], [0, 1, 0, 1, 0, 1, 0]),  # empty first frame: compact, then repeat
    ([0, -1, 1, -1, -1], [0, -1, 1, 0, -1]),  # inner gap kept when frame 0 is present
    ([0, 1, 2, 3], [0, 1, 2, 3]),  # nothing to pad
    ([-1, -1, -1], [-1, -1, -1]),  # an empty person stays empty
])
def test_pad_null_frames(pattern, expected):
    assert _frame_ids(pp.pad_null_frames(_person(pattern))) == expected


def test_centre_per_frame_keeps_zero_joints():
    rng = np.random.default_rng(2)
    s = rng.normal(size=(1, 2, 4, 25, 3)).astype(np.float32)
    s[0, 1, 2] = 0  # person 1 absent in frame 2
    s[0, 1, 3, 7] = 0  # one missing joint
    out = pp.centre(s, 1)
    np.testing.assert_allclose(out[0, 0, :, 1], 0)  # person 0's spine middle is the origin
    np.testing.assert_allclose(out[0, 1, 0], s[0, 1, 0] - s[0, 0, 0, 1])  # person 1: person 0's centre
    np.testing.assert_allclose(out[0, 1, 1], s[0, 1, 1] - s[0, 0, 1, 1])  # ... of the same frame
    assert not out[0, 1, 2].any() and not out[0, 1, 3, 7].any()


def test_rotation_matrix_is_euler_rodrigues():
    rng = np.random.default_rng(3)
    for _ in range(20):
        v, target = rng.normal(size=3), rng.normal(size=3)
        r = pp.rotation_to(v, target)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(r), 1)
        np.testing.assert_allclose(r @ v, np.linalg.norm(v) * target / np.linalg.norm(target), atol=1e-12)
    # counter-clockwise quarter turn about +z takes +x to +y
    np.testing.assert_allclose(pp.rotation_matrix([0, 0, 1], np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # the reference's guards: identity when the axis or the angle vanishes (also for opposite vectors)
    np.testing.assert_array_equal(pp.rotation_to([2.0, 0, 0], [1, 0, 0]), np.eye(3))
    np.testing.assert_array_equal(pp.rotation_to([-2.0, 0, 0], [1, 0, 0]), np.eye(3))
    np.testing.assert_array_equal(pp.rotation_to([0, 0, 0], [1, 0, 0]), np.eye(3))


def _skeleton_batch(rng, n=3, t=10, m=2):
    data = rng.normal(size=(n, 3, t, 25, m)).astype(np.float32)
    data[0, :, 6:] = 0  # a short sample: trailing null frames for both persons
    data[1, :, :, :, 1] = 0  # a one-person sample
    data[2, :, :2, :, 1] = 0  # person 1 enters late: compaction
    data[2, :, 5, 3, 0] = 0  # a missing joint
    return data


def test_x_alignment_puts_shoulders_on_x_and_keeps_shape():
    rng = np.random.default_rng(4)
    data = _skeleton_batch(rng)
    out = pp.pre_normalization(data)
    assert out.shape == data.shape and out.dtype == np.float32
    left, right = NTU25.shoulders
    shoulder = out[:, :, 0, right, 0] - out[:, :, 0, left, 0]  # (N, 3)
    np.testing.assert_allclose(shoulder[:, 1:], 0, atol=1e-5)
    assert (shoulder[:, 0] > 0).all()
    np.testing.assert_allclose(out[:, :, :, NTU25.center, 0], 0, atol=1e-6)  # centred every frame
    # rotation keeps distances to the centre
    centred = pp.centre(pp.pad_null_frames(data.transpose(0, 4, 2, 3, 1)), NTU25.center)
    np.testing.assert_allclose(np.linalg.norm(out.transpose(0, 4, 2, 3, 1), axis=-1),
                               np.linalg.norm(centred, axis=-1), rtol=1e-4, atol=1e-5)


def test_z_alignment_is_optional():
    rng = np.random.default_rng(5)
    data = _skeleton_batch(rng)
    s = pp.centre(pp.pad_null_frames(data.transpose(0, 4, 2, 3, 1)), NTU25.center)
    base, spine = NTU25.hip_spine
    z = pp.align(s, (spine, base), np.array([0.0, 0.0, 1.0]))
    v = z[:, 0, 0, spine] - z[:, 0, 0, base]
    np.testing.assert_allclose(v[:, :2], 0, atol=1e-5)
    assert (v[:, 2] > 0).all()
    plain, aligned = pp.pre_normalization(data), pp.pre_normalization(data, z_align=True)
    assert not np.allclose(plain, aligned)


def _loop_reference(data, z_align):
    """A plain per-person, per-frame, per-joint transcription of docs/reference/data-formats.md §4 step 4."""
    s = data.transpose(0, 4, 2, 3, 1).copy()
    n, m, t = s.shape[:3]
    for i in range(n):
        for p in range(m):
            person = s[i, p]
            if not person.any():
                continue
            if not person[0].any():
                kept = person[[f.any() for f in person]].copy()
                person[:] = 0
                person[:len(kept)] = kept
            for f in range(t):
                if not person[f:].any():
                    for k in range(f, t):
                        person[k] = person[k % f]
                    break
    for i in range(n):
        center = s[i, 0, :, 1].copy()
        for p in range(m):
            for f in range(t):
                for j in range(25):
                    if s[i, p, f, j].any():
                        s[i, p, f, j] -= center[f]
    axes = ([((1, 0), [0, 0, 1])] if z_align else []) + [((8, 4), [1, 0, 0])]
    for (a, b), target in axes:
        for i in range(n):
            rot = pp.rotation_to(s[i, 0, 0, a] - s[i, 0, 0, b], np.array(target, dtype=float))
            for p in range(m):
                for f in range(t):
                    for j in range(25):
                        s[i, p, f, j] = rot @ s[i, p, f, j]
    return s.transpose(0, 4, 2, 3, 1)


@pytest.mark.parametrize("z_align", [False, True])
def test_vectorised_matches_loops(z_align):
    data = _skeleton_batch(np.random.default_rng(6), n=3, t=8)
    np.testing.assert_allclose(pp.pre_normalization(data, z_align=z_align), _loop_reference(data, z_align),
                               rtol=1e-5, atol=1e-6)


# --- one sample and the dataset kinds ---------------------------------------------------------

@pytest.mark.real
def test_load_real_samples(real_data):
    for name, (frames, bodies) in REAL.items():
        s = ntu.load_sample(real_data / "ntu" / "samples" / f"{name}.skeleton")
        assert s.clip.shape == (3, frames, 25, 2) and s.raw_frames == frames and s.max_bodies == bodies
        assert np.isfinite(s.clip).all()
        np.testing.assert_allclose(s.clip[:, :, 1, 0], 0, atol=1e-6)
        shoulder = s.clip[:, 0, 8, 0] - s.clip[:, 0, 4, 0]
        np.testing.assert_allclose(shoulder[1:], 0, atol=1e-6)
        assert s.clip[:, :, :, 1].any() == (bodies == 2)


def test_max_frames_cuts_long_files(tmp_path):
    rng = np.random.default_rng(7)
    path = write(tmp_path / "S001C001P001R001A001.skeleton", [[random_body(rng)] for _ in range(12)])
    full = ntu.load_sample(path)
    cut = ntu.load_sample(path, max_frames=8)
    assert cut.clip.shape[1] == 8 and cut.raw_frames == 12
    np.testing.assert_allclose(cut.clip, full.clip[:, :8], atol=1e-6)


def test_file_without_bodies_is_an_error(tmp_path):
    path = write(tmp_path / "S001C002P005R002A008.skeleton", [[], []])
    with pytest.raises(DataError, match="no body in any frame"):
        ntu.load_sample(path)


def _args(raw, out, **kw):
    base = dict(raw=str(raw), out=str(out), overwrite=False, split="all", z_align=False,
                max_frames=300, missing=None, workers=1)
    base.update(kw)
    return argparse.Namespace(**base)


def _fake_folder(tmp_path, names, frames=5):
    rng = np.random.default_rng(8)
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    for k, name in enumerate(names):
        folder = raw / "sub" if k % 2 else raw
        write(folder / f"{name}.skeleton", [[random_body(rng, 0.1 * t)] for t in range(frames)])
    return raw


def test_prepare_ntu60_skips_missing_and_other_setups(tmp_path):
    names = ["S001C001P001R001A001", "S001C002P003R001A002", "S017C003P040R002A060",
             "S018C001P045R001A061",  # NTU-120 only: skipped by ntu60
             "S001C002P005R002A008"]  # on the official missing list
    raw = _fake_folder(tmp_path, names)
    out = ntu.Ntu60.prepare(_args(raw, tmp_path / "n60"))[0]
    ds = open_prepared(out)
    assert ds.samples["name"].tolist() == names[:3]
    assert ds.labels.tolist() == [0, 1, 59]
    assert ds.samples["subject"].tolist() == [1, 3, 40] and ds.samples["camera"].tolist() == [1, 2, 3]
    assert ds.class_names[57] == "handshaking" and ds.num_classes == 60
    assert ds.lengths.tolist() == [5, 5, 5] and ds.max_frames == 300 and ds.num_persons == 2
    assert ds.split_counts() == {"xsub": {"train": 1, "test": 2}, "xview": {"train": 2, "test": 1}}
    src = ds.meta["source"]
    assert (src["skipped_missing"], src["skipped_other_setups"], src["z_align"]) == (1, 1, False)
    # ntu120 keeps both the S018 sample and (with --missing none) the listed one
    ds120 = open_prepared(ntu.Ntu120.prepare(_args(raw, tmp_path / "n120", missing="none"))[0])
    assert ds120.num_samples == 5 and ds120.num_classes == 120 and ds120.split_names == ["xset", "xsub"]
    with pytest.raises(DataError, match="no ntu60 samples left"):
        ntu.Ntu60.prepare(_args(raw / "sub", tmp_path / "none", missing=str(_missing_file(tmp_path, names))))


def _missing_file(tmp_path, names):
    path = tmp_path / "missing.txt"
    path.write_text("\n".join(names))
    return path


def test_prepare_options(tmp_path):
    raw = _fake_folder(tmp_path, ["S001C001P001R001A001", "S002C002P002R002A002"], frames=9)
    ds = open_prepared(ntu.Ntu60.prepare(_args(raw, tmp_path / "a", split="xview", z_align=True,
                                                max_frames=6))[0])
    assert ds.split_names == ["xview"] and ds.max_frames == 6 and ds.lengths.tolist() == [6, 6]
    assert ds.meta["source"]["z_align"] and ds.meta["source"]["truncated"] == 2
    (raw / "S003C001P001R001A001.skeleton").write_text("")
    with pytest.raises(DataError, match="S003C001P001R001A001.skeleton: empty file"):
        ntu.Ntu60.prepare(_args(raw, tmp_path / "b"))
    assert not (tmp_path / "b").exists()  # nothing half-written


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.real
def test_prepare_real_samples_with_a_pool(tmp_path, real_data):
    src = real_data / "ntu" / "samples"
    paths = sorted(src.glob("*.skeleton"))
    serial = list(ntu.iter_samples(paths, max_frames=300, z_align=False, workers=1))
    broken = tmp_path / "S001C001P001R001A001.skeleton"
    broken.write_bytes(b"2\r\n1\r\n")  # ends where the body-info line should be
    pooled = []
    with pytest.raises(DataError, match="file ends early") as err:  # a worker's error, re-raised here
        for sample in ntu.iter_samples(paths + [broken], max_frames=300, z_align=False, workers=2, chunk=1):
            pooled.append(sample)
    assert err.value.path == str(broken) and err.value.line == 3
    for a, b in zip(serial, pooled, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.clip, b.clip)
    from harness.cli import main

    assert main(["data", "prepare", "ntu60", "--raw", str(src), "--out", str(tmp_path / "n60"),
                 "--workers", "1"]) == 0
    ds = open_prepared(tmp_path / "n60")
    assert ds.samples["name"].tolist() == sorted(REAL)
    assert ds.lengths.tolist() == [REAL[n][0] for n in sorted(REAL)]
    for i, s in enumerate(serial):
        np.testing.assert_array_equal(ds.clip(i), s.clip)
        assert not ds.data[i, :, ds.lengths[i]:].any()
    # the prepare command's splits are the one split rule
    cols = {k: ds.samples[c].to_numpy() for k, c in (("performer", "subject"), ("camera", "camera"),
                                                     ("setup", "setup"))}
    for split in ("xsub", "xview"):
        train = training_mask("ntu60", split, **cols)
        assert ds.indices(split, "train").tolist() == np.flatnonzero(train).tolist()


def test_duplicate_and_badly_named_files(tmp_path):
    raw = _fake_folder(tmp_path, ["S001C001P001R001A001"])
    shutil.copy(raw / "S001C001P001R001A001.skeleton", raw / "sub")
    with pytest.raises(DataError, match="appears twice"):
        ntu.Ntu60.prepare(_args(raw, tmp_path / "x"))
    (raw / "sub" / "S001C001P001R001A001.skeleton").unlink()
    (raw / "sub" / "clip1.skeleton").write_text("1\r\n0\r\n")
    with pytest.raises(DataError, match="not an NTU sample name"):
        ntu.Ntu60.prepare(_args(raw, tmp_path / "x"))
