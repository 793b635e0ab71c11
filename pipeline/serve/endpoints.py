"""HTTP endpoints: ``POST /v1/predict``, ``GET /healthz``, ``GET /readyz``, ``GET /v1/models``, ``GET /metrics``,
and the Open Inference Protocol (KServe V2): ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
``/v2/models/{name}``, ``/v2/models/{name}/ready`` and ``POST /v2/models/{name}/infer``; both inference
paths share one classification (routing, abstention, cascade, prediction log).

The predict path is kept lean: the body is parsed with orjson (no pydantic model), the model snapshot is
read once, inference runs on the inference threads (``serve.inference_threads``, never on the event
loop, so ``/healthz`` answers while the model works; more than ``serve.max_pending`` waiting requests
are answered 429 with Retry-After), and the prediction log gets one ``put_nowait`` (or, with
``serve.log_durable``, the answer waits for the commit). Refusals answer 4xx JSON naming the limit. With the cascade on
(pipeline/serve/cascade.py), the texts below the cut are awaited from the teacher on its own threads;
each prediction says ``source: student | teacher``, and ``fallback`` says why a deferred text got the
student's answer.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.serve.limits import (V2_INPUT, V2_OUTPUTS, VISIBLE_PATTERN, RequestRejected, check_content_type, parse_infer,
                                   parse_predict, read_body)
from pipeline.serve.logwriter import LogRecord
from pipeline.serve.metrics import PREDICT
from pipeline.serve.traffic import CANARY, STABLE, choose_route, request_key

INFER = "/v2/models/{model_name}/infer"
STUDENT, TEACHER = "student", "teacher"  # who answered a text (``source`` of each prediction)

log = logging.getLogger("distill.serve")
JSON = "application/json"


def _json(status: int, body) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def _v2_unknown(name: str) -> Response:
    return _json(404, {"error": f"unknown model {name!r}: this server serves serve.model_name (GET /v2 names it)"})


@dataclass
class Answer:
    """One classified request, before it is written out as /v1 predictions or V2 tensors."""

    texts: list[str]
    version: str
    route: str
    names: list[str]
    probs: np.ndarray
    labels: list[str]  # the answer per text (the teacher's for deferred texts)
    student_labels: list[str]
    stable_labels: list[str] | None  # canary traffic: what the stable model said
    sources: list[str]
    fallback: dict[int, str] = field(default_factory=dict)
    abstained: list[int] = field(default_factory=list)


def _plain_fn(bundle):
    return lambda texts: (bundle.predict_proba(texts, "int8"), None)


def _scored_fn(bundle):
    return lambda texts: bundle.predict_scored(texts, "int8")


def build_router(server) -> APIRouter:
    """Endpoints over ``server`` (a :class:`pipeline.serve.app.ServerParts`)."""
    router = APIRouter()
    cfg = server.cfg
    metrics = server.metrics
    slots = server.slots
    writer = server.writer
    request_numbers = itertools.count(1)  # request ids: the writer's run id and a number (unique, no urandom)

    error = {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "limit": {"type": "string"}, "max": {}, "details": {}}}}}
    refusals = {
        "400": "malformed JSON", "413": "over serve.max_body_bytes, serve.max_batch or serve.max_text_chars",
        "415": "Content-Type is not application/json", "422": "a body of the wrong shape",
        "429": "saturated: more than serve.max_pending requests wait for inference (see Retry-After)",
        "500": "the model failed on this input", "503": "no production model loaded yet",
    }
    prediction = {"type": "object", "required": ["label", "probs", "version", "route", "source"], "properties": {
        "label": {"type": ["string", "null"], "description": "null: abstained (serve.ood_abstain)"}, "probs": {"type": "object", "additionalProperties": {"type": "number"}},
        "version": {"type": "string"}, "route": {"type": "string", "enum": ["stable", "canary"]},
        "source": {"type": "string", "enum": [STUDENT, TEACHER]},
        "fallback": {"type": "string", "description": "why a deferred text got the student's answer"},
        "abstained": {"type": "string", "enum": ["out_of_domain"],
                      "description": "the text's in-domain score was below the bundle's cut (serve.ood_abstain)"}}}
    predict_doc = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["texts"], "additionalProperties": False,
            "properties": {"texts": {"type": "array", "minItems": 1, "maxItems": cfg.max_batch,
                                     "items": {"type": "string", "minLength": 1, "maxLength": cfg.max_text_chars,
                                               "pattern": VISIBLE_PATTERN,
                                               "description": "not blank: some character besides whitespace and "
                                                              "control characters"}},
                           "key": {"type": ["string", "null"], "description": "routing key (sticky canary split)"}}}}}},
        "responses": {
            "200": {"description": "one prediction per text", "content": {"application/json": {"schema": {
                "type": "object", "required": ["predictions"],
                "properties": {"predictions": {"type": "array", "items": prediction}}}}}},
            **{code: {"description": why, "content": error} for code, why in refusals.items()},
        },
    }

    tensor = {"type": "object", "required": ["name", "datatype", "shape", "data"], "properties": {
        "name": {"type": "string"}, "datatype": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
        "data": {"type": "array"}}}
    text_tensor = {"type": "object", "required": ["name", "datatype", "shape", "data"], "properties": {
        "name": {"type": "string", "enum": [V2_INPUT]}, "datatype": {"type": "string", "enum": ["BYTES"]},
        "shape": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer", "minimum": 1},
                  "description": "[N] or [N, 1], N the number of strings in data"},
        "data": {"type": "array", "minItems": 1, "maxItems": cfg.max_batch, "items": {
            "type": "string", "minLength": 1, "maxLength": cfg.max_text_chars, "pattern": VISIBLE_PATTERN}}}}
    infer_doc = {
        "description": "Open Inference Protocol (KServe V2). One BYTES input `text` of shape [N]; outputs "
                       "`label` (BYTES [N]) and `probs` (FP32 [N, classes], row-major, classes in "
                       "`parameters.labels`). `parameters.key` routes like `key` of /v1/predict.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["inputs"], "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object", "properties": {"key": {"type": ["string", "null"]}}},
                "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": text_tensor},
                "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "enum": list(V2_OUTPUTS)}}}}}}}}},
        "responses": {
            "200": {"description": "the output tensors", "content": {"application/json": {"schema": {
                "type": "object", "required": ["model_name", "outputs"], "properties": {
                    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
                    "outputs": {"type": "array", "items": tensor}, "parameters": {"type": "object"}}}}}},
            "404": {"description": "not the model this server serves", "content": error},
            **{code: {"description": why, "content": error} for code, why in refusals.items()},
        },
    }

    def refuse(exc: RequestRejected) -> Response:
        metrics.rejected.labels(reason=exc.limit or "bad_request").inc()
        response = _json(exc.status, exc.body())
        if exc.status == 429:
            response.headers["Retry-After"] = "1"
        return response

    def check_pending() -> None:
        if server.pool.pending >= cfg.max_pending:
            raise RequestRejected(429, f"the server is saturated: {server.pool.pending} requests wait for "
                                       f"inference (serve.max_pending = {cfg.max_pending}); retry shortly",
                                  "serve.max_pending", cfg.max_pending)

    @router.post(PREDICT, summary="Classify texts", openapi_extra=predict_doc)
    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        try:
            check_content_type(request.headers.get("content-type"))
            check_pending()
            body = await read_body(request, cfg.max_body_bytes)
            texts, key = parse_predict(body, cfg.max_batch, cfg.max_text_chars)
        except RequestRejected as exc:
            return refuse(exc)
        with server.pool.waiting():
            answer = await classify(texts, key)
            if isinstance(answer, Response):
                return answer
            return await deliver(answer, orjson.dumps({"predictions": v1_predictions(answer)}), start)

    @router.post(INFER, summary="Classify texts (Open Inference Protocol V2)",
                 openapi_extra=infer_doc)
    async def infer(model_name: str, request: Request) -> Response:
        start = time.perf_counter()
        try:  # the request is checked first: a malformed one is a 4xx whatever model it names
            check_content_type(request.headers.get("content-type"))
            check_pending()
            body = await read_body(request, cfg.max_body_bytes)
            texts, key, request_id, wanted = parse_infer(body, cfg.max_batch, cfg.max_text_chars)
        except RequestRejected as exc:
            return refuse(exc)
        if model_name != cfg.model_name:
            return _v2_unknown(model_name)
        with server.pool.waiting():
            answer = await classify(texts, key)
            if isinstance(answer, Response):
                return answer
            return await deliver(answer, orjson.dumps(v2_response(answer, request_id, wanted)), start)

    async def classify(texts: list[str], key: str | None) -> Answer | Response:
        """Route, infer, abstain and defer: the answer to a checked request, or the error response."""
        inline = sum(map(len, texts)) <= cfg.inline_max_chars
        state = slots.state
        if state.stable is None:
            return _json(503, {"error": "no model loaded yet: the registry has no production version "
                                        "(or it failed to load, see GET /v1/models)"})
        route = STABLE
        if state.canary is not None:
            route = choose_route(request_key(key, texts), state.weight)
        model = state.canary if route == CANARY else state.stable
        stable_labels = None

        async def infer(bundle, scored: bool | None = None):
            """(probs, in-domain scores or None): scores only when the server abstains by them. Runs in a
            micro-batch with the concurrent requests on the same model (pipeline/serve/pool.py)."""
            if scored is None:
                scored = cfg.ood_abstain and bundle.ood_threshold is not None
            fn = _scored_fn(bundle) if scored else _plain_fn(bundle)
            if inline:
                return fn(texts)
            return await server.batcher.run((id(bundle), scored), fn, texts)

        try:
            probs, in_domain = await infer(model.bundle)
        except Exception as exc:  # a model that breaks on some input: answer with stable, count it
            metrics.route_errors[route].inc()
            log.error("%s model %s failed on a request: %s", route, model.version, exc)
            if route == STABLE:
                return _json(500, {"error": f"model {model.version} failed: {type(exc).__name__}"})
            route, model = STABLE, state.stable
            try:
                probs, in_domain = await infer(model.bundle)
            except Exception as exc2:
                metrics.route_errors[STABLE].inc()
                return _json(500, {"error": f"model {model.version} failed: {type(exc2).__name__}"})
        names = model.bundle.labels
        best = probs.argmax(axis=1)
        labels = [names[i] for i in best]
        student_labels = labels
        sources = [STUDENT] * len(texts)
        fallback: dict[int, str] = {}
        abstained = (np.flatnonzero(in_domain < model.bundle.ood_threshold) if in_domain is not None
                     else np.zeros(0, dtype=np.int64))
        cascade = server.cascade
        cut = cascade.threshold_for(model.bundle) if cascade is not None else None
        if cut is not None:
            low = np.setdiff1d(np.flatnonzero(probs.max(axis=1) < cut), abstained)  # out-of-domain: no teacher
            if low.size:
                deferral = await cascade.ask([texts[i] for i in low], names)
                if deferral.probs is not None:
                    probs = probs.copy()
                    probs[low] = deferral.probs
                    labels = list(labels)
                    for j, i in enumerate(low):
                        labels[i] = names[int(deferral.probs[j].argmax())]
                        sources[i] = TEACHER
                else:
                    fallback = {int(i): deferral.outcome for i in low}
        if route == CANARY:
            try:
                stable_probs, _ = await infer(state.stable.bundle, scored=False)
                s_names = state.stable.bundle.labels
                stable_labels = [s_names[i] for i in stable_probs.argmax(axis=1)]
                agreed = sum(a == b for a, b in zip(student_labels, stable_labels))  # student against student
                metrics.record_agreement(len(texts), agreed)
            except Exception as exc:
                metrics.route_errors[STABLE].inc()
                log.error("stable model %s failed scoring canary traffic: %s", state.stable.version, exc)
        if abstained.size:
            metrics.abstained.inc(int(abstained.size))
        return Answer(texts, model.version, route, names, probs, labels, student_labels, stable_labels, sources,
                      fallback, abstained.tolist())

    def v1_predictions(a: Answer) -> list[dict]:
        predictions = [{"label": a.labels[i], "probs": dict(zip(a.names, row)), "version": a.version,
                        "route": a.route, "source": a.sources[i]} for i, row in enumerate(a.probs.tolist())]
        for i, why in a.fallback.items():  # deferred, but the teacher could not answer: the student's answer, marked
            predictions[i]["fallback"] = why
        for i in a.abstained:  # the log keeps the student's own label; the client gets the abstention
            predictions[i]["label"] = cfg.ood_abstain_label
            predictions[i]["abstained"] = "out_of_domain"
        return predictions

    def v2_response(a: Answer, request_id: str | None, wanted: list[str]) -> dict:
        labels = list(a.labels)
        for i in a.abstained:
            labels[i] = cfg.ood_abstain_label
        n = len(labels)
        tensors = {"label": {"name": "label", "datatype": "BYTES", "shape": [n], "data": labels},
                   "probs": {"name": "probs", "datatype": "FP32", "shape": [n, len(a.names)],
                             "data": a.probs.astype(np.float32).ravel().tolist()}}
        out = {"model_name": cfg.model_name, "model_version": a.version, "outputs": [tensors[w] for w in wanted],
               "parameters": {"labels": list(a.names), "route": a.route, "source": a.sources}}
        if request_id is not None:
            out["id"] = request_id
        if a.abstained:
            out["parameters"]["abstained"] = a.abstained
        if a.fallback:
            out["parameters"]["fallback"] = {str(i): why for i, why in a.fallback.items()}
        return out

    async def deliver(a: Answer, payload: bytes, start: float) -> Response:
        """Count the answer, hand its rows to the prediction log, and send it."""
        elapsed = time.perf_counter() - start
        metrics.route_requests[a.route].inc()
        metrics.predictions(a.version, a.route).inc(len(a.texts))
        record = LogRecord(request_id=f"{writer.run_id}{next(request_numbers):016x}", ts=time.time(), texts=a.texts, version=a.version,
                           route=a.route, labels=a.labels, probs=a.probs, stable_labels=a.stable_labels,
                           latency_ms=elapsed * 1000.0, sources=a.sources, student_labels=a.student_labels)
        if cfg.log_durable:  # answered only once the rows are committed
            if not await writer.submit_durable(record):
                return _json(503, {"error": "the prediction log could not store this prediction "
                                            "(serve.log_durable is on); retry"})
        else:
            writer.submit(record)
        return Response(payload, media_type=JSON)

    @router.get("/healthz")
    async def healthz() -> Response:
        return _json(200, {"status": "ok"})

    router.lean_get = {"/healthz": healthz}  # liveness, answered by LeanPaths ahead of the routing

    @router.get("/readyz")
    async def readyz() -> Response:
        state = slots.state
        if state.stable is None:
            return _json(503, {"ready": False, "reason": "no production model loaded",
                               "last_load_error": slots.last_load_error})
        return _json(200, {"ready": True, "version": state.stable.version})

    @router.get("/v1/models")
    async def models() -> Response:
        state = slots.state
        return _json(200, {
            "stable": state.stable.describe() if state.stable else None,
            "canary": state.canary.describe() if state.canary else None,
            "canary_weight": state.weight,
            "registry_token": state.token,
            "cascade": ({**server.cascade.describe(),
                         "threshold": {m.version: server.cascade.threshold_for(m.bundle)
                                       for m in (state.stable, state.canary) if m is not None}}
                        if server.cascade is not None else {"enabled": False, "error": server.cascade_error}),
            "last_load_error": slots.last_load_error,
        })

    # Open Inference Protocol (V2): a 200 means true, a 4xx false (the protocol's convention).
    not_ready = {"description": "not ready: no production model loaded yet", "content": error}
    unknown = {"description": "not the model this server serves (serve.model_name)", "content": error}

    @router.get("/v2", summary="V2 server metadata")
    async def v2_server() -> Response:
        from pipeline.serve.app import package_version

        return _json(200, {"name": "distill", "version": package_version(), "extensions": []})

    @router.get("/v2/health/live", summary="V2 liveness")
    async def v2_live() -> Response:
        return _json(200, {"live": True})

    @router.get("/v2/health/ready", summary="V2 readiness: a production model is loaded",
                responses={400: not_ready})
    async def v2_ready() -> Response:
        ready = slots.state.stable is not None
        return _json(200 if ready else 400, {"ready": ready})

    @router.get("/v2/models/{model_name}", summary="V2 model metadata", responses={400: not_ready, 404: unknown})
    async def v2_model(model_name: str) -> Response:
        if model_name != cfg.model_name:
            return _v2_unknown(model_name)
        state = slots.state
        if state.stable is None:
            return _json(400, {"error": "no production model loaded yet"})
        versions = [m.version for m in (state.stable, state.canary) if m is not None]
        classes = len(state.stable.bundle.labels)
        return _json(200, {
            "name": cfg.model_name, "versions": versions, "platform": "onnxruntime_onnx",
            "inputs": [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                        {"name": "probs", "datatype": "FP32", "shape": [-1, classes]}],
            "parameters": {"labels": list(state.stable.bundle.labels), "digest": state.stable.digest,
                           "canary_weight": state.weight}})

    @router.get("/v2/models/{model_name}/ready", summary="V2 model readiness",
                responses={400: not_ready, 404: unknown})
    async def v2_model_ready(model_name: str) -> Response:
        if model_name != cfg.model_name:
            return _v2_unknown(model_name)
        ready = slots.state.stable is not None
        return _json(200 if ready else 400, {"name": model_name, "ready": ready})

    router.lean = {PREDICT: predict, INFER: infer}  # the hot paths, served by LeanPaths

    @router.get("/metrics", responses={200: {"description": "Prometheus text format",
                                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    return router


class LeanPaths:
    """Pure ASGI middleware: ``POST /v1/predict`` and ``POST /v2/models/<name>/infer`` go straight to their
    endpoint functions, past FastAPI's routing, dependency solving and exception middleware (about a
    tenth of a request's CPU at batch 1, docs/scaling.md), and so does ``GET /healthz``, so a liveness
    probe waits behind as little as possible. The same functions serve the FastAPI routes, which stay
    for the OpenAPI schema; the answers are the same (tests/serve/test_server.py)."""

    def __init__(self, app, router: APIRouter) -> None:
        self.app = app
        routes = {route.path: route for route in router.routes}
        self.predict, self.infer = router.lean[PREDICT], router.lean[INFER]
        self.predict_route, self.infer_route = routes[PREDICT], routes[INFER]
        self.gets = {path: (routes[path], endpoint) for path, endpoint in router.lean_get.items()}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in self.gets:
            scope["route"], endpoint = self.gets[scope["path"]]
            return await self._serve(endpoint(), scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == PREDICT:
                scope["route"] = self.predict_route
                return await self._serve(self.predict(Request(scope, receive, send)), scope, receive, send)
            if path.startswith("/v2/models/") and path.endswith("/infer"):
                name = path[len("/v2/models/"):-len("/infer")]
                if name and "/" not in name:
                    scope["route"] = self.infer_route
                    return await self._serve(self.infer(name, Request(scope, receive, send)), scope, receive, send)
        return await self.app(scope, receive, send)

    @staticmethod
    async def _serve(answer, scope, receive, send) -> None:
        try:
            response = await answer
        except Exception as exc:  # a bug answers 500 JSON, as the app's own handler does; the worker lives on
            from starlette.requests import ClientDisconnect

            if isinstance(exc, ClientDisconnect):
                raise
            log.exception("unhandled error on %s", scope["path"])
            response = _json(500, {"error": f"internal error: {type(exc).__name__}"})
        await response(scope, receive, send)
