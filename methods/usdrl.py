"""USDRL: multi-grained feature decorrelation (Weng et al., AAAI 2025; docs/reference/usdrl.md).

K augmented views (default 4) of each clip go through one encoder (DSTE by default) in a single
batched forward. The dense temporal and spatial tokens are max-pooled to ȳ_t and ȳ_s, the
encoder's pooled vector y_i = [ȳ_t; ȳ_s] is the instance representation, and three projectors map
them to z_t, z_s, z_i. The loss is :func:`harness.methods.losses.multi_grained_loss`:

    LOSS = 5·SIM + 1·VAC + 1e-3·XC,   each summed over domains with weights i 1, t 0.5, s 0.5

Projector sizes scale with the encoder width d (``cfg.encoder.hidden``; the paper's d = 1024):
t_proj, s_proj d → 2d → 2d → 2d and i_proj F → 2d → 2d → 4d, F the encoder's pooled width (2d
for DSTE/STTR). The paper sizes (1024 → 2048 → 2048 → 2048; 2048 → 2048 → 2048 → 4096) are the
d = 1024 case; ``proj_hidden``, ``proj_out`` and ``instance_out`` override them.

Initialisation (docs/reference/usdrl.md §6): an encoder with an ``init_weights()`` method (DSTE, STTR) gets the
reference's pretraining init; the projectors always do (``layers.init_weights``). Under DDP every
projection is all-gathered with gradient before the loss, so all batch statistics come from the
global batch (the reference's DataParallel gathers outputs too); projector BatchNorm is per process.
With ``domain_weight`` 0 the temporal/spatial projectors are not built (no unused parameters).

Modality: ``cfg.method.modality`` (joint | bone | motion) is applied inside the backbone, after
augmentation, by :func:`harness.transforms.modality.to_modality`. The reference parses ``--moda`` and
ignores it (docs/reference/usdrl.md §13.1); here it is honoured, so bone and motion models (3s-USDRL) exist.

Table 5 and Figure 5 through configuration only (``--set method.variant=NAME``):

| variant          | VAC | XC | MG-FD | Table 5 / Figure 5                                        |
|------------------|-----|----|-------|-----------------------------------------------------------|
| ``default``      | ✓   | ✓  | ✓     | rows 3 (STTR), 7 (DSTE); Fig. 5 (d)                       |
| ``no_xc``        | ✓   |    | ✓     | row 2 (STTR), row 5 or 6 (DSTE); Fig. 5 (b)               |
| ``single_grained``| ✓  | ✓  |       | row 5 or 6 (DSTE); Fig. 5 (c) (``domain_weight`` 0)       |
| ``no_vac``       |     | ✓  | ✓     | extra ablation (not in the paper)                          |
| ``no_vac_no_xc`` |     |    | ✓     | extra ablation: similarity only (expected to collapse)     |

Rows 1 and 4 (negative-based pretraining) are the ``contrastive`` method. Combine with
``--set encoder=sttr`` (STTR rows), ``--set encoder.options.alpha=0|0.25|…|1`` (Figure 4; α = 1 is CA only,
α = 0 DSA only), ``--set encoder.options.gap=1`` (no DenseShift), ``--set method.options.num_views=2``
(any K ≥ 2; the reference asserts 4), ``--set method.modality=bone`` (or motion), and any loss
weight, e.g. ``--set method.options.xc_weight=0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch

from harness.benchmarks.flops import projector_macs
from harness.config import RunConfig
from harness.contracts import DataInfo, Encoder, FigureRole, Method, ModalityBackbone, TableRow, build_encoder
from harness.errors import HarnessError
from harness.engine.distributed import gather_with_grad  # the identity in one process
from harness.registry import METHODS

from .encoders.layers import Projector, init_weights
from .losses import multi_grained_loss
from .views import token_width, usdrl_views  # shared recipe; re-exported for older imports

__all__ = ["USDRL", "USDRLOptions", "usdrl_views", "token_width", "usdrl_projector_macs"]


def usdrl_projector_macs(d: int = 1024) -> int:
    """t_proj + s_proj + i_proj per sample (37,748,736 at d = 1024)."""
    return 2 * projector_macs(d, 2 * d, 2 * d) + projector_macs(2 * d, 2 * d, 4 * d)


@dataclass
class USDRLOptions:
    """``method.options`` of USDRL; the defaults are the reference's constants (docs/reference/usdrl.md §8)."""

    sim_weight: float = 5.0  # κ: weight of the similarity term
    vac_weight: float = 1.0  # weight of the whole VAC term
    xc_weight: float = 1e-3  # λ: weight of the cross-correlation term
    variance_weight: float = 5.0  # μ: variance hinge weight inside VAC
    covariance_weight: float = 1.0  # auto-covariance weight inside VAC (after the 1/D)
    variance_target: float = 1.0  # γ: target std
    variance_eps: float = 1e-4  # ε inside the sqrt
    offdiag_weight: float = 0.005  # off-diagonal weight inside XC
    instance_weight: float = 1.0  # weight of the instance domain
    domain_weight: float = 0.5  # τ: temporal and spatial domain weight; 0 = single-grained
    use_vac: bool = True
    use_xc: bool = True
    num_views: int = 4  # K; the reference asserts 4
    proj_hidden: int = 0  # projector hidden width; 0 = 2·d
    proj_out: int = 0  # t_proj / s_proj output width; 0 = 2·d
    instance_out: int = 0  # i_proj output width; 0 = 4·d


