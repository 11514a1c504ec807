"""MAMP's objective (methods/losses/mamp_objective.py: masked_mse) on a hand-made prediction."""

from __future__ import annotations

import pytest
import torch

from harness.methods.losses.mamp_objective import masked_mse

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def test_masked_mse_counts_masked_tokens_only():
    target = torch.zeros(1, 4, 12)
    pred = target.clone()
    pred[0, 0] = 5.0  # visible token: ignored
    pred[0, 1] = 1.0  # masked token with error 1 in all 12 values
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(0.5)
