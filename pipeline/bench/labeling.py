"""Student accuracy against teacher calls: random and active selection of the transfer pool.

``distill bench --labeling-curve`` runs this instead of the main bench: for budgets of 5, 10, 25, 50
and 100 % of the pool (the transfer rows outside the gold rows and the validation slice, which are
always labeled), it labels the pool by ``label.strategy: all`` with a budget (a uniform sample in
text-key order: the random baseline) and by ``label.strategy: active``, trains the full student on
each labeled set with the params' own distill settings, and scores it on the gold test split. The
teacher calls counted are the distinct pool texts each labeled set holds (the label cache makes the
runs themselves nearly free). Written to ``labeling.json`` in the workdir.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("distill.bench")

SHARES = (0.05, 0.10, 0.25, 0.50, 1.0)


def labeling_curve(params, workdir: str | Path, shares=SHARES) -> dict[str, Any]:
    from pipeline.bench import fit_or_reuse_teacher
    from pipeline.distill import train_transfer_set
    from pipeline.distill.data import build_transfer_set
    from pipeline.ingest import ingest
    from pipeline.io import write_json
    from pipeline.keys import text_key
    from pipeline.label import label_table
    from pipeline.label.budgeted import partition
    from pipeline.teachers import load_teacher

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    table = ingest(params.ingest, params.seed).table
    fit_or_reuse_teacher(params, table, workdir / "teacher")
    teacher = load_teacher(params.teacher, workdir / "teacher")
    rows = table[["id", "text", "split"]].assign(origin_id=None)
    always, _ = partition(rows, params.distill.validation_share)
    keys = [text_key(t) for t in rows["text"]]
    fixed_texts = len({k for k, a in zip(keys, always) if a})
    pool_texts = len({k for k, a in zip(keys, always) if not a} - {k for k, a in zip(keys, always) if a})
    points = []
    for strategy in ("all", "active"):
        for share in shares:
            if share >= 1.0 and strategy == "active":
                continue  # the whole pool is the same labeled set either way
            budget = None if share >= 1.0 else {"calls": fixed_texts + int(round(share * pool_texts))}
            label = params.label.model_copy(update={"strategy": strategy, "budget": type(params.label.budget)(
                **(budget or {}))})
            run = params.model_copy(update={"label": label})
            t0 = time.perf_counter()
            frame, names, metrics = label_table(table, run, workdir / "teacher", teacher=teacher,
                                                state_path=workdir / f"rounds-{strategy}-{share:g}.json")
            data = build_transfer_set(table, frame, names, params.distill.validation_share, params.distill.use_gold)
            result = train_transfer_set(data, params.distill, params.seed, workdir / f"student-{strategy}-{share:g}")
            held = {k for k, a in zip(keys, always) if not a} & {text_key(t) for t in frame["text"]}
            point = {"strategy": "random" if strategy == "all" else "active", "budget_share": share,
                     "pool_texts_labeled": len(held), "pool_share": len(held) / max(pool_texts, 1),
                     "teacher_texts": fixed_texts + len(held), "accuracy": result.metrics.get("test_accuracy"),
                     "val_agreement": result.metrics["val_agreement"], "rounds": len(metrics.get("rounds") or []),
                     "seconds": round(time.perf_counter() - t0, 1)}
            log.info("labeling curve: %s at %.0f%% of the pool: %d pool texts, test accuracy %.4f",
                     point["strategy"], 100 * share, len(held), point["accuracy"] or float("nan"))
            points.append(point)
    whole = next((p["accuracy"] for p in points if p["budget_share"] >= 1.0), None)
    for p in points:
        p["share_of_whole_pool"] = p["accuracy"] / whole if whole else None
    record = {"format": "distill-labeling-curve/1", "fixed_texts": fixed_texts, "pool_texts": pool_texts,
              "points": points, "active": params.label.active.model_dump(), "wall_s": round(time.perf_counter() - started, 1)}
    write_json(workdir / "labeling.json", record)
    return record


def render_curve(record: dict[str, Any]) -> str:
    lines = [f"always labeled (gold rows, validation slice, test): {record['fixed_texts']} texts; "
             f"pool: {record['pool_texts']} texts", "",
             "| selection | budget (share of pool) | pool texts labeled | test accuracy | share of whole-pool student |",
             "|---|---|---|---|---|"]
    for p in sorted(record["points"], key=lambda p: (p["budget_share"], p["strategy"])):
        lines.append(f"| {p['strategy']} | {p['budget_share']:.0%} | {p['pool_texts_labeled']:,} | "
                     f"{100 * p['accuracy']:.1f} % | "
                     + ("n/a" if p["share_of_whole_pool"] is None else f"{100 * p['share_of_whole_pool']:.1f} %") + " |")
    return "\n".join(lines)
