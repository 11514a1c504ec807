"""SCD-Net's pretraining checkpoints (``checkpoint.pth.tar``; docs/reference/checkpoints.md §4).

``pretraining.py`` saves ``{'epoch', 'state_dict', 'optimizer'}`` from a single-GPU model (no
``module.`` prefix): ``encoder_q.*`` and its momentum copy ``encoder_k.*`` (each two CTR-GCNs
``encoder.gcn_t`` / ``encoder.gcn_s`` with transformer heads, and projectors), and the queues
``{t,s,i}_queue`` with their pointers. The file is recognised so that the user is told why it cannot
be evaluated: no registered harness encoder is a CTR-GCN (the harness's ``scdnet`` trains the shared
DSTE/STTR encoder, reference-differences.md), so its backbone has nowhere to go.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.checkpoints.base import Checkpoint, CheckpointFormat, Mapped
from harness.registry import CHECKPOINT_FORMATS


@CHECKPOINT_FORMATS.register()
class SCDNetFormat(CheckpointFormat):
    """SCD-Net's pretraining.py checkpoint.pth.tar (recognised and refused)."""

    name = "scdnet"
    order = 30
    label = "SCD-Net pretraining checkpoint (cong-wu/SCD-Net pretraining.py)"
    method = "scdnet"
    top_keys = ("epoch", "state_dict", "optimizer")
    unsupported = ("its backbone is SCD-Net's pair of CTR-GCNs with transformer heads (encoder_q.encoder.gcn_t/"
                   "gcn_s), and no registered harness encoder is a CTR-GCN (the harness's scdnet method trains the "
                   "shared DSTE/STTR encoder instead), so these weights cannot be loaded into any harness backbone")

    def detect(self, obj: Any) -> str | None:
        state = obj.get("state_dict") if isinstance(obj, dict) else None
        if not isinstance(state, dict):
            return "no 'state_dict' dict"
        if not any(isinstance(k, str) and k.startswith("encoder_q.encoder.gcn_t.") for k in state):
            return "no encoder_q.encoder.gcn_t.* keys (SCD-Net's CTR-GCN)"
        return None

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:  # pragma: no cover
        raise AssertionError("unsupported formats are refused when read")
