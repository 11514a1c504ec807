import json

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.evaluation.scores import save_scores

pytestmark = pytest.mark.e2e


def test_fusion_beats_each_weak_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=300)
    files = []
    for k in range(3):  # each model is right on a different 60 % of samples
        scores = rng.normal(size=(300, 5))
        right = rng.random(300) < 0.6
        scores[right, labels[right]] += 3
        files.append(str(save_scores(tmp_path / f"m{k}.npz", torch.tensor(scores), torch.tensor(labels),
                                     np.arange(300))))
    singles = []
    for f in files:
        assert main(["fuse", f, "--json"]) == 0
        singles.append(json.loads(capsys.readouterr().out)["top1"])
    assert main(["fuse", *files, "--json", "--record", "usdrl", "toy", "linear",
                 "--results", str(tmp_path / "res")]) == 0
    fused = json.loads(capsys.readouterr().out)
    assert fused["top1"] > max(singles) and fused["num_samples"] == 300
    assert (tmp_path / "res" / "results.csv").read_text().count("jbm") == 2


def test_fusion_refuses_mismatched_samples(tmp_path, capsys):
    a = save_scores(tmp_path / "a.npz", torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), np.arange(4))
    b = save_scores(tmp_path / "b.npz", torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), np.arange(1, 5))
    assert main(["fuse", str(a), str(b)]) == 2
    assert "other samples" in capsys.readouterr().err
