"""Out-of-domain abstention end to end: a real server process answers label null, with the reason, for the
texts below the cut the registered bundle carries, counts them, and never sends them to the teacher."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from tests.helpers.serving import metric as _metric
from tests.serve.conftest import Workspace

pytestmark = pytest.mark.e2e

IN_DOMAIN = ["I still have not received my new card", "how do I top up with apple pay?",
             "my transfer failed, why?", "I want to close my account", "where can I find my PIN"]
OUT_OF_DOMAIN = ["the mitochondria is the powerhouse of the cell", "preheat the oven and whisk two eggs",
                 "the striker scored twice in the second half", "photosynthesis converts light into sugar",
                 "the sonnet has fourteen lines in iambic pentameter"]


def _bundle_with_cut(tmp_path, bundles):
    from pipeline.bundle import load_bundle

    bundle = shutil.copytree(bundles["good_a"], tmp_path / "bundle-with-ood-cut")
    _, scores = load_bundle(bundles["good_a"]).predict_scored(IN_DOMAIN + OUT_OF_DOMAIN)
    cut = float(sorted(scores)[len(scores) // 2])  # half of all texts fall below it
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["ood"] = {"threshold": cut, "model": "student_int8", "score": "in_domain_score"}
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle, scores, cut


@pytest.mark.parametrize("abstain_label", [None, "other"])
def test_texts_below_the_bundles_ood_cut_are_answered_as_abstained(tmp_path, bundles, monkeypatch, abstain_label):
    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    monkeypatch.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
    bundle, scores, cut = _bundle_with_cut(tmp_path, bundles)
    ws = Workspace(tmp_path, bundles, serve={"ood_abstain": True, "ood_abstain_label": abstain_label})
    server = ws.serve_production(bundle)
    try:
        texts = IN_DOMAIN + OUT_OF_DOMAIN
        preds = httpx.post(server.url + "/v1/predict", json={"texts": texts}, timeout=60).json()["predictions"]
        below = [i for i, s in enumerate(scores) if s < cut]
        assert below and len(below) < len(texts)
        assert [p.get("abstained") for p in preds] == ["out_of_domain" if i in below else None for i in range(len(texts))]
        assert all(preds[i]["label"] == abstain_label for i in below)
        assert all(isinstance(preds[i]["label"], str) and preds[i]["label"] for i in range(len(texts)) if i not in below)
        assert all(abs(sum(p["probs"].values()) - 1.0) < 1e-4 for p in preds)  # probabilities still shown
        assert _metric(server.url, "distill_ood_abstained_total") == len(below)
    finally:
        server.stop()


def test_without_ood_abstain_the_cut_is_ignored(tmp_path, bundles, monkeypatch):
    monkeypatch.delenv("DISTILL_REGISTRY_URL", raising=False)
    monkeypatch.delenv("DISTILL_PREDICTION_LOG_URL", raising=False)
    bundle, _, _ = _bundle_with_cut(tmp_path, bundles)
    ws = Workspace(tmp_path, bundles)
    server = ws.serve_production(bundle)
    try:
        preds = httpx.post(server.url + "/v1/predict", json={"texts": OUT_OF_DOMAIN}, timeout=60).json()["predictions"]
        assert all("abstained" not in p and isinstance(p["label"], str) for p in preds)
        assert _metric(server.url, "distill_ood_abstained_total") == 0
    finally:
        server.stop()
