"""MoCo's InfoNCE against a queue of negatives (docs/reference/methods.md §1, §3).

Used by ``contrastive`` (MoCo-v2 / SkeletonCLR) and, four times, by SCD-Net (:mod:`.scdnet_objective`).
The logits are computed in float32 with autocast off (the references run them in fp16 under AMP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce"]


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo InfoNCE: logits = [q·k, q·queue] / τ (B, 1 + K), cross-entropy with target 0.

    ``q`` and ``k`` are (B, D) (normalised by the caller), ``queue`` (D, K); no gradient reaches
    ``k`` or ``queue``. Returns (loss, top-1 accuracy of the positive), computed in float32.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        q = q.float()
        k = k.detach().float()
        negatives = queue.detach().to(q.dtype, copy=True)  # the queue is overwritten in place later
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ negatives
        logits = torch.cat([l_pos, l_neg], dim=1) / temperature
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target)
        acc = (logits.argmax(dim=1) == 0).float().mean()
    return loss, acc.detach()
