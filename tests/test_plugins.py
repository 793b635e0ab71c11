"""Every name -> implementation registry has one shape: checked here the same way for all of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.plugins import Plugins

pytestmark = pytest.mark.unit


def registries() -> dict[str, Plugins]:
    from pipeline.augment import OPS
    from pipeline.bench.peers import PEERS
    from pipeline.evaluate.perturb import PERTURBATIONS
    from pipeline.evaluate.suites.base import SUITES
    from pipeline.ingest.sources import READERS
    from pipeline.losses import LOSSES
    from pipeline.students import STUDENTS
    from pipeline.teachers.base import TEACHERS

    return {"teachers": TEACHERS, "students": STUDENTS, "losses": LOSSES, "readers": READERS, "augment": OPS,
            "suites": SUITES, "perturbations": PERTURBATIONS, "peers": PEERS}


@pytest.mark.parametrize("name", sorted(registries()))
def test_every_name_resolves_and_an_unknown_one_fails_listing_the_known(name):
    table = registries()[name]
    names = table.names()
    assert names, f"{name}: no entries"
    for entry in names:
        assert entry in table and callable(table.get(entry)), f"{name}: {entry} does not resolve"
    with pytest.raises(table.error) as info:
        table.get("no-such-entry")
    message = str(info.value)
    assert "'no-such-entry'" in message and all(entry in message for entry in names)
    with pytest.raises(ValueError, match="no-such-entry"):
        table.check("no-such-entry")


@pytest.mark.parametrize("key, value", [("teacher.kind", "nope"), ("ingest.source.kind", "xml"),
                                        ("augment.ops", ["dropout", "shout"]), ("distill.student.name", "bert")])
def test_params_are_validated_against_the_registry_names(key, value):
    from pipeline.config import ConfigError, parse_params

    data: dict = {"ingest": {}}
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(ConfigError, match="unknown .*; known: "):
        parse_params(data)


def test_names_are_known_without_importing_the_implementations():
    """Validating params must not pull in torch, transformers or onnxruntime."""
    code = ("import sys; from pipeline.config import parse_params; "
            "parse_params({'ingest': {}, 'teacher': {'kind': 'hf'}}); "
            "heavy = [m for m in ('torch', 'transformers', 'onnxruntime') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
