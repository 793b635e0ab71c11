"""Release: from a gate verdict to production.

- ``register``: register the evaluated bundle from its gate report (candidate when it passed,
  rejected otherwise), the report bound to the bundle by its digest;
- ``canary``: roll the candidate out step by step (:func:`pipeline.release.canary.rollout`), judge
  each step, promote, hold or roll back.

The Prefect flows (flows/retrain.py, flows/canary.py) only call these; the serving side
(pipeline/serve/) follows the registry aliases they set.
"""
