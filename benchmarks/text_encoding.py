"""Time text encoding of the real MELD transcripts: today's encoder loop against the current one.

    OMP_NUM_THREADS=2 python benchmarks/text_encoding.py            # MELD CSVs from ../shared/data/meld
    python benchmarks/text_encoding.py --device cuda --dtype bfloat16

Collects the transcripts of the official MELD CSVs through the MELD reader (13,708 utterances, 12,158
distinct texts; only distinct texts are encoded) and encodes them with the offline MiniLM by two paths,
side by side in one process: ``baseline`` is a copy of ``_encode_unique`` as it was before token-length
batching (texts sorted by characters, tokenised per batch, elementwise masked mean), kept here unchanged as
the reference; ``current`` is :func:`merc_hf.data.text_encoding.encode_texts` without the cache. Both
share one encoder, loaded before timing. On a shared machine the load drifts over minutes, so the distinct
texts are cut into ``--slices`` random slices and each slice is encoded by both paths back to back, the
first path alternating by slice (the current path gains less on smaller slices: fewer texts share each
token length). Each path runs with its own default batch size (64 before, 128 now) unless
``--batch_size`` is given. The script prints the times per slice and in total, their ratio, the largest
absolute difference between the two sets of vectors, and whether the cache key is the one the baseline
wrote.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from merc_hf.data.readers.meld import read_meld
from merc_hf.data.text_encoding import (
    OFFLINE_MINILM,
    _cache_key,
    _dtype_name,
    _encoder_digest,
    encode_texts,
    resolve_encoder,
)

DEFAULT_MELD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "meld"


def baseline_encode(
    texts: list[str], path: Path, pooling: str, max_length: int, device: str, batch_size: int = 64
) -> np.ndarray:
    """The encoding loop of ``merc_hf.data.text_encoding._encode_unique`` before this change (baseline)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    model.to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
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


def baseline_cache_key(path: Path, pooling: str, max_length: int, unique: list[str]) -> str:
    """The cache key formula before this change."""
    return hashlib.sha256(
        "\x1f".join([_encoder_digest(path), pooling, str(max_length), *unique]).encode("utf-8")
    ).hexdigest()


def load_once() -> None:
    """Make both paths share one tokenizer and encoder per (path, options), loaded before timing: the slices
    then time encoding only, not loading the encoder again for every slice."""
    import transformers

    for cls in (transformers.AutoModel, transformers.AutoTokenizer):
        cls.from_pretrained = staticmethod(functools.cache(cls.from_pretrained))


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meld_dir", type=Path, default=DEFAULT_MELD)
    parser.add_argument("--encoder", default=OFFLINE_MINILM)
    parser.add_argument("--pooling", default="mean", choices=("mean", "cls"))
    parser.add_argument(
        "--batch_size", type=int, default=None, help="for both paths (default: each path's own, 64 and 128)"
    )
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", help="dtype of the current path (baseline: float32)")
    parser.add_argument("--slices", type=int, default=2, help="interleaved slices of the distinct texts")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N distinct texts")
    args = parser.parse_args()

    corpus = read_meld(args.meld_dir, text="none")
    texts = [t for records in corpus.splits.values() for r in records for t in r["utterances"]]
    unique = sorted(set(texts))[: args.limit]
    path = resolve_encoder(args.encoder)
    print(
        f"{len(texts)} MELD utterances, {len(unique)} distinct texts encoded; encoder {args.encoder}, "
        f"device {args.device}, current dtype {args.dtype}, torch threads {torch.get_num_threads()}"
    )
    common = dict(pooling=args.pooling, max_length=args.max_length)
    if args.batch_size is not None:
        common["batch_size"] = args.batch_size

    def run(name: str, part: list[str]) -> np.ndarray:
        if name == "baseline":
            return baseline_encode(part, path, device=args.device, **common)
        return encode_texts(
            part, path, device=args.device, dtype=args.dtype, use_cache=False, show_progress=False, **common
        )

    load_once()
    warm_up = {name: run(name, unique[:64]) for name in ("baseline", "current")}
    dim = warm_up["baseline"].shape[1]

    # Interleaved so that a change in the machine's load hits both paths alike: the distinct texts are cut
    # into random slices, each slice is encoded by both paths back to back, the order alternating by slice.
    slices = np.array_split(np.random.default_rng(0).permutation(len(unique)), args.slices)
    vectors = {name: np.zeros((len(unique), dim), np.float32) for name in ("baseline", "current")}
    times: dict[str, list[float]] = {"baseline": [], "current": []}
    for k, part in enumerate(slices):
        part = np.sort(part)
        for name in sorted(vectors, reverse=k % 2 == 1):
            synchronize(args.device)
            start = time.perf_counter()
            vectors[name][part] = run(name, [unique[i] for i in part])
            synchronize(args.device)
            times[name].append(time.perf_counter() - start)
        print(
            f"slice {k + 1}/{len(slices)} ({len(part)} texts): baseline {times['baseline'][-1]:.1f} s, "
            f"current {times['current'][-1]:.1f} s ({times['current'][-1] / times['baseline'][-1]:.2f}x)",
            flush=True,
        )
    reference, current = vectors["baseline"], vectors["current"]
    baseline_s, current_s = sum(times["baseline"]), sum(times["current"])
    same_key = baseline_cache_key(path, args.pooling, args.max_length, unique) == _cache_key(
        path, args.pooling, args.max_length, _dtype_name(args.dtype), unique
    )
    print(
        f"baseline {baseline_s:.1f} s, current {current_s:.1f} s, ratio current/baseline {current_s / baseline_s:.2f}"
    )
    print(
        f"max |current - baseline| = {np.abs(current - reference).max():.2e}; cache key unchanged: {same_key}"
    )


if __name__ == "__main__":
    main()
