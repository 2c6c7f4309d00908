"""Embedded synthetic MERC corpora: train and evaluate without any real dataset.

:func:`generate_synthetic` builds, in pure numpy and in well under a second, a :class:`Corpus` shaped like
IEMOCAP (``"iemocap-like"``) or MELD (``"meld-like"``): same class names and order, split sizes, class
prior, dialogue-length range and mean, and speakers per dialogue as in the real corpora (reference notes
§1.1, §1.2, §1.7). The data is built so that calibration has something real to find.

Generative story (one dialogue at a time, each from its own child of ``SeedSequence(seed)``):

1. Draw a length ``T`` (discretised gamma truncated to ``length_range``, scale set so the mean is
   ``length_mean``) and a number of speakers (``speaker_count_weights``, at most ``T``). Each next turn
   goes to another speaker with probability ``turn_switch`` (uniformly among the others; speakers not heard
   yet are forced in before the dialogue ends); speakers are indexed by first appearance.
2. Emotion of utterance ``t`` by speaker ``s``: with probability ``intra_rate`` copy ``s``'s own previous
   emotion (intra-speaker inertia); else with probability ``inter_rate`` copy the emotion of the latest
   utterance by another speaker (inter-speaker contagion); otherwise — or when the chosen source does not
   exist yet — draw it fresh from ``class_prior``. Copies of prior-distributed labels keep the prior, so
   class frequencies match the preset's counts.
3. Each modality ``m`` has one random unit-norm prototype per class; the features are
   ``separation[m] * prototype[m, class] + noise * N(0, I)``, with text most separable and visual least.
4. With probability ``mislead_rate`` one modality, chosen uniformly, *misleads*: its features use the
   prototype of another class (uniform among the other classes); the other two modalities stay truthful.

Hence the own utterance's features identify the emotion only in part, the previous utterances of the
same and the other speakers add information (context), and removing a misleading modality *raises* a
model's confidence in the gold class — the "uncertain sample" that CMERC looks for.

Records carry the usual keys (``dialogue_id``, ``speakers``, ``labels``, ``text``/``audio``/``visual``
float32 ``(T, D)``, ``utterances``) plus the ground truth of the generator, one int per utterance:

* ``misleading_modality`` — ``-1`` none, ``0`` text, ``1`` audio, ``2`` visual (order of
  :data:`~merc_hf.data.records.MODALITIES`); always present, and kept by ``load_dataset("synthetic")``;
* with ``full_annotations=True`` only (the ``DatasetDict`` builder does not know these keys):
  ``misleading_class`` — the class whose prototype the misleading modality used, ``-1`` if none;
  ``label_source`` — ``0`` fresh draw, ``1`` copied from the same speaker's previous utterance,
  ``2`` copied from the previous other speaker's utterance.

``utterances`` are neutral placeholders (``"utterance 3 of iemocap-like-0012"``) that reveal nothing
about the emotion: they exist so that code displaying transcripts works, not as text to encode.

Default feature sizes are text 100 (IEMOCAP's TextCNN size), audio 64 and visual 64: small enough for
fast CPU training. Change them with ``dims={"text": ..., "audio": ..., "visual": ...}`` (partial dicts
are merged with the preset's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..records import MODALITIES, SPLITS, Corpus

__all__ = [
    "LABEL_SOURCES",
    "NOT_MISLEADING",
    "PRESETS",
    "SyntheticConfig",
    "generate_synthetic",
    "synthetic_config",
]

NOT_MISLEADING = -1
LABEL_SOURCES = ("fresh", "intra-speaker", "inter-speaker")


@dataclass(frozen=True)
class SyntheticConfig:
    """All parameters of the generator; a preset is one instance, overrides replace fields.

    Attributes:
        preset: Preset name, also the prefix of the dialogue ids.
        class_names: Emotion names, in label-id order.
        class_prior: Probability of each class for a fresh draw (normalised counts).
        split_dialogues: Dialogues in train, validation and test at full size.
        length_range: Shortest and longest dialogue (utterances, inclusive).
        length_mean: Target mean dialogue length.
        length_shape: Gamma shape of the length distribution (smaller: more skewed).
        speaker_count_weights: Relative frequency of dialogues with 1, 2, 3, ... speakers.
        turn_switch: Probability that the next utterance is by a different speaker.
        dims: Feature size per modality.
        separation: Norm of the class prototypes per modality (signal strength against unit noise).
        noise: Standard deviation of the per-dimension Gaussian noise.
        intra_rate: Probability of copying the speaker's own previous emotion.
        inter_rate: Probability of copying the previous other speaker's emotion.
        mislead_rate: Share of utterances with one misleading modality.
    """

    preset: str
    class_names: tuple[str, ...]
    class_prior: tuple[float, ...]
    split_dialogues: tuple[int, int, int]
    length_range: tuple[int, int]
    length_mean: float
    length_shape: float
    speaker_count_weights: tuple[float, ...]
    turn_switch: float
    dims: Mapping[str, int]
    separation: Mapping[str, float]
    noise: float
    intra_rate: float
    inter_rate: float
    mislead_rate: float


def _prior(counts: list[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total for c in counts)


_DEFAULT_DIMS = MappingProxyType({"text": 100, "audio": 64, "visual": 64})
_DEFAULT_SEPARATION = MappingProxyType({"text": 1.2, "audio": 0.9, "visual": 0.7})

PRESETS: dict[str, SyntheticConfig] = {
    "iemocap-like": SyntheticConfig(
        preset="iemocap-like",
        class_names=("hap", "sad", "neu", "ang", "exc", "fru"),
        # IEMOCAP train+valid counts (COSMIC iemocap.pkl).
        class_prior=_prior([504, 839, 1324, 933, 742, 1468]),
        split_dialogues=(108, 12, 31),
        length_range=(8, 110),
        length_mean=49.2,  # 7433 utterances / 151 dialogues
        length_shape=4.0,
        speaker_count_weights=(0.0, 1.0),  # always the two actors of a session
        turn_switch=0.8,
        dims=_DEFAULT_DIMS,
        separation=_DEFAULT_SEPARATION,
        noise=1.0,
        # IEMOCAP sessions revolve around one emotional situation, so emotions persist for long runs.
        intra_rate=0.6,
        inter_rate=0.2,
        mislead_rate=0.15,
    ),
    "meld-like": SyntheticConfig(
        preset="meld-like",
        class_names=("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
        # MELD train counts (COSMIC meld.pkl).
        class_prior=_prior([4710, 1205, 268, 683, 1743, 271, 1109]),
        split_dialogues=(1038, 114, 280),
        length_range=(1, 33),
        length_mean=9.57,  # 13708 utterances / 1432 dialogues
        length_shape=2.0,
        # Distinct speakers per dialogue, counted over the MELD train/dev/test CSVs.
        speaker_count_weights=(123, 643, 367, 171, 79, 33, 12, 3, 1),
        turn_switch=0.77,  # share of speaker changes between consecutive MELD utterances
        dims=_DEFAULT_DIMS,
        separation=_DEFAULT_SEPARATION,
        noise=1.0,
        # Real MELD emotions are less sticky; stronger context makes context-aware models pay off.
        intra_rate=0.55,
        inter_rate=0.25,
        mislead_rate=0.15,
    ),
}

_OVERRIDABLE = tuple(f.name for f in dataclasses.fields(SyntheticConfig) if f.name not in ("preset",))


def synthetic_config(preset: str = "iemocap-like", **overrides: Any) -> SyntheticConfig:
    """Return the validated configuration of ``preset`` with ``overrides`` applied.

    ``dims`` and ``separation`` may be partial dicts: they update the preset's values.

    Raises:
        ValueError: unknown preset or override name, or an invalid value.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; valid presets: {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - set(_OVERRIDABLE))
    if unknown:
        raise ValueError(
            f"unknown synthetic parameter(s) {unknown}; valid overrides: n_dialogues, seed, "
            f"{', '.join(_OVERRIDABLE)}"
        )
    base = PRESETS[preset]
    values: dict[str, Any] = dict(overrides)
    for key in ("dims", "separation"):
        if key in values:
            given = values[key]
            if not isinstance(given, Mapping):
                raise ValueError(f"{key} must be a dict keyed by modality {list(MODALITIES)}, got {given!r}")
            bad = sorted(set(given) - set(MODALITIES))
            if bad:
                raise ValueError(f"{key}: unknown modality {bad}; valid modalities: {list(MODALITIES)}")
            values[key] = MappingProxyType({**getattr(base, key), **given})
    for key in ("class_names", "class_prior", "split_dialogues", "length_range", "speaker_count_weights"):
        if key in values:
            values[key] = tuple(values[key])
    config = dataclasses.replace(base, **values)
    _validate(config)
    return config


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _validate(c: SyntheticConfig) -> None:
    for name in ("turn_switch", "intra_rate", "inter_rate", "mislead_rate"):
        value = getattr(c, name)
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if c.intra_rate + c.inter_rate > 1.0:
        raise ValueError(
            f"intra_rate + inter_rate must be at most 1, got {c.intra_rate} + {c.inter_rate} "
            f"= {c.intra_rate + c.inter_rate}"
        )
    for modality in MODALITIES:
        dim = c.dims.get(modality)
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dims[{modality!r}] must be a positive int, got {dim!r}")
        sep = c.separation.get(modality)
        if not _is_number(sep) or not np.isfinite(sep) or sep < 0:
            raise ValueError(f"separation[{modality!r}] must be a finite number >= 0, got {sep!r}")
    if not _is_number(c.noise) or not np.isfinite(c.noise) or c.noise <= 0:
        raise ValueError(f"noise must be a finite number > 0, got {c.noise!r}")
    n_classes = len(c.class_names)
    if n_classes < 2 or len(set(c.class_names)) != n_classes:
        raise ValueError(f"class_names must hold at least 2 distinct names, got {list(c.class_names)}")
    prior = np.asarray(c.class_prior, dtype=float)
    if prior.shape != (n_classes,) or not np.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
        raise ValueError(
            f"class_prior must hold {n_classes} non-negative numbers with a positive sum, "
            f"got {list(c.class_prior)}"
        )
    lo, hi = c.length_range
    if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer)) and 1 <= lo <= hi):
        raise ValueError(f"length_range must be two ints 1 <= min <= max, got {c.length_range!r}")
    if not _is_number(c.length_mean) or not lo <= c.length_mean <= hi:
        raise ValueError(f"length_mean must lie in length_range {c.length_range}, got {c.length_mean!r}")
    if not _is_number(c.length_shape) or not 0 < c.length_shape < np.inf:
        raise ValueError(f"length_shape must be a finite number > 0, got {c.length_shape!r}")
    weights = np.asarray(c.speaker_count_weights, dtype=float)
    if weights.ndim != 1 or weights.size == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            "speaker_count_weights must be non-negative weights of 1, 2, ... speakers with a positive sum, "
            f"got {list(c.speaker_count_weights)}"
        )
    if weights[:lo].sum() <= 0:
        raise ValueError(
            f"speaker_count_weights allow no speaker count that fits the shortest dialogue ({lo} utterances)"
        )
    if len(c.split_dialogues) != 3 or any(int(n) < 1 for n in c.split_dialogues):
        raise ValueError(f"split_dialogues must be three counts >= 1, got {c.split_dialogues!r}")


