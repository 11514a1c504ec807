"""The checkpoint formats the harness reads, and :func:`read_checkpoint`, which recognises one.

:data:`FORMATS` maps a format's name to its definition (tried in this order): the harness's own
backbone export and training checkpoints, then the published reference layouts of USDRL, UmURL,
SCD-Net (recognised, and refused with the reason) and MAMP (docs/reference/checkpoints.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import HarnessError
from .base import Checkpoint, CheckpointFormat
from .harness_files import HarnessBackboneFormat, HarnessTrainingFormat
from .loading import refuse_namespaces, safe_load, sha256_of
from .mamp import MAMPFormat
from .scdnet import SCDNetFormat
from .umurl import UmURLFormat
from .usdrl import USDRLFormat

FORMATS: dict[str, CheckpointFormat] = {f.name: f for f in (
    HarnessBackboneFormat(), HarnessTrainingFormat(), USDRLFormat(), UmURLFormat(), SCDNetFormat(), MAMPFormat())}


def sniff(obj: Any, path: str | Path = "") -> CheckpointFormat:
    """The format ``obj`` (a loaded checkpoint) is in; an error naming every format tried and why
    it did not match otherwise."""
    reasons = []
    for name, fmt in FORMATS.items():
        why = fmt.detect(obj)
        if why is None:
            return fmt
        reasons.append(f"{name}: {why}")
    top = ", ".join(repr(k) for k in list(obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
    raise HarnessError(f"{path}: not a checkpoint format the harness reads (top level: {top}); tried "
                       + "; ".join(reasons))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load ``path`` weights-only, recognise its format and check its layout (not yet its tensors
    against a backbone: that needs the configuration, :mod:`harness.checkpoints.evaluate`)."""
    path = Path(path)
    obj = safe_load(path)
    fmt = sniff(obj, path)
    refuse_namespaces(path, obj, fmt.namespace_keys, fmt.label)
    if fmt.unsupported:
        raise HarnessError(f"{path}: recognised as a {fmt.label}, but {fmt.unsupported}")
    ckpt = Checkpoint(path=path, sha256=sha256_of(path), obj=obj, format=fmt, encoder=fmt.encoder_of(obj))
    fmt.check_top_level(ckpt)
    return ckpt
