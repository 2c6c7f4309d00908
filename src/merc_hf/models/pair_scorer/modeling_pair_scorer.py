"""A multimodal emotion–cause pair scorer in plain PyTorch.

RPCL (Pan et al., arXiv 2606.18893) is trained on top of a "matched base": a pair scorer trained with
pair-level cross-entropy over valid candidates. No code of that base is public; the closest public model
of this shape is HiLo (``WHULACC/hilo: src/model.py``): fused utterance features, a contextual encoder,
emotion and cause heads, and a 2-way pair classifier over the lower-triangular candidate matrix
(``mecpe_rpcl_and_chsims_cmc.md`` §2.2, §3.4). This model has that shape, without HiLo's speaker
attentions, RoPE scorer and speaker-JSD prior:

1. **Utterance fusion**: for each configured modality ``m``, ``LayerNorm(W_m x_m)``; the projections are
   summed with a learned speaker embedding, then dropout → ``u_t`` (``(B, T, H)``).
2. **Context**: a 1-layer bidirectional GRU over the dialogue (:class:`ContextMaskedRNN`, so
   ``context_mask`` is honoured exactly) and a residual ``h_t = LayerNorm(u_t + GRU(u)_t)``.
3. **Heads**: emotion logits ``Linear(h_t)`` (``num_labels`` classes), cause logit ``Linear(h_t)`` (is
   ``t`` the cause of some emotion), and for each candidate ``(i, j)`` the pair logit
   ``s_ij = w · ReLU(W_e h_i + W_c h_j + r_{clip(i - j)}) + b`` with a relative-position embedding
   ``r``; ``p_ij = sigmoid(s_ij)``.
4. **Loss** (when labels are given): emotion loss (:func:`~merc_hf.models.base.emotion_loss`) + binary
   cause CE + pair CE over the valid candidates (:func:`pair_loss`). A 2-way softmax CE with logits
   ``(0, s)`` equals the binary CE on ``s``, so a single pair logit is the 2-way pair classifier of HiLo.

``corruption_mask`` ``(B, T)`` zeroes ``u_t`` of the marked utterances *before* the contextual encoder,
all modalities together: the corrupted-context view of RPCL's CCPS term (:mod:`merc_hf.calibration.rpcl`).
Zeroing before the context encoder (not after it) is this package's reading of "zero the representation
h_t": only then does corrupting non-gold utterances change the gold pairs' context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..base import MercPreTrainedModel
from ..layers.sequence import ContextMaskedRNN
from .configuration_pair_scorer import PairScorerConfig


@dataclass
class PairExtractionOutput(ModelOutput):
    """Output of :class:`PairScorerModel`.

    Args:
        loss: emotion + cause + pair loss (when ``labels``, ``cause_labels`` and ``pair_labels`` are given).
        logits: ``(B, T, C)`` emotion logits.
        cause_logits: ``(B, T)`` logit that the utterance is a cause.
        pair_logits: ``(B, T, T)`` logit that ``(emotion_utt i, cause_utt j)`` is a pair; meaningful only
            where ``candidate_mask`` is True.
        candidate_mask: ``(B, T, T)`` bool, the valid candidates (configured candidate space, real
            utterances only).
        utterance_repr: ``(B, T, H)`` contextual utterance representation ``h_t``; zero at padding.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cause_logits: torch.FloatTensor | None = None
    pair_logits: torch.FloatTensor | None = None
    candidate_mask: torch.BoolTensor | None = None
    utterance_repr: torch.FloatTensor | None = None


def candidate_mask(
    utterance_mask: torch.Tensor, space: str = "cause_before_emotion", window: int = 6
) -> torch.Tensor:
    """``(B, T, T)`` bool: ``[b, i, j]`` when ``(emotion i, cause j)`` is a candidate of ``space``
    (``"cause_before_emotion"``: ``j <= i``; ``"window"``: ``|i - j| <= window``; ``"all"``) and both
    utterances are real."""
    utterance_mask = utterance_mask.bool()
    length = utterance_mask.shape[1]
    steps = torch.arange(length, device=utterance_mask.device)
    offset = steps[:, None] - steps[None, :]  # i - j
    if space == "cause_before_emotion":
        allowed = offset >= 0
    elif space == "window":
        allowed = offset.abs() <= window
    elif space == "all":
        allowed = torch.ones_like(offset, dtype=torch.bool)
    else:
        raise ValueError(f"unknown candidate space {space!r}")
    return allowed[None] & utterance_mask[:, :, None] & utterance_mask[:, None, :]


def pair_loss(
    pair_logits: torch.Tensor,
    pair_labels: torch.Tensor,
    candidates: torch.Tensor,
    positive_weight: float = 1.0,
) -> torch.Tensor:
    """Pair-level binary cross-entropy averaged over the valid candidates of the batch.

    ``-[w·y log p + (1 - y) log(1 - p)]`` with ``p = sigmoid(pair_logits)``, ``y = pair_labels`` (1 for a
    gold pair) and ``w = positive_weight``, averaged over the positions where ``candidates`` is True (gold
    pairs outside the candidate space cannot be learnt and are not counted). A differentiable zero when
    the batch has no candidate.
    """
    if not bool(candidates.any()):
        return pair_logits.sum() * 0.0
    logits = pair_logits[candidates].float()
    targets = pair_labels[candidates].to(logits.dtype)
    weight = torch.as_tensor(positive_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)


