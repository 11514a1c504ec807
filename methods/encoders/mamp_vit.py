"""MAMP's ViT encoder (``mamp-vit``; docs/reference/methods.md §4; maoyunyao/MAMP ``model_mamp/transformer.py``).

Each person is a separate sequence (N·M, T, V, 3). A patch is 4 frames × 1 joint × xyz, embedded by
Conv2d(3 → D, kernel = stride = (4, 1)); learned separable positional embeddings, temporal (T/4) +
spatial (V), truncated-normal std 0.02; ViT blocks (:class:`timm.models.vision_transformer.Block`:
pre-LN, joint space-time attention, MLP ratio 4, qkv bias) and a final LN. The ``paper`` sizes are
MAMP's (width 256, 8 heads, depth 8); the small presets' are narrow.

Features: the encoder on all tokens; pooled = mean over persons, time patches and joints (D);
``temporal`` = per-time-patch tokens averaged over persons and joints (N, T/4, D); ``spatial`` = per
(person, joint) tokens averaged over time (N, M·V, D); ``frame_features`` = the temporal tokens
repeated 4× along time (N, T, D). The clip may be shorter than the model's T (the positional
embeddings are sliced, as in the reference) but must be a multiple of 4.

:meth:`MAMPViT.init_weights` is the reference's: Xavier-uniform Linear weights, zero biases, LN 1/0,
trunc-normal PEs; the patch Conv2d keeps PyTorch's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from harness.contracts import Encoder, EncoderOutput
from harness.errors import HarnessError
from harness.registry import ENCODERS

PATCH = 4  # frames per patch (t_patch_size)


@dataclass
class MAMPViTOptions:
    """``encoder.options`` of ``mamp-vit``; the defaults are MAMP's (docs/reference/methods.md §4)."""

    hidden: int = 256  # width D
    heads: int = 8
    layers: int = 8  # ViT blocks
    mlp_ratio: float = 4.0
    drop_path: float = 0.0


def vit_blocks(dim: int, heads: int, depth: int, mlp_ratio: float, drop_path: float) -> nn.ModuleList:
    """``depth`` timm ViT blocks with a linear stochastic-depth ramp up to ``drop_path``."""
    dpr = [float(r) for r in torch.linspace(0, drop_path, depth)] if depth else []
    return nn.ModuleList([Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=dpr[i],
                                norm_layer=nn.LayerNorm) for i in range(depth)])


def xavier_init(m: nn.Module) -> None:
    """MAMP's (MAE's) init, for ``module.apply``: Xavier-uniform Linear, zero bias, LayerNorm 1/0."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@ENCODERS.register("mamp-vit")
class MAMPViT(Encoder):
    """MAMP's ViT: 4-frame joint patches, separable PEs, ViT blocks; per-person token sequences."""

    name = "mamp-vit"
    Options = MAMPViTOptions
    # small presets: head width 32 as at the paper's size (256 / 8), two blocks as the other encoders
    preset_defaults = {"cpu": {"hidden": 64, "heads": 2, "layers": 2}, "smoke": {"hidden": 32, "heads": 1, "layers": 2}}

    def __init__(self, options: MAMPViTOptions | None = None, **shape):
        o = options or MAMPViTOptions()
        super().__init__(o, **shape)
        if o.hidden < 1 or o.heads < 1 or o.hidden % o.heads or o.layers < 1:
            raise HarnessError(f"mamp-vit: encoder.options.hidden ({o.hidden}) must be a positive multiple of "
                               f"heads ({o.heads}) and layers ({o.layers}) at least 1")
        if self.frames % PATCH:
            raise HarnessError(f"mamp-vit: data.frames ({self.frames}) must be divisible by {PATCH} "
                               f"(patches of {PATCH} frames)")
        width = o.hidden
        self.joints_embed = nn.Conv2d(self.in_channels, width, kernel_size=(PATCH, 1), stride=(PATCH, 1))
        self.temp_embed = nn.Parameter(torch.zeros(1, self.frames // PATCH, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, self.joints, width))
        self.blocks = vit_blocks(width, o.heads, o.layers, o.mlp_ratio, o.drop_path)
        self.norm = nn.LayerNorm(width)
        self.feature_dim = self.frame_dim = width

    def init_weights(self) -> None:
        self.apply(xavier_init)
        trunc_normal_(self.temp_embed, std=0.02)
        trunc_normal_(self.pos_embed, std=0.02)

    def per_person(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) → (N·M, T, V, C), checking the shape."""
        n, c, t, v, m = x.shape
        if c != self.in_channels or v != self.joints or m != self.persons:
            raise HarnessError(f"MAMP was built for clips (N, {self.in_channels}, T, {self.joints}, "
                               f"{self.persons}), got {tuple(x.shape)}")
        if t % PATCH or t > self.frames or t == 0:
            raise HarnessError(f"MAMP needs a multiple of {PATCH} frames, at most {self.frames}; got {t}")
        return x.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c)

    def embed(self, xp: torch.Tensor) -> torch.Tensor:
        """(NM, T, V, C) → tokens with PEs (NM, T/4, V, D)."""
        z = self.joints_embed(xp.permute(0, 3, 1, 2))  # (NM, D, T/4, V)
        z = z.permute(0, 2, 3, 1)
        return z + self.pos_embed[:, :, : z.shape[2]] + self.temp_embed[:, : z.shape[1]]

    def run_blocks(self, tokens: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens through the encoder: (N, M, T/4, V, D)."""
        n, m = x.shape[0], x.shape[4]
        z = self.embed(self.per_person(x))
        nm, tp, v, d = z.shape
        return self.run_blocks(z.reshape(nm, tp * v, d)).reshape(n, m, tp, v, d)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        z = self.tokens(x)
        n, m, tp, v, d = z.shape
        temporal = z.mean(dim=(1, 3))  # (N, T/4, D)
        spatial = z.mean(dim=2).reshape(n, m * v, d)  # person-major (N, M·V, D)
        return EncoderOutput(pooled=z.mean(dim=(1, 2, 3)), temporal=temporal, spatial=spatial)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).temporal.repeat_interleave(PATCH, dim=1)
