"""The local LLM tooling's own errors: what a user sees before any server runs (pipeline/teachers/llama_local.py)."""

import socket

import pytest

from pipeline.teachers.llama_local import LlamaServer, LocalLLMError, build_server, server_path, tools_dir


def test_tools_dir_is_the_projects_cache_unless_the_environment_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv("DISTILL_TOOLS_DIR", raising=False)
    assert tools_dir(tmp_path) == tmp_path.resolve() / ".cache" / "tools"
    monkeypatch.setenv("DISTILL_TOOLS_DIR", str(tmp_path / "elsewhere"))
    assert tools_dir(tmp_path) == tmp_path / "elsewhere"


def test_a_missing_binary_or_model_says_which_command_installs_it(tmp_path):
    model = tmp_path / "model.gguf"
    with pytest.raises(LocalLLMError, match="no llama-server at .*run `distill llm-local install`"):
        LlamaServer(tmp_path / "llama-server", model).start()
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    with pytest.raises(LocalLLMError, match="no model at .*model.gguf"):
        LlamaServer(binary, model).start()


def test_a_taken_port_is_refused_before_starting(tmp_path):
    (tmp_path / "llama-server").write_text("#!/bin/sh\n")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LocalLLMError, match=f"port {port} on 127.0.0.1 is taken"):
            LlamaServer(tmp_path / "llama-server", tmp_path / "model.gguf", port=port).start()


def test_a_server_that_exits_while_starting_is_reported_with_its_log(tmp_path):
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\necho 'error: unknown model format' >&2\nexit 3\n")
    binary.chmod(0o755)
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "server.log"
    with pytest.raises(LocalLLMError, match=r"llama-server exited with code 3 while starting; its log: .*server.log"):
        LlamaServer(binary, tmp_path / "model.gguf", port=port, log_path=log).start(timeout_s=10)
    assert "unknown model format" in log.read_text()


def test_building_without_cmake_names_the_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no compiler
    with pytest.raises(LocalLLMError, match="building llama-server needs cmake on PATH"):
        build_server(tmp_path / "tools")
    assert not server_path(tmp_path / "tools").exists()
