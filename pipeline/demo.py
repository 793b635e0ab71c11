"""``make demo`` / ``distill demo``: the whole loop on the embedded default, then what it made and where.

1. the retrain flow: validate -> teacher -> label -> distill -> export -> evaluate/gate -> register;
2. a model server started on 127.0.0.1 (``canary.server_url``), fed by a replay of held-out texts;
3. the canary flow rolls the candidate out (the very first release has no production to compare
   with: it is promoted after a smoke check, and later releases walk the traffic steps);
4. one monitor run over the prediction log (Evidently snapshot, periodic teacher comparison);
5. a summary: teacher vs student, speed, size and cost (teacher, student and cascade per 1M predictions),
   gate, canary decision, what the cascade sent to the teacher, drift verdict, where to look.

A second run reuses every cache (DVC, the teacher's label cache) and re-runs nothing unchanged.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse


from pipeline import outputs
from pipeline.errors import DistillError
from pipeline.numbers import fmt


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _mb(path: Path) -> float | None:
    if not path.exists():
        return None
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return sum(p.stat().st_size for p in files) / 1e6


def _outputs(root: Path) -> list[tuple[str, str]]:
    from pipeline.outputs import stage_files

    return [(name, path) for name, files in stage_files(root).items() for kind in ("outs", "metrics")
            for path in files[kind]]


def teacher_size_mb(params, root: Path) -> float | None:
    """Size of what serving the teacher would take (its own weight files), in MB; None for remote teachers."""
    from pipeline.teachers import load_teacher
    from pipeline.teachers.base import weight_bytes

    size = weight_bytes(load_teacher(params.teacher, outputs.path("teacher", root)))
    return size / 1e6 if size else None


def summary(root: Path, params, retrain: dict, canary: dict | None, monitor: dict | None, traffic: dict | None,
            seconds: float) -> str:
    ev, export = _read(outputs.path("evaluate_metrics", root)), _read(outputs.path("export_metrics", root))
    label, ingest = _read(outputs.path("label_metrics", root)), _read(outputs.path("ingest_metrics", root))
    lines = [f"distill demo: the whole loop in {seconds:.0f} s", ""]
    lines.append("pipeline: " + ", ".join(f"{r['stage']} ({'ran' if r['ran'] else 'unchanged'})" for r in retrain["stages"]))
    if ingest.get("splits"):
        lines.append(f"data: {ingest.get('rows')} messages; " + ", ".join(f"{k} {v}" for k, v in ingest["splits"].items()))
    teacher_acc, student_acc = ev.get("gold.teacher.accuracy"), ev.get("gold.student_int8.accuracy")
    if teacher_acc is not None and student_acc is not None:
        lines.append(f"accuracy on the gold test split: teacher {teacher_acc:.4f}, student int8 {student_acc:.4f} "
                     f"(fp32 {ev.get('gold.student_fp32.accuracy', float('nan')):.4f}); "
                     f"retention {student_acc / teacher_acc:.1%}")
    if ev.get("agreement.student_int8.agreement") is not None:
        lines.append(f"agreement with the teacher on held-out transfer texts: {ev['agreement.student_int8.agreement']:.4f}")
    student_tps = (export.get("speed_int8") or {}).get("texts_per_s")
    teacher_tps = label.get("texts_per_s")
    if student_tps and teacher_tps:
        lines.append(f"speed: student int8 {student_tps:,.0f} texts/s vs teacher {teacher_tps:,.1f} texts/s "
                     f"(labeling run): {student_tps / teacher_tps:,.0f}x faster")
    student_mb = _mb(outputs.path("bundle", root) / "model.int8.onnx")
    teacher_mb = teacher_size_mb(params, root)
    if student_mb and teacher_mb:
        lines.append(f"size: student int8 {student_mb:.1f} MB vs teacher {teacher_mb:.1f} MB ({teacher_mb / student_mb:.0f}x smaller)")
    from pipeline.cost import cost_lines, pipeline_cost

    cost = pipeline_cost(root, params)
    if cost is not None:
        lines += cost_lines(cost)
    gate = _read(outputs.path("gate", root))
    if gate:
        failing = [f"{c.get('suite')}/{c.get('metric')}" for c in gate.get("checks", []) if not c.get("passed")]
        lines.append(f"gate: {'PASSED' if gate.get('passed') else 'FAILED'} ({len(gate.get('checks', []))} checks"
                     + (f"; failing: {', '.join(failing[:6])}" if failing else "") + f"); registered as {retrain.get('registered')}")
    if canary is not None:
        how = "first release, promoted after a smoke check" if canary.get("direct") else \
              " -> ".join(f"{s['weight']:.0%} {s['decision']}" for s in canary.get("steps", [])) or "no steps"
        lines.append(f"canary: {canary['decision']} {canary.get('version') or ''} ({how})")
    if traffic is not None:
        lines.append(f"traffic replayed: {traffic['requests']} requests, statuses {traffic['statuses']}, "
                     f"transport errors {traffic['transport_errors']}")
        sources = traffic.get("sources") or {}
        if sources.get("teacher") or traffic.get("fallbacks"):
            answered = sum(sources.values())
            lines.append(f"cascade: the teacher answered {sources.get('teacher', 0)} of {answered} texts "
                         f"({sources.get('teacher', 0) / max(answered, 1):.1%}), the student the rest"
                         + (f"; deferred but answered by the student: {traffic['fallbacks']}"
                            if traffic.get("fallbacks") else ""))
    if monitor is not None:
        verdict = monitor.get("verdict", {})
        share, agreement = monitor.get("drift", {}).get("drift_share"), monitor.get("teacher", {}).get("agreement")
        lines.append(f"monitor: {verdict.get('status')} over {monitor.get('rows')} predictions; drift share "
                     f"{fmt(share)}, teacher agreement {fmt(agreement)} on {monitor.get('teacher', {}).get('rows')} texts")
    lines += ["", "where to look:",
              f"  {outputs.path('gate_report')!s:<31} the gate report (every suite, every check)",
              f"  {params.monitor.report_path:<31} the latest monitor verdict",
              f"  {params.monitor.workspace:<31} Evidently workspace: evidently ui --workspace {params.monitor.workspace}",
              "  distill registry history        every release decision with its numbers",
              "  prefect server start            the Prefect UI with these flow runs (PREFECT_HOME=.prefect)",
              "  distill serve, then /demo/      the student in your browser, offline once loaded (docs/web.md)",
              "  dvc metrics show / dvc plots show",
              "", "outputs (tracked by DVC):"]
    lines += [f"  {path:<32} {(_mb(root / path) or 0):8.2f} MB   (stage {stage})" for stage, path in _outputs(root)]
    return "\n".join(lines)


def _wait_for_production_rows(engine, tbl, since: float, want: int, timeout_s: float) -> int:
    from pipeline import predlog

    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = len(predlog.read_window(engine, tbl, since=since))
        if count >= want:
            break
        time.sleep(1.0)
    return count


def run_demo(root: str | Path = ".", push: bool = True) -> int:
    from flows.canary import canary as canary_flow
    from flows.monitor import monitor as monitor_flow
    from flows.retrain import run as retrain
    from pipeline import predlog
    from pipeline.config import load_params
    from pipeline.serve.loadgen import LoadGenerator
    from pipeline.serve.process import ServerProcess

    root = Path(root).resolve()
    os.chdir(root)  # registry, prediction log and workspace paths in params.yaml are relative to the project
    started = time.perf_counter()
    params = load_params(root / "params.yaml")

    result = retrain(root=str(root), push=push)
    canary = monitor = traffic = None
    if result.get("gate_passed"):
        url = urlparse(params.canary.server_url)
        log = root / ".distill" / "demo-server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        import pandas as pd

        held_out = pd.read_parquet(outputs.path("ingested", root), columns=["text", "split"])
        # a seeded shuffle: the file order groups the classes, and a replay in that order is a label
        # mix the monitor rightly calls drift; shuffled, every stretch of traffic looks like the split
        texts = held_out.loc[held_out["split"] == "test", "text"].sample(frac=1.0, random_state=params.seed).tolist()
        server = ServerProcess(root / "params.yaml", root, port=url.port or 8000, log=log)
        try:
            server.wait_ready(timeout=120, need_model=False)
        except (RuntimeError, TimeoutError) as exc:
            server.stop()
            raise DistillError(f"the model server did not start on {params.canary.server_url} "
                               f"(is the port taken?): {exc}") from None
        engine, tbl = predlog.connect(params.serve.prediction_log_url)
        try:
            from pipeline.registry import open_registry

            with open_registry(params.registry, root=root) as registry:
                first_release = registry.get_alias("production").version is None
            if first_release:  # nothing serves yet: the candidate is promoted after a smoke check
                canary = canary_flow(params_path=str(root / "params.yaml"))
            server.wait_ready(timeout=60, need_model=True)
            with LoadGenerator(server.url, texts, workers=3) as load:
                if not first_release:  # a real rollout: traffic steps judged on this replay
                    canary = canary_flow(params_path=str(root / "params.yaml"))
                # the monitor needs a window of production traffic: keep replaying until it has it
                since = time.time()
                _wait_for_production_rows(engine, tbl, since, max(params.monitor.thresholds.min_rows, 300), 120)
            traffic = {"requests": load.requests, "statuses": dict(load.statuses),
                       "transport_errors": load.transport_errors, "sources": dict(load.sources),
                       "fallbacks": dict(load.fallbacks)}
            monitor = monitor_flow(root=str(root))
        finally:
            engine.dispose()
            server.stop()
    print(summary(root, params, result, canary, monitor, traffic, time.perf_counter() - started))
    return 0 if result.get("gate_passed") else 1


def shifted_texts(ingested, seed: int) -> tuple[list[str], str]:
    """The drift replay: transfer-set texts (never the test split) of the rarest label alone, each with a
    few typos, shuffled with ``seed``.

    Traffic that is one class only moves the label mix, the confidence and the text descriptors away
    from the reference, on any data set; the typos make them texts the pipeline has never seen, so the
    disagreements the monitor sends to feedback/ are new rows for the retrain's transfer set (and no test
    text leaks into training)."""
    from pipeline.evaluate import perturb

    pool = ingested[(ingested["split"] != "test") & ingested["label"].notna()]
    counts = pool["label"].value_counts()
    label = str(sorted(counts.index[counts == counts.min()])[0])  # ties: the first name, so runs agree
    texts = pool.loc[pool["label"] == label, "text"].sample(frac=1.0, random_state=seed).tolist()
    return perturb.apply("typos", texts, seed, rate=0.05), label


def run_drift(root: str | Path = ".", push: bool = True, retrain_after: bool = True) -> int:
    """After ``make demo``: replay shifted traffic to the production model, run the monitor flow (it should
    end in the Breach state and emit ``distill.monitor.drift``), then run the retrain that the
    ``retrain-on-drift`` trigger of flows/deploy.py starts on that event. Exit 0 when the monitor
    breached, 1 when it did not."""
    import pandas as pd

    from flows.monitor import monitor as monitor_flow
    from flows.retrain import run as retrain
    from pipeline import predlog
    from pipeline.config import load_params
    from pipeline.registry import open_registry
    from pipeline.serve.loadgen import LoadGenerator
    from pipeline.serve.process import ServerProcess

    root = Path(root).resolve()
    os.chdir(root)
    params = load_params(root / "params.yaml")
    with open_registry(params.registry, root=root) as registry:
        production = registry.get_alias("production").version
    if production is None:
        raise DistillError("no production model yet: run `make demo` first, then `distill demo --drift`")
    texts, label = shifted_texts(pd.read_parquet(outputs.path("ingested", root), columns=["text", "label", "split"]),
                                 params.seed)
    # a prediction log of its own: the monitor's window holds the shifted replay and nothing else
    db = root / ".distill" / "drift-predictions.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    log_url = f"sqlite:///{db}"
    from pipeline.serve.logwriter import ack_path

    for stale in (db, ack_path(log_url)):  # the log and its acknowledged-rows counter go together
        stale.unlink(missing_ok=True)
    print(f"drift: replaying {len(texts)} '{label}' texts with typos, and nothing else, to production "
          f"{production.id}", flush=True)
    url = urlparse(params.canary.server_url)
    server = ServerProcess(root / "params.yaml", root, env={"DISTILL_PREDICTION_LOG_URL": log_url},
                           port=url.port or 8000, log=root / ".distill" / "drift-server.log")
    engine, tbl = predlog.connect(log_url)
    try:
        try:
            server.wait_ready(timeout=120, need_model=True)
        except (RuntimeError, TimeoutError) as exc:
            raise DistillError(f"the model server did not start on {params.canary.server_url} "
                               f"(is the port taken?): {exc}") from None
        with LoadGenerator(server.url, texts, workers=3):
            _wait_for_production_rows(engine, tbl, 0.0, max(params.monitor.thresholds.min_rows, 300), 120)
    finally:
        engine.dispose()
        server.stop()
    state = monitor_flow(root=str(root), log_url=log_url, return_state=True)
    found = state.result()
    breaches = ", ".join(f"{b['check']} {fmt(b['value'])} (limit {fmt(b['limit'])})"
                         for b in found["verdict"]["breaches"])
    print(f"monitor: {found['verdict']['status']} over {found['rows']} predictions (Prefect state {state.name})"
          + (f": {breaches}" if breaches else "") + f"; {found['feedback']['rows']} disagreements -> feedback/",
          flush=True)
    if found["verdict"]["status"] != "breach":
        return 1
    if retrain_after:
        print("retrain: the retrain-on-drift trigger (flows/deploy.py) starts the retrain deployment on the "
              "distill.monitor.drift event; without a served deployment, it runs here", flush=True)
        result = retrain(root=str(root), push=push)
        ran = [r["stage"] for r in result["stages"] if r["ran"]]
        same = result.get("registered") == production.id
        print(f"retrain: stages run {', '.join(ran) or 'none'}; gate "
              f"{'PASSED' if result.get('gate_passed') else 'FAILED'}; registered {result.get('registered')}"
              + (" (the same bundle as production: nothing new to learn from)" if same else
                 " as the candidate: `distill canary` rolls it out" if result.get("gate_passed") else " as rejected"))
    return 0
