"""Where merc_hf caches derived data, the content hashes that key the cache, and the checks on it."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def cache_root() -> Path:
    """``$MERC_HF_CACHE``, else ``$HF_HOME/merc_hf``, else ``~/.cache/huggingface/merc_hf``."""
    if "MERC_HF_CACHE" in os.environ:
        return Path(os.environ["MERC_HF_CACHE"])
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(hf_home) / "merc_hf"


def file_digest(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*, files: Mapping[str, str | os.PathLike] | None = None, **options: Any) -> str:
    """A short hash of the input files plus options: a changed file is never served stale.

    ``files`` maps the *role* of each input file (how the reader will read it, e.g.
    ``"data_dir/valid_data_pair.json"`` or ``"features_file"``) to its path. The key holds
    ``(role, content digest)`` pairs, so the same bytes read under another name (another split) give
    another key, while moving or renaming the folder that holds them does not.
    """
    roles = sorted((role, file_digest(path)) for role, path in (files or {}).items())
    payload = {"files": roles, "options": options}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_checksum(path: str | os.PathLike) -> dict[str, Any]:
    """``{"size", "sha256"}`` of a file, what a cache manifest records for each file it lists."""
    return {"size": os.path.getsize(path), "sha256": file_digest(path)}


def checksum_problem(path: str | os.PathLike, expected: Mapping[str, Any]) -> str | None:
    """Why ``path`` does not match the checksum ``expected`` (missing, truncated, changed), or ``None``.

    The size is compared first, so a truncated or deleted file is found without reading it.
    """
    try:
        size = os.path.getsize(path)
    except OSError:
        return f"{os.fspath(path)!r} is missing"
    if size != expected.get("size"):
        return f"{os.fspath(path)!r} has {size} bytes, the manifest says {expected.get('size')}"
    if file_digest(path) != expected.get("sha256"):
        return f"{os.fspath(path)!r} does not match its sha256 in the manifest (corrupt)"
    return None


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def cache_dir_error(folder: str | os.PathLike, exc: OSError) -> OSError:
    """The error to raise when the cache ``folder`` cannot be created or written: it names the folder and
    the three ways to choose another one. Other ``OSError``\\ s (disk full, ...) are returned unchanged."""
    if exc.errno not in _NOT_WRITABLE:
        return exc
    return PermissionError(
        exc.errno,
        f"cannot write the merc_hf cache in {os.fspath(folder)!r} ({exc.strerror}); set MERC_HF_CACHE "
        "(or HF_HOME) to a writable folder, or pass cache_dir= to load_dataset",
        os.fspath(folder),
    )
