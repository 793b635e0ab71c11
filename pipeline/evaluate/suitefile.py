"""User-written test suites: files of cases with the answer each model must (or must not) give.

Two formats (docs/evaluation.md). YAML::

    name: spam_examples
    description: obvious spam and ham written by hand
    cases:
      - text: "WIN a FREE cruise, reply now"
        expect: spam
      - text: "Meeting moved to 3pm"
        expect_not: spam
      - text: "see attached invoice"
        expect: same_as_teacher

JSONL: one case object per line, same keys. Every error names the file, the line and the problem.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import DataError

SAME_AS_TEACHER = "same_as_teacher"
_KEYS = {"text", "expect", "expect_not", "id", "note"}


class SuiteFileError(DataError):
    """A suite file cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Case:
    text: str
    expect: str | None  # a label, or SAME_AS_TEACHER
    expect_not: str | None
    line: int
    note: str | None = None


@dataclass(frozen=True)
class UserSuite:
    name: str
    path: str
    cases: tuple[Case, ...]


def _case(raw: object, where: str, line: int, labels: list[str] | None) -> Case:
    if not isinstance(raw, dict):
        raise SuiteFileError(f"{where}: a case must be a mapping with 'text' and 'expect' or 'expect_not', "
                             f"got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise SuiteFileError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(_KEYS))}")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise SuiteFileError(f"{where}: 'text' must be a non-empty string")
    expect, expect_not = raw.get("expect"), raw.get("expect_not")
    if (expect is None) == (expect_not is None):
        raise SuiteFileError(f"{where}: give exactly one of 'expect' (a label or {SAME_AS_TEACHER}) or 'expect_not'")
    for key, value in (("expect", expect), ("expect_not", expect_not)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise SuiteFileError(f"{where}: '{key}' must be a string, got {value!r}")
        if labels is not None and value not in labels and not (key == "expect" and value == SAME_AS_TEACHER):
            raise SuiteFileError(f"{where}: '{key}: {value}' is not a label of the model ({', '.join(labels)})")
    note = raw.get("note")
    return Case(text=text, expect=expect, expect_not=expect_not, line=line, note=None if note is None else str(note))


def parse_yaml_suite(text: str, path: str, labels: list[str] | None = None) -> UserSuite:
    """Parse a YAML suite; line numbers come from the YAML node of each case."""
    import yaml

    from pipeline.config import strictyaml

    try:
        root = yaml.compose(text)
        data = strictyaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise SuiteFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict) or root is None:
        raise SuiteFileError(f"{path}:1: expected a mapping with a 'cases' list")
    unknown = sorted(set(data) - {"name", "description", "cases"})
    if unknown:
        raise SuiteFileError(f"{path}:1: unknown top-level key(s) {', '.join(map(str, unknown))}; "
                             "allowed: name, description, cases")
    cases_node = next((v for k, v in root.value if k.value == "cases"), None)
    raw_cases = data.get("cases")
    if cases_node is None or not isinstance(raw_cases, list) or not raw_cases:
        line = cases_node.start_mark.line + 1 if cases_node is not None else 1
        raise SuiteFileError(f"{path}:{line}: 'cases' must be a non-empty list")
    cases = tuple(_case(raw, f"{path}:{node.start_mark.line + 1}", node.start_mark.line + 1, labels)
                  for raw, node in zip(raw_cases, cases_node.value))
    return UserSuite(name=str(data.get("name") or Path(path).stem), path=path, cases=cases)


def parse_jsonl_suite(text: str, path: str, labels: list[str] | None = None) -> UserSuite:
    """Parse a JSONL suite: one case per non-blank line."""
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteFileError(f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        cases.append(_case(raw, f"{path}:{number}", number, labels))
    if not cases:
        raise SuiteFileError(f"{path}: no cases")
    return UserSuite(name=Path(path).stem, path=path, cases=tuple(cases))


def load_suite(path: str | Path, labels: list[str] | None = None) -> UserSuite:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteFileError(f"{path}: cannot read: {exc}") from None
    if path.suffix in (".yaml", ".yml"):
        return parse_yaml_suite(text, str(path), labels)
    if path.suffix == ".jsonl":
        return parse_jsonl_suite(text, str(path), labels)
    raise SuiteFileError(f"{path}: unknown suite format (use .yaml, .yml or .jsonl)")


def load_suites(patterns: list[str], root: str | Path = ".", labels: list[str] | None = None) -> list[UserSuite]:
    """Every suite file matching the glob patterns (relative to ``root``), sorted by path."""
    found = sorted({p for pattern in patterns for p in glob.glob(str(Path(root) / pattern))})
    suites = [load_suite(p, labels) for p in found]
    names = [s.name for s in suites]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SuiteFileError(f"suite name(s) used by more than one file: {', '.join(dupes)}")
    return suites


def case_passes(case: Case, label: str, teacher_label: str | None) -> bool:
    """Whether a model answering ``label`` passes ``case`` (the teacher answered ``teacher_label``)."""
    if case.expect_not is not None:
        return label != case.expect_not
    if case.expect == SAME_AS_TEACHER:
        return teacher_label is not None and label == teacher_label
    return label == case.expect
