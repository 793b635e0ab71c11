"""Metric golden values (hand-computed) and temperature scaling on a miscalibrated toy."""

import numpy as np
import pytest

from pipeline.evaluate import metrics as m

pytestmark = pytest.mark.unit


def test_ece_golden_value_by_hand():
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.6 (right); 10 equal-width bins.
    # bin (0.8, 0.9]: weight 2/4, |acc 0.5 - conf 0.9| = 0.4 -> 0.2
    # bin (0.5, 0.6]: weight 2/4, |acc 1.0 - conf 0.6| = 0.4 -> 0.2          ECE = 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    targets = np.array([0, 1, 1, 0])
    assert m.expected_calibration_error(probs, targets, bins=10) == pytest.approx(0.4, abs=1e-9)
    # With 2 bins everything falls in (0.5, 1.0]: acc 0.75, mean conf 0.75 -> ECE 0.
    assert m.expected_calibration_error(probs, targets, bins=2) == pytest.approx(0.0, abs=1e-9)


def test_ece_of_a_perfectly_calibrated_toy_is_small():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20000)
    correct = rng.uniform(size=conf.size) < conf
    probs = np.stack([conf, 1 - conf], axis=1)
    targets = np.where(correct, 0, 1)
    assert m.expected_calibration_error(probs, targets, bins=10) < 0.02


def test_classification_metrics_golden():
    probs = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    targets = np.array([0, 1, 1, 2, 2, 0])
    assert m.accuracy(probs, targets) == pytest.approx(4 / 6)
    assert m.per_class_recall(probs, targets, 3).tolist() == pytest.approx([0.5, 0.5, 1.0])
    # F1: class0 2*1/(2+1+1)=0.5, class1 2/(2+0+1)=2/3, class2 2*2/(4+1+0)=0.8
    assert m.macro_f1(probs, targets, 3) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3, abs=1e-12)
    assert m.agreement(probs, np.eye(3)[[0, 1, 1, 2, 0, 2]]) == pytest.approx(4 / 6)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_temperature_scaling_recovers_overconfidence_and_lowers_nll():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, size=(6000, 4))
    true = _softmax(logits)
    targets = np.array([rng.choice(4, p=p) for p in true])
    over = _softmax(3.0 * logits)  # a model three times too confident
    fit, test = slice(0, 3000), slice(3000, None)
    t = m.fit_temperature(over[fit], targets[fit])
    assert t == pytest.approx(3.0, abs=0.3)
    scaled = m.scale(over[test], t)
    assert m.nll(scaled, targets[test]) < m.nll(over[test], targets[test]) - 0.1
    assert m.expected_calibration_error(scaled, targets[test]) < m.expected_calibration_error(over[test], targets[test])
    assert np.array_equal(scaled.argmax(1), over[test].argmax(1))  # scaling never changes the answer
    assert m.scale(over[:3], 1.0) == pytest.approx(over[:3])
