"""User suite files: both formats parse; malformed files fail naming file, line and problem."""

from pathlib import Path

import pytest

from pipeline.evaluate.suitefile import SuiteFileError, case_passes, load_suite, load_suites

pytestmark = pytest.mark.unit
LABELS = ["ham", "spam"]
ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_example_suite_parses():
    suite = load_suite(ROOT / "suites" / "spam_examples.yaml", LABELS)
    assert suite.name == "spam_examples" and len(suite.cases) == 15
    assert {c.expect for c in suite.cases} >= {"spam", "ham", "same_as_teacher"}


def test_banking77_example_suite_names_only_banking77_intents():
    """The BANKING77 examples' params point the user suite here; every label must be one of the 77."""
    import json

    from pipeline.config import load_params
    from tests.conftest import require_banking77

    intents = json.loads((require_banking77() / "categories.json").read_text())
    for params in ("params.yaml", "params-few-labels.yaml"):
        paths = load_params(ROOT / "examples" / "banking77" / params).evaluate.user.paths
        suites = load_suites(paths, ROOT, sorted(intents))
        assert [s.name for s in suites] == ["banking_cases"] and len(suites[0].cases) == 13


def test_yaml_cases_carry_their_line_numbers(tmp_path):
    path = write(tmp_path, "s.yaml", "name: s\ncases:\n  - text: buy now\n    expect: spam\n\n  - text: hi\n    expect_not: spam\n")
    suite = load_suite(path, LABELS)
    assert [c.line for c in suite.cases] == [3, 6]
    assert suite.cases[1].expect_not == "spam"


@pytest.mark.parametrize("body, line, problem", [
    ("cases:\n  - text: a\n    expect: spam\n  - text: b\n", 4, "exactly one of 'expect'"),
    ("cases:\n  - text: a\n    expect: spam\n    expect_not: ham\n", 2, "exactly one of"),
    ("cases:\n  - text: a\n    expect: eggs\n", 2, "'expect: eggs' is not a label"),
    ("cases:\n  - text: ''\n    expect: spam\n", 2, "non-empty string"),
    ("cases:\n  - txt: a\n    expect: spam\n", 2, "unknown key\\(s\\) txt"),
    ("cases:\n  - text: a\n    expect: [spam\n", 4, "not valid YAML"),
    ("name: x\ncases: []\n", 2, "non-empty list"),
    ("name: x\ncase:\n  - text: a\n", 1, "unknown top-level key\\(s\\) case"),
])
def test_malformed_yaml_names_file_line_and_problem(tmp_path, body, line, problem):
    path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(SuiteFileError, match=rf"bad\.yaml:{line}: .*{problem}"):
        load_suite(path, LABELS)


def test_jsonl_suite_and_its_errors(tmp_path):
    good = write(tmp_path, "ok.jsonl", '{"text": "free money", "expect": "spam"}\n\n{"text": "lunch?", "expect": "same_as_teacher"}\n')
    suite = load_suite(good, LABELS)
    assert [c.line for c in suite.cases] == [1, 3] and suite.name == "ok"
    bad = write(tmp_path, "bad.jsonl", '{"text": "a", "expect": "spam"}\n{"text": "b", "expect": "spam"}\n{"text": "c", expect: 1}\n')
    with pytest.raises(SuiteFileError, match=r"bad\.jsonl:3: not valid JSON"):
        load_suite(bad, LABELS)
    with pytest.raises(SuiteFileError, match=r"x\.jsonl:1: a case must be a mapping"):
        load_suite(write(tmp_path, "x.jsonl", '["a"]\n'), LABELS)


def test_duplicate_suite_names_and_unknown_format(tmp_path):
    write(tmp_path, "a.yaml", "name: same\ncases:\n  - {text: a, expect: spam}\n")
    write(tmp_path, "b.yaml", "name: same\ncases:\n  - {text: b, expect: ham}\n")
    with pytest.raises(SuiteFileError, match="more than one file: same"):
        load_suites(["*.yaml"], tmp_path, LABELS)
    with pytest.raises(SuiteFileError, match="unknown suite format"):
        load_suite(write(tmp_path, "c.txt", "x"), LABELS)


def test_case_passes_semantics(tmp_path):
    suite = load_suite(write(tmp_path, "s.yaml", "cases:\n  - {text: a, expect: spam}\n  - {text: b, expect_not: spam}\n"
                                                 "  - {text: c, expect: same_as_teacher}\n"), LABELS)
    a, b, c = suite.cases
    assert case_passes(a, "spam", None) and not case_passes(a, "ham", "spam")
    assert case_passes(b, "ham", None) and not case_passes(b, "spam", None)
    assert case_passes(c, "ham", "ham") and not case_passes(c, "ham", "spam") and not case_passes(c, "ham", None)
