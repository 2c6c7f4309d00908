"""CML (Ma et al., ICML 2023): the penalty against values computed by hand on a tiny batch, its gradients,
and the training term on a tiny M3Net."""

from __future__ import annotations

import pytest
import torch

import merc_hf
from merc_hf.calibration import CML, cml_penalty
from merc_hf.data import DialogueCollator
from merc_hf.models.m3net import M3NetConfig, M3NetModel


def logits_of(*rows):
    """Logits whose softmax is exactly the given probability rows."""
    return torch.log(torch.tensor(rows, dtype=torch.float32))


MASK = torch.tensor([[True, True, False]])  # B = 1, T = 3, the last position is padding
FULL = logits_of([0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.34, 0.33, 0.33])[None]  # confidences .5, .7


def test_penalty_by_hand():
    views = {
        "A": logits_of([0.6, 0.2, 0.2], [0.1, 0.8, 0.1], [0.98, 0.01, 0.01])[None],  # +.1, +.1
        "T": logits_of([0.4, 0.4, 0.2], [0.05, 0.15, 0.8], [0.98, 0.01, 0.01])[None],  # -.1 -> 0, +.1
    }
    # (0.1 + 0.1 + 0 + 0.1) / (2 real utterances x 2 views); the confident padding row counts nowhere
    assert cml_penalty(FULL, views, MASK).item() == pytest.approx(0.075, abs=1e-6)
    # the view's predicted class may differ from the full input's: only the confidence matters
    assert cml_penalty(FULL, {"T": views["T"]}, MASK).item() == pytest.approx(0.1 / 2, abs=1e-6)


def test_penalty_is_zero_when_the_views_are_less_confident():
    views = {"V": logits_of([0.4, 0.3, 0.3], [0.3, 0.6, 0.1], [0.98, 0.01, 0.01])[None]}
    assert cml_penalty(FULL, views, MASK).item() == 0.0
    assert cml_penalty(FULL, {}, MASK).item() == 0.0
    assert cml_penalty(FULL, views, torch.zeros_like(MASK)).item() == 0.0


def test_penalty_gradient_reaches_full_and_view_logits():
    full = FULL.clone().requires_grad_(True)
    view = logits_of([0.6, 0.2, 0.2], [0.3, 0.6, 0.1], [0.98, 0.01, 0.01])[None].requires_grad_(True)
    cml_penalty(full, {"A": view}, MASK).backward()
    # only the first utterance violates the principle (0.6 > 0.5); the second (0.6 < 0.7) and padding do not
    assert full.grad[0, 0].abs().sum() > 0 and view.grad[0, 0].abs().sum() > 0
    assert full.grad[0, 1:].abs().sum() == 0 and view.grad[0, 1:].abs().sum() == 0
    # d/dz of max(0, p_view[0] - p_full[0]) for the confidence p[0]: p[0](e_0 - p) on the view, minus on the full
    p_view = torch.tensor([0.6, 0.2, 0.2])
    p_full = torch.tensor([0.5, 0.3, 0.2])
    e0 = torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(view.grad[0, 0], 0.6 * (e0 - p_view) / 2)
    torch.testing.assert_close(full.grad[0, 0], -0.5 * (e0 - p_full) / 2)


def test_penalty_checks_shapes():
    with pytest.raises(ValueError, match="full_logits"):
        cml_penalty(FULL[0], {}, MASK)
    with pytest.raises(ValueError, match="utterance_mask"):
        cml_penalty(FULL, {}, MASK[:, :2])
    with pytest.raises(ValueError, match=r"view_logits\['A'\]"):
        cml_penalty(FULL, {"A": FULL[:, :2]}, MASK)


def test_cml_validates_its_arguments():
    assert CML().to_dict() == {"name": "cml", "weight": 1.0, "removals": ["A", "V", "T"]}
    with pytest.raises(ValueError, match="removals"):
        CML(removals=("A", "X"))
    with pytest.raises(ValueError, match="removals"):
        CML(removals=())
    with pytest.raises(ValueError, match="weight"):
        CML(weight=-1.0)
    with pytest.raises(ValueError, match="weight"):
        CML(weight=float("nan"))


@pytest.fixture(scope="module")
def batch():
    data = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=20, seed=0, dims={"text": 6, "audio": 5, "visual": 5}
    )
    return DialogueCollator()([data["train"][i] for i in range(4)])


def tiny_model(dropout: float) -> M3NetModel:
    torch.manual_seed(0)
    config = M3NetConfig(
        text_dim=6,
        audio_dim=5,
        visual_dim=None,  # the batch has visual features; the model ignores them and "V" is skipped
        hidden_size=8,
        graph_hidden_size=8,
        num_L=1,
        num_K=1,
        n_speakers=9,
        dropout=dropout,
        id2label=dict(enumerate("abcdefg")),
    )
    return M3NetModel(config).train()


def test_training_loss_on_a_tiny_m3net(batch):
    model = tiny_model(dropout=0.1)
    outputs = model(**batch)
    term, parts = CML(weight=0.5).training_loss(model, batch, outputs)
    assert model.training
    assert term.ndim == 0 and torch.isfinite(term) and term.requires_grad
    assert set(parts) == {"cml"} and parts["cml"] == pytest.approx(term.item())
    (outputs.loss + term).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # the views carry gradient themselves: with the full logits detached the term still has a graph
    detached = type(outputs)(logits=outputs.logits.detach())
    view_side, _ = CML().training_loss(model, batch, detached)
    assert view_side.requires_grad


def test_training_loss_equals_the_penalty_of_the_removal_views(batch):
    model = tiny_model(dropout=0.0)  # deterministic, so the stacked pass can be compared with single ones
    outputs = model(**batch)
    term, _ = CML(weight=2.0).training_loss(model, batch, outputs)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    views = {}
    for name, column in (("A", 1), ("T", 0)):
        keep = torch.ones(len(batch["utterance_mask"]), 3)
        keep[:, column] = 0.0
        views[name] = model(**inputs, modality_mask=keep).logits
    expected = 2.0 * cml_penalty(outputs.logits, views, batch["utterance_mask"])
    assert expected.item() > 0  # the untrained model does violate the principle somewhere
    torch.testing.assert_close(term, expected, atol=1e-6, rtol=1e-5)


def test_training_loss_with_zero_weight_skips_the_views(batch):
    model = tiny_model(dropout=0.0)
    outputs = model(**batch)
    term, parts = CML(weight=0.0).training_loss(model, batch, outputs)
    assert term.item() == 0.0 and parts == {"cml": 0.0}
