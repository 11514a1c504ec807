"""Load pickles from other codebases without letting them run code.

Skeleton codebases ship labels as pickles (the AGCN ``{train,val}_label.pkl`` is a tuple
``(names, labels)``; the USDRL authors' PKU-MMD files are dicts of arrays; pyskl / MMAction2
annotation files are a dict of splits and a list of per-sample dicts holding float16/float32
keypoint arrays and numpy integer scalars). ``pickle.load`` on a
downloaded file can run anything, so :func:`safe_load_pickle` uses :class:`RestrictedUnpickler`,
whose ``find_class`` resolves only:

- builtins ``list tuple dict set frozenset str bytes bytearray int float complex bool`` (``None``,
  ``True``, ``False`` need no lookup), ``collections.OrderedDict``, and ``_codecs.encode``
  (protocols 0–2 pickle ``bytes`` through it; it only re-encodes a string);
- the numpy names that pickled arrays and scalars use (``numpy.dtype``, ``numpy.ndarray``,
  ``numpy[._]core.multiarray._reconstruct`` / ``.scalar``, ``numpy[._]core.numeric._frombuffer``;
  numpy 1 and numpy 2 spellings). numpy 2.4 emits exactly these: protocols 2–4 use
  ``_reconstruct``, ``ndarray``, ``dtype`` and ``scalar`` (protocol 2 adds ``_codecs.encode`` for
  the raw bytes); protocol 5 uses ``_frombuffer``, ``dtype`` and ``scalar``
  (``tests/test_pickles.py`` checks this list against what the installed numpy writes).

Numpy needs care: ``dtype.__setstate__`` copies the pickle's flag byte into the dtype unchecked, so
a crafted pickle could mark plain bytes as object pointers. The numpy names therefore resolve to
**inert placeholders** that only record their arguments and state. After unpickling, the
placeholders are turned into real arrays and scalars by parsing a dtype *string* and calling
``np.frombuffer`` on the raw bytes — numpy never sees the pickle's state. Supported dtypes: bool,
integers, floats, complex, fixed-width ``S``/``U`` strings, and structured dtypes made of those.
Object arrays, datetimes and sub-array dtypes are refused.

Everything else (``os.system``, ``builtins.eval``, ``builtins.getattr``, any other class) is refused
with :class:`~harness.errors.DataError` ("refused to load MODULE.NAME") *before* anything is called;
persistent ids and out-of-band buffers are refused too.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import os
import pickle
import re
from pathlib import Path
from typing import IO, Any

import numpy as np

from ...errors import DataError

_BUILTINS = {name: getattr(__import__("builtins"), name) for name in (
    "list", "tuple", "dict", "set", "frozenset", "str", "bytes", "bytearray", "int", "float",
    "complex", "bool")}


class _Refused(Exception):
    """A pickle asked for something outside the safe subset; becomes a DataError."""


# --- numpy placeholders: record what the pickle says, build nothing yet --------------------------

class _Placeholder:
    state: Any = None

    def __setstate__(self, state: Any) -> None:  # BUILD opcode
        self.state = state


class _DTypeRef(_Placeholder):
    def __init__(self, spec: Any = None, align: Any = False, copy: Any = False):
        self.spec = spec


class _NDArrayType:
    """Stands in for ``numpy.ndarray``; only ``_reconstruct`` accepts it, and it cannot be called."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise _Refused("numpy.ndarray called directly (only _reconstruct may rebuild arrays)")


class _ArrayRef(_Placeholder):
    def __init__(self, subtype: Any, shape: Any = None, dtype: Any = None):
        if subtype is not _NDArrayType:
            raise _Refused(f"an array of type {subtype!r}")


class _ScalarRef(_Placeholder):
    def __init__(self, dtype: Any, data: Any = None):
        self.dtype, self.data = dtype, data


class _BufferArrayRef(_Placeholder):
    def __init__(self, buf: Any, dtype: Any, shape: Any, order: Any = "C"):
        self.buf, self.dtype, self.shape, self.order = buf, dtype, shape, order


_NUMPY = {
    "ndarray": _NDArrayType,
    "dtype": _DTypeRef,
    "multiarray._reconstruct": _ArrayRef,
    "multiarray.scalar": _ScalarRef,
    "numeric._frombuffer": _BufferArrayRef,
}


def _numpy_name(module: str, name: str) -> Any | None:
    if module == "numpy":
        return _NUMPY.get(name)
    for prefix in ("numpy.core.", "numpy._core."):
        if module.startswith(prefix):
            return _NUMPY.get(f"{module[len(prefix):]}.{name}")
    return None


# --- placeholders → numpy objects -------------------------------------------------------------

_SIMPLE_SPEC = re.compile(r"[biufcSUV]\d+")


