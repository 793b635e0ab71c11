"""Canary rollout logic: step the candidate's traffic share, judge each step, promote or roll back.

The Prefect flow (flows/canary.py, ``distill canary``) only strings these functions together:

    start = begin(reg, params)                    # candidate -> canary (or straight to production if none)
    for weight in params.canary.steps:
        since = set_step(reg, start.version, weight, ...)
        count = wait_for_traffic(log, version, since, cfg)
        numbers = measure_step(log, version, since, server_metrics_before, ...)
        verdict = judge(numbers, cfg)             # pass | fail | hold
    finish(reg, version, verdicts)                # promote / roll back / hold, with the numbers in history

A step is judged on rows of the canary version logged since the step began (latency p95/p99,
canary-vs-stable agreement from ``stable_label``), on the server's canary error counter (Prometheus),
and on a sample of canary texts compared with the teacher through the label cache.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import DistillError

ACTOR = "canary-flow"
log = logging.getLogger("distill.canary")


class CanaryError(DistillError):
    """The rollout cannot start (no candidate, candidate unloadable, ...)."""


class NoCandidate(CanaryError):
    """The registry has no candidate: nothing to roll out (the flow ends quietly)."""


@dataclass
class Start:
    version: str
    production: str | None
    direct: bool  # True: no production existed, the candidate was promoted straight after a smoke check
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    weight: float
    decision: str  # pass | fail | hold
    numbers: dict[str, Any]
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_check(reg, version: str, threads: int = 1) -> dict[str, Any]:
    """Load the version's bundle (digest verified) and predict one text; raise CanaryError if it cannot."""
    from pipeline.bundle import load_bundle

    try:
        bundle = load_bundle(reg.artifact_path(version), threads=threads)
        t0 = time.perf_counter()
        probs = bundle.predict_proba(["smoke check of a new model"], "int8")
        ms = (time.perf_counter() - t0) * 1000
    except Exception as exc:
        raise CanaryError(f"{version} failed the smoke check: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(probs).all() or abs(float(probs.sum()) - 1.0) > 1e-3:
        raise CanaryError(f"{version} failed the smoke check: its probabilities are not a distribution")
    return {"smoke": "ok", "smoke_ms": round(ms, 3), "labels": len(bundle.labels)}


def begin(reg) -> Start:
    """Take the candidate: make it canary at weight 0, or promote it directly when there is no production."""
    cand = reg.get_alias("candidate").version
    if cand is None:
        raise NoCandidate("no candidate to roll out: the retrain flow registers a version that passed the gate "
                          "as candidate (or: distill registry promote VERSION --to candidate)")
    prod = reg.get_alias("production").version
    if prod is None:
        try:
            numbers = smoke_check(reg, cand.id)
        except CanaryError as exc:
            reg.clear_alias("candidate", actor=ACTOR, reason=f"first model refused: {exc}", numbers={"smoke": "failed"})
            raise
        reg.promote(cand.id, "production", actor=ACTOR, numbers=numbers,
                    reason="first production model: no stable model to compare with, promoted after a smoke check")
        reg.clear_alias("candidate", actor=ACTOR, reason=f"{cand.id} promoted to production")
        return Start(cand.id, None, True, numbers)
    if prod.id == cand.id:
        raise CanaryError(f"candidate {cand.id} is already production")
    numbers = smoke_check(reg, cand.id)
    reg.promote(cand.id, "canary", actor=ACTOR, weight=0.0, numbers={**numbers, "stable": prod.id},
                reason=f"canary rollout of {cand.id} against production {prod.id} starts")
    return Start(cand.id, prod.id, False, numbers)


def set_step(reg, version: str, weight: float, numbers: dict[str, Any] | None = None) -> float:
    """Give the canary ``weight`` of the traffic; returns the step's start time (epoch seconds)."""
    reg.set_alias("canary", version, actor=ACTOR, weight=weight, numbers=numbers or {},
                  reason=f"canary step: {weight:.0%} of traffic")
    return time.time()


def canary_rows(engine, tbl, version: str, since: float):
    """Prediction-log rows of the canary route of ``version`` since ``since`` (a DataFrame)."""
    import pandas as pd
    import sqlalchemy as sa

    q = sa.select(tbl).where(tbl.c.model_version == version, tbl.c.route == "canary", tbl.c.ts >= since)
    with engine.connect() as conn:
        return pd.read_sql(q, conn)


def count_canary_rows(engine, tbl, version: str, since: float) -> int:
    import sqlalchemy as sa

    q = sa.select(sa.func.count()).where(tbl.c.model_version == version, tbl.c.route == "canary", tbl.c.ts >= since)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar() or 0)


