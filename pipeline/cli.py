"""The ``distill`` command line.

Stage commands (``distill ingest``, ``distill validate``, ...) pass their arguments to
``pipeline/stages/<stage>.py``'s ``main``, the same entry point dvc.yaml calls as
``python -m pipeline.stages.<stage>``. Heavy libraries are
imported by the command that needs them, so ``distill --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="distill: a pipeline that turns an expensive teacher into a small, fast student.")

# stage name -> one-line help; each runs pipeline/stages/<name>.py's main(argv), as dvc.yaml does.
STAGES: dict[str, str] = {
    "ingest": "Read the configured source into the ingested table.",
    "validate": "Run the Great Expectations suite on the ingested table.",
    "teacher": "Fit or check the configured teacher into its directory.",
    "label": "Soft-label every ingested (and augmented) text with the cached teacher.",
    "distill": "Distill the student from the teacher's soft labels.",
    "export": "Export the student to an ONNX fp32 + int8 bundle and check parity.",
    "evaluate": "Score teacher and student on every suite and write the gate report.",
    "monitor": "Run the production monitor once (drift, teacher agreement, alerts).",
}
# Older names kept working: `distill train` is the distill stage.
ALIASES: dict[str, str] = {"train": "distill"}

_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _stage_command(stage: str):
    def command(ctx: typer.Context) -> None:
        code = importlib.import_module(f"pipeline.stages.{stage}").main(ctx.args)
        raise typer.Exit(code or 0)

    return command


for _name, _help in STAGES.items():
    app.command(_name, help=_help + " (--help for options)", context_settings=_PASSTHROUGH)(_stage_command(_name))
for _alias, _stage in ALIASES.items():
    app.command(_alias, help=f"Alias of `distill {_stage}`.", hidden=True,
                context_settings=_PASSTHROUGH)(_stage_command(_stage))


@app.command("params")
def params_check(path: str = typer.Argument("params.yaml", help="params file to check")) -> None:
    """Validate a params file and print it with every default filled in."""
    import yaml

    from pipeline.config import ConfigError, load_params

    try:
        params = load_params(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(yaml.safe_dump(params.model_dump(mode="json", by_alias=True), sort_keys=False))


@app.command("retrain")
def retrain(push: bool = typer.Option(True, help="push outputs to the DVC remote when one is configured")) -> None:
    """Run the retrain Prefect flow (reads ./params.yaml): every DVC stage as a task, then push; exit 1 when
    the gate failed."""
    from flows.retrain import GateFailed
    from flows.retrain import retrain as retrain_flow

    try:
        retrain_flow(push=push)
    except GateFailed as exc:  # the run is Failed in Prefect; the bundle was registered as rejected
        typer.echo(f"retrain: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("demo")
def demo(push: bool = typer.Option(True, help="push outputs to the DVC remote"),
         drift: bool = typer.Option(False, "--drift", help="after a demo: replay shifted traffic, let the monitor "
                                    "breach, and run the retrain its drift trigger starts")) -> None:
    """Run the whole pipeline on the embedded default and print what it produced and where."""
    from pipeline.demo import run_demo, run_drift
    from pipeline.errors import DistillError

    try:
        raise typer.Exit(run_drift(push=push) if drift else run_demo(push=push))
    except DistillError as exc:
        typer.echo(f"distill demo: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("bench")
def bench(
    params: str = typer.Option("params.yaml", "--params", help="params file naming the dataset and settings"),
    workdir: str = typer.Option(None, "--workdir", help="working folder (default bench/<name>/)"),
    data_dir: str = typer.Option(None, "--data-dir", envvar="DISTILL_BENCH_DATA_DIR",
                                 help="folder holding the source files named in the params (default: their paths)"),
    threads: str = typer.Option("1,2", help="comma-separated thread counts to time every model at"),
    speed_texts: int = typer.Option(1000, help="test texts every model is timed on"),
    set_: list[str] = typer.Option([], "--set", help="override a params key: KEY=VALUE (repeatable)"),
    peers: str = typer.Option("tfidf-lr,fasttext,model2vec-lr", help="comma-separated peers to train on the same labels "
                              "('' for none)"),
    labeling_curve: bool = typer.Option(False, "--labeling-curve", help="instead: student accuracy against teacher "
                                        "calls, random and active selection at 5-100 %% of the pool (labeling.json)"),
    seeds: str = typer.Option("", "--seeds", help="with --labeling-curve: comma-separated seeds, one curve each, "
                              "reported as their mean and range (default: the params' seed)"),
) -> None:
    """Quality-per-cost benchmark: teacher, distilled student, gold-only student and the peers a user would
    train instead on the same labels; writes bench.json."""
    from pipeline.bench import bench_name, render_table, run_bench, with_data_dir
    from pipeline.config import ConfigError, load_params, parse_overrides
    from pipeline.errors import DistillError
    from pipeline.stages import setup_logging

    setup_logging()
    if seeds.strip() and not labeling_curve:
        raise typer.BadParameter("is for --labeling-curve (the main bench runs the params' seed)", param_hint="--seeds")
    try:
        loaded = with_data_dir(load_params(params, parse_overrides(set_)), data_dir)
        if labeling_curve:
            from pipeline.bench.labeling import labeling_curves, render_curve

            try:
                chosen = [int(n) for n in seeds.split(",") if n.strip()]
            except ValueError:
                raise typer.BadParameter(f"takes comma-separated integers, not {seeds!r}", param_hint="--seeds") from None
            typer.echo(render_curve(labeling_curves(loaded, workdir or f"bench/{bench_name(params)}", chosen)))
            return
        record = run_bench(loaded, workdir or f"bench/{bench_name(params)}",
                           threads=[int(n) for n in threads.split(",")], speed_texts=speed_texts,
                           peer_names=[p for p in peers.split(",") if p.strip()])
    except (ConfigError, DistillError) as exc:
        typer.echo(f"bench: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(render_table(record))

@app.command("serve")
def serve(host: str = typer.Option("127.0.0.1", help="interface to listen on"),
          port: int = typer.Option(8000, help="TCP port (contracts: 8000)"),
          params: str = typer.Option("params.yaml", "--params", help="params file (sections serve, registry)"),
          log_level: str = typer.Option("warning", help="uvicorn log level")) -> None:
    """Run the model server (FastAPI + onnxruntime) on the registry's production and canary models."""
    import uvicorn

    from pipeline import predlog
    from pipeline.config import ConfigError, load_params
    from pipeline.errors import DistillError
    from pipeline.serve.app import create_app
    from pipeline.serve.workers import Supervisor, uvicorn_config

    try:
        loaded = load_params(params)
        engine, _ = predlog.connect(loaded.serve.prediction_log_url)  # a log that cannot open stops us here
        engine.dispose()
        cfg = loaded.serve
        app_ = create_app(loaded) if cfg.workers == 1 else None  # workers build their own (pipeline/serve/workers.py)
    except (ConfigError, DistillError) as exc:
        typer.echo(f"distill serve: error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"distill serve: listening on http://{host}:{port} (API docs /docs, schema /openapi.json, "
               f"metrics /metrics, V2 inference /v2/models/{cfg.model_name}/infer)")
    typer.echo(f"distill serve: the student in your browser, offline once loaded: http://{host}:{port}/demo/")
    if cfg.workers == 1:
        uvicorn.Server(uvicorn_config(app_, cfg, log_level, host=host, port=port)).run()
        return
    try:
        supervisor = Supervisor(params, host, port, log_level, cfg.workers)
        code = supervisor.run()
    except (ValueError, OSError) as exc:  # port 0, or the port is taken
        typer.echo(f"distill serve: error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command("canary")
def canary(params: str = typer.Option("params.yaml", "--params", help="params file (sections canary, registry)")) -> None:
    """Run the canary Prefect flow: step the candidate's traffic, then promote, hold or roll back."""
    from flows.canary import canary as canary_flow

    result = canary_flow(params_path=params)
    typer.echo(result["decision"])


from pipeline.registry.cli import app as _registry_app  # noqa: E402  (typer only; SQLAlchemy loads per command)

app.add_typer(_registry_app, name="registry")

from pipeline.teachers.llama_cli import app as _llm_local_app  # noqa: E402  (typer only)

app.add_typer(_llm_local_app, name="llm-local")


def main() -> None:  # pragma: no cover - console script shim
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
