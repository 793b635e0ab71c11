"""The student in a web page, end to end: a real model server on 127.0.0.1 publishes its production
bundle at /demo/, headless Chromium (Debian's, through playwright-core) loads the built page, which
featurizes in JavaScript (the words featurizer, or WordPiece with the bundle's tokenizer.json) and runs
the int8 model in onnxruntime-web, and classifies 200 held-out texts.
Its answers are compared with the Python bundle's. Then the server is stopped and the page, reloaded
from its offline copy, answers the same."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve.conftest import make_workspace
from tests.web.conftest import WEB, node

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
OUT_OF_DOMAIN = ["the mitochondria is the powerhouse of the cell", "preheat the oven and whisk two eggs",
                 "the striker scored twice in the second half", "photosynthesis converts light into sugar"]


def _with_ood_cut(bundle, texts):
    """The bundle with an out-of-domain cut halfway between two neighbouring scores near the median (as
    registration writes the gate's), so about half the texts abstain and none sits on the cut."""
    from pipeline.bundle import load_bundle

    _, scores = load_bundle(bundle).predict_scored(texts)
    ordered = np.sort(scores)
    mid = len(ordered) // 2
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["ood"] = {"threshold": float((ordered[mid - 1] + ordered[mid]) / 2), "model": "student_int8",
                       "score": "in_domain_score"}
    (bundle / "bundle.json").write_text(json.dumps(manifest))


def _read(proc) -> dict:
    line = proc.stdout.readline()
    if not line:
        proc.wait(30)
        raise AssertionError(f"the browser driver stopped: {proc.stderr.read()}")
    return json.loads(line)


def _check(record: dict, expected: np.ndarray, labels: list[str], abstained: np.ndarray) -> None:
    assert record["labels"] == labels
    got = np.array(record["answers"], dtype=np.float64)
    assert got.shape == expected.shape
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    diff = float(np.abs(got - expected).max())
    assert agreement >= 0.995, f"label agreement {agreement:.4f} < 0.995"
    assert diff <= 1e-3, f"max probability difference {diff:.2e} > 1e-3"
    assert record["abstained"] == abstained.tolist()


@pytest.mark.parametrize("featurizer", ["words", "wordpiece"])
def test_the_page_classifies_as_the_python_bundle_online_and_offline(tmp_path, words_bundle, bundles, monkeypatch,
                                                                    featurizer):
    from pipeline.bundle import load_bundle

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: apt-get install chromium (make test installs it)")
    if not (WEB / "dist" / "index.html").exists():
        pytest.fail("web/dist is not built: run `make install` (npm ci and npm run build in web/)")
    source, held_out = words_bundle  # held-out texts: BANKING77's test file, which no bundle trained on
    if featurizer == "wordpiece":
        source = bundles["good_a"]  # the teacher encoder's tokenizer.json travels in the bundle
    bundle = shutil.copytree(source, tmp_path / "bundle")
    texts = held_out[:196] + OUT_OF_DOMAIN
    _with_ood_cut(bundle, texts)
    python = load_bundle(bundle)
    expected, scores = python.predict_scored(texts)
    abstained = scores < python.ood_threshold
    assert 0 < abstained.sum() < len(texts)
    (tmp_path / "texts.json").write_text(json.dumps(texts))

    (tmp_path / "ws").mkdir()
    ws = make_workspace(tmp_path / "ws", {"good_a": bundle, "good_b": bundle}, monkeypatch)
    server = ws.serve_production(bundle)
    try:
        # what the server publishes to the page, and nothing else of the bundle folder
        manifest = httpx.get(server.url + "/demo/bundle/bundle.json", timeout=10).json()
        assert manifest["digest"] == python.digest and manifest["serving"]["version"]
        assert httpx.get(server.url + "/demo/bundle/model.onnx", timeout=10).status_code == 404
        tokenizer = httpx.get(server.url + "/demo/bundle/tokenizer.json", timeout=10)
        assert tokenizer.status_code == (200 if featurizer == "wordpiece" else 404)
        assert httpx.get(server.url + "/demo", timeout=10, follow_redirects=True).text.count("distill") >= 1

        driver = subprocess.Popen([node(), str(WEB / "scripts" / "browser.mjs"), "--url", server.url + "/demo/",
                                   "--texts", str(tmp_path / "texts.json"), "--offline", "--chromium", CHROMIUM],
                                  cwd=WEB, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            online = _read(driver)
            assert online["phase"] == "online"
            _check(online, expected, python.labels, abstained)
            assert online["info"]["labels"] == len(python.labels)
            assert _read(driver)["phase"] == "waiting"
        except BaseException:
            driver.kill()
            raise
    finally:
        server.stop()
    try:
        with pytest.raises(httpx.ConnectError):  # the server is really gone
            httpx.get(server.url + "/healthz", timeout=2)
        driver.stdin.write("server stopped\n")
        driver.stdin.close()
        offline = _read(driver)
        assert offline["phase"] == "offline"
        _check(offline, expected, python.labels, abstained)
        assert driver.wait(60) == 0, driver.stderr.read()
    finally:
        if driver.poll() is None:
            driver.kill()
