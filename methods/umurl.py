"""UmURL: unified multi-modal unsupervised representation learning (docs/reference/methods.md §2).

Follows HuiGuanLab/UmURL @ 744278b (``umurl.py``, ``pretrain.py``):

- **Encoder**: UmURL's own, the registered encoder ``umurl`` (:mod:`harness.methods.encoders.umurl_fusion`):
  modality-specific embeddings E_j, E_b, E_m, early fusion (mean + bias-free Linear per stream) and a
  shared modality-agnostic transformer. UmURL trains only that backbone (another ``encoder=`` is an
  error) on joint coordinates with bone and motion derived inside: its modality is ``jbm``, and its
  untrained floor is ``random`` with ``encoder=umurl``.
- **Uni-modal path** Enc(E_x(view_x)) (no fusion Linear) and **multi-modal path**
  Enc(fuse(E_j, E_b, E_m)) of one view.
- Three **modality-aware projectors** P_j, P_b, P_m: 2d → 2d → 2d → 4d (BN + ReLU after the first
  two; paper d = 1024: 2048 → 2048 → 2048 → 4096).
- **Views**: USDRL's 4-view feeder (crop-resize U(0.1, 1) + joint corruption or shear); view 1 as joint,
  view 2 as bone, view 3 as motion (uni-modal), view 4 as all three (multi-modal).
- **Loss** (:func:`harness.methods.losses.umurl_loss`), with projections all-gathered across DDP ranks (with gradient)::

      intra = MSE(z_j, z_uj) + MSE(z_b, z_ub) + MSE(z_m, z_um)
      c = (z_j + z_b + z_m)/3;   inter = MSE(z_j, c) + MSE(z_b, c) + MSE(z_m, c)
      L = 5·(intra + inter) + Σ_{six projections} VAC(z)            (VAC = 5·variance + covariance)

  Each projector call has its own BatchNorm statistics (the reference calls each projector once on
  y_u and once on the uni-modal feature).

Downstream, the backbone maps a joint-coordinate clip to the fused multi-modal y_u from J + B + M of
that clip, so UmURL's "J+M+B" result is one model.

Departures: the reference's SyncBatchNorm over 4 GPUs is per-process BatchNorm here; the loss runs
in float32 (:mod:`harness.methods.losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch

from harness.config import RunConfig
from harness.contracts import FUSED_MODALITY, DataInfo, Method, ModalityBackbone, TableRow, build_encoder
from harness.errors import HarnessError
from harness.engine.distributed import gather_with_grad  # the identity in one process
from harness.registry import METHODS

from .encoders.layers import Projector
from .encoders.umurl_fusion import UmURLEncoder
from .losses import umurl_loss  # re-exported for older imports
from .views import usdrl_views


@dataclass
class UmURLOptions:
    """``method.options`` of UmURL; the defaults are the reference's (docs/reference/methods.md §2)."""

    sim_weight: float = 5.0  # weight of intra + inter
    vac_weight: float = 1.0  # weight of Σ VAC
    variance_weight: float = 5.0  # inside VAC
    covariance_weight: float = 1.0  # inside VAC
    variance_target: float = 1.0
    variance_eps: float = 1e-4
    proj_hidden: int = 0  # 0 = 2·d
    proj_out: int = 0  # 0 = 4·d


@METHODS.register("umurl")
class UmURL(Method):
    """UmURL: multi-modal (J+B+M) early fusion with intra/inter-modal consistency + VAC."""

    name: ClassVar[str] = "umurl"
    label: ClassVar[str] = "UmURL"
    paradigm: ClassVar[str] = "feature decorrelation"
    Options: ClassVar[type] = UmURLOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "no_vac": {"vac_weight": 0.0},  # extra ablation: consistency only (expected to collapse)
    }
    moved_options: ClassVar[dict[str, str]] = {"layers": "encoder.options.layers"}
    encoders: ClassVar[tuple[str, ...]] = ("umurl",)
    default_encoder: ClassVar[str] = "umurl"
    modalities: ClassVar[tuple[str, ...]] = (FUSED_MODALITY,)
    default_modality: ClassVar[str] = FUSED_MODALITY
    table_rows = (TableRow("UmURL (harness)", encoder="umurl", modality=None, tables=(1, 2, 3, 4, 6),
                           paper=((1, "UmURL (2023)"), (3, "UmURL (2023)"))),)
    table_order: ClassVar[float] = 20
    tunable: ClassVar[dict[str, str]] = {"sim": "sim_weight", "vac": "vac_weight", "var": "variance_weight",
                                         "cov": "covariance_weight"}
    num_views: ClassVar[int] = 4

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: UmURLOptions = self.options
        encoder: UmURLEncoder = build_encoder(cfg, info)
        self.net = ModalityBackbone(encoder, FUSED_MODALITY, info.topology)
        d2 = encoder.feature_dim
        hidden, out = o.proj_hidden or d2, o.proj_out or 2 * d2
        self.j_projector = Projector(d2, hidden, out)
        self.b_projector = Projector(d2, hidden, out)
        self.m_projector = Projector(d2, hidden, out)

    @property
    def encoder(self) -> UmURLEncoder:
        return self.net.encoder

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """4 USDRL views (docs/reference/usdrl.md §9): 1 → joint, 2 → bone, 3 → motion, 4 → J + B + M."""
        return usdrl_views(x, lengths, num_views=4, frames=self.info.frames, generator=generator)

    def project(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The six projections. The encoder runs once on the four token sets stacked along the batch
        (it has no batch-dependent layer, so this equals four separate calls); every projector call
        keeps its own BatchNorm statistics."""
        if len(views) != 4:
            raise HarnessError(f"umurl needs 4 views, got {len(views)}")
        net = self.encoder
        for v in views:
            net.check_clip(v)
        b = views[0].shape[0]
        parts = [net.embed(views[0], "j"), net.embed(net.modality(views[1], "b"), "b"),
                 net.embed(net.modality(views[2], "m"), "m"), net.fuse(views[3])]
        t = torch.cat([p[0] for p in parts], 0)
        s = torch.cat([p[1] for p in parts], 0)
        y_j, y_b, y_m, y_u = net.encode(t, s).pooled.split(b, 0)
        return {"z_uj": self.j_projector(y_u), "z_ub": self.b_projector(y_u), "z_um": self.m_projector(y_u),
                "z_j": self.j_projector(y_j), "z_b": self.b_projector(y_b), "z_m": self.m_projector(y_m)}

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        o: UmURLOptions = self.options
        z = {k: gather_with_grad(v) for k, v in self.project(views).items()}
        return umurl_loss(z["z_j"], z["z_b"], z["z_m"], z["z_uj"], z["z_ub"], z["z_um"],
                          sim_weight=o.sim_weight, vac_weight=o.vac_weight, variance_weight=o.variance_weight,
                          covariance_weight=o.covariance_weight, variance_target=o.variance_target,
                          variance_eps=o.variance_eps)

    def backbone(self) -> ModalityBackbone:
        return self.net
