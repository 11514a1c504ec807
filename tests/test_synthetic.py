"""The built-in synthetic dataset: kinematics, clips, untrimmed videos, splits and the dataset kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.cli import main as cli
from harness.config import DataConfig
from harness.data.synthetic import dataset as syn
from harness.data.synthetic import videos as synthetic_videos
from harness.data.prepared.kinds import resolve_dataset
from harness.data.prepared.format import check_prepared, open_prepared
from harness.transforms.resample import resample
from harness.data.synthetic.motions import (ACTIONS, CLASS_NAMES, TRACK_INDEX, TRACK_NAMES,
                                            TWO_PERSON_CLASSES, Tracks, mirror)
from harness.data.topology import NTU25
from harness.registry import DATASETS

pytestmark = pytest.mark.unit

J = syn.J


@pytest.fixture(scope="module")
def clips():
    return syn.generate_trimmed(144, seed=0)


def _pose(**angles: float) -> np.ndarray:
    """FK of one frame with the given tracks (degrees / metres) on the 1.75 m reference body."""
    t = np.zeros((len(TRACK_NAMES), 1))
    for name, value in angles.items():
        t[TRACK_INDEX[name]] = value
    body = np.array([[syn.REFERENCE_BODY[k] for k in syn.BODY_KEYS]])
    return syn.forward_kinematics(t, body)[0]


# --- kinematics --------------------------------------------------------------------------------
def test_rest_pose_stands_on_the_floor_facing_minus_z_with_right_hand_at_plus_x():
    p = _pose()
    assert p[J["left_foot"], 1] == pytest.approx(0.03) and p[J["right_foot"], 1] == pytest.approx(0.03)
    assert 1.55 < p[J["head"], 1] < 1.75
    assert p[J["right_hand"], 0] > 0.1 and p[J["left_hand"], 0] < -0.1
    assert p[J["left_foot"], 2] < p[J["left_ankle"], 2]  # toes point forward (−z)


def test_angle_conventions_match_the_documentation():
    rest = _pose()
    up = _pose(r_abd=170)
    assert up[J["right_hand"], 1] > rest[J["head"], 1]  # arm raised sideways over the head
    forward = _pose(r_flex=90)
    assert forward[J["right_hand"], 2] < -0.5 and abs(forward[J["right_hand"], 1] - forward[J["right_shoulder"], 1]) < 0.05
    bow = _pose(pitch1=40)
    assert bow[J["head"], 2] < rest[J["head"], 2] - 0.3
    squat = _pose(r_hip_flex=90, l_hip_flex=90, r_knee=110, l_knee=110)
    assert squat[J["spine_base"], 1] < rest[J["spine_base"], 1] - 0.25
    assert min(squat[J["left_foot"], 1], squat[J["right_foot"], 1]) == pytest.approx(0.03)
    kick = _pose(r_hip_flex=80)
    assert kick[J["right_foot"], 1] > 0.5 and kick[J["left_foot"], 1] == pytest.approx(0.03)
    turned = _pose(yaw=90)  # a quarter turn to the right: forward becomes +x
    assert turned[J["right_foot"], 0] > turned[J["right_ankle"], 0] + 0.05


def test_mirrored_tracks_give_the_mirror_image_skeleton():
    rng = np.random.default_rng(0)
    tracks = Tracks(1, 20)
    tracks.array[:] = rng.uniform(-40, 40, tracks.array.shape)
    tracks["lift"] = 0
    body = np.tile([[syn.REFERENCE_BODY[k] for k in syn.BODY_KEYS]], (20, 1))
    p = syn.forward_kinematics(tracks.array[:, 0], body)
    mirror(tracks, np.array([True]))
    q = syn.forward_kinematics(tracks.array[:, 0], body)
    expected = p[:, list(NTU25.flip)] * np.array([-1, 1, 1])
    np.testing.assert_allclose(q, expected, atol=1e-9)


# --- trimmed clips -------------------------------------------------------------------------------
def test_clip_shapes_dtypes_lengths_and_padding(clips):
    x, lengths, rows = clips
    assert x.shape == (144, 3, syn.MAX_FRAMES, 25, 2) and x.dtype == np.float32
    assert lengths.min() >= syn.MIN_FRAMES and lengths.max() <= syn.MAX_FRAMES
    assert np.isfinite(x).all()
    beyond = np.arange(syn.MAX_FRAMES)[None, :] >= lengths[:, None]
    assert not x.transpose(0, 2, 1, 3, 4)[beyond].any()
    # person 0 is tracked on nearly every valid frame (dropout bursts are short)
    tracked = np.abs(x[..., 0]).sum(axis=(1, 3)) > 0  # (N, T)
    assert (tracked.sum(1) >= lengths - 20).all()
    assert len(rows) == 144 and {r["label"] for r in rows} <= set(range(len(CLASS_NAMES)))


def test_clips_are_in_camera_space_metres(clips):
    x, lengths, _ = clips
    p0 = x[..., 0]
    z = p0[:, 2][p0[:, 2] != 0]
    assert 1.0 < np.percentile(z, 1) and np.percentile(z, 99) < 5.0  # depth from the sensor
    # the body is upright: head above the feet by a person's height on the first frame
    head_y, foot_y = p0[:, 1, 0, J["head"]], p0[:, 1, 0, [J["left_foot"], J["right_foot"]]].min(1)
    ok = (p0[:, :, 0, J["head"]] != 0).all(1) & (p0[:, :, 0, J["left_foot"]] != 0).all(1)
    assert np.median((head_y - foot_y)[ok]) == pytest.approx(1.55, abs=0.2)


def test_two_person_classes_have_a_second_person_and_others_do_not(clips):
    x, lengths, rows = clips
    labels = np.array([r["label"] for r in rows])
    pair = np.isin(labels, TWO_PERSON_CLASSES)
    assert pair.any() and (~pair).any()
    second = np.abs(x[..., 1]).sum(axis=(1, 3))  # (N, T)
    assert not second[~pair].any()
    frames_with_second = (second[pair] > 0).sum(1)
    assert (frames_with_second >= lengths[pair] - 20).all()


def test_classes_are_balanced_and_lengths_overlap_across_classes():
    plan = syn.plan_clips(1200, 0, syn.make_subjects(0))
    counts = np.bincount(plan.label, minlength=len(ACTIONS))
    assert counts.max() - counts.min() <= 1
    assert set(np.unique(plan.subject)) == set(range(1, syn.NUM_SUBJECTS + 1))
    assert set(np.unique(plan.camera)) == {1, 2, 3}
    assert ((plan.start >= 0) & (plan.start < plan.end) & (plan.end <= plan.length)).all()
    # no class is given away by its duration: most classes share most of their length range
    per_class = [plan.length[plan.label == c] for c in range(len(ACTIONS))]
    lo, hi = np.array([np.percentile(v, 25) for v in per_class]), np.array([np.percentile(v, 75) for v in per_class])
    overlapping = (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])
    assert overlapping.mean() > 0.6


def test_same_seed_gives_byte_identical_arrays_and_another_seed_does_not():
    a, la, ra = syn.generate_trimmed(40, seed=5)
    b, lb, rb = syn.generate_trimmed(40, seed=5)
    c, _, _ = syn.generate_trimmed(40, seed=6)
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb) and ra == rb
    assert a.tobytes() != c.tobytes()


def test_a_small_classifier_beats_chance_by_far(clips):
    """A real learning problem: ridge regression on centred, resampled joints, random split."""
    x, lengths, rows = clips
    more = syn.generate_trimmed(216, seed=1)
    x = np.concatenate([x, more[0]])
    lengths = np.concatenate([lengths, more[1]])
    y = np.array([r["label"] for r in rows + more[2]])
    t = torch.from_numpy(x)
    t = torch.where(t != 0, t - t[:, :, :, 1:2, 0:1], t)  # centre on person 0's spine mid
    f = resample(t, torch.from_numpy(lengths), 16).reshape(len(x), -1).double().numpy()
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:250], perm[250:]
    mu, sd = f[tr].mean(0), f[tr].std(0) + 1e-6
    f = (f - mu) / sd
    onehot = np.eye(len(CLASS_NAMES))[y[tr]]
    # ridge in its dual form (250 samples, 2400 features): w = Xᵀ (X Xᵀ + λI)⁻¹ Y
    alpha = np.linalg.solve(f[tr] @ f[tr].T + 300.0 * np.eye(len(tr)), onehot)
    acc = ((f[te] @ (f[tr].T @ alpha)).argmax(1) == y[te]).mean()
    assert acc > 5 / len(CLASS_NAMES), acc  # chance is 1/24


# --- untrimmed videos ---------------------------------------------------------------------------
def test_video_plans_have_ordered_non_overlapping_intervals_between_background():
    plan = syn.plan_videos(40, 0, syn.make_subjects(0))
    assert (plan.length >= syn.VIDEO_FRAMES[0]).all() and (plan.length <= syn.VIDEO_FRAMES[1]).all()
    assert (plan.partner[plan.gap == 0] == 0).all() and (plan.gap[plan.partner > 0] > 0).all()
    for i in range(40):
        iv = plan.intervals(i)
        assert syn.VIDEO_ACTIONS[0] <= len(iv) <= syn.VIDEO_ACTIONS[1]
        labels = plan.frame_labels(i)
        assert labels[0] == -1 and labels[-1] == -1  # videos start and end with background
        for (la, sa, ea), (_, sb, _) in zip(iv, iv[1:]):
            assert 0 <= sa < ea <= plan.length[i] and sb - ea >= syn.BACKGROUND_GAP[0]
        for label, start, end in iv:
            assert (labels[start:end] == label).all()
            assert plan.partner[i] or label not in TWO_PERSON_CLASSES
        covered = sum(e - s for _, s, e in iv)
        assert (labels == -1).sum() == plan.length[i] - covered  # everything else is unlabelled


def test_rendered_videos_are_continuous_and_single_person_videos_leave_slot_two_empty(monkeypatch):
    # make_videos reads these in synthetic_videos (re-exported from synthetic for reading only)
    monkeypatch.setattr(synthetic_videos, "NOISE_RANGE", (0.0, 0.0))
    monkeypatch.setattr(synthetic_videos, "DROPOUT_RATE", 0.0)
    plan = syn.plan_videos(6, 2, syn.make_subjects(2))
    (_, videos, lengths, rows), = list(syn.iter_untrimmed(6, 2, plan))
    assert videos.shape == (6, 3, plan.length.max(), 25, 2) and videos.dtype == np.float32
    for i in range(6):
        v = videos[i, :, :lengths[i]]
        assert not videos[i, :, lengths[i]:].any()
        assert bool(np.abs(v[..., 1]).sum() > 0) == bool(plan.partner[i])
        # no teleporting at segment boundaries: the spine moves less than 10 cm a frame
        step = np.linalg.norm(np.diff(v[:, :, J["spine_mid"], 0], axis=1), axis=0)
        assert step.max() < 0.1
    assert all(r["label"] == -1 for r in rows)


# --- the dataset kind ----------------------------------------------------------------------------
def test_registered_as_a_dataset_kind_with_variants():
    entry = DATASETS.entry("synthetic")
    assert entry.variants == ("trimmed", "untrimmed")
    assert entry.obj.untrimmed_variant == "untrimmed"


@pytest.mark.e2e
def test_prepare_command_roundtrip(tmp_path, clips):
    out = tmp_path / "syn"
    assert cli(["data", "prepare", "synthetic", "--out", str(out), "--num-samples", "48"]) == 0
    ds = open_prepared(out)
    assert ds.data.shape == (48, 3, 300, 25, 2) and ds.class_names == list(CLASS_NAMES)
    assert check_prepared(ds) == []
    x, lengths, rows = syn.generate_trimmed(48, seed=0)
    # the folder holds the generated clips after the NTU normalisation (centred, shoulders on +x)
    assert np.array_equal(np.asarray(ds.data), syn.normalize(x)) and np.array_equal(ds.lengths, lengths)
    spine = np.asarray(ds.data[:, :, :, 1, 0])  # person 0's spine middle
    assert np.abs(spine).max() < 1e-6
    assert ds.samples["name"].tolist() == [r["name"] for r in rows]
    for split in ("xsub", "xview"):
        train, test = ds.indices(split, "train"), ds.indices(split, "test")
        assert not set(train) & set(test) and sorted([*train, *test]) == list(range(48))
    subj = ds.samples["subject"].to_numpy()
    assert set(subj[ds.indices("xsub", "train")]) <= set(syn.XSUB_TRAIN_SUBJECTS)
    assert not set(subj[ds.indices("xsub", "test")]) & set(syn.XSUB_TRAIN_SUBJECTS)
    assert set(ds.samples["camera"].to_numpy()[ds.indices("xview", "test")]) == {1}


def test_untrimmed_auto_prepare_roundtrip_and_cache(tmp_path):
    data = DataConfig(dataset="synthetic", num_samples=40, seed=3, options={"num_videos": 3})
    ds = resolve_dataset(data, tmp_path, untrimmed=True)
    assert ds.untrimmed and ds.num_samples == 3 and ds.num_persons == 2
    plan = syn.plan_videos(3, 3, syn.make_subjects(3))
    assert np.array_equal(ds.lengths, plan.length)
    for i in range(3):
        got = [tuple(r) for r in ds.video_intervals(i)[["label", "start", "end"]].itertuples(index=False)]
        assert got == plan.intervals(i)
    assert (ds.samples["label"] == -1).all() and check_prepared(ds) == []
    for split in ("xsub", "xview"):
        parts = [set(ds.indices(split, part)) for part in ("train", "test")]
        assert not parts[0] & parts[1] and parts[0] | parts[1] == {0, 1, 2}
    stamp = (ds.root / "data.npy").stat().st_mtime_ns
    assert resolve_dataset(data, tmp_path, untrimmed=True).root == ds.root
    assert (ds.root / "data.npy").stat().st_mtime_ns == stamp  # cached, not regenerated


@pytest.mark.e2e
def test_prepare_rejects_raw_input(tmp_path, capsys):
    assert cli(["data", "prepare", "synthetic", "--out", str(tmp_path / "x"), "--raw", "somewhere"]) == 2
    assert "drop --raw" in capsys.readouterr().err
