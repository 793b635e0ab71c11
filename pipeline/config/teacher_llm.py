"""params.yaml `teacher.llm`: an OpenAI-compatible chat-completions endpoint as the teacher."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class LLMTeacherConfig(Section):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    # Name of the environment variable holding the API key (never the key itself).
    api_key_env: str = "DISTILL_LLM_API_KEY"
    # label name -> description shown to the model
    labels: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
