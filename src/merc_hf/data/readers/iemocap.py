"""IEMOCAP readers: the reference feature pickles and the COSMIC transcript pickle.

Accepted inputs (formats documented in the reference notes, section 1):

* ``IEMOCAP_features.pkl`` — the 9-tuple ``videoIDs, videoSpeakers, videoLabels, videoText, videoAudio,
  videoVisual, videoSentence, trainVid, testVid`` of DialogueRNN/MMGCN/M3Net. Two different files carry
  this name: the MMGCN one (text 100 / audio 1582 / visual 342) and the DialogueGCN one (100 / 100 / 512).
  Dimensions are read from the arrays, never assumed.
* ``iemocap_features_roberta.pkl`` — the COSMIC 10-list ``speakers, labels, roberta1..4, sentences,
  trainIds, testIds, validIds``; text = mean of the four 1024-d layers. Combined with the 9-tuple it gives
  M3Net's input: RoBERTa text with the 9-tuple's audio and visual.
* ``iemocap.pkl`` — the COSMIC transcript 6-list ``speakers ('M'/'F'), labels, sentences, trainIds,
  testIds, validIds`` (text features come from a local encoder, see :mod:`merc_hf.data.text_encoding`).

Splits follow the CMERC paper: the 120 training dialogues (sessions 1–4) minus a seeded 10 % for
validation, and the 31 session-5 dialogues for test. Speakers are indexed by first appearance in each
dialogue (the reference loaders one-hot ``'M'`` as 0 and ``'F'`` as 1 instead).
"""

from __future__ import annotations

import os

from ..errors import DataFormatError
from ..records import Corpus
from ..safe_pickle import load_pickle
from .common import (
    PickleSource,
    assemble_records,
    choose_text_source,
    find_file,
    id_list,
    split_off_validation,
    unpack_fields,
)

LABEL_NAMES = ["hap", "sad", "neu", "ang", "exc", "fru"]
FILE_NAMES = {
    "features": "IEMOCAP_features.pkl",
    "roberta": "iemocap_features_roberta.pkl",
    "transcripts": "iemocap.pkl",
}
FEATURE_FIELDS = (
    "videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual",
    "videoSentence", "trainVid", "testVid",
)  # fmt: skip
ROBERTA_FIELDS = (
    "speakers", "labels", "roberta1", "roberta2", "roberta3", "roberta4", "sentences",
    "trainIds", "testIds", "validIds",
)  # fmt: skip
TRANSCRIPT_FIELDS = ("speakers", "labels", "sentences", "trainIds", "testIds", "validIds")
CITATION = """@article{busso2008iemocap,
  title={IEMOCAP: Interactive emotional dyadic motion capture database},
  author={Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and others},
  journal={Language Resources and Evaluation}, volume={42}, pages={335--359}, year={2008}}"""


def _features_source(path: str) -> PickleSource:
    fields = unpack_fields(
        load_pickle(path), FEATURE_FIELDS, file=path, layout="IEMOCAP_features.pkl 9-tuple"
    )
    roles = {
        "speakers": "videoSpeakers", "labels": "videoLabels", "text": "videoText",
        "audio": "videoAudio", "visual": "videoVisual", "sentences": "videoSentence",
    }  # fmt: skip
    splits = {
        "train": id_list(fields["trainVid"], file=path, field="trainVid"),
        "test": id_list(fields["testVid"], file=path, field="testVid"),
    }
    return PickleSource(path, fields, roles, splits)


def _cosmic_source(path: str, names: tuple[str, ...], layout: str, roles: dict) -> PickleSource:
    fields = unpack_fields(load_pickle(path), names, file=path, layout=layout)
    ids = {k: id_list(fields[k], file=path, field=k) for k in ("trainIds", "validIds", "testIds")}
    # The graph models train on COSMIC's train + valid (120 dialogues); validation is re-drawn below.
    return PickleSource(
        path, fields, roles, {"train": ids["trainIds"] + ids["validIds"], "test": ids["testIds"]}
    )


def read_iemocap(
    data_dir: str | os.PathLike | None = None,
    *,
    features_file: str | os.PathLike | None = None,
    roberta_file: str | os.PathLike | None = None,
    transcripts_file: str | os.PathLike | None = None,
    text: str = "auto",
    validation_fraction: float = 0.1,
    validation_seed: int = 42,
) -> Corpus:
    """Read IEMOCAP from whichever of the three reference files are given or found in ``data_dir``.

    Args:
        data_dir: folder searched for the canonical file names (:data:`FILE_NAMES`).
        features_file, roberta_file, transcripts_file: explicit paths (override ``data_dir``).
        text: where text features come from — ``"roberta"`` (mean of the 4 COSMIC layers),
            ``"features"`` (the 9-tuple's 100-d text), ``"none"`` (transcripts only, e.g. to encode them
            with a local encoder), or ``"auto"`` (RoBERTa if given, else the 9-tuple's text, else none).
        validation_fraction, validation_seed: the seeded share of training dialogues used for validation.
    """
    paths = {
        "features": find_file(data_dir, features_file, FILE_NAMES["features"]),
        "roberta": find_file(data_dir, roberta_file, FILE_NAMES["roberta"]),
        "transcripts": find_file(data_dir, transcripts_file, FILE_NAMES["transcripts"]),
    }
    if not any(paths.values()):
        raise DataFormatError(
            f"no IEMOCAP file found; expected one of {sorted(FILE_NAMES.values())} or explicit *_file arguments",
            file=data_dir,
        )
    sources: dict[str, PickleSource] = {}
    if paths["features"]:
        sources["features"] = _features_source(paths["features"])
    if paths["roberta"]:
        roles = {"speakers": "speakers", "labels": "labels", "sentences": "sentences",
                 "text": ("roberta1", "roberta2", "roberta3", "roberta4")}  # fmt: skip
        sources["roberta"] = _cosmic_source(paths["roberta"], ROBERTA_FIELDS, "COSMIC RoBERTa 10-list", roles)
    if paths["transcripts"]:
        roles = {"speakers": "speakers", "labels": "labels", "sentences": "sentences"}
        sources["transcripts"] = _cosmic_source(
            paths["transcripts"], TRANSCRIPT_FIELDS, "COSMIC 6-list", roles
        )

    text_source = choose_text_source(sources, text, FILE_NAMES)
    primary = next(iter(sources.values()))
    train, validation = split_off_validation(primary.splits["train"], validation_fraction, validation_seed)
    splits = {"train": train, "validation": validation, "test": primary.splits["test"]}
    return Corpus(
        name="iemocap",
        splits=assemble_records(
            list(sources.values()),
            splits=splits,
            label_role="labels",
            label_names=LABEL_NAMES,
            text_source=text_source,
        ),
        class_names={"labels": LABEL_NAMES},
        description=(
            "IEMOCAP, 6-way emotion (hap, sad, neu, ang, exc, fru), read from "
            + ", ".join(os.path.basename(s.path) for s in sources.values())
            + f". Validation = seeded {validation_fraction:.0%} of the training dialogues (seed {validation_seed})."
        ),
        citation=CITATION,
        homepage="https://sail.usc.edu/iemocap/",
        sources=[s.path for s in sources.values()],
    )
