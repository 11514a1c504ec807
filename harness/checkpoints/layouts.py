"""Layouts several published checkpoint formats share, for format plugins to subclass.

:class:`DataParallelFormat` is the file a ``pretrain.py`` writes for a (Distributed)DataParallel
model: ``{'epoch', 'state_dict', 'optimizer'}``, every state-dict key prefixed ``module.``, the
backbone under ``backbone.*``. The formats that use it (methods/checkpoint_formats/) name the key
prefix that tells them apart and how their backbone's keys map to the harness's.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Checkpoint, CheckpointFormat, Mapped, file_key, map_by_prefix, strip_prefix

IN_CHANNELS = 3  # x, y, z: the width of a spatial token is T·C


def state_of(obj: Any) -> tuple[dict[str, Any], str]:
    """The state dict without DataParallel's ``module.`` prefix, and the prefix it had."""
    state = obj.get("state_dict") if isinstance(obj, dict) else None
    return strip_prefix(state if isinstance(state, dict) else {})


class DataParallelFormat(CheckpointFormat):
    """``{'epoch', 'state_dict', 'optimizer'}`` of a (Distributed)DataParallel model whose backbone is
    ``backbone.*``. Subclasses name the key prefix that tells them apart (``marker``) and how the
    backbone's keys map to the harness's (``renames``)."""

    top_keys = ("epoch", "state_dict", "optimizer")
    renames: tuple[tuple[str, str], ...] = (("backbone.", "encoder."),)
    marker = ""  # a state-dict key prefix only this format's backbone has
    marker_what = ""

    def detect(self, obj: Any) -> str | None:
        if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
            return "no 'state_dict' dict"
        state, _ = state_of(obj)
        if not any(k.startswith(self.marker) for k in state):
            return f"no {self.marker}* keys ({self.marker_what})"
        return None

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:
        state, prefix = state_of(ckpt.obj)
        return map_by_prefix(state, self.renames, self.ignored_prefixes, prefix)

    def file_name(self, ckpt: Checkpoint, key: str) -> str:
        return file_key(key, self.renames, state_of(ckpt.obj)[1])

    def identity(self, ckpt: Checkpoint) -> dict[str, int]:
        epoch = ckpt.obj.get("epoch")  # saved as the completed epochs (epoch index + 1)
        return {"epochs": int(epoch) if isinstance(epoch, int) else 0, "steps": 0, "pretrain_seed": 0}
