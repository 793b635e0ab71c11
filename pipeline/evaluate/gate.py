"""The gate: compare measured metrics with thresholds (and with the champion) and give a verdict.

Pure functions over plain data: ``metrics`` is ``suite -> model -> metric -> value`` as the suites wrote
it, ``rules`` carry the thresholds from params.yaml. Every comparison becomes a :class:`Check`; the gate
passes when every check passes. A metric a rule needs but that is missing or NaN fails its check, so a
suite that silently measured nothing can never pass the gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from pipeline.config.evaluate import ChampionConfig
from pipeline.evaluate.suites.base import SELF, TEACHER, Metrics, Rule

CHAMPION = "champion"


@dataclass(frozen=True)
class Check:
    suite: str
    metric: str
    model: str
    value: float | None
    threshold: float
    comparison: str  # ">=" or "<="
    passed: bool
    kind: str = "threshold"  # "champion" / "teacher" / "self": threshold = that value -/+ tolerance
    reference: float | None = None  # the champion's, teacher's or own reference value (kinds above)
    teacher: float | None = None  # the teacher's value of this metric on the same texts, when scored

    @property
    def margin(self) -> float | None:
        """How far the value is on the passing side of the threshold (negative: failing)."""
        if self.value is None or math.isnan(self.value) or math.isnan(self.threshold):
            return None
        return self.value - self.threshold if self.comparison == ">=" else self.threshold - self.value

    def to_dict(self) -> dict:
        return {**asdict(self), "margin": self.margin}


def _compare(value: float | None, comparison: str, threshold: float) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if comparison == ">=":
        return value >= threshold
    if comparison == "<=":
        return value <= threshold
    raise ValueError(f"unknown comparison {comparison!r}")


def _value(metrics: Metrics, suite: str, model: str, metric: str) -> float | None:
    return metrics.get(suite, {}).get(model, {}).get(metric)


def _scored(metrics: Metrics, suite: str, model: str, metric: str) -> float | None:
    """A reference value, or None where it is missing or NaN (nothing to judge against)."""
    value = _value(metrics, suite, model, metric)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def threshold_checks(metrics: Metrics, rules: Iterable[Rule], gate_models: Sequence[str]) -> list[Check]:
    """One check per (rule, model): the rule's models, or every gated model the suite scored."""
    checks = []
    for rule in rules:
        scored = metrics.get(rule.suite, {})
        models = rule.models if rule.models is not None else [m for m in gate_models if m in scored or not scored]
        teacher_value = _scored(metrics, rule.suite, TEACHER, rule.metric)
        for model in models:
            value = _value(metrics, rule.suite, model, rule.metric)
            if not rule.vs_teacher:
                checks.append(Check(rule.suite, rule.metric, model, value, rule.threshold, rule.comparison,
                                    _compare(value, rule.comparison, rule.threshold), teacher=teacher_value))
                continue
            own = rule.against == SELF
            reference = _scored(metrics, rule.suite, model if own else TEACHER, rule.against_metric or rule.metric)
            if reference is None:
                limit, passed = float("nan"), False  # no reference was scored here: no margin to judge by
            else:
                limit = reference - rule.threshold if rule.comparison == ">=" else reference + rule.threshold
                passed = _compare(value, rule.comparison, limit)
            checks.append(Check(rule.suite, rule.metric, model, value, limit, rule.comparison, passed,
                                kind="self" if own else "teacher", reference=reference,
                                teacher=teacher_value if own else reference))
    return checks


def tolerance_for(suite: str, cfg: ChampionConfig) -> float:
    """Tolerance of a suite: its own entry, else its prefix's (``perturb`` for ``perturb/typos``), else the default."""
    if suite in cfg.tolerance_by_suite:
        return cfg.tolerance_by_suite[suite]
    prefix = suite.split("/", 1)[0]
    return cfg.tolerance_by_suite.get(prefix, cfg.tolerance)


def champion_checks(metrics: Metrics, rules: Iterable[Rule], cfg: ChampionConfig) -> list[Check]:
    """The challenger may not fall behind the champion by more than the tolerance, metric by metric.

    For a ``>=`` metric the challenger needs ``value >= champion - tol``; for a ``<=`` metric (ECE,
    latency) ``value <= champion + tol``. Metrics the champion was not scored on are not compared.
    """
    checks = []
    seen = set()
    for rule in rules:
        # A bound paired with the teacher judges the distance to the teacher; against the champion, scored
        # on the same rows, the plain metric is compared and the tolerance is the largest allowed drop
        metric = rule.against_metric if rule.metric.endswith("_paired_upper") else rule.metric
        key = (rule.suite, metric)
        if key in seen or rule.suite.split("/", 1)[0] in cfg.exclude or rule.suite in cfg.exclude:
            continue
        seen.add(key)
        champ = _scored(metrics, rule.suite, CHAMPION, metric)
        if champ is None:
            continue
        tol = tolerance_for(rule.suite, cfg)
        limit = champ - tol if rule.comparison == ">=" else champ + tol
        value = _value(metrics, rule.suite, cfg.challenger, metric)
        checks.append(Check(rule.suite, metric, cfg.challenger, value, limit, rule.comparison,
                            _compare(value, rule.comparison, limit), kind="champion", reference=champ,
                            teacher=_scored(metrics, rule.suite, TEACHER, metric)))
    return checks


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: list[Check]

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def decide(metrics: Metrics, rules: Sequence[Rule], gate_models: Sequence[str],
           champion: ChampionConfig | None = None) -> Verdict:
    """All threshold checks, plus champion checks when the champion was scored; passed iff all pass."""
    checks = threshold_checks(metrics, rules, gate_models)
    if champion is not None and any(CHAMPION in by_model for by_model in metrics.values()):
        checks += champion_checks(metrics, rules, champion)
    return Verdict(passed=bool(checks) and all(c.passed for c in checks), checks=checks)


def merge_metrics(parts: Iterable[Mapping[str, Mapping[str, Mapping[str, float]]]]) -> Metrics:
    out: Metrics = {}
    for part in parts:
        for suite, by_model in part.items():
            out.setdefault(suite, {}).update({k: dict(v) for k, v in by_model.items()})
    return out
