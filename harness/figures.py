"""The paper's Figures 4 and 5 as PNG files (matplotlib, Agg backend).

* **Figure 4** — linear top-1 (best-of) of USDRL (DSTE) against the CA/DSA weight ``encoder.options.alpha``
  (Eq. 5; α = 1 is CA only, α = 0 DSA only). Read from the results store: the α of a row is its
  ``extra.overrides["encoder.options.alpha"]`` (or ``"encoder.alpha"`` in older stores; rows recorded by ``harness reproduce --figure 4``), or the
  preset's default α for rows without overrides (the Table 1 run). Per α, the cell rule of
  :mod:`harness.tables` applies (latest configuration, mean ± sample std over seeds).
* **Figure 5** — t-SNE (``sklearn.manifold.TSNE``) of the pooled instance features y_i of four
  pretrained DSTE backbones: (a) negative-based contrastive, (b) MG-FD without XC, (c) single-grained FD
  with XC, (d) MG-FD with XC, on 9 randomly selected (seeded) classes of the test split. Features come
  from the exported backbones (:func:`harness.engine.checkpoint.load_backbone`) through
  :func:`harness.evaluation.features.extract_features`, L2-normalised; all four panels use the same
  samples. A panel whose backbone was not pretrained says so instead of being left out.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

import yaml
from tabulate import tabulate

from . import atomic, paper
from .config import PRESETS, load_config
from .resolve import resolved
from .contracts import FigureRole, figure_roles
from .errors import HarnessError
from .registry import METHODS
from .tables import MEASURES, MeasuredColumn, Selector, _row_mask, pick_cell, pretty_dataset

FIGURE4_NAME = "figure4_alpha.png"
FIGURE4_TABLE = "figure4_alpha.md"  # the plotted points as text, beside the PNG
ALPHA_KEY = "encoder.options.alpha"  # what harness reproduce --figure 4 sweeps
ALPHA_KEYS = {ALPHA_KEY, "encoder.alpha"}  # the second: rows recorded before encoder options existed


FIGURE5_NAME = "figure5_tsne.png"


def figure4_method() -> tuple[str, FigureRole]:
    """The method (and its role) whose ``figure_roles`` give it Figure 4: USDRL (DSTE)."""
    roles = figure_roles(4)
    if len(roles) != 1:
        raise HarnessError(f"Figure 4 needs exactly one method with a Figure 4 role, found {[m for m, _ in roles]}")
    return roles[0]


def figure4_label() -> str:
    method, role = figure4_method()
    return f"{METHODS.get(method).display_label()} ({role.encoder.upper()})"


def default_alpha(preset: str) -> float:
    """The Figure 4 encoder's α at ``preset`` (the CA/DSA weight of the Table 1 run)."""
    _, role = figure4_method()
    return float(resolved(load_config(preset, overrides=[f"encoder.name={role.encoder}"])).encoder.options["alpha"])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    return path


# --- Figure 4 ----------------------------------------------------------------------------------
@dataclass
class AlphaPoint:
    alpha: float
    split: str
    mean: float  # %
    std: float  # % (0 when n = 1)
    n: int
    bad: int  # rows with a NaN / missing value
    lines: tuple[int, ...] = ()  # the results.csv lines of the rows read (harness.tables.index)


def _paper_dataset() -> str:
    return pretty_dataset(paper.FIGURES_DATASET)


def alpha_points(df: pd.DataFrame, dataset: str, preset: str, default_alpha: float = 0.5) -> list[AlphaPoint]:
    """Per (split, α): the Figure 4 method's linear best-of cell. ``df`` is :func:`harness.tables.load_store`."""
    measure = MEASURES["recog"]
    method, role = figure4_method()
    sel = Selector(method, variant=role.variant, encoder=role.encoder)
    base = (df["dataset"] == dataset) & (df["preset"] == preset) & (df["protocol"] == measure.protocol) \
        & (df["metric"] == measure.metric) & (df["method"] == method) & (df["encoder"] == role.encoder) \
        & (df["variant"] == role.variant) & (df["modality"] == "joint") & ~df["_fused"].astype(bool)
    rows = df[base].copy()
    if rows.empty:
        return []
    alphas = []
    for extra in rows["_extra"]:
        over = extra.get("overrides") or {}
        keys = set(over) & ALPHA_KEYS
        if set(over) - ALPHA_KEYS:
            alphas.append(math.nan)  # another sweep's row
        else:
            alphas.append(float(over[keys.pop()]) if keys else default_alpha)
    rows["_alpha"] = alphas
    rows = rows[rows["_alpha"].notna()]  # rows of other sweeps are not α points
    points = []
    for (split, alpha), grp in rows.groupby(["split", "_alpha"], sort=True):
        # the table's cell rule, minus the sweep exclusion
        grp = grp.assign(_sweep=False)
        cell = pick_cell(grp[_row_mask(grp, sel, measure, MeasuredColumn("recog", split), dataset, preset)])
        if not cell.measured:
            continue
        v = 100.0 * np.asarray(cell.values, dtype=float)
        points.append(AlphaPoint(float(alpha), str(split), float(v.mean()) if len(v) else math.nan,
                                 float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v), len(cell.bad),
                                 tuple(cell.lines)))
    return points


