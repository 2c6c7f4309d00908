"""Time what exact context removal costs each backbone: a no-grad forward with full context, view O and view X.

    python benchmarks/context_views.py                          # every emotion backbone, reference sizes, CPU
    python benchmarks/context_views.py --backbones m3net dialoguernn --device cuda

Removing inter-speaker context (O) or intra-speaker context (X) must be exact for every backbone
(``tests/models/test_backbone_contract.py``). Graph and attention layers honour a context mask at no extra
cost; recurrent encoders (M3Net's and MMGCN's text RNN, MM-DFN's speaker GRU, DialogueRNN) run every
target utterance over its own context subsequence, batched: one run per speaker for O, up to one per
utterance for X. The views run side by side on the same batches (round-robin after warm-up); the script
prints mean time per forward and the ratio to full context.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import AutoConfig, AutoModel

import merc_hf
from merc_hf.data import DialogueCollator
from merc_hf.models.base import build_context_mask

# the emotion backbones (model_type ``merc_<name>``), at the reference-size defaults of their configs
BACKBONES = ("m3net", "mmgcn", "mmdfn", "dialoguegcn", "dialoguernn", "sure")
DIMS = {"text": 1024, "audio": 1582, "visual": 342}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed forwards per view")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = merc_hf.load_dataset("synthetic", preset="iemocap-like", seed=0, dims=DIMS)["train"]
    batch = DialogueCollator()([data[i] for i in range(args.batch_size)])
    batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    views = {
        "full": None,
        "O": build_context_mask("O", batch["same_speaker"], batch["utterance_mask"]),
        "X": build_context_mask("X", batch["same_speaker"], batch["utterance_mask"]),
    }
    n_utterances = int(batch["utterance_mask"].sum())
    print(
        f"device {device}, threads {torch.get_num_threads()}, {args.batch_size} iemocap-like dialogues "
        f"({n_utterances} utterances, longest {batch['utterance_mask'].shape[1]}), no-grad eval forward, "
        f"{args.steps} timed runs per view"
    )
    print("| backbone | parameters | full s | O s (× full) | X s (× full) |")
    print("|---|---|---|---|---|")
    for name in args.backbones:
        torch.manual_seed(0)
        config = AutoConfig.for_model(
            f"merc_{name}", text_dim=DIMS["text"], audio_dim=DIMS["audio"], visual_dim=DIMS["visual"]
        )
        model = AutoModel.from_config(config).to(device).eval()
        times: dict[str, list[float]] = {view: [] for view in views}
        with torch.no_grad():
            for step in range(args.steps + 1):
                for view, mask in views.items():
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    model(**batch, context_mask=mask)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    if step > 0:  # the first round is warm-up
                        times[view].append(time.perf_counter() - start)
        full = statistics.mean(times["full"])
        cells = [
            f"{statistics.mean(times[v]):.3f} ({statistics.mean(times[v]) / full:.1f}×)" for v in ("O", "X")
        ]
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {n_params:.1f} M | {full:.3f} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
