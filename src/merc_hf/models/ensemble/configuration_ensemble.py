"""Configuration of a deep ensemble stored as one checkpoint (Lakshminarayanan et al., "Simple and
Scalable Predictive Uncertainty Estimation using Deep Ensembles", NeurIPS 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from ..base import MODALITIES, validate_temperature

# keys of ``PretrainedConfig.to_dict()`` that describe how a config was saved or loaded, not the model
_METADATA_KEYS: tuple[str, ...] = (
    "_name_or_path",
    "transformers_version",
    "architectures",
    "dtype",
    "torch_dtype",
)


def build_member_config(member: Mapping[str, Any]) -> PretrainedConfig:
    """The config described by ``member`` (a ``to_dict()`` output with its ``model_type``), rebuilt with
    ``AutoConfig.for_model``. The member's architecture must be registered (``import merc_hf``)."""
    if not isinstance(member, Mapping):
        raise ValueError(f"member must be a dict (a config's to_dict()), got {type(member).__name__}")
    rest = {k: v for k, v in member.items() if k not in _METADATA_KEYS}
    model_type = rest.pop("model_type", None)
    if not model_type:
        raise ValueError("member must contain the member config's 'model_type'")
    return AutoConfig.for_model(model_type, **rest)


def member_config_dict(config: PretrainedConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A member config as a plain dict without save/load metadata (``_name_or_path``,
    ``transformers_version``, ``architectures``, ``dtype``), in canonical form (integer ``id2label``
    keys), so that two configs of the same architecture compare equal however they were created."""
    if not isinstance(config, PretrainedConfig):
        config = build_member_config(config)
    out = config.to_dict()
    for key in _METADATA_KEYS:
        out.pop(key, None)
    return out


class MercEnsembleConfig(PretrainedConfig):
    """Configuration of :class:`~merc_hf.models.ensemble.MercEnsembleModel`: ``n_members`` copies of one
    member architecture, each with its own weights.

    Args:
        member: the member config as ``config.to_dict()`` (including ``model_type``), e.g. of an
            :class:`~merc_hf.models.m3net.M3NetConfig`. Stored without save/load metadata. ``None`` only
            for the placeholder that ``transformers`` builds to find default values.
        n_members: number of members.
        calibration: as in :class:`~merc_hf.models.base.MercConfig`; default
            ``{"name": "ensemble", "n_members": n_members, "seeds": None}``
            (:meth:`MercEnsembleModel.from_members` records the members' seeds when given).
        logit_temperature: T > 0 dividing the ensemble's log mean probabilities, as ``MercConfig.logit_temperature``
            (1 unless fitted with :class:`merc_hf.calibration.TemperatureScaling`).
        **kwargs: ``PretrainedConfig`` fields. ``id2label`` / ``label2id`` are always the member's.
    """

    model_type = "merc_ensemble"

    def __init__(
        self,
        member: Mapping[str, Any] | None = None,
        n_members: int = 2,
        calibration: dict | None = None,
        logit_temperature: float = 1.0,
        **kwargs,
    ) -> None:
        if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
            raise ValueError(f"n_members must be an int >= 1, got {n_members!r}")
        self.member = None
        if member is not None:
            member_config = build_member_config(member)
            self.member = member_config_dict(member_config)
            kwargs.pop("num_labels", None)
            kwargs["id2label"] = dict(member_config.id2label)
            kwargs["label2id"] = dict(member_config.label2id)
        self.n_members = n_members
        if calibration is None:
            calibration = {"name": "ensemble", "n_members": n_members, "seeds": None}
        self.calibration = dict(calibration)
        self.logit_temperature = validate_temperature(logit_temperature, "logit_temperature")
        super().__init__(**kwargs)

    @property
    def member_config(self) -> PretrainedConfig:
        """A fresh config object of the member architecture."""
        if self.member is None:
            raise ValueError("this MercEnsembleConfig has no member config (member=None)")
        return build_member_config(self.member)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the members use, in :data:`~merc_hf.models.base.MODALITIES` order."""
        if self.member is None:
            return ()
        return tuple(m for m in MODALITIES if self.member.get(f"{m}_dim") is not None)
