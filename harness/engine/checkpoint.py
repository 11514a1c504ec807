"""Checkpoints (full training state) and the backbone export that protocols load.

Everything is written atomically (a temporary file renamed into place) and read with
``torch.load(weights_only=True)``, so files hold only tensors, numbers, strings, lists and dicts:
RNG states are stored as plain lists/tensors. The learning rate needs no state: the scheduler is a
function of the step count (harness.engine.schedule).

A training checkpoint (``checkpoints/last.pt``, ``checkpoints/epoch_NNNN.pt``) holds::

    format, version, pretrain_hash, config (RunConfig.to_dict()), epoch (completed epochs),
    global_step, model, optimizer, scaler, rng (one entry per rank), metrics

The backbone export (``backbone.pt``) holds::

    format, version, pretrain_hash, config, method, state_dict (Method.backbone().state_dict()),
    feature_dim, frame_dim, data_info (DataInfo.to_dict()), epochs, global_step

Both store the *resolved* configuration (every plugin option filled in), so a backbone is rebuilt with
exactly the settings it was trained with even after a code default changes.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import atomic
from ..config import RunConfig, _flatten, from_dict
from ..resolve import resolved
from ..contracts import DataInfo, build_method
from ..errors import HarnessError

CKPT_FORMAT = "harness-checkpoint"
BACKBONE_FORMAT = "harness-backbone"
VERSION = 1


# --- RNG states ------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA RNG states as weights_only-loadable values."""
    version, py_state, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"],
                         nps["has_gauss"], nps["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def step_generator(seed: int, epoch: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """The augmentation generator of one step: a pure function of (seed, epoch, step, rank).

    A resumed run therefore draws exactly the augmentations the uninterrupted run would have.
    """
    words = np.random.SeedSequence([seed, epoch, step, rank]).generate_state(2, dtype=np.uint32)
    g = torch.Generator(device=device)
    g.manual_seed(int(words[0]) << 32 | int(words[1]))
    return g


# --- files ---------------------------------------------------------------------------------
def save(obj: dict[str, Any], path: str | Path) -> Path:
    """torch.save to a temporary file beside `path`, then rename: never a torn checkpoint."""
    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def link_or_copy(src: Path, dst: Path) -> None:
    """Make `dst` hold `src`'s bytes (a hard link when possible), replacing `dst` atomically."""
    with atomic.atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)


