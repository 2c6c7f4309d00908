"""Time ContextMaskedRNN's two ways of running context subsequences, side by side, on one batch.

    python benchmarks/context_rnn.py                  # M3Net's text GRU (512 -> 2x256, 2 layers), CPU
    python benchmarks/context_rnn.py --device cuda
    python benchmarks/context_rnn.py --cell lstm --input_size 2948 --hidden_size 100 --num_layers 1   # DialogueGCN's

* ``buckets``: the subsequences through the ``nn.GRU``/``nn.LSTM`` modules in buckets of similar length
  (the path taken with gradients);
* ``packed``: the no-grad path (packed time-major recurrence, first-layer projection once per utterance,
  last layer truncated at the targets).

Both run under ``torch.no_grad`` on the same 16 ``iemocap-like`` dialogues for the full context and the
views O and X; prints the median time of each, their ratio and the largest difference of their outputs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from merc_hf.data import DialogueCollator, same_speaker_matrix
from merc_hf.data.readers.synthetic import generate_synthetic
from merc_hf.models.base import build_context_mask, full_context_mask
from merc_hf.models.layers import ContextMaskedRNN, context_subsequences


def timed(function, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeats`` calls (after one warm-up) and the last result."""
    result = function()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cell", default="gru", choices=["gru", "lstm"])
    parser.add_argument("--input_size", type=int, default=512)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    corpus = generate_synthetic("iemocap-like", seed=0, dims={"text": 8})
    batch = DialogueCollator()(corpus.splits["train"][: args.batch_size])
    utterance_mask = batch["utterance_mask"].bool().to(device)
    same = same_speaker_matrix(batch["speakers"].to(device), utterance_mask)
    torch.manual_seed(0)
    rnn = (
        ContextMaskedRNN(args.input_size, args.hidden_size, args.num_layers, cell=args.cell).to(device).eval()
    )
    x = torch.randn(*utterance_mask.shape, args.input_size, device=device)
    print(f"{args.cell.upper()} {args.input_size} -> {args.num_layers} x 2 x {args.hidden_size}, device {device}, "
          f"threads {torch.get_num_threads()}, {args.batch_size} dialogues ({int(utterance_mask.sum())} utterances), "
          f"median of {args.repeats}")  # fmt: skip
    print("| context | subsequences (positions) | buckets s | packed s | buckets ÷ packed | max diff |")
    print("|---|---|---|---|---|---|")
    with torch.no_grad():
        for view in ("full", "O", "X"):
            context = build_context_mask(view, same, utterance_mask)
            if context is None:  # full context
                context = full_context_mask(utterance_mask)
            plan = context_subsequences(context, utterance_mask)
            bucket_s, by_length = timed(
                lambda plan=plan: rnn._targets_by_length(x, plan), device, args.repeats
            )
            packed_s, packed = timed(
                lambda plan=plan: rnn._targets_without_grad(x, plan), device, args.repeats
            )
            diff = float((by_length - packed).abs().max())
            print(f"| {view} | {plan.lengths.numel()} ({int(plan.lengths.sum())}) | {bucket_s:.4f} | "
                  f"{packed_s:.4f} | {bucket_s / packed_s:.2f} | {diff:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
