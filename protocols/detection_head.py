"""The detection protocol's model and its two passes (docs/reference/protocols.md §5):
:class:`FrameHead` (a per-frame linear head on ``backbone.frame_features``), one training epoch
over random windows, and the test-time frame posteriors from sliding windows.

Both variants keep the encoder in eval mode while training (BatchNorm statistics and DropPath
frozen): ``linear`` as a frozen probe, ``finetune`` as USDRL+'s Protocol B (§5.2). The loss is the
cross-entropy over every frame a window read (§5.2; SSD's §5.1 trains only the last time step,
docs/reference-differences.md "Detection").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.data.prepared.format import PreparedDataset
from harness.errors import HarnessError

from .classifier import HeadBudget, linear_head
from .detection_data import read_window, window_frames, window_starts
from .detection_options import Resolved

IGNORE = -100  # target of frames past a short video's end: not in the loss


class FrameHead(nn.Module):
    """Backbone frame features (N, T', D) → per-frame logits (N, T, C + 1)."""

    def __init__(self, backbone: nn.Module, num_outputs: int, frames: int, standardize: bool = False):
        super().__init__()
        dim = int(getattr(backbone, "frame_dim", 0) or 0)
        if dim <= 0:
            raise HarnessError(f"{type(backbone).__name__} has no dense per-frame output (frame_dim is 0): "
                               "detection needs an encoder with frame_features")
        self.backbone = backbone
        # z-scores each feature with running training statistics (an affine-free BatchNorm), as the
        # linear probe's ``standardize``: frozen features of small encoders have very uneven scales
        self.norm = nn.BatchNorm1d(dim, affine=False) if standardize else nn.Identity()
        self.fc = linear_head(dim, num_outputs)
        self.frames = frames

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.shape[1] != self.frames:  # a coarser temporal grid: back to one feature per frame
            feats = F.interpolate(feats.transpose(1, 2), size=self.frames, mode="linear",
                                  align_corners=False).transpose(1, 2)
        return self.fc(self.norm(feats.transpose(1, 2)).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.frame_features(x))


def train_epoch(model: FrameHead, ds: PreparedDataset, train_idx: np.ndarray, targets: dict[int, np.ndarray],
                frames: int, r: Resolved, rng: np.random.Generator, sgd: torch.optim.Optimizer,
                device: torch.device, budget: HeadBudget, done: int) -> int:
    """One pass over the shuffled training windows (stopping when the budget is spent); returns
    the optimizer steps done so far."""
    model.backbone.eval()  # both variants: BN statistics and DropPath frozen
    model.fc.train()
    model.norm.train()
    draws = np.repeat(np.asarray(train_idx, dtype=np.int64), r.opt.windows_per_video)
    draws = draws[rng.permutation(len(draws))]
    step = r.opt.frame_step
    span = frames * step
    for b in range(0, len(draws), r.batch_size):
        if done == budget.total:
            break
        budget.scheduler.step_update(done)
        chunk = draws[b:b + r.batch_size]
        xs, ys = [], []
        for i in chunk:
            length = int(ds.lengths[i])
            start = int(rng.integers(0, max(length - span, 0) + 1))
            xs.append(read_window(ds, int(i), start, frames, step))
            y = np.full(frames, IGNORE, dtype=np.int64)
            idx = window_frames(start, frames, step, length)
            y[: len(idx)] = targets[int(i)][idx]
            ys.append(y)
        x = torch.from_numpy(np.stack(xs)).to(device)
        y = torch.from_numpy(np.stack(ys)).to(device)
        if r.variant == "linear":
            with torch.no_grad():
                feats = model.backbone.frame_features(x)
            logits = model.head(feats)
        else:
            logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                               ignore_index=IGNORE)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()
        done += 1
    return done


@torch.no_grad()
def frame_posteriors(model: FrameHead, ds: PreparedDataset, test_idx: np.ndarray, frames: int, r: Resolved,
                    device: torch.device) -> list[np.ndarray]:
    """Per test video: (L, C + 1) mean softmax over the sliding windows covering each frame; a
    window's output k covers the ``frame_step`` video frames from the one it read."""
    model.eval()
    step = r.opt.frame_step
    span = frames * step
    stride = r.opt.stride or max(span // 2, 1)
    if stride > span:
        raise HarnessError(f"protocol.options (detection): stride {stride} > the window's span {span} "
                           "leaves gaps")
    out = []
    for i in test_idx:
        i = int(i)
        length = int(ds.lengths[i])
        clip = np.asarray(ds.data[i, :, :length])
        acc = np.zeros((length, ds.num_classes + 1), dtype=np.float64)
        cnt = np.zeros(length, dtype=np.float64)
        starts = window_starts(length, span, stride)
        for b in range(0, len(starts), r.batch_size):
            batch = starts[b:b + r.batch_size]
            x = np.zeros((len(batch), 3, frames) + clip.shape[2:], dtype=np.float32)
            for k, s in enumerate(batch):
                seg = clip[:, s:s + span:step]
                x[k, :, : seg.shape[1]] = seg
            prob = torch.softmax(model(torch.from_numpy(x).to(device)).float(), dim=-1).cpu().numpy()
            if step > 1:
                prob = np.repeat(prob, step, axis=1)
            for k, s in enumerate(batch):
                n = min(span, length - s)
                acc[s:s + n] += prob[k, :n]
                cnt[s:s + n] += 1
        out.append((acc / np.maximum(cnt, 1)[:, None]).astype(np.float32))
    return out
