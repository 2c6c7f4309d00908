"""Hostile pickles, built opcode by opcode, against the restricted unpickler and every pickle reader.

Each attack runs in a child process with a memory limit and a generous timeout, because what it attacks
is the interpreter itself: before the checks in :mod:`merc_hf.data.safe_pickle`, these files crashed it
with a segmentation fault (object pointers read from the file, C stack overflow on hashing), or made it
allocate gigabytes from a few bytes. The test asserts the child printed a ``DataFormatError`` naming the
file and exited normally — never a signal, never a hang. Opcodes are those documented in
:mod:`pickletools`.
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import merc_hf.data.safe_pickle as safe_pickle
from merc_hf.data.errors import DataFormatError
from merc_hf.data.safe_pickle import load_npy, load_pickle, loads

SRC = Path(safe_pickle.__file__).resolve().parents[2]
MEMORY_LIMIT = 2 << 30  # address space of the child: numpy alone needs a few hundred MiB
TIMEOUT = 120

# The child imports the readers without ``merc_hf/__init__`` (which imports torch: many seconds and GBs
# of address space), by registering the parent packages as plain namespace modules.
CHILD = r"""
import sys, types
src = sys.argv[1]
for name in ("merc_hf", "merc_hf.data", "merc_hf.data.readers"):
    module = types.ModuleType(name)
    module.__path__ = [src + "/" + name.replace(".", "/")]
    sys.modules[name] = module
from merc_hf.data.errors import DataFormatError
from merc_hf.data import safe_pickle
from merc_hf.data.readers import iemocap, meld, mmsa

def from_bytes(path):
    with open(path, "rb") as fh:
        return safe_pickle.loads(fh.read(), source=path)

LOADERS = {
    "pickle": safe_pickle.load_pickle,
    "loads": from_bytes,
    "npy": safe_pickle.load_npy,
    "iemocap": lambda path: iemocap.read_iemocap(features_file=path),
    "meld": lambda path: meld.read_meld(transcripts_file=path),
    "mmsa": lambda path: mmsa.read_mmsa(pickle_file=path),
}
args = sys.argv[2:]
for kind, path in zip(args[::2], args[1::2]):
    try:
        LOADERS[kind](path)
    except DataFormatError as exc:
        print("DataFormatError:", str(exc).replace("\n", " "), flush=True)
    else:
        print("LOADED", path, flush=True)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_child(*jobs: tuple[str, Path]) -> list[str]:
    """Load each ``(loader, path)`` in one child process; return its output lines, one per job."""
    args = [a for kind, path in jobs for a in (kind, str(path))]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(SRC), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
        env=env,
    )
    assert done.returncode == 0, f"child died with status {done.returncode}: {done.stderr[-2000:]}"
    lines = done.stdout.splitlines()
    assert len(lines) == len(jobs), done.stdout + done.stderr[-2000:]
    return lines


def assert_refused(lines: list[str], jobs: list[tuple[str, Path]], *fragments: str) -> None:
    for line, (kind, path) in zip(lines, jobs):
        assert line.startswith("DataFormatError:"), f"{kind} {path.name}: {line}"
        assert str(path) in line, line
        assert any(f in line for f in fragments), f"{kind} {path.name}: {line}"


# ---------------------------------------------------------------------------- opcode helpers

