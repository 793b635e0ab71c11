"""Metric functions on probability arrays: accuracy, macro-F1, recall, agreement, ECE, NLL, temperature.

All functions are pure and take numpy arrays: ``probs`` float [n, k] whose rows sum to 1, ``targets``
int [n] class indices. They return plain floats so results go straight into JSON.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def correct(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per row: whether the model's top class is the target."""
    return np.argmax(probs, axis=1) == targets


def accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    if len(targets) == 0:
        return float("nan")
    return float(np.mean(correct(probs, targets)))


def per_class_recall(probs: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Recall of each class present in ``targets``; NaN for classes with no rows."""
    pred = np.argmax(probs, axis=1)
    out = np.full(k, np.nan)
    for c in range(k):
        rows = targets == c
        if rows.any():
            out[c] = float(np.mean(pred[rows] == c))
    return out


def macro_f1(probs: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Mean F1 over the classes that occur in ``targets`` or in the predictions."""
    pred = np.argmax(probs, axis=1)
    scores = []
    for c in range(k):
        tp = int(np.sum((pred == c) & (targets == c)))
        fp = int(np.sum((pred == c) & (targets != c)))
        fn = int(np.sum((pred != c) & (targets == c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def agreement(probs_a: np.ndarray, probs_b: np.ndarray) -> float:
    """Share of rows where two models pick the same class."""
    if len(probs_a) == 0:
        return float("nan")
    return float(np.mean(np.argmax(probs_a, axis=1) == np.argmax(probs_b, axis=1)))


def _wilson(share: float, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval (statsmodels) whose each end is a one-sided bound at ``confidence``."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(share * n, n, alpha=2.0 * (1.0 - confidence), method="wilson")
    # exact at the ends (the closed form is 0 and 1 there; floating point gives 1 - 1e-16)
    return (0.0 if share <= 0.0 else float(low)), (1.0 if share >= 1.0 else float(high))


def wilson_upper(share: float, n: int, confidence: float) -> float:
    """One-sided upper confidence bound of a proportion (Wilson score interval).

    With ``z`` the standard-normal quantile of ``confidence``:
    (p + z^2/2n + z * sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
    A slice check that compares this bound with its floor fails only when the slice's own rows show,
    at that confidence, that the true share is below the floor: one message more or less in a
    59-message slice does not flip the gate.
    """
    if n <= 0:
        return float("nan")
    return float(min(1.0, _wilson(share, n, confidence)[1]))


def wilson_lower(share: float, n: int, confidence: float) -> float:
    """One-sided lower confidence bound of a proportion (the Wilson interval's other end).

    The canary rolls back on errors as soon as this bound of its error rate is above the limit: the
    errors seen so far already show, at that confidence, that the true rate is too high.
    """
    if n <= 0:
        return float("nan")
    return float(max(0.0, _wilson(share, n, confidence)[0]))


def paired_accuracy_upper(correct: np.ndarray, reference_correct: np.ndarray, confidence: float) -> float:
    """One-sided upper confidence bound of a model's accuracy, judged against a reference model (the
    teacher) scored on the same rows: the reference's accuracy plus the bound of the difference.

    Only the rows where exactly one of the two is right say anything about the difference. Of those
    ``m`` rows (of ``n``) the model is the right one on ``b``; given ``m``, ``b`` is binomial with share
    ``p``, and accuracy(model) - accuracy(reference) = (2p - 1) m / n. The exact (Clopper-Pearson) upper
    bound of ``p`` at ``confidence`` therefore bounds the difference: McNemar's exact test, turned into a
    bound. A student answers most rows as its teacher does, so on a large test split this sees a gap the
    student's own Wilson bound hides (1,000 rows, 30 lost and 10 won: 0.889 against the teacher's 0.900,
    Wilson 0.893), and on a small one it does not fail the student on the teacher's luck (15 rows, the
    teacher right on all and the student on 14: the bound is 1.0, Wilson 0.980).
    """
    from statsmodels.stats.proportion import proportion_confint

    correct, reference_correct = np.asarray(correct, bool), np.asarray(reference_correct, bool)
    n = len(correct)
    if n == 0:
        return float("nan")
    wins = int(np.sum(correct & ~reference_correct))
    differ = wins + int(np.sum(~correct & reference_correct))
    reference = float(np.mean(reference_correct))
    if differ == 0:
        return reference  # right and wrong on the same rows: the same accuracy
    high = 1.0 if wins == differ else float(
        proportion_confint(wins, differ, alpha=2.0 * (1.0 - confidence), method="beta")[1])
    return float(min(1.0, max(0.0, reference + (2.0 * high - 1.0) * differ / n)))


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins.

    ECE = sum_b (|B_b| / n) * |acc(B_b) - conf(B_b)|, where a row falls in bin b when its confidence
    (max probability) lies in ((b-1)/bins, b/bins] (confidence 0 goes to the first bin), acc is the
    share of correct argmax predictions and conf the mean confidence of the rows in the bin.
    """
    n = len(targets)
    if n == 0:
        return float("nan")
    conf = np.max(probs, axis=1)
    correct = (np.argmax(probs, axis=1) == targets).astype(float)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        rows = index == b
        if rows.any():
            total += rows.sum() / n * abs(correct[rows].mean() - conf[rows].mean())
    return float(total)


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities: softmax(log(p) / T). T > 1 softens, T < 1 sharpens."""
    logits = np.log(np.clip(probs, _EPS, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the target classes."""
    if len(targets) == 0:
        return float("nan")
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], _EPS, 1.0))))


def fit_temperature(probs: np.ndarray, targets: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature minimizing the cross-entropy on (probs, targets): a 1-D bounded search over log T.

    ``targets`` are class indices, or an ``[n, k]`` matrix of target probabilities (a teacher's soft
    labels: the student's confidence is then fitted to the teacher's, not to the teacher's argmax, which
    would make it as sure of the teacher's mistakes as of its right answers).
    Scaling by one temperature never changes the argmax, so accuracy and agreement are unaffected;
    only confidence moves. Fit it on validation data, never on the data the gate scores.
    """
    from scipy.optimize import minimize_scalar

    if len(targets) == 0:
        return 1.0
    logp = np.log(np.clip(probs, _EPS, 1.0))
    soft = np.asarray(targets, dtype=np.float64) if np.ndim(targets) == 2 else None

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        if soft is not None:
            return float(np.mean(lse - (soft * z).sum(axis=1)))
        return float(np.mean(lse - z[np.arange(len(targets)), targets]))

    found = minimize_scalar(loss, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                            options={"xatol": 1e-5})
    return float(np.exp(found.x))
