"""Where merc_hf caches derived data, and the content hashes that key the cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """``$MERC_HF_CACHE``, else ``$HF_HOME/merc_hf``, else ``~/.cache/huggingface/merc_hf``."""
    if "MERC_HF_CACHE" in os.environ:
        return Path(os.environ["MERC_HF_CACHE"])
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(hf_home) / "merc_hf"


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*, files: Iterable[str | os.PathLike] = (), **options: Any) -> str:
    """A short hash of input file contents plus options: a changed file is never served stale."""
    payload = {"files": sorted(file_digest(f) for f in files), "options": options}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]
