"""Units of the canary rollout: how a step is judged, and what finish() records in the registry."""

from __future__ import annotations

import pytest

from pipeline.config import parse_params
from pipeline.release.canary import judge_step

pytestmark = pytest.mark.unit


def _cfg(**kw):
    return parse_params({"ingest": {}, "canary": {"min_requests": 10, **kw}}).canary


GOOD = {"canary_rows": 50, "error_rate": 0.0, "p95_ms": 3.0, "p99_ms": 6.0, "stable_agreement": 0.95,
        "teacher_agreement": 0.9}


def test_judge_passes_fails_and_holds():
    assert judge_step(0.25, GOOD, _cfg()).decision == "pass"
    v = judge_step(0.25, {**GOOD, "stable_agreement": 0.5, "p99_ms": 500.0}, _cfg())
    assert v.decision == "fail" and len(v.problems) == 2
    assert any("canary.max_p99_ms" in p for p in v.problems)
    assert judge_step(0.25, {**GOOD, "error_rate": 0.05}, _cfg()).decision == "fail"
    assert judge_step(0.25, {**GOOD, "teacher_agreement": None}, _cfg()).decision == "fail"  # unmeasured is no pass
    assert judge_step(0.25, {**GOOD, "teacher_agreement": None}, _cfg(teacher_sample=0)).decision == "pass"
    held = judge_step(0.25, {**GOOD, "canary_rows": 3}, _cfg())
    assert held.decision == "hold" and "canary.min_requests" in held.problems[0]


def test_judge_rolls_back_a_step_in_which_every_request_failed():
    """No answered canary request at all, only errors: a certain failure, not a hold for lack of traffic."""
    v = judge_step(0.05, {"canary_rows": 0, "canary_requests": 0, "canary_errors": 40, "error_rate": 1.0}, _cfg())
    assert v.decision == "fail" and "40 of 40 canary requests failed" in v.problems[0]


def test_judge_rolls_back_on_errors_before_the_step_has_its_traffic():
    """11 answered and 2,408 failed (the case that once held for ten minutes): errors decide first."""
    v = judge_step(0.05, {"canary_rows": 11, "canary_requests": 11, "canary_errors": 2408, "error_rate": 0.99545}, _cfg())
    assert v.decision == "fail" and "canary.max_error_rate" in v.problems[0]


def test_judge_holds_when_a_few_errors_prove_nothing_yet():
    """1 error in 30 attempts is above 1 % but, at 99 % confidence, not yet proof: too little traffic, hold."""
    v = judge_step(0.05, {"canary_rows": 29, "canary_requests": 29, "canary_errors": 1, "error_rate": 0.03333},
              _cfg(min_requests=40))
    assert v.decision == "hold" and "canary.min_requests" in v.problems[0]


def test_canary_steps_are_validated():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="canary.steps"):
        parse_params({"ingest": {}, "canary": {"steps": [0.5, 0.25]}})


