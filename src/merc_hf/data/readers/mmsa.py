"""CH-SIMS, CH-SIMS v2, CMU-MOSI and CMU-MOSEI from the MMSA feature pickles (utterance level).

One record is one video clip (an utterance), not a dialogue. Layout of the pickle (reference notes §1.6,
from the MMSA and MMSA-FET loaders): a dict ``{"train", "valid", "test"}`` (``valid`` becomes the
``validation`` split; other top-level keys such as SIMS v2's ``train_mix`` are not read), each a dict of
per-sample fields with ``N`` samples:

==========================  =================================================================
``id``                      ``"<video_id>$_$<clip_id>"`` (required) → ``sample_id``
``raw_text``                transcript (optional) → ``transcript``
``text``                    ``(N, L_t, 768)`` BERT feature sequences
``text_bert``               ``(N, 3, L_t)`` token ids, attention mask, segment ids: the true text
                            length is the sum of the attention-mask row (used to trim ``text``)
``audio``, ``vision``       ``(N, L_a, D_a)``, ``(N, L_v, D_v)`` padded feature sequences (required)
``audio_lengths``,          ``(N,)`` true lengths (optional; absent: the full padded length)
``vision_lengths``
``regression_labels``       ``(N,)`` multimodal label M (required): SIMS/SIMS v2 in [-1, 1],
                            MOSI/MOSEI in [-3, 3]
``regression_labels_T/A/V`` ``(N,)`` unimodal labels, SIMS/SIMS v2 only (all three or none)
==========================  =================================================================

``annotations`` and ``classification_labels[_T/_A/_V]`` are ignored: the classes are derived from the
regression labels by sign, as CMC does (reference notes §1.6): ``< 0`` → 0 negative, ``= 0`` → 1
neutral, ``> 0`` → 2 positive, for M and (SIMS only) for T/A/V. MOSI/MOSEI have no unimodal labels, so
their records have no ``label_text``/``label_audio``/``label_visual`` keys (the collator fills -100).

Records (see :mod:`merc_hf.data.records`): ``sample_id``, ``transcript`` (when ``raw_text`` exists),
``text``/``audio``/``visual`` float32 ``(L_m, D_m)`` trimmed to the true length (MMSA's ``vision`` is
``visual`` here), ``regression_label`` and ``label``, and for SIMS/SIMS v2 ``regression_label_text``,
``regression_label_audio``, ``regression_label_visual`` and ``label_text``, ``label_audio``,
``label_visual``.

Feature dimensions are read from the arrays, never from a table: MMSA's configuration lists the SIMS
dims for SIMS v2, which has 25-d audio and 177-d vision (reference notes §1.6, §5.1).

Checks and repairs, all explicit:

* ``-inf`` in ``audio`` is set to 0, as MMSA's loader does (``data_loader.py`` L87, reference notes
  §1.6); one warning gives the count. This is the only documented MMSA quirk, so NaN, ``+inf``, and
  ``-inf`` in any other modality are a :class:`~merc_hf.data.errors.DataFormatError`.
* A true length of 0 keeps a single zero frame (every record has at least one frame per modality, which
  the models' masked pooling needs); one warning per split gives the count. A negative length, or one
  longer than the padded array, is an error.
* A missing split or required field, a wrong number of dimensions, fields whose sample counts disagree,
  a non-numeric array, a non-finite or out-of-range label, a duplicated id, an empty split, or an
  attention mask that is not a 0/1 prefix is a :class:`~merc_hf.data.errors.DataFormatError` naming
  the file, the field and, where it applies, the split (as named in the file) and the sample id (also
  the error's ``split`` and ``sample`` attributes).

Pickles are untrusted input and go through :func:`merc_hf.data.safe_pickle.load_pickle`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFormatError, file_errors
from ..records import Corpus, refuse_split_leaks
from ..safe_pickle import load_pickle

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "FILE_NAMES",
    "MmsaDataset",
    "read_chsims",
    "read_chsims2",
    "read_mmsa",
    "read_mosei",
    "read_mosi",
    "sentiment_class",
]

CLASS_NAMES = ["negative", "neutral", "positive"]
# File names used by MMSA (``unaligned_39.pkl``, ``unaligned_50.pkl``) and CMC (``unaligned.pkl``),
# looked for in ``data_dir`` and ``data_dir/Processed`` (reference notes §1.6).
FILE_NAMES = ("unaligned_39.pkl", "unaligned.pkl", "unaligned_50.pkl")
SPLIT_KEYS = {"train": "train", "validation": "valid", "test": "test"}
# MMSA field → record modality
MODALITY_FIELDS = {"audio": "audio", "visual": "vision"}
UNIMODAL_FIELDS = {
    "text": "regression_labels_T",
    "audio": "regression_labels_A",
    "visual": "regression_labels_V",
}
# Labels within this distance outside the documented range are float rounding, not an error.
_LABEL_SLACK = 1e-5


@dataclass(frozen=True)
class MmsaDataset:
    """What differs between the four datasets of the MMSA family."""

    name: str
    title: str
    label_bound: float
    has_unimodal: bool
    citation: str
    homepage: str


DATASETS: dict[str, MmsaDataset] = {
    "chsims": MmsaDataset(
        "chsims",
        "CH-SIMS (Mandarin video clips)",
        1.0,
        True,
        "Yu et al., CH-SIMS: A Chinese Multimodal Sentiment Analysis Dataset with Fine-grained Annotation "
        "of Modality, ACL 2020.",
        "https://github.com/thuiar/MMSA",
    ),
    "chsims2": MmsaDataset(
        "chsims2",
        "CH-SIMS v2.0 (Mandarin video clips)",
        1.0,
        True,
        "Liu et al., Make Acoustic and Visual Cues Matter: CH-SIMS v2.0 Dataset and AV-Mixup Consistent "
        "Module, ICMI 2022.",
        "https://github.com/thuiar/ch-sims-v2",
    ),
    "mosi": MmsaDataset(
        "mosi",
        "CMU-MOSI (English opinion video clips)",
        3.0,
        False,
        "Zadeh et al., MOSI: Multimodal Corpus of Sentiment Intensity and Subjectivity Analysis in Online "
        "Opinion Videos, IEEE Intelligent Systems 2016.",
        "http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/",
    ),
    "mosei": MmsaDataset(
        "mosei",
        "CMU-MOSEI (English opinion video clips)",
        3.0,
        False,
        "Zadeh et al., Multimodal Language Analysis in the Wild: CMU-MOSEI Dataset and Interpretable "
        "Dynamic Fusion Graph, ACL 2018.",
        "http://multicomp.cs.cmu.edu/resources/cmu-mosei-dataset/",
    ),
}


def sentiment_class(value: float) -> int:
    """CMC's 3-class rule (reference notes §1.6): ``< 0`` → 0, ``= 0`` → 1, ``> 0`` → 2."""
    return 0 if value < 0 else (1 if value == 0 else 2)


