"""The raw 1-nearest-neighbour reference point the real-data READMEs quote (MSR Action3D, NW-UCLA).

Features: every frame centred on one joint (not rotated), the valid frames resampled to 32 with the
harness's own resampling, flattened and z-scored with the training part's statistics; each test clip
takes the label of its nearest training clip (Euclidean). Feed it a dataset prepared with raw
coordinates.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.data.prepared.format import PreparedDataset
from harness.transforms.resample import resample


def raw_one_nn(ds: PreparedDataset, split: str, center: int, frames: int = 32) -> tuple[int, int]:
    """(correct, test clips) of the 1-NN classifier on ``split``."""
    x = torch.from_numpy(np.array(ds.data))
    x = x - x[:, :, :, center:center + 1]  # the centre joint of each frame
    feats = resample(x, torch.from_numpy(ds.lengths), frames).reshape(len(x), -1).double().numpy()
    train, test = ds.indices(split, "train"), ds.indices(split, "test")
    mean, std = feats[train].mean(0), feats[train].std(0) + 1e-8
    z = (feats - mean) / std
    a, b = z[test], z[train]
    # ‖a − b‖² expanded: the full (test, train, features) difference would take gigabytes
    dist = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None]
    correct = int((ds.labels[train][dist.argmin(1)] == ds.labels[test]).sum())
    return correct, len(test)
