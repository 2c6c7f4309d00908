"""Predict a whole split: emotion probabilities (and every removal view's), or emotion–cause pair scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .calibration.views import removal_view_logits
from .data.collate import DialogueCollator, PairCollator


@dataclass
class SplitPredictions:
    """Utterance-level predictions of one split, padding removed, dialogues in dataset order."""

    probs: np.ndarray  # (N, C) softmax of the full-input logits
    references: np.ndarray | None  # (N,) gold labels; None for a dataset without labels
    dialogue_index: np.ndarray  # (N,) row of the dataset each utterance comes from
    masked_probs: dict[str, np.ndarray]  # removal type -> (N, C)


@torch.no_grad()
def predict_dataset(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    removals: Sequence[str] = (),
    batch_size: int = 8,
    device: str | torch.device | None = None,
    show_progress: bool = True,
) -> SplitPredictions:
    """Run ``model`` in eval mode over ``dataset`` (one dialogue per row) and collect probabilities.

    ``removals`` (e.g. ``("A", "V", "T", "X", "O")``) adds the probabilities of each removal view, computed
    in one batched pass per batch (:func:`merc_hf.calibration.removal_view_logits`); removals of a
    modality the dataset lacks are skipped. A dataset without a ``labels`` column gives ``references=None``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=DialogueCollator())
    model.eval()
    probs, refs, rows = [], [], []
    masked: dict[str, list[np.ndarray]] = {}
    offset = 0
    for batch in tqdm(loader, desc="Predicting", unit="batch", disable=not show_progress):
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels", None)
        keep = batch["utterance_mask"]
        probs.append(torch.softmax(model(**batch).logits.float(), -1)[keep].cpu().numpy())
        if labels is not None:
            refs.append(labels[keep].cpu().numpy())
        rows.append(
            (torch.arange(keep.shape[0], device=device)[:, None].expand_as(keep)[keep] + offset).cpu().numpy()
        )
        offset += keep.shape[0]
        for removal, logits in removal_view_logits(model, batch, removals).items() if removals else ():
            masked.setdefault(removal, []).append(torch.softmax(logits.float(), -1)[keep].cpu().numpy())
    return SplitPredictions(
        probs=np.concatenate(probs),
        references=np.concatenate(refs) if refs else None,
        dialogue_index=np.concatenate(rows),
        masked_probs={k: np.concatenate(v) for k, v in masked.items()},
    )


@dataclass
class PairPredictions:
    """Pair-extraction predictions of one split, keyed by conversation id (0-based utterance indices)."""

    scores: dict[str, dict[tuple[int, int], float]]  # candidate -> pair probability
    gold: dict[str, list[tuple[int, int]]]  # empty for a dataset without pairs
    predicted_emotions: dict[str, list[int]]
    gold_emotions: dict[str, list[int]]  # empty for a dataset without emotions


def candidate_scores(scores: np.ndarray, candidates: np.ndarray) -> dict[tuple[int, int], float]:
    """``{(emotion_utt, cause_utt): score}`` for the True entries of a ``(T, T)`` candidate matrix."""
    rows, cols = np.nonzero(candidates)
    return {(int(i), int(j)): float(scores[i, j]) for i, j in zip(rows, cols)}


def matrix_pairs(pair_matrix: np.ndarray) -> list[tuple[int, int]]:
    """The ``(emotion_utt, cause_utt)`` pairs set in a ``(T, T)`` 0/1 pair-label matrix."""
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(pair_matrix == 1))]