def find_mmsa_pickle(data_dir: str | os.PathLike | None, pickle_file: str | os.PathLike | None) -> Path:
    """The pickle to read: ``pickle_file``, ``data_dir`` itself when it is a file, or the one file in
    ``data_dir`` or ``data_dir/Processed`` named like :data:`FILE_NAMES`."""
    if pickle_file is not None:
        path = Path(pickle_file)
        if not path.is_file():
            raise DataFormatError("file not found", file=path)
        return path
    if data_dir is None:
        raise DataFormatError(
            f"no MMSA pickle given: pass data_dir (a folder with one of {list(FILE_NAMES)}, also looked for "
            "under Processed/) or pickle_file="
        )
    root = Path(data_dir)
    if root.is_file():
        return root
    if not root.is_dir():
        raise DataFormatError("data_dir does not exist", file=root)
    looked = [folder / name for folder in (root, root / "Processed") for name in FILE_NAMES]
    found = [p for p in looked if p.is_file()]
    if len(found) == 1:
        return found[0]
    tried = ", ".join(os.fspath(p.relative_to(root)) for p in looked)
    if not found:
        raise DataFormatError(
            f"no MMSA pickle found; looked for {tried}. Pass pickle_file= for another name", file=root
        )
    raise DataFormatError(
        f"several MMSA pickles found ({', '.join(os.fspath(p.relative_to(root)) for p in found)}); "
        "pass pickle_file= to choose one",
        file=root,
    )


