"""Labeling within a budget, and active selection: pay the teacher for the pool texts that matter.

Used by the label stage when ``label.strategy`` is ``active`` or ``label.budget`` is set
(pipeline/label/table.py). The rows fall in two groups:

- **always labeled**: the gold rows, the distill stage's validation slice (the same hash rule,
  ``distill.validation_share``) and the test split: training, early stopping and the gate need them;
- **the pool**: every other transfer row (unlabeled, augmented, feedback).

``strategy: all`` with a budget labels the pool in text-key order (a hash: a uniform random sample
that a re-run repeats) until the budget is spent. ``strategy: active`` works in rounds:

1. a seeded random ``initial_share`` of the pool;
2. a quick student (the real student code, ``label.active.epochs`` epochs) trained on what is labeled
   so far scores the rest of the pool by the margin of its calibrated probabilities (top-1 minus top-2,
   temperature fitted on the validation slice); the ``round_share`` most uncertain texts are taken from
   ``candidates`` times as many, round-robin over the classes the student predicts for them;
3. the chosen texts go to the teacher through the label cache; repeat until the budget is spent, the
   pool is empty, or validation agreement with the teacher gained less than ``min_gain`` for
   ``patience`` rounds.

Every round's chosen row ids are written to the state file (a DVC output, ``persist``) *before* the
teacher is asked, so a run killed at any point resumes at the round it was in: finished rounds replay
from the cache for free, and only the batch that was in flight is asked again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.bundle import softmax
from pipeline.errors import DataError
from pipeline.io import read_json, write_json
from pipeline.label.calls import CallStats, cached_teacher_probs

log = logging.getLogger("distill.label")

STATE_FORMAT = "distill-label-rounds/1"


@dataclass
class Plan:
    """What a budgeted run labeled: rows wanted, answers, cost, and one record per round."""

    wanted: np.ndarray  # bool per row: the rows this run labels (always-labeled + chosen pool rows)
    found: dict[str, np.ndarray] = field(default_factory=dict)  # text key -> teacher probabilities
    stats: CallStats = field(default_factory=CallStats)
    cached: int = 0
    sent: int = 0
    rounds: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class _Spend:
    """The budget and what it has bought: distinct texts held (cached or sent: a re-run picks the same
    set and pays nothing), texts sent and USD spent by this run, and the price per text."""

    PROBE = -1  # room() when a USD cap is set but no price is known yet: send one batch to learn it

    def __init__(self, calls: int | None, usd: float | None, price: float | None = None):
        self.calls_cap, self.usd_cap = calls, usd
        self.price = price  # USD per text: measured on this run, else what the last run measured
        self.sent = 0
        self.usd = 0.0

    def add(self, stats: CallStats) -> None:
        self.sent += stats.texts_sent
        self.usd += float(stats.usage.get("cost_usd", 0.0))
        if self.sent and self.usd > 0:
            self.price = self.usd / self.sent

    def room(self, held: int) -> int | None:
        """More distinct texts the budget allows beyond ``held`` (None: no limit; PROBE: price unknown)."""
        rooms = []
        if self.calls_cap is not None:
            rooms.append(max(self.calls_cap - held, 0))
        if self.usd_cap is not None:
            if self.price is None:
                return self.PROBE if not rooms or rooms[0] > 0 else 0
            rooms.append(max(int(self.usd_cap / self.price) - held, 0))
        return min(rooms) if rooms else None


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_state(path: Path | None, fingerprint: str) -> list[dict[str, Any]]:
    if path is None or not path.is_file():
        return []
    try:
        state = read_json(path)
    except (OSError, ValueError):
        log.warning("%s is unreadable: starting the rounds again", path)
        return []
    if state.get("format") != STATE_FORMAT or state.get("fingerprint") != fingerprint:
        log.info("%s belongs to other data or settings: starting the rounds again", path)
        return []
    return list(state.get("rounds") or [])


def _save_state(path: Path | None, fingerprint: str, rounds: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    if path is not None:
        write_json(path, {"format": STATE_FORMAT, "fingerprint": fingerprint, **extra, "rounds": rounds})


def diverse_pick(margins: np.ndarray, predicted: np.ndarray, n: int, candidates: int) -> np.ndarray:
    """Positions of ``n`` uncertain rows: the ``n * candidates`` smallest margins, taken round-robin
    over the predicted classes (each class's most uncertain first), so one round spans the confusions."""
    order = np.argsort(margins, kind="stable")[: n * candidates]
    queues: dict[int, list[int]] = {}
    for i in order:
        queues.setdefault(int(predicted[i]), []).append(int(i))
    # classes in the order of their most uncertain row
    lanes = sorted(queues.values(), key=lambda q: margins[q[0]])
    picked: list[int] = []
    depth = 0
    while len(picked) < n and any(depth < len(q) for q in lanes):
        for q in lanes:
            if depth < len(q) and len(picked) < n:
                picked.append(q[depth])
        depth += 1
    return np.array(picked, dtype=np.int64)


def partition(rows, validation_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(always labeled, validation slice) masks of the rows; the pool is ``~always``."""
    from pipeline.distill.data import TRANSFER_SPLITS, in_validation

    split = rows["split"].to_numpy()
    origin = rows["origin_id"] if "origin_id" in rows else rows["id"]
    vkeys = [o if isinstance(o, str) and o else i for o, i in zip(origin, rows["id"])]
    transfer = np.isin(split, TRANSFER_SPLITS)
    in_val = in_validation(vkeys, validation_share) & transfer
    pool = transfer & ~in_val & (split != "labeled")
    return ~pool, in_val


def label_within_budget(rows, keys: list[str], params, teacher, send, state_path: str | Path | None) -> Plan:
    """Label the always-labeled rows, then the pool by ``label.strategy`` within ``label.budget``."""
    cfg = params.label
    fixed, in_val = partition(rows, params.distill.validation_share)
    pool = ~fixed
    texts = rows["text"].astype(str).tolist()
    ids = rows["id"].astype(str).tolist()
    state_path = Path(state_path) if state_path else None
    spend = _Spend(cfg.budget.calls, cfg.budget.usd, _saved_price(state_path, teacher.fingerprint))
    plan = Plan(wanted=fixed.copy())
    seen: set[str] = set()  # distinct texts asked for so far (cached or sent)

    def within(idx: np.ndarray, limit: int | None) -> np.ndarray:
        """The rows of ``idx`` (in order) whose texts are already held or among the first ``limit`` new ones."""
        if limit is None:
            return idx
        new: set[str] = set()
        keep = []
        for i in idx:
            key = keys[i]
            if key not in seen and key not in new:
                if len(new) >= limit:
                    continue
                new.add(key)
            keep.append(i)
        return np.array(keep, dtype=np.int64)

    def ask(idx: np.ndarray, what: str) -> np.ndarray:
        """Teacher answers for rows ``idx`` (in order of preference) within the budget; the rows that have one.

        A text counts against the budget once the labeled set holds it, cached or sent: a re-run takes
        the same texts from the cache and sends nothing."""
        idx = np.asarray(idx, dtype=np.int64)
        while True:
            room = spend.room(len(seen))
            probe = room == _Spend.PROBE  # a USD cap but no price yet: one batch at a time until one is known
            take = within(idx, cfg.batch_size if probe else room)
            before = len(seen)
            answers = cached_teacher_probs(teacher, [texts[i] for i in take], cfg.cache_dir, send=send)
            seen.update(answers.probs)
            plan.found.update(answers.probs)
            plan.stats.merge(answers.stats)
            plan.cached += answers.cached
            plan.sent += answers.sent
            spend.add(answers.stats)
            if not probe or len(take) == len(idx) or len(seen) == before:
                break
        left_out = len({keys[i] for i in idx} - set(plan.found))
        if left_out:
            log.info("label budget: %d %s texts not labeled (budget spent or teacher failures)", left_out, what)
        return idx[[keys[i] in plan.found for i in idx]]

    fixed_idx = np.flatnonzero(fixed)
    got = ask(fixed_idx, "always-labeled")
    if len(got) < len(fixed_idx) and spend.room(len(seen)) == 0:
        missing = len({keys[i] for i in fixed_idx} - set(plan.found))
        raise DataError(f"label.budget ran out on the rows that are always labeled (gold, validation slice, test): "
                        f"{missing} of their texts got no teacher label; raise label.budget.calls / usd to at "
                        f"least cover them (spent {spend.sent} texts, ${spend.usd:.4f})")
    pool_idx = np.flatnonzero(pool)
    plan.summary = {"strategy": cfg.strategy, "pool_rows": int(len(pool_idx)), "always_labeled_rows": int(len(fixed_idx)),
                    "budget": cfg.budget.model_dump(), "always_labeled_texts": len(seen)}
    room = lambda: spend.room(len(seen))  # noqa: E731
    if cfg.strategy == "all":
        order = pool_idx[np.argsort([keys[i] for i in pool_idx], kind="stable")]  # hash order: a uniform sample
        chosen = ask(order, "pool")
        plan.wanted[chosen] = True
        plan.rounds.append(_round_record(0, len(chosen), len(chosen), len(seen), spend, None))
        _save_state(state_path, "", plan.rounds, {"strategy": "all", "price": _price_record(spend, teacher)})
    else:
        _active_rounds(plan, ask, room, within, seen, rows, keys, texts, ids, fixed, in_val, pool_idx, spend, params,
                       teacher, state_path)
    plan.summary.update(pool_labeled_rows=int(plan.wanted[pool_idx].sum()), teacher_texts=len(seen),
                        texts_sent=spend.sent, usd=spend.usd, rounds=len(plan.rounds))
    return plan


def _price_record(spend: _Spend, teacher) -> dict[str, Any] | None:
    return None if spend.price is None else {"usd_per_text": spend.price, "teacher": teacher.fingerprint}


def _saved_price(path: Path | None, fingerprint: str) -> float | None:
    """The USD per text the last run measured for this teacher (a re-run that sends nothing still knows it)."""
    if path is None or not path.is_file():
        return None
    try:
        price = read_json(path).get("price") or {}
    except (OSError, ValueError, AttributeError):
        return None
    return float(price["usd_per_text"]) if price.get("teacher") == fingerprint else None


def _round_record(r: int, chosen: int, labeled: int, held: int, spend: _Spend, agreement: float | None) -> dict[str, Any]:
    return {"round": r, "chosen": chosen, "pool_labeled": labeled, "teacher_texts": held, "texts_sent": spend.sent,
            "usd": round(spend.usd, 6), "val_agreement": agreement}


def _active_rounds(plan: Plan, ask, room, within, seen, rows, keys, texts, ids, fixed, in_val, pool_idx,
                   spend: _Spend, params, teacher, state_path) -> None:
    a = params.label.active
    fingerprint = _fingerprint(teacher.fingerprint, params.seed, a.model_dump(), params.label.budget.model_dump(),
                               params.distill.student.model_dump(), params.distill.featurizer.model_dump(),
                               {k: v.model_dump() for k, v in params.distill.losses.items()},
                               params.distill.validation_share, hashlib.sha256("\x1f".join(
                                   ids[i] + "\x1e" + keys[i] for i in pool_idx).encode()).hexdigest())
    saved = _load_state(state_path, fingerprint)
    by_id = {ids[i]: i for i in pool_idx}
    n_initial = max(1, int(round(a.initial_share * len(pool_idx))))
    n_round = max(1, int(round(a.round_share * len(pool_idx))))
    rng = np.random.default_rng(params.seed)
    labeled = np.zeros(len(rows), dtype=bool)  # pool rows with an answer
    asked = np.zeros(len(rows), dtype=bool)  # pool rows chosen in some round (answered or failed)
    rounds: list[dict[str, Any]] = []
    best, stale = -1.0, 0
    current: tuple[int, Any] | None = None  # (pool rows labeled, quick student trained on them)

    def trained():
        nonlocal current
        if current is None or current[0] != int(labeled.sum()):
            current = (int(labeled.sum()), _quick_student(plan, rows, keys, texts, fixed, in_val, labeled, params))
        return current[1]

    r = 0
    while True:
        remaining = np.array([i for i in pool_idx if not asked[i]], dtype=np.int64)
        if not len(remaining) or room() == 0:
            break
        if r < len(saved) and saved[r].get("chosen_ids"):
            chosen = np.array([by_id[i] for i in saved[r]["chosen_ids"] if i in by_id], dtype=np.int64)
            how = "resumed"
        elif r == 0:
            chosen = np.sort(rng.choice(remaining, size=min(n_initial, len(remaining)), replace=False))
            how = "random"
        else:
            chosen = _select(trained(), keys, texts, remaining, n_round, a.candidates)
            how = "uncertain"
        left = room()
        if left is not None and left >= 0:  # never choose more distinct texts than the budget still buys
            chosen = within(chosen, left)
        record = {"round": r, "how": how, "chosen_ids": [ids[i] for i in chosen], "done": False}
        rounds = rounds[:r] + [record]
        extra = {"pool_rows": len(pool_idx), "price": _price_record(spend, teacher)}
        _save_state(state_path, fingerprint, rounds, extra)  # before asking: a killed run resumes this round
        got = ask(chosen, "pool")
        asked[chosen] = True
        labeled[got] = True
        plan.wanted[got] = True
        agreement = saved[r].get("val_agreement") if r < len(saved) and saved[r].get("done") else None
        if agreement is None:
            agreement = trained()[0]
        record.update(_round_record(r, int(len(chosen)), int(labeled.sum()), len(seen), spend, agreement), done=True)
        _save_state(state_path, fingerprint, rounds, {**extra, "price": _price_record(spend, teacher)})
        log.info("active labeling round %d (%s): %d chosen, %d of %d pool rows labeled, %d teacher texts "
                 "(%d sent by this run, $%.4f), validation agreement %.4f", r, how, len(chosen), labeled.sum(),
                 len(pool_idx), len(seen), spend.sent, spend.usd, agreement)
        if agreement > best + a.min_gain:
            best, stale = agreement, 0
        else:
            stale += 1
            if stale >= a.patience:
                log.info("active labeling: no gain of %.3g for %d rounds; stopping", a.min_gain, a.patience)
                break
        r += 1
    plan.rounds = [{k: v for k, v in rec.items() if k != "chosen_ids"} for rec in rounds]


def _training_view(plan: Plan, rows, keys, texts, fixed, in_val, labeled):
    """A soft-label transfer set of what is labeled so far (no gold: selection needs only the teacher)."""
    from pipeline.distill.data import TransferSet

    split = rows["split"].to_numpy()
    train = ((fixed & ~in_val & (split == "labeled")) | labeled)
    train &= np.array([k in plan.found for k in keys])
    val = in_val & (split != "augmented") & np.array([k in plan.found for k in keys])
    tr, va = np.flatnonzero(train), np.flatnonzero(val)
    if not len(tr) or not len(va):
        raise DataError(f"active labeling needs labeled training and validation rows (have {len(tr)} and {len(va)})")
    k = len(next(iter(plan.found.values())))
    labels = [str(i) for i in range(k)]
    return TransferSet(labels=labels, train_texts=[texts[i] for i in tr],
                       train_probs=np.stack([plan.found[keys[i]] for i in tr]).astype(np.float32),
                       train_targets=np.full(len(tr), -1, dtype=np.int64),
                       val_texts=[texts[i] for i in va],
                       val_probs=np.stack([plan.found[keys[i]] for i in va]).astype(np.float32))


def _quick_student(plan: Plan, rows, keys, texts, fixed, in_val, labeled, params):
    """Train the quick student; return (validation agreement, loaded student, temperature)."""
    from pipeline.distill import train_transfer_set
    from pipeline.distill.checkpoint import load_student
    from pipeline.distill.train import predict_logits
    from pipeline.evaluate import metrics as m
    from pipeline.students.featurize import Featurizer

    data = _training_view(plan, rows, keys, texts, fixed, in_val, labeled)
    a = params.label.active
    d = params.distill  # only the keys the label stage's dvc.yaml entry tracks, plus label.active's schedule
    cfg = type(d)(student=d.student, featurizer=d.featurizer, losses=d.losses, validation_share=d.validation_share,
                  epochs=a.epochs, patience=a.epochs, lr=a.lr, batch_size=a.batch_size, processes=1, use_gold=False)
    with tempfile.TemporaryDirectory(prefix="distill-active-") as tmp:
        result = train_transfer_set(data, cfg, params.seed, tmp)
        student = load_student(result.checkpoint)
    featurizer = Featurizer(student.featurizer_spec)
    val_probs = softmax(predict_logits(student.model, featurizer, data.val_texts))
    temperature = m.fit_temperature(val_probs, data.val_probs.argmax(axis=1))
    return float(result.metrics["val_agreement"]), (student, featurizer), temperature


def _select(quick, keys, texts, remaining, n: int, candidates: int) -> np.ndarray:
    """The ``n`` pool rows (of ``remaining``) the quick student is least sure of, spread over classes."""
    from pipeline.distill.train import predict_logits
    from pipeline.evaluate import metrics as m

    _, (student, featurizer), temperature = quick
    probs = m.scale(softmax(predict_logits(student.model, featurizer, [texts[i] for i in remaining])), temperature)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    # one row per distinct text: a duplicate of a chosen text would be a second copy of the same answer
    seen: set[str] = set()
    unique = []
    for pos, i in enumerate(remaining):
        if keys[i] not in seen:
            seen.add(keys[i])
            unique.append(pos)
    unique_arr = np.array(unique, dtype=np.int64)
    picked = diverse_pick(margins[unique_arr], probs[unique_arr].argmax(axis=1), n, candidates)
    return np.sort(remaining[unique_arr[picked]])
