"""A bundle answers a long list of texts in bounded calls, with the logits one call gives."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline.bundle as bundle_module
from pipeline.bundle import load_bundle

pytestmark = pytest.mark.model


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_logits_in_chunks_equal_one_call(bundles, monkeypatch, variant):
    bundle = load_bundle(bundles["good_a"])
    texts = [f"my card payment number {i} was declined twice" if i % 3 else f"how do I top up {i} euros"
             for i in range(50)]
    whole = bundle.logits(texts, variant)
    calls = []
    session = bundle.session(variant)

    class Counting:
        def run(self, outputs, feeds):
            calls.append(len(feeds["ids"]))
            return session.run(outputs, feeds)

    monkeypatch.setattr(bundle_module, "PREDICT_ROWS", 16)
    monkeypatch.setattr(bundle, "session", lambda v="int8": Counting())
    chunked = bundle.logits(texts, variant)
    assert calls == [16, 16, 16, 2]
    np.testing.assert_array_equal(chunked, whole)
    assert chunked.shape == (50, len(bundle.labels))