@torch.no_grad()
def predict_pairs(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    show_progress: bool = True,
) -> PairPredictions:
    """Run a pair scorer in eval mode over an emotion–cause ``dataset`` (one conversation per row) and
    collect the probability of every candidate pair, the predicted emotions and the gold annotations (those
    the dataset has: without ``pairs`` / ``emotions`` columns, ``gold`` / ``gold_emotions`` stay empty)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=PairCollator())
    ids = iter(dataset["conversation_id"])
    model.eval()
    out = PairPredictions({}, {}, {}, {})
    for batch in tqdm(loader, desc="Predicting pairs", unit="batch", disable=not show_progress):
        gold_pairs, gold_emotions = batch.pop("pair_labels", None), batch.pop("labels", None)
        batch.pop("cause_labels", None)
        batch = {k: v.to(device) for k, v in batch.items()}
        outputs = model(**batch)
        probs = torch.sigmoid(outputs.pair_logits.float()).cpu().numpy()
        candidates = outputs.candidate_mask.cpu().numpy()
        emotions = outputs.logits.argmax(-1).cpu().numpy()
        lengths = batch["utterance_mask"].sum(1).tolist()
        for b, n in enumerate(lengths):
            conv = str(next(ids))
            out.scores[conv] = candidate_scores(probs[b], candidates[b])
            out.predicted_emotions[conv] = emotions[b, :n].tolist()
            if gold_pairs is not None:
                out.gold[conv] = matrix_pairs(gold_pairs[b].numpy())
            if gold_emotions is not None:
                out.gold_emotions[conv] = gold_emotions[b, :n].tolist()
    return out


@dataclass
class SentimentPredictions:
    """Predictions of an utterance-level sentiment model (CMC) over one split, in dataset order."""

    probs: np.ndarray  # (N, 3) softmax of the fused logits
    modality_probs: np.ndarray  # (N, 3 modalities, 3) softmax of each modality's prediction
    gates: np.ndarray  # (N, 3) consensus-router weights of the modalities
    references: np.ndarray | None  # (N,) 3-class multimodal labels; None for a dataset without labels
    regression_references: np.ndarray | None  # (N,) multimodal regression labels, or None
    unimodal_references: np.ndarray | None  # (N, 3) gold unimodal classes, -100 where absent; None if none


@torch.no_grad()
def predict_sentiment(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    keep_modalities: Sequence[float] | None = None,
    device: str | torch.device | None = None,
    show_progress: bool = True,
) -> SentimentPredictions:
    """Run an utterance-level sentiment model in eval mode over ``dataset`` (one clip per row).

    ``keep_modalities`` (text, audio, visual; 1 = keep, 0 = remove) is applied to every clip as the model's
    ``modality_mask``, e.g. ``(1, 0, 1)`` to predict without audio. Without a ``label`` column the
    references are ``None``."""
    from .data.collate import UtteranceCollator

    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=UtteranceCollator())
    model.eval()
    collected: dict[str, list[np.ndarray]] = {
        k: [] for k in ("probs", "modality", "gates", "refs", "reg", "uni")
    }
    for batch in tqdm(loader, desc="Predicting", unit="batch", disable=not show_progress):
        batch = {k: v.to(device) for k, v in batch.items()}
        gold = {key: batch.pop(key, None) for key in ("labels", "regression_labels", "unimodal_labels")}
        if keep_modalities is not None:
            n_clips = next(batch[m] for m in ("text", "audio", "visual") if m in batch).shape[0]
            batch["modality_mask"] = torch.tensor(keep_modalities, dtype=torch.float32, device=device).expand(
                n_clips, -1
            )
        out = model(**batch)
        collected["probs"].append(torch.softmax(out.logits.float(), -1).cpu().numpy())
        collected["modality"].append(torch.softmax(out.modality_logits.float(), -1).cpu().numpy())
        collected["gates"].append(out.gates.float().cpu().numpy())
        for key, name in (("labels", "refs"), ("regression_labels", "reg"), ("unimodal_labels", "uni")):
            if gold[key] is not None:
                collected[name].append(gold[key].cpu().numpy())
    joined = {k: np.concatenate(v) if v else None for k, v in collected.items()}
    unimodal = joined["uni"]
    return SentimentPredictions(
        probs=joined["probs"],
        modality_probs=joined["modality"],
        gates=joined["gates"],
        references=joined["refs"],
        regression_references=joined["reg"],
        unimodal_references=None if unimodal is None or bool((unimodal == -100).all()) else unimodal,
    )
