"""A faithful per-sample re-implementation of the USDRL reference pretraining feeder's augmentation.

wengwanjiang/USDRL @ 7e83bb6, ``feeder/feeder_pretraining.py`` (``Feeder.__getitem__``) and
``feeder/augmentations.py`` (``temporal_cropresize``, ``joint_courruption``, ``pose_augmentation``),
as described in docs/reference/usdrl.md §9. It is the baseline for ``harness bench augment`` (which times a method's
own ``make_views``, USDRL's by default) and for the statistical tests of USDRL's batched views
(:func:`harness.methods.views.usdrl_views`, built on :mod:`harness.augment`); nothing trains with it.

Kept as in the reference: one sample at a time; NumPy draws (``np.random``) for the crop scale and
start and for the joint choice, Python ``random`` draws for the branch choices and the matrix
entries, in the reference's order; the crop resized by ``F.interpolate`` (bilinear,
align_corners=False) on a (1, C·V·M, ℓ, 1) tensor; NumPy ``dot`` with float64 matrices (so shear and
linear-map outputs are float64, as in the reference).

Differences, all of which leave the distribution unchanged:
- the generators are this object's own ``random.Random`` / ``np.random.RandomState`` (seeded like
  the reference's global ones), not the global state;
- ``int(np.floor(nf·scale))`` is taken of the scale's single element, because the reference's
  ``int()`` of a shape-(1,) array raises under NumPy 2 (docs/reference/usdrl.md §13.3);
- the joint count comes from the data and the corrupted-joint count is a parameter (the reference
  hard-codes 25 and 15).
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F


def temporal_cropresize(input_data: np.ndarray, num_of_frames: int, l_ratio: tuple[float, float],
                        output_size: int, np_rng: np.random.RandomState) -> np.ndarray:
    c, t, v, m = input_data.shape
    min_crop_length = 64
    scale = np_rng.rand(1) * (l_ratio[1] - l_ratio[0]) + l_ratio[0]
    temporal_crop_length = np.minimum(np.maximum(int(np.floor(num_of_frames * scale[0])), min_crop_length),
                                      num_of_frames)
    start = np_rng.randint(0, num_of_frames - temporal_crop_length + 1)
    temporal_context = input_data[:, start:start + temporal_crop_length, :, :]
    temporal_context = torch.tensor(temporal_context, dtype=torch.float)
    temporal_context = temporal_context.permute(0, 2, 3, 1).contiguous().view(c * v * m, temporal_crop_length)
    temporal_context = temporal_context[None, :, :, None]
    temporal_context = F.interpolate(temporal_context, size=(output_size, 1), mode="bilinear", align_corners=False)
    temporal_context = temporal_context.squeeze(dim=3).squeeze(dim=0)
    temporal_context = temporal_context.contiguous().view(c, v, m, output_size).permute(0, 3, 1, 2).contiguous().numpy()
    return temporal_context


def joint_courruption(input_data: np.ndarray, py_rng: random.Random, np_rng: np.random.RandomState,
                      count: int = 15) -> np.ndarray:
    out = input_data.copy()
    joints = input_data.shape[2]
    flip_prob = py_rng.random()
    if flip_prob < 0.5:
        joint_indicies = np_rng.choice(joints, count, replace=False)
        out[:, :, joint_indicies, :] = 0
        return out
    joint_indicies = np_rng.choice(joints, count, replace=False)
    temp = out[:, :, joint_indicies, :]
    corruption = np.array([[py_rng.uniform(-1, 1), py_rng.uniform(-1, 1), py_rng.uniform(-1, 1)],
                           [py_rng.uniform(-1, 1), py_rng.uniform(-1, 1), py_rng.uniform(-1, 1)],
                           [py_rng.uniform(-1, 1), py_rng.uniform(-1, 1), py_rng.uniform(-1, 1)]])
    temp = np.dot(temp.transpose([1, 2, 3, 0]), corruption)
    temp = temp.transpose(3, 0, 1, 2)
    out[:, :, joint_indicies, :] = temp
    return out


def pose_augmentation(input_data: np.ndarray, py_rng: random.Random) -> np.ndarray:
    shear = np.array([[1, py_rng.uniform(-1, 1), py_rng.uniform(-1, 1)],
                      [py_rng.uniform(-1, 1), 1, py_rng.uniform(-1, 1)],
                      [py_rng.uniform(-1, 1), py_rng.uniform(-1, 1), 1]])
    temp_data = input_data.copy()
    result = np.dot(temp_data.transpose([1, 2, 3, 0]), shear.transpose())
    return result.transpose(3, 0, 1, 2)


class ReferenceFeeder:
    """``Feeder.__getitem__`` of the reference: ``num_views`` views of one stored sample.

    ``data`` is (N, 3, T, V, M) (a memory map or an array) and ``lengths`` the valid frame counts.
    """

    def __init__(self, data: np.ndarray, lengths: np.ndarray, l_ratio: tuple[float, float] = (0.1, 1.0),
                 input_size: int = 64, num_views: int = 4, seed: int = 0, count: int = 15):
        self.data, self.lengths = data, np.asarray(lengths)
        self.l_ratio, self.input_size, self.num_views, self.count = tuple(l_ratio), input_size, num_views, count
        self.py_rng = random.Random(seed)
        self.np_rng = np.random.RandomState(seed)

    def __len__(self) -> int:
        return len(self.data)

    def view(self, data_numpy: np.ndarray, number_of_frames: int) -> np.ndarray:
        crop = temporal_cropresize(data_numpy, number_of_frames, self.l_ratio, self.input_size, self.np_rng)
        if self.py_rng.random() < 0.5:
            return joint_courruption(crop, self.py_rng, self.np_rng, self.count)
        return pose_augmentation(crop, self.py_rng)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        data_numpy = np.array(self.data[index])
        number_of_frames = int(self.lengths[index])
        return tuple(self.view(data_numpy, number_of_frames) for _ in range(self.num_views))
