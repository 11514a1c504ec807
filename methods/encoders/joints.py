"""The raw-joint baseline (``joints``): no encoder at all, the window's own coordinates as features.

``harness run --method random --set encoder.name=joints`` puts a protocol's head straight on the
clip: per frame, every joint of every body minus body 0's hip (``topology.hip_spine[0]``, the
spine base; ``topology.center`` where the topology names no hip), divided by the clip's body scale
(the mean distance of body 0's joints from that hip over the clip's frames), flattened to
C·V·M numbers. Joints that are exactly zero (an absent second body, frames past a clip's end) stay
zero. The pooled feature is the mean over frames.

It has no parameters, so "frozen" and "fine-tuned" heads on it differ only by their schedules. It
is the level a learned encoder must clear before a detection or recognition number says anything
about the representation (docs/reference-differences.md, "Detection").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.contracts import Encoder, EncoderOutput
from harness.registry import ENCODERS


@dataclass
class RawJointsOptions:
    scale: bool = True  # divide by the clip's body scale (False: hip-centred metres)


@ENCODERS.register("joints")
class RawJoints(Encoder):
    """Hip-centred, body-scaled joint coordinates of each frame (no parameters)."""

    name = "joints"
    label = "raw joints (no encoder)"
    Options = RawJointsOptions
    dense = False  # no temporal / spatial tokens, only per-frame and pooled coordinates

    def __init__(self, options, *, in_channels: int = 3, frames: int = 64, joints: int = 25, persons: int = 2,
                 topology=None):
        super().__init__(options, in_channels=in_channels, frames=frames, joints=joints, persons=persons,
                         topology=topology)
        hip = topology.hip_spine[0] if topology is not None and topology.hip_spine else None
        self.hip = int(hip if hip is not None else (topology.center if topology is not None else 0))
        self.frame_dim = self.feature_dim = in_channels * joints * persons

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) → (N, T, C·V·M)."""
        present = (x != 0).any(dim=1, keepdim=True)  # (N, 1, T, V, M)
        hip = x[:, :, :, self.hip:self.hip + 1, :1]  # body 0's hip, per frame
        centred = (x - hip) * present
        out = centred / self._body_scale(centred, present).view(-1, 1, 1, 1, 1) \
            if self.options is None or self.options.scale else centred
        n, c, t, v, m = out.shape
        return out.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m)

    @staticmethod
    def _body_scale(centred: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(N,): the mean distance of body 0's present joints from the hip over the clip (1 if none)."""
        seen = present[:, 0, :, :, 0]  # (N, T, V)
        dist = centred[..., 0].norm(dim=1) * seen
        scale = dist.sum(dim=(1, 2)) / seen.sum(dim=(1, 2)).clamp(min=1)
        return torch.where(scale > 0, scale, torch.ones_like(scale))

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return EncoderOutput(pooled=self.frame_features(x).mean(dim=1))