def figure4(df: pd.DataFrame, out_dir: str | Path, *, dataset: str, preset: str,
            default_alpha: float = 0.5) -> tuple[Path | None, list[AlphaPoint]]:
    """Write ``figure4_alpha.png``; (None, []) when the store has no α point for this dataset/preset."""
    points = alpha_points(df, dataset, preset, default_alpha)
    if not points:
        return None, []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for split in sorted({p.split for p in points}):
        ps = sorted((p for p in points if p.split == split), key=lambda p: p.alpha)
        xs = [p.alpha for p in ps]
        ys = [p.mean for p in ps]
        es = [p.std for p in ps]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=4, label=f"{pretty_dataset(dataset)} {split}")
        for p in ps:
            ax.annotate(f"{p.mean:.1f}\n(n={p.n}{', NaN!' if p.bad else ''})", (p.alpha, p.mean),
                        textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.set_xlabel("α (CA weight; 1 − α = DSA weight)   α = 0: DSA only, α = 1: CA only")
    ax.set_ylabel("linear top-1, best-of (%)")
    ax.set_xticks(sorted({p.alpha for p in points}))
    caveat = "" if dataset == paper.FIGURES_DATASET else f" — not {_paper_dataset()} (the paper's dataset)"
    ax.set_title(f"Figure 4 (harness): {figure4_label()} linear accuracy vs α\n"
                 f"measured on {pretty_dataset(dataset)}, preset {preset}{caveat}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.margins(y=0.25)
    path = _save(fig, Path(out_dir) / FIGURE4_NAME)
    plt.close(fig)
    atomic.write_text(Path(out_dir) / FIGURE4_TABLE, alpha_markdown(points, dataset, preset))
    return path, points


def alpha_markdown(points: Sequence[AlphaPoint], dataset: str, preset: str) -> str:
    """The points of Figure 4 as a markdown table (mean ± sample std over pretraining seeds)."""
    rows = [[f"{p.alpha:g}", p.split, f"{p.mean:.1f} ± {p.std:.1f}" if p.n > 1 else f"{p.mean:.1f}", p.n,
             p.bad or ""] for p in sorted(points, key=lambda p: (p.split, p.alpha))]
    table = tabulate(rows, headers=["α", "split", "linear top-1 (%)", "n", "NaN rows"], tablefmt="github",
                     disable_numparse=True)
    return (f"# Figure 4 (harness): {figure4_label()} linear top-1 against α, {pretty_dataset(dataset)}, preset "
            f"{preset}\n\nα weighs CA against DSA (Eq. 5; α = 1: CA only, α = 0: DSA only). Linear top-1 is the "
            "SGD probe's best-of; mean ± sample std over pretraining seeds, n = pretraining seeds (probe seeds "
            f"averaged within each). Plotted in `{FIGURE4_NAME}`; produced by `harness reproduce --figure 4`."
            f"\n\n{table}\n")


# --- Figure 5 ----------------------------------------------------------------------------------
@dataclass
class Panel:
    title: str
    method: str
    variant: str
    run_dir: Path | None = None  # a run folder with backbone.pt, or None (not pretrained)
    note: str = ""  # why it is missing


@dataclass
class TsneResult:
    path: Path
    classes: list[int]
    num_samples: int
    panels: list[Panel] = field(default_factory=list)


def _dataset_kind(name: str) -> str:
    p = Path(name)
    if (p / "meta.json").is_file():
        import json

        try:
            return str(json.loads((p / "meta.json").read_text(encoding="utf-8")).get("kind", name))
        except (OSError, ValueError):
            return name
    return name


def find_backbone_run(workdir: str | Path, *, method: str, variant: str, encoder: str, dataset: str,
                      preset: str) -> Path | None:
    """The newest finished run under ``<workdir>/runs`` with this method, variant, encoder (joint modality,
    the preset's default α) pretrained on ``dataset`` (a name or kind) at ``preset``."""
    alpha = default_alpha(preset) if preset in PRESETS else 0.5
    best: tuple[float, Path] | None = None
    root = Path(workdir) / "runs"
    if not root.is_dir():
        return None
    for run in root.iterdir():
        backbone = run / "backbone.pt"
        if not backbone.is_file() or not (run / "config.yaml").is_file():
            continue
        try:
            status = json.loads((run / "run.json").read_text(encoding="utf-8")).get("status")
            cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if status != "finished" or not isinstance(cfg, dict):
            continue
        try:
            ok = (cfg["preset"] == preset and cfg["method"]["name"] == method
                  and cfg["method"]["variant"] == variant and cfg["method"]["modality"] == "joint"
                  and cfg["encoder"]["name"] == encoder
                  and float(cfg["encoder"]["options"]["alpha"]) == alpha
                  and dataset in (cfg["data"]["dataset"], _dataset_kind(str(cfg["data"]["dataset"]))))
        except (KeyError, TypeError, ValueError):
            continue
        if ok:
            stamp = backbone.stat().st_mtime
            if best is None or stamp > best[0]:
                best = (stamp, run)
    return best[1] if best else None


def figure5_panels(workdir: str | Path, *, dataset: str, preset: str,
                   run_dirs: dict[tuple[str, str], Path | None] | None = None,
                   missing: dict[tuple[str, str], str] | None = None) -> list[Panel]:
    """One panel per Figure 5 role of the registered methods (``Method.figure_roles``), by title."""
    panels = []
    for method, role in figure_roles(5):
        title, variant, encoder = role.panel, role.variant, role.encoder
        key = (method, variant)
        if run_dirs is not None and key in run_dirs:
            run = run_dirs[key]
        else:
            run = find_backbone_run(workdir, method=method, variant=variant, encoder=encoder, dataset=dataset,
                                    preset=preset)
        note = (missing or {}).get(key, "") or ("" if run else f"not pretrained: no finished `{method} {variant}` "
                                                               f"{encoder} run for {dataset}/{preset}")
        panels.append(Panel(f"{title}\n{method} {variant} · {encoder}", method, variant, run, note))
    return panels


def choose_samples(labels: np.ndarray, *, classes: int = 9, per_class: int = 80, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Positions into ``labels``: ``classes`` random classes (seeded), at most ``per_class`` samples each."""
    rng = np.random.default_rng(seed)
    present = np.unique(labels[labels >= 0])
    chosen = np.sort(rng.choice(present, size=min(classes, len(present)), replace=False))
    picks = []
    for c in chosen:
        members = np.flatnonzero(labels == c)
        if len(members) > per_class:
            members = np.sort(rng.choice(members, size=per_class, replace=False))
        picks.append(members)
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64), [int(c) for c in chosen]


def figure5(panels: Sequence[Panel], out_dir: str | Path, *, workdir: str | Path, dataset_label: str = "",
            preset: str = "", classes: int = 9, per_class: int = 80, seed: int = 0,
            device: str = "cpu") -> TsneResult | None:
    """t-SNE of the four backbones' pooled test features; None when no panel has a backbone."""
    import torch
    import torch.nn.functional as F
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    from harness.evaluation.features import extract_features

    from .data.prepared.kinds import resolve_dataset
    from .engine.checkpoint import load_backbone

    available = [p for p in panels if p.run_dir is not None]
    if not available:
        return None
    dev = torch.device(device)
    loaded: dict[int, Any] = {}
    ds = cfg0 = None
    for i, p in enumerate(panels):
        if p.run_dir is None:
            continue
        backbone, cfg = load_backbone(p.run_dir, dev)
        loaded[i] = (backbone, cfg)
        if ds is None:
            cfg0 = cfg
            ds = resolve_dataset(cfg.data, workdir)
    assert ds is not None and cfg0 is not None
    split = cfg0.protocol.split or cfg0.data.split
    test = ds.indices(split, "test")
    pos, chosen = choose_samples(ds.labels[test], classes=classes, per_class=per_class, seed=seed)
    idx = test[pos]
    labels = ds.labels[idx]
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 9.0))
    cmap = plt.get_cmap("tab10")
    names = ds.class_names
    for i, (ax, p) in enumerate(zip(axes.flat, panels)):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(p.title, fontsize=9)
        if i not in loaded:
            ax.text(0.5, 0.5, textwrap.fill(p.note or "not pretrained", 48), ha="center", va="center", fontsize=8,
                    transform=ax.transAxes, color="0.35")
            continue
        backbone, cfg = loaded[i]
        feats, _ = extract_features(backbone, ds, idx, frames=cfg.data.frames, batch_size=cfg.protocol.batch_size,
                                    device=dev)
        x = F.normalize(feats.float(), dim=1).cpu().numpy().astype(np.float64)
        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
        with threadpool_limits(1):  # OpenMP oversubscription makes Barnes-Hut many times slower on shared CPUs
            emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                       learning_rate="auto").fit_transform(x)
        for k, c in enumerate(chosen):
            m = labels == c
            ax.scatter(emb[m, 0], emb[m, 1], s=9, color=cmap(k % 10), alpha=0.85,
                       label=names[c] if c < len(names) else str(c))
    handles, leg = [], []
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        if h:
            handles, leg = h, lab
            break
    if handles:
        fig.legend(handles, leg, loc="lower center", ncol=min(5, len(handles)), fontsize=8, markerscale=2,
                   frameon=False)
    fig.suptitle(f"Figure 5 (harness): t-SNE of pooled features, {len(chosen)} random test classes (seed {seed}), "
                 f"{len(idx)} clips\nmeasured on {dataset_label or pretty_dataset(ds.kind)} ({split}), preset "
                 f"{preset or cfg0.preset}"
                 f"{'' if ds.kind == paper.FIGURES_DATASET else f' — not {_paper_dataset()} (the paper' + chr(39) + 's dataset)'}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = _save(fig, Path(out_dir) / FIGURE5_NAME)
    plt.close(fig)
    return TsneResult(path, chosen, int(len(idx)), list(panels))
