"""Peak memory of a first dataset build (fresh cache), the old build path against today's, side by side.

    python benchmarks/build_memory.py                       # 200 MiB MMSA pickle, real MELD CSVs, MELD x1/20/100
    python benchmarks/build_memory.py --mmsa_mib 50 --meld_dir /path/to/meld
    python benchmarks/build_memory.py --mmsa_mib 0 --meld_scale 1 10   # MELD only, x1 and x10

Each (case, path) runs in a fresh subprocess with its own empty cache folder; after the imports the child
records its resident set, builds the dataset once, and reports the increase of its peak resident set
(``resource.getrusage(...).ru_maxrss``, a high-water mark) over that starting point, next to the input size.
Linux carries ``ru_maxrss`` across ``exec``, so the parent stays small: it only starts processes (the MMSA
pickle is written by one of its own) and prints.

* ``before``: the previous build path — the whole pickle read into one ``bytes`` object and unpickled from
  it, the reader's corpus materialised (each MELD CSV grouped in memory by dialogue and every record
  built, as the reader does for a CSV whose dialogues are not contiguous, instead of a ``RecordStream``),
  then ``Dataset.from_generator`` over each split with ``datasets``' default writer batches (1000 rows at
  a time). The readers themselves are today's.
* ``after``: ``merc_hf.load_dataset`` as it is now (the reader and unpickler as installed, MELD CSV splits
  streamed from the files, Arrow written in batches bounded to ``merc_hf.data.builders.WRITE_BATCH_BYTES``).

The MMSA case writes a CH-SIMS-layout pickle (``tests/data/factories.py``'s ``mmsa_data``, real CH-SIMS
padded lengths 39/400/55 and dimensions 768/33/709, protocol 4 as Python 3 writes them) of about
``--mmsa_mib`` MiB into a temporary folder (``--mmsa_mib 0`` skips it). The MELD cases read the official
CSVs without a text encoder (records hold transcripts, speakers and labels; no text features are computed),
first the real files, then, for each ``--meld_scale`` K, a generated MELD-layout CSV set in the temporary
folder that repeats every dialogue of the real files K times under fresh ``Dialogue_ID`` s (each split's ids
kept clear of the others' after the reader's dev/test offsets). A peak increase that stays flat as K grows
is a fixed overhead; one that grows with K scales with the input. The target is a peak increase of at most
1.3x the input size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bytes per CH-SIMS sample at padded lengths (39, 400, 55): text 39x768, text_bert 3x39, audio 400x33,
# vision 55x709, all float32
_SIMS_SAMPLE_BYTES = 4 * (39 * 768 + 3 * 39 + 400 * 33 + 55 * 709)


def write_mmsa(folder: Path, mib: float) -> Path:
    """A CH-SIMS ``unaligned_39.pkl`` of about ``mib`` MiB in ``folder`` (60/20/20 split)."""
    sys.path.insert(0, os.fspath(ROOT))
    from tests.data.factories import write_mmsa_pickle

    n = max(5, round(mib * 2**20 / _SIMS_SAMPLE_BYTES))
    sizes = (n - 2 * (n // 5), n // 5, n // 5)
    path = folder / "unaligned_39.pkl"
    write_mmsa_pickle(path, "chsims", sizes, seq=(39, 400, 55))
    return path


def write_scaled_meld(source: Path, folder: Path, scale: int) -> None:
    """Write the real MELD CSVs of ``source`` into ``folder`` with every dialogue repeated ``scale`` times.

    Copy ``k`` of a split's dialogue ``d`` gets the id ``base + k * stride + d``, ``stride`` one more than
    the split's largest id, and ``base`` the smallest value that keeps the split's ids, after the reader's
    offset for that split, above every id of the splits written before it (the reader refuses an id in two
    splits). At ``scale`` 1 the ids are the real ones. Rows are streamed copy by copy; ``Sr No.`` is
    renumbered.
    """
    from merc_hf.data.readers.meld import CSV_NAMES, DEV_OFFSET, TEST_OFFSET

    offsets = {"train": 0, "validation": DEV_OFFSET, "test": TEST_OFFSET}
    highest = -1  # the largest id written so far, after the reader's offset
    for split, name in CSV_NAMES.items():
        with open(source / name, encoding="utf-8", newline="") as fh:
            header, *rows = list(csv.reader(fh))
        at_id, at_number = header.index("Dialogue_ID"), header.index("Sr No.")
        stride = max(int(row[at_id]) for row in rows) + 1
        base = max(0, highest + 1 - offsets[split])
        number = 0
        with open(folder / name, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for copy in range(scale):
                for row in rows:
                    number += 1
                    copied = list(row)
                    copied[at_id] = str(base + copy * stride + int(row[at_id]))
                    copied[at_number] = str(number)
                    writer.writerow(copied)
        highest = offsets[split] + base + scale * stride - 1


def _rss_kib() -> int:
    """The current resident set in KiB (``/proc``), or the peak so far where ``/proc`` is absent."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def old_build(name: str, data_dir: str, cache_dir: str) -> None:
    """The build path before bounded-memory writing: bytes-copy unpickling, whole corpus, from_generator."""
    import datasets

    from merc_hf.data import _reader, safe_pickle
    from merc_hf.data.builders import corpus_features
    from merc_hf.data.readers import common, iemocap, meld, mmsa

    def load_from_bytes(path: str | os.PathLike, *, encoding: str = "latin1"):
        return safe_pickle.loads(Path(path).read_bytes(), encoding=encoding, source=path)

    for module in (mmsa, common, iemocap, meld):
        if hasattr(module, "load_pickle"):
            module.load_pickle = load_from_bytes
    # no CSV counts as checked for streaming, so each is read into memory whole
    meld._scan_csv = lambda *args, **kwargs: None
    corpus = _reader(name)(data_dir)
    features = corpus_features(corpus)

    def generate(split: str):
        yield from corpus.splits[split]

    datasets.disable_progress_bars()
    for split in corpus.splits:
        datasets.Dataset.from_generator(
            generate,
            features=features,
            gen_kwargs={"split": split},
            cache_dir=cache_dir,
            fingerprint=f"{name}-{split}",
            split=datasets.NamedSplit(split),
        )


