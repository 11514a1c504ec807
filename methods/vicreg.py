"""VICReg: variance-invariance-covariance regularisation (Bardes, Ponce and LeCun, ICLR 2022).

A feature-decorrelation baseline beside USDRL, written as one plugin file: it uses only the core's
contracts and the shared loss functions.

**Views and encoder.** Two views of each clip from USDRL's recipe
(:func:`harness.methods.views.usdrl_views` with ``num_views=2``: crop-resize to T frames with scale
U(0.1, 1), then joint corruption or shear), so that a comparison with USDRL differs in the objective
and not in the augmentation. One encoder, shared by both views: the configured registered encoder
(``encoder.name``, DSTE by default; any registered encoder works because only its pooled vector is
used) with its reference initialisation, on the run's modality inside a :class:`ModalityBackbone`.

**Expander.** On the pooled instance vector y (width F = the encoder's ``feature_dim``):
Linear → BatchNorm → ReLU → Linear → BatchNorm → ReLU → Linear. The paper uses 8192-8192-8192 on a
2048-wide ResNet-50 feature, i.e. 4× the representation; here the same ratio: hidden and output
width 4F by default (``proj_hidden`` / ``proj_out``, 0 = 4F; with DSTE, F = 2d: 64 → 256 at
``smoke``, 128 → 512 at ``cpu``, 2048 → 8192 at ``paper``, the paper's width). It is called once
per view, so its BatchNorm statistics are per view, as when each view is encoded on its own. Its
Linear layers get the same initialisation as USDRL's projectors (truncated normal, std 0.02, zero
bias), again so that only the objective differs.

**Loss** on the expander outputs Z, Z' (B × D), :func:`harness.methods.losses.vicreg_loss`
(``methods/losses/vicreg_objective.py``) from the shared terms of :mod:`harness.methods.losses`:

- invariance s(Z, Z') = mean over the B·D entries of (Z − Z')²  (:func:`losses.mse`);
- variance v(Z) = mean_j max(0, γ − sqrt(Var(Z[:, j]) + ε)), unbiased variance, γ = 1, ε = 1e-4
  (:func:`losses.variance_term`);
- covariance c(Z) = (1/D) Σ_{i≠j} C(Z)_ij², C the unbiased covariance (:func:`losses.covariance_term`);
- L = λ·s + μ·[v(Z) + v(Z')] + ν·[c(Z) + c(Z')] with λ = μ = 25, ν = 1 (the paper's defaults).

``forward`` returns ``loss`` and the unweighted terms ``invariance`` = s, ``variance`` = v(Z) + v(Z')
and ``covariance`` = c(Z) + c(Z'). Nothing is detached: gradient reaches the encoder through both
views. Under DDP both projections are all-gathered with gradient first, so every batch statistic is
that of the global batch (the expander's BatchNorm stays per process).

The paper's equation adds the two variance hinges; the authors' released training script averages
them (half of each), which equals μ = 12.5 in the equation above: variant ``official_code``.

**Training recipe.** The run's ``train`` section, the same as USDRL's, not the paper's LARS schedule
(the comparison is about the objective). The paper's weights are searchable with
``harness tune --method vicreg --params sim,var,cov``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch

from harness.config import RunConfig
from harness.contracts import (FUSED_MODALITY, DataInfo, Encoder, Method, ModalityBackbone, TableRow,
                               build_encoder)
from harness.transforms.modality import MODALITIES
from harness.engine.distributed import gather_with_grad  # the identity in one process
from harness.errors import HarnessError
from harness.registry import METHODS

from .encoders.layers import Projector, init_weights
from .losses import vicreg_loss  # re-exported (__all__)
from .views import usdrl_views

__all__ = ["VICReg", "VICRegOptions", "vicreg_loss"]


@dataclass
class VICRegOptions:
    """``method.options`` of VICReg; the defaults are the paper's."""

    sim_weight: float = 25.0  # λ: invariance (MSE) weight
    variance_weight: float = 25.0  # μ: weight of v(Z) + v(Z')
    covariance_weight: float = 1.0  # ν: weight of c(Z) + c(Z')
    variance_target: float = 1.0  # γ: target standard deviation of each dimension
    variance_eps: float = 1e-4  # ε inside the square root
    proj_hidden: int = 0  # expander hidden width; 0 = 4F (F = the encoder's pooled width)
    proj_out: int = 0  # expander output width D; 0 = 4F


