"""Time one training step of a backbone: plain, CMERC with batched views, CMERC with sequential views.

    python benchmarks/cmerc_step.py                         # IEMOCAP-size M3Net on iemocap-like batches, CPU
    python benchmarks/cmerc_step.py --device cuda           # the same on a GPU
    python benchmarks/cmerc_step.py --backbone dialoguernn  # another backbone, at its reference size
    python benchmarks/cmerc_step.py --removals A V T O      # without the X view
    python benchmarks/cmerc_step.py --view_mode exact       # views from every stage of the current weights
    python benchmarks/cmerc_step.py --profile               # and the parts of one plain / CMERC step
    python benchmarks/cmerc_step.py --memory                # and each mode's peak memory on its own (CPU)

``--backbone`` is one of m3net (hidden 512, num_L 3, num_K 4, dropout 0.5, as the CMERC experiments), mmgcn,
mmdfn, dialoguegcn, dialoguernn, sure (their configs' reference-size defaults); all take the data's dims
and labels. The modes run side by side on the same batches (round-robin, after warm-up), in one process:

* ``plain``: forward + backward + Adam step of the backbone with its task loss;
* ``cmerc-batched``: the same plus the CMERC terms, with all removal views in **one** no-grad forward
  (views stacked along the batch dimension, ``removal_view_logits(..., views_per_pass=len(views))``,
  the default on accelerators);
* ``cmerc-sequential``: the same terms with one no-grad pass per view (``views_per_pass=1``, the default on
  CPU); a backbone split into stages (``_contextual_stages``) shares the full input's unimodal encodings
  among the views (a view re-runs the encoder of the modality it removes and the contextual stages);
* ``cmerc-unshared``: one full no-grad forward per view, as before that sharing (and as the reference code,
  which additionally deep-copies the model three times per pass). Skipped for backbones without stages
  (DialogueGCN, DialogueRNN), where it is the same computation as ``cmerc-sequential``.

Prints mean step time, ratios to ``plain``, utterances/s and peak memory (CUDA: max allocated per mode;
CPU: the process's max RSS after each mode's first step, a high-water mark that includes the modes run
before). ``--memory`` measures each mode alone on CPU: one step in a fresh process whose peak resident set
is reset after the set-up (``/proc/self/clear_refs``, Linux), reported as the rise over the set-up.

``--profile`` then times the parts of one step on each timed batch, each part on its own (median over the
batches): (a) the training forward, (b) the removal views, (c) the CMERC terms given (a)'s outputs and
(b)'s views, (d) the backward of the total loss, (e) the optimizer step; for ``plain`` and the device's
default CMERC mode (``cmerc-sequential`` on CPU, ``cmerc-batched`` on an accelerator).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

import merc_hf  # noqa: F401  (registers the backbones with the Auto classes)
from merc_hf.calibration import CMERC
from merc_hf.calibration.views import removal_view_logits
from merc_hf.data import DialogueCollator
from merc_hf.data.readers.synthetic import generate_synthetic

# the emotion backbones (model_type ``merc_<name>``); all but M3Net use their config defaults
BACKBONES = ("m3net", "mmgcn", "mmdfn", "dialoguegcn", "dialoguernn", "sure")
DIMS = {"text": 1024, "audio": 1582, "visual": 342}
PARTS = {
    "forward": "(a) forward (train, autograd)",
    "views": "(b) removal views (no grad)",
    "terms": "(c) CMERC terms",
    "backward": "(d) backward",
    "optimizer": "(e) optimizer step",
}


class _WithoutStages(torch.nn.Module):
    """The model behind a wrapper that hides its stages: every view becomes a full forward pass."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config

    def forward(self, **batch):
        return self.inner(**batch)


def build_model(backbone: str, hidden_size: int, id2label: dict[int, str]) -> torch.nn.Module:
    """The benchmarked backbone: M3Net at the CMERC experiments' size, the others at their config defaults."""
    dims = {f"{modality}_dim": dim for modality, dim in DIMS.items()}
    extra = {}
    if backbone == "m3net":
        extra = dict(hidden_size=hidden_size, graph_hidden_size=hidden_size, num_L=3, num_K=4, dropout=0.5)
    config = AutoConfig.for_model(f"merc_{backbone}", **dims, **extra, id2label=id2label)
    return AutoModel.from_config(config)


