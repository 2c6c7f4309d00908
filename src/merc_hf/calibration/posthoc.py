"""Post-hoc calibration: temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
ICML 2017).

One scalar temperature ``T > 0`` divides the logits of a trained model, ``softmax(z / T)``; ``T`` is
chosen to minimise the negative log-likelihood on held-out data (never the test split). It changes no
prediction (the arg-max is invariant), only the confidence: ``T > 1`` softens an over-confident model.

* :func:`fit_temperature` fits ``T`` on given logits and labels.
* :class:`TemperatureScaling` predicts a validation split with a merc_hf model, fits ``T`` and stores it
  in the model config (``config.logit_temperature``), which every merc_hf ``forward`` applies before its loss,
  so that ``save_pretrained`` / ``from_pretrained`` carry the calibration with the checkpoint.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from torch import nn

from ..models.base import MercPreTrainedModel, validate_temperature
from ..models.ensemble import MercEnsembleModel

IGNORE_INDEX = -100
MIN_TEMPERATURE = 1e-3
MAX_TEMPERATURE = 1e3


def _as_tensor(values: Any, name: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a numpy array or a torch tensor, got {type(values).__name__}"
        ) from error


def fit_temperature(logits: Any, labels: Any, *, max_iter: int = 100) -> float:
    """The temperature ``T`` minimising the mean NLL of ``softmax(logits / T)`` (Guo et al., ICML 2017).

    The optimisation runs in float64 with ``torch.optim.LBFGS`` (strong Wolfe line search) over ``log T``,
    which keeps ``T`` positive, starting from ``T = 1``. ``T`` is confined to
    [:data:`MIN_TEMPERATURE`, :data:`MAX_TEMPERATURE`]. Without an interior optimum the NLL keeps
    decreasing as ``T → 0`` (every labelled prediction is right) or ``T → ∞``; the fit then stops where the
    NLL no longer changes in float64, or at a bound.

    Log-probabilities may be passed instead of logits: softmax is invariant to adding a constant to a row,
    so ``log softmax(z)`` and ``z`` give the same fit. Entries of ``-inf`` (a probability of exactly 0) are
    allowed except for the gold class.

    Args:
        logits: ``(N, C)`` logits or log-probabilities, numpy or torch.
        labels: ``(N,)`` integer class ids; entries equal to -100 are ignored.
        max_iter: maximal number of L-BFGS iterations.

    Returns:
        The fitted ``T`` as a Python float.
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    z = _as_tensor(logits, "logits")
    y = _as_tensor(labels, "labels")
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(z.shape)}")
    if z.shape[1] < 2:
        raise ValueError(f"logits need at least 2 classes, got shape {tuple(z.shape)}")
    if z.dtype.is_complex or z.dtype == torch.bool:
        raise ValueError(f"logits must be real numbers, got dtype {z.dtype}")
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(f"labels must have shape ({z.shape[0]},) to match logits, got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    y = y.long()
    keep = y != IGNORE_INDEX
    if not bool(keep.any()):
        raise ValueError("labels has no entry other than -100: nothing to fit the temperature on")
    z, y = z[keep].to(torch.float64), y[keep]
    num_classes = z.shape[1]
    if bool(((y < 0) | (y >= num_classes)).any()):
        raise ValueError(f"labels must be in [0, {num_classes}) or -100")
    if bool((torch.isnan(z) | (z == math.inf)).any()):
        raise ValueError("logits must not contain NaN or +inf")
    finite = torch.isfinite(z)
    if not bool(finite.gather(1, y[:, None]).all()):
        raise ValueError("logits are -inf at a gold label (probability 0): the NLL is infinite for every T")
    # -inf entries are kept out of the arithmetic: dividing them by T would give NaN gradients
    safe = torch.where(finite, z, torch.zeros_like(z))
    neg_inf = torch.full_like(z, -math.inf)
    lower, upper = math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_t],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        temperature = log_t.clamp(lower, upper).exp()
        loss = F.cross_entropy(torch.where(finite, safe / temperature, neg_inf), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().clamp(lower, upper).exp())


