"""Load time (and peak memory) of the data readers before and after the checked unpickler, side by side.

"Before" is the data layer of a git revision (``--before``, default ``HEAD``), extracted with
``git archive`` into a temporary folder; "after" is the working tree. Both are imported without
``merc_hf/__init__`` (no torch) in fresh child processes, which alternate so that the load of a shared
machine hits both alike; each figure is the median of ``--repeats`` runs.

Files: the real MELD CSVs and ECF text files from ``../shared/data``, and pickles built from the real MELD
CSVs in the layouts of the reference files (the real pickles are download-only): ``meld.pkl`` (COSMIC
7-list, transcripts with the Windows-1252 quotes read as latin-1, as in the real file),
``MELD_features_raw1.pkl`` (the 10-tuple with the real dialogue structure and random float32 features of
the real sizes 600/300/342) and an MMSA-layout pickle of ``--mmsa_mib`` MiB, whose peak memory is also
reported (peak RSS during the load minus RSS before it).

    python benchmarks/load_real_files.py [--repeats 3] [--mmsa_mib 200]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

CHILD = r"""
import json, sys, time, types, warnings
warnings.simplefilter("ignore")
src, kind, path = sys.argv[1:4]
for name in ("merc_hf", "merc_hf.data", "merc_hf.data.readers"):
    module = types.ModuleType(name)
    module.__path__ = [src + "/" + name.replace(".", "/")]
    sys.modules[name] = module
from merc_hf.data import safe_pickle
from merc_hf.data.readers import ecf, meld

def rss_kib():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))

