"""Detector state as data: a versioned msgpack tree that names classes and never runs code.

A checkpoint is ``FLS`` + one version byte + a zlib stream of a msgpack tree of
numbers, strings, bytes, lists and dicts, with msgpack extension types for what
msgpack lacks: tuples, sets, frozensets, deques (with their ``maxlen``), counters, NumPy
arrays (dtype, shape and raw bytes; numbers, bools and fixed-width text only) and
scalars, integers beyond 64 bits, and fireline's own objects.

An object is written as its class's name and its attributes. Only classes
defined under ``detectors.`` (every detector, drift test, monitor and their
helpers, whatever is added there later) or registered with :func:`allow` are
read back, and reading one never calls the class's constructor, ``__reduce__``
or anything named by the data: the object is made with ``object.__new__`` and
its attributes are set (through the class's own ``__setstate__`` where fireline
defines one). Parameter models (:class:`~detectors.params.DetectorParams`) are
rebuilt by value, validated and shared; named tuples from their fields. An
object referenced twice (one column in two lists of a monitor) is written once
and referenced after, so it is one object again when read back, as in memory.

The zlib stream is compressed when the tree is large (a MetricEnsemble's tens of
kilobytes) and *stored* (a valid zlib stream of uncompressed blocks, which any
zlib reads) when it is small: setting up a deflate stream costs ~100 µs of
allocation per call, more than packing the tree, to save ~15% of a 1.6 KB
LatencySpike. Checkpointing thousands of small detectors every few seconds is
a worker's largest fixed cost at low event rates (docs/performance.md).

Anything else (an unknown class, another format or version, a truncated or
oversized record) raises :class:`~fireline.errors.StateFormatError`: the caller
drops the record and the detector re-warms. A detector whose class gained an
attribute since it was saved is refused the same way (see :func:`_check_complete`),
so a new release never runs on half a state.
"""

from __future__ import annotations

import dataclasses
import importlib
import struct
import zlib
from collections import Counter, deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgpack
import numpy as np
from pydantic import BaseModel

from detectors.base import Detector
from detectors.params import DetectorParams
from fireline.errors import StateFormatError

MAGIC = b"FLS"
VERSION = 2  # bump when the layout below changes: older records are then dropped
HEADER = MAGIC + bytes([VERSION])
MAX_RAW_BYTES = 32 * 1024 * 1024  # decompressed; a checkpoint is kept under ~1 MB compressed
STORE_BELOW = 4096  # packed bytes under which the zlib stream is stored, not compressed
ALLOWED_MODULES = ("detectors.",)  # classes defined under these packages are read back

# msgpack extension codes (part of the format: never reuse one for something else)
(
    _TUPLE,
    _SET,
    _FROZENSET,
    _DEQUE,
    _ARRAY,
    _SCALAR,
    _OBJECT,
    _NAMEDTUPLE,
    _PARAMS,
    _BIGINT,
    _REF,
    _COUNTER,
) = range(1, 13)
_ARRAY_KINDS = frozenset("biufcUS?")  # no object, void (structured) or datetime arrays
_REFUSED_BASES = (BaseException, type, dict, list, set, frozenset, deque)

# Objects seen so far in the record being written (id → number) or read (number → object).
# Both number an object when it is complete, children first: msgpack reads an
# object's attributes before the object, so the two orders agree.
_written: ContextVar[dict[int, int]] = ContextVar("state_codec_written")
_read: ContextVar[list[object]] = ContextVar("state_codec_read")

_extra: dict[str, type] = {}  # classes allowed outside ALLOWED_MODULES, by name
_resolved: dict[str, type] = {}


def allow(cls: type) -> type:
    """Let instances of ``cls`` (defined outside ``detectors.``) be saved and read back."""
    _extra[_name(cls)] = cls
    return cls


