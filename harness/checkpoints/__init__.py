"""Evaluating a backbone from a checkpoint file: ``harness run ... --checkpoint PATH``.

- :mod:`.loading`: the sha256 and a weights-only load (nothing in a file is ever run);
- :mod:`.base`: what a format defines and the strict check that every tensor is accounted for;
- one module per format (:mod:`.harness_files`, :mod:`.usdrl`, :mod:`.umurl`, :mod:`.mamp`,
  :mod:`.scdnet`) and :mod:`.formats` (``FORMATS`` and :func:`read_checkpoint`, which recognises one);
- :mod:`.evaluate`: the backbone built from the configuration and loaded strictly, evaluated with a
  protocol; result rows carry the file's sha256 as their identity.

The formats' key names, prefixes and counts are written down in docs/reference/checkpoints.md.
"""

from .base import Checkpoint, CheckpointFormat, Mapped
from .formats import FORMATS, read_checkpoint, sniff

__all__ = ["Checkpoint", "CheckpointFormat", "FORMATS", "Mapped", "read_checkpoint", "sniff"]