class PairScorerModel(MercPreTrainedModel):
    """Emotion, cause and pair scores for every utterance and candidate pair of a padded batch of
    conversations (module docstring for the architecture)."""

    config_class = PairScorerConfig
    base_model_prefix = "pair_scorer"
    _no_split_modules: ClassVar[list[str]] = []
    merc_task = "pairs"

    def __init__(self, config: PairScorerConfig) -> None:
        super().__init__(config)
        hidden = config.hidden_size
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(getattr(config, f"{m}_dim"), hidden), nn.LayerNorm(hidden))
                for m in config.modalities
            }
        )
        self.speaker_embeddings = nn.Embedding(config.n_speakers, hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.context = ContextMaskedRNN(hidden, hidden // 2, num_layers=1, bidirectional=True, cell="gru")
        self.context_norm = nn.LayerNorm(hidden)
        self.emotion_head = nn.Linear(hidden, config.num_labels)
        self.cause_head = nn.Linear(hidden, 1)
        self.pair_emotion = nn.Linear(hidden, hidden)
        self.pair_cause = nn.Linear(hidden, hidden, bias=False)
        self.relative_position = nn.Embedding(2 * config.max_relative_position + 1, hidden)
        self.pair_out = nn.Linear(hidden, 1)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Embedding):
            # unit-variance embeddings would swamp the LayerNorm-ed features they are added to
            init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        visual: torch.Tensor | None = None,
        speakers: torch.Tensor | None = None,
        utterance_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cause_labels: torch.Tensor | None = None,
        pair_labels: torch.Tensor | None = None,
        same_speaker: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        corruption_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> PairExtractionOutput | tuple[torch.Tensor, ...]:
        """Score a padded batch of conversations (the pair batch of :class:`~merc_hf.data.PairCollator`).

        Args:
            text, audio, visual, speakers, utterance_mask, modality_mask, context_mask: as in
                :meth:`MercPreTrainedModel.forward`.
            labels: ``(B, T)`` emotion ids, -100 where unlabelled.
            cause_labels: ``(B, T)`` 1 if the utterance is the cause in a gold pair, else 0; -100 at padding.
            pair_labels: ``(B, T, T)`` 1 at gold ``(emotion_utt, cause_utt)`` pairs, else 0.
            same_speaker: accepted so that a collated batch can be passed as ``model(**batch)``; unused.
            corruption_mask: ``(B, T)`` bool, utterances whose fused representation is zeroed before the
                context encoder (RPCL's corrupted view).
            return_dict: return a tuple instead of :class:`PairExtractionOutput` when False.
        """
        del same_speaker
        inputs = self.prepare_inputs(
            text, audio, visual, speakers, utterance_mask, modality_mask, context_mask
        )
        mask = inputs.utterance_mask
        if mask.shape[1] > self.config.max_utterances:
            raise ValueError(
                f"the batch has dialogues of {mask.shape[1]} utterances but max_utterances is "
                f"{self.config.max_utterances}; raise it in the config"
            )
        fused = sum(self.projections[m](inputs.features[m]) for m in self.config.modalities)
        fused = self.dropout(fused + self.speaker_embeddings(inputs.speakers))
        if corruption_mask is not None:
            fused = fused.masked_fill(corruption_mask.to(fused.device).bool()[..., None], 0.0)
        fused = fused.masked_fill(~mask[..., None], 0.0)
        context = self.context(fused, mask, None if inputs.full_context else inputs.context_mask)
        hidden = self.context_norm(fused + self.dropout(context)).masked_fill(~mask[..., None], 0.0)

        logits = self.emotion_head(hidden)
        cause_logits = self.cause_head(hidden).squeeze(-1)
        steps = torch.arange(mask.shape[1], device=mask.device)
        limit = self.config.max_relative_position
        offsets = (steps[:, None] - steps[None, :]).clamp(-limit, limit) + limit
        pair_hidden = (
            self.pair_emotion(hidden)[:, :, None, :]
            + self.pair_cause(hidden)[:, None, :, :]
            + self.relative_position(offsets)[None]
        )
        pair_logits = self.pair_out(F.relu(self.dropout(pair_hidden))).squeeze(-1)
        candidates = candidate_mask(mask, self.config.candidate_space, self.config.candidate_window)

        loss = None
        if labels is not None or cause_labels is not None or pair_labels is not None:
            loss = pair_logits.new_zeros(())
            if labels is not None:
                loss = loss + self.compute_loss(logits, labels.to(logits.device), mask)
            if cause_labels is not None:
                cause_labels = cause_labels.to(cause_logits.device)
                known = mask & (cause_labels >= 0)
                if bool(known.any()):
                    loss = loss + F.binary_cross_entropy_with_logits(
                        cause_logits[known].float(), cause_labels[known].float()
                    )
            if pair_labels is not None:
                loss = loss + pair_loss(
                    pair_logits,
                    pair_labels.to(pair_logits.device),
                    candidates,
                    self.config.pair_positive_weight,
                )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output = PairExtractionOutput(
            loss=loss,
            logits=logits,
            cause_logits=cause_logits,
            pair_logits=pair_logits,
            candidate_mask=candidates,
            utterance_repr=hidden,
        )
        return output if return_dict else output.to_tuple()
