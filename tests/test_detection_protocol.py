"""The detection protocol at smoke size on a tiny untrimmed dataset whose actions show in the joints."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.cli import main

from harness.data.prepared.format import PreparedWriter, open_prepared
from harness.data.topology import MSR20
from harness.errors import DataError, HarnessError
from harness.registry import ENCODERS, PROTOCOLS
from harness.contracts import Backbone, EncoderOutput, ModalityBackbone, ProtocolContext
from harness.evaluation import pku_scorer as S
from harness.pipeline import eval_dataset
from harness.protocols import detection as D
from harness.protocols import detection_report as report
from harness.config import load_config

CLASSES = 3
FRAMES = 16


def untrimmed_dataset(root: Path, videos: int = 15, seed: int = 0, gaps: tuple[int, int] = (20, 36),
                      next_label=None):
    """Videos of 150-220 frames; each action interval moves joint `label` by +2 along x.

    Actions last 30-50 frames with 20-35 frames between them (``gaps``), so the 20-frame mean
    filter of the default rule keeps them apart. ``next_label(previous, rng)`` chooses each label.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(150, 221, size=videos)
    lengths[-1] = 10  # the last test video is shorter than a window and has no action
    with PreparedWriter(root, kind="toy-untrimmed", topology=MSR20, num_samples=videos,
                        max_frames=int(lengths.max()), num_persons=1,
                        class_names=[f"c{i}" for i in range(CLASSES)], untrimmed=True) as w:
        for i, length in enumerate(lengths):
            length = int(length)
            clip = rng.normal(scale=0.3, size=(3, length, 20, 1)).astype(np.float32)
            t, label = int(rng.integers(3, 25)), -1
            while True:
                dur = int(rng.integers(30, 51))
                if t + dur > length - 3:
                    break
                label = int(rng.integers(0, CLASSES)) if next_label is None else next_label(label, rng)
                clip[0, t:t + dur, label] += 2.0
                w.add_interval(i, label, t, t + dur)
                t += dur + int(rng.integers(*gaps))
            w.set_sample(i, clip, name=f"{i:04d}-L", subject=i % 7)
        w.add_split("xsub", "train", np.arange(videos - 5))
        w.add_split("xsub", "test", np.arange(videos - 5, videos))
    return open_prepared(root)