class _Split:
    """Checked access to the fields of one split of one MMSA pickle."""

    def __init__(self, data: Any, *, file: str, split: str) -> None:
        self.file, self.split = file, split
        if not isinstance(data, Mapping):
            raise DataFormatError(
                f"expected a dict of fields, got {type(data).__name__}", file=file, field=split
            )
        self.data = data
        self.ids = self._ids()
        self.n = len(self.ids)

    def has(self, field: str) -> bool:
        return field in self.data and self.data[field] is not None

    def error(self, message: str, field: str, index: int | None = None) -> DataFormatError:
        sample = None if index is None else self.ids[index]
        return DataFormatError(message, file=self.file, field=field, split=self.split, sample=sample)

    def _ids(self) -> list[str]:
        if not self.has("id"):
            raise DataFormatError("required field missing", file=self.file, field="id", split=self.split)
        raw = self.data["id"]
        if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray)):
            raise DataFormatError(
                f"expected one id per sample, got {type(raw).__name__}",
                file=self.file,
                field="id",
                split=self.split,
            )
        ids = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in np.asarray(raw).reshape(-1)
        ]
        seen: set[str] = set()
        for vid in ids:
            if vid in seen:
                raise DataFormatError(
                    "sample id listed twice", file=self.file, field="id", split=self.split, sample=vid
                )
            seen.add(vid)
        if not ids:
            raise DataFormatError("split has no samples", file=self.file, field="id", split=self.split)
        return ids

    def array(self, field: str, ndim: int) -> np.ndarray:
        """A required numeric per-sample array with ``ndim`` dimensions and ``N`` rows, as float32."""
        if not self.has(field):
            raise self.error("required field missing", field)
        try:
            arr = np.asarray(self.data[field])
        except (ValueError, TypeError) as exc:
            raise self.error(f"cannot read as a numeric array ({exc})", field) from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise self.error(f"expected a numeric array, got dtype {arr.dtype}", field)
        if arr.dtype.kind == "c":
            raise self.error(
                f"complex-valued array ({arr.dtype}); converting it would drop the imaginary part", field
            )
        if ndim == 1 and arr.ndim == 2 and arr.shape[1] == 1:  # (N, 1) label columns
            arr = arr[:, 0]
        if arr.ndim != ndim:
            raise self.error(f"expected {ndim} dimensions, got an array of shape {arr.shape}", field)
        if arr.shape[0] != self.n:
            raise self.error(f"has {arr.shape[0]} samples but 'id' has {self.n}", field)
        return arr.astype(np.float32, copy=False)

    def lengths(self, field: str, padded: int, of: str) -> np.ndarray:
        """True sequence lengths from ``field`` (absent: all ``padded``), checked against ``0..padded``."""
        if not self.has(field):
            return np.full(self.n, padded, dtype=np.int64)
        values = self.array(field, 1).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if bad.size:
            raise self.error(f"length {values[bad[0]]!r} is not an integer", field, int(bad[0]))
        bad = np.flatnonzero(values < 0)
        if bad.size:
            raise self.error(f"negative length {int(values[bad[0]])}", field, int(bad[0]))
        bad = np.flatnonzero(values > padded)
        if bad.size:
            raise self.error(
                f"length {int(values[bad[0]])} exceeds the padded length {padded} of {of!r}",
                field,
                int(bad[0]),
            )
        return values.astype(np.int64)

    def labels(self, field: str, bound: float) -> np.ndarray:
        if np.asarray(self.data.get(field)).dtype == bool:
            raise self.error("labels are booleans, not sentiment scores", field)
        values = self.array(field, 1)
        bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > bound + _LABEL_SLACK))
        if bad.size:
            raise self.error(
                f"label {float(values[bad[0]])!r} is outside [{-bound:g}, {bound:g}]", field, int(bad[0])
            )
        return values

    def text_lengths(self, padded: int) -> np.ndarray:
        """Text lengths from the ``text_bert`` attention mask (which must be a 0/1 prefix of 1s)."""
        tokens = self.array("text_bert", 3)
        if tokens.shape[1] != 3:
            raise self.error(
                f"expected (N, 3, L) = ids, attention mask, segment ids; got shape {tokens.shape}",
                "text_bert",
            )
        mask = tokens[:, 1, :]
        bad = np.flatnonzero(~np.isin(mask, (0.0, 1.0)).all(axis=1))
        if bad.size:
            raise self.error(
                "attention mask (row 1) holds values other than 0 and 1", "text_bert", int(bad[0])
            )
        bad = np.flatnonzero((np.diff(mask, axis=1) > 0).any(axis=1))
        if bad.size:
            raise self.error(
                "attention mask (row 1) has a 1 after a 0 (not a prefix)", "text_bert", int(bad[0])
            )
        lengths = mask.sum(axis=1).astype(np.int64)
        bad = np.flatnonzero(lengths > padded)
        if bad.size:
            raise self.error(
                f"attention mask counts {int(lengths[bad[0]])} tokens but 'text' has {padded} positions",
                "text_bert",
                int(bad[0]),
            )
        return lengths

    def transcripts(self) -> list[str] | None:
        if not self.has("raw_text"):
            return None
        raw = self.data["raw_text"]
        if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray)):
            raise self.error(f"expected one transcript per sample, got {type(raw).__name__}", "raw_text")
        values = list(np.asarray(raw, dtype=object).reshape(-1))
        if len(values) != self.n:
            raise self.error(f"has {len(values)} samples but 'id' has {self.n}", "raw_text")
        out = []
        for index, value in enumerate(values):
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if not isinstance(value, str):
                raise self.error(f"transcript is {type(value).__name__}, not a string", "raw_text", index)
            out.append(value)
        return out


