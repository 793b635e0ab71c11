"""What the infra tests share: the infra files parsed once, and the facts the code and docs fix."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CONTRACTS = ROOT / "docs" / "contracts.md"

# Pieces other branches are building. Each test that needs one asserts that it is STILL missing, so
# the day it lands the test fails and the check against the real thing replaces the entry here.
PENDING_FLOWS: set[str] = set()   # flows/canary.py (branch serve) and flows/monitor.py have landed
PENDING_ENV = {"DISTILL_ALERT_WEBHOOK_URL"}            # monitor.webhook_url_env (branch monitor)


def load_yaml_docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def k8s() -> list[dict]:
    docs = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [dict(d, _file=path.name) for d in load_yaml_docs(path)]
    return docs


@pytest.fixture(scope="session")
def contract_text() -> str:
    return CONTRACTS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def ports(contract_text) -> dict[str, int]:
    """The 'Ports:' line of docs/contracts.md as {component: port}."""
    match = re.search(r"- Ports: (.*?)\.\n", contract_text, re.S)
    assert match, "docs/contracts.md lost its 'Ports:' line"
    out = {}
    for part in match.group(1).replace("\n", " ").split(","):
        name, port = re.match(r"\s*(.+?) (\d+)", part).groups()
        out[name] = int(port)
    return out


@pytest.fixture(scope="session")
def contract_metrics(contract_text) -> dict[str, dict]:
    """The 'Server metrics' table of docs/contracts.md: name -> {type, labels}."""
    rows = re.findall(r"^\s*\| `((?:distill|http)_\w+)` \| (\w+) \|([\w, ]*)\|", contract_text, re.M)
    assert rows, "docs/contracts.md lost its 'Server metrics' table"
    assert len(rows) == len(re.findall(r"^\s*\| `(?:distill|http)_", contract_text, re.M)), "a metrics row did not parse"
    return {name: {"type": kind, "labels": {x.strip() for x in labels.split(",") if x.strip()}}
            for name, kind, labels in rows}


def code_env_names() -> set[str]:
    """Upper-case string constants in the modules of pipeline/ and flows/ that read the environment.

    Catches ``os.environ.get("X")`` as well as ``URL_ENV = "X"`` ... ``env.get(URL_ENV)``.
    """
    names: set[str] = set()
    for path in list((ROOT / "pipeline").rglob("*.py")) + list((ROOT / "flows").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "environ" not in source and "getenv" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", node.value):
                names.add(node.value)
    return names


def dashboard() -> dict:
    return json.loads((INFRA / "grafana" / "dashboards" / "model-server.json").read_text(encoding="utf-8"))
