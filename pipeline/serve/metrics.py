"""Prometheus metrics of the model server: the conventional ``http_requests_total{method,handler,code}``
and ``http_request_duration_seconds{method,handler}`` of every request (:class:`HTTPMetrics`, an ASGI
middleware; ``handler`` is the route template, ``unmatched`` for unknown paths), and ``distill_*`` for
what only this server knows (routes, models, canary, prediction log, cascade).

Each app gets its own ``CollectorRegistry`` (two servers in one process, as in tests, do not clash).
Label children used on the request path are resolved once here, so a request pays a few increments
and one histogram observation, not label lookups.

Under ``serve.workers`` > 1 (``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor, pipeline/serve/workers.py)
every worker writes its values to memory-mapped files there and ``/metrics`` from any worker renders
all of them: counters and histograms summed, gauges by their ``multiprocess_mode`` (the live workers'
sum, maximum or latest value), and the canary agreement ratio computed from all workers' counts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect

ROUTES = ("stable", "canary")
PREDICT = "/v1/predict"
UNMATCHED = "unmatched"  # handler label of a path no route matched (a 404), so scanners cannot grow the series
# Request latency buckets (seconds): the hot path answers in about a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class ServerMetrics:
    registry: Any
    multiprocess: bool = False  # serve.workers > 1: values live in PROMETHEUS_MULTIPROC_DIR
    requests: Any = None
    latency: Any = None
    route_requests: dict[str, Any] = field(default_factory=dict)
    route_errors: dict[str, Any] = field(default_factory=dict)
    _predictions: Any = None
    # Canary-vs-stable agreement of the current canary (reset when the canary changes).
    _compared: int = 0
    _agreed: int = 0
    _pred_children: dict[tuple[str, str], Any] = field(default_factory=dict)
    _status_children: dict[tuple[str, str, int], Any] = field(default_factory=dict)
    _latency_children: dict[tuple[str, str], Any] = field(default_factory=dict)

    def predictions(self, version: str, route: str):
        """Counter child of texts predicted by ``version`` on ``route`` (cached)."""
        child = self._pred_children.get((version, route))
        if child is None:
            child = self._pred_children[(version, route)] = self._predictions.labels(version=version, route=route)
        return child

    def record_agreement(self, compared: int, agreed: int) -> None:
        self.canary_compared.inc(compared)
        self.canary_agreed.inc(agreed)
        self._compared += compared
        self._agreed += agreed
        if self.multiprocess:  # the ratio is computed over all workers at render time
            self._window_compared.set(self._compared)
            self._window_agreed.set(self._agreed)
        else:
            self.canary_agreement.set(self._agreed / self._compared)

    def reset_agreement(self) -> None:
        self._compared = self._agreed = 0
        if self.multiprocess:
            self._window_compared.set(0)
            self._window_agreed.set(0)
        else:
            self.canary_agreement.set(0)

    def request_done(self, method: str, handler: str, code: int, seconds: float) -> None:
        child = self._status_children.get((method, handler, code))
        if child is None:
            child = self._status_children[(method, handler, code)] = self.requests.labels(
                method=method, handler=handler, code=str(code))
        child.inc()
        timer = self._latency_children.get((method, handler))
        if timer is None:
            timer = self._latency_children[(method, handler)] = self.latency.labels(method=method, handler=handler)
        timer.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        return generate_latest(_AllWorkers()), CONTENT_TYPE_LATEST


class _AllWorkers:
    """Every worker's metrics from the multiprocess folder, with the canary agreement ratio of them all."""

    def collect(self):
        from prometheus_client import CollectorRegistry
        from prometheus_client.core import GaugeMetricFamily
        from prometheus_client.multiprocess import MultiProcessCollector

        window: dict[str, float] = {}
        for family in MultiProcessCollector(CollectorRegistry()).collect():
            if family.name in WINDOW:
                window[family.name] = sum(s.value for s in family.samples)
                continue
            yield family
        compared = window.get(WINDOW[0], 0.0)
        ratio = window.get(WINDOW[1], 0.0) / compared if compared else 0.0
        yield GaugeMetricFamily("distill_canary_agreement_ratio", AGREEMENT_HELP, value=ratio)


# Per-worker canary counts since the current canary was loaded (multiprocess mode only, not exported).
WINDOW = ("distill_canary_window_compared", "distill_canary_window_agreed")
AGREEMENT_HELP = "Canary-vs-stable label agreement since the current canary was loaded"


