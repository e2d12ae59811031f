"""README's "Five minutes with Yufu", run exactly as written against a live `yufu serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.settings import embedded_settings
from ledger.db.embedded import EmbeddedPostgres
from tests.support import ROOT
from tests.support.serve import stop_timeout_s, yufu_serve

START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"
REGULATOR_START, REGULATOR_END = "<!-- regulator:start -->", "<!-- regulator:end -->"


def walkthrough(start: str = START, end: str = END) -> str:
    """The bash block between the README's walk-through markers, byte for byte."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(start) == 1 and text.count(end) == 1
    block = text[text.index(start) + len(start):text.index(end)]
    opening, closing = "```bash\n", "\n```"
    assert block.strip().startswith(opening.strip()) and block.rstrip().endswith("```")
    return block[block.index(opening) + len(opening):block.rindex(closing) + 1]


@dataclass
class Live:
    url: str
    home: Path
    key: str


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """`yufu serve` on a free port with its own YUFU_HOME (and so its own embedded
    PostgreSQL); stopped with Ctrl-C (SIGINT) afterwards, its PostgreSQL too, come what may."""
    with serving(tmp_path, signal.SIGINT) as (live_server, _):
        yield live_server


@contextmanager
def serving(tmp_path: Path, stop_with: signal.Signals
            ) -> Iterator[tuple[Live, subprocess.Popen[bytes]]]:
    home, log_path = tmp_path / "home", tmp_path / "serve.log"
    with yufu_serve(home, log_path, stop_with) as (url, server):
        key = (home / "operator.key").read_text().strip()
        assert key in log_path.read_text(), "the bootstrap key is printed on first start"
        yield Live(url, home, key), server


def test_the_readme_walkthrough_runs_as_written_twice_in_a_row(live: Live,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "walkthrough.sh"
    script.write_text("set -euo pipefail\n" + walkthrough(), encoding="utf-8")
    env = {**os.environ, "YUFU": live.url, "KEY": live.key, "YUFU_HOME": str(live.home)}
    env.pop("YUFU_DATABASE_URL", None)
    cards = []
    for _ in range(2):
        done = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        cards.append(check_walkthrough_output(done.stdout))
    assert cards[0] != cards[1]
    # Every request left its access-log line on serve's stderr, the sales with their merchant
    # key (two a run).
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()
             if line.startswith('{"time"')]
    access = [line for line in lines if "route" in line]  # the service's own have "logger"
    [started] = [line for line in lines if line.get("message") == "started"]
    assert started["workers"] == 1 and started["version"] and started["database_host"]
    assert started["logger"] == "yufu" and started["request_id"] is None
    assert sum(a["route"] == "/v1/cards" and a["status"] == 201 and a["role"] == "merchant"
               for a in access) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", a["request_id"]) for a in access)


def test_the_regulators_five_minutes_run_as_written_twice_in_a_row(live: Live,
                                                                    tmp_path: Path) -> None:
    script = tmp_path / "regulator.sh"
    script.write_text("set -euo pipefail\n" + walkthrough(REGULATOR_START, REGULATOR_END),
                      encoding="utf-8")
    env = {**os.environ, "YUFU": live.url, "KEY": live.key, "YUFU_HOME": str(live.home)}
    env.pop("YUFU_DATABASE_URL", None)
    for run in (1, 2):
        done = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert done.stdout.splitlines() == [
            f"dashboard: {live.url}/dashboard", "tier_yellow", "legal_representative_changed",
            "法定代表人变更", "True", "resolved", "10000", "1"], (run, done.stdout)


def check_walkthrough_output(stdout: str) -> str:
    lines = stdout.splitlines()
    assert len(lines) >= 9, stdout  # `yufu verify` may say more after its "OK:"
    sold = re.fullmatch(r"card (card_[0-9a-f]{16}) recorded at journal entry ([0-9]+)", lines[0])
    assert sold is not None, lines[0]
    card_id = sold.group(1)
    assert lines[1:5] == ["90000", "settled", "100000", "90000"]
    assert lines[5] == ("end_to_end_id,card_id,consumer_id,claim_fen,payout_fen,"
                        "shortfall_fen,custody_account,bank_id,status")
    row = lines[6].split(",")
    assert re.fullmatch(r"YFF[0-9]{12}", row[0]), row
    assert re.fullmatch(r"[0-9a-f]{64}", row[2]), row  # a pseudonym, never the phone number
    assert [row[1], *row[3:6], row[7:]] == [card_id, "90000", "90000", "0",
                                            ["ICBC-BJ", "pending"]]
    assert re.fullmatch(r"0200[0-9]{1,9}", row[6]), row  # the run's own custody account
    verified = re.match(r"OK: ([0-9]+) entries verified; head hash ([0-9a-f]{64})", lines[7])
    assert verified is not None, lines[7]
    assert int(sold.group(2)) < int(verified.group(1))
    assert lines[-2].startswith("OK"), lines[-2]  # the auditor's verifier
    assert lines[-1] == str(int(sold.group(2)) - 1)  # the receipt's leaf index
    return card_id


def test_serve_stopped_with_sigterm_stops_its_postgresql_too(tmp_path: Path) -> None:
    """SIGTERM is how systemd, Docker and Kubernetes stop a service: uvicorn re-raises it
    after its graceful shutdown, which must end in our clean-up, not the default handler's
    instant exit (that left the embedded PostgreSQL running)."""
    with serving(tmp_path, signal.SIGTERM) as (live_server, server):
        embedded = EmbeddedPostgres(live_server.home / "pg", embedded_settings())
        assert embedded.is_running()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=stop_timeout_s)
        assert not embedded.is_running(), "yufu serve left its PostgreSQL running"
    log = (tmp_path / "serve.log").read_text()
    messages = [json.loads(line).get("message") for line in log.splitlines()
                if line.startswith('{"time"')]
    assert messages.count("started") == 1 and messages[-1] == "stopped", log
