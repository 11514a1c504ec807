"""The detection protocol on real recordings: the PKU-MMD I interaction subset in the real data folder,
prepared with the official cross-subject split, and the raw-joint baseline (no encoder) as the head's
input, so the test needs no pretraining."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch


from harness.contracts import ModalityBackbone, ProtocolContext
from harness.data.readers.pku import pku_mmd as pku
from harness.data.prepared.format import open_prepared
from harness.data.topology import NTU25
from harness.registry import ENCODERS, PROTOCOLS
from harness.config import load_config

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

INTERACTION_CLASSES = [12, 14, 16, 18, 21, 24, 26, 27]  # 1-based, the README's


@pytest.fixture(scope="module")
def pku1(real_data: Path, tmp_path_factory) -> Path:
    raw = real_data / "pku_mmd" / "phase1_interaction"
    split = real_data / "pku_mmd" / "splits" / "pkuv1_cross_subject.txt"
    out = tmp_path_factory.mktemp("pku1") / "pku1"
    pku.prepare_pku(raw, out, phase=1, split_files={"xsub": split}, allow_missing_videos=True, mode="both")
    return out


def test_the_interaction_subset_prepares_as_its_readme_says(pku1: Path):
    video, clips = open_prepared(pku1 / "untrimmed"), open_prepared(pku1 / "trimmed")
    assert video.split_counts()["xsub"] == {"train": 45, "test": 25}
    assert clips.split_counts()["xsub"] == {"train": 366, "test": 214}
    assert video.subset == "a subset: 70 of the 1076 videos its split files name"


def test_raw_joint_baseline_detects_the_interaction_classes(pku1: Path, tmp_path: Path):
    ds = open_prepared(pku1 / "untrimmed")
    cfg = load_config("cpu", overrides={"protocol.name": "detection", "protocol.options": {
        "frame_step": 0, "steps": 300, "batch_size": 32, "windows_per_video": 8}})
    enc = ENCODERS.get("joints")(ENCODERS.get("joints").Options(), frames=cfg.data.frames, joints=25, persons=2,
                                 topology=NTU25)
    ctx = ProtocolContext(cfg=cfg, dataset=ds, make_backbone=lambda: ModalityBackbone(enc, "joint", NTU25),
                          device=torch.device("cpu"), run_dir=tmp_path, base_row={"method": "random", "preset": "cpu"})
    rows = {r.metric: r for r in PROTOCOLS.get("detection")(cfg).run(ctx)}
    extra = json.loads(rows["mAP_a_trained"].extra)
    # 77-frame median action / 32-frame windows: every 2nd frame
    assert extra["frame_step"] == 2 and extra["classes"] == INTERACTION_CLASSES
    assert len(json.loads(rows["mAP_a_present"].extra)["classes"]) == 27
    m = {k: r.value for k, r in rows.items()}
    # the official mean divides by 51 classes, 43 of them without a trained test action
    assert m["mAP_a_trained"] > 0.1 and m["mAP_a_trained"] > 3 * m["mAP_a"], m
    assert m["frame_acc_action"] > 0.1 and m["frame_acc_background"] > 0.8, m  # not collapsed to background
    diag = list(csv.DictReader((tmp_path / "detection" / "linear-pku-mmd-xsub-seed0" / "diagnostics.csv").open()))
    assert len(diag) == 25 and sum(int(d["true_intervals"]) for d in diag) == 214
