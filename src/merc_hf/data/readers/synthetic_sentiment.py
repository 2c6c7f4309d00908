"""Embedded synthetic utterance-level sentiment corpus shaped like CH-SIMS (preset ``"chsims-like"``).

:func:`generate_synthetic_sentiment` builds, in pure numpy and well under a second, a :class:`Corpus` with
the records of the CH-SIMS family (see :mod:`merc_hf.data.readers.mmsa`): one record per video clip with
one feature *sequence* per modality, a multimodal regression label M, unimodal labels for text, audio and
visual, and their 3-class labels. ``merc_hf.load_dataset("synthetic", preset="chsims-like", ...)`` reaches
it through :func:`merc_hf.data.readers.synthetic.generate_synthetic`. It lives in its own module because it
shares nothing with the dialogue generator but the idea of class prototypes: no dialogues, speakers or
context, and a different configuration.

The point of the corpus is *modality inconsistency*, what CMC (reference notes §2.8, §3.5) is about: the
modalities of a clip sometimes carry different sentiments, and text — the most separable modality —
disagrees most often, so a text-dominant fusion is good on consistent and bad on inconsistent clips.

Generative story (sample ``i`` from its own child of ``SeedSequence(seed)``):

1. Splits of CH-SIMS: 1368 training clips (reference notes §1.6), and 456 validation / 457 test clips, the
   split commonly used with the MMSA pickle (a choice of this preset); ``n_samples`` scales them down.
2. Class of M from ``class_prior`` (default negative 0.4, neutral 0.2, positive 0.4 — a choice: polar
   clips dominate, and an average of annotations is exactly 0 less often). M lies on CH-SIMS's grid of
   averaged annotations {-1.0, -0.8, ..., 0.8, 1.0} (steps of 0.2): 0.0 for neutral, else uniform over
   the five grid values of the class's sign. ``label`` = 3-class by sign (< 0 negative, = 0 neutral,
   > 0 positive), as CMC does (reference notes §1.6).
3. With probability ``1 - inconsistent_rate`` (default 0.3) the clip is *consistent*: the three unimodal
   regression labels equal M. Otherwise one modality, drawn with ``inconsistent_modality_weights``
   (default text 0.5, audio 0.25, visual 0.25), gets a unimodal label of a different class than M
   (uniform over the two other classes, then uniform on that class's grid values); the other two equal M.
4. Modality ``m`` is a sequence of ``L_m`` frames, ``L_m`` uniform in ``length_ranges[m]`` (default text
   8–24, audio 16–48, visual 12–32), each frame
   ``separation[m] * prototype[m, class_m] + noise * N(0, I)`` with ``class_m`` the modality's *own*
   unimodal class and one random unit-norm prototype per class and modality; dims default text 64, audio 32, visual 48 (``dims=`` overrides). Default separation text
   1.0, audio 0.4, visual 0.35, noise 1.0: text is the most separable per frame *and* after mean pooling
   (audio has twice as many frames, so equal per-frame separations would make audio as separable as
   text). On mean-pooled features a logistic regression recovers each modality's own class on about 99 %
   (text), 86–92 % (audio) and 76–79 % (visual) of the test clips (seeds 0–2), and one trained on M
   from all three modalities leans on text: about 0.99 accuracy on consistent clips but 0.6–0.7 on
   text-inconsistent ones, while a text-only one falls to under 0.05 there.

All random numbers of a sample are drawn whatever the options, so the same seed gives the same lengths
and noise for any ``inconsistent_rate`` and the same first clips for any ``n_samples`` (a prefix).

Records: ``sample_id`` (``"chsims-like-0007"``), ``transcript`` (a neutral placeholder that reveals
nothing), ``text``/``audio``/``visual`` float32 ``(L_m, D_m)``, ``regression_label``, ``label``,
``regression_label_text|_audio|_visual``, ``label_text|_audio|_visual`` and the ground truth
``inconsistent_modality`` (-1 none, 0 text, 1 audio, 2 visual, the order of
:data:`~merc_hf.data.records.MODALITIES`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..records import MODALITIES, SPLITS, Corpus

__all__ = [
    "CLASS_NAMES",
    "CONSISTENT",
    "LABEL_GRID",
    "SENTIMENT_PRESETS",
    "SentimentSyntheticConfig",
    "generate_synthetic_sentiment",
    "sentiment_synthetic_config",
]

CLASS_NAMES = ("negative", "neutral", "positive")
CONSISTENT = -1
# CH-SIMS's averaged annotations: -1.0, -0.8, ..., 1.0 (k / 5 gives the nearest floats, and exactly 0.0).
LABEL_GRID = tuple(k / 5 for k in range(-5, 6))
_CLASS_GRID = (LABEL_GRID[:5], (0.0,), LABEL_GRID[6:])


@dataclass(frozen=True)
class SentimentSyntheticConfig:
    """All parameters of the utterance-level generator; a preset is one instance, overrides replace fields.

    Attributes:
        preset: Preset name, also the prefix of the sample ids.
        split_samples: Clips in train, validation and test at full size.
        class_prior: Probability of negative, neutral and positive M.
        inconsistent_rate: Share of clips with one disagreeing modality.
        inconsistent_modality_weights: Relative probability that the disagreeing modality is text, audio
            or visual.
        length_ranges: Shortest and longest sequence (frames, inclusive) per modality.
        dims: Feature size per modality.
        separation: Norm of the class prototypes per modality (per-frame signal against unit noise).
        noise: Standard deviation of the per-dimension Gaussian noise.
    """

    preset: str
    split_samples: tuple[int, int, int]
    class_prior: tuple[float, float, float]
    inconsistent_rate: float
    inconsistent_modality_weights: Mapping[str, float]
    length_ranges: Mapping[str, tuple[int, int]]
    dims: Mapping[str, int]
    separation: Mapping[str, float]
    noise: float


SENTIMENT_PRESETS: dict[str, SentimentSyntheticConfig] = {
    "chsims-like": SentimentSyntheticConfig(
        preset="chsims-like",
        split_samples=(1368, 456, 457),
        class_prior=(0.4, 0.2, 0.4),
        inconsistent_rate=0.3,
        inconsistent_modality_weights=MappingProxyType({"text": 0.5, "audio": 0.25, "visual": 0.25}),
        length_ranges=MappingProxyType({"text": (8, 24), "audio": (16, 48), "visual": (12, 32)}),
        dims=MappingProxyType({"text": 64, "audio": 32, "visual": 48}),
        separation=MappingProxyType({"text": 1.0, "audio": 0.4, "visual": 0.35}),
        noise=1.0,
    ),
}

_OVERRIDABLE = tuple(f.name for f in dataclasses.fields(SentimentSyntheticConfig) if f.name != "preset")
_PER_MODALITY = ("inconsistent_modality_weights", "length_ranges", "dims", "separation")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def sentiment_synthetic_config(preset: str = "chsims-like", **overrides: Any) -> SentimentSyntheticConfig:
    """Return the validated configuration of ``preset`` with ``overrides`` applied.

    ``length_ranges``, ``dims`` and ``separation`` may be partial dicts: they update the preset's values.
    ``inconsistent_modality_weights`` is a dict keyed by modality (modalities left out weigh 0) or three
    weights in text, audio, visual order.

    Raises:
        ValueError: unknown preset or override name, or an invalid value.
    """
    if preset not in SENTIMENT_PRESETS:
        raise ValueError(f"unknown utterance-level preset {preset!r}; valid: {sorted(SENTIMENT_PRESETS)}")
    unknown = sorted(set(overrides) - set(_OVERRIDABLE))
    if unknown:
        raise ValueError(
            f"unknown synthetic parameter(s) {unknown} for preset {preset!r}; valid overrides: n_samples, "
            f"seed, {', '.join(_OVERRIDABLE)}"
        )
    base = SENTIMENT_PRESETS[preset]
    values: dict[str, Any] = dict(overrides)
    for key in _PER_MODALITY:
        if key not in values:
            continue
        given = values[key]
        if (
            key == "inconsistent_modality_weights"
            and isinstance(given, Sequence)
            and not isinstance(given, str)
        ):
            if len(given) != len(MODALITIES):
                raise ValueError(
                    f"{key} must hold {len(MODALITIES)} weights (text, audio, visual), got {given!r}"
                )
            given = dict(zip(MODALITIES, given))
        if not isinstance(given, Mapping):
            raise ValueError(f"{key} must be a dict keyed by modality {list(MODALITIES)}, got {given!r}")
        bad = sorted(set(given) - set(MODALITIES))
        if bad:
            raise ValueError(f"{key}: unknown modality {bad}; valid modalities: {list(MODALITIES)}")
        if key == "inconsistent_modality_weights":
            values[key] = MappingProxyType({m: given.get(m, 0.0) for m in MODALITIES})
        else:
            values[key] = MappingProxyType({**getattr(base, key), **given})
    for key in ("split_samples", "class_prior"):
        if key in values:
            values[key] = tuple(values[key])
    config = dataclasses.replace(base, **values)
    _validate(config)
    return config


def _validate(c: SentimentSyntheticConfig) -> None:
    if not _is_number(c.inconsistent_rate) or not 0.0 <= c.inconsistent_rate <= 1.0:
        raise ValueError(f"inconsistent_rate must be a number in [0, 1], got {c.inconsistent_rate!r}")
    weights = [c.inconsistent_modality_weights[m] for m in MODALITIES]
    if not all(_is_number(w) and np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(
            "inconsistent_modality_weights must be non-negative finite numbers with a positive sum, "
            f"got {dict(c.inconsistent_modality_weights)}"
        )
    for modality in MODALITIES:
        dim = c.dims.get(modality)
        if not _is_int(dim) or dim < 1:
            raise ValueError(f"dims[{modality!r}] must be a positive int, got {dim!r}")
        sep = c.separation.get(modality)
        if not _is_number(sep) or not np.isfinite(sep) or sep < 0:
            raise ValueError(f"separation[{modality!r}] must be a finite number >= 0, got {sep!r}")
        bounds = c.length_ranges.get(modality)
        if (
            not isinstance(bounds, Sequence)
            or len(bounds) != 2
            or not all(_is_int(b) for b in bounds)
            or not 1 <= bounds[0] <= bounds[1]
        ):
            raise ValueError(f"length_ranges[{modality!r}] must be two ints 1 <= min <= max, got {bounds!r}")
    if not _is_number(c.noise) or not np.isfinite(c.noise) or c.noise <= 0:
        raise ValueError(f"noise must be a finite number > 0, got {c.noise!r}")
    prior = np.asarray(c.class_prior, dtype=float)
    if prior.shape != (3,) or not np.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
        raise ValueError(
            "class_prior must hold 3 non-negative numbers (negative, neutral, positive) with a positive sum, "
            f"got {list(c.class_prior)}"
        )
    if len(c.split_samples) != 3 or not all(_is_int(n) and n >= 1 for n in c.split_samples):
        raise ValueError(f"split_samples must be three ints >= 1, got {c.split_samples!r}")


def _split_sizes(config: SentimentSyntheticConfig, n_samples: int | None) -> tuple[int, int, int]:
    train, validation, test = (int(n) for n in config.split_samples)
    if n_samples is None:
        return train, validation, test
    total = train + validation + test
    validation = max(1, round(n_samples * validation / total))
    test = max(1, round(n_samples * test / total))
    return n_samples - validation - test, validation, test


def _prototypes(seed_seq: np.random.SeedSequence, config: SentimentSyntheticConfig) -> dict[str, np.ndarray]:
    """Per modality a ``(3, dim)`` float32 matrix: unit-norm random directions times separation."""
    rng = np.random.default_rng(seed_seq)
    out = {}
    for modality in MODALITIES:
        raw = rng.standard_normal((len(CLASS_NAMES), config.dims[modality]))
        unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        out[modality] = (config.separation[modality] * unit).astype(np.float32)
    return out


def _grid_value(label: int, pick: int) -> float:
    grid = _CLASS_GRID[label]
    return grid[pick % len(grid)]


def generate_synthetic_sentiment(
    preset: str = "chsims-like", seed: int = 0, n_samples: int | None = None, **overrides: Any
) -> Corpus:
    """Generate a synthetic CH-SIMS-like corpus (see the module docstring for the story).

    Args:
        preset: ``"chsims-like"`` (3 classes, 2281 clips 1368/456/457).
        seed: Non-negative int; the same seed (and arguments) always gives the same corpus. Prototypes
            depend only on the seed and the dims, and clip ``i`` only on the seed and ``i``.
        n_samples: Total clips (at least 3), split in the preset's proportions with at least one per
            split; ``None`` keeps the preset's sizes.
        **overrides: Any :class:`SentimentSyntheticConfig` field except ``preset``, e.g.
            ``inconsistent_rate=0.5``, ``inconsistent_modality_weights={"text": 1.0}``,
            ``dims={"text": 768}``, ``separation={"audio": 0.0}``, ``length_ranges={"audio": (1, 4)}``.

    Returns:
        A :class:`Corpus` named ``"synthetic-<preset>"`` with splits ``train``/``validation``/``test``.

    Raises:
        ValueError: unknown preset or parameter, ``n_samples < 3``, a rate outside [0, 1], bad dims.
    """
    config = sentiment_synthetic_config(preset, **overrides)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if n_samples is not None and (not _is_int(n_samples) or n_samples < 3):
        raise ValueError(f"n_samples must be an int >= 3 (one clip per split), got {n_samples!r}")
    sizes = _split_sizes(config, None if n_samples is None else int(n_samples))

    prior = np.asarray(config.class_prior, dtype=float)
    prior = prior / prior.sum()
    weights = np.asarray([config.inconsistent_modality_weights[m] for m in MODALITIES], dtype=float)
    weights = weights / weights.sum()
    root = np.random.SeedSequence(int(seed))
    proto_seq, sample_root = root.spawn(2)
    prototypes = _prototypes(proto_seq, config)
    total = sum(sizes)
    width = max(4, len(str(total - 1)))

    records: list[dict[str, Any]] = []
    for index, seq in enumerate(sample_root.spawn(total)):
        rng = np.random.default_rng(seq)
        # Every draw happens whatever the options, so the options change only what they are about.
        label = int(rng.choice(3, p=prior))
        value = _grid_value(label, int(rng.integers(5)))
        inconsistent = bool(rng.random() < config.inconsistent_rate)
        odd_modality = int(rng.choice(len(MODALITIES), p=weights))
        odd_label = (label + int(rng.integers(1, 3))) % 3
        odd_value = _grid_value(odd_label, int(rng.integers(5)))
        sample_id = f"{config.preset}-{index:0{width}d}"
        record: dict[str, Any] = {"sample_id": sample_id, "transcript": f"clip {index} of {config.preset}"}
        unimodal: dict[str, tuple[float, int]] = {}
        for m_index, modality in enumerate(MODALITIES):
            own = (odd_value, odd_label) if inconsistent and m_index == odd_modality else (value, label)
            unimodal[modality] = own
            lo, hi = config.length_ranges[modality]
            length = int(rng.integers(lo, hi + 1))
            features = rng.standard_normal((length, config.dims[modality]), dtype=np.float32)
            features *= np.float32(config.noise)
            features += prototypes[modality][own[1]]
            record[modality] = features
        record["regression_label"] = value
        record["label"] = label
        for modality in MODALITIES:
            record[f"regression_label_{modality}"] = unimodal[modality][0]
        for modality in MODALITIES:
            record[f"label_{modality}"] = unimodal[modality][1]
        record["inconsistent_modality"] = odd_modality if inconsistent else CONSISTENT
        records.append(record)

    splits: dict[str, list[dict[str, Any]]] = {}
    start = 0
    for split, size in zip(SPLITS, sizes):
        splits[split] = records[start : start + size]
        start += size
    names = list(CLASS_NAMES)
    return Corpus(
        name=f"synthetic-{config.preset}",
        splits=splits,
        class_names={key: names for key in ("label", "label_text", "label_audio", "label_visual")},
        description=_describe(config, seed, sizes),
    )


def _describe(config: SentimentSyntheticConfig, seed: int, sizes: tuple[int, int, int]) -> str:
    prior = np.asarray(config.class_prior, dtype=float)
    prior_text = ", ".join(f"{name} {p:.3f}" for name, p in zip(CLASS_NAMES, prior / prior.sum()))
    weights = np.asarray([config.inconsistent_modality_weights[m] for m in MODALITIES], dtype=float)
    weight_text = ", ".join(f"{m} {w:.3f}" for m, w in zip(MODALITIES, weights / weights.sum()))
    modalities = ", ".join(
        f"{m} {config.dims[m]}-d, {config.length_ranges[m][0]}-{config.length_ranges[m][1]} frames, "
        f"separation {config.separation[m]:g}"
        for m in MODALITIES
    )
    return (
        f"Synthetic {config.preset} utterance-level sentiment corpus generated by merc_hf (seed {seed}); "
        f"no real data. One example is one clip.\n"
        f"Splits (clips): train {sizes[0]}, validation {sizes[1]}, test {sizes[2]}.\n"
        f"Multimodal label M on the grid -1.0, -0.8, ..., 1.0; class prior {prior_text}; label = 3-class by "
        f"sign (negative < 0, neutral = 0, positive > 0).\n"
        f"Inconsistent clips: a share {config.inconsistent_rate:g} has one modality ({weight_text}) whose "
        f"unimodal label is of another class than M; the others equal M. Ground truth in "
        f"inconsistent_modality (-1 none, 0 text, 1 audio, 2 visual).\n"
        f"Features ({modalities}): each frame = separation * prototype of the modality's own class "
        f"(random unit vector per class and modality) + Gaussian noise of std {config.noise:g}."
    )
