"""Canary rollout: step the candidate's traffic share, judge each step, promote, hold or roll back.

    result = rollout(params)                      # what flows/canary.py and `distill canary` run
    print(result.decision)                        # none | promote | rollback | hold

:func:`rollout` takes the registry's candidate (the first release, with no production to compare
with, is promoted after a smoke check), then for each weight of ``canary.steps``:

1. sets the canary alias to that weight and waits until the server reports it serves that weight, so
   a step never counts traffic routed at the previous one;
2. waits for ``canary.min_requests`` canary attempts: answered canary predictions in the prediction
   log plus canary requests whose model failed (the server answers those with the stable model and
   counts them in ``distill_route_errors_total{route="canary"}``); it stops early when the errors
   alone already prove the error rate too high;
3. judges the step (:func:`judge_step`): errors first, then traffic, latency, canary-vs-stable agreement
   and, on a sample, agreement with the teacher through the label cache. When the candidate's label set
   differs from production's, canary and stable are compared only on the texts where both answered with
   a label the other model also has, and the step's numbers name the labels added and removed.

The first failing step rolls back (canary alias cleared, production untouched); a step starved of
traffic holds; all steps passing promotes. Every decision lands in the registry history with its
numbers (actor ``canary-flow``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import DistillError

ACTOR = "canary-flow"
SMOKE_TEXT = "smoke check of a new model"  # what smoke_check predicts before a version takes traffic
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
class StepVerdict:
    weight: float
    decision: str  # pass | fail | hold
    numbers: dict[str, Any]
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rollout:
    """What a rollout decided, with every step's numbers."""

    decision: str  # none | promote | rollback | hold
    version: str | None = None
    production: str | None = None
    direct: bool = False
    steps: list[StepVerdict] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Counters:
    """The server's canary counters at one moment (Prometheus ``/metrics``)."""

    requests: float  # canary-routed requests the canary model answered
    errors: float  # canary-routed requests whose canary model failed
    weight: float | None  # the canary share the server serves now


