"""Time one training step of M3Net: plain, CMERC with batched views, CMERC with sequential views.

    python benchmarks/cmerc_step.py                    # IEMOCAP-size M3Net on iemocap-like batches, CPU
    python benchmarks/cmerc_step.py --device cuda      # the same on a GPU
    python benchmarks/cmerc_step.py --removals A V T O # without the X view
    python benchmarks/cmerc_step.py --view_mode exact  # views from every stage of the current weights

The three modes run side by side on the same batches (round-robin, after warm-up), in one process:

* ``plain``: forward + backward + Adam step of the backbone with its task loss;
* ``cmerc-batched``: the same plus the CMERC terms, with all removal views in **one** no-grad forward
  (views stacked along the batch dimension, ``removal_view_logits(..., views_per_pass=len(views))``,
  the default on accelerators);
* ``cmerc-sequential``: the same terms with one no-grad pass per view (``views_per_pass=1``, the default on
  CPU), sharing the full input's unimodal encodings among the views (M3Net's stages; a view re-runs the
  encoder of the modality it removes and the graph);
* ``cmerc-unshared``: one full no-grad forward per view, as before that sharing (and as the reference code,
  which additionally deep-copies the model three times per pass).

Prints mean step time, ratios to ``plain``, utterances/s and peak memory (CUDA: max allocated per mode;
CPU: the process's max RSS after each mode's first step, a high-water mark).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

import merc_hf
from merc_hf.calibration import CMERC
from merc_hf.data import DialogueCollator
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel


class _WithoutStages(torch.nn.Module):
    """The model behind a wrapper that hides its stages: every view becomes a full forward pass."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config

    def forward(self, **batch):
        return self.inner(**batch)


def step(model, optimizer, batch, method, hide_stages=False):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    outputs = model(**batch)
    loss = outputs.loss
    if method is not None:
        view_model = _WithoutStages(model) if hide_stages else model
        extra, _ = method.training_loss(view_model, batch, outputs)
        loss = loss + extra
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--removals", nargs="+", default=["A", "V", "T", "X", "O"])
    parser.add_argument("--view_mode", default="reference", choices=["reference", "exact"])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dims = {"text": 1024, "audio": 1582, "visual": 342}
    data = merc_hf.load_dataset("synthetic", preset="iemocap-like", seed=0, dims=dims)["train"]
    collate = DialogueCollator()
    n_batches = args.warmup + args.steps
    batches = [
        {
            k: v.to(device)
            for k, v in collate(
                [data[(i * args.batch_size + j) % len(data)] for j in range(args.batch_size)]
            ).items()
        }
        for i in range(n_batches)
    ]
    torch.manual_seed(0)
    config = M3NetConfig(
        text_dim=1024, audio_dim=1582, visual_dim=342, hidden_size=args.hidden_size, graph_hidden_size=args.hidden_size,
        num_L=3, num_K=4, dropout=0.5, id2label=dict(enumerate(data.features["labels"].feature.names)),
    )  # fmt: skip
    model = M3NetModel(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    removals = tuple(args.removals)
    modes = {
        "plain": None,
        "cmerc-batched": CMERC(
            removals=removals, curriculum_ratio=None, views_per_pass=len(removals), view_mode=args.view_mode
        ),
        "cmerc-sequential": CMERC(
            removals=removals, curriculum_ratio=None, views_per_pass=1, view_mode=args.view_mode
        ),
        "cmerc-unshared": CMERC(
            removals=removals, curriculum_ratio=None, views_per_pass=1, view_mode=args.view_mode
        ),
    }
    times = {name: [] for name in modes}
    memory = {}
    for i, batch in enumerate(batches):
        for name, method in modes.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            step(model, optimizer, batch, method, hide_stages=name == "cmerc-unshared")
            if device.type == "cuda":
                torch.cuda.synchronize()
                memory[name] = max(memory.get(name, 0), torch.cuda.max_memory_allocated() / 2**20)
            elif name not in memory:
                memory[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)

    utterances = statistics.mean(int(b["utterance_mask"].sum()) for b in batches[args.warmup :])
    plain = statistics.mean(times["plain"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"M3Net {n_params / 1e6:.2f}M params, device {device}, threads {torch.get_num_threads()}, "
          f"batch {args.batch_size} dialogues (~{utterances:.0f} utterances), views {' '.join(args.removals)} "
          f"({args.view_mode}), "
          f"{args.steps} timed steps per mode after {args.warmup} warm-up")  # fmt: skip
    mem_label = "peak MiB (CUDA max allocated)" if device.type == "cuda" else "max RSS MiB (high-water)"
    print(f"| mode | step s (mean ± sd) | × plain | utterances/s | {mem_label} |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        mean, sd = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"| {name} | {mean:.3f} ± {sd:.3f} | {mean / plain:.2f} | {utterances / mean:.0f} | {memory[name]:.0f} |"
        )
    seq, bat = statistics.mean(times["cmerc-sequential"]), statistics.mean(times["cmerc-batched"])
    unshared = statistics.mean(times["cmerc-unshared"])
    print(f"batched views vs sequential views: {seq / bat:.2f}× faster")
    print(f"shared unimodal encodings vs a full pass per view: {unshared / seq:.2f}× faster")


if __name__ == "__main__":
    main()