@METHODS.register("vicreg")
class VICReg(Method):
    """VICReg: two views, one encoder + expander, invariance + variance + covariance (no negatives)."""

    name: ClassVar[str] = "vicreg"
    label: ClassVar[str] = "VICReg"
    paradigm: ClassVar[str] = "feature decorrelation"
    Options: ClassVar[type] = VICRegOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "official_code": {"variance_weight": 12.5},  # the released script's averaged variance hinges
    }
    encoders: ClassVar[tuple[str, ...] | None] = None  # any registered encoder: only `pooled` is used
    default_encoder: ClassVar[str] = "dste"
    modalities: ClassVar[tuple[str, ...]] = MODALITIES + (FUSED_MODALITY,)  # jbm: a fusing encoder (umurl)
    # an extra row of every table (1–5), one per encoder found in the store: Table 5 puts it beside
    # the USDRL ablation rows with the same encoder
    table_rows: ClassVar[tuple[TableRow, ...]] = (TableRow("VICReg (harness)"),)
    tunable: ClassVar[dict[str, str]] = {
        "sim": "sim_weight", "invariance": "sim_weight", "var": "variance_weight", "variance": "variance_weight",
        "cov": "covariance_weight", "covariance": "covariance_weight", "target": "variance_target"}
    num_views: ClassVar[int] = 2

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: VICRegOptions = self.options
        for key in ("proj_hidden", "proj_out"):
            if getattr(o, key) < 0:
                raise HarnessError(f"method.options.{key} (vicreg) must be ≥ 0 (0 = 4 × the encoder's "
                                   f"pooled width), got {getattr(o, key)}")
        if not o.variance_eps > 0:
            raise HarnessError(f"method.options.variance_eps (vicreg) must be > 0, got {o.variance_eps}")
        encoder = build_encoder(cfg, info, reference_init=True)
        self.net = ModalityBackbone(encoder, self.modality_name(cfg), info.topology)
        width = encoder.feature_dim
        self.proj_hidden = o.proj_hidden or 4 * width
        self.proj_out = o.proj_out or 4 * width
        self.expander = Projector(width, self.proj_hidden, self.proj_out)
        self.expander.apply(init_weights)  # USDRL's projector init: only the objective differs

    def derived_settings(self) -> dict[str, Any]:
        return {"proj_hidden": self.proj_hidden, "proj_out": self.proj_out}

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        return usdrl_views(x, lengths, num_views=2, frames=self.info.frames, generator=generator)

    def project(self, views: Sequence[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views → (Z, Z'): the encoder runs once on both views stacked, the expander per view."""
        if isinstance(views, torch.Tensor) and views.dim() == 6:  # (2, B, C, T, V, M)
            views = list(views.unbind(0))
        if len(views) != 2:
            raise HarnessError(f"VICReg takes exactly 2 views, got {len(views)}")
        b = views[0].shape[0]
        y = self.net(torch.cat(list(views), 0)).pooled
        return self.expander(y[:b]), self.expander(y[b:])

    def loss(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        o: VICRegOptions = self.options
        return vicreg_loss(z_a, z_b, sim_weight=o.sim_weight, variance_weight=o.variance_weight,
                           covariance_weight=o.covariance_weight, variance_target=o.variance_target,
                           variance_eps=o.variance_eps)

    def forward(self, views: Sequence[torch.Tensor] | torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z_a, z_b = self.project(views)
        return self.loss(gather_with_grad(z_a), gather_with_grad(z_b))

    def backbone(self) -> ModalityBackbone:
        return self.net

    @property
    def encoder(self) -> Encoder:
        return self.net.encoder
