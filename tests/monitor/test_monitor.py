"""The monitor end to end without Prefect: real bundle, real SQLite prediction log, real Evidently
workspace, a real webhook receiver on 127.0.0.1, DVC-tracked feedback read by the label stage."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import predlog
from tests.monitor.conftest import log_rows, run_kwargs

pytestmark = pytest.mark.e2e


class Receiver:
    """A webhook endpoint that records every POST body; answers ``statuses`` in turn, then 200."""

    def __init__(self, statuses=()):
        self.bodies: list[dict] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.bodies.append(json.loads(body))
                code = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def monitor_params(root, **monitor):
    from pipeline.config import parse_params
    from tests.helpers.banking_teacher import LABELS

    return parse_params({
        "ingest": {},
        "teacher": {"kind": "python", "python": {"function": "tests.helpers.banking_teacher:oracle", "labels": LABELS}},
        "label": {"cache_dir": str(root / ".cache/labels"), "batch_size": 64},
        "monitor": {"window_minutes": None, "webhook_backoff_s": 0.05, **monitor},
    })


def test_in_domain_is_quiet_shifted_traffic_alerts_once_and_feeds_back(banking_world, repo_copy, monkeypatch, tmp_path):
    from pipeline.bundle import load_bundle
    from pipeline.monitor import run_monitor

    bundle = load_bundle(banking_world["bundle"])
    db = f"sqlite:///{tmp_path}/predictions.db"
    engine, tbl = predlog.connect(db)
    params = monitor_params(repo_copy)
    kw = run_kwargs(banking_world, repo_copy, tmp_path, log_url=db)
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("DISTILL_TEST_CALL_LOG", str(calls))
    with Receiver() as hook:
        monkeypatch.setenv("DISTILL_ALERT_WEBHOOK_URL", hook.url)
        # in-domain: held-out texts of the student's own intents
        predlog.insert_rows(engine, tbl, log_rows(bundle, banking_world["traffic"], ts=1_000.0))
        quiet = run_monitor(params, now=2_000.0, **kw)
        s = quiet.summary.to_dict()
        assert quiet.status == "ok", s["verdict"]
        assert not quiet.alerted and hook.bodies == []
        assert s["rows"] == len(banking_world["traffic"])
        assert s["teacher"]["agreement"] >= params.monitor.thresholds.agreement_floor
        assert s["drift"]["drift_share"] <= params.monitor.thresholds.drift_share_ceiling

        # shifted: other intents the student never saw, twice the volume of one label's worth
        predlog.insert_rows(engine, tbl, log_rows(bundle, banking_world["shifted"], ts=2_500.0))
        loud = run_monitor(params, now=3_000.0, **kw)
    s = loud.summary.to_dict()
    assert loud.status == "breach" and loud.alerted
    assert s["rows"] == len(banking_world["shifted"])  # only the new window
    checks = {b["check"] for b in s["verdict"]["breaches"]}
    assert "teacher_agreement" in checks and s["teacher"]["agreement"] < 0.5
    assert s["drift"]["columns"]["text"]["drifted"] and s["drift"]["columns"]["oov_share"]["drifted"]
    # exactly one alert, Slack-shaped, carrying the numbers and where the report is
    assert len(hook.bodies) == 1 and s["alert"]["sent"] and s["alert"]["attempts"] == 1
    body = hook.bodies[0]
    assert set(body) == {"text", "blocks"} and "teacher_agreement" in body["text"]
    flat = json.dumps(body)
    assert f"{s['teacher']['agreement']:.4g}" in flat and "reports/monitor.json" in flat
    # the report file is this run's
    report = json.loads((repo_copy / "reports/monitor.json").read_text())
    assert report["run_id"] == s["run_id"] and report["verdict"]["status"] == "breach"
    assert (repo_copy / "reports/monitor.html").stat().st_size > 10_000

    # teacher budget and cache: every distinct text paid once over both runs
    sent = calls.read_text().split()
    assert len(sent) == len(set(sent)) == s["teacher"]["sent"] + quiet.summary.teacher["sent"]
    assert s["teacher"]["sent"] <= params.monitor.teacher_budget

    # Evidently workspace: 2 snapshots per run, dashboard with the panels
    ws = repo_copy / ".distill/evidently" / s["workspace"]["project_id"]
    assert len(list((ws / "snapshots").glob("*.json"))) == 4
    panels = [p["title"] for p in json.loads((ws / "dashboard.json").read_text())["panels"]]
    assert set(panels) >= {"Teacher agreement", "Drift share", "Label mix", "Confidence"}
    assert len(panels) == len(set(panels))

    # feedback: the disagreements, as a DVC-tracked part
    part = repo_copy / s["feedback"]["path"] if not s["feedback"]["path"].startswith("/") else None
    from pathlib import Path
    part = Path(s["feedback"]["path"])
    assert s["feedback"]["dvc"] and part.with_suffix(".parquet.dvc").exists()
    import pandas as pd

    fb = pd.read_parquet(part)
    assert len(fb) == s["feedback"]["rows"] > 50
    assert (fb.student_label != fb.teacher_label).all() and set(fb.text) <= set(banking_world["shifted"])


def test_feedback_parts_join_the_next_transfer_set(banking_world, tmp_path, monkeypatch):
    import pandas as pd

    from pipeline.distill.data import build_transfer_set
    from pipeline.stages.label import main as label_main
    from pipeline.outputs import read_labels
    from pipeline.monitor.feedback import write_part
    from tests.helpers.banking_teacher import LABELS
    import yaml

    fb_dir = tmp_path / "feedback"
    new_texts = banking_world["shifted"][:12]
    write_part(pd.DataFrame({"text": new_texts, "student_label": "card_arrival", "teacher_label": "change_pin",
                             "ts": 1.0, "model_version": "v1"}), fb_dir, "run1")
    write_part(pd.DataFrame({"text": new_texts[:3], "student_label": "x", "teacher_label": "y", "ts": 2.0,
                             "model_version": "v1"}), fb_dir, "run2")  # repeats count once
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "ingest": {}, "teacher": {"kind": "python", "python": {"function": "tests.helpers.banking_teacher:oracle",
                                                                "labels": LABELS}},
        "label": {"cache_dir": str(tmp_path / "cache")}}))
    out = tmp_path / "labels.parquet"
    code = label_main(["--params", str(params), "--data", str(banking_world["ingested"]), "--teacher-dir", str(tmp_path),
                       "--out", str(out), "--metrics", str(tmp_path / "m.json"), "--feedback", str(fb_dir)])
    assert code == 0
    labels, names = read_labels(out)
    fed = labels[labels.split == "feedback"]
    assert sorted(fed.text) == sorted(new_texts)
    assert json.loads((tmp_path / "m.json").read_text())["feedback_rows"] == 12
    ingested = pd.read_parquet(banking_world["ingested"])
    data = build_transfer_set(ingested, labels, names, 0.1)
    assert set(new_texts) <= set(data.train_texts) | set(data.val_texts)


@pytest.mark.integration
def test_webhook_retries_with_backoff_and_a_dead_hook_is_not_fatal():
    from pipeline.monitor.alert import send_webhook

    with Receiver(statuses=[503, 500]) as hook:
        result = send_webhook(hook.url, {"text": "t"}, retries=3, backoff_s=0.01, timeout_s=2)
    assert result == {"sent": True, "attempts": 3, "status": 200} and len(hook.bodies) == 3
    with Receiver(statuses=[400]) as hook:  # a client error is not retried
        assert send_webhook(hook.url, {"text": "t"}, retries=3, backoff_s=0.01, timeout_s=2)["attempts"] == 1
    dead = send_webhook(hook.url, {"text": "t"}, retries=1, backoff_s=0.01, timeout_s=1)  # server closed
    assert dead["sent"] is False and dead["attempts"] == 2 and "Error" in dead["error"]
