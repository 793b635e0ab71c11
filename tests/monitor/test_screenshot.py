"""The dashboard screenshot script against a workspace the monitor wrote (needs Debian chromium)."""

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)")
def test_screenshot_of_a_monitor_workspace(banking_world, tmp_path):
    from pipeline.monitor import reports
    from scripts.evidently_screenshot import screenshot

    ws, project = reports.open_project(tmp_path / "ws", "distill monitor")
    png = screenshot(str(tmp_path / "ws"), str(tmp_path / "shot.png"), project_id=str(project.id))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