def smoke_check(reg, version: str, threads: int = 1) -> dict[str, Any]:
    """Load the version's bundle (digest verified) and predict one text; raise CanaryError if it cannot."""
    from pipeline.bundle import load_bundle

    try:
        bundle = load_bundle(reg.artifact_path(version), threads=threads)
        t0 = time.perf_counter()
        probs = bundle.predict_proba([SMOKE_TEXT], "int8")
        ms = (time.perf_counter() - t0) * 1000
    except Exception as exc:
        raise CanaryError(f"{version} failed the smoke check: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(probs).all() or abs(float(probs.sum()) - 1.0) > 1e-3:
        raise CanaryError(f"{version} failed the smoke check: its probabilities are not a distribution")
    return {"smoke": "ok", "smoke_ms": round(ms, 3), "labels": len(bundle.labels)}


def bundle_labels(reg, version: str) -> list[str]:
    """The labels of a registered version, from its bundle's manifest."""
    from pipeline.bundle import MANIFEST
    from pipeline.io import read_json

    return list(read_json(reg.artifact_path(version) / MANIFEST)["labels"])


def label_change(stable: list[str], candidate: list[str]) -> dict[str, list[str]]:
    """``labels_added`` / ``labels_removed`` from stable to candidate; empty when the sets are equal."""
    added, removed = sorted(set(candidate) - set(stable)), sorted(set(stable) - set(candidate))
    return {"labels_added": added, "labels_removed": removed} if added or removed else {}


def describe_change(numbers: dict[str, Any]) -> str | None:
    """"added [...], removed [...]" when ``numbers`` carry a :func:`label_change`, else None."""
    if not (numbers.get("labels_added") or numbers.get("labels_removed")):
        return None
    return f"added {numbers.get('labels_added') or []}, removed {numbers.get('labels_removed') or []}"


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
    numbers = {**smoke_check(reg, cand.id), **label_change(bundle_labels(reg, prod.id), bundle_labels(reg, cand.id))}
    change = describe_change(numbers)
    if change:
        log.warning("candidate %s changes the label set of production %s: %s; canary and stable are compared on "
                    "the labels both have", cand.id, prod.id, change)
    reg.promote(cand.id, "canary", actor=ACTOR, weight=0.0, numbers={**numbers, "stable": prod.id},
                reason=f"canary rollout of {cand.id} against production {prod.id} starts")
    return Start(cand.id, prod.id, False, numbers)


def set_step(reg, version: str, weight: float, numbers: dict[str, Any] | None = None) -> None:
    """Give the canary ``weight`` of the traffic (the server picks it up on its next registry poll)."""
    reg.set_alias("canary", version, actor=ACTOR, weight=weight, numbers=numbers or {},
                  reason=f"canary step: {weight:.0%} of traffic")


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


def scrape_canary_counters(server_url: str, timeout: float = 5.0) -> Counters | None:
    """The server's canary counters and weight from ``GET /metrics``; None when unreachable."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(server_url.rstrip("/") + "/metrics", timeout=timeout).text
    except httpx.HTTPError as exc:
        log.warning("cannot read server metrics at %s: %s", server_url, exc)
        return None
    requests = errors = 0.0
    weight = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "distill_canary_weight":
                weight = float(sample.value)
            elif sample.labels.get("route") != "canary":
                continue
            elif sample.name == "distill_route_requests_total":
                requests += sample.value
            elif sample.name == "distill_route_errors_total":
                errors += sample.value
    return Counters(requests, errors, weight)


def wait_for_weight(server_url: str, weight: float, timeout_s: float, poll_s: float) -> Counters | None:
    """Wait until the server serves the canary at ``weight``; its counters then (None: server unreachable)."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = scrape_canary_counters(server_url)
        if now is None or (now.weight is not None and abs(now.weight - weight) < 1e-9):
            return now
        if time.monotonic() >= deadline:
            log.warning("the server at %s still serves canary weight %s, not %s, after %.0f s", server_url,
                        now.weight, weight, timeout_s)
            return now
        time.sleep(min(poll_s, 0.25))


def errors_prove_failure(errors: float, attempts: float, cfg) -> bool:
    """True when the errors alone show, at ``canary.error_confidence``, an error rate above the limit."""
    from pipeline.evaluate.metrics import wilson_lower

    return attempts > 0 and wilson_lower(errors / attempts, int(attempts), cfg.error_confidence) > cfg.max_error_rate


def wait_for_traffic(engine, tbl, version: str, since: float, before: Counters | None, cfg) -> int:
    """Wait for ``canary.min_requests`` canary attempts, or for errors that already decide the step, or the
    timeout. Returns the attempts seen (answered canary rows plus failed canary requests)."""
    deadline = time.monotonic() + cfg.step_timeout_s
    while True:
        answered = count_canary_rows(engine, tbl, version, since)
        errors = 0.0
        if before is not None:
            now = scrape_canary_counters(cfg.server_url)
            if now is not None:
                errors = now.errors - before.errors
        attempts = answered + errors
        if attempts >= cfg.min_requests or errors_prove_failure(errors, attempts, cfg) \
                or time.monotonic() >= deadline:
            return int(attempts)
        time.sleep(cfg.poll_s)


def teacher_agreement(texts: list[str], labels: list[str], params, sample: int, seed: int = 0) -> dict[str, Any]:
    """Agreement of canary labels with the teacher on a sample, through the label cache (cached calls are free)."""
    from pipeline.keys import text_key
    from pipeline.label.calls import cached_teacher_probs
    from pipeline.teachers import load_teacher

    pairs = list(dict(zip(texts, labels)).items())  # one per distinct text
    if not pairs or sample <= 0:
        return {"teacher_sample": 0, "teacher_agreement": None}
    rng = np.random.default_rng(seed)
    picked = [pairs[i] for i in rng.choice(len(pairs), size=min(sample, len(pairs)), replace=False)]
    teacher = load_teacher(params.teacher, params.canary.teacher_dir)
    answers = cached_teacher_probs(teacher, [t for t, _ in picked], params.label.cache_dir,
                                   batch_size=params.label.batch_size, retries=params.label.retries)
    judged = [(teacher.labels[int(np.argmax(answers.probs[k]))], lab) for k, lab in
              ((text_key(t), lab) for t, lab in picked) if k in answers.probs]
    agree = sum(a == b for a, b in judged)
    return {"teacher_sample": len(judged), "teacher_calls": answers.sent, "teacher_cached": answers.cached,
            "teacher_agreement": round(agree / len(judged), 4) if judged else None}


def measure_step(engine, tbl, version: str, since: float, before: Counters | None, after: Counters | None,
                 params, change: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The numbers a step is judged on (JSON-ready, kept in the registry history).

    ``change`` is :func:`label_change` from stable to this candidate: a text the candidate puts in a label
    stable lacks, or that stable put in a label the candidate dropped, cannot agree, so those texts are
    left out of ``stable_agreement`` and counted in ``stable_new_label_rows``."""
    rows = canary_rows(engine, tbl, version, since)
    numbers: dict[str, Any] = {"canary_rows": int(len(rows)), **(change or {})}
    if len(rows):
        lat = rows["latency_ms"].to_numpy()
        numbers["p50_ms"] = round(float(np.percentile(lat, 50)), 3)
        numbers["p95_ms"] = round(float(np.percentile(lat, 95)), 3)
        numbers["p99_ms"] = round(float(np.percentile(lat, 99)), 3)
        compared = rows["stable_label"].notna()
        # student against student: where the cascade let the teacher answer, compare the canary's own answer
        own = rows["student_label"].fillna(rows["label"]) if "student_label" in rows else rows["label"]
        if change:
            moved = compared & (own.isin(change["labels_added"]) | rows["stable_label"].isin(change["labels_removed"]))
            numbers["stable_new_label_rows"] = int(moved.sum())
            compared &= ~moved
        numbers["stable_agreement"] = (round(float((own[compared] == rows.loc[compared, "stable_label"]).mean()), 4)
                                       if compared.any() else None)
        with_text = rows["text"].notna()
        if params.canary.teacher_sample > 0 and with_text.any():
            numbers.update(teacher_agreement(rows.loc[with_text, "text"].tolist(), rows.loc[with_text, "label"].tolist(),
                                             params, params.canary.teacher_sample))
        elif params.canary.teacher_sample > 0:
            numbers["teacher_agreement"] = None
            numbers["teacher_note"] = "the prediction log holds no texts (serve.log_text: false)"
    if before is not None and after is not None:
        answered = after.requests - before.requests
        errors = after.errors - before.errors
        attempts = answered + errors
        numbers["canary_requests"] = int(answered)
        numbers["canary_errors"] = int(errors)
        # errors / attempts: a failed canary request was answered by stable, so it is not in `answered`
        numbers["error_rate"] = round(errors / attempts, 5) if attempts > 0 else None
    else:
        numbers["error_rate"] = None
    return numbers


def judge_step(weight: float, numbers: dict[str, Any], cfg) -> StepVerdict:
    """fail when the errors prove the canary broken, however little traffic it saw; else hold on too little
    traffic; else pass when every threshold holds and fail on any breach."""
    errors = numbers.get("canary_errors") or 0
    attempts = errors + (numbers.get("canary_requests") or 0)
    if errors and errors_prove_failure(errors, attempts, cfg):
        return StepVerdict(weight, "fail", numbers, [
            f"error_rate {numbers.get('error_rate')} above canary.max_error_rate = {cfg.max_error_rate}: "
            f"{errors} of {attempts} canary requests failed (certain at confidence {cfg.error_confidence})"])
    seen = numbers.get("canary_rows", 0) + errors
    if seen < cfg.min_requests:
        return StepVerdict(weight, "hold", numbers, [
            f"only {seen} canary attempts, {cfg.min_requests} needed (canary.min_requests) within "
            f"canary.step_timeout_s"])
    problems = []
    change = describe_change(numbers)
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
            problem = f"{key}: not measured (needed for {name})"
        elif kind == "max" and value > limit:
            problem = f"{key} {value} above {name} = {limit}"
        elif kind == "min" and value < limit:
            problem = f"{key} {value} below {name} = {limit}"
        else:
            continue
        if key == "stable_agreement" and change:
            problem += (f" (the candidate's label set differs: {change}; compared on the texts both models "
                        f"answered with shared labels, {numbers.get('stable_new_label_rows', 0)} left out)")
        problems.append(problem)
    return StepVerdict(weight, "fail" if problems else "pass", numbers, problems)


def finish(reg, version: str, verdicts: list[StepVerdict]) -> str:
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


def run_step(params, version: str, weight: float, change: dict[str, list[str]] | None = None) -> StepVerdict:
    """One step: set the weight, wait until it is served, wait for traffic, measure and judge."""
    from pipeline import predlog
    from pipeline.registry import open_registry

    cfg = params.canary
    with open_registry(params.registry) as reg:
        set_step(reg, version, weight)
    before = wait_for_weight(cfg.server_url, weight, cfg.weight_timeout_s, cfg.poll_s)
    since = time.time()
    engine, tbl = predlog.connect(params.serve.prediction_log_url)
    try:
        seen = wait_for_traffic(engine, tbl, version, since, before, cfg)
        after = scrape_canary_counters(cfg.server_url) if before is not None else None
        numbers = measure_step(engine, tbl, version, since, before, after, params, change)
    finally:
        engine.dispose()
    verdict = judge_step(weight, numbers, cfg)
    log.info("step %.0f%%: %s after %d canary attempts %s %s", weight * 100, verdict.decision, seen, numbers,
             verdict.problems)
    return verdict


def rollout(params, on_step: Callable[[StepVerdict], None] | None = None) -> Rollout:
    """Walk the registry's candidate through ``canary.steps``; stop at the first step that does not pass."""
    from pipeline.registry import open_registry

    with open_registry(params.registry) as reg:
        try:
            start = begin(reg)
        except NoCandidate as exc:
            log.info("%s", exc)
            return Rollout("none", note=str(exc))
    if start.direct:
        return Rollout("promote", start.version, None, True,
                       note="first production model: promoted after a smoke check " + str(start.numbers))
    verdicts: list[StepVerdict] = []
    change = {k: start.numbers[k] for k in ("labels_added", "labels_removed") if k in start.numbers}
    for weight in params.canary.steps:
        verdict = run_step(params, start.version, weight, change)
        verdicts.append(verdict)
        if on_step is not None:
            on_step(verdict)
        if verdict.decision != "pass":
            break
    with open_registry(params.registry) as reg:
        decision = finish(reg, start.version, verdicts)
    return Rollout(decision, start.version, start.production, False, verdicts)


def rollout_markdown(result: Rollout) -> str:
    """The decision artifact: headline first, then one row per step."""
    if result.decision == "none":
        return f"# Canary: nothing to roll out\n\n{result.note}"
    if result.direct:
        return f"# Canary {result.version}: **promote** (first release)\n\n{result.note}"
    lines = [f"# Canary {result.version} vs {result.production}: **{result.decision}**", "",
             "| weight | decision | rows | errors | error rate | p95 ms | p99 ms | stable agr. | teacher agr. | problems |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    change = describe_change(result.steps[0].numbers) if result.steps else None
    if change:
        lines[2:2] = [f"The candidate changes the label set: {change}. Stable agreement counts the texts both models "
                      "answered with labels they share.", ""]
    for v in result.steps:
        n = v.numbers
        lines.append(f"| {v.weight} | {v.decision} | {n.get('canary_rows')} | {n.get('canary_errors')} "
                     f"| {n.get('error_rate')} | {n.get('p95_ms')} | {n.get('p99_ms')} | {n.get('stable_agreement')} "
                     f"| {n.get('teacher_agreement')} | {'; '.join(v.problems)} |")
    return "\n".join(lines)