def test_finish_records_promote_rollback_and_hold_in_the_registry(tmp_path, bundles):
    import shutil

    from pipeline.release.canary import ACTOR, StepVerdict, finish
    from pipeline.registry import Registry

    reg = Registry(f"sqlite:///{tmp_path}/r.db", tmp_path / "artifacts")
    ids = []
    for i in range(4):  # four versions of one real bundle (the registry loads what it registers)
        folder = tmp_path / f"b{i}"
        shutil.copytree(bundles["good_a"], folder)
        (folder / "note.txt").write_text(str(i))
        ids.append(reg.register(folder, {"passed": True}, {}, None, actor="t", reason="t", repo_dir=tmp_path).id)
    reg.promote(ids[0], "production", actor="t", reason="base")
    ok = StepVerdict(1.0, "pass", dict(GOOD), [])

    reg.promote(ids[1], "canary", actor=ACTOR, reason="start", weight=0.05)
    assert finish(reg, ids[1], [StepVerdict(0.05, "pass", dict(GOOD), []), ok]) == "promote"
    assert reg.get_alias("production").version.id == ids[1] and reg.get_alias("canary").version is None
    entry = reg.history(alias="production")[-1]
    assert entry.actor == ACTOR and entry.action == "promote" and len(entry.numbers["steps"]) == 2

    reg.promote(ids[2], "canary", actor=ACTOR, reason="start", weight=0.05)
    bad = StepVerdict(0.05, "fail", {**GOOD, "stable_agreement": 0.1}, ["stable_agreement 0.1 below ..."])
    assert finish(reg, ids[2], [bad]) == "rollback"
    assert reg.get_alias("production").version.id == ids[1] and reg.get_alias("canary").version is None
    entry = reg.history(alias="canary")[-1]
    assert entry.action == "clear" and entry.previous == ids[2] and entry.numbers["problems"]

    reg.promote(ids[3], "canary", actor=ACTOR, reason="start", weight=0.25)
    starving = StepVerdict(0.25, "hold", {"canary_rows": 3}, ["only 3 canary predictions"])
    assert finish(reg, ids[3], [starving]) == "hold"
    state = reg.get_alias("canary")
    assert state.version.id == ids[3] and state.weight == 0.25
    assert reg.history(alias="canary")[-1].reason.startswith("hold")
    reg.close()


def test_a_new_label_set_is_compared_on_shared_labels_and_named_in_the_verdict(tmp_path):
    """A candidate trained on a changed label set: texts moved to a new label, or answered by stable with a
    dropped one, cannot agree. They are left out of stable_agreement and counted; a failure names the change."""
    import time

    from pipeline import predlog
    from pipeline.config import parse_params
    from pipeline.release.canary import label_change, measure_step

    change = label_change(["billing", "refund", "spam"], ["billing", "refund", "fraud"])
    assert change == {"labels_added": ["fraud"], "labels_removed": ["spam"]}
    assert label_change(["a", "b"], ["b", "a"]) == {}

    engine, tbl = predlog.connect(f"sqlite:///{tmp_path}/log.db")
    now = time.time()
    answers = [("billing", "billing"), ("refund", "refund"), ("refund", "billing"),  # shared labels: 2 of 3 agree
               ("fraud", "billing"), ("fraud", "refund"), ("billing", "spam")]          # label-set moves
    predlog.insert_rows(engine, tbl, [
        {"request_id": f"r{i}", "ts": now, "text_hash": f"h{i}", "text": None, "model_version": "v2",
         "route": "canary", "label": own, "confidence": 0.9, "probs": "[]", "stable_label": stable,
         "latency_ms": 1.0, "source": "student", "student_label": own, "run_id": "run", "seq": i}
        for i, (own, stable) in enumerate(answers)])
    params = parse_params({"ingest": {}, "canary": {"teacher_sample": 0}})
    plain = measure_step(engine, tbl, "v2", now - 1, None, None, params)
    assert plain["stable_agreement"] == round(2 / 6, 4) and "stable_new_label_rows" not in plain
    moved = measure_step(engine, tbl, "v2", now - 1, None, None, params, change)
    assert moved["stable_agreement"] == round(2 / 3, 4) and moved["stable_new_label_rows"] == 3
    assert moved["labels_added"] == ["fraud"] and moved["labels_removed"] == ["spam"]
    engine.dispose()

    # the measured agreement in a step that has its traffic, errors and latency (GOOD's other numbers)
    verdict = judge_step(0.25, {**moved, **{k: v for k, v in GOOD.items() if k != "stable_agreement"}}, _cfg())
    assert verdict.decision == "fail"
    assert "added ['fraud'], removed ['spam']" in verdict.problems[0] and "3 left out" in verdict.problems[0]
    same = judge_step(0.25, {**GOOD, "stable_agreement": 0.5}, _cfg())
    assert same.problems == ["stable_agreement 0.5 below canary.min_stable_agreement = 0.8"]
    from pipeline.release.canary import Rollout, rollout_markdown

    report = rollout_markdown(Rollout("rollback", "v2", "v1", False, [verdict])).splitlines()
    assert report[1] == "" and report[2].startswith("The candidate changes the label set: added ['fraud'], removed ['spam']")
