"""FastAPI app factory of the model server.

    uvicorn --factory pipeline.serve.app:create_app       # params from $DISTILL_PARAMS or ./params.yaml
    distill serve --host 127.0.0.1 --port 8000            # the same, through the CLI

Start-up opens the prediction log, loads the registry's production (and canary) models synchronously,
then starts the registry follower; shutdown stops the follower and flushes the log.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

PARAMS_ENV = "DISTILL_PARAMS"
log = logging.getLogger("distill.serve")


@dataclass
class ServerParts:
    """Everything the endpoints share, built once per app."""

    cfg: Any  # ServeConfig
    metrics: Any
    slots: Any
    writer: Any
    follower: Any
    pool: Any  # pipeline.serve.pool.InferencePool
    batcher: Any  # pipeline.serve.pool.MicroBatcher over the pool
    cascade: Any = None  # pipeline.serve.cascade.Cascade when serve.cascade.enabled
    cascade_error: str | None = None  # why an enabled cascade is off (its teacher could not be built)


def build_parts(params) -> ServerParts:
    from pipeline import predlog
    from pipeline.registry import open_registry
    from pipeline.serve.follower import RegistryFollower
    from pipeline.serve.logwriter import PredictionLogWriter
    from pipeline.serve.metrics import build_metrics
    from pipeline.serve.models import ModelSlots

    from pipeline.serve.workers import worker_count, worker_index

    cfg = params.serve
    holder: dict[str, Any] = {}
    metrics = build_metrics(lambda: holder["writer"].depth() if "writer" in holder else 0)
    writer = PredictionLogWriter(predlog.resolve_url(cfg.prediction_log_url), cfg.log_text, cfg.log_queue_size,
                                 cfg.log_batch_size, cfg.log_flush_s, on_written=metrics.predlog_written.inc,
                                 on_dropped=metrics.predlog_dropped.inc, on_lost=metrics.predlog_lost.inc,
                                 durable=cfg.log_durable, worker=worker_index(),
                                 on_depth=metrics.queue_depth.set if metrics.multiprocess else None)
    holder["writer"] = writer
    slots = ModelSlots(cfg.threads, cfg.smoke_text, metrics)
    follower = RegistryFollower(lambda: open_registry(params.registry), slots, cfg.poll_interval_s, metrics)
    from pipeline.serve.cascade import build_cascade

    cascade, cascade_error = build_cascade(params, metrics, share=1 / worker_count())
    from pipeline.serve.pool import InferencePool, MicroBatcher

    pool = InferencePool(cfg.inference_threads)
    batcher = MicroBatcher(pool, cfg.micro_batch_texts, cfg.inference_threads, on_run=metrics.inference_runs.inc)
    return ServerParts(cfg=cfg, metrics=metrics, slots=slots, writer=writer, follower=follower, pool=pool,
                       batcher=batcher, cascade=cascade, cascade_error=cascade_error)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("distill")
    except PackageNotFoundError:  # a source tree that was not installed
        return "0+unknown"


def serving_line(slots) -> str:
    """What the server serves now, in one line (printed at start-up)."""
    state = slots.state
    if state.stable is None:
        why = f": {slots.last_load_error}" if slots.last_load_error else ""
        return f"no production model yet{why}; answering 503 until the registry has one"
    line = f"production {state.stable.version} (digest {state.stable.digest[:12]})"
    if state.canary is not None:
        line += f", canary {state.canary.version} at {state.weight:.0%}"
    return line


def create_app(params=None):
    """The server app; ``params`` defaults to the file named by $DISTILL_PARAMS (else params.yaml)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from pipeline.serve.endpoints import build_router

    # Requests are featurized on the inference threads (serve.inference_threads): the tokenizer's own
    # thread pool would only add hand-offs and compete with them for the cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if params is None:
        from pipeline.config import load_params

        params = load_params(os.environ.get(PARAMS_ENV, "params.yaml"))
    parts = build_parts(params)

    @asynccontextmanager
    async def lifespan(app):
        parts.writer.start()
        parts.follower.sync_now()
        parts.follower.start()
        print(f"distill serve: {serving_line(parts.slots)}", flush=True)
        if parts.cascade is not None:
            print(f"distill serve: cascade on, teacher {parts.cascade.fingerprint}", flush=True)
        elif parts.cascade_error:
            print(f"distill serve: cascade OFF, serving the student alone: {parts.cascade_error}", flush=True)
        try:
            yield
        finally:
            parts.follower.stop()
            parts.pool.close()
            parts.writer.stop()
            if parts.cascade is not None:
                parts.cascade.close()

    app = FastAPI(title="distill model server", version=package_version(), lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.parts = parts
    from pipeline.serve.endpoints import LeanPaths
    from pipeline.serve.metrics import HTTPMetrics

    router = build_router(parts)
    app.add_middleware(LeanPaths, router=router)
    app.add_middleware(HTTPMetrics, metrics=parts.metrics)  # added last: outermost, it times LeanPaths too
    app.include_router(router)
    from pipeline.serve.web import add_web_routes

    add_web_routes(app, parts.slots, parts.cfg)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": "invalid request", "details": exc.errors()}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug answers 500; the worker lives on
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    return app
