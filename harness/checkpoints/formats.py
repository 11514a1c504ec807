"""The checkpoint formats the harness reads, and :func:`read_checkpoint`, which recognises one.

Formats are plugins (``CHECKPOINT_FORMATS`` in :mod:`harness.registry`): the harness's own backbone
export and training checkpoints (:mod:`.harness_files`) and the methods' published layouts
(``harness.methods.checkpoint_formats``; docs/reference/checkpoints.md). :func:`formats` gives them in
the order a file is tried against them: by their ``order`` (the harness's own first), then name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..registry import CHECKPOINT_FORMATS
from .base import Checkpoint, CheckpointFormat
from .loading import refuse_namespaces, safe_load, sha256_of


def formats() -> list[CheckpointFormat]:
    """Every registered format (one instance each), in the order files are tried against them."""
    entries = sorted(CHECKPOINT_FORMATS.entries(), key=lambda e: (getattr(e.obj, "order", 100), e.name))
    return [e.obj() if isinstance(e.obj, type) else e.obj for e in entries]  # an entry point may give an instance


def format_named(name: str) -> CheckpointFormat | None:
    """The registered format ``name`` (as rows record it in ``extra.checkpoint_format``), or None."""
    return next((f for f in formats() if f.name == name), None)


def sniff(obj: Any, path: str | Path = "") -> CheckpointFormat:
    """The format ``obj`` (a loaded checkpoint) is in; an error naming every format tried and why
    it did not match otherwise."""
    reasons = []
    for fmt in formats():
        try:
            why = fmt.detect(obj)
        except Exception as exc:  # a plugin's broken detect must not hide the formats after it
            why = f"its detect failed ({type(exc).__name__}: {exc})"
        if why is None:
            return fmt
        reasons.append(f"{fmt.name}: {why}")
    top = ", ".join(repr(k) for k in list(obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
    raise HarnessError(f"{path}: not a checkpoint format the harness reads (top level: {top}); tried "
                       + "; ".join(reasons))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load ``path`` weights-only, recognise its format and check its layout (not yet its tensors
    against a backbone: that needs the configuration, :mod:`harness.checkpoints.file_source`)."""
    path = Path(path)
    obj = safe_load(path)
    fmt = sniff(obj, path)
    refuse_namespaces(path, obj, fmt.namespace_keys, fmt.label)
    if fmt.unsupported:
        raise HarnessError(f"{path}: recognised as a {fmt.label}, but {fmt.unsupported}")
    ckpt = Checkpoint(path=path, sha256=sha256_of(path), obj=obj, format=fmt, encoder=fmt.encoder_of(obj))
    fmt.check_top_level(ckpt)
    return ckpt
