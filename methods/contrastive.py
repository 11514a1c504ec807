"""Negative-based contrastive learning: MoCo-v2 as in SkeletonCLR (docs/reference/methods.md §1, core algorithm).

What it follows of the reference (Levigty/AimCLR ``net/skeletonclr.py``):

- query encoder f_q = the configured encoder (``cfg.encoder``: DSTE or STTR, built by
  :func:`build_encoder`) with its modality inside the backbone, plus the head
  Linear(F, F) → ReLU → Linear(F, 128) on the pooled feature (F = ``feature_dim``; the reference
  replaces the encoder's final fc by this head);
- key encoder f_k = an EMA copy of encoder + head (m, see below), no gradients;
- q = normalize(f_q(view 1)), k = normalize(f_k(view 2)); logits [q·k, q·Queue]/τ, cross-entropy
  with target 0 (:func:`harness.methods.losses.info_nce`); then k is enqueued (FIFO);
- the queue (128 × K) starts as column-normalised Gaussian noise and is a registered buffer
  (checkpoints carry it, so resume is exact); K must be at least the batch size;
- SkeletonCLR's τ 0.07 and projection 128. K and m follow the data and the budget
  (:func:`harness.methods.moco.derive_queue_and_momentum`): K = 32,768 / 40,091 of the training clips
  (SkeletonCLR's queue on NTU-60 xsub; 817 of synthetic's 1,000 at ``cpu``) and m = 0.999^(50,963 / T)
  for a run of T optimizer steps (0.999 at ``paper`` on NTU-60 xsub, 0.853 at ``cpu``'s 320 steps);
  ``queue_size`` > 0 and ``momentum_rule=constant`` set them directly.

Order of the momentum update: inside :meth:`Contrastive.forward`, under ``no_grad``, after the
queries and **before** the keys are computed, and the enqueue right after the loss — exactly the
reference's order. Both state changes happen only in training mode (``model.train()``); in eval mode
``forward`` computes the same loss without touching the key encoder or the queue.

Departures:

- **Encoder.** The reference uses ST-GCN (¼ width, feature 256). Here every method runs on the shared
  DSTE/STTR encoders so that Table 5's negative-based rows use the same encoder as USDRL: row 1 =
  ``--method contrastive --set encoder=sttr``, row 4 = ``--method contrastive`` (DSTE). DSTE/STTR get
  their reference initialisation (``encoder.init_weights()``), as in USDRL; the head keeps PyTorch's.
- **Views** (``method.options.augment``). ``usdrl`` (default): two views of USDRL's pretraining
  augmentation (crop-resize U(0.1, 1) + joint corruption or shear, docs/reference/usdrl.md §9), so that Table 5 rows
  1/4 differ from rows 3/7 only in the objective. ``aimclr``: AimCLR's "normal" view — the whole valid
  range resampled to T frames (the downstream rule), shear with off-diagonals U(−0.5, 0.5), then a
  random T-frame window of the clip padded by T//6 mirrored frames on each side (AimCLR's
  ``temperal_crop``; T is ``data.frames`` instead of the reference's fixed 50).
- No shuffle-BN: neither DSTE/STTR nor the head has BatchNorm. Under DDP the keys are gathered
  before the enqueue, as in the reference.
- The AimCLR extras (extreme views, DDM, nearest-neighbour mining) and CMD's cross-modal
  distillation are not implemented.
- **Head.** BatchNorm after the head's first layer (``head_bn``; the reference has none): DSTE/STTR's
  pooled features share one large direction, and without it InfoNCE never left ln(K + 1).
- **Optimisation.** MoCo v3's recipe for transformer encoders (``train_defaults``,
  :func:`harness.methods.moco.transformer_recipe`: AdamW, lr 1.5e-4 × batch / 256, weight decay 0.1,
  warm-up over 40/300 of the budget, cosine), since the encoders are transformers; ``--set train.*``
  overrides it. SkeletonCLR's own (for an ST-GCN): ``--set train.optimizer=sgd --set train.lr=0.1
  --set train.weight_decay=1e-4 --set train.batch_size=128 --set train.epochs=300
  --set train.milestones=[0.8333] --set train.schedule=step --set train.warmup=0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.augment import Shear
from harness.config import RunConfig
from harness.contracts import DataInfo, FigureRole, Method, ModalityBackbone, TableRow, build_encoder
from harness.transforms.resample import resample
from harness.errors import HarnessError, UnknownNameError
from harness.registry import METHODS

from .losses import info_nce
from .moco import (REFERENCE_TRAIN_CLIPS, KeyQueue, derive_for, TRANSFORMER_TRAIN_DEFAULTS, key_copy,
                   momentum_update_, projection_head)
from .views import usdrl_views

AUGMENTS = ("usdrl", "aimclr")


@dataclass
class ContrastiveOptions:
    """``method.options`` of ``contrastive``; the defaults are SkeletonCLR's (docs/reference/methods.md §1)."""

    queue_size: int = 0  # K; 0 = queue_ratio × the training clips (32,768 on NTU-60 xsub), at least a batch
    queue_ratio: float = 32768 / REFERENCE_TRAIN_CLIPS  # SkeletonCLR's K over NTU-60 xsub's training clips
    temperature: float = 0.07  # τ
    momentum: float = 0.999  # m of the EMA key encoder over the paper budget (see momentum_rule)
    momentum_rule: str = "budget"  # budget: m^(paper steps / this run's steps) | constant: m as given
    proj_dim: int = 128  # output of the head
    proj_hidden: int = 0  # head hidden width; 0 = the encoder's feature_dim
    head_bn: bool = True  # BatchNorm after the head's first layer (moco.projection_head; the reference has none)
    augment: str = "usdrl"  # usdrl | aimclr
    shear: float = 0.5  # aimclr: shear amplitude
    padding_ratio: int = 6  # aimclr: T // padding_ratio mirrored frames on each side


