"""The crash harness's short form (scripts/crashtest, docs/reliability.md): about a minute of
the POS mix while `yufu serve` is SIGKILLed twice and PostgreSQL is stopped immediately once
and its postmaster SIGKILLed once; every acknowledged write must come through exactly once,
and no request answers 500.

It runs the script as a subprocess on its own embedded PostgreSQL (fsync on), not the test
database: the faults are the point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
run_timeout_s = 600


def test_no_acknowledged_write_is_lost_or_doubled_across_crashes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "crashtest.py"), "--seconds", "60",
         "--kills", "2", "--pg-stops", "2", "--no-write"],
        cwd=ROOT, capture_output=True, text=True, timeout=run_timeout_s, check=False)
    output = done.stdout + done.stderr
    assert done.stdout.rstrip().splitlines()[-1] == "VERDICT: PASS", output[-6000:]
    assert done.returncode == 0, output[-6000:]
    assert "| service kills (SIGKILL) and restarts | 2 |" in done.stdout
    assert "| PostgreSQL immediate shutdowns / postmaster SIGKILLs | 1 / 1 |" in done.stdout
    assert "| 500 for a recorded write | 0 |" in done.stdout
    # No 500 at all: while PostgreSQL is down the writes answer 503 database_unavailable
    # (docs/reliability.md), and the appender serves again without a restart.
    statuses = next(line for line in done.stdout.splitlines()
                    if line.startswith("| answers by status |"))
    assert "500:" not in statuses, statuses
    assert "503:" in statuses, statuses