PROTO2, PROTO3, PROTO4, PROTO5 = b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"
MARK, TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"(", b"t", b"\x85", b"\x86", b"\x87"
REDUCE, BUILD, STOP, NONE, TRUE, FALSE, POP = b"R", b"b", b".", b"N", b"\x88", b"\x89", b"0"
EMPTY_LIST, EMPTY_DICT, EMPTY_TUPLE, APPEND, APPENDS, SETITEM = b"]", b"}", b")", b"a", b"e", b"s"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def raw(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def put(index: int) -> bytes:
    return b"q" + bytes([index])


def get(index: int) -> bytes:
    return b"h" + bytes([index])


def dtype_with_state(descr: str, state: bytes) -> bytes:
    """``numpy.dtype(descr, False, True)`` followed by BUILD with ``state``, left on the stack."""
    return glob("numpy", "dtype") + text(descr) + FALSE + TRUE + TUPLE3 + REDUCE + state + BUILD


def object_dtype_without_flags() -> bytes:
    """The object dtype with its "holds Python objects" flags cleared by BUILD (numpy writes flags 63)."""
    state = (
        MARK + integer(3) + text("|") + NONE + NONE + NONE + integer(-1) + integer(-1) + integer(0) + TUPLE
    )
    return dtype_with_state("O8", state)


def struct_dtype_hiding_an_object_field() -> bytes:
    """A 'V8' dtype given an object field by BUILD, with flags 0 instead of the 27 numpy computes."""
    field = glob("numpy", "dtype") + text("O8") + FALSE + TRUE + TUPLE3 + REDUCE
    fields = EMPTY_DICT + text("a") + field + integer(0) + TUPLE2 + SETITEM
    state = (
        MARK + integer(3) + text("|") + NONE + text("a") + TUPLE1 + fields
        + integer(8) + integer(1) + integer(0) + TUPLE
    )  # fmt: skip
    return dtype_with_state("V8", state)


POINTERS = b"\x41" * 8  # read as a PyObject* by an object array made from bytes


def uses_of(dtype: bytes) -> dict[str, bytes]:
    """The four ways to make an object array (or scalar) from the file's bytes with ``dtype``."""
    head = PROTO3 + dtype + put(0) + POP
    shape1 = integer(1) + TUPLE1
    return {
        "frombuffer": head
        + glob("numpy.core.numeric", "_frombuffer")
        + MARK + raw(POINTERS) + get(0) + shape1 + text("C") + TUPLE + REDUCE + STOP,
        "reconstruct": head
        + glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray") + integer(0) + TUPLE1 + raw(b"b") + TUPLE3 + REDUCE
        + MARK + integer(1) + shape1 + get(0) + FALSE + raw(POINTERS) + TUPLE + BUILD + STOP,
        "scalar": head + glob("numpy.core.multiarray", "scalar") + get(0) + raw(POINTERS) + TUPLE2 + REDUCE + STOP,
        "ndarray": head + glob("numpy", "ndarray") + MARK + shape1 + get(0) + raw(POINTERS) + TUPLE + REDUCE + STOP,
    }  # fmt: skip


def deep_tuple_key(levels: int = 1_000_000) -> bytes:
    """``{((((...),),),): None}`` with the key nested ``levels`` deep: hashing it overflows the C stack."""
    return PROTO2 + EMPTY_DICT + EMPTY_TUPLE + TUPLE1 * levels + NONE + SETITEM + STOP


def deep_list(levels: int = 200_000) -> bytes:
    """A list nested ``levels`` deep (every walk of it by recursion fails)."""
    return PROTO2 + EMPTY_LIST * levels + APPEND * (levels - 1) + STOP


def billion_laughs(levels: int = 9, width: int = 10) -> bytes:
    """Each list holds ``width`` references to the previous one: ``width ** levels`` leaves."""
    out = PROTO2 + EMPTY_LIST + MARK + integer(1) * width + APPENDS + put(0)
    for level in range(1, levels):
        out += EMPTY_LIST + MARK + get(level - 1) * width + APPENDS + put(level)
    return out + STOP


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- the attacks


def test_object_pointers_from_bytes_are_refused(tmp_path):
    """dtype + BUILD clearing the object flags, then each numpy entry point that would read pointers."""
    jobs = []
    for label, dtype in (
        ("obj", object_dtype_without_flags()),
        ("struct", struct_dtype_hiding_an_object_field()),
    ):
        for use, payload in uses_of(dtype).items():
            jobs.append(("pickle", write(tmp_path, f"{label}-{use}.pkl", payload)))
    # the plain object dtype is fine as such, but never with items taken from bytes
    plain = glob("numpy", "dtype") + text("O8") + FALSE + TRUE + TUPLE3 + REDUCE
    for use, payload in uses_of(plain).items():
        jobs.append(("pickle", write(tmp_path, f"plain-{use}.pkl", payload)))
    assert_refused(run_child(*jobs), jobs, "unsafe pickle")


def test_every_pickle_reader_uses_the_checked_unpickler(tmp_path):
    """IEMOCAP, MELD, MMSA and ``loads`` all refuse the same crafted file."""
    payload = uses_of(object_dtype_without_flags())["reconstruct"]
    jobs = [(kind, write(tmp_path, f"{kind}.pkl", payload)) for kind in ("iemocap", "meld", "mmsa", "loads")]
    assert_refused(run_child(*jobs), jobs, "unsafe pickle")


def test_deep_nesting_is_refused_before_hashing_or_walking(tmp_path):
    jobs = [
        ("pickle", write(tmp_path, "deep-key.pkl", deep_tuple_key())),
        ("pickle", write(tmp_path, "deep-list.pkl", deep_list())),
        ("iemocap", write(tmp_path, "deep-list-iemocap.pkl", deep_list())),
    ]
    assert_refused(run_child(*jobs), jobs, f"nested more than {safe_pickle.MAX_DEPTH} deep")


def test_huge_memo_index_is_refused(tmp_path):
    put_huge = NONE + b"r" + struct.pack("<I", 0xFFFFFFFF) + STOP  # 7 bytes
    get_huge = PROTO2 + b"j" + struct.pack("<I", 0xFFFFFFFF) + STOP
    put_text = NONE + b"p99999999999999999999\n" + STOP
    assert len(put_huge) == 7
    jobs = [
        ("pickle", write(tmp_path, "put.pkl", put_huge)),
        ("pickle", write(tmp_path, "get.pkl", get_huge)),
        ("pickle", write(tmp_path, "put-text.pkl", put_text)),
    ]
    assert_refused(run_child(*jobs), jobs, "memo index", "Memo value not found")


def test_billion_laughs_is_refused(tmp_path):
    payload = billion_laughs()
    assert len(payload) < 600
    # as dialogue ids: the 9-tuple with empty field dicts and the laughs as trainVid
    as_ids = PROTO2 + MARK + EMPTY_DICT * 7 + payload[2:-1] + EMPTY_LIST + TUPLE + STOP
    jobs = [
        ("pickle", write(tmp_path, "laughs.pkl", payload)),
        ("iemocap", write(tmp_path, "laughs-ids.pkl", as_ids)),
        ("mmsa", write(tmp_path, "laughs-mmsa.pkl", payload)),
    ]
    assert_refused(run_child(*jobs), jobs, "expands to more than")


def test_sizes_are_checked_against_the_file(tmp_path):
    """Arrays and byte strings that claim more than the file holds."""
    # numpy.ndarray((3_000_000_000,), 'f4'): 34 bytes asking for an 11 GiB array
    ndarray = (
        PROTO4 + b"\x8c\x05numpy" + b"\x8c\x07ndarray" + b"\x93"
        + integer(3_000_000_000) + TUPLE1 + b"\x8c\x02f4" + TUPLE2 + REDUCE + STOP
    )  # fmt: skip
    assert len(ndarray) == 34
    f4 = glob("numpy", "dtype") + text("f4") + FALSE + TRUE + TUPLE3 + REDUCE
    big_shape = integer(3_000_000_000) + TUPLE1
    frombuffer = (
        PROTO3 + glob("numpy.core.numeric", "_frombuffer")
        + MARK + raw(b"\0" * 8) + f4 + big_shape + text("C") + TUPLE + REDUCE + STOP
    )  # fmt: skip
    setstate = (
        PROTO3 + glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray") + integer(0) + TUPLE1 + raw(b"b") + TUPLE3 + REDUCE
        + MARK + integer(1) + big_shape + f4 + FALSE + raw(b"\0" * 8) + TUPLE + BUILD + STOP
    )  # fmt: skip
    placeholder = (
        PROTO3 + glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray") + big_shape + raw(b"f") + TUPLE3 + REDUCE + STOP
    )  # fmt: skip
    bytearray8 = PROTO5 + b"\x96" + struct.pack("<Q", 1 << 62) + STOP
    bytes8 = PROTO4 + b"\x8e" + struct.pack("<Q", 1 << 62) + STOP
    frame = PROTO4 + b"\x95" + struct.pack("<Q", 1 << 62) + NONE + STOP
    zeros = PROTO2 + glob("__builtin__", "bytes") + integer(10**10) + TUPLE1 + REDUCE + STOP
    header = tmp_path / "header.npy"
    with header.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (3 * 10**9,)}
        )
        fh.write(b"\0" * 4)
    jobs = [
        ("pickle", write(tmp_path, "ndarray.pkl", ndarray)),
        ("mmsa", write(tmp_path, "ndarray-mmsa.pkl", ndarray)),
        ("pickle", write(tmp_path, "frombuffer.pkl", frombuffer)),
        ("pickle", write(tmp_path, "setstate.pkl", setstate)),
        ("pickle", write(tmp_path, "placeholder.pkl", placeholder)),
        ("pickle", write(tmp_path, "bytearray8.pkl", bytearray8)),
        ("pickle", write(tmp_path, "bytes8.pkl", bytes8)),
        ("pickle", write(tmp_path, "frame.pkl", frame)),
        ("pickle", write(tmp_path, "zeros.pkl", zeros)),
        ("npy", header),
    ]
    assert_refused(run_child(*jobs), jobs, "unsafe pickle", "truncated", "declares shape")


