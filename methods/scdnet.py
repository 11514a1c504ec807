"""SCD-Net: spatiotemporal clue disentanglement with a global instance anchor (docs/reference/methods.md §3).

Follows cong-wu/SCD-Net @ 0af1b19 (``scd/builder.py``, ``feeder/augmentations.py``) for the
contrast and the augmentation:

- query and key encoders (key = EMA copy, updated under ``no_grad`` after the queries and
  before the keys), each giving a temporal clue v_t, a spatial clue v_s and the instance feature
  v_i = [v_t; v_s];
- projectors t and s: Linear(d, h) → ReLU → Linear(h, 128); i: Linear(2d, h) → ReLU → Linear(h, 128)
  (the reference: d = h = 2048), all outputs L2-normalised;
- three queues (t, s, i) of 128 × K, column-normalised Gaussian init, registered buffers; K = 8,192 /
  40,091 of the training clips and m = 0.999^(50,963 / T) (:func:`harness.methods.moco.derive_queue_and_momentum`:
  the reference's 8,192 and 0.999 at ``paper`` on NTU-60 xsub);
- four InfoNCE terms with τ 0.2, target 0, summed (:func:`harness.methods.losses.scd_loss`)::

      (q_t vs k_i, Queue_i)   (q_s vs k_i, Queue_i)   (q_i vs k_t, Queue_t)   (q_i vs k_s, Queue_s)

  then k_t, k_s and k_i are enqueued (all-gathered under DDP);
- two views: crop-resize U(0.1, 1) → T frames, the modality, then independently with p 0.5 each and
  in this order: rotation (one main axis U(0°, 30°), the others U(0°, 1°)), left/right flip, shear
  U(−1, 1), the structural spatial mask (5 seeds, A² of the graph with self-loops, 8 joints zeroed)
  and the temporal mask (chunks of 4 frames, 6 of 16 zeroed), from :mod:`harness.augment`
  (joint and chunk counts scale with the topology and T).

Departures:

- **Encoder.** The reference builds two CTR-GCN backbones with a transformer head per branch
  (expensive). Here both clue branches sit on the shared encoder's dense tokens (``cfg.encoder``,
  DSTE by default, or STTR): v_t = max over the temporal tokens, v_s = max over the spatial tokens,
  v_i = [v_t; v_s] — the encoder's own pooled feature, which is also the downstream feature. The
  projector hidden width h defaults to the token width d. DSTE/STTR keep their reference
  initialisation (``encoder.init_weights()``); the projectors get SCD-Net's Xavier-uniform on every
  2-D weight.
- The modality (``method.modality``) is derived after the crop, as in the reference, and inside
  the backbone downstream. A topology without left/right pairs skips the flip.
- State changes (EMA, enqueue) happen only in training mode; the logits are float32; the short
  last batch of an epoch is written to the queue ring modulo K (:mod:`harness.methods.moco`).
- BatchNorm after each projector's first layer (``head_bn``; the reference has none) and MoCo v3's
  optimiser for transformer encoders (``train_defaults``), as ``contrastive`` (:mod:`harness.methods.contrastive`).
  SCD-Net's own optimiser is ``--set train.optimizer=sgd
  --set train.lr=0.01 --set train.weight_decay=1e-4 --set train.batch_size=64 --set train.epochs=451
  --set train.milestones=[0.7783] --set train.schedule=step --set train.warmup=0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness import augment as A
from harness.config import RunConfig
from harness.contracts import DataInfo, Method, ModalityBackbone, TableRow, build_encoder
from harness.transforms.modality import to_modality
from harness.errors import HarnessError
from harness.registry import METHODS

from .losses import scd_loss  # re-exported for older imports
from .moco import (REFERENCE_TRAIN_CLIPS, KeyQueue, derive_for, TRANSFORMER_TRAIN_DEFAULTS, key_copy,
                   momentum_update_, projection_head)
from .views import token_width


@dataclass
class SCDNetOptions:
    """``method.options`` of SCD-Net; the defaults are the reference's (docs/reference/methods.md §3)."""

    queue_size: int = 0  # K per queue; 0 = queue_ratio × the training clips (8,192 on NTU-60 xsub)
    queue_ratio: float = 8192 / REFERENCE_TRAIN_CLIPS  # SCD-Net's K over NTU-60 xsub's training clips
    temperature: float = 0.2
    momentum: float = 0.999  # over the paper budget (moco.momentum_rule)
    momentum_rule: str = "budget"  # budget | constant
    proj_dim: int = 128
    proj_hidden: int = 0  # 0 = the encoder's token width d
    head_bn: bool = True  # BatchNorm after each projector's first layer (moco.projection_head; the reference has none)
    crop_min: float = 0.1  # crop-resize scale U(crop_min, 1)
    p_rotate: float = 0.5
    p_flip: float = 0.5
    p_shear: float = 0.5
    shear: float = 1.0  # shear off-diagonals U(−shear, shear)
    p_spatial_mask: float = 0.5
    p_temporal_mask: float = 0.5


