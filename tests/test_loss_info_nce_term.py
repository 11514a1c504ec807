"""MoCo's InfoNCE (methods/losses/info_nce_term.py: info_nce) on hand-checked numbers, and where its
gradient goes (docs/reference/methods.md §1)."""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods.losses.info_nce_term import info_nce

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


@pytest.mark.parity
def test_info_nce_hand_checked():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    queue = torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])  # (D=2, K=3)
    loss, acc = info_nce(q, k, queue, temperature=0.5)
    # row 0: logits [0.6, 1, 0, 0.6] / 0.5; row 1: [0, 0, 1, 0.8] / 0.5; target 0
    row0 = -1.2 + math.log(math.exp(1.2) + math.exp(2.0) + math.exp(0.0) + math.exp(1.2))
    row1 = -0.0 + math.log(math.exp(0.0) + math.exp(0.0) + math.exp(2.0) + math.exp(1.6))
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert acc.item() == 0.0  # neither positive is the largest logit
    loss2, acc2 = info_nce(q, q, queue, temperature=0.5)  # k = q: row 0 pos 1 vs max neg 1 (tie), row 1 wins
    assert acc2.item() == 1.0 and loss2.item() < loss.item()


def test_info_nce_gradient_reaches_only_q():
    q = torch.randn(4, 3, requires_grad=True)
    k = torch.randn(4, 3, requires_grad=True)
    queue = torch.randn(3, 5, requires_grad=True)
    loss, _ = info_nce(q, k, queue, 0.07)
    loss.backward()
    assert q.grad is not None and k.grad is None and queue.grad is None