def aimclr_normal_view(x: torch.Tensor, lengths: torch.Tensor, frames: int, shear: float = 0.5,
                       padding_ratio: int = 6, generator: torch.Generator | None = None) -> torch.Tensor:
    """AimCLR's normal augmentation on raw clips: resample, shear, mirrored-padding temporal crop.

    (B, 3, T_max, V, M) + lengths → (B, 3, frames, V, M). The clip's whole valid range is resampled
    to ``frames``; S = I + off-diagonals U(−shear, shear) maps every joint; the clip is padded with
    p = frames // padding_ratio frames on each side, mirrored (``x[:p][::-1]`` before, ``x[-p:][::-1]``
    after), and the window [s, s + frames) is kept with s uniform in [0, 2p].
    """
    x = resample(x, lengths.to(x.device), frames)
    if shear > 0:
        x = Shear(shear, p=1.0)(x, generator=generator)
    pad = frames // padding_ratio if padding_ratio > 0 else 0
    if pad <= 0:
        return x
    if pad > frames:
        raise HarnessError(f"aimclr crop: padding {pad} exceeds the {frames} frames")
    b, device = x.shape[0], x.device
    gen_device = generator.device if generator is not None else device
    start = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gen_device).to(device)
    j = start[:, None] + torch.arange(frames, device=device)[None]  # positions in the padded clip
    src = torch.where(j < pad, pad - 1 - j, torch.where(j < pad + frames, j - pad, 2 * frames + pad - 1 - j))
    idx = src[:, None, :, None, None].expand(b, x.shape[1], frames, x.shape[3], x.shape[4])
    return torch.gather(x, 2, idx)


@METHODS.register("contrastive")
class Contrastive(Method):
    """MoCo-v2 / SkeletonCLR negative-based contrastive learning on the shared encoder (Table 5 rows 1, 4)."""

    name: ClassVar[str] = "contrastive"
    label: ClassVar[str] = "MoCo-v2"
    paradigm: ClassVar[str] = "negative-based contrastive"
    Options: ClassVar[type] = ContrastiveOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},  # USDRL views: rows 1 (STTR) and 4 (DSTE) of Table 5
        "aimclr_aug": {"augment": "aimclr"},  # SkeletonCLR's own views (shear 0.5 + mirrored crop)
    }
    table_rows = (
        TableRow("MoCo-v2 (harness)", tables=(1, 2, 3, 4, 6)),
        TableRow("MoCo-v2 (harness), STTR", encoder="sttr", tables=(5,), paper=((5, "1", "MoCo-v2 style"),)),
        TableRow("MoCo-v2 (harness), DSTE", encoder="dste", tables=(5,), paper=((5, "4", "MoCo-v2 style"),)),
    )
    figure_roles = (FigureRole(5, panel="(a) negative-based contrastive"),)
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = TRANSFORMER_TRAIN_DEFAULTS
    table_order: ClassVar[float] = 40
    num_views: ClassVar[int] = 2

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: ContrastiveOptions = self.options
        if o.augment not in AUGMENTS:
            raise UnknownNameError("contrastive augment", o.augment, list(AUGMENTS))
        self.queue_size, self.momentum = derive_for("contrastive", o, info, cfg.train.batch_size)
        encoder = build_encoder(cfg, info, reference_init=True)
        self.net = ModalityBackbone(encoder, self.modality_name(cfg), info.topology)
        f = encoder.feature_dim
        self.head = projection_head(f, o.proj_hidden or f, o.proj_dim, o.head_bn)
        self.key_net = key_copy(self.net)
        self.key_head = key_copy(self.head)
        self.queue = KeyQueue(o.proj_dim, self.queue_size)

    def derived_settings(self) -> dict[str, Any]:
        return {"queue_size": self.queue_size, "momentum": self.momentum}

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        o: ContrastiveOptions = self.options
        if o.augment == "usdrl":
            return usdrl_views(x, lengths, num_views=2, frames=self.info.frames, generator=generator)
        return [aimclr_normal_view(x, lengths, self.info.frames, o.shear, o.padding_ratio, generator)
                for _ in range(2)]

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.net(x).pooled), dim=1)

    @torch.no_grad()
    def key(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.key_head(self.key_net(x).pooled), dim=1)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Two views → InfoNCE. In training mode: EMA update before the keys, enqueue after the loss."""
        if len(views) != 2:
            raise HarnessError(f"contrastive needs 2 views, got {len(views)}")
        o: ContrastiveOptions = self.options
        q = self.query(views[0])
        with torch.no_grad():
            if self.training:
                momentum_update_([self.key_net, self.key_head], [self.net, self.head], self.momentum)
            k = self.key(views[1])
        loss, acc = info_nce(q, k, self.queue.queue, o.temperature)
        if self.training:
            self.queue.enqueue(k)
        return {"loss": loss, "acc": acc}

    def backbone(self) -> ModalityBackbone:
        return self.net

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder
