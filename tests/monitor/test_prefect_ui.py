"""The Prefect UI as an operator sees it: a real `prefect server start` (API and UI) on 127.0.0.1, the real
monitor flow over shifted traffic run against it, and the flow run's page rendered in headless Chromium
(Debian's chromium, which .ci/run installs). The test reads the rendered page: the run's name, its
Breach state with the breached checks, its tags and the summary artifact's headline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.serve.process import free_port
from tests.monitor.conftest import shifted_flow_kwargs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def prefect_ui(tmp_path):
    """``prefect server start`` with its UI, in a scratch PREFECT_HOME; yields the base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_UI_API_URL=f"{base}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "prefect-server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"prefect server did not start: {(tmp_path / 'prefect-server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(20)
        log.close()


def _rendered(url: str) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={profile}",
                              "--window-size=1400,2000", "--virtual-time-budget=20000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).replace("&lt;", "<").replace("&gt;", ">")


def test_the_run_page_shows_the_monitor_breach(prefect_ui, banking_world, repo_copy, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.monitor import monitor

    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is not installed: apt-get install chromium (.ci/run installs it)")
    monkeypatch.delenv("DISTILL_ALERT_WEBHOOK_URL", raising=False)
    kwargs = shifted_flow_kwargs(banking_world, repo_copy, tmp_path)
    with temporary_settings(updates={PREFECT_API_URL: f"{prefect_ui}/api"}):
        state = monitor(**kwargs, return_state=True)
    assert state.name == "Breach"
    run_id = state.state_details.flow_run_id

    page = _rendered(f"{prefect_ui}/runs/flow-run/{run_id}")
    assert "monitor 20" in page, page[:2000]  # the run's name: "monitor <date> <commit>"
    assert "Breach" in page and "breach: " in page and "teacher_agreement" in page, page[:3000]
    for tag in ("distill", "monitor:breach"):
        assert tag in page, (tag, page[:3000])

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with temporary_settings(updates={PREFECT_API_URL: f"{prefect_ui}/api"}), get_client(sync_client=True) as client:
        (summary,) = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[run_id])))
    artifact = _rendered(f"{prefect_ui}/artifacts/artifact/{summary.id}")  # the markdown, rendered
    assert "Monitor: BREACH (" in artifact and "teacher agreement" in artifact, artifact[:3000]
