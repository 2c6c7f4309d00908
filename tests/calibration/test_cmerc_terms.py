"""Each CMERC term against a value computed by hand on a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

from merc_hf.calibration import (
    CMERC,
    confidence_constraint,
    conversation_difficulty,
    log_confidence_rises,
    removal_pseudo_labels,
    supervised_contrastive_loss,
)


def logits_of(*rows):
    """Logits whose softmax is exactly the given probability rows."""
    return torch.log(torch.tensor(rows, dtype=torch.float32))


def test_log_confidence_rises():
    full = logits_of([0.5, 0.3, 0.2], [0.2, 0.7, 0.1])[None]
    labels = torch.tensor([[0, 1]])
    views = {
        "A": logits_of([0.6, 0.2, 0.2], [0.1, 0.8, 0.1])[None],  # log 0.6/0.5, log 0.8/0.7
        "X": logits_of([0.4, 0.4, 0.2], [0.3, 0.6, 0.1])[None],  # falls -> 0, falls -> 0
    }
    rises = log_confidence_rises(full, views, labels)
    expected = torch.tensor([[math.log(0.6 / 0.5), math.log(0.8 / 0.7)]])
    torch.testing.assert_close(rises["A"], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(rises["X"], torch.zeros(1, 2))
    assert log_confidence_rises(full, views, torch.tensor([[0, -100]]))["A"][0, 1] == 0


def test_conversation_difficulty_log_form_by_hand():
    """DF = (Σ_k Σ_ξ max(0, log p_ξ[y] − log p[y]) + S) / (S + T), the reference's cal_diff.py."""
    full = logits_of([0.5, 0.5], [0.8, 0.2], [0.5, 0.5])[None]
    views = {
        "A": logits_of([0.6, 0.4], [0.4, 0.6], [0.99, 0.01])[None],  # log(0.6/0.5), 0, (padding)
        "X": logits_of([0.5, 0.5], [0.9, 0.1], [0.99, 0.01])[None],  # 0, log(0.9/0.8), (padding)
    }
    labels = torch.tensor([[0, 0, -100]])
    speakers = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[True, True, False]])  # the third position is padding
    rises = math.log(0.6 / 0.5) + math.log(0.9 / 0.8)
    expected = (rises + 2) / (2 + 2)  # S = 2 speakers, T = 2 utterances
    got = conversation_difficulty(full, views, labels, speakers, mask)
    torch.testing.assert_close(got, torch.tensor([expected]), atol=1e-6, rtol=0)
    # a dialogue where no removal raises confidence has DF = S / (S + T)
    calm = conversation_difficulty(full, {"A": full}, labels, speakers, mask)
    torch.testing.assert_close(calm, torch.tensor([0.5]))


def test_removal_pseudo_labels_alg1():
    labels = torch.tensor([0, 0, 0, 0])
    full = logits_of([0.6, 0.4], [0.6, 0.4], [0.7, 0.3], [0.3, 0.7])
    view = logits_of([0.4, 0.6], [0.8, 0.2], [0.6, 0.4], [0.2, 0.8])
    # right->wrong: 1; both right, view more confident: 0; both right, full more confident: 1; both wrong: 0
    assert removal_pseudo_labels(full, view, labels).tolist() == [1, 0, 1, 0]


def test_supervised_contrastive_loss_by_hand():
    features = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # normalised: e1, e1, e2
    labels = torch.tensor([0, 0, 1])
    eps = 1e-7
    # anchors 1 and 2: s = 1 with each other, 0 with sample 3; anchor 3: s = 0 with both (τ = 1)
    a12 = math.log(((1 + eps) * math.e + eps) / ((1 + eps) * math.e + eps + 1.0))
    a3 = math.log((2 * eps) / (2 * eps + 2.0))
    weights = [3 / 2, 3 / 2, 3 / 1]  # N / count(label)
    expected = -(weights[0] * a12 + weights[1] * a12 + weights[2] * a3) / 3
    got = supervised_contrastive_loss(features, labels, temperature=1.0, eps=eps)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert supervised_contrastive_loss(features[:1], labels[:1]).item() == 0.0


def test_supervised_contrastive_loss_pulls_same_labels_together():
    labels = torch.tensor([0, 0, 1, 1])
    aligned = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    assert supervised_contrastive_loss(aligned, labels) < supervised_contrastive_loss(mixed, labels)


def test_confidence_constraint_eq8_detaches_views():
    full = logits_of([0.5, 0.5], [0.8, 0.2]).requires_grad_(True)
    view = logits_of([0.7, 0.3], [0.6, 0.4]).requires_grad_(True)
    labels = torch.tensor([0, 0])
    loss = confidence_constraint(full[None], {"T": view[None]}, labels[None])
    assert loss.item() == pytest.approx(math.log(0.7) - math.log(0.5), rel=1e-5)  # the second row is 0
    loss.backward()
    assert view.grad is None and full.grad is not None and full.grad[1].abs().sum() == 0


def test_cmerc_validates_its_arguments():
    with pytest.raises(ValueError, match="gamma_s"):
        CMERC(gamma_s=-1)
    with pytest.raises(ValueError, match="curriculum_ratio"):
        CMERC(curriculum_ratio=0)
    with pytest.raises(ValueError, match="view_mode"):
        CMERC(view_mode="approximate")
    assert CMERC().to_dict()["removals"] == ["A", "V", "T", "X", "O"]


def test_contrastive_losses_for_several_label_sets_equal_separate_calls():
    """The shared-similarity computation for K labelings equals K separate losses."""
    from merc_hf.calibration.cmerc import supervised_contrastive_losses

    generator = torch.Generator().manual_seed(5)
    features = torch.randn(30, 8, generator=generator, requires_grad=True)
    label_sets = torch.randint(0, 3, (4, 30), generator=generator)
    together = supervised_contrastive_losses(features, label_sets, temperature=0.1)
    separate = torch.stack([supervised_contrastive_loss(features, labels, 0.1) for labels in label_sets])
    torch.testing.assert_close(together, separate)
    assert together.shape == (4,) and together.requires_grad