LOADERS = {
    # every record read (a split may be a stream that reads its CSV when iterated)
    "meld_csv": lambda p: [list(split) for split in meld.read_meld(p, text="none").splits.values()],
    "ecf_txt": ecf.read_ecf,
    "meld_pkl": lambda p: meld.read_meld(transcripts_file=p),
    "meld_raw1": lambda p: meld.read_meld(features_file=p),
    "mmsa_pickle": safe_pickle.load_pickle,
}
before = rss_kib()
start = time.perf_counter()
result = LOADERS[kind](path)
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter keeps the peak of the parent this child was forked from
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_increase_mib": (peak - before) / 1024}))
"""


def run(src: Path, kind: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), kind, str(path)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} with {src} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def meld_pickles(folder: Path) -> tuple[Path, Path]:
    """``meld.pkl`` and ``MELD_features_raw1.pkl`` in the reference layouts, from the real CSVs."""
    sys.path.insert(0, str(ROOT / "src"))
    import csv

    dialogues: dict[int, list[dict]] = {}
    splits: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    offsets = {"train": 0, "dev": 1039, "test": 1153}
    for name, offset in offsets.items():
        with open(SHARED / "meld" / f"{name}_sent_emo.csv", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                vid = offset + int(row["Dialogue_ID"])
                if vid not in dialogues:
                    dialogues[vid] = []
                    splits["validation" if name == "dev" else name].append(vid)
                dialogues[vid].append(row)
    emotions = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
    sentiments = ["neutral", "positive", "negative"]
    speakers, labels, sentiment, sentences = {}, {}, {}, {}
    for vid, rows in dialogues.items():
        rows.sort(key=lambda r: int(r["Utterance_ID"]))
        order: dict[str, int] = {}
        speakers[vid] = [
            [float(j == order.setdefault(r["Speaker"], len(order))) for j in range(9)] for r in rows
        ]
        labels[vid] = [emotions.index(r["Emotion"]) for r in rows]
        sentiment[vid] = [sentiments.index(r["Sentiment"]) for r in rows]
        sentences[vid] = [r["Utterance"].encode("cp1252", "replace").decode("latin-1") for r in rows]
    transcripts = folder / "meld.pkl"
    with transcripts.open("wb") as fh:
        pickle.dump(
            [speakers, labels, sentiment, sentences, splits["train"], splits["test"], splits["validation"]],
            fh,
            protocol=2,
        )
    rng = np.random.default_rng(0)

    def features(dim: int) -> dict:
        return {v: [rng.normal(size=dim).astype(np.float32) for _ in labels[v]] for v in labels}

    fields = (
        {v: list(range(len(labels[v]))) for v in labels}, speakers, labels, features(600), features(300),
        features(342), sentences, splits["train"] + splits["validation"], splits["test"], None,
    )  # fmt: skip
    raw1 = folder / "MELD_features_raw1.pkl"
    with raw1.open("wb") as fh:
        pickle.dump(fields, fh, protocol=2)
    return transcripts, raw1


def mmsa_pickle(folder: Path, mib: int) -> Path:
    """An MMSA-layout pickle of about ``mib`` MiB (CH-SIMS dims; protocol 4, as Python 3 writes them)."""
    per_sample = (39 * 768 + 400 * 33 + 55 * 709) * 4
    n = max(3, mib * 2**20 // per_sample)
    rng = np.random.default_rng(0)
    data = {}
    for split, size in (("train", n * 6 // 10), ("valid", n * 2 // 10), ("test", n - n * 8 // 10)):
        data[split] = {
            "id": [f"{split}_{i:05d}$_$0001" for i in range(size)],
            "raw_text": [f"clip {i}" for i in range(size)],
            "text": rng.normal(size=(size, 39, 768)).astype(np.float32),
            "audio": rng.normal(size=(size, 400, 33)).astype(np.float32),
            "vision": rng.normal(size=(size, 55, 709)).astype(np.float32),
            "regression_labels": rng.uniform(-1, 1, size).astype(np.float32),
        }
    path = folder / "unaligned_39.pkl"
    with path.open("wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="HEAD", help="git revision whose data layer is 'before'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mmsa_mib", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        before.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "src/merc_hf/data"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        trees = {"before": before / "src", "after": ROOT / "src"}
        transcripts, raw1 = meld_pickles(tmp)
        mmsa = mmsa_pickle(tmp, args.mmsa_mib)
        jobs = [
            ("meld_csv", SHARED / "meld", "real MELD CSVs (13,708 utterances)"),
            ("ecf_txt", SHARED / "ecf", "real ECF 1.0 text files (1,374 conversations)"),
            (
                "meld_pkl",
                transcripts,
                f"meld.pkl from the CSVs ({transcripts.stat().st_size / 2**20:.1f} MiB)",
            ),
            ("meld_raw1", raw1, f"MELD_features_raw1.pkl layout ({raw1.stat().st_size / 2**20:.0f} MiB)"),
            ("mmsa_pickle", mmsa, f"MMSA pickle, load_pickle only ({mmsa.stat().st_size / 2**20:.0f} MiB)"),
        ]
        print(
            f"before = {args.before}'s src/merc_hf/data, after = working tree; median of {args.repeats} runs"
        )
        print(
            f"{'input':58s} {'before s':>9s} {'after s':>9s} {'ratio':>6s} {'peak+ before':>13s} {'peak+ after':>12s}"
        )
        for kind, path, label in jobs:
            results: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                for name, src in trees.items():
                    results[name].append(run(src, kind, path))
            sec = {n: statistics.median(r["seconds"] for r in rs) for n, rs in results.items()}
            peak = {n: statistics.median(r["peak_increase_mib"] for r in rs) for n, rs in results.items()}
            size = path.stat().st_size / 2**20 if path.is_file() else None
            peak_text = {
                n: f"{peak[n]:.0f} MiB" + (f" ({peak[n] / size:.2f}x)" if size and size > 50 else "")
                for n in peak
            }
            print(
                f"{label:58s} {sec['before']:9.2f} {sec['after']:9.2f} {sec['after'] / sec['before']:6.2f} "
                f"{peak_text['before']:>13s} {peak_text['after']:>12s}"
            )


if __name__ == "__main__":
    main()
