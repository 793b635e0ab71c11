"""params.yaml is loaded into typed, frozen sections; errors name the key."""

import pytest
from pydantic import ValidationError

from pipeline.config import ConfigError, load_params, parse_overrides, parse_params

pytestmark = pytest.mark.unit


def test_project_params_file_is_valid():
    params = load_params("params.yaml")
    assert params.ingest.source.kind == "spamassassin"
    assert 0 < params.ingest.labeled_fraction <= 1


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError) as exc:
        parse_params({"ingest": {"test_fracton": 0.2}})
    assert "ingest.test_fracton: unknown key (did you mean test_fraction?)" in str(exc.value)


def test_unknown_nested_key_and_section():
    with pytest.raises(ConfigError) as exc:
        parse_params({"ingest": {"source": {"kind": "csv", "path": "x.csv", "txt_column": "t"}}, "ingset": {}})
    msg = str(exc.value)
    assert "ingest.source.txt_column: unknown key (did you mean text_column?)" in msg
    assert "ingset: unknown key (did you mean ingest?)" in msg


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError) as exc:
        parse_params({"ingest": {"test_fraction": "a lot"}})
    assert "ingest.test_fraction:" in str(exc.value)
    assert "'a lot'" in str(exc.value)


def test_out_of_range_value_is_rejected():
    with pytest.raises(ConfigError, match="ingest.test_fraction"):
        parse_params({"ingest": {"test_fraction": 1.5}})


def test_missing_required_value():
    with pytest.raises(ConfigError, match="source.path is required"):
        parse_params({"ingest": {"source": {"kind": "csv"}}})


def test_sections_are_frozen():
    params = parse_params({"ingest": {}})
    with pytest.raises(ValidationError, match="frozen_instance|Instance is frozen"):
        params.ingest.test_fraction = 0.5  # type: ignore[misc]
    assert params.ingest.test_fraction == parse_params({"ingest": {}}).ingest.test_fraction


def test_overrides_apply_dotted_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("ingest:\n  test_fraction: 0.2\n")
    params = load_params(path, parse_overrides(["ingest.test_fraction=0.3", "seed=7"]))
    assert params.ingest.test_fraction == 0.3 and params.seed == 7


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_one_text_limit_for_pipeline_and_server_whatever_sections_exist():
    from pipeline.config import parse_params

    assert parse_params({"ingest": {}}).serve.max_text_chars == 20_000  # no serve section: ingest's limit
    assert parse_params({"ingest": {"max_chars": 5_000}}).serve.max_text_chars == 5_000
    assert parse_params({"ingest": {}, "serve": {"max_text_chars": 300}}).serve.max_text_chars == 300

