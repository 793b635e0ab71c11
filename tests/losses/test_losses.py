"""KD and CE losses: golden values computed independently (NumPy / by hand). Tolerance 1e-6."""

import math

import numpy as np
import pytest

from pipeline.losses import LossConfigError, build_loss, build_objective

pytestmark = pytest.mark.unit
TOL = 1e-6


def _kd_reference(s, p, t):
    """Independent NumPy version of KL(p_T || q_T) * T^2 with p_T = p^(1/T) renormalized."""
    pt = p ** (1 / t)
    pt /= pt.sum(axis=1, keepdims=True)
    z = s / t
    q = np.exp(z - z.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    return float((pt * (np.log(pt) - np.log(q))).sum(axis=1).mean() * t * t)


def test_kd_hand_computed_two_classes():
    import torch

    # teacher p = (0.8, 0.2), T = 2: p_T = (sqrt .8, sqrt .2) / sum = (2/3, 1/3); student logits (0, 0): q = (.5, .5)
    # KL = 2/3 ln(4/3) + 1/3 ln(2/3); times T^2 = 4
    expected = 4 * (2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3))
    got = build_loss("kd", temperature=2.0)(torch.zeros(1, 2), torch.tensor([[0.8, 0.2]]), None)
    assert abs(float(got) - expected) < TOL
    assert abs(expected - 0.2265320) < 1e-6  # = 4 * (0.191788 - 0.135155), for readers


def test_kd_matches_numpy_reference_on_random_batch():
    import torch

    rng = np.random.default_rng(0)
    s = rng.normal(size=(5, 7)) * 3
    p = rng.dirichlet(np.ones(7), size=5)
    for t in (1.0, 4.0):
        got = build_loss("kd", temperature=t)(torch.tensor(s), torch.tensor(p), None)
        assert abs(float(got) - _kd_reference(s, p, t)) < TOL


def test_kd_is_zero_when_student_matches_teacher():
    import torch

    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    assert abs(float(build_loss("kd", temperature=3.0)(torch.log(p), p, None))) < TOL


def test_ce_uses_gold_where_present_else_teacher_argmax():
    import torch

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    teacher = torch.tensor([[0.1, 0.1, 0.8], [0.1, 0.8, 0.1]])
    targets = torch.tensor([0, -1])  # row 0 gold = 0; row 1 no gold -> teacher argmax 1
    lse0 = math.log(math.exp(2) + 2)
    lse1 = math.log(math.e + 2)
    expected = ((lse0 - 2.0) + (lse1 - 1.0)) / 2
    assert abs(float(build_loss("ce")(logits, teacher, targets)) - expected) < TOL


def test_objective_weights_terms():
    import torch

    logits = torch.tensor([[0.5, -0.5, 0.0]])
    teacher = torch.tensor([[0.6, 0.3, 0.1]])
    targets = torch.tensor([-1])
    kd = float(build_loss("kd", temperature=4.0)(logits, teacher, targets))
    ce = float(build_loss("ce")(logits, teacher, targets))
    obj = build_objective({"kd": {"weight": 0.9, "temperature": 4.0}, "ce": {"weight": 0.1}})
    assert abs(float(obj(logits, teacher, targets)) - (0.9 * kd + 0.1 * ce)) < TOL


def test_unknown_loss_argument_is_named():
    with pytest.raises(LossConfigError, match="distill.losses.ce: ce does not take"):
        build_loss("ce", temperature=2.0)