def clock(device: torch.device) -> float:
    """The time in seconds once the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def step(model, optimizer, batch, method, hide_stages=False) -> None:
    """One training step: forward, the CMERC terms when ``method`` is given, backward, Adam."""
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


def cmerc_terms(method: CMERC, model, batch, outputs, views: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``method.training_loss`` with the removal views given, so that they are not computed again."""
    method.removal_views = lambda *_: views  # an instance attribute hides the method for this call
    try:
        return method.training_loss(model, batch, outputs)[0]
    finally:
        del method.removal_views


def profile_step(model, optimizer, batch, method, device: torch.device) -> dict[str, float]:
    """Seconds spent in each part of one training step (a CMERC step when ``method`` is given)."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    times = {}
    start = clock(device)
    outputs = model(**batch)
    end = clock(device)
    times["forward"] = end - start
    loss = outputs.loss
    if method is not None:
        start = end
        views = method.removal_views(model, batch)
        end = clock(device)
        times["views"] = end - start
        start = end
        loss = loss + cmerc_terms(method, model, batch, outputs, views)
        end = clock(device)
        times["terms"] = end - start
    start = end
    loss.backward()
    end = clock(device)
    times["backward"] = end - start
    optimizer.step()
    times["optimizer"] = clock(device) - end
    return times


def view_disagreement(model, batch, removals: tuple[str, ...], view_mode: str) -> float:
    """Largest difference between the two view paths' logits (all views stacked in one pass vs one view per
    pass through the backbone's stages) at real positions: a check of the stacked path on the device at hand."""
    stacked = removal_view_logits(model, batch, removals, views_per_pass=len(removals), view_mode=view_mode)
    single = removal_view_logits(model, batch, removals, views_per_pass=1, view_mode=view_mode)
    real = batch["utterance_mask"].bool()
    return max(float((stacked[v][real] - single[v][real]).abs().max()) for v in stacked)


