"""params.yaml loaded into typed, frozen sections.

Each stage owns one section module here (``ingest.py``, ``validate.py``, ...). :func:`load_params`
validates the whole file so a typo anywhere fails loudly, naming the key::

    distill.temprature: unknown key (did you mean temperature?)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from pipeline.config.augment import AugmentConfig
from pipeline.config import strictyaml
from pipeline.config.base import ConfigError, Section, format_errors
from pipeline.config.distill import DistillConfig, ExportConfig
from pipeline.config.evaluate import EvaluateConfig
from pipeline.config.ingest import IngestConfig
from pipeline.config.registry import RegistryConfig
from pipeline.config.canary import CanaryConfig
from pipeline.config.cost import CostConfig
from pipeline.config.serve import ServeConfig
from pipeline.config.label import LabelConfig
from pipeline.config.monitor import MonitorConfig
from pipeline.config.teacher import TeacherConfig
from pipeline.config.validate import ValidateConfig

__all__ = ["ConfigError", "Params", "Section", "load_params", "parse_params"]


class Params(Section):
    """The whole params.yaml. Sections of stages that are not configured stay ``None``."""

    # Seed of every random choice (splits, sampling, training): the same seed and data give the same outputs.
    seed: int = 42
    ingest: IngestConfig
    # "validate" would shadow a BaseModel method, so the attribute is validate_ and the YAML key validate.
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    label: LabelConfig = Field(default_factory=LabelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    cost: CostConfig = Field(default_factory=CostConfig)

    model_config = Section.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_text_limit(self) -> "Params":
        if self.serve.max_text_chars is None:  # the server takes every text the pipeline trains on
            serve = self.serve.model_copy(update={"max_text_chars": self.ingest.max_chars})
            object.__setattr__(self, "serve", serve)
        return self


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate a mapping (already parsed YAML) into :class:`Params`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return Params(**data)
    except ValidationError as exc:
        text = format_errors(exc, Params)
        raise ConfigError(f"{source} is invalid:\n{text}") from None


def load_params(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate a params file. ``overrides`` maps dotted keys to values (``distill.epochs``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = strictyaml.load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: byte {exc.start} is not valid UTF-8 ({exc.reason}); save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}:{_yaml_where(exc)} not valid YAML: {_yaml_problem(exc)}") from None
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return parse_params(data, str(path))


def _yaml_where(exc: "yaml.YAMLError") -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"{mark.line + 1}:" if mark is not None else ""


def _yaml_problem(exc: "yaml.YAMLError") -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    return " ".join(str(p) for p in (context, problem) if p) or str(exc).splitlines()[0]


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: cannot set a key below a non-mapping value")
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (values as YAML scalars) from the command line."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = strictyaml.load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {_yaml_problem(exc)}") from None
    return out
