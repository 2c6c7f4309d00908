"""Shared pytest fixtures.

The whole test session runs with ``HF_HOME`` in a fresh temporary directory and the Hub switched off,
so nothing is downloaded and no user cache is touched (set here, before any test module imports
``transformers``/``datasets``, because both read these variables at import time). Real data lives in
``../shared/data`` next to the checkout (present in CI, absent in a user's clone): tests that need it
use the ``shared_data`` fixture, which skips cleanly when it is missing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HF_HOME = Path(tempfile.mkdtemp(prefix="merc_hf_tests_"))
os.environ["HF_HOME"] = str(_HF_HOME)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["MERC_HF_CACHE"] = str(_HF_HOME / "merc_hf")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(
    os.environ.get("MERC_HF_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
).resolve()


@pytest.fixture
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when the real data is not available."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA
