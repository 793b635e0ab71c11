"""A cheap ``python`` teacher for canary tests: the bundle named by ``DISTILL_TEST_TEACHER_BUNDLE``.

It stands in for an expensive teacher the good students were distilled from (they agree with it on
most texts; the deliberately bad student does not).
"""

from __future__ import annotations

import os

_BUNDLES: dict[str, object] = {}
USAGE = {"texts": 0}


def predict(texts: list[str]):
    from pipeline.bundle import load_bundle

    path = os.environ["DISTILL_TEST_TEACHER_BUNDLE"]
    if path not in _BUNDLES:
        _BUNDLES[path] = load_bundle(path, threads=1)
    USAGE["texts"] += len(texts)
    return _BUNDLES[path].predict_proba(list(texts), "fp32")
