"""Frozen-backbone feature extraction shared by the linear, kNN and fusion code.

Evaluation clips follow the USDRL/UmURL downstream feeder: no augmentation, the whole valid range
[0, length) linearly resampled to the training frame count (docs/reference/usdrl.md §9).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.data.prepared.loader import Batch, ClipBatches
from harness.data.prepared.format import PreparedDataset
from harness.transforms.resample import resample


def eval_clips(batch: Batch, frames: int) -> torch.Tensor:
    return resample(batch.x, batch.lengths, frames)


@torch.no_grad()
def extract_features(backbone: nn.Module, ds: PreparedDataset, indices: np.ndarray, *, frames: int,
                     batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features (N, feature_dim) float32 and labels (N,), both on `device`, in `indices` order."""
    backbone.eval()
    feats, labels = [], []
    for batch in ClipBatches(ds, indices, batch_size, device=device):
        out = backbone(eval_clips(batch, frames))
        feats.append(out.pooled.float())
        labels.append(batch.labels)
    if not feats:
        return torch.zeros(0, getattr(backbone, "feature_dim", 0), device=device), torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(labels)