def _sequences(
    split: _Split,
    arr: np.ndarray,
    lengths: np.ndarray,
    field: str,
    *,
    fix_neg_inf: bool,
    counts: dict[str, int],
) -> list[np.ndarray]:
    """Per-sample float32 ``(L, D)`` sequences trimmed to ``lengths`` (0 → one zero frame)."""
    if arr.shape[2] == 0:
        raise split.error("feature dimension is 0", field)
    out = []
    for index, n in enumerate(lengths):
        if n == 0:
            counts["zero_length"] += 1
            out.append(np.zeros((1, arr.shape[2]), dtype=np.float32))
            continue
        # A view of the (float32) padded array, not a copy: the build then holds the file's arrays once.
        seq = arr[index, :n]
        if fix_neg_inf:
            neg_inf = np.isneginf(seq)
            if neg_inf.any():
                counts["neg_inf_values"] += int(neg_inf.sum())
                counts["neg_inf_samples"] += 1
                seq = np.where(neg_inf, np.float32(0.0), seq)
        if not np.isfinite(seq).all():
            frame = int(np.argwhere(~np.isfinite(seq))[0][0])
            raise split.error(f"NaN or infinite value at frame {frame}", field, index)
        out.append(seq)
    return out


def _read_split(
    split: _Split, spec: MmsaDataset, text: str, neg_inf: dict[str, int]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records of one split, and the number of zero-length sequences per field."""
    zero_length: dict[str, int] = {}
    columns: dict[str, list[np.ndarray]] = {}
    if text == "features":
        if not split.has("text"):
            raise split.error(
                "no BERT feature sequences in this file; load with text='none' (or text_encoder=...) to use "
                "the transcripts instead",
                "text",
            )
        features = split.array("text", 3)
        lengths = split.text_lengths(features.shape[1]) if split.has("text_bert") else None
        if lengths is None:
            lengths = np.full(split.n, features.shape[1], dtype=np.int64)
        counts = {"zero_length": 0}
        columns["text"] = _sequences(split, features, lengths, "text", fix_neg_inf=False, counts=counts)
        zero_length["text_bert mask sum"] = counts["zero_length"]
    for modality, field in MODALITY_FIELDS.items():
        features = split.array(field, 3)
        lengths = split.lengths(f"{field}_lengths", features.shape[1], field)
        counts = {"zero_length": 0, "neg_inf_values": 0, "neg_inf_samples": 0}
        columns[modality] = _sequences(
            split, features, lengths, field, fix_neg_inf=modality == "audio", counts=counts
        )
        zero_length[f"{field}_lengths"] = counts["zero_length"]
        if modality == "audio":
            neg_inf["values"] += counts["neg_inf_values"]
            neg_inf["samples"] += counts["neg_inf_samples"]

    label = split.labels("regression_labels", spec.label_bound)
    unimodal: dict[str, np.ndarray] = {}
    if spec.has_unimodal:
        present = [f for f in UNIMODAL_FIELDS.values() if split.has(f)]
        if present and len(present) < len(UNIMODAL_FIELDS):
            missing = [f for f in UNIMODAL_FIELDS.values() if f not in present]
            raise split.error(
                f"has {present} but not {missing}: unimodal labels come as all three or none", missing[0]
            )
        if present:
            unimodal = {m: split.labels(f, spec.label_bound) for m, f in UNIMODAL_FIELDS.items()}
    transcripts = split.transcripts()

    records = []
    for index, sample_id in enumerate(split.ids):
        record: dict[str, Any] = {"sample_id": sample_id}
        if transcripts is not None:
            record["transcript"] = transcripts[index]
        for modality, sequences in columns.items():
            record[modality] = sequences[index]
        m = float(label[index])
        record["regression_label"] = m
        record["label"] = sentiment_class(m)
        for modality, values in unimodal.items():
            record[f"regression_label_{modality}"] = float(values[index])
        for modality, values in unimodal.items():
            record[f"label_{modality}"] = sentiment_class(float(values[index]))
        records.append(record)
    return records, zero_length


def read_mmsa(
    data_dir: str | os.PathLike | None = None,
    *,
    pickle_file: str | os.PathLike | None = None,
    dataset: str = "chsims",
    text: str = "features",
) -> Corpus:
    """Read one MMSA pickle (CH-SIMS, CH-SIMS v2, MOSI or MOSEI) into an utterance-level corpus.

    Args:
        data_dir: a folder holding exactly one of :data:`FILE_NAMES` (directly or under ``Processed/``),
            or the pickle itself.
        pickle_file: explicit path to the pickle (overrides ``data_dir``), for other file names.
        dataset: ``"chsims"``, ``"chsims2"``, ``"mosi"`` or ``"mosei"``: sets the label range ([-1, 1]
            for the SIMS family, [-3, 3] for MOSI/MOSEI), whether unimodal labels are read, and the
            metadata.
        text: ``"features"`` — the ``text`` BERT feature sequences, trimmed to the ``text_bert``
            attention-mask length when ``text_bert`` is present (else kept at full length); ``"none"`` —
            no text features (``load_dataset(..., text_encoder=...)`` sets this and encodes the
            transcripts instead).

    Returns:
        A :class:`Corpus` named ``dataset`` with ``train``/``validation``/``test`` (from ``valid``) and
        class names ``["negative", "neutral", "positive"]`` for ``label`` (and the unimodal labels).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown MMSA dataset {dataset!r}; valid: {sorted(DATASETS)}")
    if text not in ("features", "none"):
        raise ValueError(f"text must be 'features' or 'none', got {text!r}")
    spec = DATASETS[dataset]
    path = find_mmsa_pickle(data_dir, pickle_file)
    file = os.fspath(path)
    data = load_pickle(path)
    if not isinstance(data, Mapping):
        raise DataFormatError(
            f"expected the MMSA dict {{'train', 'valid', 'test'}}, got {type(data).__name__}", file=file
        )
    missing = [key for key in SPLIT_KEYS.values() if key not in data]
    if missing:
        raise DataFormatError(
            f"split(s) {missing} missing; the MMSA layout has 'train', 'valid' and 'test', found "
            f"{sorted(map(str, data))}",
            file=file,
            field=missing[0],
        )
    with file_errors(file):
        return _read_mmsa_data(data, file, spec, text)


def _read_mmsa_data(data: Mapping[str, Any], file: str, spec: MmsaDataset, text: str) -> Corpus:
    """The corpus of an unpickled MMSA dict (see :func:`read_mmsa`)."""
    splits = {name: _Split(data[key], file=file, split=key) for name, key in SPLIT_KEYS.items()}
    refuse_split_leaks({split.split: split.ids for split in splits.values()}, file=file, field="id")
    for split in splits.values():
        if not (split.has("text") or split.has("text_bert") or split.has("raw_text")):
            raise DataFormatError(
                "no text at all: none of 'text' (BERT features), 'text_bert' (tokens) and 'raw_text'",
                file=file,
                field="text",
                split=split.split,
            )

    neg_inf = {"values": 0, "samples": 0}
    records: dict[str, list[dict[str, Any]]] = {}
    for name, split in splits.items():
        records[name], zero_length = _read_split(split, spec, text, neg_inf)
        zero = {field: count for field, count in zero_length.items() if count}
        if zero:
            counts = ", ".join(f"{count} with {field} 0" for field, count in zero.items())
            warnings.warn(
                f"{file}: split {split.split!r}: {counts}; each such sequence is kept as one zero frame",
                stacklevel=3,
            )
    if neg_inf["values"]:
        warnings.warn(
            f"{file}: {neg_inf['values']} -inf audio values in {neg_inf['samples']} samples set to 0 "
            "(as MMSA does)",
            stacklevel=3,
        )

    first = records["train"][0]
    unimodal = [key for key in ("label_text", "label_audio", "label_visual") if key in first]
    if spec.has_unimodal and not unimodal:
        warnings.warn(
            f"{file}: no regression_labels_T/A/V in this {spec.title} file; records have no unimodal labels",
            stacklevel=3,
        )
    dims = ", ".join(f"{m} {first[m].shape[1]}" for m in ("text", "audio", "visual") if m in first)
    sizes = ", ".join(f"{name} {len(r)}" for name, r in records.items())
    description = (
        f"{spec.title}, read from {os.path.basename(file)} (MMSA layout). One example is one video clip. "
        f"Splits: {sizes} (validation = the file's 'valid'). Feature dims: {dims}; sequences trimmed to "
        f"their true lengths. Labels: 3-class by the sign of the regression label M in "
        f"[{-spec.label_bound:g}, {spec.label_bound:g}] (negative < 0, neutral = 0, positive > 0), as CMC "
        f"does; the file's classification_labels are not used."
        + (
            " Unimodal labels (text, audio, visual) from regression_labels_T/A/V by the same rule."
            if unimodal
            else " No unimodal labels."
        )
    )
    return Corpus(
        name=spec.name,
        splits=records,
        class_names={key: list(CLASS_NAMES) for key in ("label", *unimodal)},
        description=description,
        citation=spec.citation,
        homepage=spec.homepage,
        sources=[file],
    )


def read_chsims(
    data_dir: str | os.PathLike | None = None,
    *,
    pickle_file: str | os.PathLike | None = None,
    text: str = "features",
) -> Corpus:
    """CH-SIMS (``SIMS/Processed/unaligned_39.pkl``, or CMC's ``unaligned.pkl``); see :func:`read_mmsa`."""
    return read_mmsa(data_dir, pickle_file=pickle_file, dataset="chsims", text=text)


def read_chsims2(
    data_dir: str | os.PathLike | None = None,
    *,
    pickle_file: str | os.PathLike | None = None,
    text: str = "features",
) -> Corpus:
    """CH-SIMS v2 (CMC's ``CH-SIMS-v2(s)/Processed/unaligned.pkl``); see :func:`read_mmsa`."""
    return read_mmsa(data_dir, pickle_file=pickle_file, dataset="chsims2", text=text)


def read_mosi(
    data_dir: str | os.PathLike | None = None,
    *,
    pickle_file: str | os.PathLike | None = None,
    text: str = "features",
) -> Corpus:
    """CMU-MOSI (``MOSI/Processed/unaligned_50.pkl``); see :func:`read_mmsa`."""
    return read_mmsa(data_dir, pickle_file=pickle_file, dataset="mosi", text=text)


def read_mosei(
    data_dir: str | os.PathLike | None = None,
    *,
    pickle_file: str | os.PathLike | None = None,
    text: str = "features",
) -> Corpus:
    """CMU-MOSEI (``MOSEI/Processed/unaligned_50.pkl``); see :func:`read_mmsa`."""
    return read_mmsa(data_dir, pickle_file=pickle_file, dataset="mosei", text=text)