# what each file must hold (and of which type) to be used at all; anything less is a damaged file
REQUIRED = {
    CKPT_FORMAT: {"pretrain_hash": str, "config": dict, "epoch": int, "global_step": int, "model": dict,
                  "optimizer": dict, "rng": list},
    BACKBONE_FORMAT: {"pretrain_hash": str, "config": dict, "method": str, "state_dict": dict, "data_info": dict},
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def load(path: str | Path, expect_format: str, map_location: str | torch.device = "cpu", *,
         complete: bool = False) -> dict[str, Any]:
    """A checkpoint or backbone file, checked: readable with ``weights_only`` (no code runs), the
    expected format and version, and with ``complete`` every key the harness reads present with its
    type (:data:`REQUIRED`). Any failure is a HarnessError naming the file, what is wrong and what to do."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle (refused, never run), ...
        raise HarnessError(f"{path}: cannot read checkpoint ({_first_line(exc)}){_recovery_hint(path)}") from None
    if not isinstance(obj, dict) or obj.get("format") != expect_format:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise HarnessError(f"{path}: not a {expect_format} file (format {got!r}){_recovery_hint(path)}")
    if obj.get("version") != VERSION:
        raise HarnessError(f"{path}: {expect_format} version {obj.get('version')} is not supported")
    if not complete:
        return obj
    wrong = [f"{k} (missing)" if k not in obj else f"{k} ({type(obj[k]).__name__}, expected {t.__name__})"
             for k, t in REQUIRED.get(expect_format, {}).items() if not isinstance(obj.get(k), t)]
    if expect_format == BACKBONE_FORMAT and not wrong:
        info = obj["data_info"]
        joints = info.get("topology", {}).get("joint_names") if isinstance(info.get("topology"), dict) else None
        if not isinstance(joints, (list, tuple)) or not isinstance(info.get("persons"), int):
            wrong.append("data_info (no topology joint_names or persons)")
    if wrong:
        raise HarnessError(f"{path}: a damaged {expect_format} file: {', '.join(wrong)}{_recovery_hint(path)}")
    return obj


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint with every key a resume reads (:func:`load` with ``complete``)."""
    return load(path, CKPT_FORMAT, map_location, complete=True)


def load_export(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A backbone export with every key a protocol reads (:func:`load` with ``complete``)."""
    return load(path, BACKBONE_FORMAT, map_location, complete=True)


def _recovery_hint(path: Path) -> str:
    """What to do about a damaged file of a run folder: resume from an intact numbered checkpoint,
    or re-export a backbone from the run's last checkpoint."""
    if path.name == "last.pt" and path.parent.name == "checkpoints":
        for cand in sorted(path.parent.glob("epoch_*.pt"), reverse=True):
            try:
                load_checkpoint(cand)
            except HarnessError:
                continue
            return (f". The intact {cand.name} can be resumed from: `harness pretrain` with the same settings "
                    f"and --resume {cand} (or --resume never to start over)")
        return ". No intact epoch_NNNN.pt is beside it: start over with `harness pretrain ... --resume never`"
    if path.name == "backbone.pt":
        last = path.parent / "checkpoints" / "last.pt"
        if last.is_file():
            return (f". `harness pretrain` with the same settings exports it again from {last} "
                    f"(or move {path.parent} aside to pretrain afresh)")
        return f". Move {path.parent} aside (or delete it) to pretrain it again"
    return ""


def config_diff(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines ``key: stored → current`` for every pretraining setting that differs."""
    sections = ("data", "encoder", "method", "train")
    a = _flatten_options(_flatten({k: stored.get(k, {}) for k in sections}))
    b = _flatten_options(_flatten({k: current.get(k, {}) for k in sections}))
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(f"{key}: {a.get(key, '<absent>')!r} → {b.get(key, '<absent>')!r}")
    return out


def _flatten_options(flat: dict[str, Any]) -> dict[str, Any]:
    """Resolved options dicts hold every option: one line per option that differs, not the whole dict."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key.endswith("options") and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def check_same_run(ckpt: dict[str, Any], cfg: RunConfig, path: str | Path) -> None:
    cfg = resolved(cfg)  # a no-op for the run's own ResolvedConfig
    if ckpt.get("pretrain_hash") == cfg.pretrain_hash:
        return
    # checkpoints store the resolved configuration: compare like with like
    diff = config_diff(ckpt.get("config", {}), cfg.to_dict())
    detail = "; ".join(diff) if diff else "(no setting differs; the hash function changed?)"
    raise HarnessError(f"{path}: checkpoint was trained with a different configuration "
                       f"(pretrain_hash {ckpt.get('pretrain_hash')} ≠ {cfg.pretrain_hash}): {detail}. "
                       f"Use --resume never to start over.")


# --- backbone export -----------------------------------------------------------------------
def export_backbone(method: torch.nn.Module, cfg: RunConfig, path: str | Path, *, epochs: int,
                    global_step: int) -> Path:
    cfg = resolved(cfg)  # a no-op for the run's own ResolvedConfig
    backbone = method.backbone()
    info = method.info
    obj = {
        "format": BACKBONE_FORMAT, "version": VERSION, "pretrain_hash": cfg.pretrain_hash,
        "config": cfg.to_dict(), "method": cfg.method.name,
        "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        "feature_dim": int(backbone.feature_dim), "frame_dim": int(getattr(backbone, "frame_dim", 0) or 0),
        "data_info": info.to_dict(),
        "epochs": int(epochs), "global_step": int(global_step),
    }
    return save(obj, path)


def backbone_file(path_or_run_dir: str | Path) -> Path:
    p = Path(path_or_run_dir)
    return p / "backbone.pt" if p.is_dir() else p


def load_backbone(path_or_run_dir: str | Path, device: str | torch.device = "cpu"):
    """A pretrained backbone (eval mode, on `device`) and the RunConfig it was trained with.

    `path_or_run_dir` is a ``backbone.pt`` file or a run folder holding one. The method is rebuilt
    from the stored config with :func:`harness.contracts.build_method` (without touching the global RNG)
    and the backbone weights are loaded strictly.
    """
    path = backbone_file(path_or_run_dir)
    obj = load_export(path)
    try:
        cfg = from_dict(obj["config"])
        info = DataInfo.from_dict(obj["data_info"], path)
        with torch.random.fork_rng(devices=[]):
            method = build_method(cfg, info)
    except HarnessError as exc:
        raise HarnessError(f"{path}: the stored configuration cannot be rebuilt: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # hand-edited or damaged config/data_info
        raise HarnessError(f"{path}: the stored configuration cannot be rebuilt ({_first_line(exc)})"
                           f"{_recovery_hint(path)}") from None
    backbone = method.backbone()
    try:
        backbone.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        raise HarnessError(f"{path}: backbone weights do not fit method {cfg.method.name!r} as built "
                           f"by this code version: {exc}") from None
    backbone.to(device).eval()
    return backbone, cfg
