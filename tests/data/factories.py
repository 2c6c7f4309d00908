"""Small feature pickles in the exact layouts of the reference files, for tests.

Real IEMOCAP/MELD feature pickles are hundreds of MB behind download links; these factories write
files with the same field order, key types and per-utterance value types, with small random features.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from merc_hf.data.readers import iemocap, meld


def iemocap_fields(n_train: int = 10, n_test: int = 3, dims=(100, 1582, 342), seed: int = 0) -> dict:
    """Fields of ``IEMOCAP_features.pkl`` (dicts keyed by ids like ``Ses01F_impro01``)."""
    rng = np.random.default_rng(seed)
    train = [f"Ses0{1 + i % 4}F_impro{i:02d}" for i in range(n_train)]
    test = [f"Ses05M_script{i:02d}" for i in range(n_test)]
    f = {name: {} for name in iemocap.FEATURE_FIELDS[:7]}
    for k, vid in enumerate(train + test):
        n = 3 + k % 5
        f["videoIDs"][vid] = [f"{vid}_{u:03d}" for u in range(n)]
        f["videoSpeakers"][vid] = ["F" if (u + k) % 3 else "M" for u in range(n)]
        f["videoLabels"][vid] = [int(x) for x in rng.integers(0, 6, n)]
        f["videoText"][vid] = [rng.normal(size=dims[0]).astype(np.float32) for _ in range(n)]
        f["videoAudio"][vid] = [rng.normal(size=dims[1]).astype(np.float32) for _ in range(n)]
        f["videoVisual"][vid] = [rng.normal(size=dims[2]).astype(np.float32) for _ in range(n)]
        f["videoSentence"][vid] = [f"utterance {u} of {vid}" for u in range(n)]
    f["trainVid"], f["testVid"] = train, test
    return f


def iemocap_roberta(fields: dict, seed: int = 1) -> list:
    """The COSMIC ``iemocap_features_roberta.pkl`` 10-list for the same dialogues (COSMIC splits)."""
    rng = np.random.default_rng(seed)
    ids = list(fields["videoLabels"])
    layers = [
        {v: [rng.normal(size=1024).astype(np.float32) for _ in fields["videoLabels"][v]] for v in ids}
        for _ in range(4)
    ]
    train = fields["trainVid"]
    return [
        fields["videoSpeakers"], fields["videoLabels"], *layers, fields["videoSentence"],
        train[:-1], fields["testVid"], train[-1:],
    ]  # fmt: skip


def iemocap_transcripts(fields: dict) -> list:
    """The COSMIC ``iemocap.pkl`` 6-list."""
    train = fields["trainVid"]
    return [
        fields["videoSpeakers"],
        fields["videoLabels"],
        fields["videoSentence"],
        train[:-1],
        fields["testVid"],
        train[-1:],
    ]


def meld_fields(
    n_train: int = 6, n_dev: int = 2, n_test: int = 3, dims=(600, 300, 342), seed: int = 0
) -> dict:
    """Fields of ``MELD_features_raw1.pkl`` (int keys; train+dev merged in ``trainVid``)."""
    rng = np.random.default_rng(seed)
    train = list(range(n_train))
    dev = [meld.DEV_OFFSET + i for i in range(n_dev)]
    test = [meld.TEST_OFFSET + i for i in range(n_test)]
    f = {name: {} for name in meld.FEATURE_FIELDS[:7]}
    for k, vid in enumerate(train + dev + test):
        n = 1 + k % 6
        f["videoIDs"][vid] = list(range(n))
        order = [(u * 7 + k) % 3 for u in range(n)]
        f["videoSpeakers"][vid] = [[1.0 if j == s else 0.0 for j in range(9)] for s in order]
        f["videoLabels"][vid] = [int(x) for x in rng.integers(0, 7, n)]
        f["videoText"][vid] = [rng.normal(size=dims[0]).astype(np.float32) for _ in range(n)]
        f["videoAudio"][vid] = [rng.normal(size=dims[1]).astype(np.float32) for _ in range(n)]
        f["videoVisual"][vid] = [rng.normal(size=dims[2]).astype(np.float32) for _ in range(n)]
        f["videoSentence"][vid] = [f"line {u}" for u in range(n)]
    f["trainVid"], f["testVid"] = train + dev, test
    f["unused"] = None
    return f


def dump(path: Path, obj, protocol: int = 2) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def write_iemocap_features(path: Path, fields: dict) -> Path:
    return dump(path, tuple(fields[name] for name in iemocap.FEATURE_FIELDS))


def write_meld_features(path: Path, fields: dict) -> Path:
    return dump(path, tuple(fields[name] for name in meld.FEATURE_FIELDS))


# --- MMSA pickles (CH-SIMS, CH-SIMS v2, MOSI, MOSEI; reference notes §1.6) --------------------------

# Real feature sizes (audio, vision) of each dataset; text is 768-d BERT everywhere.
MMSA_DIMS = {"chsims": (33, 709), "chsims2": (25, 177), "mosi": (5, 20), "mosei": (74, 35)}
MMSA_SPLITS = ("train", "valid", "test")


def mmsa_data(
    dataset: str = "chsims",
    n: tuple[int, int, int] = (6, 3, 3),
    *,
    seq: tuple[int, int, int] = (8, 12, 10),
    dims: tuple[int, int] | None = None,
    text: tuple[str, ...] = ("text", "text_bert", "raw_text"),
    seed: int = 0,
) -> dict:
    """The MMSA pickle dict ``{"train", "valid", "test"}``, each with the per-sample fields of §1.6.

    ``seq`` are the padded lengths (text, audio, vision); the true lengths vary from 1 to the padded
    length; features are random everywhere, padding included, so trimming is visible. ``text`` chooses
    which of the text fields exist. SIMS datasets get ``regression_labels_T/A/V``; every split also has
    ``annotations`` and deliberately wrong ``classification_labels`` (all 1), which the reader ignores.
    Regression labels cycle through the 0.2-step grid (SIMS) or a few MOSI-like values, exactly 0 included.
    """
    rng = np.random.default_rng(seed)
    sims = dataset in ("chsims", "chsims2")
    d_audio, d_vision = dims or MMSA_DIMS[dataset]
    l_text, l_audio, l_vision = seq
    grid = [k / 5 for k in range(-5, 6)] if sims else [-3.0, -1.4, -0.2, 0.0, 0.6, 1.8, 3.0]
    data = {}
    offset = 0
    for split, size in zip(MMSA_SPLITS, n):
        k = np.arange(offset, offset + size)
        text_len = 1 + k % l_text
        mask = (np.arange(l_text)[None, :] < text_len[:, None]).astype(np.float32)
        tokens = rng.integers(100, 21128, size=(size, l_text)).astype(np.float32) * mask
        labels = np.asarray([grid[(3 * i) % len(grid)] for i in k], dtype=np.float32)
        fields = {
            "raw_text": [f"第{i}个片段，我很开心" if sims else f"clip {i} is fine" for i in k],
            "id": [f"video_{i // 3:04d}$_${i % 3 + 1:04d}" for i in k],
            "text": rng.normal(size=(size, l_text, 768)).astype(np.float32),
            "text_bert": np.stack([tokens, mask, np.zeros_like(mask)], axis=1),
            "audio": rng.normal(size=(size, l_audio, d_audio)).astype(np.float32),
            "vision": rng.normal(size=(size, l_vision, d_vision)).astype(np.float32),
            "audio_lengths": [int(x) for x in 1 + (k * 5) % l_audio],
            "vision_lengths": [int(x) for x in 1 + (k * 3) % l_vision],
            "regression_labels": labels,
            "annotations": ["Negative" if y < 0 else "Neutral" if y == 0 else "Positive" for y in labels],
            "classification_labels": np.ones(size, dtype=np.float32),
        }
        if sims:
            for shift, suffix in ((0, "T"), (1, "A"), (2, "V")):
                fields[f"regression_labels_{suffix}"] = np.asarray(
                    [grid[(3 * i + shift * (i % 2)) % len(grid)] for i in k], dtype=np.float32
                )
        for name in ("text", "text_bert", "raw_text"):
            if name not in text:
                del fields[name]
        data[split] = fields
        offset += size
    return data


def write_mmsa_pickle(
    path: Path,
    dataset: str = "chsims",
    n: tuple[int, int, int] = (6, 3, 3),
    *,
    data: dict | None = None,
    **kwargs,
) -> dict:
    """Write an MMSA pickle (protocol 4, as Python 3 writes them) at ``path`` and return its dict.

    ``data`` writes a given (e.g. deliberately broken) dict instead of a fresh :func:`mmsa_data`.
    """
    data = mmsa_data(dataset, n, **kwargs) if data is None else data
    path.parent.mkdir(parents=True, exist_ok=True)
    dump(path, data, protocol=4)
    return data