def _table5(row: str, label: str, encoder: str, variant: str, note: str) -> TableRow:
    return TableRow(label, encoder=encoder, variant=variant, tables=(5,), paper=((5, row, note),))


@METHODS.register("usdrl")
class USDRL(Method):
    """USDRL: multi-grained feature decorrelation over 4 views (VAC + XC, no negatives)."""

    name: ClassVar[str] = "usdrl"
    label: ClassVar[str] = "USDRL"
    paradigm: ClassVar[str] = "feature decorrelation"
    Options: ClassVar[type] = USDRLOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "no_xc": {"use_xc": False},
        "no_vac": {"use_vac": False},
        "single_grained": {"domain_weight": 0.0},
        "no_vac_no_xc": {"use_vac": False, "use_xc": False},
    }
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # the loss needs no per-preset change
    table_rows = (
        TableRow("USDRL (DSTE) (harness)", encoder="dste", paper=tuple((n, "USDRL (DSTE)") for n in (1, 2, 3, 4)) + ((5, "7", "VAC ✓ XC ✓ MG-FD ✓"),)),
        TableRow("USDRL (STTR) (harness)", encoder="sttr", paper=tuple((n, "USDRL (STTR)") for n in (1, 2, 3, 4)) + ((5, "3", "VAC ✓ XC ✓ MG-FD ✓"),)),
        _table5("2", "USDRL (STTR) without XC", "sttr", "no_xc", "VAC ✓ XC ✗ MG-FD ✓"),
        _table5("5", "USDRL (DSTE) without XC", "dste", "no_xc", "VAC ✓ XC ✗ MG-FD ✓; row 5 or 6?"),
        _table5("6", "USDRL (DSTE) single-grained", "dste", "single_grained",
                "VAC ✓ XC ✓ single-grained; row 5 or 6?"),
        TableRow("USDRL (DSTE), bone stream (harness)", encoder="dste", modality="bone", tables=(1,), order=55),
        TableRow("USDRL (DSTE), motion stream (harness)", encoder="dste", modality="motion", tables=(1,), order=55),
        TableRow("3s-USDRL (DSTE) (harness)", encoder="dste", modality="jbm", fuse=("joint", "bone", "motion"), tables=(1,),
                 paper=((1, "3s-USDRL (DSTE)"),)),
    )
    figure_roles = (FigureRole(4, sweep="encoder.options.alpha"),
                    FigureRole(5, "no_xc", panel="(b) MG-FD without XC"),
                    FigureRole(5, "single_grained", panel="(c) single-grained FD with XC"),
                    FigureRole(5, panel="(d) MG-FD with XC (full USDRL)"))
    tunable: ClassVar[dict[str, str]] = {
        "sim": "sim_weight", "vac": "vac_weight", "xc": "xc_weight", "xcorr": "xc_weight", "var": "variance_weight",
        "variance": "variance_weight", "cov": "covariance_weight", "covariance": "covariance_weight",
        "offdiag": "offdiag_weight", "domain": "domain_weight", "instance": "instance_weight"}
    table_order: ClassVar[float] = 10
    num_views: ClassVar[int] = 4  # the instance attribute follows options.num_views

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: USDRLOptions = self.options
        if o.num_views < 2:
            raise HarnessError(f"method.options.num_views must be at least 2, got {o.num_views}")
        self.num_views = o.num_views
        encoder = build_encoder(cfg, info)
        self.net = ModalityBackbone(encoder, self.modality_name(cfg), info.topology)
        d = token_width(encoder)
        hidden = o.proj_hidden or 2 * d
        self.multi_grained = o.domain_weight != 0
        if self.multi_grained:
            self.t_proj = Projector(d, hidden, o.proj_out or 2 * d)
            self.s_proj = Projector(d, hidden, o.proj_out or 2 * d)
        else:  # single-grained: no temporal/spatial projectors (nothing unused under DDP)
            self.t_proj = self.s_proj = None
        self.i_proj = Projector(encoder.feature_dim, hidden, o.instance_out or 4 * d)
        # the reference's pretraining init (docs/reference/usdrl.md §6): every Linear ~ trunc-normal(0, 0.02),
        # bias 0; LayerNorm 1/0; attention in_proj, Conv1d and BatchNorm keep PyTorch defaults.
        # An encoder with its own init_weights() (DSTE, STTR) gets it; others keep their own init.
        if callable(getattr(encoder, "init_weights", None)):
            encoder.init_weights()
        for proj in (self.t_proj, self.s_proj, self.i_proj):
            if proj is not None:
                proj.apply(init_weights)

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """K independent views (crop-resize to T frames + joint corruption or shear), docs/reference/usdrl.md §9."""
        return usdrl_views(x, lengths, num_views=self.num_views, frames=self.info.frames,
                           generator=generator)

    def project(self, views: Sequence[torch.Tensor] | torch.Tensor) -> dict[str, list[torch.Tensor] | None]:
        """Views → per-domain projector outputs {"i": [z^0..z^{K−1}], "t": [...] | None, "s": ...}.

        The encoder runs once on all views concatenated along the batch; each projector's Linear
        layers run once on all views too, while its BatchNorm statistics (and running-stat updates,
        in view order) stay per view (``Projector.forward_views``), exactly as projecting the views
        apart.
        """
        if isinstance(views, torch.Tensor) and views.dim() == 6:  # (K, B, C, T, V, M)
            views = list(views.unbind(0))
        k = len(views)
        if k < 2:
            raise HarnessError(f"USDRL needs at least 2 views, got {k}")
        b = views[0].shape[0]
        out = self.net(torch.cat(list(views), 0))
        z = {"i": list(self.i_proj.forward_views(out.pooled, k).split(b)), "t": None, "s": None}
        if self.multi_grained:
            if out.temporal is None or out.spatial is None:
                raise HarnessError(f"encoder {self.cfg.encoder.name!r} has no dense temporal/spatial "
                                   "tokens; use --set method.variant=single_grained "
                                   "(or method.options.domain_weight=0)")
            y_t = out.temporal.amax(dim=1)  # ȳ_t (K·B, d), as the encoder pools
            y_s = out.spatial.amax(dim=1)
            z["t"] = list(self.t_proj.forward_views(y_t, k).split(b))
            z["s"] = list(self.s_proj.forward_views(y_s, k).split(b))
        return z

    def loss(self, z: dict[str, list[torch.Tensor] | None]) -> dict[str, torch.Tensor]:
        o: USDRLOptions = self.options
        return multi_grained_loss(
            z["i"], z["t"], z["s"], sim_weight=o.sim_weight, vac_weight=o.vac_weight,
            xc_weight=o.xc_weight, instance_weight=o.instance_weight, temporal_weight=o.domain_weight,
            spatial_weight=o.domain_weight, variance_weight=o.variance_weight,
            covariance_weight=o.covariance_weight, variance_target=o.variance_target,
            variance_eps=o.variance_eps, offdiag_weight=o.offdiag_weight, use_vac=o.use_vac,
            use_xc=o.use_xc)

    def forward(self, views: Sequence[torch.Tensor] | torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Views → loss terms. Under DDP every projection is all-gathered (with gradient) first,
        so the batch statistics of every term come from the global batch, as the reference's
        DataParallel gathers its replicas' outputs; projector BatchNorm stays per process."""
        z = {d: None if zs is None else [gather_with_grad(v) for v in zs]
             for d, zs in self.project(views).items()}
        return self.loss(z)

    def backbone(self) -> ModalityBackbone:
        return self.net

    @property
    def encoder(self) -> Encoder:
        return self.net.encoder
