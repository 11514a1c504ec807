"""Size and range checks that readers make before they trust a file's own claims.

A header count (an ``.npy`` shape, an NTU frame or body count) decides how much memory a reader
allocates. A corrupt or hostile header would make it ask for terabytes, so every such claim is
compared with what the file can hold first. Values parsed as float64 must also fit the prepared
format's float32: a cast would silently turn 1e300 into Inf.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Callable

import numpy as np

from ...errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def read_npy_header(fh: IO[bytes], where: str | Path) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran_order) of the ``.npy`` stream at ``fh``, which is left at the data."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(where, f"not a readable .npy array: {exc}") from None
    return tuple(int(s) for s in shape), dtype, bool(fortran)


def claimed_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of data a header claims (Python ints: no overflow for absurd shapes)."""
    n = dtype.itemsize
    for s in shape:
        n *= int(s)
    return n


def check_data_size(where: str | Path, shape: tuple[int, ...], dtype: np.dtype, available: int,
                    what: str = "the file") -> None:
    """Refuse a header whose array needs more bytes than ``available`` (before anything is allocated)."""
    need = claimed_bytes(shape, dtype)
    if need > available:
        raise DataError(where, f"its header claims an array of shape {shape} of {dtype} ({human_bytes(need)}), "
                               f"but {what} holds only {human_bytes(available)} of data: truncated, or the "
                               "header is corrupt")


def check_npy_file(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Read an ``.npy`` file's header and check its claimed size against the file's size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            shape, dtype, _ = read_npy_header(fh, path)
            offset = fh.tell()
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    if dtype.hasobject:
        return shape, dtype  # pickled objects: refused by the caller (allow_pickle=False), not sized
    check_data_size(path, shape, dtype, size - offset)
    return shape, dtype


def check_float32(values: np.ndarray, path: str | Path, locate: Callable[[int], str] | None = None,
                  line_of: Callable[[int], int | None] | None = None) -> None:
    """Refuse values beyond float32's range (they would become Inf in the prepared format).

    ``locate(i)`` describes the i-th offending element (flat, C order) in words; ``line_of(i)``
    gives its file line, when the format has lines."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind != "f" or flat.dtype.itemsize <= 4:
        return
    big = np.abs(flat) > FLOAT32_MAX
    if not big.any():
        return
    i = int(np.argmax(big))
    where = f"{locate(i)}: " if locate else ""
    raise DataError(path, f"{where}value {flat[i]:g} is beyond float32's range (±{FLOAT32_MAX:.3g}) that prepared "
                          "data is stored in: a corrupt value or the wrong units", line=line_of(i) if line_of else None)