class PoseBackbone(Backbone):
    """Frame features = the frame's pose (3·V) through a linear layer and an eval-mode-sensitive BN."""

    def __init__(self, joints: int = 20, constant: bool = False, stride: int = 1):
        super().__init__()
        self.feature_dim = self.frame_dim = 3 * joints
        self.constant, self.stride = constant, stride
        self.proj = nn.Linear(3 * joints, 3 * joints)
        nn.init.eye_(self.proj.weight), nn.init.zeros_(self.proj.bias)
        self.bn = nn.BatchNorm1d(3 * joints)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        if self.constant:
            return torch.ones(n, t // self.stride, self.frame_dim) + 0 * self.proj.bias
        f = self.proj(x.mean(-1).permute(0, 2, 1, 3).reshape(n, t, c * v))
        f = self.bn(f.transpose(1, 2)).transpose(1, 2)
        return f[:, :: self.stride]

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        f = self.frame_features(x)
        return EncoderOutput(pooled=f.mean(1), temporal=f)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return untrimmed_dataset(tmp_path_factory.mktemp("untrimmed") / "toy")


def make_ctx(ds, run_dir: Path, factory, options: dict | None = None, seeds=(0,)) -> ProtocolContext:
    cfg = load_config("smoke", overrides={"protocol.name": "detection", "data.frames": FRAMES,
                                      "protocol.seeds": list(seeds), "protocol.options": options or {}})
    return ProtocolContext(cfg=cfg, dataset=ds, make_backbone=factory, device=torch.device("cpu"),
                           run_dir=run_dir, base_row={"method": "toy", "dataset": "toy-untrimmed",
                                                      "preset": "smoke"})


FAST = {"lr": 0.3, "epochs": 4, "windows_per_video": 4, "batch_size": 16, "stride": 8}


def metrics(rows) -> dict[str, float]:
    return {r.metric: r.value for r in rows}


def test_registered_and_options():
    cls = PROTOCOLS.get("detection")
    assert cls is D.DetectionProtocol and cls.untrimmed and cls.variants == ("linear", "finetune")
    cfg = load_config("paper", overrides={"protocol.name": "detection"})
    r = D.resolve_options(cls(cfg).options)
    assert (r.variant, r.epochs, r.lr, r.batch_size, r.milestones, r.nesterov) == ("linear", 60, 0.01, 64, [40 / 60], True)
    assert (r.opt.smooth_k, r.opt.threshold, r.opt.pad_to, r.opt.theta) == (10, 0.4, 9000, 0.5)
    cfg = load_config("paper", overrides={"protocol.name": "detection", "protocol.options": {"variant": "finetune"}})
    r = D.resolve_options(cls(cfg).options)
    assert (r.epochs, r.lr, r.batch_size, r.milestones, r.nesterov) == (150, 0.005, 512, [], False)
    # cpu: strided, standardised windows and a 1,000-step budget; each variant keeps its schedule
    # with a small-preset lr, decaying for the last quarter
    for variant, lr, milestones in (("linear", 0.1, [0.75]), ("finetune", 0.01, [0.75])):
        cfg = load_config("cpu", overrides={"protocol.name": "detection", "protocol.options": {"variant": variant}})
        r = D.resolve_options(cls(cfg).options, "cpu")
        assert (r.lr, r.milestones, r.opt.steps) == (lr, milestones, 1000)
        assert (r.opt.frame_step, r.opt.standardize, r.opt.windows_per_video) == (4, True, 32)
    cfg = load_config("cpu", overrides={"protocol.name": "detection", "protocol.options": {"lr": 0.2}})
    assert D.resolve_options(cls(cfg).options, "cpu").lr == 0.2
    cfg = load_config("smoke", overrides={"protocol.name": "detection", "protocol.options": {"variant": "probe"}})
    with pytest.raises(HarnessError, match="finetune"):
        D.resolve_options(cls(cfg).options)
    cfg = load_config("smoke", overrides={"protocol.name": "detection", "protocol.options": {"smooth": 3}})
    with pytest.raises(HarnessError, match="smooth_k"):
        cls(cfg)


def test_windows_targets_and_reads(ds):
    for length in (5, 16, 17, 40, 101):
        starts = D.window_starts(length, FRAMES, 8)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + FRAMES] = True
        assert covered.all() and starts[0] == 0 and starts[-1] == max(length - FRAMES, 0)
    t = D.frame_targets(ds, 0)
    iv = ds.video_intervals(0)
    assert len(t) == ds.lengths[0]
    for row in iv.itertuples():
        assert (t[row.start:row.end] == row.label + 1).all()
    assert (t > 0).sum() == (iv["end"] - iv["start"]).sum()
    w = D.read_window(ds, 0, int(ds.lengths[0]) - 5, FRAMES)
    assert w.shape == (3, FRAMES, 20, 1) and np.abs(w[:, 5:]).max() == 0 and np.abs(w[:, :5]).max() > 0