def encode(state: object) -> bytes:
    """``state`` as a checkpoint record; StateFormatError names what cannot be saved."""
    token = _written.set({})
    try:
        packed = _pack(state)
    except StateFormatError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise StateFormatError(f"cannot save state: {exc}") from exc
    finally:
        _written.reset(token)
    return HEADER + _zlib_stream(packed)


def _zlib_stream(packed: bytes) -> bytes:
    """``packed`` as a zlib stream: compressed if large, else one stored block (RFC 1950/1951)."""
    if len(packed) >= STORE_BELOW:
        return zlib.compress(packed, 1)
    # header (deflate, 32 KiB window, no dictionary), a final stored block, Adler-32
    block = struct.pack("<BHH", 1, len(packed), len(packed) ^ 0xFFFF)
    return b"\x78\x01" + block + packed + struct.pack(">I", zlib.adler32(packed))


def decode(raw: bytes) -> object:
    """The state a checkpoint record holds; StateFormatError says why it cannot be read."""
    if not raw.startswith(MAGIC):
        raise StateFormatError("not fireline's state format (an older release's pickle?)")
    version = raw[len(MAGIC)] if len(raw) > len(MAGIC) else None
    if version != VERSION:
        raise StateFormatError(f"state format version {version}; this fireline reads {VERSION}")
    token = _read.set([])
    try:
        inflater = zlib.decompressobj()
        packed = inflater.decompress(raw[len(HEADER) :], MAX_RAW_BYTES)
        if inflater.unconsumed_tail:
            raise StateFormatError(f"state larger than {MAX_RAW_BYTES} bytes uncompressed")
        if not inflater.eof:
            raise StateFormatError("truncated record")
        return _unpack(packed)
    except StateFormatError:
        raise
    except Exception as exc:  # any failure on untrusted bytes means "unreadable"
        raise StateFormatError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _read.reset(token)


# -- writing -------------------------------------------------------------------------


def _pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(
        value, default=_extension, strict_types=True, use_bin_type=True, datetime=False
    )
    return packed


# Built-in containers msgpack lacks: (extension code, what is written of one).
_CONTAINERS: dict[type, tuple[int, Callable[[Any], Any]]] = {
    tuple: (_TUPLE, list),
    set: (_SET, list),
    frozenset: (_FROZENSET, list),
    deque: (_DEQUE, lambda value: [value.maxlen, list(value)]),
    Counter: (_COUNTER, dict),
}


def _extension(value: Any) -> msgpack.ExtType:
    """What msgpack cannot write itself (called for every non-plain value)."""
    kind = type(value)
    if kind is int:
        return msgpack.ExtType(_BIGINT, str(value).encode())
    container = _CONTAINERS.get(kind)
    if container is not None:
        code, parts = container
        return msgpack.ExtType(code, _pack(parts(value)))
    if kind is np.ndarray:
        return msgpack.ExtType(_ARRAY, _pack(_array_parts(value)))
    if isinstance(value, np.generic):
        return msgpack.ExtType(_SCALAR, _pack(_array_parts(np.asarray(value))[::2]))
    writer = _writer(kind)
    if writer.params:
        return _params_extension(value)
    if writer.named_tuple:
        return msgpack.ExtType(_NAMEDTUPLE, _pack([writer.name, list(value)]))
    written = _written.get()
    if (number := written.get(id(value))) is not None:
        return msgpack.ExtType(_REF, _pack(number))
    packed = msgpack.ExtType(_OBJECT, _pack([writer.name, _attributes(value, writer)]))
    written[id(value)] = len(written)
    return packed


@dataclasses.dataclass(frozen=True, slots=True)
class _Writer:
    """What writing an object of one class needs, worked out once per class."""

    name: str
    params: bool
    named_tuple: bool
    getstate: Callable[[Any], Any] | None
    slots: tuple[str, ...]


# Per class, checked once: a checkpoint of thousands of detectors writes the same few
# classes over and over, and the checks and the MRO walk cost a tenth of the encoding.
_writers: dict[type, _Writer] = {}


