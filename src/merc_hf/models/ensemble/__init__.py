"""Deep ensembles (Lakshminarayanan et al., NeurIPS 2017) of merc_hf emotion models as one checkpoint."""

from .configuration_ensemble import MercEnsembleConfig, build_member_config, member_config_dict
from .modeling_ensemble import MercEnsembleModel

__all__ = ["MercEnsembleConfig", "MercEnsembleModel", "build_member_config", "member_config_dict"]
