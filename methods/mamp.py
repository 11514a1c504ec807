"""MAMP: masked motion prediction (methods.md §4; maoyunyao/MAMP ``model_mamp/transformer.py``).

- **Input.** Each person is a separate sequence (N·M, T, V, 3). Views: crop-resize with scale
  U(0.5, 1) and at least 64 frames (``crop_min_length``) to T = ``data.frames`` frames, then one random
  rotation with angles U(−0.3, 0.3) rad about x, y and z (:func:`harness.data.augment.rotate_euler`).
- **Tokens.** A patch is 4 frames × 1 joint × xyz, embedded by Conv2d(3 → D, kernel = stride = (4, 1));
  learned separable positional embeddings, temporal (T/4) + spatial (V), truncated-normal std 0.02.
- **Encoder.** ViT blocks (:class:`timm.models.vision_transformer.Block`: pre-LN, joint space-time
  attention, MLP ratio 4, qkv bias, drop path 0) and a final LN. Width, heads and depth come from
  ``cfg.encoder`` (``hidden``, ``heads``, ``layers``) unless ``method.options.width/heads/depth`` are set;
  the ``paper`` preset sets MAMP's 256 / 8 / 8.
- **Motion-aware masking** at ratio 0.9: motion of a token = mean |patch − the same joint's previous
  patch| over its 12 values (the first patch copies the second); s = motion / (max over the sample ×
  τ + 1e-10); score = log softmax(s) − log(−log(u + 1e-10) + 1e-10) with u ~ U(0, 1) (Gumbel); the
  ``int(L·(1 − ratio))`` tokens with the **lowest** score are kept. τ ≤ 0 is uniform random masking
  (score = u; the MAE baseline, variant ``mae``). The number kept follows the reference's float
  arithmetic: 74 of 750 at the paper size (methods.md rounds it to 75).
- **Decoder.** Linear(D → D_dec), learned mask token (trunc-normal 0.02), unshuffle, separate decoder
  PEs, ``decoder_depth`` blocks (3 for NTU-60, 5 for NTU-120 / PKU: variants ``ntu120``, ``pku``),
  LN, Linear(D_dec → 12).
- **Target**: the motion x[t+1] − x[t] (last frame 0) per person, patchified to 12 values per token
  (order frame-in-patch, xyz) and normalised per patch, (v − mean)/sqrt(var_unbiased + 1e-6).
  **Loss**: MSE averaged over the 12 values, then over the masked tokens only.
- Initialisation as the reference: Xavier-uniform Linear weights, zero biases, LN 1/0; the patch
  Conv2d keeps PyTorch's default.

The random numbers of the masking (u) are drawn in :meth:`MAMP.make_views` from the step generator,
so a step is reproducible and a resumed run is exact.

Downstream (:class:`MAMPBackbone`): the encoder on all tokens; pooled feature = mean over persons,
time patches and joints (D); ``temporal`` = per-time-patch tokens averaged over persons and joints
(N, T/4, D); ``spatial`` = per (person, joint) tokens averaged over time (N, M·V, D);
``frame_features`` = the temporal tokens repeated 4× along time (N, T, D).

Departures: T is ``data.frames`` (the reference uses 120; ``--set data.frames=120``), and the
clip may be shorter than the model's T (the positional embeddings are sliced, as in the reference)
but must be a multiple of 4 (an error otherwise). The optimiser is the run's ``train`` section:
MAMP's AdamW (β 0.9/0.95, wd 0.05, lr 1e-3, batch 128, 400 epochs) is ``--set train.optimizer=adamw
--set train.lr=1e-3 --set train.weight_decay=0.05 --set train.batch_size=128``; its per-iteration
warmup + half-cycle cosine schedule is not available in the engine (MultiStepLR).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from harness.config import RunConfig
from harness.errors import HarnessError
from harness.registry import METHODS

from .base import Backbone, DataInfo, Method
from .encoders.base import EncoderOutput

PATCH = 4  # frames per patch (t_patch_size)


@dataclass
class MAMPOptions:
    """``method.options`` of MAMP; the defaults are the NTU-60 configuration (methods.md §4)."""

    mask_ratio: float = 0.9
    tau: float = 0.8  # motion-aware temperature; ≤ 0 = random masking (MAE)
    width: int = 0  # encoder width D; 0 = encoder.hidden
    heads: int = 0  # 0 = encoder.heads
    depth: int = 0  # encoder blocks; 0 = encoder.layers
    decoder_width: int = 0  # 0 = the encoder width
    decoder_depth: int = 3
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    norm_target: bool = True  # per-patch normalisation of the motion target
    crop_min_ratio: float = 0.5  # crop-resize scale U(crop_min_ratio, 1)
    crop_min_length: int = 64  # minimum crop length (frames) before resampling
    rotation: float = 0.3  # rotation angles U(−rotation, rotation) rad


def patchify(x: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """(NM, T, V, C) → (NM, T/patch, V, patch·C); value order (frame in patch, channel)."""
    nm, t, v, c = x.shape
    return x.reshape(nm, t // patch, patch, v, c).permute(0, 1, 3, 2, 4).reshape(nm, t // patch, v, patch * c)


def motion(x: torch.Tensor) -> torch.Tensor:
    """(NM, T, V, C): x[t+1] − x[t], last frame 0."""
    m = torch.zeros_like(x)
    m[:, :-1] = x[:, 1:] - x[:, :-1]
    return m


def motion_scores(patches: torch.Tensor, u: torch.Tensor, tau: float) -> torch.Tensor:
    """Masking scores (NM, L) from patchified joints (NM, TP, VP, 12) and uniform noise u (NM, L).

    τ > 0: log softmax(motion / (max·τ + 1e-10)) − log(−log(u + 1e-10) + 1e-10); τ ≤ 0: u.
    The lowest scores are kept.
    """
    if tau <= 0:
        return u
    nm = patches.shape[0]
    mot = torch.zeros_like(patches)
    mot[:, 1:] = (patches[:, 1:] - patches[:, :-1]).abs()
    mot[:, 0] = mot[:, 1]
    mot = mot.mean(dim=3).reshape(nm, -1)
    mot = mot / (mot.max(dim=-1, keepdim=True).values * tau + 1e-10)
    prob = F.softmax(mot, dim=-1)
    return torch.log(prob) - torch.log(-torch.log(u + 1e-10) + 1e-10)


def keep_count(tokens: int, mask_ratio: float) -> int:
    """Tokens kept, in the reference's float arithmetic: int(L·(1 − ratio))."""
    return int(tokens * (1 - mask_ratio))


