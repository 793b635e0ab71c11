"""The Evidently dashboard as an operator sees it: two real monitor runs, then `evidently ui` rendered in
headless Chromium (Debian's chromium, which .ci/run installs). The test reads the rendered page, not
just a PNG: panel titles, the latest run's counter values and the per-label legends."""

from pathlib import Path

import pytest

from pipeline import predlog
from tests.monitor.conftest import log_rows, run_kwargs
from tests.monitor.test_monitor import monitor_params

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")


def _require_chromium():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is not installed: apt-get install chromium (.ci/run and "
                    "scripts/system-deps.sh install it)")


def test_dashboard_shows_latest_values_thresholds_and_label_names(banking_world, repo_copy, tmp_path, monkeypatch):
    import re

    from pipeline.bundle import load_bundle
    from pipeline.monitor import run_monitor
    from scripts.evidently_screenshot import rendered_text, screenshot
    from tests.helpers.banking_teacher import LABELS

    _require_chromium()
    monkeypatch.delenv("DISTILL_ALERT_WEBHOOK_URL", raising=False)
    bundle = load_bundle(banking_world["bundle"])
    db = f"sqlite:///{tmp_path}/predictions.db"
    engine, tbl = predlog.connect(db)
    params = monitor_params(repo_copy)
    kw = run_kwargs(banking_world, repo_copy, tmp_path, log_url=db)
    predlog.insert_rows(engine, tbl, log_rows(bundle, banking_world["traffic"], ts=1_000.0))
    run_monitor(params, now=2_000.0, **kw)
    predlog.insert_rows(engine, tbl, log_rows(bundle, banking_world["shifted"], ts=2_500.0))
    latest = run_monitor(params, now=3_000.0, **kw).summary
    project = latest.workspace["project_id"]
    workspace = latest.workspace["path"]

    page = rendered_text(workspace, project)
    text = re.sub(r"<[^>]+>", " ", page)  # the page's visible words, SVG legends included
    for title in ("Teacher agreement (latest run)", "Drift share (latest run)", "Label mix",
                  "Recall against the teacher, per class"):
        assert title in text, f"panel {title!r} is not on the rendered dashboard"
    thresholds = params.monitor.thresholds
    assert f"alert below {thresholds.agreement_floor}" in text and f"alert above {thresholds.drift_share_ceiling}" in text
    # the thresholds are also series of their own (each drift snapshot records them), drawn beside the values
    import json

    recorded = {}
    for snap in (Path(workspace) / project / "snapshots").glob("*.json"):
        for m in json.loads(snap.read_text())["metric_results"].values():
            column = (m.get("metric_value_location") or {}).get("metric", {}).get("params", {}).get("column")
            if column in ("agreement_floor", "drift_share_ceiling"):
                recorded[column] = m["value"]
    assert recorded == {"agreement_floor": thresholds.agreement_floor,
                        "drift_share_ceiling": thresholds.drift_share_ceiling}, recorded
    # the counters show the latest run's values, not a count of runs
    agreement = latest.teacher["agreement"]
    assert agreement < 0.5
    shown = {f"{agreement:.{d}f}" for d in (2, 3, 4)} | {f"{agreement:.4g}"}
    assert any(s in text for s in shown), (shown, text[:3000])
    # per-label series carry their label: every intent the student serves is named in the legends
    missing = [name for name in LABELS if name not in text]
    assert not missing, f"labels not named on the dashboard: {missing}"

    png = screenshot(workspace, str(tmp_path / "shot.png"), project_id=project)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
