"""docs/configuration.md is generated from the typed params models and must match them."""

from pathlib import Path

import pytest

from pipeline.config.reference import render

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_reference_matches_the_models():
    assert DOC.read_text() == render(), "regenerate: python -m pipeline.config.reference > docs/configuration.md"


def test_every_section_of_params_yaml_is_documented():
    import yaml

    params = yaml.safe_load((DOC.parents[1] / "params.yaml").read_text())
    text = render()
    for section in params:
        if isinstance(params[section], dict):
            assert f"## `{section}`" in text, section


def test_every_key_has_a_meaning():
    """A new params key needs a comment beside its field: that comment is its documentation."""
    missing = []
    section = None
    for line in render().splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("| `"):
            cells = [c.strip() for c in line.split("|")]
            if not cells[4]:
                missing.append(f"{section} {cells[1]}")
    assert not missing, "undocumented params keys: " + ", ".join(missing)