def mask_from_scores(scores: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids_keep (NM, keep), mask (NM, L) with 1 = masked, ids_restore (NM, L)) keeping the lowest scores."""
    ids_shuffle = torch.argsort(scores, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones_like(scores)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], torch.gather(mask, 1, ids_restore), ids_restore


def motion_target(x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(NM, T, V, 3) joints → (NM, L, 12) patchified motion, per-patch normalised."""
    target = patchify(motion(x))
    target = target.reshape(target.shape[0], -1, target.shape[-1])
    if normalize:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    return target


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the 12 values, then over the masked tokens (mask 1) only."""
    loss = (pred.float() - target.float()).pow(2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def _blocks(dim: int, heads: int, depth: int, mlp_ratio: float, drop_path: float) -> nn.ModuleList:
    dpr = [float(r) for r in torch.linspace(0, drop_path, depth)] if depth else []
    return nn.ModuleList([Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=dpr[i],
                                norm_layer=nn.LayerNorm) for i in range(depth)])


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class MAMPBackbone(Backbone):
    """Patch embedding + separable PEs + ViT blocks + LN; per-person sequences (N·M, T/4·V, D)."""

    def __init__(self, *, width: int, heads: int, depth: int, mlp_ratio: float, drop_path: float,
                 frames: int, joints: int, persons: int, in_channels: int = 3):
        super().__init__()
        self.frames, self.joints, self.persons, self.in_channels = frames, joints, persons, in_channels
        self.joints_embed = nn.Conv2d(in_channels, width, kernel_size=(PATCH, 1), stride=(PATCH, 1))
        self.temp_embed = nn.Parameter(torch.zeros(1, frames // PATCH, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, joints, width))
        self.blocks = _blocks(width, heads, depth, mlp_ratio, drop_path)
        self.norm = nn.LayerNorm(width)
        self.feature_dim = self.frame_dim = width

    def reset_parameters(self) -> None:
        self.apply(_init)
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


@METHODS.register("mamp")
class MAMP(Method):
    """MAMP: masked motion prediction with motion-aware masking (ViT encoder + light decoder)."""

    name: ClassVar[str] = "mamp"
    Options: ClassVar[type] = MAMPOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},  # NTU-60: τ 0.80, decoder depth 3
        "ntu120": {"tau": 0.75, "decoder_depth": 5},
        "pku": {"tau": 0.80, "decoder_depth": 5},
        "mae": {"tau": 0.0},  # uniform random masking (the MAE baseline)
    }
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {"width": 256, "heads": 8, "depth": 8},
    }
    num_views: ClassVar[int] = 1

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: MAMPOptions = self.options
        if info.frames % PATCH:
            raise HarnessError(f"mamp: data.frames ({info.frames}) must be divisible by {PATCH} "
                               f"(patches of {PATCH} frames)")
        if not 0.0 < o.mask_ratio < 1.0:
            raise HarnessError(f"mamp: mask_ratio must be in (0, 1), got {o.mask_ratio}")
        if keep_count(info.frames // PATCH * info.joints, o.mask_ratio) < 1:
            raise HarnessError(f"mamp: mask_ratio {o.mask_ratio} keeps no token of "
                               f"{info.frames // PATCH * info.joints}")
        width = o.width or cfg.encoder.hidden
        heads = o.heads or cfg.encoder.heads
        depth = o.depth or cfg.encoder.layers
        dec = o.decoder_width or width
        if width % heads or dec % heads:
            raise HarnessError(f"mamp: widths {width} / {dec} must be divisible by {heads} heads")
        if o.decoder_depth < 0 or depth < 1:
            raise HarnessError("mamp: need depth ≥ 1 and decoder_depth ≥ 0")
        self.net = MAMPBackbone(width=width, heads=heads, depth=depth, mlp_ratio=o.mlp_ratio,
                                drop_path=o.drop_path, frames=info.frames, joints=info.joints,
                                persons=info.persons)
        tp = info.frames // PATCH
        self.decoder_embed = nn.Linear(width, dec)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))
        self.decoder_blocks = _blocks(dec, heads, o.decoder_depth, o.mlp_ratio, o.drop_path)
        self.decoder_norm = nn.LayerNorm(dec)
        self.decoder_temp_embed = nn.Parameter(torch.zeros(1, tp, 1, dec))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1, info.joints, dec))
        self.decoder_pred = nn.Linear(dec, PATCH * 3)
        # the reference's init: trunc-normal PEs and mask token, then Xavier on every Linear, LN 1/0
        self.net.reset_parameters()
        for p in (self.mask_token, self.decoder_temp_embed, self.decoder_pos_embed):
            trunc_normal_(p, std=0.02)
        for mod in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            mod.apply(_init)

    @property
    def tokens_per_person(self) -> int:
        return self.info.frames // PATCH * self.info.joints

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One view (crop-resize + rotation) and the masking noise u (N·M, L) from the generator."""
        from harness.data.augment import Compose, CropResize, RotateEuler

        o: MAMPOptions = self.options
        pipe = Compose(CropResize(self.info.frames, (o.crop_min_ratio, 1.0), min_length=o.crop_min_length),
                       RotateEuler(o.rotation))
        clip = pipe(x, lengths, generator)
        n, m = clip.shape[0], clip.shape[4]
        gen_device = generator.device if generator is not None else clip.device
        u = torch.rand(n * m, self.tokens_per_person, generator=generator, device=gen_device).to(clip.device)
        return {"x": clip, "noise": u}

    def forward(self, views: dict[str, torch.Tensor] | torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Encoder on the kept tokens, decoder on all, MSE on the masked tokens' normalised motion."""
        o: MAMPOptions = self.options
        if isinstance(views, torch.Tensor):
            views = {"x": views}
        x = views["x"]
        net = self.net
        xp = net.per_person(x)  # (NM, T, V, 3)
        nm, t, v, _ = xp.shape
        tokens = net.embed(xp)  # (NM, TP, V, D)
        tp, d = tokens.shape[1], tokens.shape[3]
        length = tp * v
        u = views.get("noise")
        if u is None:
            u = torch.rand(nm, length, device=x.device)
        u = u[:, :length].to(x.device)
        scores = motion_scores(patchify(xp), u, o.tau)
        keep = keep_count(length, o.mask_ratio)
        ids_keep, mask, ids_restore = mask_from_scores(scores, keep)
        tokens = tokens.reshape(nm, length, d)
        kept = torch.gather(tokens, 1, ids_keep[..., None].expand(nm, keep, d))
        latent = net.run_blocks(kept)
        pred = self.decode(latent, ids_restore, tp, v)
        target = motion_target(xp, o.norm_target)
        loss = masked_mse(pred, target, mask)
        return {"loss": loss}

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor, tp: int, v: int) -> torch.Tensor:
        z = self.decoder_embed(latent)
        nm, keep, c = z.shape
        length = tp * v
        z = torch.cat([z, self.mask_token.to(z.dtype).expand(nm, length - keep, c)], dim=1)
        z = torch.gather(z, 1, ids_restore[..., None].expand(nm, length, c))  # unshuffle
        z = z.view(nm, tp, v, c) + self.decoder_pos_embed[:, :, :v] + self.decoder_temp_embed[:, :tp]
        z = z.reshape(nm, length, c)
        for blk in self.decoder_blocks:
            z = blk(z)
        return self.decoder_pred(self.decoder_norm(z))

    def backbone(self) -> MAMPBackbone:
        return self.net
