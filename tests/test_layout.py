"""The codebase's one rule (docs/contracts.md, "Where things live"), checked so it cannot drift."""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from pipeline import outputs
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

PIPELINE = ROOT / "pipeline"
CODE = sorted([*PIPELINE.rglob("*.py"), *(ROOT / "flows").rglob("*.py")])


def test_every_dvc_stage_runs_its_own_single_function_entry():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert stage["cmd"].split()[:3] == ["python", "-m", f"pipeline.stages.{name}"], name
        entry = PIPELINE / "stages" / f"{name}.py"
        assert f"pipeline/stages/{name}.py" in stage["deps"], f"{name}: its entry is not a dependency"
        tree = ast.parse(entry.read_text())
        functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert functions == ["main"], f"{entry}: holds {functions}, not only main()"


def test_no_module_sits_beside_a_package_of_the_same_name():
    for folder in [PIPELINE, *[p for p in PIPELINE.rglob("*") if p.is_dir() and p.name != "__pycache__"]]:
        for module in folder.glob("*.py"):
            assert not (folder / module.stem).is_dir(), f"{module} sits beside the package {folder / module.stem}"


def test_the_text_hash_is_defined_once():
    defined = [p for p in CODE if re.search(r"^def (text_key|text_hash|content_id)\b", p.read_text(), re.M)]
    assert [p.relative_to(ROOT).as_posix() for p in defined] == ["pipeline/keys.py"]


def _string_literals(tree: ast.AST):
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_output_paths_are_written_only_in_dvc_yaml():
    """No code (docstrings aside) spells a path dvc.yaml's `vars: paths` names; it asks pipeline.outputs."""
    known = {p for p in outputs.paths(ROOT).values() if "/" in p}
    found = []
    for path in CODE:
        for node in _string_literals(ast.parse(path.read_text())):
            if any(k in node.value for k in known):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)
