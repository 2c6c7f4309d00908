"""MECAD and other corpora in the M3HG JSON layout (emotion–cause pairs in Chinese TV-series conversations).

Format (``redifinition/M3HG: data/MECAD/{train,valid,test}_data_pair.json``, and the same layout for
``data/ECF/*_data_pair.json``): one JSON object ``{conversation id: [[utterance, ...]]}`` — each value is a
one-element list wrapping the list of utterances. An utterance is an object with

* ``turn`` — 1-based position in the conversation;
* ``speaker``, ``utterance`` (the transcript), ``emotion``;
* optional ``utterance_name`` (``<conversation id>_<turn>`` in MECAD; checked when present) and ``video``;
* on annotated emotion utterances, ``expanded emotion cause evidence``: the list of 1-based turns that
  cause this utterance's emotion. Each listed turn ``c`` gives the pair ``(turn, c)``. Other annotation
  fields (``cause_modality``, ``cause_type``, ``confidence``, ``annotator_name``) are not read.

Records follow :mod:`merc_hf.data.records`; ``pairs`` are 0-based ``[emotion_utt, cause_utt]`` (the file
is 1-based). Decisions:

* Emotion names (:data:`MECAD_EMOTIONS`) are the seven labels written in the MECAD files (also listed in
  ``redifinition/M3HG: utils/global_variables.py``), ordered like the ECF labels of NUSTM/MECPE (neutral
  first, then anger, disgust, fear, happy/joy, sad/sadness, surprise) so that index *k* denotes the same
  emotion in ECF and MECAD. M3HG's own indices (neutral last) are not used.
* A pair whose emotion utterance is labelled neutral is an error: the real files have none (MECAD
  validation: 0 of 977 pairs). A non-neutral utterance without cause evidence is valid (one in the
  validation file).
* Conversation ids repeated in the JSON object (which ``json`` would silently collapse) are an error.

MECAD has no released feature files (audio/video only as raw media via a Baidu link; M3HG issue #6), so
records carry transcripts, speakers, emotions and pairs only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import DataFormatError, names_file_on_failure
from ..records import Corpus
from ._ecpe import (
    as_int,
    check_numbering,
    check_pairs,
    emotion_index,
    existing,
    load_json,
    make_record,
    pair_position_stats,
    refuse_repeated_conversations,
    require_keys,
)

__all__ = ["MECAD_EMOTIONS", "pair_position_stats", "read_m3hg_json", "read_mecad"]

MECAD_EMOTIONS = ["Neutral", "Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise"]
EVIDENCE_KEY = "expanded emotion cause evidence"
SPLIT_FILES = {
    "train": ("train_data_pair.json",),
    "validation": ("valid_data_pair.json", "dev_data_pair.json"),
    "test": ("test_data_pair.json",),
}
CITATION = """@inproceedings{liang2025m3hg,
  title={{M3HG}: Multimodal, Multi-scale, and Multi-type Node Heterogeneous Graph for Emotion Cause Triplet Extraction in Conversations},
  author={Liang, Qiao and Shen, Ying and Chen, Tiantian and Zhang, Lin},
  booktitle={Findings of the Association for Computational Linguistics: ACL 2025},
  pages={11416--11431}, year={2025}}"""
HOMEPAGE = "https://github.com/redifinition/M3HG"


@names_file_on_failure
def read_m3hg_json(
    path: str | os.PathLike, *, emotion_names: Sequence[str] = MECAD_EMOTIONS
) -> list[dict[str, Any]]:
    """Read one ``*_data_pair.json`` file of the M3HG layout into records, in file order.

    ``emotion_names`` are the labels the file may use, neutral first (:data:`MECAD_EMOTIONS` for MECAD,
    the lowercase ECF names for M3HG's copy of ECF). Raises :class:`DataFormatError` naming the file,
    the conversation and the field for any inconsistency.
    """
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(
            f"expected a JSON object keyed by conversation id, got a {type(data).__name__}", file=path
        )
    if data.duplicate_keys:
        raise DataFormatError(
            "conversation id appears twice",
            file=path,
            dialogue=data.duplicate_keys[0],
            field="conversation_id",
        )
    if not data:
        raise DataFormatError("file holds no conversations", file=path)
    names = list(emotion_names)
    return [_conversation(conv_id, value, names, path) for conv_id, value in data.items()]


def _conversation(conv_id: str, value: Any, names: list[str], path: str | os.PathLike) -> dict[str, Any]:
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], list)):
        got = f"a list of {len(value)} items" if isinstance(value, list) else f"a {type(value).__name__}"
        raise DataFormatError(
            f"expected a one-element list wrapping the utterance list, got {got}",
            file=path,
            dialogue=conv_id,
            field="utterances",
        )
    utterances = value[0]
    turns, texts, speakers, emotions, evidence = [], [], [], [], []
    for position, utt in enumerate(utterances, start=1):
        what = f"utterance {position}"
        require_keys(utt, ("turn", "speaker", "utterance", "emotion"), file=path, dialogue=conv_id, what=what)
        turn = as_int(utt["turn"], file=path, dialogue=conv_id, field="turn", what=f"turn of {what}")
        turns.append(turn)
        if "utterance_name" in utt and utt["utterance_name"] != f"{conv_id}_{turn}":
            raise DataFormatError(
                f"{what} is named {utt['utterance_name']!r}, expected '{conv_id}_{turn}'",
                file=path,
                dialogue=conv_id,
                field="utterance_name",
            )
        speaker = utt["speaker"]
        if not isinstance(speaker, str) or not speaker.strip():
            raise DataFormatError(
                f"{what} has no speaker name ({speaker!r})", file=path, dialogue=conv_id, field="speaker"
            )
        if not isinstance(utt["utterance"], str):
            raise DataFormatError(
                f"{what}: transcript must be a string, got {type(utt['utterance']).__name__}",
                file=path,
                dialogue=conv_id,
                field="utterance",
            )
        speakers.append(speaker.strip())
        texts.append(utt["utterance"])
        emotions.append(
            emotion_index(
                utt["emotion"], names, file=path, dialogue=conv_id, field="emotion", utterance=position
            )
        )
        causes = utt.get(EVIDENCE_KEY, [])
        if not isinstance(causes, list):
            raise DataFormatError(
                f"{what}: cause evidence must be a list of turns, got {causes!r}",
                file=path,
                dialogue=conv_id,
                field=EVIDENCE_KEY,
            )
        evidence.extend(
            (
                position,
                as_int(c, file=path, dialogue=conv_id, field=EVIDENCE_KEY, what=f"cause turn of {what}"),
            )
            for c in causes
        )
    check_numbering(turns, file=path, dialogue=conv_id, field="turn")
    pairs = check_pairs(
        evidence, length=len(texts), emotions=emotions, file=path, dialogue=conv_id, field=EVIDENCE_KEY
    )
    return make_record(
        conv_id, texts=texts, speaker_names=speakers, emotions=emotions, pairs=pairs, file=path
    )


def read_m3hg_splits(
    data_dir: str | os.PathLike, *, emotion_names: Sequence[str], dataset: str
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Read whichever of ``{train,valid,test}_data_pair.json`` exist in ``data_dir``; at least one must."""
    splits: dict[str, list[dict[str, Any]]] = {}
    by_file: dict[str, list[dict[str, Any]]] = {}
    for split, candidates in SPLIT_FILES.items():
        path = existing(os.path.join(data_dir, name) for name in candidates)
        if path is not None:
            splits[split] = by_file[path] = read_m3hg_json(path, emotion_names=emotion_names)
    if not splits:
        expected = ", ".join(c[0] for c in SPLIT_FILES.values())
        raise DataFormatError(f"no {dataset} split files found (expected any of {expected})", file=data_dir)
    refuse_repeated_conversations(by_file)
    return splits, list(by_file)


def read_mecad(data_dir: str | os.PathLike) -> Corpus:
    """MECAD from ``data_dir`` holding any of ``train_data_pair.json``, ``valid_data_pair.json``
    (→ ``validation``) and ``test_data_pair.json`` (the ``data/MECAD`` folder of redifinition/M3HG)."""
    splits, sources = read_m3hg_splits(data_dir, emotion_names=MECAD_EMOTIONS, dataset="MECAD")
    return Corpus(
        name="mecad",
        splits=splits,
        class_names={"emotions": list(MECAD_EMOTIONS)},
        description=(
            "MECAD: multimodal emotion-cause pairs in Chinese conversations from 56 TV series (989 "
            "conversations), annotated with seven emotions and utterance-level cause evidence. Pairs are "
            "0-based [emotion utterance, cause utterance]."
        ),
        citation=CITATION,
        homepage=HOMEPAGE,
        sources=sources,
    )
