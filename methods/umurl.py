"""UmURL: unified multi-modal unsupervised representation learning (methods.md §2).

Follows HuiGuanLab/UmURL @ 744278b (``umurl.py``, ``pretrain.py``):

- **Modality-specific embeddings** E_j, E_b, E_m (joint, bone, motion), each USDRL's per-stream
  embedding Linear → LN → ReLU → Linear (:class:`SkeletonEmbedding`) for the temporal (one token per
  frame, M·V·C wide) and the spatial (one token per person and joint, T·C wide) stream.
- **Early fusion**: the mean of the three embeddings per stream, then a bias-free Linear(d, d) per
  stream (``mm_fusion.t_fusion`` / ``s_fusion``).
- **Modality-agnostic encoder** shared by every path (``ma_encoder``): per stream ``layers`` (1)
  post-LN transformer layers (d, ``cfg.encoder.heads`` heads, feed-forward ``cfg.encoder.ffn``, ReLU,
  dropout 0); the fixed sinusoidal temporal PE is added once, before the temporal layers; no spatial
  PE. Each stream is max-pooled and the two are concatenated: y ∈ R^{2d}.
- **Uni-modal path** Enc(E_x(view_x)) (no fusion Linear) and **multi-modal path**
  Enc(fuse(E_j, E_b, E_m)) of one view.
- Three **modality-aware projectors** P_j, P_b, P_m: 2d → 2d → 2d → 4d (BN + ReLU after the first
  two; paper d = 1024: 2048 → 2048 → 2048 → 4096).
- **Views**: USDRL's 4-view feeder (crop-resize U(0.1, 1) + joint corruption or shear); view 1 as joint,
  view 2 as bone, view 3 as motion (uni-modal), view 4 as all three (multi-modal).
- **Loss** (:func:`umurl_loss`), with projections all-gathered across DDP ranks (with gradient)::

      intra = MSE(z_j, z_uj) + MSE(z_b, z_ub) + MSE(z_m, z_um)
      c = (z_j + z_b + z_m)/3;   inter = MSE(z_j, c) + MSE(z_b, c) + MSE(z_m, c)
      L = 5·(intra + inter) + Σ_{six projections} VAC(z)            (VAC = 5·variance + covariance)

  Each projector call has its own BatchNorm statistics (the reference calls each projector once on
  y_u and once on the uni-modal feature).
- Initialisation: PyTorch defaults everywhere (the reference applies no custom init).

Downstream: :meth:`UmURL.backbone` maps a joint-coordinate clip to the fused multi-modal y_u from
J + B + M of that clip (bone and motion derived inside), so UmURL's "J+M+B" result is one model.
The modality is therefore fixed: ``method.modality`` must be ``jbm`` (``joint``, the config default,
is accepted as a synonym — the input is joint coordinates either way); ``bone``/``motion`` are refused.

Departures: the encoder is UmURL's own (``cfg.encoder.name`` is not used; its ``hidden``, ``heads``
and ``ffn`` are); the depth is ``method.options.layers`` (1 as in the reference); token counts come
from ``data.frames`` and the topology instead of 64 × 25 × 2; the reference's SyncBatchNorm over 4 GPUs
is per-process BatchNorm here; the loss runs in float32 (:mod:`harness.methods.losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.config import RunConfig
from harness.data.modality import bone, motion
from harness.data.topology import Topology
from harness.errors import HarnessError
from harness.registry import METHODS

from . import losses as L
from .base import Backbone, DataInfo, Method
from .encoders.base import EncoderOutput
from .encoders.dste import frame_features_from_streams
from .encoders.layers import Projector, SinusoidalPE, SkeletonEmbedding, self_attention, spatial_tokens, temporal_tokens

UMURL_MODALITIES = ("jbm", "joint")


@dataclass
class UmURLOptions:
    """``method.options`` of UmURL; the defaults are the reference's (methods.md §2)."""

    sim_weight: float = 5.0  # weight of intra + inter
    vac_weight: float = 1.0  # weight of Σ VAC
    variance_weight: float = 5.0  # inside VAC
    covariance_weight: float = 1.0  # inside VAC
    variance_target: float = 1.0
    variance_eps: float = 1e-4
    layers: int = 1  # transformer layers per stream of the modality-agnostic encoder
    proj_hidden: int = 0  # 0 = 2·d
    proj_out: int = 0  # 0 = 4·d


