"""MAMP's reconstruction objective (docs/reference/methods.md §4; maoyunyao/MAMP ``model_mamp/transformer.py``).

MSE between the predicted and the target motion patches, averaged over the 12 values of a token,
then over the masked tokens only; methods/mamp.py builds the target and the mask.
"""

from __future__ import annotations

import torch

__all__ = ["masked_mse"]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the 12 values, then over the masked tokens (mask 1) only."""
    loss = (pred.float() - target.float()).pow(2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()
