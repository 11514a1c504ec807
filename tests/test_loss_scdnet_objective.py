"""SCD-Net's objective (methods/losses/scdnet_objective.py: scd_loss, four anchor InfoNCE terms) on
hand-checked numbers (docs/reference/methods.md §3)."""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods.losses.scdnet_objective import scd_loss

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def _ce0(logits):
    """−log softmax(logits)[0] in plain Python."""
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


@pytest.mark.parity
def test_scd_loss_hand_checked():
    s = 1 / math.sqrt(2)
    q = {"t": torch.tensor([[1.0, 0.0]]), "s": torch.tensor([[0.0, 1.0]]), "i": torch.tensor([[s, s]])}
    k = {"t": torch.tensor([[0.0, 1.0]]), "s": torch.tensor([[1.0, 0.0]]), "i": torch.tensor([[1.0, 0.0]])}
    queues = {"t": torch.tensor([[1.0], [0.0]]), "s": torch.tensor([[0.0], [1.0]]),
              "i": torch.tensor([[0.0, -1.0], [1.0, 0.0]])}
    out = scd_loss(q, k, queues, temperature=0.5)
    # q_t·k_i = 1, q_t·Queue_i = [0, −1]; q_s·k_i = 0, q_s·Queue_i = [1, 0];
    # q_i·k_t = s, q_i·Queue_t = [s];       q_i·k_s = s, q_i·Queue_s = [s]
    ti = _ce0([2.0, 0.0, -2.0])
    si = _ce0([0.0, 2.0, 0.0])
    it = _ce0([2 * s, 2 * s])
    is_ = _ce0([2 * s, 2 * s])
    assert out["nce_ti"].item() == pytest.approx(ti, rel=1e-6)
    assert out["nce_si"].item() == pytest.approx(si, rel=1e-6)
    assert out["nce_it"].item() == pytest.approx(math.log(2), rel=1e-6) == it
    assert out["nce_is"].item() == pytest.approx(is_, rel=1e-6)
    assert out["loss"].item() == pytest.approx(ti + si + it + is_, rel=1e-6)