def _length_pmf(lo: int, hi: int, mean: float, shape: float) -> np.ndarray:
    """Discretised gamma(shape, scale) on ``lo..hi`` with the scale chosen so that the mean is ``mean``."""
    support = np.arange(lo, hi + 1, dtype=float)
    if lo == hi:
        return np.ones(1)

    def pmf(log_scale: float) -> np.ndarray:
        log_p = (shape - 1.0) * np.log(support) - support / np.exp(log_scale)
        p = np.exp(log_p - log_p.max())
        return p / p.sum()

    # The truncated mean grows with the scale; bisect on its log. Targets beyond what the shape can
    # reach end at the nearest reachable mean.
    low, high = np.log(1e-3), np.log(1e6)
    for _ in range(80):
        mid = 0.5 * (low + high)
        if pmf(mid) @ support < mean:
            low = mid
        else:
            high = mid
    return pmf(0.5 * (low + high))


def _split_sizes(config: SyntheticConfig, n_dialogues: int | None) -> tuple[int, int, int]:
    train, validation, test = (int(n) for n in config.split_dialogues)
    if n_dialogues is None:
        return train, validation, test
    total = train + validation + test
    validation = max(1, round(n_dialogues * validation / total))
    test = max(1, round(n_dialogues * test / total))
    return n_dialogues - validation - test, validation, test


