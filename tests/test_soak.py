"""The soak's short form (scripts/soak, docs/reliability.md "The soak"): a minute of the POS
mix with the auto-confirmation sweep and the release run every 15 s and the tree-head signer on
its interval. A minute is all warm-up, so the memory bound is loosened here (the 30-minute run
by hand holds it to 10%); what a minute can show, it must: no failed write, every job answered,
no connection left in a transaction, no connection, thread or descriptor past its warm-up peak,
and the journal verifying afterwards.

It runs the script as a subprocess on its own embedded PostgreSQL, not the test database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
run_timeout_s = 600


def test_a_minute_of_the_pos_mix_with_the_jobs_leaks_nothing_and_fails_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--minutes", "1",
         "--warmup-minutes", "0.3", "--jobs-every", "15", "--sample-every", "5",
         "--memory-growth-pct-max", "200", "--no-write"],
        cwd=ROOT, capture_output=True, text=True, timeout=run_timeout_s, check=False)
    output = done.stdout + done.stderr
    assert done.stdout.rstrip().splitlines()[-1] == "VERDICT: PASS", output[-6000:]
    assert done.returncode == 0, output[-6000:]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in done.stdout.splitlines()
            if line.startswith("| ")}
    assert rows["writes (failed)"].split(" | ")[1].endswith("(0)")
    jobs, refused = rows["scheduled jobs (answered other than 200)"].split(" | ")[1].split()
    assert int(jobs) >= 4 and refused == "(0)"
    confirmed = rows["consumptions auto-confirmed / releases instructed by the jobs"]
    assert int(confirmed.split(" | ")[1].split(" / ")[0].replace(",", "")) > 0
    assert rows["connections idle in a transaction once the clients stopped"].endswith(" ok |")
    assert rows["`yufu verify`"].split(" | ")[1].startswith("OK: ")
