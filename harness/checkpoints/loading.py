"""Reading a checkpoint someone else made: its sha256 and a weights-only unpickle.

Checkpoint files come from strangers (a paper's release page, a colleague's folder), and a pickle
can run any code while it loads. Every file is therefore read with ``torch.load(weights_only=True)``:
tensors, dicts, lists, tuples, strings and numbers only. The one class admitted beyond those is
``argparse.Namespace``, which MAMP's pretraining script stores under ``args`` (checkpoints.md §3),
through torch's ``safe_globals`` context; after loading, a Namespace anywhere a format does not
expect one is refused too (:func:`refuse_namespaces`). A file that needs anything else is refused
with the global it names, and nothing in it is run.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import re
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import HarnessError

# the classes a weights-only load admits beyond torch's own allowlist (MAMP's ``args``)
SAFE_GLOBALS = (argparse.Namespace,)
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def refused_message(path: Path, exc: Exception) -> str:
    """What to tell the user when the weights-only unpickler refuses ``path``."""
    found = re.search(r"GLOBAL (\S+)", str(exc))
    what = f" (it names {found.group(1)!r})" if found else ""
    return (f"{path}: refused: loading this file needs Python objects beyond tensors, dicts, lists and numbers"
            f"{what}, and unpickling them could run code, so it was not loaded. The harness reads checkpoints "
            f"with torch.load(weights_only=True); if you made the file yourself and trust it, load it in your "
            f"own Python session and save only its tensors and numbers again with torch.save")


def safe_load(path: str | Path) -> Any:
    """The object in ``path``, unpickled weights-only (plus :data:`SAFE_GLOBALS`), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if re.search(r"GLOBAL \S+", str(exc)):
            raise HarnessError(refused_message(path, exc)) from None
        inner = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n|$)", str(exc))
        why = inner.group(1) if inner else str(exc).splitlines()[0]
        raise HarnessError(f"{path}: cannot read checkpoint: the weights-only reader rejected it ({why}); nothing "
                           f"in it was run. Is it a file torch.save wrote?") from None
    except Exception as exc:  # a truncated zip, not a torch file at all, ...
        raise HarnessError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None


def _namespaces(obj: Any, where: str) -> Iterator[str]:
    """Paths (``['args']``, ``['state_dict']['x']``) of every argparse.Namespace inside ``obj``."""
    if isinstance(obj, argparse.Namespace):
        yield where
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _namespaces(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _namespaces(v, f"{where}[{i}]")


def refuse_namespaces(path: Path, obj: Any, allowed_keys: tuple[str, ...], format_label: str) -> None:
    """A Namespace is admitted only under the top-level keys of a format that stores one."""
    bad = []
    for where in _namespaces(obj, ""):
        top = re.match(r"\['([^']*)'\]$", where)
        if not (top and top.group(1) in allowed_keys):
            bad.append(where or "(the whole file)")
    if bad:
        raise HarnessError(f"{path}: refused: an argparse.Namespace at {', '.join(bad)}; a {format_label} holds "
                           f"only tensors, dicts and numbers there")
