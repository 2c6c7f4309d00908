"""The processor saved with a checkpoint: how the model's inputs were made, and how to make them again.

A merc_hf model only sees feature matrices. :class:`MercProcessor` records where they came from — the text
encoder (name, revision, sha256 of its files, pooling, maximum length, dimension) when the text features were
computed from transcripts, the names and dimensions of the other features, the dataset and its label names —
and saves that record as ``preprocessor_config.json`` next to the weights. Calling the processor on raw
conversations gives the padded batch the model takes (:mod:`merc_hf.data.collate`, without labels):

    processor = MercProcessor.from_pretrained("outputs/meld-text/model")
    batch = processor([{"speaker": "Joey", "text": "How you doin'?"}, {"speaker": "Rachel", "text": "Fine."}])

:func:`merc_hf.load_dataset` writes what it used into each split's description
(:func:`record_preprocessing`), so :meth:`MercProcessor.from_dataset` can build the processor of a model
trained on that dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict

from .data.collate import DialogueCollator, UtteranceCollator
from .data.errors import DataFormatError
from .data.records import MODALITIES
from .data.text_encoding import OFFLINE_MINILM, OFFLINE_MINILM_HUB_ID, encoder_metadata, resolve_encoder
from .version import __version__

PROCESSOR_NAME = "preprocessor_config.json"
INPUT_LEVELS = ("dialogue", "clip")
_RECORD_PREFIX = "merc_hf preprocessing: "
_LABEL_COLUMNS = ("labels", "emotions", "label")

Turn = Mapping[str, Any]


# --------------------------------------------------------------------------------------------------
# The record load_dataset leaves in a dataset
# --------------------------------------------------------------------------------------------------


def record_preprocessing(
    dsd: DatasetDict,
    dataset_name: str,
    text_encoder: str | os.PathLike | None,
    text_pooling: str,
    encoder_digest: str | None = None,
) -> None:
    """Append one line ``merc_hf preprocessing: {json}`` (dataset name, text-encoder metadata or ``null``)
    to the description of every split, where :meth:`MercProcessor.from_dataset` reads it back."""
    encoder = None
    if text_encoder is not None:
        encoder = encoder_metadata(text_encoder, pooling=text_pooling, digest=encoder_digest)
        text = next(iter(dsd.values())).features.get("text")
        if text is not None:  # the size of the vectors actually stored
            encoder["dim"] = int(text.shape[1])
    line = _RECORD_PREFIX + json.dumps({"dataset": dataset_name, "text_encoder": encoder})
    for split in dsd.values():
        kept = [x for x in split.info.description.splitlines() if not x.startswith(_RECORD_PREFIX)]
        split.info.description = "\n".join([*kept, line])


def preprocessing_record(dataset: Dataset) -> dict[str, Any] | None:
    """The record :func:`record_preprocessing` wrote into ``dataset``'s description, or ``None``."""
    for line in (dataset.info.description or "").splitlines():
        if line.startswith(_RECORD_PREFIX):
            return json.loads(line[len(_RECORD_PREFIX) :])
    return None


# --------------------------------------------------------------------------------------------------
# The processor
# --------------------------------------------------------------------------------------------------