def umurl_loss(z_j: torch.Tensor, z_b: torch.Tensor, z_m: torch.Tensor, z_uj: torch.Tensor,
               z_ub: torch.Tensor, z_um: torch.Tensor, *, sim_weight: float = 5.0, vac_weight: float = 1.0,
               variance_weight: float = 5.0, covariance_weight: float = 1.0, variance_target: float = 1.0,
               variance_eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """UmURL's loss from the six projections (uni-modal z_j, z_b, z_m; multi-modal z_u*).

    Computed in float32 (float64 stays float64) whatever precision the projectors ran in.
    """
    z_j, z_b, z_m, z_uj, z_ub, z_um = (z if z.dtype == torch.float64 else z.float()
                                       for z in (z_j, z_b, z_m, z_uj, z_ub, z_um))
    intra = L.mse(z_j, z_uj) + L.mse(z_b, z_ub) + L.mse(z_m, z_um)
    center = (z_j + z_b + z_m) / 3
    inter = L.mse(z_j, center) + L.mse(z_b, center) + L.mse(z_m, center)
    reg = sum(L.vac(z, variance_weight, covariance_weight, variance_target, variance_eps)
              for z in (z_j, z_b, z_m, z_uj, z_ub, z_um))
    return {"loss": sim_weight * (intra + inter) + vac_weight * reg, "intra": intra, "inter": inter,
            "vac": reg}


class _Fusion(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.t_fusion = nn.Linear(d, d, bias=False)
        self.s_fusion = nn.Linear(d, d, bias=False)


def _stack(d: int, heads: int, ffn: int, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, activation="relu", batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _run_stack(stack: nn.TransformerEncoder, x: torch.Tensor) -> torch.Tensor:
    """Post-LN layers, dropout 0: x = LN1(x + SA(x)); x = LN2(x + FF(x)) (the modules' own math)."""
    for layer in stack.layers:
        n1, n2 = layer.norm1, layer.norm2
        x = F.layer_norm(x + self_attention(x, layer.self_attn), n1.normalized_shape, n1.weight, n1.bias, n1.eps)
        x = F.layer_norm(x + layer.linear2(F.relu(layer.linear1(x))), n2.normalized_shape, n2.weight, n2.bias,
                         n2.eps)
    return x


class _AgnosticEncoder(nn.Module):
    """ST_TR of the reference: temporal PE once + post-LN layers per stream."""

    def __init__(self, d: int, heads: int, ffn: int, layers: int, frames: int):
        super().__init__()
        self.pe = SinusoidalPE(d, max(200, frames))
        self.t_tr = _stack(d, heads, ffn, layers)
        self.s_tr = _stack(d, heads, ffn, layers)

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _run_stack(self.t_tr, self.pe(t)), _run_stack(self.s_tr, s)


class UmURLBackbone(Backbone):
    """Joint-coordinate clip → J, B, M → embeddings → early fusion → shared encoder → y_u (2d)."""

    MODALITY_KEYS = ("j", "b", "m")

    def __init__(self, d: int, heads: int, ffn: int, layers: int, *, in_channels: int, frames: int,
                 topology: Topology, persons: int):
        super().__init__()
        v = topology.num_joints
        self.topology = topology
        self.frames = frames
        t_in, s_in = persons * v * in_channels, frames * in_channels
        self.j_emb = SkeletonEmbedding(t_in, s_in, d)
        self.b_emb = SkeletonEmbedding(t_in, s_in, d)
        self.m_emb = SkeletonEmbedding(t_in, s_in, d)
        self.mm_fusion = _Fusion(d)
        self.ma_encoder = _AgnosticEncoder(d, heads, ffn, layers, frames)
        self.feature_dim = 2 * d
        self.frame_dim = 2 * d

    # --- pieces -----------------------------------------------------------------------------
    def modality(self, x: torch.Tensor, key: str) -> torch.Tensor:
        return x if key == "j" else bone(x, self.topology) if key == "b" else motion(x)

    def embed(self, x: torch.Tensor, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A clip already in modality ``key`` → (temporal, spatial) embeddings of that modality."""
        emb = {"j": self.j_emb, "b": self.b_emb, "m": self.m_emb}[key]
        return emb(temporal_tokens(x), spatial_tokens(x))

    def fuse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint coordinates → fused (temporal, spatial) tokens of J, B and M."""
        ts, ss = zip(*(self.embed(self.modality(x, k), k) for k in self.MODALITY_KEYS))
        t, s = (ts[0] + ts[1] + ts[2]) / 3, (ss[0] + ss[1] + ss[2]) / 3
        return self.mm_fusion.t_fusion(t), self.mm_fusion.s_fusion(s)

    def encode(self, t: torch.Tensor, s: torch.Tensor) -> EncoderOutput:
        y_t, y_s = self.ma_encoder(t, s)
        return EncoderOutput(torch.cat([y_t.amax(dim=1), y_s.amax(dim=1)], dim=1), y_t, y_s)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[3] != self.topology.num_joints:
            raise HarnessError(f"UmURL expects clips (N, C, T, {self.topology.num_joints}, M), got {tuple(x.shape)}")
        if x.shape[2] != self.frames:
            raise HarnessError(f"UmURL was built for {self.frames} frames, got clips of {x.shape[2]}")

    # --- the Backbone seam ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> EncoderOutput:
        self._check(x)
        return self.encode(*self.fuse(x))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward(x)
        return frame_features_from_streams(out.temporal, out.spatial)


@METHODS.register("umurl")
class UmURL(Method):
    """UmURL: multi-modal (J+B+M) early fusion with intra/inter-modal consistency + VAC."""

    name: ClassVar[str] = "umurl"
    Options: ClassVar[type] = UmURLOptions
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "no_vac": {"vac_weight": 0.0},  # extra ablation: consistency only (expected to collapse)
    }
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    num_views: ClassVar[int] = 4

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o: UmURLOptions = self.options
        if cfg.method.modality not in UMURL_MODALITIES:
            raise HarnessError(f"umurl is multi-modal: its backbone always fuses joint, bone and motion "
                               f"(method.modality=jbm); got method.modality={cfg.method.modality!r}")
        if o.layers < 1:
            raise HarnessError(f"umurl: method.options.layers must be at least 1, got {o.layers}")
        e = cfg.encoder
        if e.hidden % max(e.heads, 1):
            raise HarnessError(f"umurl: encoder.hidden ({e.hidden}) must be divisible by encoder.heads ({e.heads})")
        d = e.hidden
        self.net = UmURLBackbone(d, e.heads, e.ffn, o.layers, in_channels=3, frames=info.frames,
                                 topology=info.topology, persons=info.persons)
        hidden, out = o.proj_hidden or 2 * d, o.proj_out or 4 * d
        self.j_projector = Projector(2 * d, hidden, out)
        self.b_projector = Projector(2 * d, hidden, out)
        self.m_projector = Projector(2 * d, hidden, out)

    # --- the Method seam ----------------------------------------------------------------------
    def make_views(self, x: torch.Tensor, lengths: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """4 USDRL views (usdrl.md §9): 1 → joint, 2 → bone, 3 → motion, 4 → J + B + M."""
        from harness.data.augment import usdrl_views

        return usdrl_views(x, lengths, num_views=4, frames=self.info.frames, generator=generator)

    def project(self, views: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The six projections. The encoder runs once on the four token sets stacked along the batch
        (it has no batch-dependent layer, so this equals four separate calls); every projector call
        keeps its own BatchNorm statistics."""
        if len(views) != 4:
            raise HarnessError(f"umurl needs 4 views, got {len(views)}")
        net = self.net
        for v in views:
            net._check(v)
        b = views[0].shape[0]
        parts = [net.embed(views[0], "j"), net.embed(net.modality(views[1], "b"), "b"),
                 net.embed(net.modality(views[2], "m"), "m"), net.fuse(views[3])]
        t = torch.cat([p[0] for p in parts], 0)
        s = torch.cat([p[1] for p in parts], 0)
        y_j, y_b, y_m, y_u = net.encode(t, s).pooled.split(b, 0)
        return {"z_uj": self.j_projector(y_u), "z_ub": self.b_projector(y_u), "z_um": self.m_projector(y_u),
                "z_j": self.j_projector(y_j), "z_b": self.b_projector(y_b), "z_m": self.m_projector(y_m)}

    def forward(self, views: Sequence[torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        from harness.engine.distributed import gather_with_grad  # identity in one process

        o: UmURLOptions = self.options
        z = {k: gather_with_grad(v) for k, v in self.project(views).items()}
        return umurl_loss(z["z_j"], z["z_b"], z["z_m"], z["z_uj"], z["z_ub"], z["z_um"],
                          sim_weight=o.sim_weight, vac_weight=o.vac_weight, variance_weight=o.variance_weight,
                          covariance_weight=o.covariance_weight, variance_target=o.variance_target,
                          variance_eps=o.variance_eps)

    def backbone(self) -> UmURLBackbone:
        return self.net