def test_expansion_by_callables_is_refused(tmp_path):
    """``list(range(10**8))`` and friends: tiny files asking a constructor for a huge object."""
    xrange = glob("__builtin__", "xrange") + integer(10**8) + TUPLE1 + REDUCE
    list_of_range = PROTO2 + glob("__builtin__", "list") + xrange + TUPLE1 + REDUCE + STOP
    tuple_of_range = PROTO2 + glob("__builtin__", "tuple") + xrange + TUPLE1 + REDUCE + STOP
    jobs = [
        ("pickle", write(tmp_path, "list-range.pkl", list_of_range)),
        ("pickle", write(tmp_path, "tuple-range.pkl", tuple_of_range)),
        ("iemocap", write(tmp_path, "list-range-iemocap.pkl", list_of_range)),
    ]
    assert_refused(run_child(*jobs), jobs, "more than")


def test_only_text_codecs_are_admitted(tmp_path):
    jobs = []
    for codec in ("zlib", "base64", "rot13", "no-such-codec"):
        payload = PROTO2 + glob("_codecs", "encode") + text("x") + text(codec) + TUPLE2 + REDUCE + STOP
        jobs.append(("pickle", write(tmp_path, f"codec-{codec}.pkl", payload)))
    assert_refused(run_child(*jobs), jobs, "only the text codecs")


