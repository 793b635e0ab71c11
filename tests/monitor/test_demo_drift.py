"""The replay `distill demo --drift` sends (pipeline/demo.py, shifted_texts), on BANKING77 rather than the
demo's spam data: the monitor calls it a breach, where a shuffled replay of held-out traffic is ok."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import predlog
from tests.monitor.conftest import log_rows, run_kwargs
from tests.monitor.test_monitor import monitor_params

pytestmark = pytest.mark.e2e


def test_drift_replay_is_one_rare_class_of_new_texts_and_breaches(banking_world, repo_copy, tmp_path, monkeypatch):
    from pipeline.bundle import load_bundle
    from pipeline.demo import shifted_texts
    from pipeline.monitor import run_monitor

    monkeypatch.delenv("DISTILL_ALERT_WEBHOOK_URL", raising=False)
    ingested = pd.read_parquet(banking_world["ingested"])
    texts, label = shifted_texts(ingested, seed=7)
    pool = ingested[ingested["split"] != "test"]
    counts = pool["label"].value_counts()
    assert counts[label] == counts.min() and len(texts) == counts[label]
    assert texts == shifted_texts(ingested, seed=7)[0]  # the same replay every run
    known = set(ingested["text"])
    assert sum(t not in known for t in texts) >= 0.6 * len(texts)  # typos: mostly texts the pipeline never saw

    bundle = load_bundle(banking_world["bundle"])
    params = monitor_params(repo_copy, thresholds={"min_rows": 50})  # the rarest intent has about 80 texts
    kw = run_kwargs(banking_world, repo_copy, tmp_path)
    verdicts = {}
    for (name, replay), at in zip({"held-out": banking_world["traffic"], "drift": texts}.items(), (1_000.0, 3_000.0)):
        db = f"sqlite:///{tmp_path}/{name}.db"
        engine, tbl = predlog.connect(db)
        predlog.insert_rows(engine, tbl, log_rows(bundle, replay, ts=at))
        verdicts[name] = run_monitor(params, now=at + 500.0, log_url=db, **kw).summary  # the window since the last run
        engine.dispose()
    assert verdicts["held-out"].status == "ok", verdicts["held-out"].verdict
    drift = verdicts["drift"]
    assert drift.status == "breach" and "drift_share" in {b["check"] for b in drift.verdict.breaches}
    assert drift.drift["columns"]["label"]["drifted"]
