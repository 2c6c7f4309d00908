"""Deep ensemble of merc_hf emotion models as one checkpoint.

Lakshminarayanan et al., "Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles",
NeurIPS 2017: ``M`` copies of one architecture trained from different random initialisations (and data
orders); the prediction is the average of the members' predictive distributions,
``p(y | x) = 1/M Σ_m p_m(y | x)``.

:class:`MercEnsembleModel` holds the members as ``members.0``, ``members.1``, ... of one model, so that
``save_pretrained`` writes one ``model.safetensors`` and ``AutoModel.from_pretrained`` returns the whole
ensemble. Its ``forward`` has the signature of :meth:`merc_hf.models.base.MercPreTrainedModel.forward`
and passes ``modality_mask`` / ``context_mask`` to every member, so removal views
(:func:`merc_hf.calibration.removal_view_logits`), the CMERC metrics and temperature scaling work on an
ensemble as on a single backbone.

Departures from the paper: the members are trained independently by the caller (any seeds and
calibration method) and combined afterwards with :meth:`MercEnsembleModel.from_members`; the paper's
optional adversarial training and its Gaussian-mixture regression head are not part of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel

from ..base import EmotionRecognitionOutput, emotion_loss
from .configuration_ensemble import MercEnsembleConfig, member_config_dict

_MISSING = object()


class MercEnsembleModel(PreTrainedModel):
    """``config.n_members`` emotion models of one architecture whose probabilities are averaged.

    Outputs (:class:`~merc_hf.models.base.EmotionRecognitionOutput`):

    * ``logits``: ``log(1/M Σ_m softmax(z_m))`` (computed as a log-sum-exp of log-softmaxes), divided by
      ``config.logit_temperature``; with temperature 1, ``softmax(logits)`` is exactly the averaged probability.
    * ``loss`` (when ``labels`` is given): the NLL of these probabilities, averaged over the labelled real
      utterances. It is the ensemble's own NLL, not the members' losses: members' class weights or focal
      losses do not enter it.
    * ``utterance_repr``: the mean of the members' representations. Members are trained separately, so
      their representation spaces are not aligned; the mean is kept for shape compatibility with the
      backbone interface rather than as a meaningful feature.
    """

    config_class = MercEnsembleConfig
    base_model_prefix = "ensemble"
    main_input_name = "text"
    input_modalities: ClassVar[list[str]] = ["text", "audio", "video"]
    accepts_loss_kwargs = False
    supports_gradient_checkpointing = False
    _no_split_modules: ClassVar[list[str]] = []

    def __init__(self, config: MercEnsembleConfig) -> None:
        super().__init__(config)
        member_config = config.member_config
        self.members = nn.ModuleList([AutoModel.from_config(member_config) for _ in range(config.n_members)])
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing to do: every parameter belongs to a member, which initialises itself."""

    @classmethod
    def from_members(
        cls, models: Sequence[PreTrainedModel], seeds: Sequence[int] | None = None
    ) -> MercEnsembleModel:
        """An ensemble holding copies of the weights of ``models`` (in eval mode, on the first model's
        device and dtype).

        All models must share one config (save/load metadata such as ``_name_or_path`` aside); the
        ensemble config is built from the first one. ``seeds`` (one per model) are recorded in
        ``config.calibration``.
        """
        models = list(models)
        if not models:
            raise ValueError("models must contain at least one model")
        for i, model in enumerate(models):
            if not isinstance(model, PreTrainedModel):
                raise ValueError(f"models[{i}] must be a PreTrainedModel, got {type(model).__name__}")
            if type(model) is not type(models[0]):
                raise ValueError(
                    f"models[{i}] is a {type(model).__name__} but models[0] is a {type(models[0]).__name__}"
                )
        reference = member_config_dict(models[0].config)
        for i, model in enumerate(models[1:], start=1):
            other = member_config_dict(model.config)
            for key in sorted(reference.keys() | other.keys()):
                mine, theirs = other.get(key, _MISSING), reference.get(key, _MISSING)
                if mine != theirs:
                    raise ValueError(
                        f"models[{i}].config differs from models[0].config in {key!r}: "
                        f"{'<missing>' if mine is _MISSING else repr(mine)} != "
                        f"{'<missing>' if theirs is _MISSING else repr(theirs)}; all members must share one config"
                    )
        if seeds is not None:
            seeds = list(seeds)
            if len(seeds) != len(models):
                raise ValueError(f"seeds must have one entry per model ({len(models)}), got {len(seeds)}")
            if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
                raise ValueError(f"seeds must be ints, got {seeds!r}")
        config = MercEnsembleConfig(
            member=reference,
            n_members=len(models),
            calibration={"name": "ensemble", "n_members": len(models), "seeds": seeds},
        )
        ensemble = cls(config)
        if type(ensemble.members[0]) is not type(models[0]):
            raise ValueError(
                f"the model_type {reference['model_type']!r} builds a {type(ensemble.members[0]).__name__}, "
                f"not a {type(models[0]).__name__}: register the members' class with AutoModel"
            )
        for member, model in zip(ensemble.members, models):
            member.load_state_dict(model.state_dict())
        return ensemble.to(device=models[0].device, dtype=models[0].dtype).eval()

    def forward(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        visual: torch.Tensor | None = None,
        speakers: torch.Tensor | None = None,
        utterance_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        same_speaker: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        view_mode: str = "exact",
        return_dict: bool | None = None,
    ) -> EmotionRecognitionOutput | tuple[torch.Tensor, ...]:
        """Classify every utterance with every member and average their probabilities.

        Arguments as :meth:`merc_hf.models.base.MercPreTrainedModel.forward`; all but ``labels`` and
        ``return_dict`` are passed to each member.
        """
        log_probs, representations = [], []
        for member in self.members:
            out = member(
                text=text,
                audio=audio,
                visual=visual,
                speakers=speakers,
                utterance_mask=utterance_mask,
                same_speaker=same_speaker,
                modality_mask=modality_mask,
                context_mask=context_mask,
                view_mode=view_mode,
                return_dict=True,
            )
            log_probs.append(F.log_softmax(out.logits, dim=-1))
            representations.append(out.utterance_repr)
        logits = torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(self.members))
        if self.config.logit_temperature != 1.0:
            logits = logits / self.config.logit_temperature
        utterance_repr = torch.stack(representations).mean(dim=0)
        loss = None
        if labels is not None:
            # softmax(log p̄) = p̄, so the cross-entropy of these logits is the NLL of the averaged probability
            loss = emotion_loss(
                logits,
                labels.to(logits.device),
                loss_type="cross_entropy",
                utterance_mask=None if utterance_mask is None else utterance_mask.to(logits.device),
            )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output = EmotionRecognitionOutput(loss=loss, logits=logits, utterance_repr=utterance_repr)
        return output if return_dict else output.to_tuple()
