"""The restricted unpickler: plain data loads, anything that could run code is refused unrun."""

from __future__ import annotations

import collections
import os
import pickle
import re

import numpy as np
import pytest

from harness.data.readers.pickles import safe_load_pickle, safe_loads_pickle
from harness.errors import DataError

pytestmark = pytest.mark.unit


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


class _NdarrayDirect:
    def __reduce__(self):
        return (np.ndarray, ((2,), "f8"))


class _FlaggedDtype:
    """A float64 dtype whose pickled state claims the object/refcount flags (63)."""

    def __reduce__(self):
        return (np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 63))


class _ArrayWithFlaggedDtype:
    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (2,), _FlaggedDtype(), False, np.array([1.5, -2.0]).tobytes()))


def test_agcn_label_tuple_loads_in_every_protocol(tmp_path):
    names = ["S001C001P001R001A001.skeleton", "S001C001P001R001A002.skeleton"]
    obj = (names, [0, 1])
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"label{proto}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        assert safe_load_pickle(path) == obj


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsShell(marker)))
    with pytest.raises(DataError, match=r"refused to load posix\.system") as err:
        safe_load_pickle(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    # hidden inside a plain container, still refused
    with pytest.raises(DataError, match="refused to load"):
        safe_loads_pickle(pickle.dumps((["a"], [_RunsShell(marker)])))
    assert not marker.exists()


@pytest.mark.parametrize("obj, name", [(_CallsEval(), "builtins.eval"),
                                       (_NdarrayDirect(), "numpy.ndarray called directly")])
def test_other_callables_are_refused(obj, name):
    with pytest.raises(DataError, match=f"refused to load {name}"):
        safe_loads_pickle(pickle.dumps(obj))


def test_numpy_arrays_and_scalars_round_trip():
    objs = [np.arange(6, dtype=np.float32).reshape(2, 3), np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            np.arange(4, dtype=">i2"), np.array(["ab", "c"]), np.array([b"x", b"yz"]), np.array([True, False]),
            np.zeros(2, dtype=[("a", "<i4"), ("b", ">f8")]), np.int64(7), np.float16(1.5), np.complex64(2j),
            {"data": [np.ones((2, 2))], "num_frames": np.array([3, 4]), "label": [np.int64(1)]},
            collections.OrderedDict(a=1), {1, 2}, frozenset([3]), b"raw", bytearray(b"ba"), 1 + 2j]
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        for obj in objs:
            got = safe_loads_pickle(pickle.dumps(obj, protocol=proto))
            assert type(got) is type(obj) and repr(got) == repr(obj), (proto, obj)
            if isinstance(obj, np.ndarray):
                assert got.dtype == obj.dtype and got.flags.writeable


def test_shared_references_survive():
    a = np.arange(3)
    got = safe_loads_pickle(pickle.dumps([a, a]))
    assert got[0] is got[1]
    loop: list = []
    loop.append(loop)
    got = safe_loads_pickle(pickle.dumps(loop))
    assert got[0] is got


@pytest.mark.parametrize("obj", [np.array([1, "a"], dtype=object), np.datetime64("2020-01-01"),
                                 np.zeros(2, dtype=[("a", "f4", (2,))])])
def test_numpy_objects_outside_the_safe_dtypes_are_refused(obj):
    with pytest.raises(DataError, match="refused to load numpy"):
        safe_loads_pickle(pickle.dumps(obj))


def test_forged_dtype_flags_are_ignored():
    # numpy's own dtype.__setstate__ would copy flag byte 63 (object/refcount) onto a float dtype;
    # the placeholders rebuild the dtype from its name, so the result is a plain float array
    got = safe_loads_pickle(pickle.dumps(_ArrayWithFlaggedDtype()))
    assert got.dtype == np.float64 and not got.dtype.hasobject
    np.testing.assert_array_equal(got, [1.5, -2.0])


def test_broken_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.pkl: empty file"):
        safe_load_pickle(empty)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pickle.dumps((["a"] * 10, list(range(10))))[:-5])
    with pytest.raises(DataError, match="cut.pkl: not a readable plain-data pickle"):
        safe_load_pickle(cut)
    with pytest.raises(DataError, match="cannot read"):
        safe_load_pickle(tmp_path / "absent.pkl")


