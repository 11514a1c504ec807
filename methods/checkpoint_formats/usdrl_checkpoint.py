"""USDRL's pretraining checkpoints (``checkpoint_NNNN.pth.tar``; docs/reference/checkpoints.md §1).

The reference's ``pretrain.py`` saves ``{'epoch', 'state_dict', 'optimizer'}`` from a DataParallel
model, so every state-dict key starts with ``module.``. The backbone's keys are ``backbone.<name>``
with ``<name>`` equal to the harness encoder's own parameter names (134 tensors for DSTE, 62 for
STTR at the paper configuration); the projectors ``t_proj.*``, ``s_proj.*`` and ``i_proj.*`` are
expected and dropped, as is the optimizer state. DSTE or STTR is told by the first layer's keys.
"""

from __future__ import annotations

import re
from typing import Any

from harness.checkpoints.base import Checkpoint
from harness.checkpoints.layouts import IN_CHANNELS, DataParallelFormat, state_of
from harness.registry import CHECKPOINT_FORMATS

PROJECTORS = ("t_proj.", "s_proj.", "i_proj.")
DSTE_KEY = "backbone.t_tr.CA.conv1.weight"
STTR_KEY = "backbone.t_tr.layers.0.self_attn.in_proj_weight"


@CHECKPOINT_FORMATS.register()
class USDRLFormat(DataParallelFormat):
    """USDRL's pretrain.py checkpoint_NNNN.pth.tar."""

    name = "usdrl"
    order = 10  # after the harness's own files
    label = "USDRL pretraining checkpoint (wengwanjiang/USDRL pretrain.py)"
    method = "usdrl"
    ignored_prefixes = PROJECTORS
    marker, marker_what = "backbone.ske_emb.", "DSTE/STTR embeddings"

    def encoder_of(self, obj: Any) -> str:
        state, _ = state_of(obj)
        return "dste" if DSTE_KEY in state else "sttr" if STTR_KEY in state else ""

    def shapes(self, ckpt: Checkpoint) -> dict[str, Any]:
        s, _ = state_of(ckpt.obj)
        out: dict[str, Any] = {}
        if "backbone.spe" in s:
            out["encoder.options.hidden"] = int(s["backbone.spe"].shape[-1])
        emb = s.get("backbone.ske_emb.s_embedding.0.weight")
        if emb is not None:
            out["data.frames"] = int(emb.shape[1]) // IN_CHANNELS  # spatial tokens are T·C wide
        if ckpt.encoder == "dste":
            layers = {m.group(1) for k in s if (m := re.match(r"backbone\.t_tr(\d*)\.", k))}
            out["encoder.options.layers"] = len(layers)
            if "backbone.t_tr.CA.mlp.fc1.weight" in s:
                out["encoder.options.mlp_hidden"] = int(s["backbone.t_tr.CA.mlp.fc1.weight"].shape[0])
            if DSTE_KEY in s:
                out["encoder.options.kernel"] = int(s[DSTE_KEY].shape[-1])
        elif ckpt.encoder == "sttr":
            layers = {m.group(1) for k in s if (m := re.match(r"backbone\.t_tr\.layers\.(\d+)\.", k))}
            out["encoder.options.layers"] = len(layers)
            if "backbone.t_tr.layers.0.linear1.weight" in s:
                out["encoder.options.ffn"] = int(s["backbone.t_tr.layers.0.linear1.weight"].shape[0])
        return out

    def check_config(self, ckpt: Checkpoint, resolved: Any) -> list[str]:
        heads = resolved.encoder.options.get("heads")
        if heads != 1:  # not visible in any shape: say what the reference trains
            return [f"the file does not record the attention heads; the reference trains 1 head "
                    f"(options/options_pretraining.py), this run builds {heads}"]
        return []