def test_signal_backbone_scores_high_and_files_rescore(ds, tmp_path, capsys):
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(), FAST)
    rows = PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    m = metrics(rows)
    # mAP_v: the official ap of a video without GT is 0, so 0014-L caps it at 4/5
    assert m["mAP_a"] > 0.8 and m["mAP_v"] > 0.6 and m["mAP_a_voc"] > 0.8, m
    for theta in ("0.1", "0.3", "0.5"):
        assert f"mAP_a@{theta}" in m and f"mAP_v@{theta}" in m and f"mAP_a_voc@{theta}" in m
    assert m["mAP_a@0.5"] == m["mAP_a"]
    row = next(r for r in rows if r.metric == "mAP_a@0.3")
    assert json.loads(row.extra)["theta"] == 0.3 and json.loads(row.extra)["variant"] == "linear"
    assert {r.protocol for r in rows} == {"detection"} and {r.split for r in rows} == {"xsub"}
    assert {r.dataset for r in rows} == {"toy-untrimmed"}
    out = tmp_path / "run" / "detection" / "linear-toy-untrimmed-xsub-seed0"
    preds = sorted(p.name for p in (out / "pred").iterdir())
    assert preds == [f"{i:04d}-L.txt" for i in range(10, 15)]
    assert (out / "gt" / "0014-L.txt").read_text() == ""
    post = np.load(out / "posteriors.npz")
    for i in range(10, 15):
        p = post[f"{i:04d}-L"]
        assert p.shape == (ds.lengths[i], CLASSES + 1)
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    # `harness eval-detection` on the saved files reproduces the protocol's numbers exactly
    assert main(["eval-detection", "--pred", str(out / "pred"), "--gt", str(out / "gt"),
                 "--num-classes", str(CLASSES), "--thetas", "0.1", "0.3", "0.5", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("mAP_a", "mAP_v", "mAP_a_voc", "F1", "AP", "2DAP"):
        assert res[key] == m[key], key
    assert res["per_video_ap"]["0014-L.txt"] == 0.0 and len(res["per_video_ap"]) == 5
    # ... and so does scoring the saved posteriors with the protocol's rule; another rule needs no retraining
    args = ["eval-detection", "--posteriors", str(out / "posteriors.npz"), "--gt", str(out / "gt"),
            "--num-classes", str(CLASSES), "--json"]
    assert main(args + ["--classes", "1,2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mAP_a"] == m["mAP_a"] and res["mAP_v"] == m["mAP_v"]
    assert res["mAP_a_classes"] == {"classes": [1, 2], "mAP_a": pytest.approx(sum(res["per_class_ap"][:2]) / 2)}
    assert main(args + ["--segments", "split", "--min-split", "5"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)["mAP_a"] <= 1
    assert main(args + ["--classes", "4"]) == 2 and "--classes: 4 is not a class 1..3" in capsys.readouterr().err
    assert main(args[:-3] + ["--num-classes", "5"]) == 2 and "expected (frames, 6)" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["mAP_a"] == m["mAP_a"]


def test_frame_step_windows_standardize_and_a_clean_output_folder(ds, tmp_path):
    # a window reads every 2nd frame: 16 frames read span 32 video frames
    w = D.read_window(ds, 1, 3, FRAMES, 2)
    np.testing.assert_array_equal(w, np.asarray(ds.data[1, :, 3:3 + 2 * FRAMES:2]))
    np.testing.assert_array_equal(D.window_frames(5, 4, 3, 12), [5, 8, 11])
    tail = D.read_window(ds, 1, int(ds.lengths[1]) - 7, FRAMES, 2)  # 4 frames left in the video
    assert np.abs(tail[:, 4:]).max() == 0 and np.abs(tail[:, :4]).max() > 0

    opts = {**FAST, "frame_step": 2, "stride": 12, "standardize": True}
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(), opts)
    m = metrics(PROTOCOLS.get("detection")(ctx.cfg).run(ctx))
    assert m["mAP_a"] > 0.8 and m["mAP_a_voc"] > 0.8, m  # every frame still gets its own posterior
    out = tmp_path / "run" / "detection" / "linear-toy-untrimmed-xsub-seed0"
    post = np.load(out / "posteriors.npz")
    assert all(post[f"{i:04d}-L"].shape == (ds.lengths[i], CLASSES + 1) for i in range(10, 15))

    # the same folder with fewer test videos: no prediction file of the earlier run stays behind
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(), {**opts, "epochs": 1, "max_test_videos": 2})
    PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    assert sorted(p.name for p in (out / "pred").iterdir()) == ["0010-L.txt", "0011-L.txt"]
    assert sorted(p.name for p in (out / "gt").iterdir()) == ["0010-L.txt", "0011-L.txt"]
    assert not list(out.parent.glob(".*"))  # no temporary folder left

    with pytest.raises(HarnessError, match="frame_step"):
        D.resolve_options(D.DetectionOptions(frame_step=-1))
    with pytest.raises(HarnessError, match="span 32 leaves gaps"):
        ctx = make_ctx(ds, tmp_path / "gap", lambda: PoseBackbone(), {**opts, "epochs": 1, "stride": 33})
        PROTOCOLS.get("detection")(ctx.cfg).run(ctx)


def test_num_videos_asks_a_generated_set_for_more_videos():
    cfg = load_config("smoke", overrides={"protocol.name": "detection", "protocol.options": {"num_videos": 30}})
    data = PROTOCOLS.get("detection")(cfg).eval_data(cfg.data)
    assert data.options["num_videos"] == 30 and cfg.data.options.get("num_videos") is None
    cfg = load_config("smoke", overrides={"protocol.name": "detection"})
    assert PROTOCOLS.get("detection")(cfg).eval_data(cfg.data) is cfg.data


def test_constant_backbone_scores_low_and_is_called_collapsed(ds, tmp_path, capsys):
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(constant=True), FAST)
    m = metrics(PROTOCOLS.get("detection")(ctx.cfg).run(ctx))
    assert m["mAP_a"] < 0.1 and m["mAP_a_voc"] < 0.1 and m["mAP_v"] < 0.1, m
    assert m["frame_acc_action"] < 0.05 and m["frame_acc_background"] > 0.95, m
    err = capsys.readouterr().err
    assert "the frame head has collapsed to background" in err and "diagnostics.csv" in err


def test_densely_packed_actions_are_not_merged_silently(tmp_path, capsys):
    """Real recordings put actions of different classes a few frames apart: the 20-frame filter
    bridges such gaps, §5.1 reports one interval per pair, the diagnostics say so, and the
    ``split`` rule cuts the runs where the class changes."""
    dense = untrimmed_dataset(tmp_path / "dense", gaps=(2, 7),
                              next_label=lambda prev, rng: (prev + 1 + int(rng.integers(0, CLASSES - 1))) % CLASSES)
    naive = make_ctx(dense, tmp_path / "naive", lambda: PoseBackbone(), FAST)
    m_naive = metrics(PROTOCOLS.get("detection")(naive.cfg).run(naive))
    assert "span true actions of two or more classes" in capsys.readouterr().err
    out = tmp_path / "naive" / "detection" / "linear-toy-untrimmed-xsub-seed0"
    diag = list(csv.DictReader((out / "diagnostics.csv").open()))
    assert [d["video"] for d in diag] == [f"{i:04d}-L" for i in range(10, 15)]
    merged = sum(int(d["merged_intervals"]) for d in diag)
    assert merged > 0 and sum(int(d["predicted_intervals"]) for d in diag) < sum(int(d["true_intervals"]) for d in diag)
    assert json.loads((out / "metrics.json").read_text())["diagnostics"]["merged_intervals"] == merged
    split = make_ctx(dense, tmp_path / "split", lambda: PoseBackbone(), {**FAST, "segments": "split", "min_split": 10})
    m_split = metrics(PROTOCOLS.get("detection")(split.cfg).run(split))
    assert "two or more classes" not in capsys.readouterr().err
    assert m_split["mAP_a"] > 0.7 and m_split["mAP_a"] > m_naive["mAP_a"] + 0.2, (m_naive, m_split)
    assert m_split["frame_acc_action"] > 0.8, m_split


def test_class_subsets_and_the_frame_step_from_the_data(ds, tmp_path, capsys):
    """mAP_a over the ground truth's classes and over the trained ones, beside the official mean
    over all C classes; frame_step 0 spans about one median training action."""
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(), {**FAST, "frame_step": 0})
    rows = PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    m = metrics(rows)
    train = np.arange(10)
    median = np.median([r.end - r.start for i in train for r in ds.video_intervals(int(i)).itertuples()])
    step = json.loads(rows[0].extra)["frame_step"]
    assert step == max(1, round(median / FRAMES)) == 2 and json.loads(rows[0].extra)["frame_step_rule"]
    assert "protocol.options.frame_step=0" not in capsys.readouterr().err
    ctx = make_ctx(ds, tmp_path / "long", lambda: PoseBackbone(), {**FAST, "epochs": 1, "frame_step": 5})
    PROTOCOLS.get("detection")(ctx.cfg).run(ctx)  # 80-frame windows against 38-frame actions
    assert "windows span 80 frames" in capsys.readouterr().err
    # every class is in both splits here: the three means agree
    assert m["mAP_a_present"] == pytest.approx(m["mAP_a"]) and m["mAP_a_trained"] == pytest.approx(m["mAP_a"])
    assert json.loads(next(r for r in rows if r.metric == "mAP_a_trained").extra)["classes"] == [1, 2, 3]
    # a class the training videos hold fewer than 5 times leaves the trained mean
    subsets = report.class_subsets(ds, train, np.arange(10, 15), min_train=10**6)
    assert subsets == {"present": [1, 2, 3], "trained": []}
    props = {"v": [S.Det(1, 0, 10, 0.9, "v")]}
    gts = {"v": [S.GT(1, 0, 10, "v"), S.GT(2, 20, 30, "v")]}
    got = report.subset_scores(props, gts, {"present": [1, 2], "one": [1]}, [0.5], num_classes=3)
    assert got == {"present": {0.5: 0.5}, "one": {0.5: 1.0}}  # the official mean would be 1/3