def _writer(cls: type) -> _Writer:
    writer = _writers.get(cls)
    if writer is None:
        _check_allowed(cls)  # raises for a class that may not be saved: never cached
        writer = _writers[cls] = _Writer(
            _name(cls),
            issubclass(cls, DetectorParams),
            issubclass(cls, tuple) and hasattr(cls, "_fields"),
            _own_hook(cls, "__getstate__"),
            tuple(_slots(cls)),
        )
    return writer


# Parameter models are frozen and shared by every detector of a kind: packed once
# each (a third of a LatencySpike's encoding), keyed by identity. The model is kept
# with its record so that its id is never reused while the entry lives.
_packed_params: dict[int, tuple[DetectorParams, msgpack.ExtType]] = {}
_PACKED_PARAMS_MAX = 256


def _params_extension(params: DetectorParams) -> msgpack.ExtType:
    cached = _packed_params.get(id(params))
    if cached is not None and cached[0] is params:
        return cached[1]
    kind = type(params)
    packed = msgpack.ExtType(_PARAMS, _pack([_name(kind), [list(item) for item in params]]))
    if len(_packed_params) >= _PACKED_PARAMS_MAX:
        _packed_params.clear()
    _packed_params[id(params)] = (params, packed)
    return packed


def _array_parts(array: np.ndarray[Any, Any]) -> list[Any]:
    if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
        raise StateFormatError(f"cannot save an array of dtype {array.dtype}")
    return [array.dtype.str, list(array.shape), np.ascontiguousarray(array).tobytes()]


def _attributes(value: object, writer: _Writer) -> dict[str, Any]:
    """An object's attributes: its own ``__getstate__`` where fireline defines one."""
    if writer.getstate is not None:
        state = writer.getstate(value)
        if not isinstance(state, dict):
            raise StateFormatError(f"{writer.name}.__getstate__ must return a dict")
        return state
    found: dict[str, Any] = dict(getattr(value, "__dict__", {}))
    for slot in writer.slots:
        if hasattr(value, slot):
            found[slot] = getattr(value, slot)
    return found


# -- reading -------------------------------------------------------------------------


def _unpack(packed: bytes) -> Any:
    return msgpack.unpackb(
        packed, ext_hook=_restore, raw=False, strict_map_key=False, use_list=True, timestamp=0
    )


def _restore(code: int, data: bytes) -> Any:
    readers: dict[int, Callable[[Any], Any]] = {
        _TUPLE: tuple,
        _SET: set,
        _FROZENSET: frozenset,
        _DEQUE: lambda parts: deque(parts[1], maxlen=parts[0]),
        _COUNTER: Counter,
        _ARRAY: _array,
        _SCALAR: lambda parts: _array([parts[0], [], parts[1]])[()],
        _NAMEDTUPLE: _named_tuple,
        _PARAMS: _params,
        _OBJECT: _object,
    }
    if code == _BIGINT:
        return int(data.decode())
    if code == _REF:
        number = _unpack(data)
        seen = _read.get()
        if not isinstance(number, int) or not 0 <= number < len(seen):
            raise StateFormatError(f"reference to object {number!r}, which comes later or never")
        return seen[number]
    reader = readers.get(code)
    if reader is None:
        raise StateFormatError(f"unknown extension type {code}")
    return reader(_unpack(data))


def _array(parts: list[Any]) -> np.ndarray[Any, Any]:
    descr, shape, data = parts
    dtype = np.dtype(str(descr))
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None:
        raise StateFormatError(f"arrays of dtype {dtype} are not read back")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _named_tuple(parts: list[Any]) -> tuple[Any, ...]:
    cls = _resolve(parts[0])
    fields = getattr(cls, "_fields", None)
    if not issubclass(cls, tuple) or fields is None or len(fields) != len(parts[1]):
        raise StateFormatError(f"{parts[0]} does not take {len(parts[1])} fields")
    restored: tuple[Any, ...] = tuple.__new__(cls, parts[1])
    return restored