def child(name: str, data_dir: str, path: str, cache_dir: str) -> None:
    """Build once in this (fresh) process and print the measurements as JSON."""
    import datasets  # noqa: F401  (imported before the baseline, as both paths need it)

    import merc_hf
    from merc_hf.data import builders, safe_pickle  # noqa: F401

    start = _rss_kib()
    t0 = time.perf_counter()
    if path == "before":
        old_build(name, data_dir, cache_dir)
    else:
        merc_hf.load_dataset(name, data_dir, cache_dir=cache_dir)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"start_mib": start / 1024, "increase_mib": (peak - start) / 1024, "seconds": seconds}))


def measure(name: str, data_dir: Path, path: str, scratch: Path) -> dict[str, float]:
    cache = tempfile.mkdtemp(dir=scratch, prefix=f"cache-{name}-{path}-")
    env = {**os.environ, "MERC_HF_CACHE": cache, "HF_DATASETS_CACHE": cache, "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, os.fspath(data_dir), path, cache],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(cache, ignore_errors=True)
    if out.returncode:
        raise RuntimeError(f"{name}/{path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mmsa_mib", type=float, default=200.0, help="size of the generated MMSA pickle (0: no MMSA case)"
    )
    parser.add_argument("--meld_dir", default=os.fspath(ROOT.parent / "shared" / "data" / "meld"))
    parser.add_argument(
        "--meld_scale",
        type=int,
        nargs="*",
        default=[1, 20, 100],
        metavar="K",
        help="generated MELD cases: the real CSVs' dialogues repeated K times (none: real files only)",
    )
    parser.add_argument(
        "--child", nargs=4, metavar=("NAME", "DATA_DIR", "PATH", "CACHE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--write_mmsa", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--write_meld", nargs=2, metavar=("FOLDER", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.write_mmsa:
        write_mmsa(Path(args.write_mmsa), args.mmsa_mib)
        return
    if args.write_meld:
        write_scaled_meld(Path(args.meld_dir), Path(args.write_meld[0]), int(args.write_meld[1]))
        return
    with tempfile.TemporaryDirectory(prefix="merc_hf_build_memory_") as tmp:
        scratch = Path(tmp)
        # (label, dataset name, folder, input bytes); inputs are written by children, so the parent's
        # resident set, which a child starts from, stays small
        cases: list[tuple[str, str, Path, int]] = []
        if args.mmsa_mib > 0:
            mmsa_dir = scratch / "chsims"
            mmsa_dir.mkdir()
            write = ["--write_mmsa", os.fspath(mmsa_dir), "--mmsa_mib", str(args.mmsa_mib)]
            subprocess.run([sys.executable, __file__, *write], check=True)
            cases.append(("chsims", "chsims", mmsa_dir, (mmsa_dir / "unaligned_39.pkl").stat().st_size))
        meld_dir = Path(args.meld_dir)
        if meld_dir.is_dir():
            cases.append(("meld", "meld", meld_dir, _meld_size(meld_dir)))
            for scale in args.meld_scale:
                folder = scratch / f"meld-x{scale}"
                folder.mkdir()
                write = ["--meld_dir", os.fspath(meld_dir), "--write_meld", os.fspath(folder), str(scale)]
                subprocess.run([sys.executable, __file__, *write], check=True)
                cases.append((f"meld x{scale}", "meld", folder, _meld_size(folder)))
        else:
            print(f"(MELD CSVs not found at {meld_dir}; skipped)")
        header = f"{'case':<11}{'input MiB':>10}  {'path':<7}{'peak +MiB':>10}{'x input':>9}{'build s':>9}"
        print(header)
        print("-" * len(header))
        for label, name, folder, size in cases:
            for path in ("before", "after"):
                result = measure(name, folder, path, scratch)
                ratio = result["increase_mib"] * 2**20 / size
                print(
                    f"{label:<11}{size / 2**20:>10.1f}  {path:<7}{result['increase_mib']:>10.1f}{ratio:>9.2f}"
                    f"{result['seconds']:>9.2f}",
                    flush=True,
                )
            if name == "meld" and folder.parent == scratch:
                # a generated set is not needed once measured
                for p in folder.glob("*.csv"):
                    p.unlink()


def _meld_size(folder: Path) -> int:
    """Total bytes of the three MELD CSVs in ``folder``."""
    return sum(p.stat().st_size for p in folder.glob("*_sent_emo.csv"))


if __name__ == "__main__":
    main()