def test_raw_joint_baseline_detects_without_an_encoder(ds, tmp_path):
    """The raw-joint baseline: the same head on hip-centred, scaled coordinates (no parameters)."""
    enc = ENCODERS.get("joints")(ENCODERS.get("joints").Options(), in_channels=3, frames=FRAMES, joints=20, persons=1, topology=MSR20)
    assert not list(enc.parameters()) and enc.frame_dim == 60
    x = torch.randn(2, 3, FRAMES, 20, 1)
    f = enc.frame_features(x)
    hip = MSR20.hip_spine[0] if MSR20.hip_spine else MSR20.center
    assert f.shape == (2, FRAMES, 60)
    np.testing.assert_allclose(f.reshape(2, FRAMES, 3, 20)[:, :, :, hip].numpy(), 0, atol=1e-6)
    shifted = enc.frame_features(3 * x + 5)  # centring and scale take a move and a zoom out
    torch.testing.assert_close(shifted, f, rtol=1e-4, atol=1e-4)
    ctx = make_ctx(ds, tmp_path / "run", lambda: ModalityBackbone(enc, "joint", MSR20), FAST)
    assert metrics(PROTOCOLS.get("detection")(ctx.cfg).run(ctx))["mAP_a"] > 0.5


def test_linear_freezes_and_finetune_trains_in_eval_mode(ds, tmp_path):
    made = []

    def factory():
        made.append(PoseBackbone())
        return made[-1]

    ref = PoseBackbone().state_dict()
    ctx = make_ctx(ds, tmp_path / "lin", factory, {**FAST, "epochs": 1})
    PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    for k, v in made[-1].state_dict().items():
        assert torch.equal(v, ref[k]), k  # frozen weights and untouched BN statistics
    ctx = make_ctx(ds, tmp_path / "ft", factory, {**FAST, "variant": "finetune"})
    rows = PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    sd = made[-1].state_dict()
    assert not torch.equal(sd["proj.weight"], ref["proj.weight"])  # the encoder trains
    assert torch.equal(sd["bn.running_mean"], ref["bn.running_mean"])  # ... in eval mode
    assert int(sd["bn.num_batches_tracked"]) == 0
    assert json.loads(rows[0].extra)["variant"] == "finetune"
    assert metrics(rows)["mAP_a"] > 0.8  # fine-tuning a backbone that sees the signal works too
    assert (tmp_path / "ft" / "detection" / "finetune-toy-untrimmed-xsub-seed0" / "pred").is_dir()


