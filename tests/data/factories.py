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
