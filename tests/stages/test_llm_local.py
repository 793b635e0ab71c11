"""A real LLM teacher end to end: llama.cpp's server with Gemma 3 270M on 127.0.0.1, then `dvc repro`.

The server binary and the model come from `distill llm-local install` (``make test`` runs it first;
without it the fixture builds them, once, into the tools cache). The test copies the project into a
scratch git + DVC repository with examples/llm-local/params.yaml cut to about 100 messages and pointed
at the server's port, runs ``dvc repro export`` (ingest, validate, teacher, label, distill, export) and
checks what the real model gave: soft labels from logprobs whose rows sum to 1, token and cost totals
that match the server's own counters and the params' prices, failures counted, a re-run that makes no
call, and a student that answers with the example's labels.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.stages.test_byo import dvc, read_json

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llm-local" / "params.yaml"
PRICES = {"price_per_1k_prompt": 0.0005, "price_per_1k_completion": 0.0015}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_counters(root: str) -> dict[str, float]:
    """llama.cpp's Prometheus counters (``--metrics``): tokens it evaluated and generated."""
    text = httpx.get(f"{root}/metrics", timeout=5).text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^llamacpp:(\w+) ([0-9.e+]+)$", text, re.M)}


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    from pipeline.teachers.llama_local import LlamaServer, install, tools_dir

    binary, model = install(tools_dir(ROOT))
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    with LlamaServer(binary, model, port=free_port(), parallel=2, log_path=log, extra_args=["--metrics"]) as server:
        yield server


def test_a_real_llm_labels_the_sample_and_a_student_distills_from_it(repo_copy: Path, llama):
    params = yaml.safe_load(EXAMPLE.read_text())
    params["ingest"]["spamassassin"]["per_group"] = 20  # about 100 messages of the 5 folders
    llm = params["teacher"]["llm"]
    llm.update(base_url=llama.base_url, **PRICES)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    before = server_counters(llama.root)
    dvc(repo_copy, "repro", "export")
    after = server_counters(llama.root)

    label = read_json(repo_copy, "metrics/label.json")
    rows = label["rows"]
    assert 60 <= rows <= 100, rows
    # every text answered through logprobs, or counted as failed with its reason
    assert label["labeled_rows"] + label["failed_rows"] == rows
    assert label["failed_texts"] == sum(label["failures_by_reason"].values())
    assert label["failure_rate"] <= params["label"]["max_failure_rate"]
    usage = label["usage"]
    assert usage["calls"] >= label["cache_misses"] and usage["failures"] == label["failed_texts"]
    assert usage["malformed"] == sum(label["malformed_answers"].values()) or len(label["malformed_answers"]) == 5
    # tokens: what the server says it generated is what the teacher counted; prompts cost what params say
    assert usage["completion_tokens"] == after["tokens_predicted_total"] - before["tokens_predicted_total"]
    assert usage["prompt_tokens"] >= after["prompt_tokens_total"] - before["prompt_tokens_total"] > 0
    expected = usage["prompt_tokens"] / 1000 * PRICES["price_per_1k_prompt"] \
        + usage["completion_tokens"] / 1000 * PRICES["price_per_1k_completion"]
    assert usage["cost_usd"] == pytest.approx(expected, abs=1e-8)

    labels = pd.read_parquet(repo_copy / "data" / "labels.parquet")
    probs = np.stack(labels["probs"].to_numpy())
    assert probs.shape == (label["labeled_rows"], 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.max(axis=1) < 0.999).mean() > 0.5, "logprob soft labels, not one-hot votes"
    assert set(labels["pred"]) <= {"spam", "ham"}

    # a re-run asks the model nothing: every answer is in the content-addressed cache
    dvc(repo_copy, "repro", "--force", "--single-item", "label")
    again = read_json(repo_copy, "metrics/label.json")
    assert again["teacher_calls"] == 0 and again["cache_misses"] == 0
    assert again["cache_hits"] == label["distinct_texts"] - label["failed_texts"]
    assert server_counters(llama.root)["tokens_predicted_total"] == after["tokens_predicted_total"]

    # the student distilled from those soft labels answers with the teacher's labels and follows the
    # teacher on its training texts about as well as the teacher's most frequent label does, or better
    # (a 270M teacher is near chance on spam, so there is little more to learn; swapped label columns
    # would put the agreement near 1 - that share)
    from pipeline.bundle import load_bundle

    bundle = load_bundle(repo_copy / "models" / "bundle")
    texts = list(labels["text"])
    predicted = bundle.predict(texts)
    assert set(predicted) <= {"spam", "ham"}
    agreement = float(np.mean([p == t for p, t in zip(predicted, labels["pred"])]))
    majority = float(labels["pred"].value_counts(normalize=True).max())
    assert agreement >= majority - 0.1, (agreement, majority)
    distill = read_json(repo_copy, "metrics/distill.json")
    assert distill["finished"] and distill["train_rows"] + distill["val_rows"] <= label["labeled_rows"]
    print(json.dumps({"rows": rows, "usage": usage, "agreement_on_transfer_set": round(agreement, 3),
                      "teacher_majority_share": round(majority, 3)}))


def test_the_real_server_refusing_a_text_is_one_counted_failure_and_the_rest_are_labeled(llama):
    """A prompt longer than a server slot's context is refused by llama.cpp; that text fails, with the
    server's reason, and the others still get soft labels."""
    from pipeline.config.teacher_llm import LLMTeacherConfig
    from pipeline.teachers.llm import LLMTeacher

    llm = yaml.safe_load(EXAMPLE.read_text())["teacher"]["llm"]
    cfg = LLMTeacherConfig(**(llm | {"base_url": llama.base_url, "max_text_chars": None, "max_retries": 1,
                                      "backoff_base_s": 0.01}))
    teacher = LLMTeacher(cfg)
    too_long = "free money " * 6000  # ~12k tokens: beyond the 4096 of one of the 2 slots of 8192
    probs, failures = teacher.predict_proba_partial(["Win a free cruise, click now!", too_long,
                                                     "Minutes of Tuesday's team meeting attached."])
    assert list(failures) == [1], failures
    assert "HTTP 4" in failures[1] or "HTTP 5" in failures[1], failures[1]
    np.testing.assert_allclose(probs[[0, 2]].sum(axis=1), 1.0, atol=1e-5)
    assert np.isnan(probs[1]).all()
    assert teacher.usage["failures"] == 1 and teacher.usage["calls"] >= 3