class MercProcessor:
    """Turns raw conversations (or clips) into the batch a merc_hf model takes, as its training data was made.

    Args:
        features: ``{modality: {"name": str, "dim": int}}`` for every modality the model uses, in
            ``text``/``audio``/``visual`` order.
        text_encoder: metadata of the encoder that made the ``text`` features from transcripts
            (:func:`merc_hf.data.text_encoding.encoder_metadata`), or ``None`` when the text features (if
            any) came ready-made with the data.
        label_names: the class names, in class-id order.
        dataset: the :func:`merc_hf.load_dataset` name of the training data, when known.
        input_level: ``"dialogue"`` (one batch row per conversation) or ``"clip"`` (utterance-level
            sentiment models: one row per video clip, one feature sequence per modality).
        text_encoder_path: a local encoder directory to use instead of the recorded one (not saved); its
            files may differ from the recorded digest, its dimension may not.
    """

    def __init__(
        self,
        features: Mapping[str, Mapping[str, Any]],
        *,
        text_encoder: Mapping[str, Any] | None = None,
        label_names: Sequence[str] = (),
        dataset: str | None = None,
        input_level: str = "dialogue",
        text_encoder_path: str | os.PathLike | None = None,
    ) -> None:
        unknown = [m for m in features if m not in MODALITIES]
        if unknown or not features:
            raise ValueError(f"features must name some of {MODALITIES}, got {list(features)}")
        if input_level not in INPUT_LEVELS:
            raise ValueError(f"input_level must be one of {INPUT_LEVELS}, got {input_level!r}")
        self.features = {
            m: {"name": str(features[m].get("name") or m), "dim": int(features[m]["dim"])}
            for m in MODALITIES
            if m in features
        }
        self.text_encoder = None if text_encoder is None else dict(text_encoder)
        if self.text_encoder is not None:
            if "text" not in self.features:
                raise ValueError("a text encoder is recorded but the model uses no text features")
            dim = self.text_encoder.get("dim")
            if dim is not None and int(dim) != self.features["text"]["dim"]:
                raise ValueError(
                    f"the text encoder gives {self.text_encoder['dim']}-d vectors but the text features are "
                    f"{self.features['text']['dim']}-d"
                )
        self.label_names = [str(n) for n in label_names]
        self.dataset = dataset
        self.input_level = input_level
        self.text_encoder_path = None if text_encoder_path is None else os.fspath(text_encoder_path)
        self._encoder_dir: Path | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.to_dict(), indent=2)})"

    @property
    def base_model(self) -> str | None:
        """Hub id of the text encoder when one made the text features and its hub id is known (for model
        cards' ``base_model``), else ``None``."""
        if self.text_encoder is None:
            return None
        name = str(self.text_encoder["name"])
        if name == OFFLINE_MINILM:
            return OFFLINE_MINILM_HUB_ID
        return name if _looks_like_hub_id(name) else None

    # ------------------------------------------------------------------------------- construction

    @classmethod
    def from_dataset(
        cls, dataset: Dataset | DatasetDict, *, feature_names: Mapping[str, str] | None = None
    ) -> MercProcessor:
        """The processor of a model trained on ``dataset`` (a :func:`merc_hf.load_dataset` result).

        ``feature_names`` names the ready-made features, e.g. ``{"audio": "openSMILE IS10"}``; the default
        is ``"<dataset> <modality> features"``. Text features made by ``load_dataset(text_encoder=...)`` are
        named after the encoder.
        """
        if isinstance(dataset, DatasetDict):
            dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
        record = preprocessing_record(dataset) or {}
        name = record.get("dataset")
        encoder = record.get("text_encoder")
        columns = dataset.features
        features = {}
        for m in MODALITIES:
            if m in columns:
                default = f"{name or 'dataset'} {m} features"
                if m == "text" and encoder is not None:
                    default = f"{encoder['name']} ({encoder['pooling']} pooling)"
                features[m] = {"name": (feature_names or {}).get(m, default), "dim": columns[m].shape[1]}
        labels: Sequence[str] = ()
        for column in _LABEL_COLUMNS:
            if column in columns:
                label = columns[column]
                label = getattr(label, "feature", label)
                labels = label.names if isinstance(label, ClassLabel) else ()
                break
        return cls(
            features,
            text_encoder=encoder,
            label_names=labels,
            dataset=name,
            input_level="clip" if "sample_id" in columns else "dialogue",
        )

    @classmethod
    def from_config(cls, config: Any) -> MercProcessor:
        """A processor for a checkpoint saved without one: the feature dimensions and labels of its config,
        no text encoder (so every feature, text included, must be given ready-made)."""
        features = {
            m: {"name": f"{m} features", "dim": getattr(config, f"{m}_dim")}
            for m in MODALITIES
            if getattr(config, f"{m}_dim", None) is not None
        }
        labels = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else []
        level = "clip" if getattr(config, "model_type", "") == "merc_cmc" else "dialogue"
        return cls(features, label_names=labels, input_level=level)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable record saved as ``preprocessor_config.json``."""
        return {
            "processor_class": type(self).__name__,
            "merc_hf_version": __version__,
            "dataset": self.dataset,
            "input_level": self.input_level,
            "label_names": self.label_names,
            "features": self.features,
            "text_encoder": self.text_encoder,
        }

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``preprocessor_config.json`` into ``save_directory`` (created if needed); return its path."""
        path = Path(save_directory) / PROCESSOR_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(
        cls,
        pretrained: str | os.PathLike,
        *,
        text_encoder: str | os.PathLike | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> MercProcessor:
        """Load the processor saved in a checkpoint folder, or in a Hub repository (through
        ``huggingface_hub``, which honours ``HF_HUB_OFFLINE`` and its cache).

        ``text_encoder`` replaces the recorded encoder by a local directory (same dimension required).
        """
        local = Path(pretrained)
        if local.is_dir():
            path = local / PROCESSOR_NAME
            if not path.is_file():
                raise DataFormatError(
                    f"no {PROCESSOR_NAME} in this checkpoint folder (it was saved without a processor; "
                    "MercProcessor.from_config(model.config) gives one for ready-made features)",
                    file=path,
                )
        else:
            from huggingface_hub import hf_hub_download

            path = Path(
                hf_hub_download(os.fspath(pretrained), PROCESSOR_NAME, revision=revision, cache_dir=cache_dir)
            )
        try:
            data = json.loads(path.read_text())
            features = data["features"]
            return cls(
                features,
                text_encoder=data.get("text_encoder"),
                label_names=data.get("label_names", ()),
                dataset=data.get("dataset"),
                input_level=data.get("input_level", "dialogue"),
                text_encoder_path=text_encoder,
            )
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"not valid JSON ({exc})", file=path) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"not a merc_hf processor record ({exc})", file=path) from None

    # ---------------------------------------------------------------------------------- text encoder

    def encoder_directory(self) -> Path:
        """The local directory of the recorded text encoder, checked against the recorded digest.

        Looks at ``text_encoder_path`` when set, else the packaged offline MiniLM, the recorded directory, or
        the Hugging Face cache (hub ids); never downloads. Raises :class:`DataFormatError` saying where it
        looked when the encoder is not there or its files differ from the ones the model was trained with.
        """
        if self._encoder_dir is not None:
            return self._encoder_dir
        if self.text_encoder is None:
            raise ValueError("this processor records no text encoder")
        from .data.text_encoding import _encoder_digest

        name = str(self.text_encoder["name"])
        if self.text_encoder_path is not None:
            path = resolve_encoder(self.text_encoder_path)
            dim = encoder_metadata(path)["dim"]
            if dim != self.text_encoder["dim"]:
                raise DataFormatError(
                    f"text encoder gives {dim}-d vectors, the model was trained on {self.text_encoder['dim']}-d "
                    f"text features from {name!r}",
                    file=path,
                )
            self._encoder_dir = path
            return path
        path = self._find_encoder(name)
        digest = _encoder_digest(path)
        if digest != self.text_encoder.get("sha256", digest):
            raise DataFormatError(
                f"the text encoder's files differ from the ones the model was trained with (sha256 {digest[:12]}… "
                f"instead of {str(self.text_encoder['sha256'])[:12]}…); pass "
                "MercProcessor.from_pretrained(..., text_encoder=<dir>) to use this encoder anyway",
                file=path,
            )
        self._encoder_dir = path
        return path

    def _find_encoder(self, name: str) -> Path:
        looked: list[str] = []
        if name == OFFLINE_MINILM:
            try:
                return resolve_encoder(name)
            except ImportError:
                looked.append(
                    f"the Python package {OFFLINE_MINILM} (not installed: pip install {OFFLINE_MINILM})"
                )
        else:
            local = Path(name)
            if (local / "config.json").is_file():
                return local
            looked.append(f"the local directory {os.fspath(local)!r}")
            if _looks_like_hub_id(name):
                from huggingface_hub import constants, snapshot_download
                from huggingface_hub.errors import LocalEntryNotFoundError

                try:
                    snapshot = snapshot_download(
                        name, revision=self.text_encoder.get("revision"), local_files_only=True
                    )
                    return Path(snapshot)
                except LocalEntryNotFoundError:
                    looked.append(f"the Hugging Face cache {constants.HF_HUB_CACHE!r} (repository {name!r})")
        raise DataFormatError(
            f"the text encoder {name!r} this model was trained with is not available locally; looked in "
            + " and ".join(looked)
            + " (merc_hf never downloads encoders; pass MercProcessor.from_pretrained(..., text_encoder=<dir>))",
            file=name,
        )

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), D)`` float32 text features, made exactly as the training transcripts were."""
        from .data.text_encoding import encode_texts

        options = (
            {}
            if self.text_encoder.get("max_length") is None
            else {"max_length": int(self.text_encoder["max_length"])}
        )
        return encode_texts(
            list(texts),
            self.encoder_directory(),
            pooling=str(self.text_encoder["pooling"]),
            use_cache=False,
            show_progress=False,
            **options,
        )

    # ------------------------------------------------------------------------------------- batching

    def __call__(
        self, inputs: Sequence[Turn] | Sequence[Sequence[Turn]] | Turn | Sequence[Turn]
    ) -> dict[str, torch.Tensor]:
        """The model batch (no labels) of one conversation or a list of conversations (dialogue level), or
        of one clip or a list of clips (clip level).

        A turn is ``{"speaker": ..., "text": "transcript", "audio": row, "visual": row}``; text features
        come from the recorded encoder, or from a ``"text_features"`` row when given. A clip is
        ``{"text": "transcript", "text_features": (L, D), "audio": (L, D), "visual": (L, D)}`` (sequences).
        """
        if self.input_level == "clip":
            clips = [inputs] if isinstance(inputs, Mapping) else list(inputs)
            return UtteranceCollator(modalities=list(self.features))(self._clip_rows(clips))
        conversations = split_conversations(inputs)[0]
        return DialogueCollator(modalities=list(self.features))(self._dialogue_rows(conversations))

    def _dialogue_rows(self, conversations: Sequence[Sequence[Turn]]) -> list[dict[str, Any]]:
        for c, turns in enumerate(conversations):
            if not turns:
                raise DataFormatError("a conversation needs at least one turn", dialogue=c)
            for t, turn in enumerate(turns):
                if not isinstance(turn, Mapping) or "speaker" not in turn:
                    raise DataFormatError(
                        'each turn must be a dict with a "speaker" (and "text" and/or feature rows)',
                        dialogue=c,
                        field=f"turn {t}",
                    )
        flat = [turn for turns in conversations for turn in turns]
        columns = self._feature_columns(flat, sequences=False)
        rows, start = [], 0
        for turns in conversations:
            first_seen: dict[Any, int] = {}
            speakers = [
                first_seen.setdefault(_speaker_key(turn["speaker"]), len(first_seen)) for turn in turns
            ]
            row: dict[str, Any] = {"speakers": speakers}
            for m, matrix in columns.items():
                row[m] = matrix[start : start + len(turns)]
            rows.append(row)
            start += len(turns)
        return rows

    def _clip_rows(self, clips: Sequence[Turn]) -> list[dict[str, Any]]:
        if not clips:
            raise DataFormatError("no clips given")
        for c, clip in enumerate(clips):
            if not isinstance(clip, Mapping):
                raise DataFormatError("each clip must be a dict of feature sequences", sample=c)
        columns = self._feature_columns(clips, sequences=True)
        return [{m: columns[m][i] for m in columns} for i in range(len(clips))]

    def _feature_columns(self, items: Sequence[Turn], *, sequences: bool) -> dict[str, Any]:
        """Per modality: a ``(N, D)`` matrix of the turns' rows (``sequences``: a list of ``(L, D)`` arrays)."""
        self._check_features_given(items)
        columns: dict[str, Any] = {}
        for m, spec in self.features.items():
            key = "text_features" if m == "text" else m
            if m == "text" and not all(key in item for item in items):
                texts = [item["text"] for item in items]
                encoded = self.encode_text(texts)
                columns[m] = [row[None] for row in encoded] if sequences else encoded
                continue
            values = []
            for i, item in enumerate(items):
                value = np.asarray(item[key], dtype=np.float32)
                shape = "(L, D)" if sequences else "(D,)"
                if value.ndim != (2 if sequences else 1) or value.shape[-1] != spec["dim"] or value.size == 0:
                    raise DataFormatError(
                        f"{key} must be a {shape} feature array with D = {spec['dim']} ({spec['name']}), "
                        f"got shape {value.shape}",
                        sample=i,
                        field=key,
                    )
                if not np.isfinite(value).all():
                    raise DataFormatError(f"{key} contains NaN or inf", sample=i, field=key)
                values.append(value)
            columns[m] = values if sequences else np.stack(values)
        return columns

    def _check_features_given(self, items: Sequence[Turn]) -> None:
        """Refuse input the model cannot take, saying which features it needs."""
        needed = []
        for m, spec in self.features.items():
            key = "text_features" if m == "text" else m
            if all(key in item for item in items):
                continue
            if (
                m == "text"
                and self.text_encoder is not None
                and all(isinstance(i.get("text"), str) for i in items)
            ):
                continue
            needed.append((m, key, spec))
        if not needed:
            return
        wants = "; ".join(f"{key!r}: {spec['dim']}-d {spec['name']}" for _, key, spec in needed)
        uses = ", ".join(self.features)
        if any(m == "text" for m, _, _ in needed) and self.text_encoder is None:
            why = "its text features were not made by a recorded text encoder, so raw text cannot be encoded"
        elif any(m == "text" for m, _, _ in needed):
            why = 'every turn needs a "text" string (or ready-made "text_features")'
        else:
            why = "raw text alone is not enough"
        raise DataFormatError(f"this model uses {uses} features and {why}: give every turn {wants}")


def split_conversations(inputs: Any) -> tuple[list[list[Turn]], bool]:
    """``(conversations, single)``: a list of conversations and whether ``inputs`` was one conversation."""
    if isinstance(inputs, (Mapping, str, bytes)):
        raise DataFormatError("expected a conversation (a list of turn dicts) or a list of conversations")
    items = list(inputs)
    if not items:
        raise DataFormatError("no conversation given")
    if all(isinstance(item, Mapping) for item in items):
        return [items], True
    return [list(item) for item in items], False


def _speaker_key(speaker: Any) -> Any:
    return speaker if isinstance(speaker, (str, int)) else str(speaker)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not os.path.isabs(name) and not name.startswith(".")
