"""Catalogue, params: bad params files through ``distill params`` and a stage's ``--set``.

Each case exits 2 with one line per problem that names the key (never a traceback, never a silently
coerced value), and leaves the file as it was."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.reliability.helpers import assert_one_clear_line, digest_tree

pytestmark = pytest.mark.unit

BASE = "ingest: {}\n"

# (id, params text, needles of the message)
CASES = [
    ("duplicate-top-key", "seed: 1\nseed: 2\ningest: {}\n", ["params.yaml:2:", "'seed' appears twice (first on line 1)"]),
    ("duplicate-nested-key", "ingest: {}\ndistill:\n  epochs: 3\n  lr: 0.1\n  epochs: 30\n",
     ["params.yaml:5:", "'epochs' appears twice (first on line 3)"]),
    ("bool-for-int", BASE + "distill: {epochs: true}\n", ["distill.epochs", "boolean true"]),
    ("string-for-int", BASE + "distill: {epochs: '30'}\n", ["distill.epochs", "string '30'"]),
    ("string-for-float", BASE + "distill: {lr: fast}\n", ["distill.lr", "string 'fast'"]),
    ("bool-for-float", BASE + "distill: {lr: false}\n", ["distill.lr", "boolean false"]),
    ("unknown-section", BASE + "ingest_x: 1\n", ["ingest_x: unknown key"]),
    ("kd-temperature-word", BASE + "distill: {losses: {kd: {weight: 1.0, temperature: hot}}}\n",
     ["distill.losses.kd.temperature", "'hot'"]),
    ("kd-temperature-negative", BASE + "distill: {losses: {kd: {weight: 1.0, temperature: -1}}}\n",
     ["distill.losses.kd.temperature", "greater than 0"]),
    ("kd-unknown-argument", BASE + "distill: {losses: {kd: {weight: 1.0, tmp: 2}}}\n",
     ["distill.losses.kd", "does not take ['tmp']"]),
    ("unknown-loss", BASE + "distill: {losses: {focal: {weight: 1.0}}}\n", ["focal", "known: ce, kd"]),
    ("student-negative-dim", BASE + "distill: {student: {name: hashed-ngram-bag, kwargs: {dim: -5}}}\n",
     ["distill.student.kwargs.dim", "greater than or equal to 1"]),
    ("student-unknown-kwarg", BASE + "distill: {student: {kwargs: {dimm: 5}}}\n",
     ["distill.student.kwargs", "does not take ['dimm']"]),
    ("student-kwarg-type", BASE + "distill: {student: {kwargs: {hidden: many}}}\n",
     ["distill.student.kwargs.hidden"]),
    ("unknown-student", BASE + "distill: {student: {name: transformer-xl}}\n", ["transformer-xl", "known:"]),
    ("typo-key", BASE + "distill: {epoch: 3}\n", ["distill.epoch: unknown key (did you mean epochs?)"]),
    ("unknown-encoding", "ingest: {source: {kind: csv, path: x.csv, encoding: utf-42}}\n",
     ["ingest.source.encoding", "unknown text encoding 'utf-42'"]),
    ("registry-url-not-a-url", BASE + "registry: {url: not-a-url}\n", ["registry.url", "not a database URL"]),
    ("registry-url-password-hidden", BASE + "registry: {url: 'postgresql:/u:s3cret-pw@'}\n", ["registry.url"]),
    ("predlog-url-not-a-url", BASE + "serve: {prediction_log_url: predictions.db}\n",
     ["serve.prediction_log_url", "not a database URL"]),
    ("llm-base-url-no-scheme", BASE + "teacher: {kind: llm, llm: {base_url: 'api.example.com/v1', labels: {a: x, b: y}}}\n",
     ["teacher.llm.base_url", "http:// or https://"]),
    ("yaml-syntax", "ingest: {source: [unclosed\n", ["not valid YAML"]),
    ("top-level-list", "- ingest\n- distill\n", ["expected a mapping of sections"]),
    ("negative-limit", BASE + "serve: {max_batch: 0}\n", ["serve.max_batch", "greater than or equal to 1"]),
    ("fraction-out-of-range", "ingest: {test_fraction: 1.5}\n", ["ingest.test_fraction", "less than 1"]),
    ("bad-label-case", "ingest: {label_case: lower}\n", ["ingest.label_case", "'fold'"]),
    ("not-utf8", "ingest: {}\n# caf\xe9\n", ["not valid UTF-8"]),
    ("unknown-source-kind", "ingest: {source: {kind: excel, path: x.xlsx}}\n", ["ingest.source.kind", "excel"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_params_are_one_line_per_problem_naming_the_key(tmp_path, case):
    name, text, needles = case
    path = tmp_path / "params.yaml"
    path.write_bytes(text.encode("latin-1") if name == "not-utf8" else text.encode())
    before = digest_tree(path)
    result = CliRunner().invoke(app, ["params", str(path)])
    assert result.exit_code == 2, result.output
    message = assert_one_clear_line(result.output, *needles)
    assert "s3cret-pw" not in message  # a URL's password never reaches a message
    assert digest_tree(path) == before


@pytest.mark.parametrize("override,needles", [
    ("distill.epochs=yes", ["distill.epochs", "boolean true"]),
    ("distill.lr=[1", ["override 'distill.lr=[1'", "not valid YAML"]),
    ("distill", ["override 'distill'", "key=value"]),
], ids=["set-bool", "set-bad-yaml", "set-no-equals"])
def test_bad_overrides_on_a_stage_are_one_line(tmp_path, capsys, override, needles):
    from pipeline.stages.ingest import main

    path = tmp_path / "params.yaml"
    path.write_text(BASE)
    code = main(["--params", str(path), "--out", str(tmp_path / "o.parquet"), "--metrics", str(tmp_path / "o.json"),
                 "--set", override])
    assert code == 2
    assert_one_clear_line(capsys.readouterr().err, "distill ingest: error:", *needles)
    assert not (tmp_path / "o.parquet").exists()
