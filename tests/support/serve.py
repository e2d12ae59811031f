"""`yufu serve` as a process of its own, on a free port and a home of the test's, with its
embedded PostgreSQL; stopped with a signal afterwards (its PostgreSQL too), come what may."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.settings import embedded_settings
from ledger.db.embedded import EmbeddedPostgres
from tests.support import ROOT
from tests.support.http import free_port

startup_timeout_s = 120
stop_timeout_s = 30


@contextmanager
def yufu_serve(home: Path, log_path: Path, stop_with: signal.Signals = signal.SIGINT
               ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yields the service's base URL and its process, once /v1/health answers."""
    port = free_port()
    env = {**os.environ, "YUFU_HOME": str(home), "YUFU_PORT": str(port),
           "YUFU_HOST": "127.0.0.1"}
    env.pop("YUFU_DATABASE_URL", None)
    env.pop("YUFU_MIGRATION_DATABASE_URL", None)
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "yufu"), "serve"], cwd=ROOT,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(server, url, log_path)
        yield url, server
    finally:
        if server.poll() is None:
            server.send_signal(stop_with)  # the API stops, then its database
            try:
                server.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        EmbeddedPostgres(home / "pg", embedded_settings()).stop()  # if it is still up


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if server.poll() is not None:
            pytest.fail(f"yufu serve exited with {server.returncode}:\n"
                        f"{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"yufu serve did not answer in {startup_timeout_s} s:\n"
                        f"{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