# ---------------------------------------------------------------------------- in-process checks


def test_python2_latin1_bytes_still_load(tmp_path):
    """What ``_codecs.encode`` is admitted for: Python 2 / protocol 2 pickles of bytes and arrays."""
    value = {"b": b"\x00\xff", "a": np.arange(4, dtype=np.float32)}
    loaded = loads(pickle.dumps(value, protocol=2))
    assert loaded["b"] == value["b"]
    np.testing.assert_array_equal(loaded["a"], value["a"])


def test_legitimate_sharing_and_object_arrays_load(tmp_path):
    ids = np.array(["a$_$1", "b$_$2"], dtype=object)
    shared = [np.ones(3, np.float32)] * 50  # one array referenced 50 times: 150 elements expanded
    loaded = loads(pickle.dumps({"id": ids, "x": shared, "nested": ((1, 2), (3, (4, 5)))}, protocol=4))
    assert list(loaded["id"]) == ["a$_$1", "b$_$2"]
    assert len(loaded["x"]) == 50 and loaded["nested"][1][1] == (4, 5)


def test_expansion_bound_is_the_documented_factor(tmp_path):
    """The loaded object may expand to EXPANSION_FACTOR elements per byte plus BASE_ALLOWANCE, no more."""
    inner = list(range(100))
    data = pickle.dumps([inner] * 2000, protocol=2)  # 200,000+ expanded elements from ~4.4 KB
    budget = safe_pickle.EXPANSION_FACTOR * len(data) + safe_pickle.BASE_ALLOWANCE
    assert budget < 2000 * 101
    with pytest.raises(DataFormatError, match=f"expands to more than {budget} elements"):
        loads(data, source="shared.pkl")
    ok = pickle.dumps([inner] * 500, protocol=2)  # 50,501 elements: under the base allowance
    assert len(loads(ok)) == 500


