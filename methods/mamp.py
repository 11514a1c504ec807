"""MAMP: masked motion prediction (docs/reference/methods.md §4; maoyunyao/MAMP ``model_mamp/transformer.py``).

- **Encoder**: MAMP's own ViT, the registered encoder ``mamp-vit``
  (:mod:`harness.methods.encoders.mamp_vit`; ``encoder.options`` hidden / heads / layers / mlp_ratio /
  drop_path, MAMP's 256 / 8 / 8 at ``paper``). MAMP trains only that backbone: ``--set encoder=...``
  naming another one is an error, and its untrained floor is ``random`` with ``encoder=mamp-vit``.
- **Views**: crop-resize with scale U(0.5, 1) and at least 64 frames (``crop_min_length``) to
  T = ``data.frames`` frames, then one random rotation with angles U(−0.3, 0.3) rad about x, y and z.
- **Motion-aware masking** at ratio 0.9: motion of a token = mean |patch − the same joint's previous
  patch| over its 12 values (the first patch copies the second); s = motion / (max over the sample ×
  τ + 1e-10); score = log softmax(s) − log(−log(u + 1e-10) + 1e-10) with u ~ U(0, 1) (Gumbel); the
  ``int(L·(1 − ratio))`` tokens with the **lowest** score are kept. τ ≤ 0 is uniform random masking
  (score = u; the MAE baseline, variant ``mae``). The number kept follows the reference's float
  arithmetic: 74 of 750 at the paper size (docs/reference/methods.md rounds it to 75).
- **Decoder.** Linear(D → D_dec), learned mask token (trunc-normal 0.02), unshuffle, separate decoder
  PEs, decoder blocks, LN, Linear(D_dec → 12). Its depth follows the reference's ratio to the encoder
  depth (``decoder_ratio``: 3 of 8 blocks for NTU-60, 5 of 8 for NTU-120 / PKU, variants ``ntu120``,
  ``pku``): round(ratio × encoder layers), at least 1, so it is never deeper than the encoder (3 at
  the paper's size, 1 at the small presets' 2 blocks). ``decoder_depth`` > 0 sets it directly.
- **Target**: the motion x[t+1] − x[t] (last frame 0) per person, patchified to 12 values per token
  (order frame-in-patch, xyz) and normalised per patch, (v − mean)/sqrt(var_unbiased + 1e-6).
  **Loss**: MSE averaged over the 12 values, then over the masked tokens only.
- **Optimisation** (``train_defaults``, every preset): AdamW β (0.9, 0.95), weight decay 0.05 on
  every parameter but biases and norms, lr 1e-3, linear warm-up over the first 5 % of the budget (20
  of 400 epochs) and a half-cycle cosine down to 5e-4; at ``paper`` also MAMP's batch 128 and 400
  epochs. ``--set train.*`` overrides them.

The random numbers of the masking (u) are drawn in :meth:`MAMP.make_views` from the step generator,
so a step is reproducible and a resumed run is exact. T is ``data.frames`` (the reference uses 120;
``--set data.frames=120``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from harness.augment import Compose, CropResize, RotateEuler
from harness.config import RunConfig
from harness.contracts import DataInfo, Method, ModalityBackbone, TableRow, build_encoder
from harness.errors import HarnessError
from harness.registry import METHODS

from .encoders.mamp_vit import PATCH, MAMPViT, vit_blocks, xavier_init
from .losses import masked_mse  # re-exported for older imports


@dataclass
class MAMPOptions:
    """``method.options`` of MAMP; the defaults are the NTU-60 configuration (docs/reference/methods.md §4)."""

    mask_ratio: float = 0.9
    tau: float = 0.8  # motion-aware temperature; ≤ 0 = random masking (MAE)
    decoder_width: int = 0  # 0 = the encoder width
    decoder_ratio: float = 3 / 8  # decoder depth / encoder depth (the reference: 3 of 8)
    decoder_depth: int = 0  # > 0: this depth instead of the ratio rule
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


def decoder_depth(o: MAMPOptions, encoder_layers: int) -> int:
    """The decoder's depth: ``decoder_depth`` if set, else round(decoder_ratio × encoder layers), at
    least 1 (3 of 8 at the paper's size; never deeper than the encoder at ratio ≤ 1)."""
    return o.decoder_depth if o.decoder_depth > 0 else max(1, round(o.decoder_ratio * encoder_layers))


# MAMP's optimiser (docs/reference/methods.md §4): AdamW, no decay on biases and norms, warm-up over
# 20 of 400 epochs, half-cycle cosine to min_lr
MAMP_TRAIN = {"optimizer": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.05, "decay_norm_and_bias": False,
              "lr": 1e-3, "schedule": "cosine", "warmup": 20 / 400, "min_lr": 5e-4, "milestones": []}


@METHODS.register("mamp")
class MAMP(Method):
    """MAMP: masked motion prediction with motion-aware masking (ViT encoder + light decoder)."""

    name: ClassVar[str] = "mamp"
    label: ClassVar[str] = "MAMP"
    paradigm: ClassVar[str] = "masked modelling"
    Options: ClassVar[type] = MAMPOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},  # NTU-60: τ 0.80, decoder 3 of 8 blocks
        "ntu120": {"tau": 0.75, "decoder_ratio": 5 / 8},
        "pku": {"tau": 0.80, "decoder_ratio": 5 / 8},
        "mae": {"tau": 0.0},  # uniform random masking (the MAE baseline)
    }
    moved_options: ClassVar[dict[str, str]] = {
        "width": "encoder.options.hidden", "heads": "encoder.options.heads", "depth": "encoder.options.layers",
        "mlp_ratio": "encoder.options.mlp_ratio", "drop_path": "encoder.options.drop_path"}
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "*": MAMP_TRAIN, "paper": {"batch_size": 128, "epochs": 400}}
    encoders: ClassVar[tuple[str, ...]] = ("mamp-vit",)
    default_encoder: ClassVar[str] = "mamp-vit"
    modalities: ClassVar[tuple[str, ...]] = ("joint",)
    table_rows = (TableRow("MAMP (harness)", encoder="mamp-vit", tables=(1, 2, 3, 4, 6), paper=((1, "MAMP (2023)"),)),)
    table_order: ClassVar[float] = 30
    num_views: ClassVar[int] = 1

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: MAMPOptions = self.options
        if not 0.0 < o.mask_ratio < 1.0:
            raise HarnessError(f"mamp: mask_ratio must be in (0, 1), got {o.mask_ratio}")
        encoder: MAMPViT = build_encoder(cfg, info)
        self.net = ModalityBackbone(encoder, "joint", info.topology)
        if keep_count(self.tokens_per_person, o.mask_ratio) < 1:
            raise HarnessError(f"mamp: mask_ratio {o.mask_ratio} keeps no token of {self.tokens_per_person}")
        eo = encoder.options
        width, heads = eo.hidden, eo.heads
        dec = o.decoder_width or width
        if dec % heads:
            raise HarnessError(f"mamp: decoder width {dec} must be divisible by {heads} heads")
        if o.decoder_depth < 0 or o.decoder_ratio < 0:
            raise HarnessError("mamp: decoder_depth and decoder_ratio must be >= 0")
        self.decoder_layers = decoder_depth(o, eo.layers)
        tp = info.frames // PATCH
        self.decoder_embed = nn.Linear(width, dec)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))
        self.decoder_blocks = vit_blocks(dec, heads, self.decoder_layers, eo.mlp_ratio, eo.drop_path)
        self.decoder_norm = nn.LayerNorm(dec)
        self.decoder_temp_embed = nn.Parameter(torch.zeros(1, tp, 1, dec))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1, info.joints, dec))
        self.decoder_pred = nn.Linear(dec, PATCH * 3)
        # the reference's init: trunc-normal PEs and mask token, then Xavier on every Linear, LN 1/0
        encoder.init_weights()
        for p in (self.mask_token, self.decoder_temp_embed, self.decoder_pos_embed):
            trunc_normal_(p, std=0.02)
        for mod in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            mod.apply(xavier_init)

    def derived_settings(self) -> dict[str, Any]:
        return {"decoder_depth": self.decoder_layers}

    @property
    def encoder(self) -> MAMPViT:
        return self.net.encoder

    @property
    def tokens_per_person(self) -> int:
        return self.info.frames // PATCH * self.info.joints

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One view (crop-resize + rotation) and the masking noise u (N·M, L) from the generator."""
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
        net = self.encoder
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

    def backbone(self) -> ModalityBackbone:
        return self.net
