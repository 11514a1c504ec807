"""Evaluating a backbone from a checkpoint file: ``harness run ... --checkpoint PATH``.

- :mod:`.loading`: the sha256 and a weights-only load (nothing in a file is ever run);
- :mod:`.base`: what a format defines and the strict check that every tensor is accounted for;
  :mod:`.layouts`: layouts several formats share;
- the formats are plugins (``CHECKPOINT_FORMATS``, :mod:`harness.registry`): the harness's own files
  (:mod:`.harness_files`) and the methods' published ones (``harness.methods.checkpoint_formats``);
  :mod:`.formats` lists them in sniff order and :func:`read_checkpoint` recognises one;
- :mod:`.file_source`: the backbone source :func:`harness.pipeline.evaluate` evaluates for a file
  (built from the configuration, loaded strictly; rows carry the file's sha256 as their identity).

The formats' key names, prefixes and counts are written down in docs/reference/checkpoints.md.
"""

from .base import Checkpoint, CheckpointFormat, Mapped
from .formats import format_named, formats, read_checkpoint, sniff

__all__ = ["Checkpoint", "CheckpointFormat", "Mapped", "format_named", "formats", "read_checkpoint", "sniff"]