def test_seeds_best_of_coarse_features_and_class_threshold(ds, tmp_path):
    opts = {**FAST, "epochs": 2, "eval_every": 1, "segments": "class_threshold",
            "class_threshold": 0.5, "thetas": [0.5]}
    ctx = make_ctx(ds, tmp_path / "run", lambda: PoseBackbone(stride=2), opts, seeds=(0, 1))
    rows = PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    assert sorted({r.seed for r in rows}) == [0, 1]
    for seed in (0, 1):
        m = {r.metric: r for r in rows if r.seed == seed}
        best = json.loads(m["mAP_a_best"].extra)
        assert best["evaluated"] == [1, 2] and m["mAP_a_best"].value >= m["mAP_a"].value
        # T/2 features are interpolated back to one per frame; runs of p_c > 0.5 find the actions
        assert m["mAP_a"].value > 0.3 and json.loads(m["mAP_a"].extra)["segments"] == "class_threshold"
    hist = json.loads((tmp_path / "run" / "detection" / "linear-toy-untrimmed-xsub-seed1" /
                       "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2]


def test_needs_untrimmed_data_and_dense_features(ds, tmp_path):
    trimmed = tmp_path / "trimmed"
    with PreparedWriter(trimmed, kind="toy", topology=MSR20, num_samples=2, max_frames=10, num_persons=1,
                        class_names=["a"]) as w:
        for i in range(2):
            w.set_sample(i, np.ones((3, 10, 20, 1), np.float32), name=f"t{i}", label=0)
        w.add_split("xsub", "train", [0]), w.add_split("xsub", "test", [1])
    tds = open_prepared(trimmed)
    ctx = make_ctx(tds, tmp_path / "run", lambda: PoseBackbone(), FAST)
    with pytest.raises(DataError, match="untrimmed"):
        PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
    # the old protocol.options.dataset names its replacement
    ctx = make_ctx(tds, tmp_path / "run", lambda: PoseBackbone(), {**FAST, "dataset": str(trimmed)})
    with pytest.raises(HarnessError, match="protocol.dataset"):
        PROTOCOLS.get("detection")(ctx.cfg)

    # the pipeline resolves protocol.dataset (else data.dataset) untrimmed; the protocol takes only
    # ctx.dataset and refuses a trimmed one
    ctx = make_ctx(tds, tmp_path / "run", lambda: PoseBackbone(), FAST)
    protocol = PROTOCOLS.get("detection")(ctx.cfg)
    ctx.cfg.protocol.dataset = str(ds.root)
    ctx.dataset = eval_dataset(ctx.cfg, protocol, tds)
    assert ctx.dataset.root == ds.root and protocol.dataset(ctx) is ctx.dataset
    ctx.cfg.protocol.dataset, ctx.cfg.data.dataset = "", str(trimmed)
    ctx.dataset = eval_dataset(ctx.cfg, protocol, tds)
    assert ctx.dataset.root == tds.root
    with pytest.raises(DataError, match="untrimmed"):
        protocol.dataset(ctx)

    class NoDense(PoseBackbone):
        frame_dim = 0

    nd = NoDense()
    nd.frame_dim = 0
    ctx = make_ctx(ds, tmp_path / "run", lambda: nd, FAST)
    with pytest.raises(HarnessError, match="frame_features"):
        PROTOCOLS.get("detection")(ctx.cfg).run(ctx)