def wait_for_traffic(engine, tbl, version: str, since: float, min_requests: int, timeout_s: float,
                     poll_s: float) -> int:
    """Wait until the step has ``min_requests`` canary rows (or the timeout); returns the count seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        n = count_canary_rows(engine, tbl, version, since)
        if n >= min_requests or time.monotonic() >= deadline:
            return n
        time.sleep(poll_s)


def scrape_canary_counters(server_url: str, timeout: float = 5.0) -> dict[str, float] | None:
    """The server's canary request and error counters from ``GET /metrics``; None when unreachable."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(server_url.rstrip("/") + "/metrics", timeout=timeout).text
    except httpx.HTTPError as exc:
        log.warning("cannot read server metrics at %s: %s", server_url, exc)
        return None
    out = {"requests": 0.0, "errors": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route") != "canary":
                continue
            if sample.name == "distill_route_requests_total":
                out["requests"] += sample.value
            elif sample.name == "distill_route_errors_total":
                out["errors"] += sample.value
    return out


def teacher_agreement(texts: list[str], labels: list[str], params, sample: int, seed: int = 0) -> dict[str, Any]:
    """Agreement of canary labels with the teacher on a sample, through the label cache (cached calls are free)."""
    from pipeline.keys import text_key
    from pipeline.label.cache import LabelCache
    from pipeline.label.calls import label_missing
    from pipeline.teachers import load_teacher

    pairs = list(dict(zip(texts, labels)).items())  # one per distinct text
    if not pairs or sample <= 0:
        return {"teacher_sample": 0, "teacher_agreement": None}
    rng = np.random.default_rng(seed)
    picked = [pairs[i] for i in rng.choice(len(pairs), size=min(sample, len(pairs)), replace=False)]
    teacher = load_teacher(params.teacher, params.canary.teacher_dir)
    keys = [text_key(t) for t, _ in picked]
    with LabelCache(params.label.cache_dir) as cache:
        have = cache.get_many(teacher.fingerprint, keys)
        missing = [(k, t) for k, (t, _) in zip(keys, picked) if k not in have]
        stats = label_missing(teacher, missing, cache, params.label.batch_size, params.label.retries)
        have.update(cache.get_many(teacher.fingerprint, [k for k, _ in missing]))
    judged = [(teacher.labels[int(np.argmax(have[k]))], lab) for k, (_, lab) in zip(keys, picked) if k in have]
    agree = sum(a == b for a, b in judged)
    return {"teacher_sample": len(judged), "teacher_calls": stats.texts_sent, "teacher_cached": len(picked) - len(missing),
            "teacher_agreement": round(agree / len(judged), 4) if judged else None}


def measure_step(engine, tbl, version: str, since: float, counters_before: dict | None,
                 counters_after: dict | None, params) -> dict[str, Any]:
    """The numbers a step is judged on (JSON-ready, kept in the registry history)."""
    rows = canary_rows(engine, tbl, version, since)
    numbers: dict[str, Any] = {"canary_rows": int(len(rows))}
    if len(rows):
        lat = rows["latency_ms"].to_numpy()
        numbers["p50_ms"] = round(float(np.percentile(lat, 50)), 3)
        numbers["p95_ms"] = round(float(np.percentile(lat, 95)), 3)
        numbers["p99_ms"] = round(float(np.percentile(lat, 99)), 3)
        compared = rows["stable_label"].notna()
        numbers["stable_agreement"] = (round(float((rows.loc[compared, "label"] == rows.loc[compared, "stable_label"]).mean()), 4)
                                       if compared.any() else None)
        with_text = rows["text"].notna()
        if params.canary.teacher_sample > 0 and with_text.any():
            numbers.update(teacher_agreement(rows.loc[with_text, "text"].tolist(), rows.loc[with_text, "label"].tolist(),
                                             params, params.canary.teacher_sample))
        elif params.canary.teacher_sample > 0:
            numbers["teacher_agreement"] = None
            numbers["teacher_note"] = "the prediction log holds no texts (serve.log_text: false)"
    if counters_before is not None and counters_after is not None:
        req = counters_after["requests"] - counters_before["requests"]
        err = counters_after["errors"] - counters_before["errors"]
        numbers["canary_requests"] = int(req)
        numbers["canary_errors"] = int(err)
        numbers["error_rate"] = round(err / req, 5) if req > 0 else 0.0
    else:
        numbers["error_rate"] = None
    return numbers


def judge(weight: float, numbers: dict[str, Any], cfg) -> Verdict:
    """pass when every threshold holds; fail on any breach; hold when there was too little traffic."""
    problems = []
    if numbers.get("canary_rows", 0) < cfg.min_requests:
        problems.append(f"only {numbers.get('canary_rows', 0)} canary predictions, {cfg.min_requests} needed "
                        f"(canary.min_requests) within canary.step_timeout_s")
        return Verdict(weight, "hold", numbers, problems)
    checks = [
        ("error_rate", cfg.max_error_rate, "max", "canary.max_error_rate"),
        ("p95_ms", cfg.max_p95_ms, "max", "canary.max_p95_ms"),
        ("p99_ms", cfg.max_p99_ms, "max", "canary.max_p99_ms"),
        ("stable_agreement", cfg.min_stable_agreement, "min", "canary.min_stable_agreement"),
    ]
    if cfg.teacher_sample > 0:
        checks.append(("teacher_agreement", cfg.min_teacher_agreement, "min", "canary.min_teacher_agreement"))
    for key, limit, kind, name in checks:
        value = numbers.get(key)
        if value is None:
            problems.append(f"{key}: not measured (needed for {name})")
        elif kind == "max" and value > limit:
            problems.append(f"{key} {value} above {name} = {limit}")
        elif kind == "min" and value < limit:
            problems.append(f"{key} {value} below {name} = {limit}")
    return Verdict(weight, "fail" if problems else "pass", numbers, problems)


def finish(reg, version: str, verdicts: list[Verdict]) -> str:
    """Record the outcome in the registry: promote, roll back or hold. Returns the decision."""
    last = verdicts[-1]
    summary = {"steps": [{"weight": v.weight, "decision": v.decision, **v.numbers} for v in verdicts]}
    numbers = {**last.numbers, "weight": last.weight, **summary}
    if last.decision == "pass":
        reg.promote(version, "production", actor=ACTOR, numbers=numbers,
                    reason=f"canary {version} healthy at every step up to {last.weight:.0%}: promoted")
        reg.clear_alias("canary", actor=ACTOR, reason=f"rollout of {version} done")
        reg.clear_alias("candidate", actor=ACTOR, reason=f"{version} promoted to production")
        return "promote"
    if last.decision == "fail":
        reg.clear_alias("canary", actor=ACTOR, numbers={**numbers, "problems": last.problems},
                        reason=f"rollback of canary {version} at {last.weight:.0%}: " + "; ".join(last.problems))
        reg.clear_alias("candidate", actor=ACTOR, reason=f"{version} rolled back in canary")
        return "rollback"
    reg.set_alias("canary", version, actor=ACTOR, weight=last.weight, numbers={**numbers, "problems": last.problems},
                  reason=f"hold canary {version} at {last.weight:.0%}: " + "; ".join(last.problems))
    return "hold"