def test_persistent_ids_are_refused():
    import io

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if obj == "secret" else None

    buf = io.BytesIO()
    P(buf).dump(["secret"])
    with pytest.raises(DataError, match="refused to load persistent id"):
        safe_loads_pickle(buf.getvalue())


# --- numpy: exactly the names numpy writes, and nothing reachable through them ------------------

ADMITTED = {"_codecs.encode", "numpy.dtype", "numpy.ndarray", "numpy._core.multiarray._reconstruct",
            "numpy._core.multiarray.scalar", "numpy._core.numeric._frombuffer"}


def _globals_written(obj, protocol):
    """The module.name pairs a pickle of `obj` looks up (our own objects, so the stock loader is safe)."""
    import io

    names = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            names.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recorder(io.BytesIO(pickle.dumps(obj, protocol=protocol))).load()
    return names


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_writes_only_admitted_names_and_they_load(protocol):
    objs = [np.zeros((2, 3, 25, 3), np.float16), np.ones(3, np.float32), np.arange(3, dtype=np.int64),
            np.array([True, False]), np.float32(0.5), np.int64(7), np.bool_(True),
            {"split": {"xsub_train": ["a"]}, "annotations": [{"frame_dir": "a", "label": np.int64(2),
                                                              "keypoint": np.ones((1, 2, 25, 3), np.float16),
                                                              "total_frames": 2, "img_shape": (1080, 1920)}]}]
    for obj in objs:
        assert _globals_written(obj, protocol) <= ADMITTED, obj
        got = safe_loads_pickle(pickle.dumps(obj, protocol=protocol))
        assert repr(got) == repr(obj)


def test_neighbouring_numpy_names_are_refused():
    import io

    from harness.data.readers.pickles import RestrictedUnpickler, _Refused

    u = RestrictedUnpickler(io.BytesIO(b""))
    for module, name in [("numpy", "load"), ("numpy", "frombuffer"), ("numpy.core.multiarray", "frombuffer"),
                         ("numpy.lib.format", "read_array"), ("numpy.testing._private.utils", "runstring"),
                         ("numpy", "fromfile"), ("numpy.core.numeric", "eval"), ("numpy.core.numpy.core.multiarray",
                                                                                 "_reconstruct")]:
        with pytest.raises(_Refused, match=re.escape(f"{module}.{name}")):
            u.find_class(module, name)


class _RunString:
    """numpy.testing's runstring exec()s its argument: a code-running name inside the numpy package."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from numpy.testing._private.utils import runstring
        return (runstring, (f"open({str(self.marker)!r}, 'w').close()", {}))


class _ArrayFedByShell:
    """An allowed _reconstruct whose state (the array's bytes) is the result of os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (1,), np.dtype("f8"), False, _RunsShell(self.marker)))


class _FrombufferPointers:
    """An allowed _frombuffer given a dtype with forged object flags: real numpy would read the 8
    bytes as a PyObject pointer (0x4141414141414141), i.e. crash or worse."""

    def __reduce__(self):
        return (np._core.numeric._frombuffer, (b"A" * 8, _FlaggedDtype(), (1,), "C"))


class _ObjectScalar:
    def __reduce__(self):
        return (np._core.multiarray.scalar, (np.dtype("O"), ["anything"]))


class _StrSubtype:
    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (str, (0,), b"b"))


class _DictDtype:
    def __reduce__(self):
        return (np.dtype, ({"names": ["a"], "formats": ["O"]},))


def test_payloads_through_numpy_names_are_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    live = pickle.dumps(_RunString(marker))
    pickle.loads(live)  # the stock loader runs it: the payload is real
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError, match=r"refused to load numpy\.testing\._private\.utils\.runstring"):
        safe_loads_pickle(live)
    with pytest.raises(DataError, match=r"refused to load posix\.system"):
        safe_loads_pickle(pickle.dumps(_ArrayFedByShell(marker)))
    assert not marker.exists()
    got = safe_loads_pickle(pickle.dumps(_FrombufferPointers()))  # never given to the stock loader
    assert got.dtype == np.float64 and not got.dtype.hasobject and got.tobytes() == b"A" * 8
    for payload, message in [(_ObjectScalar(), "numpy dtype 'O8'"), (_StrSubtype(), "an array of type"),
                             (_DictDtype(), "numpy dtype {")]:
        with pytest.raises(DataError, match=f"refused to load {re.escape(message)}"):
            safe_loads_pickle(pickle.dumps(payload))
