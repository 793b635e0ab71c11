"""Screenshot of the monitor dashboard: start `evidently ui` on 127.0.0.1 for a workspace, capture it with
headless Chromium, stop the UI.

    python scripts/evidently_screenshot.py --workspace .distill/evidently --out reports/evidently.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def evidently_ui(workspace: str, timeout_s: float = 60.0):
    """``evidently ui`` for ``workspace`` on a free 127.0.0.1 port, until the block ends; yields its URL."""
    port = free_port()
    env = dict(os.environ, DO_NOT_TRACK="1")
    ui = subprocess.Popen([sys.executable, "-m", "evidently.cli", "ui", "--host", "127.0.0.1", "--port", str(port),
                           "--workspace", workspace], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(base + "/api/projects", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    raise RuntimeError("evidently ui did not start") from None
                time.sleep(0.5)
        yield base
    finally:
        ui.terminate()
        ui.wait(10)


def _chromium(chromium: str, url: str, *flags: str, width: int = 1400, height: int = 1600) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        out = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                              "--virtual-time-budget=15000", *flags, url],
                             check=True, timeout=120, capture_output=True, text=True)
        return out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(workspace: str, out: str, chromium: str = "/usr/bin/chromium", project_id: str | None = None,
               width: int = 1400, height: int = 1600, timeout_s: float = 60.0) -> Path:
    with evidently_ui(workspace, timeout_s) as base:
        url = base + (f"/projects/{project_id}" if project_id else "/")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        _chromium(chromium, url, f"--screenshot={Path(out).resolve()}", width=width, height=height)
        return Path(out)


def rendered_text(workspace: str, project_id: str, chromium: str = "/usr/bin/chromium", timeout_s: float = 60.0) -> str:
    """The dashboard page's DOM after its scripts ran (panel titles, counter values, plot legends), as
    headless Chromium rendered it: what a test can read where a screenshot only shows pixels."""
    with evidently_ui(workspace, timeout_s) as base:
        return _chromium(chromium, f"{base}/projects/{project_id}", "--dump-dom", height=4000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default=".distill/evidently")
    parser.add_argument("--out", default="reports/evidently.png")
    parser.add_argument("--project-id", default=None, help="open this project's dashboard (default: project list)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    print(screenshot(args.workspace, args.out, args.chromium, args.project_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
