"""HTTP endpoints: ``POST /v1/predict``, ``GET /healthz``, ``GET /readyz``, ``GET /v1/models``, ``GET /metrics``.

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

import logging
import time
import uuid

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.serve.limits import VISIBLE_PATTERN, RequestRejected, check_content_type, parse_predict, read_body
from pipeline.serve.logwriter import LogRecord
from pipeline.serve.metrics import PREDICT
from pipeline.serve.traffic import CANARY, STABLE, choose_route, request_key

STUDENT, TEACHER = "student", "teacher"  # who answered a text (``source`` of each prediction)

log = logging.getLogger("distill.serve")
JSON = "application/json"


def _json(status: int, body) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def build_router(server) -> APIRouter:
    """Endpoints over ``server`` (a :class:`pipeline.serve.app.ServerParts`)."""
    router = APIRouter()
    cfg = server.cfg
    metrics = server.metrics
    slots = server.slots
    writer = server.writer

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

    @router.post(PREDICT, summary="Classify texts", openapi_extra=predict_doc)
    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        try:
            check_content_type(request.headers.get("content-type"))
            if server.pool.pending >= cfg.max_pending:
                raise RequestRejected(429, f"the server is saturated: {server.pool.pending} requests wait for "
                                           f"inference (serve.max_pending = {cfg.max_pending}); retry shortly",
                                      "serve.max_pending", cfg.max_pending)
            body = await read_body(request, cfg.max_body_bytes)
            texts, key = parse_predict(body, cfg.max_batch, cfg.max_text_chars)
        except RequestRejected as exc:
            metrics.rejected.labels(reason=exc.limit or "bad_request").inc()
            metrics.request_done(PREDICT, exc.status)
            response = _json(exc.status, exc.body())
            if exc.status == 429:
                response.headers["Retry-After"] = "1"
            return response
        with server.pool.waiting():
            return await _predict(texts, key, start)

    async def _predict(texts: list[str], key: str | None, start: float) -> Response:
        chars = sum(map(len, texts))
        run = server.pool.run if chars > cfg.inline_max_chars else server.pool.inline
        state = slots.state
        if state.stable is None:
            metrics.request_done(PREDICT, 503)
            return _json(503, {"error": "no model loaded yet: the registry has no production version "
                                        "(or it failed to load, see GET /v1/models)"})
        route = STABLE
        if state.canary is not None:
            route = choose_route(request_key(key, texts), state.weight)
        model = state.canary if route == CANARY else state.stable
        stable_labels = None

        def infer(bundle):
            """(probs, in-domain scores or None): scores only when the server abstains by them."""
            if cfg.ood_abstain and bundle.ood_threshold is not None:
                return bundle.predict_scored(texts, "int8")
            return bundle.predict_proba(texts, "int8"), None

        try:
            probs, in_domain = await run(infer, model.bundle)
        except Exception as exc:  # a model that breaks on some input: answer with stable, count it
            metrics.route_errors[route].inc()
            log.error("%s model %s failed on a request: %s", route, model.version, exc)
            if route == STABLE:
                metrics.request_done(PREDICT, 500)
                return _json(500, {"error": f"model {model.version} failed: {type(exc).__name__}"})
            route, model = STABLE, state.stable
            try:
                probs, in_domain = await run(infer, model.bundle)
            except Exception as exc2:
                metrics.route_errors[STABLE].inc()
                metrics.request_done(PREDICT, 500)
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
                stable_probs = await run(state.stable.bundle.predict_proba, texts, "int8")
                s_names = state.stable.bundle.labels
                stable_labels = [s_names[i] for i in stable_probs.argmax(axis=1)]
                agreed = sum(a == b for a, b in zip(student_labels, stable_labels))  # student against student
                metrics.record_agreement(len(texts), agreed)
            except Exception as exc:
                metrics.route_errors[STABLE].inc()
                log.error("stable model %s failed scoring canary traffic: %s", state.stable.version, exc)
        predictions = [{"label": labels[i], "probs": dict(zip(names, row)), "version": model.version, "route": route,
                        "source": sources[i]} for i, row in enumerate(probs.tolist())]
        for i, why in fallback.items():  # deferred, but the teacher could not answer: the student's answer, marked
            predictions[i]["fallback"] = why
        for i in abstained.tolist():  # the log keeps the student's own label; the client gets the abstention
            predictions[i]["label"] = cfg.ood_abstain_label
            predictions[i]["abstained"] = "out_of_domain"
        if abstained.size:
            metrics.abstained.inc(int(abstained.size))
        payload = orjson.dumps({"predictions": predictions})
        elapsed = time.perf_counter() - start
        metrics.route_requests[route].inc()
        metrics.predictions(model.version, route).inc(len(texts))
        metrics.latency_children[route].observe(elapsed)
        metrics.request_done(PREDICT, 200)
        record = LogRecord(request_id=uuid.uuid4().hex, ts=time.time(), texts=texts, version=model.version,
                           route=route, labels=labels, probs=probs, stable_labels=stable_labels,
                           latency_ms=elapsed * 1000.0, sources=sources, student_labels=student_labels)
        if cfg.log_durable:  # answered only once the rows are committed
            if not await writer.submit_durable(record):
                metrics.request_done(PREDICT, 503)
                return _json(503, {"error": "the prediction log could not store this prediction "
                                            "(serve.log_durable is on); retry"})
        else:
            writer.submit(record)
        return Response(payload, media_type=JSON)

    @router.get("/healthz")
    async def healthz() -> Response:
        return _json(200, {"status": "ok"})

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

    @router.get("/metrics", responses={200: {"description": "Prometheus text format",
                                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    return router
