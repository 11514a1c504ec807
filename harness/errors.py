"""Error types that carry enough context for a user to fix their input."""

from __future__ import annotations

import difflib
from pathlib import Path


class HarnessError(Exception):
    """A user-facing error: the CLI prints its message without a traceback."""


class DataError(HarnessError):
    """Bad input data. Names the file (and line, when known) and what is wrong."""

    def __init__(self, path: str | Path | None, message: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + message)


class UnknownNameError(HarnessError, KeyError):
    """An unknown plugin, preset, variant or config key, with close-match suggestions."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(self.known) if self.known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {listing}.")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]
