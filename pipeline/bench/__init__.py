"""Quality-per-cost benchmark: teacher vs distilled student vs the same student on gold labels only.

    distill bench --params examples/banking77/params.yaml [--workdir bench/banking77] [--data-dir DIR]

One run, through the project's own stage functions (ingest, teacher fit, cached labeling, distill,
export): nothing here re-implements a stage. Then, in the same process, on the same test texts and with
the same thread count for every model, it measures

- quality on the gold ``test`` split: teacher, student torch fp32, student ONNX int8, the gold-only
  baseline (the same student and featurizer trained with cross-entropy on the ``labeled`` rows only);
  retention = student int8 accuracy / teacher accuracy; agreement of the int8 student with the teacher;
- cost: texts/s at each thread count (featurization / tokenization included, batches as the model
  takes them: the teacher sorts its batch by length), p50/p99 single-text latency, file sizes (the
  teacher counts its encoder weights plus its head) and the wall time of each stage.

Model selection never sees the test split: early stopping uses the validation slice carved from the
transfer set (teacher agreement for the distilled student, gold accuracy for the baseline).
Working files go under ``--workdir``; a teacher fitted on the same labeled rows with the same settings
is reused from there, and labels come from the content-addressed cache, so a re-run pays only for
training and measuring. Writes ``<workdir>/bench.json`` and returns the markdown table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DataError
from pipeline.timing import throughput

log = logging.getLogger("distill.bench")

DATA_DIR_ENV = "DISTILL_BENCH_DATA_DIR"
TEACHER_KEY = "bench-key.json"


def bench_name(params_path: str | Path) -> str:
    """``examples/banking77/params-few-labels.yaml`` -> ``banking77-few-labels``; ``params.yaml`` -> ``default``."""
    path = Path(params_path)
    parent = path.resolve().parent.name
    if path.stem == "params" and path.resolve().parent == Path.cwd().resolve():
        return "default"
    suffix = path.stem.removeprefix("params").strip("-_")
    return f"{parent}-{suffix}" if suffix else parent


def with_data_dir(params, data_dir: str | Path | None):
    """Point the table source's files at ``data_dir`` (same file names) and check they exist."""
    source = params.ingest.source
    if source.kind == "spamassassin":
        return params
    update = {}
    for key in ("path", "test_path"):
        value = getattr(source, key)
        if value is None:
            continue
        path = Path(data_dir) / Path(value).name if data_dir else Path(value)
        if not path.exists():
            raise DataError(f"ingest.source.{key}: {path} not found. The benchmark reads its data from there "
                            f"(relative to {Path.cwd()}); pass --data-dir DIR or set {DATA_DIR_ENV}=DIR to the "
                            f"folder that holds {Path(value).name}")
        update[key] = str(path)
    ingest = params.ingest.model_copy(update={"source": source.model_copy(update=update)})
    return params.model_copy(update={"ingest": ingest})


@contextmanager
def _timed(stages: dict[str, float], name: str):
    started = time.perf_counter()
    yield
    stages[name] = round(time.perf_counter() - started, 3)
    log.info("bench: %s took %.1f s", name, stages[name])


def _teacher_key(params, table) -> str:
    labeled = table[table["split"] == "labeled"]
    settings = params.teacher.model_dump(mode="json")
    settings["embedding_head"].pop("cache_dir", None)  # where embeddings are kept does not change the teacher
    raw = json.dumps([settings, params.seed,
                      sorted(zip(labeled["id"].astype(str), labeled["label"].astype(str)))])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def fit_or_reuse_teacher(params, table, teacher_dir: Path) -> dict:
    """The teacher stage, skipped when ``teacher_dir`` holds one fitted on the same rows and settings."""
    from pipeline.io import read_json, write_json
    from pipeline.teachers.prepare import prepare_teacher

    key = _teacher_key(params, table)
    key_path = teacher_dir / TEACHER_KEY
    if key_path.exists() and read_json(key_path).get("key") == key and (teacher_dir / "teacher.json").exists():
        log.info("bench: reusing the teacher in %s (same labeled rows and settings)", teacher_dir)
        return read_json(teacher_dir / "teacher.json")
    record = prepare_teacher(params.teacher, table, teacher_dir, params.seed)
    write_json(key_path, {"key": key})
    return record