def test_refused_build_leaves_numpy_dtypes_alone():
    """A BUILD on numpy's shared float32 dtype (copy=False) must not change float32 for the process."""
    before = np.dtype("f4").flags
    payload = (
        PROTO3 + glob("numpy", "dtype") + text("f4") + FALSE + FALSE + TUPLE3 + REDUCE
        + MARK + integer(3) + text(">") + NONE + NONE + NONE + integer(-1) + integer(-1) + integer(63) + TUPLE
        + BUILD + STOP
    )  # fmt: skip
    with pytest.raises(DataFormatError, match="unsafe pickle"):
        loads(payload)
    assert np.dtype("f4").flags == before and np.dtype("f4").byteorder == "="


def test_truncated_npy_files(tmp_path):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    full = tmp_path / "full.npy"
    np.save(full, np.arange(100, dtype=np.float32))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(full.read_bytes()[:-7])
    for path, message in ((empty, "not a valid .npy file"), (cut, "declares shape")):
        with pytest.raises(DataFormatError, match=message) as info:
            load_npy(path)
        assert info.value.file == str(path)
    np.testing.assert_array_equal(load_npy(full, mmap_mode="r"), np.arange(100, dtype=np.float32))


def test_too_many_dimensions(tmp_path):
    path = tmp_path / "deep.npy"
    with path.open("wb") as fh:
        np.lib.format.write_array_header_2_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (1,) * 65})
        fh.write(b"\0" * 4)
    with pytest.raises(DataFormatError, match="65 dimensions") as info:
        load_npy(path)
    assert info.value.file == str(path)
    shape = (integer(1) * 65).join([MARK, TUPLE])
    payload = (
        PROTO3 + glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray") + integer(0) + TUPLE1 + raw(b"b") + TUPLE3 + REDUCE
        + MARK + integer(1) + shape + glob("numpy", "dtype") + text("f4") + FALSE + TRUE + TUPLE3 + REDUCE
        + FALSE + raw(b"\0" * 4) + TUPLE + BUILD + STOP
    )  # fmt: skip
    with pytest.raises(DataFormatError, match="65 dimensions"):
        loads(payload)


def test_reads_from_the_file_not_a_copy(tmp_path, monkeypatch):
    """``load_pickle`` streams from the open file: it never reads the whole file into one bytes object."""
    path = tmp_path / "big.pkl"
    with path.open("wb") as fh:
        pickle.dump([np.zeros(1 << 16, np.float64) for _ in range(8)], fh, protocol=4)
    size = path.stat().st_size
    largest = []
    real_open = Path.open

    class Spy:
        def __init__(self, fh):
            self._fh = fh

        def read(self, n=-1):
            data = self._fh.read(n)
            largest.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    monkeypatch.setattr(Path, "open", lambda self, *a, **k: Spy(real_open(self, *a, **k)))
    loaded = load_pickle(path)
    assert len(loaded) == 8 and max(largest) < size // 4