def _head(in_features: int, hidden: int, out_features: int, batch_norm: bool) -> nn.Sequential:
    head = projection_head(in_features, hidden, out_features, batch_norm)
    with torch.no_grad():  # SCD-Net's weights_init: Xavier-uniform on every 2-D parameter
        for p in head.parameters():
            if p.dim() == 2:
                nn.init.xavier_uniform_(p)
    return head


class _Clues(nn.Module):
    """Encoder (inside a modality backbone) + the three projectors: one query or key branch."""

    def __init__(self, net: ModalityBackbone, d: int, hidden: int, out: int, batch_norm: bool):
        super().__init__()
        self.net = net
        self.t_proj = _head(d, hidden, out, batch_norm)
        self.s_proj = _head(d, hidden, out, batch_norm)
        self.i_proj = _head(2 * d, hidden, out, batch_norm)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Clips already in the method's modality → normalised projections {"t", "s", "i"}."""
        out = self.net.encoder(x)
        if out.temporal is None or out.spatial is None:
            raise HarnessError("scdnet needs an encoder with dense temporal and spatial tokens (dste, sttr)")
        v_t = out.temporal.amax(dim=1)
        v_s = out.spatial.amax(dim=1)
        v_i = torch.cat([v_t, v_s], dim=1)
        return {"t": F.normalize(self.t_proj(v_t), dim=1), "s": F.normalize(self.s_proj(v_s), dim=1),
                "i": F.normalize(self.i_proj(v_i), dim=1)}


@METHODS.register("scdnet")
class SCDNet(Method):
    """SCD-Net: temporal/spatial clues contrasted against a global instance anchor (MoCo, 3 queues)."""

    name: ClassVar[str] = "scdnet"
    label: ClassVar[str] = "SCD-Net"
    paradigm: ClassVar[str] = "negative-based contrastive"
    Options: ClassVar[type] = SCDNetOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "no_masks": {"p_spatial_mask": 0.0, "p_temporal_mask": 0.0},  # extra ablation
    }
    table_rows = (TableRow("SCD-Net (harness)", tables=(1, 2, 3, 4, 6)),)
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = TRANSFORMER_TRAIN_DEFAULTS
    table_order: ClassVar[float] = 50
    num_views: ClassVar[int] = 2

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: SCDNetOptions = self.options
        self.queue_size, self.momentum = derive_for("scdnet", o, info, cfg.train.batch_size)
        encoder = build_encoder(cfg, info, reference_init=True)
        d = token_width(encoder)
        if encoder.feature_dim != 2 * d:
            raise HarnessError(f"scdnet needs an encoder whose pooled feature is [max temporal; max spatial] "
                               f"(2·{d}), got feature_dim {encoder.feature_dim}")
        net = ModalityBackbone(encoder, self.modality_name(cfg), info.topology)
        self.q = _Clues(net, d, o.proj_hidden or d, o.proj_dim, o.head_bn)
        self.k = key_copy(self.q)
        self.queues = nn.ModuleDict({c: KeyQueue(o.proj_dim, self.queue_size) for c in ("t", "s", "i")})
        self._augment = self._pipeline()

    def derived_settings(self) -> dict[str, Any]:
        return {"queue_size": self.queue_size, "momentum": self.momentum}

    def _pipeline(self):
        o: SCDNetOptions = self.options
        topo = self.info.topology
        steps: list = [A.CropResize(self.info.frames, (o.crop_min, 1.0))]
        modality = self.modality_name(self.cfg)
        if modality != "joint":
            steps.append(A.Lambda(lambda x, generator=None: to_modality(x, modality, topo)))
        steps.append(A.RotateAimCLR(p=o.p_rotate))
        if topo.flip is not None:
            steps.append(A.Flip(topo, p=o.p_flip))
        steps += [A.Shear(o.shear, p=o.p_shear), A.StructuralMask(topo, p=o.p_spatial_mask),
                  A.TemporalMask(chunk=4, p=o.p_temporal_mask)]
        return A.Compose(*steps)

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Two independently augmented views, already in the method's modality."""
        return self._augment.views(x, lengths, 2, generator)

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if len(views) != 2:
            raise HarnessError(f"scdnet needs 2 views, got {len(views)}")
        o: SCDNetOptions = self.options
        q = self.q(views[0])
        with torch.no_grad():
            if self.training:
                momentum_update_(self.k, self.q, self.momentum)
            k = self.k(views[1])
        out = scd_loss(q, k, {c: self.queues[c].queue for c in ("t", "s", "i")}, o.temperature)
        if self.training:
            for c in ("t", "s", "i"):
                self.queues[c].enqueue(k[c])
        return out

    def backbone(self) -> ModalityBackbone:
        return self.q.net

    @property
    def encoder(self) -> nn.Module:
        return self.q.net.encoder