def _speaker_sequence(
    rng: np.random.Generator, length: int, n_speakers: int, turn_switch: float
) -> list[int]:
    speakers = [0]
    heard = 1  # speakers 0..heard-1 have spoken; new speakers take the next index (first appearance)
    for t in range(1, length):
        current = speakers[-1]
        if n_speakers - heard >= length - t:
            nxt = heard  # just enough turns left to hear every speaker
        elif n_speakers > 1 and rng.random() < turn_switch:
            nxt = int(rng.integers(n_speakers - 1))
            nxt += nxt >= current
            # Speakers not heard yet are interchangeable: any of them becomes the next new index.
            nxt = min(nxt, heard)
        else:
            nxt = current
        if nxt == heard:
            heard += 1
        speakers.append(nxt)
    return speakers


def _dialogue_labels(
    rng: np.random.Generator, speakers: list[int], config: SyntheticConfig, prior: np.ndarray
) -> tuple[list[int], list[int]]:
    length = len(speakers)
    fresh = rng.choice(prior.size, size=length, p=prior)
    draws = rng.random(length)
    labels: list[int] = []
    sources: list[int] = []
    last_own: dict[int, int] = {}
    for t, speaker in enumerate(speakers):
        own = last_own.get(speaker, -1)
        other = -1
        for back in range(t - 1, -1, -1):
            if speakers[back] != speaker:
                other = labels[back]
                break
        u = draws[t]
        if u < config.intra_rate and own >= 0:
            label, source = own, 1
        elif config.intra_rate <= u < config.intra_rate + config.inter_rate and other >= 0:
            label, source = other, 2
        else:
            label, source = int(fresh[t]), 0
        labels.append(label)
        sources.append(source)
        last_own[speaker] = label
    return labels, sources


