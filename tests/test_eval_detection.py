"""``harness eval-detection`` end to end on the docs/reference/protocols.md §9.4 example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main


def write_9_4(root: Path) -> tuple[Path, Path]:
    pred, gt = root / "pred", root / "gt"
    pred.mkdir(), gt.mkdir()
    # PKU-MMD label files (label,start,end,confidence); C has GT but no prediction file
    (gt / "A.txt").write_text("1,0,50,2\n2,100,150,1\n")
    (gt / "B.txt").write_text("1,10,60,2\n")
    (gt / "C.txt").write_text("2,0,30,1\n")
    (pred / "A.txt").write_text("1,0,48,0.9\n1 5 50 0.8\n2,300,350,0.7\n2,100,149,0.6\n")  # commas and spaces
    (pred / "B.txt").write_text("1,200,260,0.95\n")
    return pred, gt


def run_json(capsys, *argv: str) -> dict:
    assert main(["eval-detection", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_9_4_json(tmp_path, capsys):
    pred, gt = write_9_4(tmp_path)
    out = run_json(capsys, "--pred", str(pred), "--gt", str(gt))
    # official: C is ignored entirely (no prediction file)
    assert out["mAP_a"] == pytest.approx(0.75 / 51) and round(out["mAP_a"], 6) == 0.014706
    assert out["per_class_ap"][:2] == [pytest.approx(0.25), pytest.approx(0.5)]
    assert out["mAP_v"] == pytest.approx(0.375)
    assert out["per_video_ap"] == {"A.txt": pytest.approx(0.75), "B.txt": 0.0}
    assert out["AP"] == pytest.approx(0.3)
    assert out["num_videos"] == 2 and out["num_gt"] == 3
    # SSD-style, every video with GT included
    assert out["mAP_a_voc"] == pytest.approx(0.25)
    assert out["per_class_ap_voc"] == {"1": pytest.approx(0.25), "2": pytest.approx(0.25)}
    assert out["mAP_v_all"] == pytest.approx(0.25) and out["num_videos_all"] == 3
    assert [r["theta"] for r in out["sweep"]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    at_half = out["sweep"][4]
    assert at_half["mAP_a"] == out["mAP_a"] and at_half["mAP_v"] == out["mAP_v"]
    assert at_half["mAP_a_voc"] == out["mAP_a_voc"]
    # F1 = 2PR/(P+R) with P = 2/5 and R = 2/3
    assert out["F1"] == pytest.approx(0.5)


def test_theta_and_num_classes(tmp_path, capsys):
    pred, gt = write_9_4(tmp_path)
    out = run_json(capsys, "--pred", str(pred), "--gt", str(gt), "--num-classes", "2", "--theta", "0.99",
                   "--thetas", "0.5", "0.97")
    # at θ = 0.99 nothing matches: A's best IoUs are 0.96 (class 1) and 0.98 (class 2)
    assert out["mAP_a"] == 0.0 and out["mAP_v"] == 0.0 and out["theta"] == 0.99
    sweep = {r["theta"]: r for r in out["sweep"]}
    assert sweep[0.5]["mAP_a"] == pytest.approx(0.75 / 2)
    # at 0.97 only (2, 100, 149) matches (IoU 0.98): class 2 AP 0.5, class 1 AP 0
    assert sweep[0.97]["mAP_a"] == pytest.approx(0.5 / 2)


def test_text_output(tmp_path, capsys):
    pred, gt = write_9_4(tmp_path)
    assert main(["eval-detection", "--pred", str(pred), "--gt", str(gt)]) == 0
    text = capsys.readouterr().out
    assert "0.014706" in text and "0.375000" in text and "0.300000" in text and "0.250000" in text
    for name in ("mAP_a", "mAP_v", "F1", "2DAP", "mAP_a_voc", "mAP_v_all"):
        assert name in text


def test_bad_input_names_file_and_line(tmp_path, capsys):
    pred, gt = write_9_4(tmp_path)
    (pred / "B.txt").write_text("1,200,260,0.95\n1,200,260\n")
    assert main(["eval-detection", "--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert f"{pred / 'B.txt'}:2:" in err
    (pred / "B.txt").write_text("52,200,260,0.95\n")
    assert main(["eval-detection", "--pred", str(pred), "--gt", str(gt)]) == 2
    assert "label 52 outside 1..51" in capsys.readouterr().err
    (pred / "B.txt").write_text("1,200,260,0.95\n")
    (pred / "D.txt").write_text("1,0,10,0.5\n")  # no GT file for D
    assert main(["eval-detection", "--pred", str(pred), "--gt", str(gt)]) == 2
    assert "no ground-truth file" in capsys.readouterr().err
    (pred / "D.txt").unlink()
    assert main(["eval-detection", "--pred", str(pred), "--gt", str(gt), "--theta", "0"]) == 2
    assert main(["eval-detection", "--pred", str(tmp_path / "nope"), "--gt", str(gt)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_console_script(tmp_path):
    pred, gt = write_9_4(tmp_path)
    exe = Path(sys.executable).with_name("harness")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "harness.cli"]
    res = subprocess.run(cmd + ["eval-detection", "--pred", str(pred), "--gt", str(gt), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["mAP_a"] == pytest.approx(0.014706, abs=5e-7) and out["mAP_v"] == pytest.approx(0.375)