def _build_dtype(ref: Any) -> np.dtype:
    if not isinstance(ref, _DTypeRef):
        raise _Refused(f"a dtype given as {type(ref).__name__}")
    spec = ref.spec
    if not isinstance(spec, str) or not _SIMPLE_SPEC.fullmatch(spec):
        raise _Refused(f"numpy dtype {spec!r} (only numbers, bool, S/U strings and records of them)")
    state = ref.state if ref.state is not None else (3, "|", None, None, None, -1, -1, 0)
    if not isinstance(state, tuple) or len(state) < 7:
        raise _Refused(f"numpy dtype {spec!r} with an unreadable state")
    _, endian, subarray, names, fields, elsize, _ = state[:7]
    if subarray is not None:
        raise _Refused(f"numpy sub-array dtype {spec!r}")
    order = endian if endian in ("<", ">") else "="
    kind = spec[0]
    if kind in "biufc":
        dtype = np.dtype(spec).newbyteorder(order)
    elif kind == "S":
        dtype = np.dtype(f"S{int(elsize) if int(elsize) >= 0 else int(spec[1:])}")
    elif kind == "U":
        nbytes = int(elsize) if int(elsize) >= 0 else int(spec[1:])
        dtype = np.dtype(f"U{nbytes // 4}").newbyteorder(order)
    elif names is None:
        dtype = np.dtype(f"V{int(elsize) if int(elsize) >= 0 else int(spec[1:])}")
    else:  # a record: every field dtype is itself a placeholder, built (and checked) here
        if not isinstance(names, tuple) or not isinstance(fields, dict):
            raise _Refused("a numpy record dtype with malformed fields")
        formats, offsets = [], []
        for n in names:
            entry = fields.get(n)
            if not isinstance(n, str) or not isinstance(entry, tuple) or len(entry) < 2:
                raise _Refused("a numpy record dtype with malformed fields")
            formats.append(_build_dtype(entry[0]))
            offsets.append(int(entry[1]))
        dtype = np.dtype({"names": list(names), "formats": formats, "offsets": offsets,
                          "itemsize": int(elsize)})
    if dtype.hasobject:  # cannot happen with the specs above; kept as a last line of defence
        raise _Refused(f"numpy dtype {dtype} holds Python objects")
    return dtype


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _Refused(f"an array shape {shape!r}")
    return shape


def _from_bytes(raw: Any, dtype: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    if isinstance(raw, list):
        raise _Refused("a numpy object array")
    if not isinstance(raw, (bytes, bytearray)):
        raise _Refused(f"array data given as {type(raw).__name__} (out-of-band buffers are refused)")
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) != count * dtype.itemsize:
        raise _Refused(f"array data of {len(raw)} bytes for shape {shape} of {dtype}")
    flat = np.frombuffer(bytes(raw), dtype=dtype, count=count)
    return flat.reshape(shape, order="F" if order == "F" else "C").copy(order="K")


def _build(ref: _Placeholder) -> Any:
    if isinstance(ref, _DTypeRef):
        return _build_dtype(ref)
    if isinstance(ref, _ArrayRef):
        st = ref.state
        if not isinstance(st, tuple) or len(st) != 5:
            raise _Refused("an array without readable state")
        _, shape, dtype, fortran, raw = st
        return _from_bytes(raw, _build_dtype(dtype), _shape(shape), "F" if fortran else "C")
    if isinstance(ref, _ScalarRef):
        dtype = _build_dtype(ref.dtype)
        if ref.data is None:
            return np.zeros((), dtype)[()]
        return _from_bytes(ref.data, dtype, (), "C")[()]
    if isinstance(ref, _BufferArrayRef):
        return _from_bytes(ref.buf, _build_dtype(ref.dtype), _shape(ref.shape), str(ref.order))
    raise _Refused(type(ref).__name__)  # pragma: no cover - every placeholder is handled above


def _materialise(obj: Any, done: dict[int, Any], seen: set[int]) -> Any:
    """Replace placeholders by numpy objects; lists and dicts in place (keeps sharing and cycles)."""
    if isinstance(obj, _Placeholder):
        if id(obj) not in done:
            done[id(obj)] = _build(obj)
        return done[id(obj)]
    if not isinstance(obj, (list, tuple, dict, set, frozenset)) or id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            obj[i] = _materialise(item, done, seen)
        return obj
    if isinstance(obj, dict):
        items = [(_materialise(k, done, seen), _materialise(v, done, seen)) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
        return obj
    new = [_materialise(item, done, seen) for item in obj]
    if all(a is b for a, b in zip(new, obj)):
        return obj
    return type(obj)(new)


# --- the unpickler ------------------------------------------------------------------------------

class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed names (see the module docstring).

    ``load()`` returns placeholders for numpy objects; use :func:`safe_loads_pickle`, which
    converts them.
    """

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (``__builtin__.set`` in protocols 0-2), mapped as the stock find_class
        # does; no Python 3 module has these names, so mapping unconditionally is safe
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "_codecs" and name == "encode":
            return codecs.encode
        found = _numpy_name(module, name)
        if found is not None:
            return found
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


def _load(fh: IO[bytes], source: str | Path | None) -> Any:
    try:
        obj = RestrictedUnpickler(fh).load()
        return _materialise(obj, {}, set())
    except _Refused as exc:
        raise DataError(source, f"refused to load {exc}: only plain containers, numbers, strings and "
                                "numpy arrays of plain dtypes are allowed (this pickle could run code "
                                "or is not plain data)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise DataError(source, f"not a readable plain-data pickle: {type(exc).__name__}: {exc}") from None


def safe_loads_pickle(data: bytes, *, source: str | Path | None = None) -> Any:
    """Unpickle bytes, refusing anything that could run code; `source` names the origin in errors."""
    return _load(io.BytesIO(data), source)


def safe_load_pickle(path: str | Path) -> Any:
    """Load the pickle at `path` with the restricted unpickler, streamed from the file (a pyskl
    NTU-120 file is gigabytes; reading it into one bytes object first would double the memory)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise DataError(path, "empty file: not a pickle")
            return _load(fh, path)
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
