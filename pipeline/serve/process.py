"""Run ``distill serve`` as a child process on 127.0.0.1, wait until it answers, stop it for sure.

Used by the demo (a local server the canary rollout and the monitor run against) and by the tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``distill serve`` in a child process on 127.0.0.1 and a free port; always stopped by ``stop``."""

    def __init__(self, params_path: Path, cwd: Path, env: dict[str, str] | None = None, port: int | None = None,
                 log: Path | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or cwd / f"server-{self.port}.log"
        full_env = dict(os.environ, **(env or {}))
        self._fh = open(self.log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--params", str(params_path), "--log-level", "info"],
                                     cwd=cwd, env=full_env, stdout=self._fh, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0, need_model: bool = True) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        path = "/readyz" if need_model else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
