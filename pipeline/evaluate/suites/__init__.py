"""The suites of the evaluate stage, registered by name (params.yaml ``evaluate.suites`` picks them).

Importing this package registers every built-in suite: gold, agreement, slices, perturbations, ood,
user, calibration, cascade, budgets. A new suite is a function ``(EvalContext) -> SuiteResult`` decorated with
``@suite("name")`` in a module imported here.
"""

from pipeline.evaluate.suites import budgets, calibration, cascade, gold, ood, perturbations, slices, user  # noqa: F401
from pipeline.evaluate.suites.base import (EvalContext, EvalData, Rule, SuiteResult, get, registered,
                                           suite)

__all__ = ["EvalContext", "EvalData", "Rule", "SuiteResult", "get", "registered", "suite"]
