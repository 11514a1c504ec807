"""STTR: USDRL's plain spatio-temporal transformer encoder variant (docs/reference/usdrl.md §5).

Same token streams, embeddings and PEs as DSTE, but each PE is added once, before the first layer,
and each stream is a stack of ``layers`` standard post-LN ``nn.TransformerEncoderLayer``s
(``heads`` heads, feed-forward width ``ffn``, ReLU, dropout 0, batch-first); its
``encoder.options`` are :class:`STTROptions` (the reference accepts DSTE's alpha, gap and kernel and
ignores them; here they are not options of STTR).

The layers are real ``nn.TransformerEncoder`` modules (state-dict keys ``t_tr.layers.0.self_attn.*``
as the reference's), but :meth:`STTR.streams` runs them with the packed-qkv
``scaled_dot_product_attention`` path of :func:`layers.self_attention` (equal to the modules' own
forward up to float rounding), which also makes every matmul visible to FlopCounterMode. As in the
reference, ``nn.TransformerEncoder`` clones one layer, so the layers of a stream start identical until
:meth:`init_weights` redraws their Linear weights (``in_proj_weight`` stays shared-initialised).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError
from harness.registry import ENCODERS

from .two_stream import TwoStreamEncoder, check_width, embedding_macs
from .layers import self_attention, spatial_tokens, temporal_tokens

__all__ = ["STTR", "STTROptions", "post_ln_stack", "run_post_ln", "sttr_macs"]


@dataclass
class STTROptions:
    """``encoder.options`` of STTR; the defaults are the reference's (docs/reference/usdrl.md §5)."""

    hidden: int = 1024
    heads: int = 1
    layers: int = 2
    ffn: int = 1024  # feed-forward width


def post_ln_stack(d: int, heads: int, ffn: int, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="relu", batch_first=True,
                                       norm_first=False)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def run_post_ln(stack: nn.TransformerEncoder, x: torch.Tensor) -> torch.Tensor:
    for layer in stack.layers:  # post-LN: x = LN1(x + SA(x)); x = LN2(x + FF(x)); dropout 0
        n1, n2 = layer.norm1, layer.norm2
        x = F.layer_norm(x + self_attention(x, layer.self_attn), n1.normalized_shape, n1.weight, n1.bias,
                         n1.eps)
        ff = layer.linear2(F.relu(layer.linear1(x)))
        x = F.layer_norm(x + ff, n2.normalized_shape, n2.weight, n2.bias, n2.eps)
    return x


def sttr_macs(*, frames: int = 64, joints: int = 25, persons: int = 2, channels: int = 3, d: int = 1024,
              ffn: int = 1024, layers: int = 2) -> int:
    """Analytic forward MACs per sample of STTR (6·L·d² + 2·L²·d per layer at ffn = d)."""

    def layer(length: int) -> int:
        return 4 * length * d * d + 2 * length * length * d + 2 * length * d * ffn

    tokens = persons * joints
    emb = embedding_macs(frames, tokens, persons * joints * channels, frames * channels, d)
    return emb + layers * (layer(frames) + layer(tokens))


@ENCODERS.register("sttr")
class STTR(TwoStreamEncoder):
    """Spatio-temporal transformer encoder (USDRL's STTR variant: post-LN transformer layers)."""

    name = "sttr"
    Options = STTROptions
    preset_defaults = {"cpu": {"hidden": 64, "ffn": 64}, "smoke": {"hidden": 32, "ffn": 32}}

    def __init__(self, options: STTROptions | None = None, **shape):
        o = options or STTROptions()
        super().__init__(o, **shape)
        check_width("sttr", o.hidden, o.heads, o.layers)
        if o.ffn < 1:
            raise HarnessError(f"sttr: encoder.options.ffn must be at least 1, got {o.ffn}")
        self._build_common()
        self.t_tr = post_ln_stack(o.hidden, o.heads, o.ffn, o.layers)
        self.s_tr = post_ln_stack(o.hidden, o.heads, o.ffn, o.layers)

    def analytic_macs(self) -> int:
        o = self.options
        return sttr_macs(frames=self.frames, joints=self.joints, persons=self.persons, channels=self.in_channels,
                         d=o.hidden, ffn=o.ffn, layers=o.layers)

    def streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        y_t, y_s = self.ske_emb(temporal_tokens(x), spatial_tokens(x))
        return run_post_ln(self.t_tr, self.tpe(y_t)), run_post_ln(self.s_tr, y_s + self.spe)