def gold_only_frame(table, labels_frame, names: list[str]):
    """Labels table for the baseline: ``labeled`` rows with one-hot gold probabilities, plus test rows.

    Training on it with cross-entropy is the same student learning from gold labels alone; its
    validation slice is scored against gold, so the baseline never sees the teacher's outputs.
    """
    index = {n: i for i, n in enumerate(names)}
    labeled = table[(table["split"] == "labeled") & table["label"].notna()]
    eye = np.eye(len(names), dtype=np.float32)
    frame = labels_frame[labels_frame["split"] == "test"].copy()
    gold = labeled.assign(origin_id=None, probs=[eye[index[str(y)]] for y in labeled["label"]])
    import pandas as pd

    columns = ["id", "text", "split", "origin_id", "probs"]
    return pd.concat([gold[columns], frame[columns]], ignore_index=True)


def _p50_p99(fn, texts: list[str]) -> dict[str, float]:
    from pipeline.timing import latency_summary

    lat = latency_summary(fn, texts)
    return {"p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"]}


def measure_speed(teacher, student_model, bundle_dir: Path, texts: list[str], threads: Sequence[int],
                  batch: int, latency_texts: int) -> dict[str, Any]:
    """Texts/s and single-text latency of teacher, student torch fp32 and student ONNX int8, per thread count.

    Every model sees the same texts. The teacher gets the whole list at once (it sorts by length and
    batches itself, its best case); the students get batches of ``batch`` in the given order.
    """
    import torch

    from pipeline.bundle import load_bundle

    out: dict[str, Any] = {}
    for n in threads:
        torch.set_num_threads(n)
        bundle = load_bundle(bundle_dir, threads=n)
        feat = bundle.featurizer

        def student_torch(batch_texts, _feat=feat):
            with torch.no_grad():
                return torch.softmax(student_model(torch.from_numpy(_feat(batch_texts))), dim=1).numpy()

        models = {
            "teacher": (teacher.predict_proba, len(texts)),
            "student_torch": (student_torch, batch),
            "student_int8": (lambda b, _b=bundle: _b.predict_proba(b, "int8"), batch),
        }
        for name, (fn, size) in models.items():
            rate = throughput(fn, texts, size)
            out.setdefault(name, {})[str(n)] = {"texts_per_s": rate, **_p50_p99(fn, texts[:latency_texts])}
            log.info("bench: %s, %d thread(s): %.0f texts/s", name, n, rate)
    return out


def uncached_teacher(params, teacher_dir: Path):
    """The teacher as a caller without caches pays for it: its embedding cache off (it has seen the test texts)."""
    from pipeline.teachers import load_teacher

    teacher_cfg = params.teacher
    if teacher_cfg.kind == "embedding-head" and teacher_cfg.embedding_head.cache_dir:
        head = teacher_cfg.embedding_head.model_copy(update={"cache_dir": None})
        teacher_cfg = teacher_cfg.model_copy(update={"embedding_head": head})
    return load_teacher(teacher_cfg, teacher_dir)


def peer_speed(fitted, peers: dict[str, dict], texts: list[str], threads: Sequence[int], batch: int) -> None:
    """Texts/s of every peer, per thread count (BLAS threads limited to it), written into ``peers``."""
    from threadpoolctl import threadpool_limits

    for key, peer in fitted.items():
        by_threads = {}
        for n in threads:
            with threadpool_limits(n):
                by_threads[str(n)] = throughput(peer.predict_proba, texts, batch)
            log.info("bench: peer %s, %d thread(s): %.0f texts/s", key, n, by_threads[str(n)])
        peers[key]["texts_per_s_by_threads"] = by_threads
        peers[key]["texts_per_s"] = by_threads[str(max(threads))]


