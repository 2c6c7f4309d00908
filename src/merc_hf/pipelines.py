"""The ``"conversational-emotion"`` pipeline: raw conversations in, labels with calibrated confidence out.

    import merc_hf

    classify = merc_hf.pipeline("conversational-emotion", model="outputs/meld-text/model")
    result = classify([{"speaker": "Joey", "text": "How you doin'?"}, {"speaker": "Rachel", "text": "Fine."}],
                      reliability=True)
    print(merc_hf.pipelines.describe_predictions(result))

The checkpoint's :class:`~merc_hf.processing.MercProcessor` turns turns into the model batch (text through the
recorded encoder, or ready-made feature rows). For every utterance the pipeline returns the label, the class
probabilities (the softmax of the model's logits, which a temperature-scaled checkpoint already divides by
its fitted ``config.logit_temperature``), the confidence (the probability of the label) and, with
``reliability=True``, the confidence of that same label under every removal view that applies
(:mod:`merc_hf.calibration.views`) and the views under which it *rises*: CMERC's test for an uncertain
sample, with the predicted label in place of the unknown gold one. Emotion–cause checkpoints add the pairs
whose probability reaches the threshold stored in the checkpoint (``config.pair_threshold``); utterance-level
sentiment checkpoints (CMC) classify clips given as feature sequences, with the modality removals as views.

The task is also registered with ``transformers``' pipeline registry on ``import merc_hf``, so
``transformers.pipeline("conversational-emotion", model=...)`` builds the same object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModel, Pipeline, PreTrainedModel

from .models.base import MODALITIES

if TYPE_CHECKING:
    from .processing import MercProcessor

# ``import merc_hf`` registers this module's pipeline: the data layer (``datasets``) and the calibration
# package are imported on first use, inside the functions below, to keep that import light.

TASK = "conversational-emotion"
DEFAULT_BATCH_SIZE = 8


class ConversationalEmotionPipeline(Pipeline):
    """Classify every utterance of raw conversations (or every clip, for sentiment checkpoints).

    Call with one conversation (a list of ``{"speaker", "text", optional "text_features", "audio",
    "visual"}`` turns) for a list of per-utterance dicts, or with a list of conversations for a list of
    such lists. Keyword arguments, at construction or per call: ``batch_size`` (conversations per forward
    pass, default 8), ``reliability`` (add the removal views, default False), ``removals`` (which of
    ``A V T X O`` to try, default all that apply).

    Per utterance: ``speaker``, ``text`` (when given), ``label``, ``confidence``, ``probabilities``
    (``{label: p}``); with ``reliability``: ``view_confidence`` (``{view: p of the label}``) and
    ``rises_under`` (the views that raise it; non-empty = uncertain). Emotion–cause checkpoints return
    ``{"utterances": [...], "pairs": [{"emotion_utterance", "cause_utterance", "score"}, ...]}`` per
    conversation, with 0-based utterance indices and scores at or above ``config.pair_threshold``.
    """

    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(self, model: PreTrainedModel, processor: MercProcessor | None = None, **kwargs: Any) -> None:
        if processor is None:
            processor = _processor_of(model)
        super().__init__(model=model, processor=processor, **kwargs)

    @property
    def task_kind(self) -> str:
        """``"emotion"``, ``"pairs"`` or ``"sentiment"`` (the model's ``merc_task``)."""
        return getattr(self.model, "merc_task", "emotion")

    def _sanitize_parameters(
        self,
        reliability: bool | None = None,
        removals: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unknown arguments {sorted(kwargs)}")
        forward: dict[str, Any] = {}
        if reliability is not None:
            forward["reliability"] = bool(reliability)
        if removals is not None:
            from .calibration.views import REMOVALS

            unknown = [r for r in removals if r not in REMOVALS]
            if unknown:
                raise ValueError(f"unknown removals {unknown}; choose from {REMOVALS}")
            forward["removals"] = tuple(removals)
        return {}, forward, {}

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Predict one conversation (clip) or a list of them, ``batch_size`` at a time."""
        batch_size = kwargs.pop("batch_size", None) or self._batch_size or DEFAULT_BATCH_SIZE
        _, forward, _ = self._sanitize_parameters(**kwargs)
        forward = {**self._forward_params, **forward}
        if self.task_kind == "sentiment":
            single = isinstance(inputs, Mapping)
            items = [inputs] if single else list(inputs)
        else:
            from .processing import split_conversations

            items, single = split_conversations(inputs)
        results: list[Any] = []
        for start in range(0, len(items), batch_size):
            model_inputs = self.preprocess(items[start : start + batch_size])
            results.extend(self.postprocess(self.forward(model_inputs, **forward)))
        return results[0] if single else results

    def preprocess(self, items: Sequence[Any]) -> dict[str, Any]:
        """The processor's batch of ``items`` (conversations or clips), plus the items for the output."""
        return {"batch": self.processor(list(items)), "items": list(items)}

    def _forward(
        self, model_inputs: dict[str, Any], reliability: bool = False, removals: Sequence[str] | None = None
    ) -> dict[str, Any]:
        from .calibration.views import MODALITY_OF_REMOVAL, REMOVALS, applicable_removals, removal_view_logits

        removals = REMOVALS if removals is None else removals
        batch = model_inputs["batch"]
        out: dict[str, Any] = {"items": model_inputs["items"]}
        if self.task_kind == "sentiment":
            out["probs"] = torch.softmax(self.model(**batch).logits.float(), -1)
            if reliability:
                out["views"] = {
                    r: torch.softmax(
                        self.model(**batch, modality_mask=_keep_only_without(m, batch)).logits.float(), -1
                    )
                    for r, m in MODALITY_OF_REMOVAL.items()
                    if r in removals
                }
            return out
        outputs = self.model(**batch)
        out["probs"] = torch.softmax(outputs.logits.float(), -1)
        out["utterance_mask"] = batch["utterance_mask"]
        if self.task_kind == "pairs":
            out["pair_probs"] = torch.sigmoid(outputs.pair_logits.float())
            out["candidate_mask"] = outputs.candidate_mask
        if reliability:
            views = removal_view_logits(self.model, batch, applicable_removals(batch, removals, self.model))
            out["views"] = {r: torch.softmax(v.float(), -1) for r, v in views.items()}
        return out

    def postprocess(self, model_outputs: dict[str, Any]) -> list[Any]:
        """Per item: the per-utterance dicts (with the pairs for emotion–cause checkpoints)."""
        names = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        probs, views = model_outputs["probs"], model_outputs.get("views")
        results: list[Any] = []
        for b, item in enumerate(model_outputs["items"]):
            if self.task_kind == "sentiment":
                view_rows = None if views is None else {r: v[b] for r, v in views.items()}
                entry = _prediction(probs[b], names, view_rows)
                if isinstance(item.get("text"), str):
                    entry = {"text": item["text"], **entry}
                results.append(entry)
                continue
            utterances = []
            for t, turn in enumerate(item):
                view_rows = None if views is None else {r: v[b, t] for r, v in views.items()}
                entry = {"speaker": turn["speaker"]}
                if isinstance(turn.get("text"), str):
                    entry["text"] = turn["text"]
                utterances.append({**entry, **_prediction(probs[b, t], names, view_rows)})
            if self.task_kind == "pairs":
                threshold = float(self.model.config.pair_threshold)
                scores = model_outputs["pair_probs"][b]
                chosen = (model_outputs["candidate_mask"][b] & (scores >= threshold)).nonzero().tolist()
                pairs = [
                    {"emotion_utterance": i, "cause_utterance": j, "score": float(scores[i, j])}
                    for i, j in chosen
                ]
                results.append({"utterances": utterances, "pairs": pairs})
            else:
                results.append(utterances)
        return results


def _prediction(
    probs: torch.Tensor, names: list[str], views: Mapping[str, torch.Tensor] | None
) -> dict[str, Any]:
    """Label, confidence and probabilities of one utterance; with ``views``, the label's probability under each
    view and the views under which it strictly rises (CMERC's uncertain-sample test)."""
    label = int(probs.argmax())
    entry: dict[str, Any] = {
        "label": names[label],
        "confidence": float(probs[label]),
        "probabilities": {name: float(p) for name, p in zip(names, probs.tolist())},
    }
    if views is not None:
        confidence = {r: float(v[label]) for r, v in views.items()}
        entry["view_confidence"] = confidence
        entry["rises_under"] = [r for r, c in confidence.items() if c > entry["confidence"]]
    return entry


def _keep_only_without(modality: str, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``modality_mask`` ``(B, 3)`` removing ``modality`` from every clip of ``batch``."""
    first = next(v for k, v in batch.items() if k in MODALITIES)
    keep = torch.ones(first.shape[0], len(MODALITIES), device=first.device)
    keep[:, MODALITIES.index(modality)] = 0.0
    return keep


def _processor_of(model: PreTrainedModel) -> MercProcessor:
    """The processor saved with ``model`` (local folder or Hub repository), else one built from its config."""
    from .processing import PROCESSOR_NAME, MercProcessor

    source = os.fspath(getattr(model, "name_or_path", "") or "")
    if os.path.isfile(os.path.join(source, PROCESSOR_NAME)):
        return MercProcessor.from_pretrained(source)
    if source and not os.path.isdir(source):
        try:
            return MercProcessor.from_pretrained(source)
        except OSError:  # the Hub repository has no processor (or is not reachable): use the config
            pass
    return MercProcessor.from_config(model.config)


def pipeline(
    task: str = TASK,
    model: str | os.PathLike | PreTrainedModel | None = None,
    *,
    processor: MercProcessor | None = None,
    device: int | str | torch.device | None = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> ConversationalEmotionPipeline:
    """Build the ``"conversational-emotion"`` pipeline for a checkpoint folder, Hub id or loaded model.

    ``device``: ``"cpu"``, ``"cuda"``, a GPU index, or ``None`` (the first GPU when there is one, else CPU).
    ``kwargs`` are pipeline defaults (``reliability``, ``removals``).
    """
    if task != TASK:
        raise ValueError(f"merc_hf provides the {TASK!r} pipeline, not {task!r}")
    if model is None:
        raise ValueError("pass model= (a checkpoint folder, a Hub id or a loaded merc_hf model)")
    if not isinstance(model, PreTrainedModel):
        model = AutoModel.from_pretrained(model)
    if device is None:
        device = 0 if torch.cuda.is_available() else -1
    return ConversationalEmotionPipeline(
        model=model, processor=processor, task=TASK, device=device, batch_size=batch_size, **kwargs
    )


def register_pipeline() -> None:
    """Register :data:`TASK` with ``transformers``' pipeline registry (run on ``import merc_hf``)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=ConversationalEmotionPipeline, pt_model=AutoModel
    )


def describe_predictions(results: Any, text_width: int = 40) -> str:
    """A printable table of a pipeline result (one conversation, several, or pair results): per utterance
    the speaker, a text snippet, the label, its confidence and the views that raise it."""
    if isinstance(results, Mapping) or (
        results and isinstance(results[0], Mapping) and "utterances" not in results[0]
    ):
        results = [results]  # one result (a list of utterances or clips, or one pair result), not a list
    blocks = []
    for c, conversation in enumerate(results):
        pairs = conversation.get("pairs") if isinstance(conversation, Mapping) else None
        utterances = conversation["utterances"] if isinstance(conversation, Mapping) else conversation
        lines = [f"conversation {c}" if len(results) > 1 else ""]
        rows = [("#", "speaker", "text", "label", "conf.", "rises under")]
        for t, u in enumerate(utterances):
            text = str(u.get("text", "—"))
            if len(text) > text_width:
                text = text[: text_width - 1] + "…"
            rises = "—" if "rises_under" not in u else (" ".join(u["rises_under"]) or "none")
            rows.append(
                (str(t), str(u.get("speaker", "")), text, u["label"], f"{u['confidence']:.3f}", rises)
            )
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        if pairs is not None:
            listed = ", ".join(
                f"({p['emotion_utterance']}←{p['cause_utterance']} {p['score']:.2f})" for p in pairs
            )
            lines.append(f"pairs (emotion←cause, score): {listed or 'none'}")
        blocks.append("\n".join(line for line in lines if line or len(results) > 1))
    return "\n\n".join(blocks)


__all__ = ["TASK", "ConversationalEmotionPipeline", "describe_predictions", "pipeline", "register_pipeline"]
