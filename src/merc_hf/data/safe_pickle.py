"""Restricted unpickling for untrusted feature files.

Feature pickles of the reference implementations (``IEMOCAP_features.pkl``, ``meld.pkl``, the ECF
``.npy`` object arrays, MMSA pickles, ...) come from download links, not from code the user wrote. A plain
``pickle.load`` would execute whatever the file asks for. :func:`load_pickle` only lets through plain
containers, numbers, strings and numpy arrays/scalars; anything else is refused with a
:class:`~merc_hf.data.errors.DataFormatError` that names the file and the global it tried to load.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataFormatError

_SAFE_BUILTINS = {
    "list", "dict", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
    "int", "float", "complex", "bool", "slice", "range",
}  # fmt: skip

# numpy moved its private modules from ``numpy.core`` to ``numpy._core`` in 2.0; pickles carry
# whichever name their writer used, so both are accepted and resolved against the installed numpy.
_NUMPY_GLOBALS = {
    ("multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
    ("multiarray", "scalar"): np.float64(0).__reduce__()[0],
    ("numeric", "_frombuffer"): np.zeros(1).__reduce_ex__(5)[0],
}


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only an allow-list of globals."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if module == "collections" and name in ("OrderedDict", "defaultdict"):
            return getattr(collections, name)
        if module == "_codecs" and name == "encode":
            # Python 2 pickles of numpy arrays store the raw buffer as latin-1 text.
            return codecs.encode
        prefix, _, submodule = module.rpartition(".")
        if prefix in ("numpy.core", "numpy._core") and (submodule, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(submodule, name)]
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise _Refused(
            f"refusing to load global '{module}.{name}': only plain containers, numbers, strings and "
            "numpy arrays are allowed in feature files"
        )


def loads(data: bytes, *, encoding: str = "latin1", source: str | os.PathLike = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; errors name ``source``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except _Refused as exc:
        raise DataFormatError(f"unsafe pickle: {exc}", file=source) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
    ) as exc:
        raise DataFormatError(
            f"truncated or corrupt pickle ({type(exc).__name__}: {exc})", file=source
        ) from None


def load_pickle(path: str | os.PathLike, *, encoding: str = "latin1") -> Any:
    """Load an untrusted pickle file safely.

    ``encoding='latin1'`` is what the reference loaders use: it decodes Python 2 ``str`` objects
    (and numpy buffers) written by the original feature extraction scripts.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", file=path)
    return loads(path.read_bytes(), encoding=encoding, source=path)


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Load a ``.npy`` file; object arrays go through the restricted unpickler, never ``allow_pickle``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", file=path)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise DataFormatError(f"not a valid .npy file ({exc})", file=path) from None
    # Object array: the .npy header is followed by a pickle of the array.
    with path.open("rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        _shape, _fortran, dtype = read_header(fh)
        if not dtype.hasobject:
            raise DataFormatError("unexpected .npy layout", file=path)
        return loads(fh.read(), source=path)