def build_metrics(queue_depth) -> ServerMetrics:
    """Create every metric on a fresh registry; ``queue_depth`` is a callable read at scrape time."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

    from pipeline.serve.app import package_version

    disable_created_metrics()  # one series per counter: no doubled *_created timestamps
    reg = CollectorRegistry(auto_describe=True)
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    build = Gauge("distill_build_info", "Always 1: the distill version this server runs", ["version"], registry=reg,
                  multiprocess_mode="livemax")
    build.labels(version=package_version()).set(1)
    m = ServerMetrics(registry=reg, multiprocess=multiprocess)
    m.requests = Counter("http_requests_total", "HTTP requests by method, handler (route template) and status "
                         "code", ["method", "handler", "code"], registry=reg)
    m.latency = Histogram("http_request_duration_seconds", "Server-side time from request to response, by method "
                          "and handler", ["method", "handler"], buckets=LATENCY_BUCKETS, registry=reg)
    rr = Counter("distill_route_requests_total", "Predict requests answered per route", ["route"], registry=reg)
    re_ = Counter("distill_route_errors_total", "Predict requests whose model failed, per route "
                  "(a failing canary is answered by the stable model)", ["route"], registry=reg)
    m.route_requests = {r: rr.labels(route=r) for r in ROUTES}
    m.route_errors = {r: re_.labels(route=r) for r in ROUTES}
    m._predictions = Counter("distill_predictions_total", "Texts predicted, per model version and route",
                             ["version", "route"], registry=reg)
    m.inference_runs = Counter("distill_inference_runs_total", "Model inference calls; concurrent requests share "
                               "one (serve.micro_batch_texts), so predictions / runs is the mean batch", registry=reg)
    m.rejected = Counter("distill_rejected_requests_total", "Requests refused with a 4xx, by reason (the limit)",
                         ["reason"], registry=reg)
    m.canary_weight = Gauge("distill_canary_weight", "Traffic share routed to the canary (0 when none)", registry=reg,
                            multiprocess_mode="livemostrecent")
    m.canary_compared = Counter("distill_canary_compared_total", "Canary-routed texts also scored by the stable model",
                                registry=reg)
    m.canary_agreed = Counter("distill_canary_agreed_total", "Canary-routed texts where canary and stable agree",
                              registry=reg)
    if multiprocess:
        m._window_compared, m._window_agreed = (Gauge(name, name, registry=reg, multiprocess_mode="livesum")
                                                for name in WINDOW)
    else:
        m.canary_agreement = Gauge("distill_canary_agreement_ratio", AGREEMENT_HELP, registry=reg)
    m.model_loads = Counter("distill_model_loads_total", "Model loads that passed the smoke prediction, by alias",
                            ["alias"], registry=reg)
    m.model_load_failures = Counter("distill_model_load_failures_total", "Models that failed to load or failed "
                                    "the smoke prediction (the working model kept serving), by alias", ["alias"],
                                    registry=reg)
    m.model_info = Gauge("distill_model_info", "1 for the version each alias (production, canary) is served by",
                         ["alias", "version"], registry=reg, multiprocess_mode="livemax")
    m.registry_poll_errors = Counter("distill_registry_poll_errors_total", "Registry polls that failed", registry=reg)
    m.predlog_dropped = Counter("distill_predlog_dropped_total", "Prediction-log rows dropped because the queue "
                                "was full (or the write failed)", registry=reg)
    m.predlog_written = Counter("distill_predlog_written_total", "Prediction-log rows written", registry=reg)
    m.predlog_lost = Counter("distill_predlog_lost_total", "Acknowledged prediction-log rows an earlier run of this "
                             "server never wrote (a crash or kill -9), found at start", registry=reg)
    m.abstained = Counter("distill_ood_abstained_total", "Texts answered as out-of-domain (serve.ood_abstain): "
                          "their in-domain score was below the bundle's cut", registry=reg)
    from pipeline.serve.cascade import OUTCOMES

    deferrals = Counter("distill_cascade_deferrals_total", "Texts below the cascade cut, by outcome: teacher "
                        "(answered by the teacher) or why the student's answer went out instead (busy, budget, "
                        "breaker_open, timeout, error)", ["outcome"], registry=reg)
    m.cascade_deferrals = {o: deferrals.labels(outcome=o) for o in OUTCOMES}
    m.cascade_sent = Counter("distill_cascade_teacher_texts_total", "Deferred texts sent to the teacher (cache "
                             "misses; the rest were answered from the label cache)", registry=reg)
    m.cascade_latency = Histogram("distill_cascade_teacher_latency_seconds", "Teacher latency of deferred "
                                  "requests that reached the teacher", buckets=(0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25, 0.5, 1.0, 2.0, 5.0, 10.0), registry=reg)
    m.cascade_breaker = Gauge("distill_cascade_breaker_state", "Cascade circuit breaker: 0 closed, 1 open, "
                              "2 half-open (one trial call)", registry=reg, multiprocess_mode="livemax")
    m.queue_depth = Gauge("distill_predlog_queue_depth", "Requests waiting in the prediction-log queue",
                          registry=reg, multiprocess_mode="livesum")
    if not multiprocess:  # read at scrape time; under workers each writer sets its own (PredictionLogWriter)
        m.queue_depth.set_function(queue_depth)
    return m


CLIENT_CLOSED = 499  # the code proxies log for a client that closed the request before the answer


class HTTPMetrics:
    """Pure ASGI middleware: counts and times every HTTP request into ``http_requests_total`` and
    ``http_request_duration_seconds`` (cheaper on the hot path than a BaseHTTPMiddleware)."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        code = 500  # an exception that escapes the app is answered 500 by Starlette's outer handler

        async def send_status(message):
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except ClientDisconnect:  # the client left before its body arrived (or the read timed out): not ours
            code = CLIENT_CLOSED
            raise
        finally:
            route = scope.get("route")
            handler = getattr(route, "path", None) or UNMATCHED
            self.metrics.request_done(scope["method"], handler, code, time.perf_counter() - start)
