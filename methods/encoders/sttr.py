"""STTR: USDRL's plain spatio-temporal transformer encoder variant (usdrl.md §5).

Same token streams, embeddings and PEs as DSTE, but each PE is added once, before the first layer,
and each stream is a stack of ``cfg.layers`` standard post-LN ``nn.TransformerEncoderLayer``s
(``cfg.heads`` heads, feed-forward width ``cfg.ffn``, ReLU, dropout 0, batch-first). ``alpha``,
``gap``, ``kernel`` and ``drop_path`` are ignored, as in the reference.

The layers are real ``nn.TransformerEncoder`` modules (state-dict keys ``t_tr.layers.0.self_attn.*``
as the reference's), but :meth:`STTR.streams` runs them with the packed-qkv
``scaled_dot_product_attention`` path of :func:`layers.self_attention` (equal to the modules' own
forward up to float rounding), which also makes every matmul visible to FlopCounterMode. As in the
reference, ``nn.TransformerEncoder`` clones one layer, so the layers of a stream start identical until
:meth:`init_weights` redraws their Linear weights (``in_proj_weight`` stays shared-initialised).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.config import EncoderConfig
from harness.registry import ENCODERS

from .dste import _TwoStreamEncoder, check_encoder_config
from .layers import self_attention, spatial_tokens, temporal_tokens

__all__ = ["STTR"]


def _stack(d: int, heads: int, ffn: int, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="relu", batch_first=True,
                                       norm_first=False)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _run_stack(stack: nn.TransformerEncoder, x: torch.Tensor) -> torch.Tensor:
    for layer in stack.layers:  # post-LN: x = LN1(x + SA(x)); x = LN2(x + FF(x)); dropout 0
        n1, n2 = layer.norm1, layer.norm2
        x = F.layer_norm(x + self_attention(x, layer.self_attn), n1.normalized_shape, n1.weight, n1.bias,
                         n1.eps)
        ff = layer.linear2(F.relu(layer.linear1(x)))
        x = F.layer_norm(x + ff, n2.normalized_shape, n2.weight, n2.bias, n2.eps)
    return x


@ENCODERS.register("sttr")
class STTR(_TwoStreamEncoder):
    """Spatio-temporal transformer encoder (USDRL's STTR variant: post-LN transformer layers)."""

    def __init__(self, cfg: EncoderConfig, *, in_channels: int = 3, frames: int = 64, joints: int = 25,
                 persons: int = 2):
        super().__init__(cfg, in_channels=in_channels, frames=frames, joints=joints, persons=persons)
        check_encoder_config(cfg, "sttr")
        self._build_common()
        self.t_tr = _stack(cfg.hidden, cfg.heads, cfg.ffn, cfg.layers)
        self.s_tr = _stack(cfg.hidden, cfg.heads, cfg.ffn, cfg.layers)

    def streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        y_t, y_s = self.ske_emb(temporal_tokens(x), spatial_tokens(x))
        return _run_stack(self.t_tr, self.tpe(y_t)), _run_stack(self.s_tr, y_s + self.spe)