def _params(parts: list[Any]) -> DetectorParams:
    cls = _resolve(parts[0])
    if not issubclass(cls, DetectorParams):
        raise StateFormatError(f"{parts[0]} is not a parameter model")
    return cls.shared((str(name), value) for name, value in parts[1])


def _object(parts: list[Any]) -> object:
    name, state = parts
    cls = _resolve(name)
    if not isinstance(state, dict) or not all(_attribute_name(key) for key in state):
        raise StateFormatError(f"{name}: attributes must be named by identifiers")
    restored: object = object.__new__(cls)
    setstate = _own_hook(cls, "__setstate__")
    if setstate is not None:
        setstate(restored, state)
    else:
        for key, value in state.items():
            object.__setattr__(restored, key, value)
    _check_complete(restored, name)
    _read.get().append(restored)
    return restored


def _check_complete(restored: object, name: str) -> None:
    """Refuse an object saved by a release whose class had fewer attributes."""
    cls = type(restored)
    expected: set[str] = set(_slots(cls))
    if dataclasses.is_dataclass(cls):
        expected |= {field.name for field in dataclasses.fields(cls)}
    if isinstance(restored, Detector):
        fresh = type(restored)(restored.params)  # a fresh one of the same parameters
        expected |= set(getattr(fresh, "__dict__", ()))
    missing = sorted(attr for attr in expected if not hasattr(restored, attr))
    if missing:
        raise StateFormatError(f"{name} saved without {', '.join(missing)} (an older release?)")


def _resolve(name: object) -> type:
    """The allowed class called ``name`` (``module:qualname``), importing only our modules."""
    if not isinstance(name, str):
        raise StateFormatError(f"a class name must be a string, got {type(name).__name__}")
    found = _resolved.get(name) or _extra.get(name)
    if found is not None:
        return found
    module, _, qualname = name.partition(":")
    parts = [*module.split("."), *qualname.split(".")]
    if not module.startswith(ALLOWED_MODULES) or not all(p.isidentifier() for p in parts):
        raise StateFormatError(f"class {name} is not one fireline reads back")
    try:
        target: object = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        raise StateFormatError(f"class {name} is unknown to this release") from None
    if not isinstance(target, type) or _name(target) != name:
        raise StateFormatError(f"{name} is not a class defined there")
    _check_allowed(target)
    _resolved[name] = target
    return target


# -- shared --------------------------------------------------------------------------


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _check_allowed(cls: type) -> None:
    name = _name(cls)
    if name in _extra:
        return
    if not cls.__module__.startswith(ALLOWED_MODULES) or "<" in cls.__qualname__:
        raise StateFormatError(f"cannot save {name}: not a fireline state class (see allow())")
    if issubclass(cls, _REFUSED_BASES) or (
        issubclass(cls, BaseModel) and not issubclass(cls, DetectorParams)
    ):
        raise StateFormatError(f"cannot save {name}: its kind is not saved as attributes")


def _own_hook(cls: type, hook: str) -> Callable[..., Any] | None:
    """``cls.<hook>`` if fireline wrote it (not Python's or dataclasses' default)."""
    function = getattr(cls, hook, None)
    if function is None or not getattr(function, "__module__", "").startswith(ALLOWED_MODULES):
        return None
    return function


def _slots(cls: type) -> list[str]:
    found: list[str] = []
    for klass in cls.__mro__:
        declared = klass.__dict__.get("__slots__", ())
        found += [declared] if isinstance(declared, str) else list(declared)
    return [slot for slot in found if slot not in ("__dict__", "__weakref__")]


def _attribute_name(key: object) -> bool:
    return isinstance(key, str) and key.isidentifier() and not key.startswith("__")
