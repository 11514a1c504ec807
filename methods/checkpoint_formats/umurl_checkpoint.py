"""UmURL's pretraining checkpoints (``checkpoint_NNNN.pth.tar``; docs/reference/checkpoints.md §2).

The same layout as USDRL's (``{'epoch', 'state_dict', 'optimizer'}``, DDP's ``module.`` prefix),
with UmURL's backbone: ``backbone.{j,b,m}_emb.*`` embeddings, the fusion Linears
``backbone.mm_fusion.{t,s}_fusion.0.weight`` (one-layer Sequentials there, plain Linears here) and
the shared encoder ``backbone.ma_encoder.*``. The modality-aware projectors ``j_projector.*``,
``b_projector.*``, ``m_projector.*`` (SyncBatchNorm statistics included) are expected and dropped.
"""

from __future__ import annotations

import re
from typing import Any

from harness.checkpoints.base import Checkpoint
from harness.checkpoints.layouts import IN_CHANNELS, DataParallelFormat, state_of
from harness.registry import CHECKPOINT_FORMATS

RENAMES = (("backbone.mm_fusion.t_fusion.0.", "encoder.mm_fusion.t_fusion."),
           ("backbone.mm_fusion.s_fusion.0.", "encoder.mm_fusion.s_fusion."),
           ("backbone.", "encoder."))
PROJECTORS = ("j_projector.", "b_projector.", "m_projector.")


@CHECKPOINT_FORMATS.register()
class UmURLFormat(DataParallelFormat):
    """UmURL's pretrain.py checkpoint_NNNN.pth.tar."""

    name = "umurl"
    order = 20
    label = "UmURL pretraining checkpoint (HuiGuanLab/UmURL pretrain.py)"
    method = "umurl"
    ignored_prefixes = PROJECTORS
    renames = RENAMES
    marker, marker_what = "backbone.j_emb.", "UmURL's joint embedding"

    def encoder_of(self, obj: Any) -> str:
        return "umurl"

    def shapes(self, ckpt: Checkpoint) -> dict[str, Any]:
        s, _ = state_of(ckpt.obj)
        out: dict[str, Any] = {}
        emb = s.get("backbone.j_emb.s_embedding.0.weight")
        if emb is not None:
            out["encoder.options.hidden"] = int(emb.shape[0])
            out["data.frames"] = int(emb.shape[1]) // IN_CHANNELS
        layers = {m.group(1) for k in s if (m := re.match(r"backbone\.ma_encoder\.t_tr\.layers\.(\d+)\.", k))}
        if layers:
            out["encoder.options.layers"] = len(layers)
        ff = s.get("backbone.ma_encoder.t_tr.layers.0.linear1.weight")
        if ff is not None:
            out["encoder.options.ffn"] = int(ff.shape[0])
        return out

    def check_config(self, ckpt: Checkpoint, resolved: Any) -> list[str]:
        heads = resolved.encoder.options.get("heads")
        if heads != 1:
            return [f"the file does not record the attention heads; UmURL's reference trains 1 head, "
                    f"this run builds {heads}"]
        return []