def run_bench(params, workdir: str | Path, threads: Sequence[int] = (1, 2), speed_texts: int = 1000,
              latency_texts: int = 200, peer_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every stage into ``workdir`` and measure; returns the bench record (also written to bench.json)."""
    import pandas as pd
    import torch

    from pipeline.bundle import load_bundle
    from pipeline.config.distill import LossTerm
    from pipeline.bench.peers import encoder_source_of, fit_peers, static_model_folder
    from pipeline.distill import train_transfer_set
    from pipeline.distill.data import build_transfer_set
    from pipeline.distill.checkpoint import load_student
    from pipeline.distill.hints import teacher_embedder, with_hints
    from pipeline.export import evaluation_texts, export_bundle
    from pipeline.ingest import ingest
    from pipeline.io import write_json
    from pipeline.label import label_table
    from pipeline.teachers import load_teacher
    from pipeline.teachers.base import weight_bytes

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    torch.set_num_threads(max(threads))

    with _timed(stages, "ingest"):
        table = ingest(params.ingest, params.seed).table
    with _timed(stages, "teacher"):
        fit_or_reuse_teacher(params, table, workdir / "teacher")
        teacher = load_teacher(params.teacher, workdir / "teacher")
    with _timed(stages, "label"):
        labels_frame, names, label_metrics = label_table(table, params, workdir / "teacher", teacher=teacher)
    cfg = params.distill
    data = build_transfer_set(table, labels_frame, names, cfg.validation_share, cfg.use_gold)
    gold_data = build_transfer_set(table, gold_only_frame(table, labels_frame, names), names, cfg.validation_share,
                                   cfg.use_gold)
    with _timed(stages, "distill"):
        embed = teacher_embedder(teacher) if cfg.hint_weight > 0 else None  # the distill stage's hint loss
        distilled = train_transfer_set(with_hints(data, embed), cfg, params.seed, workdir / "student")
    with _timed(stages, "distill_gold_only"):
        gold_cfg = cfg.model_copy(update={"losses": {"ce": LossTerm(weight=1.0)}})
        gold = train_transfer_set(gold_data, gold_cfg, params.seed, workdir / "student-gold")
    with _timed(stages, "peers"):
        fitted = fit_peers(data, gold_data, len(names), params.seed, static_model_folder(params, workdir),
                           encoder_source_of(params), peer_names)
    with _timed(stages, "export"):
        export = export_bundle(distilled.checkpoint, workdir / "bundle", params.export,
                               evaluation_texts(table.loc[table["split"] == "test", "text"], labels_frame["text"]))

    from pipeline.evaluate import metrics as m  # the gate's own definitions

    # the test rows, gold targets and teacher probabilities exactly as the distill stage scores them
    y, known = data.test_gold, data.test_gold >= 0
    if not known.any() or data.test_probs is None:
        raise DataError("bench: the test split has no gold labels or no teacher labels to score against")
    texts = data.test_texts
    teacher_probs = np.asarray(data.test_probs, dtype=np.float64)
    bundle = load_bundle(workdir / "bundle", threads=max(threads))
    int8_probs = bundle.predict_proba(texts, "int8")
    teacher_acc = m.accuracy(teacher_probs[known], y[known])
    int8_acc = m.accuracy(int8_probs[known], y[known])
    quality = {
        "test_rows": int(known.sum()),
        "teacher_accuracy": teacher_acc,
        "student_fp32_accuracy": distilled.metrics["test_accuracy"],
        "student_int8_accuracy": int8_acc,
        "gold_only_accuracy": gold.metrics["test_accuracy"],
        "retention": int8_acc / teacher_acc if teacher_acc > 0 else None,
        "agreement_with_teacher": m.agreement(int8_probs, teacher_probs),
        "gain_over_gold_only": int8_acc - gold.metrics["test_accuracy"],
    }
    from pipeline.evaluate.cascade import cascade_curve

    cascade = cascade_curve(bundle.predict_proba(data.val_texts, "int8"), int8_probs, teacher_probs, y)
    peers = {}
    for key, peer in fitted.items():
        probs = peer.predict_proba(texts)
        peers[key] = {"peer": peer.name, "regime": peer.regime, "accuracy": m.accuracy(probs[known], y[known]),
                      "agreement_with_teacher": m.agreement(probs, teacher_probs), "bytes": peer.bytes,
                      "settings": peer.settings, "val_score": peer.val_score}
    gold_only = {"student": gold.metrics["test_accuracy"],
                 **{v["peer"]: v["accuracy"] for v in peers.values() if v["regime"] == "gold_only"}}
    best_gold = max(gold_only, key=gold_only.get)
    distilled_peers = {k: v["accuracy"] for k, v in peers.items() if v["regime"] == "distilled"}
    best_peer = max(distilled_peers, key=distilled_peers.get) if distilled_peers else None
    quality.update({
        "best_gold_only": {"model": best_gold, "accuracy": gold_only[best_gold]},
        "gain_over_best_gold_only": int8_acc - gold_only[best_gold],
        "best_peer": None if best_peer is None else {"model": best_peer, "accuracy": distilled_peers[best_peer]},
        "margin_over_best_peer": None if best_peer is None else int8_acc - distilled_peers[best_peer],
    })

    speed_sample = texts[:speed_texts]
    with _timed(stages, "speed"):
        speed = measure_speed(uncached_teacher(params, workdir / "teacher"), load_student(distilled.checkpoint).model,
                              workdir / "bundle", speed_sample, threads, params.export.throughput_batch, latency_texts)
        peer_speed(fitted, peers, speed_sample, threads, params.export.throughput_batch)
    sizes = {"teacher": weight_bytes(teacher),
             "student_fp32": export["files_bytes"]["fp32"], "student_int8": export["files_bytes"]["int8"],
             "featurizer_tokenizer": export["files_bytes"]["tokenizer"]}
    record: dict[str, Any] = {
        "format": "distill-bench/1",
        "rows": {s: int((table["split"] == s).sum()) for s in ("labeled", "unlabeled", "test")},
        "labels": len(names),
        "quality": quality,
        "speed": speed,
        "speed_texts": len(speed_sample),
        "threads": list(threads),
        "batch": params.export.throughput_batch,
        "speedup_int8_vs_teacher": {n: speed["student_int8"][n]["texts_per_s"] / speed["teacher"][n]["texts_per_s"]
                                    for n in speed["teacher"]},
        "bytes": sizes,
        "peers": peers,
        "cascade": cascade,
        "size_ratio_teacher_to_int8": sizes["teacher"] / sizes["student_int8"] if sizes["teacher"] else None,
        "parity": {"fp32": export["fp32"], "int8": export["int8"], "passed": export["passed"]},
        "student": {"name": params.distill.student.name, "kwargs": dict(params.distill.student.kwargs),
                    "featurizer": params.distill.featurizer.model_dump(mode="json"),
                    "distilled": {k: distilled.metrics[k] for k in ("best_epoch", "epochs_run", "parameters")},
                    "gold_only": {k: gold.metrics[k] for k in ("best_epoch", "epochs_run", "train_rows")}},
        "label": {k: label_metrics[k] for k in ("rows", "distinct_texts", "cache_hits", "cache_misses", "texts_per_s")},
        "stages_s": stages,
        "wall_s": round(time.perf_counter() - started, 3),
        # Load average at the end: timings on a shared machine are only comparable within one run.
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "loadavg_1m": os.getloadavg()[0]},
        "date": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    }
    record["cost"] = bench_cost(record, params, label_metrics)
    write_json(workdir / "bench.json", record)
    return record


def bench_cost(record: dict[str, Any], params, label_metrics: dict[str, Any]) -> dict[str, Any]:
    """Per 1M predictions from this run's own speed numbers: teacher, student, and the cascade at each
    measured deferral (pipeline/cost.py). Core-seconds per text: the fewest threads measured / texts/s."""
    from pipeline.cost import cost_report, cpu_usd_per_text, teacher_usd_per_text

    price = params.cost.usd_per_core_hour
    n = str(min(record["threads"]))
    core_s = {name: int(n) / record["speed"][name][n]["texts_per_s"] for name in ("teacher", "student_int8")}
    teacher_usd, how = teacher_usd_per_text(label_metrics, price)
    if teacher_usd is None or "cost_usd" not in (label_metrics.get("usage") or {}):  # a local teacher: its CPU time
        teacher_usd, how = cpu_usd_per_text(core_s["teacher"], price), f"{1000 * core_s['teacher']:.1f} CPU-ms per text ({n}-thread throughput)"
    target = params.evaluate.cascade.target_deferral
    row = min(record["cascade"], key=lambda r: abs(r["target_rate"] - target)) if record.get("cascade") else None
    report = cost_report(price, core_s["student_int8"], teacher_usd, how, row["deferred"] if row else None, label_metrics)
    student = cpu_usd_per_text(core_s["student_int8"], price)
    report["cascade_curve"] = [{"target_rate": r["target_rate"], "deferred": r["deferred"], "retention": r["retention"],
                                "per_million": (student + r["deferred"] * teacher_usd) * 1e6} for r in record.get("cascade") or []]
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def render_table(record: dict[str, Any]) -> str:
    """Markdown summary of a bench record (the quality block, then cost per thread count)."""
    q, s, b = record["quality"], record["speed"], record["bytes"]
    mb = lambda n: "n/a" if n is None else f"{n / 1e6:.2f} MB"  # noqa: E731
    lines = [
        f"rows: {record['rows']}, {record['labels']} labels, test rows scored: {q['test_rows']}",
        "",
        "| model | test accuracy | agreement with teacher | file |",
        "|---|---|---|---|",
        f"| teacher | {_pct(q['teacher_accuracy'])} | 100 % | {mb(b['teacher'])} |",
        f"| student fp32 (torch) | {_pct(q['student_fp32_accuracy'])} | | {mb(b['student_fp32'])} |",
        f"| student int8 (onnxruntime) | {_pct(q['student_int8_accuracy'])} | {_pct(q['agreement_with_teacher'])} "
        f"| {mb(b['student_int8'])} |",
        f"| same student, gold labels only | {_pct(q['gold_only_accuracy'])} | | |",
    ]
    peers = record.get("peers") or {}
    if peers:
        top = str(max(record["threads"]))
        lines += ["", f"| peer, trained on | test accuracy | agreement with teacher | texts/s at {top} thread(s) "
                  "| file |", "|---|---|---|---|---|"]
        for key, p in peers.items():
            regime = "the student's labels" if p["regime"] == "distilled" else "gold labels only"
            lines.append(f"| {p['peer']}, {regime} | {_pct(p['accuracy'])} | {_pct(p['agreement_with_teacher'])} "
                         f"| {p.get('texts_per_s', float('nan')):,.0f} | {mb(p['bytes'])} |")
    best_gold = q.get("best_gold_only") or {"model": "student", "accuracy": q["gold_only_accuracy"]}
    lines += [
        "",
        f"retention (int8 / teacher): {_pct(q['retention'])}; gain over the strongest gold-only model "
        f"({best_gold['model']}, {_pct(best_gold['accuracy'])}): "
        f"{100 * q.get('gain_over_best_gold_only', q['gain_over_gold_only']):+.1f} points; teacher / int8 size: "
        f"{record['size_ratio_teacher_to_int8'] or float('nan'):.1f}x",
    ]
    if q.get("best_peer"):
        lines.append(f"int8 student against the best peer on the same labels ({q['best_peer']['model']}, "
                     f"{_pct(q['best_peer']['accuracy'])}): {100 * q['margin_over_best_peer']:+.1f} points")
    if record.get("cascade"):
        cost = {r["target_rate"]: r["per_million"] for r in (record.get("cost") or {}).get("cascade_curve", [])}
        lines += ["", "| cascade: target deferral (cut set on validation) | test texts deferred to the teacher "
                  "| accuracy | share of the teacher's | $ per 1M predictions |", "|---|---|---|---|---|"]
        for row in record["cascade"]:
            usd = cost.get(row["target_rate"])
            lines.append(f"| {_pct(row['target_rate'])} | {_pct(row['deferred'])} | {_pct(row['accuracy'])} "
                         f"| {_pct(row['retention'])} | {'n/a' if usd is None else f'{usd:,.4f}'} |")
    if record.get("cost"):
        from pipeline.cost import cost_lines

        lines += [""] + cost_lines(record["cost"])
    lines += [
        "",
        f"| path ({record['speed_texts']} test texts, batch {record['batch']}) | threads | texts/s | "
        "p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for name in ("teacher", "student_torch", "student_int8"):
        for n, m in s[name].items():
            lines.append(f"| {name} | {n} | {m['texts_per_s']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} |")
    lines += ["", "int8 speed-up over the teacher: " + ", ".join(
        f"{v:,.0f}x at {n} thread(s)" for n, v in record["speedup_int8_vs_teacher"].items()),
        f"machine: {record['machine']['cpus']} CPUs, load average {record['machine']['loadavg_1m']:.1f} at the end",
        "stage wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in record["stages_s"].items())
        + f"; total {record['wall_s']:.1f}"]
    return "\n".join(lines)
