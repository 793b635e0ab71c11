"""A real student bundle on eight BANKING77 intents, its teacher, and prediction-log rows from it.

Built once per session: the student is trained and exported with the project's own functions on the
BANKING77 train rows of those intents; half of their test rows are the reference (ingested ``test``
split), the other half is held-out in-domain traffic; test rows of other intents are shifted traffic.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import require_banking77
from tests.helpers.banking_teacher import LABELS, oracle


@pytest.fixture(scope="session")
def banking_world(tmp_path_factory):
    from pipeline.config import parse_params
    from pipeline.distill import train_from_frames
    from pipeline.export import export_bundle

    root = require_banking77()
    train, test = pd.read_csv(root / "train.csv"), pd.read_csv(root / "test.csv")
    ours_train = train[train.category.isin(LABELS)].reset_index(drop=True)
    ours_test = test[test.category.isin(LABELS)].sample(frac=1.0, random_state=0).reset_index(drop=True)
    reference_test, traffic = ours_test.iloc[: len(ours_test) // 2], ours_test.iloc[len(ours_test) // 2:]
    other = test[~test.category.isin(LABELS)].sample(n=400, random_state=1).reset_index(drop=True)

    rng = np.random.default_rng(0)
    split = np.where(rng.random(len(ours_train)) < 0.1, "labeled", "unlabeled")
    rows = pd.concat([
        pd.DataFrame({"text": ours_train.text, "label": ours_train.category, "split": split}),
        pd.DataFrame({"text": reference_test.text, "label": reference_test.category, "split": "test"}),
    ], ignore_index=True)
    rows["id"] = [hashlib.sha1(f"{i}:{t}".encode()).hexdigest()[:16] for i, t in enumerate(rows.text)]
    rows["source"], rows["group"] = "banking77", None
    ingested = rows[["id", "text", "label", "split", "source", "group"]]
    probs = oracle(ingested.text.tolist()).astype(np.float32)
    labels_frame = pd.DataFrame({"id": ingested.id, "text": ingested.text, "split": ingested.split, "origin_id": None,
                                 "probs": list(probs), "pred": [LABELS[i] for i in probs.argmax(1)],
                                 "fingerprint": "oracle"})
    base = tmp_path_factory.mktemp("banking-world")
    params = parse_params({"ingest": {}, "distill": {"featurizer": {"buckets": 4096}, "epochs": 8, "patience": 3,
                                                     "student": {"name": "hashed-ngram-bag", "kwargs": {"dim": 32}},
                                                     "lr": 0.05, "validation_share": 0.1},
                           "export": {"latency_texts": 10}})
    trained = train_from_frames(ingested, labels_frame, LABELS, params.distill, seed=7, out_dir=base / "student")
    metrics = export_bundle(trained.checkpoint, base / "bundle", params.export, ingested.text.tolist()[:200])
    assert metrics["passed"], metrics
    ingested.to_parquet(base / "ingested.parquet", index=False)
    return {"base": base, "bundle": base / "bundle", "ingested": base / "ingested.parquet", "train": trained.metrics,
            "traffic": traffic.text.tolist(), "shifted": other.text.tolist()}


def log_rows(bundle, texts: list[str], ts: float, version: str = "v1") -> list[dict]:
    """Prediction-log rows (docs/contracts.md) for what ``bundle`` answers on ``texts``."""
    from pipeline.keys import text_key

    probs = bundle.predict_proba(texts)
    return [{"request_id": f"req-{i // 16}", "ts": ts + i * 0.01, "text_hash": text_key(t), "text": t,
             "model_version": version, "route": "stable", "label": bundle.labels[int(p.argmax())],
             "confidence": float(p.max()), "probs": json.dumps([round(float(x), 6) for x in p]),
             "stable_label": None, "latency_ms": 2.0} for i, (t, p) in enumerate(zip(texts, probs))]


def now() -> float:
    return time.time()


def run_kwargs(world: dict, root, teacher_dir, **extra) -> dict:
    """``run_monitor`` keyword arguments over the banking world's bundle and reference (no Prefect event)."""
    return dict(bundle_dir=world["bundle"], ingested_path=world["ingested"], teacher_dir=teacher_dir, root=root,
                emit=False, **extra)


def shifted_flow_kwargs(world: dict, repo, tmp_path) -> dict:
    """The monitor flow's arguments for a run over shifted traffic: the copy's params get the banking
    oracle as teacher (label cache in ``tmp_path``, 120 teacher texts), and the prediction log in
    ``tmp_path`` holds the world's shifted texts from two minutes ago."""
    import yaml

    from pipeline import predlog
    from pipeline.bundle import load_bundle

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["teacher"] = {"kind": "python", "python": {"function": "tests.helpers.banking_teacher:oracle", "labels": LABELS}}
    params["label"]["cache_dir"] = str(tmp_path / "labels")
    params["monitor"]["teacher_budget"] = 120
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    db = f"sqlite:///{tmp_path}/predictions.db"
    engine, tbl = predlog.connect(db)
    predlog.insert_rows(engine, tbl, log_rows(load_bundle(world["bundle"]), world["shifted"], ts=time.time() - 120))
    engine.dispose()
    return dict(root=str(repo), bundle=str(world["bundle"]), data=str(world["ingested"]), teacher_dir=str(tmp_path),
                log_url=db)
