"""Restricted, memory-safe unpickling for untrusted feature files.

Feature pickles of the reference implementations (``IEMOCAP_features.pkl``, ``meld.pkl``, the ECF
``.npy`` object arrays, MMSA pickles, ...) come from download links, not from code the user wrote. A plain
``pickle.load`` would execute whatever the file asks for; a merely *name*-restricted one can still be made
to crash the interpreter or exhaust memory by a few hundred bytes. :func:`load_pickle` therefore checks
what every opcode builds, not only which globals it names:

* **What is admitted.** Plain containers (list, tuple, dict, set, frozenset, ``OrderedDict``,
  ``defaultdict``), numbers, strings, bytes, ``slice``/``range``, and numpy arrays, scalars and dtypes
  built the way numpy pickles them (``_reconstruct`` + ``__setstate__``, ``_frombuffer``, ``scalar``,
  ``dtype`` + ``__setstate__``). ``_codecs.encode`` is admitted with the text codecs Python 2 pickles use
  (latin-1 and UTF-8) only. Everything else — any other global, INST/OBJ/EXT, persistent ids,
  out-of-band buffers, BUILD on anything but a freshly made array or dtype — is refused.
* **No object pointers from bytes.** A dtype may hold Python objects only as numpy's plain ``object``
  dtype, and an array of it only gets its items from a list of already-unpickled objects. Every dtype,
  also after ``__setstate__``, must equal one rebuilt independently from its description (same flags,
  size, alignment), so a state that clears the "holds objects" flags is refused; a dtype is built once
  and never changed after an array or another dtype uses it.
* **Sizes are checked against the file.** A length field never makes the reader ask for more bytes than
  the file still holds; an array's shape times its item size must equal the length of its buffer;
  ``_reconstruct`` only makes numpy's empty placeholder.
* **Bounded expansion.** Let *S* be the size of the pickle in bytes and *budget* =
  :data:`EXPANSION_FACTOR` × *S* + :data:`BASE_ALLOWANCE`. Objects that callables create (``list(x)``,
  ``bytes(x)``, ``range(n)``, arrays, ...) may add up to at most *budget* elements, and so may the keys
  hashed while loading. The loaded object, expanded as a tree — a container counts 1 plus its items,
  every time it is referenced; a string/bytes its length; an array its number of elements; a range its
  length — may also hold at most *budget* elements. So repeated references ("billion laughs") cannot
  make a small file look like a huge one to the code that walks it.
* **Bounded nesting and memo.** Containers nest at most :data:`MAX_DEPTH` deep (checked when a tuple is
  made, so a deeply nested dict key is refused before it is hashed, and over the loaded object); memo
  indices must be smaller than the file size.

The unpickler is the pure-Python one of :mod:`pickle` with its opcode table copied and overridden, and it
reads from the open file (never a bytes copy of it). Every failure is a
:class:`~merc_hf.data.errors.DataFormatError` naming the file.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import codecs
import collections
import io
import math
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from .errors import DataFormatError

EXPANSION_FACTOR = 4
"""Elements the loaded object may hold per byte of the pickle (see the module docstring)."""
BASE_ALLOWANCE = 1 << 16
"""Elements every pickle may hold regardless of its size, so tiny legitimate files are never refused."""
MAX_DEPTH = 64
"""Deepest container nesting admitted (the reference pickles nest at most 5 deep)."""
MAX_NDIM = 64
"""Most array dimensions admitted (numpy's own limit)."""

_TEXT_CODECS = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1", "utf-8", "utf8"}

# numpy moved its private modules from ``numpy.core`` to ``numpy._core`` in 2.0; pickles carry
# whichever name their writer used, so both are accepted and resolved against the installed numpy.
_np_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
_np_scalar = np.float64(0).__reduce__()[0]
_np_frombuffer = np.zeros(1).__reduce_ex__(5)[0]


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something outside what this module admits."""


class _Truncated(pickle.UnpicklingError):
    """The pickle ends before what it declares."""


class _BoundedReader:
    """Reads from a binary file that never ask for more than the file still holds.

    A hostile length field may claim exabytes, and ``BufferedReader.read(n)`` allocates ``n`` bytes before
    reading; checking against the bytes left first keeps every read within the file size.
    """

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh = fh
        self.remaining = size

    def read(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise _Truncated(
                f"a length field asks for {n} bytes but only {self.remaining} are left in the file"
            )
        data = self._fh.read(n)
        if len(data) != n:
            raise _Truncated(f"the file ended after {len(data)} of {n} bytes")
        self.remaining -= n
        return data

    def readinto(self, buffer: bytearray) -> None:
        """Fill ``buffer`` completely (its length was checked against :attr:`remaining` by the caller)."""
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            got = self._fh.readinto(view[filled:])
            if not got:
                raise _Truncated(f"the file ended after {filled} of {len(buffer)} bytes")
            filled += got
        self.remaining -= filled

    def readline(self) -> bytes:
        data = self._fh.readline()
        self.remaining -= len(data)
        if not data.endswith(b"\n"):
            raise _Truncated("the file ended inside a text argument")
        return data


class _Checked:
    """An admitted global. Calling it through REDUCE/NEWOBJ runs ``build``, which checks the arguments and
    the result; ``target`` is the real object (used as a ``defaultdict`` factory or an array type)."""

    __slots__ = ("build", "name", "target")

    def __init__(self, name: str, target: Any, build: Callable[..., Any]) -> None:
        self.name, self.target, self.build = name, target, build

    def __repr__(self) -> str:
        return f"<admitted global {self.name}>"


def _shape(value: Any, what: str) -> tuple[int, ...]:
    """A validated array shape: a tuple/list of at most :data:`MAX_NDIM` non-negative integers."""
    if not isinstance(value, (tuple, list)):
        raise _Refused(f"{what}: shape must be a tuple, got {type(value).__name__}")
    if len(value) > MAX_NDIM:
        raise _Refused(f"{what}: {len(value)} dimensions (at most {MAX_NDIM})")
    dims = []
    for dim in value:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)) or dim < 0:
            raise _Refused(f"{what}: shape entries must be non-negative integers")
        dims.append(int(dim))
    return tuple(dims)


def _reference_dtype(dtype: np.dtype) -> np.dtype:
    """The same dtype rebuilt from its public description, with the flags numpy computes for it."""
    if dtype.fields is not None:
        names = list(dtype.names)
        spec: dict[str, Any] = {
            "names": names,
            "formats": [_reference_dtype(dtype.fields[n][0]) for n in names],
            "offsets": [dtype.fields[n][1] for n in names],
            "itemsize": dtype.itemsize,
        }
        if any(len(dtype.fields[n]) == 3 for n in names):
            spec["titles"] = [dtype.fields[n][2] if len(dtype.fields[n]) == 3 else None for n in names]
        return np.dtype(spec, align=dtype.isalignedstruct)
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.dtype((_reference_dtype(base), shape))
    return np.dtype(dtype.str)


_OBJECT = np.dtype("O")
_MAX_DTYPE_DEPTH = 8


def _dtype_depth(dtype: np.dtype) -> int:
    """Nesting of structured/sub-array dtypes (every part was checked when built, so this recursion is short)."""
    parts = [dtype.fields[n][0] for n in dtype.names] if dtype.fields is not None else []
    parts += [dtype.subdtype[0]] if dtype.subdtype is not None else []
    return 1 + max(map(_dtype_depth, parts), default=0)


def _check_dtype(dtype: Any, what: str) -> np.dtype:
    """Refuse a dtype that differs from its independent rebuild, or holds objects other than as plain ``O``."""
    if not isinstance(dtype, np.dtype):
        raise _Refused(f"{what}: expected a numpy dtype, got {type(dtype).__name__}")
    try:
        reference = _reference_dtype(dtype)
    except (TypeError, ValueError, KeyError) as exc:
        raise _Refused(
            f"{what}: dtype {dtype.str!r} cannot be rebuilt from its description ({exc})"
        ) from None
    if (
        dtype != reference
        or dtype.flags != reference.flags
        or dtype.itemsize != reference.itemsize
        or dtype.alignment != reference.alignment
        or dtype.hasobject != reference.hasobject
    ):
        raise _Refused(f"{what}: dtype {dtype.str!r} has flags or layout that numpy would not give it")
    if dtype.hasobject and not (dtype == _OBJECT and dtype.fields is None and dtype.subdtype is None):
        raise _Refused(f"{what}: dtypes holding Python objects are admitted only as plain 'O'")
    return dtype


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with every opcode that builds or changes an object checked.

    ``file`` must be positioned at the start of the pickle and hold ``size`` bytes of it.
    """

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, size: int, *, encoding: str = "latin1") -> None:
        self._source = _BoundedReader(file, size)
        super().__init__(self._source, encoding=encoding)
        self._size = size
        self.budget = EXPANSION_FACTOR * size + BASE_ALLOWANCE
        self._spent = 0
        # tuples and frozensets: id -> (expanded weight, depth), exact because they are immutable. No
        # reference is kept (that would pin array buffers in state tuples): every non-empty tuple or
        # frozenset on the stack is made by this class and registered when made, so an entry left by a
        # freed one is overwritten before its id can be seen again.
        self._immutable: dict[int, tuple[int, int]] = {}
        # arrays from _reconstruct and dtypes not yet used: the only objects BUILD may set state on
        self._fresh: dict[int, Any] = {}
        self._frozen: dict[int, np.dtype] = {}  # checked dtypes that no BUILD may change any more

    # ------------------------------------------------------------------ accounting

    def _charge(self, elements: int, what: str) -> None:
        self._spent += elements
        if self._spent > self.budget:
            raise _Refused(
                f"{what}: the pickle creates more than {self.budget} elements, {EXPANSION_FACTOR} per byte "
                f"of its {self._size} bytes plus {BASE_ALLOWANCE}"
            )

    def _weight_depth(self, obj: Any) -> tuple[int, int]:
        """Expanded weight and depth of a tuple/frozenset item (mutable items cannot be hashed anyway)."""
        if isinstance(obj, (tuple, frozenset)):
            if not obj:
                return 1, 1
            known = self._immutable.get(id(obj))
            return known if known is not None else _measure(obj, self.budget, "a tuple")
        if isinstance(obj, (str, bytes)):
            return max(1, len(obj)), 1
        return 1, 1

    def _immutable_made(self, obj: tuple | frozenset, items: Any) -> Any:
        weight, depth = 1, 1
        for item in items:
            w, d = self._weight_depth(item)
            weight += w
            depth = max(depth, d + 1)
        if depth > MAX_DEPTH:
            raise _Refused(f"containers nested more than {MAX_DEPTH} deep")
        if weight > self.budget:
            raise _Refused(f"a tuple that expands to more than {self.budget} elements")
        if obj:
            self._immutable[id(obj)] = (weight, depth)
        return obj

    def _hashable(self, key: Any) -> Any:
        """Charge the cost of hashing ``key`` (tuples are re-hashed at every use) before it happens."""
        if isinstance(key, (tuple, frozenset)):
            self._charge(self._weight_depth(key)[0], "hashing keys")
        return key

    def _use(self, obj: Any) -> None:
        """``obj`` is now referenced by numpy: no BUILD may change it any more."""
        self._fresh.pop(id(obj), None)

    def _used_dtype(self, dtype: Any, what: str) -> np.dtype:
        """Check a dtype handed to numpy and freeze it; a frozen dtype cannot change, so it is checked once."""
        if self._frozen.get(id(dtype)) is not dtype:
            _check_dtype(dtype, what)
            self._use(dtype)
            self._frozen[id(dtype)] = dtype
        return dtype

    # ------------------------------------------------------------------ globals

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names (``__builtin__.xrange``), as pickle itself maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "collections" and name in _COLLECTIONS:
            return _COLLECTIONS[name]
        if module == "_codecs" and name == "encode":
            return _ENCODE
        prefix, _, submodule = module.rpartition(".")
        if prefix in ("numpy.core", "numpy._core") and (submodule, name) in _NUMPY_PRIVATE:
            return _NUMPY_PRIVATE[(submodule, name)]
        if module == "numpy" and name in _NUMPY_PUBLIC:
            return _NUMPY_PUBLIC[name]
        raise _Refused(
            f"refusing to load global '{module}.{name}': only plain containers, numbers, strings and "
            "numpy arrays are allowed in feature files"
        )

    def _call(self, func: Any, args: Any, kwargs: Any = None) -> Any:
        if not isinstance(func, _Checked):
            raise _Refused(f"calling a {type(func).__name__} is not admitted")
        if not isinstance(args, tuple) or (kwargs is not None and not isinstance(kwargs, dict)):
            raise _Refused(f"{func.name}: malformed arguments")
        if kwargs:
            raise _Refused(f"{func.name}: keyword arguments are not admitted")
        return func.build(self, *args)

    def _reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def _newobj(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def _newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, kwargs)

    # ------------------------------------------------------------------ containers

    def _tuple(self) -> None:
        items = self.pop_mark()
        self.append(self._immutable_made(tuple(items), items))

    def _tuple_n(self, n: int) -> None:
        items = self.stack[-n:]
        self.stack[-n:] = [self._immutable_made(tuple(items), items)]

    def _frozenset(self) -> None:
        items = [self._hashable(item) for item in self.pop_mark()]
        self.append(self._immutable_made(frozenset(items), items))

    def _dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise pickle.UnpicklingError("DICT with an odd number of items")
        self.append({self._hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def _mapping(self) -> dict:
        target = self.stack[-1]
        if type(target) not in (dict, collections.OrderedDict, collections.defaultdict):
            raise _Refused(f"setting items on a {type(target).__name__} is not admitted")
        return target

    def _setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._mapping()[self._hashable(key)] = value

    def _setitems(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        target = self._mapping()
        for i in range(0, len(items), 2):
            target[self._hashable(items[i])] = items[i + 1]

    def _list_target(self) -> list:
        if type(self.stack[-1]) is not list:
            raise _Refused(f"appending to a {type(self.stack[-1]).__name__} is not admitted")
        return self.stack[-1]

    def _append(self) -> None:
        value = self.stack.pop()
        self._list_target().append(value)

    def _appends(self) -> None:
        items = self.pop_mark()
        self._list_target().extend(items)

    def _additems(self) -> None:
        items = self.pop_mark()
        if type(self.stack[-1]) is not set:
            raise _Refused(f"adding items to a {type(self.stack[-1]).__name__} is not admitted")
        self.stack[-1].update(self._hashable(item) for item in items)

    # ------------------------------------------------------------------ memo and raw data

    def _put_at(self, index: int) -> None:
        if not 0 <= index < self._size:
            raise _Refused(f"memo index {index} is not below the file size ({self._size} bytes)")
        self.memo[index] = self.stack[-1]

    def _put(self) -> None:
        self._put_at(int(self.readline()[:-1]))

    def _binput(self) -> None:
        self._put_at(self.read(1)[0])

    def _long_binput(self) -> None:
        self._put_at(struct.unpack("<I", self.read(4))[0])

    def _bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        frame = self._unframer.current_frame
        if frame is not None:
            position = frame.tell()
            end = frame.seek(0, io.SEEK_END)
            frame.seek(position)
            if position < end:  # a small bytearray inside a frame
                self.append(bytearray(self.read(n)))
                return
            self._unframer.current_frame = None
        if n > self._source.remaining:
            raise _Truncated(f"BYTEARRAY8 declares {n} bytes but only {self._source.remaining} are left")
        buffer = bytearray(n)
        self._source.readinto(buffer)  # read in place: no second copy of a large array buffer
        self.append(buffer)

    # ------------------------------------------------------------------ BUILD

    def _build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if state is None or (isinstance(state, dict) and not state):
            return  # what pickle writes for an object without extra state (e.g. an OrderedDict)
        if self._fresh.pop(id(inst), None) is not inst:
            raise _Refused(
                f"setting the state of a {type(inst).__name__} is admitted only on a numpy array or dtype "
                "just created for it"
            )
        if isinstance(inst, np.dtype):
            self._build_dtype(inst, state)
        elif isinstance(inst, np.ndarray):
            self._build_array(inst, state)
        else:  # pragma: no cover - only arrays and dtypes are ever registered as fresh
            raise _Refused(f"setting the state of a {type(inst).__name__} is not admitted")

    def _build_dtype(self, dtype: np.dtype, state: Any) -> None:
        what = "numpy dtype state"
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise _Refused(f"{what}: expected numpy's version 3/4 state tuple")
        _, byteorder, subarray, names, fields, elsize, alignment, flags = state[:8]
        if byteorder not in ("<", ">", "|", "=") or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (elsize, alignment, flags)
        ):
            raise _Refused(f"{what}: malformed byte order, size, alignment or flags")
        if (subarray is not None or names is not None or fields is not None) and dtype.kind != "V":
            raise _Refused(f"{what}: fields and sub-arrays are admitted on void dtypes only")
        if subarray is not None:
            if not (isinstance(subarray, tuple) and len(subarray) == 2):
                raise _Refused(f"{what}: malformed sub-array")
            self._used_dtype(subarray[0], what)
            _shape(subarray[1], what)
        if names is not None or fields is not None:
            if not (isinstance(names, tuple) and isinstance(fields, dict) and set(names) == set(fields)):
                raise _Refused(f"{what}: names and fields disagree")
            for name, field in fields.items():
                valid = (
                    isinstance(name, str)
                    and isinstance(field, tuple)
                    and len(field) in (2, 3)
                    and isinstance(field[1], int)
                )
                if not valid:
                    raise _Refused(f"{what}: malformed field {type(name).__name__}")
                self._used_dtype(field[0], what)
        parts = [fields[n][0] for n in fields] if isinstance(fields, dict) else []
        parts += [subarray[0]] if subarray is not None else []
        if (
            any(part is dtype for part in parts)
            or max(map(_dtype_depth, parts), default=0) >= _MAX_DTYPE_DEPTH
        ):
            raise _Refused(f"{what}: a dtype may nest at most {_MAX_DTYPE_DEPTH} levels and never itself")
        # try the state on a copy first, so a refused state never touches the object the pickle holds
        probe = np.dtype(dtype, copy=True)
        probe.__setstate__(state)
        _check_dtype(probe, what)
        dtype.__setstate__(state)
        _check_dtype(dtype, what)

    def _build_array(self, array: np.ndarray, state: Any) -> None:
        what = "numpy array state"
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise _Refused(f"{what}: expected (version, shape, dtype, is_fortran, data)")
        shape, dtype, fortran, data = state[-4:]
        shape = _shape(shape, what)
        self._used_dtype(dtype, what)
        if not isinstance(fortran, (bool, int)):
            raise _Refused(f"{what}: malformed order flag")
        n = math.prod(shape)
        if dtype.hasobject:
            if type(data) is not list or len(data) != n:
                raise _Refused(f"{what}: an object array needs a list of its {n} items")
        else:
            if not isinstance(data, (bytes, bytearray, str)):
                raise _Refused(f"{what}: array data must be bytes, got {type(data).__name__}")
            if len(data) != n * dtype.itemsize:
                raise _Refused(
                    f"{what}: shape {shape} of {dtype.str} needs {n * dtype.itemsize} bytes, the pickle holds "
                    f"{len(data)}"
                )
        self._charge(n, what)
        array.__setstate__((shape, dtype, bool(fortran), data))

    # ------------------------------------------------------------------ refused opcodes

    def _refuse(self) -> None:
        raise _Refused(
            "the pickle uses INST/OBJ/EXT, a persistent id or an out-of-band buffer, which feature files never need"
        )


def _opcode(op: bytes) -> int:
    return op[0]


_D = RestrictedUnpickler.dispatch
_D[_opcode(pickle.REDUCE)] = RestrictedUnpickler._reduce
_D[_opcode(pickle.NEWOBJ)] = RestrictedUnpickler._newobj
_D[_opcode(pickle.NEWOBJ_EX)] = RestrictedUnpickler._newobj_ex
_D[_opcode(pickle.TUPLE)] = RestrictedUnpickler._tuple
_D[_opcode(pickle.TUPLE1)] = lambda self: self._tuple_n(1)
_D[_opcode(pickle.TUPLE2)] = lambda self: self._tuple_n(2)
_D[_opcode(pickle.TUPLE3)] = lambda self: self._tuple_n(3)
_D[_opcode(pickle.FROZENSET)] = RestrictedUnpickler._frozenset
_D[_opcode(pickle.DICT)] = RestrictedUnpickler._dict
_D[_opcode(pickle.SETITEM)] = RestrictedUnpickler._setitem
_D[_opcode(pickle.SETITEMS)] = RestrictedUnpickler._setitems
_D[_opcode(pickle.APPEND)] = RestrictedUnpickler._append
_D[_opcode(pickle.APPENDS)] = RestrictedUnpickler._appends
_D[_opcode(pickle.ADDITEMS)] = RestrictedUnpickler._additems
_D[_opcode(pickle.PUT)] = RestrictedUnpickler._put
_D[_opcode(pickle.BINPUT)] = RestrictedUnpickler._binput
_D[_opcode(pickle.LONG_BINPUT)] = RestrictedUnpickler._long_binput
_D[_opcode(pickle.BYTEARRAY8)] = RestrictedUnpickler._bytearray8
_D[_opcode(pickle.BUILD)] = RestrictedUnpickler._build
for _op in (
    pickle.INST, pickle.OBJ, pickle.EXT1, pickle.EXT2, pickle.EXT4, pickle.PERSID, pickle.BINPERSID,
    pickle.NEXT_BUFFER, pickle.READONLY_BUFFER,
):  # fmt: skip
    _D[_opcode(_op)] = RestrictedUnpickler._refuse
del _D, _op


# ---------------------------------------------------------------------- what admitted globals build


def _one_container(u: RestrictedUnpickler, name: str, args: tuple) -> tuple:
    """The single optional argument of list()/tuple()/set()/... : an already-built container."""
    if len(args) > 1:
        raise _Refused(f"{name}: at most one argument")
    if not args:
        return ()
    (arg,) = args
    if not isinstance(arg, (list, tuple, set, frozenset, dict, str, bytes, bytearray)):
        raise _Refused(f"{name}() of a {type(arg).__name__} is not admitted")
    u._charge(len(arg), f"{name}()")
    return arg


def _make_list(u: RestrictedUnpickler, *args: Any) -> list:
    return list(_one_container(u, "list", args))


def _make_tuple(u: RestrictedUnpickler, *args: Any) -> tuple:
    items = list(_one_container(u, "tuple", args))
    return u._immutable_made(tuple(items), items)


def _make_set(u: RestrictedUnpickler, *args: Any) -> set:
    return {u._hashable(item) for item in _one_container(u, "set", args)}


def _make_frozenset(u: RestrictedUnpickler, *args: Any) -> frozenset:
    items = [u._hashable(item) for item in _one_container(u, "frozenset", args)]
    return u._immutable_made(frozenset(items), items)


def _make_dict(u: RestrictedUnpickler, *args: Any) -> dict:
    arg = _one_container(u, "dict", args)
    if args and not isinstance(arg, dict):
        raise _Refused("dict() admits only another dict")
    return dict(arg)


def _make_ordered_dict(u: RestrictedUnpickler, *args: Any) -> collections.OrderedDict:
    if args:
        raise _Refused("OrderedDict() is admitted without arguments only (items follow as SETITEMS)")
    return collections.OrderedDict()


def _make_defaultdict(u: RestrictedUnpickler, *args: Any) -> collections.defaultdict:
    if len(args) > 1 or (args and args[0] is not None and not isinstance(args[0], _Checked)):
        raise _Refused("defaultdict() admits only an admitted type as its factory")
    factory = args[0].target if args and args[0] is not None else None
    if factory is not None and factory not in _FACTORIES:
        raise _Refused(f"defaultdict({args[0].name}) is not admitted")
    return collections.defaultdict(factory)


def _make_str(u: RestrictedUnpickler, *args: Any) -> str:
    if args and (len(args) > 1 or not isinstance(args[0], str)):
        raise _Refused("str() admits only another str")
    return str(*args)


def _make_bytes(u: RestrictedUnpickler, *args: Any) -> bytes:
    if args and (len(args) > 1 or not isinstance(args[0], (bytes, bytearray))):
        raise _Refused("bytes() admits only bytes (not a size to fill with zeros)")
    return bytes(_one_container(u, "bytes", args))


def _make_bytearray(u: RestrictedUnpickler, *args: Any) -> bytearray:
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin-1", "latin1"):
        u._charge(len(args[0]), "bytearray()")
        return bytearray(args[0], "latin-1")
    if args and (len(args) > 1 or not isinstance(args[0], (bytes, bytearray))):
        raise _Refused("bytearray() admits bytes or a latin-1 str (not a size to fill with zeros)")
    return bytearray(_one_container(u, "bytearray", args))


def _numbers(name: str, args: tuple, count: int, allowed: tuple[type, ...]) -> tuple:
    if len(args) > count or not all(isinstance(a, allowed) for a in args):
        raise _Refused(f"{name}() admits at most {count} numbers")
    return args


def _make_int(u: RestrictedUnpickler, *args: Any) -> int:
    return int(*_numbers("int", args, 1, (int, float, str)))


def _make_float(u: RestrictedUnpickler, *args: Any) -> float:
    return float(*_numbers("float", args, 1, (int, float, str)))


def _make_complex(u: RestrictedUnpickler, *args: Any) -> complex:
    return complex(*_numbers("complex", args, 2, (int, float)))


def _make_bool(u: RestrictedUnpickler, *args: Any) -> bool:
    return bool(*_numbers("bool", args, 1, (int, float)))


def _make_slice(u: RestrictedUnpickler, *args: Any) -> slice:
    if not 1 <= len(args) <= 3 or not all(a is None or type(a) is int for a in args):
        raise _Refused("slice() admits 1 to 3 integers or None")
    return slice(*args)


def _make_range(u: RestrictedUnpickler, *args: Any) -> range:
    if not 1 <= len(args) <= 3 or not all(type(a) is int for a in args):
        raise _Refused("range() admits 1 to 3 integers")
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = u.budget + 1
    u._charge(length, "range()")
    return result


def _encode(u: RestrictedUnpickler, *args: Any) -> bytes:
    if not 1 <= len(args) <= 3 or not isinstance(args[0], str):
        raise _Refused("_codecs.encode admits a str, a codec name and 'strict'")
    encoding = args[1] if len(args) > 1 else "utf-8"
    if not isinstance(encoding, str) or encoding.lower() not in _TEXT_CODECS:
        raise _Refused(f"_codecs.encode: only the text codecs {sorted(_TEXT_CODECS)} are admitted")
    if len(args) == 3 and args[2] != "strict":
        raise _Refused("_codecs.encode: only errors='strict' is admitted")
    u._charge(len(args[0]), "_codecs.encode")
    return codecs.encode(args[0], encoding)


def _make_dtype(u: RestrictedUnpickler, *args: Any) -> np.dtype:
    if not 1 <= len(args) <= 3 or not isinstance(args[0], str):
        raise _Refused("numpy.dtype() admits a type string such as 'f4' (structure comes from its state)")
    align = bool(args[1]) if len(args) > 1 else False
    # copy=True always: with copy=False numpy returns its shared built-in dtype, and a BUILD on that
    # would change float32 for the whole process
    dtype = _check_dtype(np.dtype(args[0], align=align, copy=True), "numpy.dtype()")
    u._fresh[id(dtype)] = dtype
    return dtype


def _refuse_ndarray(u: RestrictedUnpickler, *args: Any) -> Any:
    raise _Refused("numpy.ndarray may only be named as the type passed to _reconstruct")


def _reconstruct(u: RestrictedUnpickler, *args: Any) -> np.ndarray:
    if len(args) != 3:
        raise _Refused("_reconstruct admits (ndarray, (0,), 'b')")
    subtype, shape, code = args
    if isinstance(subtype, _Checked):
        subtype = subtype.target
    if subtype is not np.ndarray or _shape(shape, "_reconstruct") != (0,) or code not in (b"b", "b"):
        raise _Refused("_reconstruct admits only numpy's empty placeholder (ndarray, (0,), 'b')")
    array = _np_reconstruct(np.ndarray, (0,), b"b")
    u._fresh[id(array)] = array
    return array


def _scalar(u: RestrictedUnpickler, *args: Any) -> Any:
    if len(args) != 2:
        raise _Refused("numpy scalar() admits (dtype, bytes)")
    dtype, data = args
    u._used_dtype(dtype, "numpy scalar")
    if dtype.hasobject:
        raise _Refused("numpy scalar: object scalars are not admitted")
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise _Refused(f"numpy scalar: {dtype.str} needs exactly {dtype.itemsize} bytes")
    return _np_scalar(dtype, data)


def _frombuffer(u: RestrictedUnpickler, *args: Any) -> np.ndarray:
    if len(args) != 4:
        raise _Refused("_frombuffer admits (buffer, dtype, shape, order)")
    buffer, dtype, shape, order = args
    what = "numpy _frombuffer"
    u._used_dtype(dtype, what)
    shape = _shape(shape, what)
    if dtype.hasobject:
        raise _Refused(f"{what}: object arrays cannot be made from bytes")
    if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
        raise _Refused(f"{what}: expected bytes and order 'C' or 'F'")
    n = math.prod(shape)
    if len(buffer) != n * dtype.itemsize:
        raise _Refused(
            f"{what}: shape {shape} of {dtype.str} needs {n * dtype.itemsize} bytes, got {len(buffer)}"
        )
    u._charge(n, what)
    return _np_frombuffer(buffer, dtype, shape, order)


_BUILTINS = {
    name: _Checked(f"builtins.{name}", getattr(builtins, name), build)
    for name, build in {
        "list": _make_list, "tuple": _make_tuple, "set": _make_set, "frozenset": _make_frozenset,
        "dict": _make_dict, "str": _make_str, "bytes": _make_bytes, "bytearray": _make_bytearray,
        "int": _make_int, "float": _make_float, "complex": _make_complex, "bool": _make_bool,
        "slice": _make_slice, "range": _make_range,
    }.items()
}  # fmt: skip
_FACTORIES = {list, dict, set, tuple, int, float, str, bytes, collections.OrderedDict}
_COLLECTIONS = {
    "OrderedDict": _Checked("collections.OrderedDict", collections.OrderedDict, _make_ordered_dict),
    "defaultdict": _Checked("collections.defaultdict", collections.defaultdict, _make_defaultdict),
}
_ENCODE = _Checked("_codecs.encode", codecs.encode, _encode)
_NUMPY_PUBLIC = {
    "dtype": _Checked("numpy.dtype", np.dtype, _make_dtype),
    "ndarray": _Checked("numpy.ndarray", np.ndarray, _refuse_ndarray),
}
_NUMPY_PRIVATE = {
    ("multiarray", "_reconstruct"): _Checked("numpy multiarray._reconstruct", _np_reconstruct, _reconstruct),
    ("multiarray", "scalar"): _Checked("numpy multiarray.scalar", _np_scalar, _scalar),
    ("numeric", "_frombuffer"): _Checked("numpy numeric._frombuffer", _np_frombuffer, _frombuffer),
}


# ---------------------------------------------------------------------- the loaded object


def _measure(root: Any, budget: int, what: str) -> tuple[int, int]:
    """Expanded weight and depth of ``root`` (see the module docstring), refusing either over its bound.

    Iterative, and it stops as soon as a bound is passed, so it costs at most ``budget`` steps.
    """
    weight, deepest = 0, 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Refused(f"{what}: containers nested more than {MAX_DEPTH} deep")
        deepest = max(deepest, depth)
        if isinstance(obj, (list, tuple, set, frozenset)):
            weight += 1
            stack.extend((item, depth + 1) for item in obj)
        elif isinstance(obj, dict):
            weight += 1
            for key, value in obj.items():
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(obj, (str, bytes, bytearray)):
            weight += max(1, len(obj))
        elif isinstance(obj, np.ndarray):
            weight += max(1, obj.size)
            if obj.dtype.hasobject:
                stack.extend((item, depth + 1) for item in obj.ravel())
        elif isinstance(obj, range):
            weight += max(1, len(obj))
        else:
            weight += 1
        if weight > budget:
            raise _Refused(
                f"{what} expands to more than {budget} elements ({EXPANSION_FACTOR} per byte of the file plus "
                f"{BASE_ALLOWANCE}): repeated references to the same containers?"
            )
    return weight, deepest


def _load_from(fh: BinaryIO, size: int, *, encoding: str, source: str | os.PathLike) -> Any:
    """Unpickle the ``size`` bytes at the current position of ``fh``; every failure names ``source``."""
    try:
        unpickler = RestrictedUnpickler(fh, size, encoding=encoding)
        result = unpickler.load()
        _measure(result, unpickler.budget, "the loaded object")
        return result
    except _Refused as exc:
        raise DataFormatError(f"unsafe pickle: {exc}", file=source) from None
    except _Truncated as exc:
        raise DataFormatError(f"truncated or corrupt pickle: {exc}", file=source) from None
    except MemoryError:
        raise DataFormatError("not enough memory to unpickle this file", file=source) from None
    except RecursionError:
        raise DataFormatError("truncated or corrupt pickle (nested too deeply)", file=source) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        struct.error,
    ) as exc:
        raise DataFormatError(
            f"truncated or corrupt pickle ({type(exc).__name__}: {exc})", file=source
        ) from None


def loads(data: bytes, *, encoding: str = "latin1", source: str | os.PathLike = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; errors name ``source``."""
    return _load_from(io.BytesIO(data), len(data), encoding=encoding, source=source)


def _open(path: Path) -> BinaryIO:
    if not path.is_file():
        raise DataFormatError("file not found" if not path.exists() else "not a regular file", file=path)
    try:
        return path.open("rb")
    except OSError as exc:
        raise DataFormatError(f"cannot open the file ({exc.strerror or exc})", file=path) from None


def load_pickle(path: str | os.PathLike, *, encoding: str = "latin1") -> Any:
    """Load an untrusted pickle file safely, reading it from disk as it goes (no in-memory copy).

    ``encoding='latin1'`` is what the reference loaders use: it decodes Python 2 ``str`` objects
    (and numpy buffers) written by the original feature extraction scripts.
    """
    path = Path(path)
    with _open(path) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
        except OSError as exc:  # pragma: no cover - fstat on an open regular file does not fail
            raise DataFormatError(f"cannot read the file ({exc})", file=path) from None
        return _load_from(fh, size, encoding=encoding, source=path)


def _npy_header(fh: BinaryIO, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:  # (3, 0): UTF-8 header, no public reader
        shape, fortran, dtype = np.lib.format._read_array_header(fh, version)
    if len(shape) > MAX_NDIM:
        raise DataFormatError(
            f"the .npy header declares {len(shape)} dimensions (at most {MAX_NDIM})", file=path
        )
    return tuple(int(d) for d in shape), bool(fortran), dtype


def load_npy(path: str | os.PathLike, *, mmap_mode: str | None = None) -> np.ndarray:
    """Load a ``.npy`` file; object arrays go through the restricted unpickler, never ``allow_pickle``.

    A numeric array's header must declare exactly as many bytes as the file holds after it (a header
    claiming 3·10⁹ elements over a few bytes is refused before anything is allocated). ``mmap_mode``
    memory-maps numeric arrays (as :func:`numpy.load`); object arrays are always read into memory.
    """
    path = Path(path)
    with _open(path) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            shape, _fortran, dtype = _npy_header(fh, path)
            data_bytes = size - fh.tell()
        except DataFormatError:
            raise
        except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
            raise DataFormatError(f"not a valid .npy file ({type(exc).__name__}: {exc})", file=path) from None
        if dtype.hasobject:
            if dtype != _OBJECT or dtype.fields is not None:
                raise DataFormatError(f"unsupported .npy dtype {dtype.descr!r} holding objects", file=path)
            array = _load_from(fh, data_bytes, encoding="latin1", source=path)
            if not isinstance(array, np.ndarray) or array.shape != shape:
                raise DataFormatError(
                    f"the pickled object array does not match the header's shape {shape}", file=path
                )
            return array
    expected = math.prod(shape) * dtype.itemsize
    if expected != data_bytes:
        raise DataFormatError(
            f"the .npy header declares shape {shape} of {dtype.str} ({expected} bytes of data) but the file "
            f"holds {data_bytes} bytes after it (truncated or corrupt)",
            file=path,
        )
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except MemoryError:
        raise DataFormatError("not enough memory to load this array", file=path) from None
    except (ValueError, EOFError, OSError) as exc:
        raise DataFormatError(f"not a valid .npy file ({type(exc).__name__}: {exc})", file=path) from None
