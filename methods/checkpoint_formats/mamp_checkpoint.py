"""MAMP's pretraining checkpoints (``checkpoint-N.pth``; docs/reference/checkpoints.md §3).

MAMP's ``util/misc.py save_model`` writes ``{'model', 'optimizer', 'epoch', 'scaler', 'args'}``:
``model`` is the unwrapped model's state dict (no ``module.`` prefix), ``epoch`` the 0-based epoch
just finished, ``scaler`` the AMP scaler's state and ``args`` the script's ``argparse.Namespace``
(the one place a Namespace is admitted). Encoder keys: ``joints_embed.proj.*`` (the patch Conv2d,
``joints_embed.*`` here), ``temp_embed``, ``pos_embed``, ``blocks.N.*`` (the same names as timm's ViT
block) and ``norm.*``; the decoder's (``decoder_*``, ``mask_token``) are expected and dropped.
``args.model_args`` records the attention heads, which no tensor shape shows: a run with other heads
is refused.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import torch

from harness.checkpoints.base import (Checkpoint, CheckpointFormat, Mapped, file_key, map_by_prefix, strip_prefix,
                                      suggest_sets)
from harness.errors import HarnessError
from harness.registry import CHECKPOINT_FORMATS

RENAMES = (("joints_embed.proj.", "encoder.joints_embed."), ("blocks.", "encoder.blocks."),
           ("norm.", "encoder.norm."), ("temp_embed", "encoder.temp_embed"), ("pos_embed", "encoder.pos_embed"))
DECODER = ("decoder_embed.", "mask_token", "decoder_blocks.", "decoder_norm.", "decoder_temp_embed",
           "decoder_pos_embed", "decoder_pred.")
PATCH = 4  # frames per temporal patch (t_patch_size)


def model_of(obj: Any) -> tuple[dict[str, Any], str]:
    state = obj.get("model") if isinstance(obj, dict) else None
    return strip_prefix(state if isinstance(state, dict) else {})


def model_args(obj: Any) -> dict[str, Any]:
    args = obj.get("args") if isinstance(obj, dict) else None
    margs = getattr(args, "model_args", None) if isinstance(args, argparse.Namespace) else None
    return margs if isinstance(margs, dict) else {}


@CHECKPOINT_FORMATS.register()
class MAMPFormat(CheckpointFormat):
    """MAMP's main_pretrain.py checkpoint-N.pth."""

    name = "mamp"
    order = 40  # after SCD-Net
    label = "MAMP pretraining checkpoint (maoyunyao/MAMP main_pretrain.py)"
    method = "mamp"
    top_keys = ("model", "optimizer", "epoch", "scaler", "args")
    ignored_prefixes = DECODER
    namespace_keys = ("args",)

    def detect(self, obj: Any) -> str | None:
        if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
            return "no 'model' dict"
        state, _ = model_of(obj)
        if "joints_embed.proj.weight" not in state:
            return "no joints_embed.proj.weight (MAMP's patch embedding)"
        return None

    def encoder_of(self, obj: Any) -> str:
        return "mamp-vit"

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:
        state, prefix = model_of(ckpt.obj)
        return map_by_prefix(state, RENAMES, self.ignored_prefixes, prefix)

    def file_name(self, ckpt: Checkpoint, key: str) -> str:
        return file_key(key, RENAMES, model_of(ckpt.obj)[1])

    def shapes(self, ckpt: Checkpoint) -> dict[str, Any]:
        s, _ = model_of(ckpt.obj)
        out: dict[str, Any] = {}
        if "pos_embed" in s:
            out["encoder.options.hidden"] = int(s["pos_embed"].shape[-1])
        if "temp_embed" in s:
            out["data.frames"] = int(s["temp_embed"].shape[1]) * PATCH
        blocks = {m.group(1) for k in s if (m := re.match(r"blocks\.(\d+)\.", k))}
        if blocks:
            out["encoder.options.layers"] = len(blocks)
        heads = model_args(ckpt.obj).get("num_heads")
        if isinstance(heads, int):
            out["encoder.options.heads"] = heads
        return out

    def check_config(self, ckpt: Checkpoint, resolved: Any) -> list[str]:
        heads = model_args(ckpt.obj).get("num_heads")
        have = resolved.encoder.options.get("heads")
        if isinstance(heads, int) and heads != have:
            raise HarnessError(f"{ckpt.path}: the file was trained with {heads} attention heads (args.model_args."
                               f"num_heads) but this run builds {have}; {suggest_sets(self.shapes(ckpt), resolved)}")
        if not isinstance(heads, int):
            return [f"the file's args do not record the attention heads; this run builds {have}"]
        return []

    def identity(self, ckpt: Checkpoint) -> dict[str, int]:
        epoch = ckpt.obj.get("epoch")  # the 0-based epoch just finished
        seed = getattr(ckpt.obj.get("args"), "seed", 0)
        return {"epochs": int(epoch) + 1 if isinstance(epoch, int) else 0, "steps": 0,
                "pretrain_seed": seed if isinstance(seed, int) else 0}