def applies_temperature(model: nn.Module) -> bool:
    """Whether ``model``'s forward divides its emotion logits by ``config.logit_temperature``: the backbones
    using :meth:`MercPreTrainedModel.forward` and ensembles do; the pair scorer has its own forward."""
    if isinstance(model, MercEnsembleModel):
        return True
    return isinstance(model, MercPreTrainedModel) and type(model).forward is MercPreTrainedModel.forward


@dataclass
class TemperatureScaling:
    """Temperature scaling of a trained merc_hf model (Guo et al., ICML 2017), stored in its config.

    Args:
        max_iter: L-BFGS iterations of :func:`fit_temperature`.
    """

    max_iter: int = 100

    name = "temperature_scaling"

    def __post_init__(self) -> None:
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {self.max_iter!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}

    def fit(
        self,
        model: nn.Module,
        dataset: Dataset,
        *,
        split_name: str = "validation",
        batch_size: int = 16,
        show_progress: bool = False,
    ) -> float:
        """Fit ``T`` on ``dataset`` (one dialogue per row) and record it in ``model.config``.

        The model predicts the dataset with :func:`merc_hf.inference.predict_dataset` at temperature 1
        (``config.logit_temperature`` is reset while predicting, so refitting a scaled model gives the same
        ``T``); ``T`` is fitted on the log of these probabilities. Afterwards ``config.logit_temperature = T``
        and ``config.calibration`` is ``{"name": "temperature_scaling", "temperature": T, "fitted_on":
        split_name, "base": <the previous calibration>}``, where a previous temperature-scaling record is
        replaced rather than nested (its own ``base`` is kept). The model's train/eval mode is restored.

        Args:
            model: a merc_hf emotion model whose forward applies ``config.logit_temperature``
                (:func:`applies_temperature`: a backbone or a ``MercEnsembleModel``).
            dataset: the held-out split to fit on.
            split_name: the split's name, recorded in the config. ``"test"`` is refused: fitting on the
                test split would leak it into the reported calibration.
            batch_size: dialogues per prediction batch.
            show_progress: show a progress bar while predicting.

        Returns:
            The fitted temperature.
        """
        # imported here: merc_hf.inference imports this package (removal views), a cycle at import time
        from ..inference import predict_dataset

        if not isinstance(split_name, str) or not split_name:
            raise ValueError(f"split_name must be a non-empty string, got {split_name!r}")
        if split_name.strip().lower() == "test":
            raise ValueError(
                f"split_name={split_name!r}: the temperature must never be fitted on the test split; "
                "fit it on the validation split"
            )
        if not applies_temperature(model):
            raise ValueError(
                "model must be a merc_hf emotion model whose forward applies config.logit_temperature (a "
                f"MercPreTrainedModel backbone or a MercEnsembleModel), got {type(model).__name__}"
            )
        config = model.config
        previous_temperature = config.logit_temperature
        was_training = model.training
        config.logit_temperature = 1.0
        try:
            predictions = predict_dataset(model, dataset, batch_size=batch_size, show_progress=show_progress)
            # a float32 softmax underflows to exactly 0 for very confident rows; the smallest positive
            # float32 is an upper bound of such a probability and keeps its log finite
            floor = float(np.nextafter(np.float32(0), np.float32(1)))
            log_probs = np.log(np.maximum(predictions.probs.astype(np.float64), floor))
            temperature = fit_temperature(log_probs, predictions.references, max_iter=self.max_iter)
        except BaseException:
            config.logit_temperature = previous_temperature
            raise
        finally:
            model.train(was_training)
        config.logit_temperature = validate_temperature(temperature)
        base = copy.deepcopy(getattr(config, "calibration", None))
        if isinstance(base, dict) and base.get("name") == self.name:
            base = base.get("base")
        config.calibration = {
            "name": self.name,
            "temperature": temperature,
            "fitted_on": split_name,
            "base": base,
        }
        return temperature
