"""Evaluate and gate: score the teacher and the student variants on edge-case suites, then decide.

Library first: every suite works on plain predictors (``labels`` + ``predict_proba(texts)``), so the
teacher, the student's fp32 and int8 variants and a champion are scored the same way.

    python -m pipeline.evaluate --gate reports/gate.json --report reports/gate.md --metrics metrics/evaluate.json

Parts: ``metrics`` (accuracy, F1, ECE, temperature), ``perturb`` (registry of text perturbations),
``suitefile`` (user suite files), ``suites/`` (registry of suites), ``gate`` (checks and verdict),
``report`` (gate.json, gate.md, metrics), ``stage`` (the DVC stage), ``release`` (register from the gate).
"""