def _status_mib(field: str) -> float:
    """A memory field of ``/proc/self/status`` (Linux) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def own_process_memory(mode: str) -> tuple[float, float]:
    """``(resident MiB after set-up, peak MiB)`` of one step of ``mode`` run by this script in a fresh
    process with the same options (Linux: the peak is reset after set-up, so that neither the data set-up
    nor another mode is included)."""
    options = [a for a in sys.argv[1:] if a not in ("--memory", "--profile")]
    result = subprocess.run(
        [sys.executable, __file__, *options, "--only_mode", mode, "--steps", "1", "--warmup", "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("MEMORY "))
    setup, peak = line.split()[1:]
    return float(setup), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="m3net", choices=list(BACKBONES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--hidden_size", type=int, default=512, help="M3Net's hidden sizes (M3Net only)")
    parser.add_argument("--removals", nargs="+", default=["A", "V", "T", "X", "O"])
    parser.add_argument("--view_mode", default="reference", choices=["reference", "exact"])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--profile", action="store_true", help="also time the parts of one step")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also measure each mode's peak RSS in a process of its own (CPU)",
    )
    parser.add_argument("--only_mode", help=argparse.SUPPRESS)  # the child process of --memory
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # the reader's records, not ``load_dataset``: the same rows without needing ``datasets`` (absent on GPU images)
    corpus = generate_synthetic("iemocap-like", seed=0, dims=DIMS)
    data = corpus.splits["train"]
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
    id2label = dict(enumerate(corpus.class_names["labels"]))
    model = build_model(args.backbone, args.hidden_size, id2label).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    removals = tuple(args.removals)

    def cmerc(views_per_pass: int) -> CMERC:
        return CMERC(
            removals=removals, curriculum_ratio=None, views_per_pass=views_per_pass, view_mode=args.view_mode
        )

    has_stages = hasattr(model, "_contextual_stages")
    modes = {"plain": None, "cmerc-batched": cmerc(len(removals)), "cmerc-sequential": cmerc(1)}
    if has_stages:
        modes["cmerc-unshared"] = cmerc(1)
    if args.only_mode:  # one mode on its own: resident set after set-up, and its peak over one step
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current resident set
        setup = _status_mib("VmRSS")
        method = modes[args.only_mode]
        step(model, optimizer, batches[0], method, hide_stages=args.only_mode == "cmerc-unshared")
        print(f"MEMORY {setup:.0f} {_status_mib('VmHWM'):.0f}")
        return
    times = {name: [] for name in modes}
    memory = {}
    for i, batch in enumerate(batches):
        for name, method in modes.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            start = clock(device)
            step(model, optimizer, batch, method, hide_stages=name == "cmerc-unshared")
            end = clock(device)
            if device.type == "cuda":
                memory[name] = max(memory.get(name, 0), torch.cuda.max_memory_allocated() / 2**20)
            elif name not in memory:
                memory[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if i >= args.warmup:
                times[name].append(end - start)

    utterances = statistics.mean(int(b["utterance_mask"].sum()) for b in batches[args.warmup :])
    plain = statistics.mean(times["plain"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.backbone} ({type(model).__name__}) {n_params / 1e6:.2f}M params, device {device}, "
          f"threads {torch.get_num_threads()}, batch {args.batch_size} dialogues (~{utterances:.0f} utterances), "
          f"views {' '.join(args.removals)} ({args.view_mode}), "
          f"{args.steps} timed steps per mode after {args.warmup} warm-up")  # fmt: skip
    mem_label = "peak MiB (CUDA max allocated)" if device.type == "cuda" else "max RSS MiB (high-water)"
    print(f"| mode | step s (mean ± sd) | × plain | utterances/s | {mem_label} |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        mean, sd = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"| {name} | {mean:.3f} ± {sd:.3f} | {mean / plain:.2f} | {utterances / mean:.0f} | {memory[name]:.0f} |"
        )
    if args.memory and device.type == "cpu":
        print("\npeak RSS of one step of each mode in a process of its own (MiB; rise over the set-up)")
        print("| mode | after set-up | peak | rise |")
        print("|---|---|---|---|")
        for name in modes:
            setup, peak = own_process_memory(name)
            print(f"| {name} | {setup:.0f} | {peak:.0f} | {peak - setup:.0f} |")
    print(
        f"views agree: max |stacked − one per pass| logit at real positions = {view_disagreement(model, batches[0], removals, args.view_mode):.2e}"
    )
    seq, bat = statistics.mean(times["cmerc-sequential"]), statistics.mean(times["cmerc-batched"])
    print(f"stacked views (one pass) take {bat / seq:.2f}× the time of one view per pass")
    if has_stages:
        unshared = statistics.mean(times["cmerc-unshared"])
        print(f"shared unimodal encodings vs a full pass per view: {unshared / seq:.2f}× faster")
    else:
        print(
            f"cmerc-unshared skipped: {type(model).__name__} has no stages (`_contextual_stages`), "
            "so cmerc-sequential already runs one full pass per view"
        )

    if args.profile:
        default = (
            "cmerc-sequential" if device.type == "cpu" else "cmerc-batched"
        )  # removal_view_logits' choice
        profiled = {"plain": None, default: modes[default]}
        parts: dict[str, list[dict[str, float]]] = {name: [] for name in profiled}
        for batch in batches[args.warmup :]:
            for name, method in profiled.items():
                parts[name].append(profile_step(model, optimizer, batch, method, device))
        medians = {
            name: {part: statistics.median(run[part] for run in runs) for part in runs[0]}
            for name, runs in parts.items()
        }
        print()
        print(
            f"parts of one step, each timed on its own, median of {args.steps} (cmerc: {default}, the default)"
        )
        print("| part | plain s | cmerc s |")
        print("|---|---|---|")
        for part, label in PARTS.items():
            cells = [f"{medians[name][part]:.3f}" if part in medians[name] else "–" for name in profiled]
            print(f"| {label} | {' | '.join(cells)} |")
        sums = [f"{sum(medians[name].values()):.3f}" for name in profiled]
        print(f"| sum | {' | '.join(sums)} |")
        whole = [f"{statistics.median(times[name]):.3f}" for name in profiled]
        print(f"| whole step (timed above, median) | {' | '.join(whole)} |")


if __name__ == "__main__":
    main()