def _prototypes(seed_seq: np.random.SeedSequence, config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Per modality a ``(n_classes, dim)`` float32 matrix: unit-norm random directions times separation."""
    rng = np.random.default_rng(seed_seq)
    out = {}
    for modality in MODALITIES:
        raw = rng.standard_normal((len(config.class_names), config.dims[modality]))
        unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        out[modality] = (config.separation[modality] * unit).astype(np.float32)
    return out


def generate_synthetic(
    preset: str = "iemocap-like",
    seed: int = 0,
    n_dialogues: int | None = None,
    *,
    full_annotations: bool = False,
    **overrides: Any,
) -> Corpus:
    """Generate a synthetic IEMOCAP- or MELD-like corpus (see the module docstring for the story).

    Args:
        preset: ``"iemocap-like"`` (6 classes, 2 speakers, 151 dialogues 108/12/31) or ``"meld-like"``
            (7 classes, 1–9 speakers, 1432 dialogues 1038/114/280).
        seed: Non-negative int; the same seed (and arguments) always gives the same corpus. Class
            prototypes depend only on the seed and the dims, and dialogue ``i`` only on the seed and
            ``i``, so a smaller ``n_dialogues`` gives a prefix of the same dialogues.
        n_dialogues: Total dialogues (at least 3); split in the preset's proportions with at least one
            dialogue per split. ``None`` keeps the preset's sizes.
        full_annotations: Also add ``misleading_class`` and ``label_source`` to the records (always
            present: ``misleading_modality``). Off by default because the ``DatasetDict`` builder only
            knows ``misleading_modality``; use it on the returned :class:`Corpus` directly.
        **overrides: Any :class:`SyntheticConfig` field except ``preset``, e.g. ``mislead_rate=0.3``,
            ``intra_rate=0.0``, ``dims={"text": 300}``, ``separation={"visual": 0.0}``.

    Returns:
        A :class:`Corpus` named ``"synthetic-<preset>"`` with splits ``train``/``validation``/``test``.

    Raises:
        ValueError: unknown preset or parameter, ``n_dialogues < 3``, a rate outside [0, 1], bad dims.
    """
    config = synthetic_config(preset, **overrides)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if n_dialogues is not None and (
        isinstance(n_dialogues, bool) or not isinstance(n_dialogues, (int, np.integer)) or n_dialogues < 3
    ):
        raise ValueError(f"n_dialogues must be an int >= 3 (one dialogue per split), got {n_dialogues!r}")
    sizes = _split_sizes(config, None if n_dialogues is None else int(n_dialogues))

    prior = np.asarray(config.class_prior, dtype=float)
    prior = prior / prior.sum()
    lo, hi = config.length_range
    length_p = _length_pmf(int(lo), int(hi), float(config.length_mean), float(config.length_shape))
    speaker_w = np.asarray(config.speaker_count_weights, dtype=float)
    n_classes = prior.size

    root = np.random.SeedSequence(int(seed))
    proto_seq, dialogue_root = root.spawn(2)
    prototypes = _prototypes(proto_seq, config)
    total = sum(sizes)
    dialogue_seqs = dialogue_root.spawn(total)

    records: list[dict[str, Any]] = []
    width = max(4, len(str(total - 1)))
    for index, seq in enumerate(dialogue_seqs):
        rng = np.random.default_rng(seq)
        dialogue_id = f"{config.preset}-{index:0{width}d}"
        length = int(lo + rng.choice(length_p.size, p=length_p))
        weights = speaker_w[: min(speaker_w.size, length)]
        n_speakers = 1 + int(rng.choice(weights.size, p=weights / weights.sum()))
        speakers = _speaker_sequence(rng, length, n_speakers, float(config.turn_switch))
        labels, sources = _dialogue_labels(rng, speakers, config, prior)

        label_arr = np.asarray(labels)
        misleads = rng.random(length) < config.mislead_rate
        modality = np.where(misleads, rng.integers(len(MODALITIES), size=length), NOT_MISLEADING)
        wrong = (label_arr + rng.integers(1, n_classes, size=length)) % n_classes
        wrong = np.where(misleads, wrong, NOT_MISLEADING)

        record: dict[str, Any] = {
            "dialogue_id": dialogue_id,
            "speakers": speakers,
            "labels": labels,
        }
        for m_index, name in enumerate(MODALITIES):
            source_class = np.where(modality == m_index, wrong, label_arr)
            features = rng.standard_normal((length, config.dims[name]), dtype=np.float32)
            features *= np.float32(config.noise)
            features += prototypes[name][source_class]
            record[name] = features
        record["utterances"] = [f"utterance {t} of {dialogue_id}" for t in range(length)]
        record["misleading_modality"] = modality.tolist()
        if full_annotations:
            record["misleading_class"] = wrong.tolist()
            record["label_source"] = sources
        records.append(record)

    splits: dict[str, list[dict[str, Any]]] = {}
    start = 0
    for split, size in zip(SPLITS, sizes):
        splits[split] = records[start : start + size]
        start += size

    return Corpus(
        name=f"synthetic-{config.preset}",
        splits=splits,
        class_names={"labels": list(config.class_names)},
        description=_describe(config, seed, sizes),
    )


def _describe(config: SyntheticConfig, seed: int, sizes: tuple[int, int, int]) -> str:
    prior = ", ".join(
        f"{name} {p / sum(config.class_prior):.3f}" for name, p in zip(config.class_names, config.class_prior)
    )
    dims = ", ".join(f"{m} {config.dims[m]}" for m in MODALITIES)
    separation = ", ".join(f"{m} {config.separation[m]:g}" for m in MODALITIES)
    return (
        f"Synthetic {config.preset} corpus generated by merc_hf (seed {seed}); no real data.\n"
        f"Splits (dialogues): train {sizes[0]}, validation {sizes[1]}, test {sizes[2]}. "
        f"Dialogue lengths {config.length_range[0]}-{config.length_range[1]} (target mean "
        f"{config.length_mean:g}, gamma shape {config.length_shape:g}); speakers per dialogue drawn with "
        f"weights {list(config.speaker_count_weights)} for 1, 2, ... speakers; next turn by another "
        f"speaker with probability {config.turn_switch:g}.\n"
        f"Emotions: copy the speaker's own previous emotion with probability {config.intra_rate:g} "
        f"(intra-speaker inertia), else the previous other speaker's emotion with probability "
        f"{config.inter_rate:g} (inter-speaker contagion), otherwise a fresh draw from the class prior "
        f"({prior}).\n"
        f"Features ({dims}): separation * class prototype (random unit vector per class and modality; "
        f"separation {separation}) + Gaussian noise of std {config.noise:g}.\n"
        f"Misleading modalities: in a share {config.mislead_rate:g} of utterances one modality (uniform) "
        f"uses the prototype of another class; ground truth in the record key misleading_modality "
        f"(-1 none, 0 text, 1 audio, 2 visual)."
    )
