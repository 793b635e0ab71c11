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
    from pipeline.distill.hints import teacher_embedder, with_hints
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
    embed = teacher_embedder(teacher) if params.distill.hint_weight > 0 else None
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
            data = with_hints(data, embed)  # the labeled texts only: the teacher embedded them when labeling
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


def labeling_curves(params, workdir: str | Path, seeds: list[int] | None = None, shares=SHARES) -> dict[str, Any]:
    """The curve for each seed (``<workdir>/seed-<n>``), combined by :func:`combine_curves`; one seed (or
    none: the params' own) is :func:`labeling_curve` itself.

    The seed draws the labeled rows, the teacher fitted on them, the student's initialisation and the
    first random round of active selection; on BANKING77's 3,080 test texts a point moves by up to two
    points from seed to seed, more than the differences the curve is read for."""
    from pipeline.io import write_json

    if not seeds or list(seeds) == [params.seed]:
        return labeling_curve(params, workdir, shares)
    runs = []
    for n, seed in enumerate(seeds):
        log.info("labeling curve: seed %d (%d of %d)", seed, n + 1, len(seeds))
        runs.append(labeling_curve(params.model_copy(update={"seed": seed}), Path(workdir) / f"seed-{seed}", shares))
    record = combine_curves(runs, list(seeds))
    write_json(Path(workdir) / "labeling.json", record)
    return record


def combine_curves(runs: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Curves of several seeds as one: per selection and budget, the mean test accuracy with its range,
    and the share of the whole-pool student as the ratio of the means."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for run in runs:
        for p in run["points"]:
            groups.setdefault((p["strategy"], p["budget_share"]), []).append(p)
    whole = [p["accuracy"] for (strategy, share), ps in groups.items() if share >= 1.0 for p in ps]
    whole_mean = sum(whole) / len(whole) if whole else None
    points = []
    for (strategy, share), ps in groups.items():
        accuracy = [p["accuracy"] for p in ps]
        mean = sum(accuracy) / len(accuracy)
        points.append({"strategy": strategy, "budget_share": share, "seeds": len(ps),
                       "pool_texts_labeled": round(sum(p["pool_texts_labeled"] for p in ps) / len(ps)),
                       "teacher_texts": round(sum(p["teacher_texts"] for p in ps) / len(ps)),
                       "accuracy": mean, "accuracy_min": min(accuracy), "accuracy_max": max(accuracy),
                       "val_agreement": sum(p["val_agreement"] for p in ps) / len(ps),
                       "share_of_whole_pool": mean / whole_mean if whole_mean else None})
    return {"format": "distill-labeling-curve/1", "seeds": seeds, "fixed_texts": runs[0]["fixed_texts"],
            "pool_texts": runs[0]["pool_texts"], "points": points, "active": runs[0]["active"],
            "runs": runs, "wall_s": round(sum(r["wall_s"] for r in runs), 1)}


def render_curve(record: dict[str, Any]) -> str:
    seeds = record.get("seeds") or []
    accuracy = f"test accuracy (mean of {len(seeds)} seeds, range)" if seeds else "test accuracy"
    lines = [f"always labeled (gold rows, validation slice, test): {record['fixed_texts']} texts; "
             f"pool: {record['pool_texts']} texts" + (f"; seeds {', '.join(map(str, seeds))}" if seeds else ""), "",
             f"| selection | budget (share of pool) | pool texts labeled | {accuracy} | share of whole-pool student |",
             "|---|---|---|---|---|"]
    for p in sorted(record["points"], key=lambda p: (p["budget_share"], p["strategy"])):
        spread = (f" ({100 * p['accuracy_min']:.1f}-{100 * p['accuracy_max']:.1f})" if "accuracy_min" in p else "")
        lines.append(f"| {p['strategy']} | {p['budget_share']:.0%} | {p['pool_texts_labeled']:,} | "
                     f"{100 * p['accuracy']:.1f} %{spread} | "
                     + ("n/a" if p["share_of_whole_pool"] is None else f"{100 * p['share_of_whole_pool']:.1f} %") + " |")
    return "\n".join(lines)
