"""Observing the service (docs/reliability.md, "Observing the service"): /metrics, /v1/ready
and the JSON log lines, through real PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.accesslog import BatchedLines, access_log
from api.app import create_app
from api.logs import JsonLines, service_log
from api.metrics import MULTIPROCESS_DIR_ENV
from ledger.auth import Role
from tests.support.db import issue_key
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer
from tests.support.statements import Stmt, camt053, entry

TODAY = date(2026, 3, 2)
BANK = "OBS-BANK"


def scrape(client: TestClient, headers: Headers) -> str:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def sample(page: str, name: str, **labels: str) -> float:
    """The value of the sample `name` with these labels (among others), 0 if absent."""
    total = 0.0
    for line in page.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def test_metrics_count_requests_by_route_template_and_status(
        app_client: TestClient, operator: Headers) -> None:
    before = scrape(app_client, operator)
    for _ in range(3):
        assert app_client.get("/v1/health").status_code == 200
    assert app_client.get("/v1/cards/card_0000000000000000",
                          headers=operator).status_code == 404
    after = scrape(app_client, operator)
    counted = {"route": "/v1/health", "method": "GET", "status": "200"}
    assert sample(after, "yufu_http_requests_total", **counted) == \
        sample(before, "yufu_http_requests_total", **counted) + 3
    # The template, never the card id asked for.
    assert sample(after, "yufu_http_requests_total", route="/v1/cards/{card_id}",
                  status="404") >= 1
    assert "card_0000000000000000" not in after
    assert sample(after, "yufu_http_request_seconds_count", route="/v1/health") >= 3


def test_metrics_show_group_commit_batch_sizes_after_writes(
        custody: Driver, app_client: TestClient, operator: Headers) -> None:
    before = sample(scrape(app_client, operator), "yufu_writer_batch_requests_count")
    custody.file("体育健身", bank_id=BANK)
    page = scrape(app_client, operator)
    assert sample(page, "yufu_writer_batch_requests_count") > before
    assert sample(page, "yufu_writer_batch_requests_bucket", le="+Inf") > before
    assert sample(page, "yufu_writer_flush_seconds_count") > 0
    assert sample(page, "yufu_chain_append_seconds_count") > 0
    assert sample(page, "yufu_writer_events_total", event="batches") > 0
    assert sample(page, "yufu_writer_running") == 1
    assert "yufu_writer_queue_requests{" in page


def test_open_breaks_gauge_counts_a_break_an_import_opens(
        custody: Driver, app_client: TestClient, engine: Engine, operator: Headers) -> None:
    custody.set_today(TODAY)
    merchant = custody.file("餐饮", bank_id=BANK)
    before = sample(scrape(app_client, operator), "yufu_reconciliation_breaks_open")
    statement = camt053([Stmt(merchant["custody_account"], "OBS-1", 0, TODAY, (
        entry("CRDT", 777, TODAY, cref="OBS-1-UNEXPECTED"),))], message_id="OBS-1")
    r = app_client.post(f"/v1/banks/{BANK}/statements", headers=custody.bank_key(BANK),
                        content=statement)
    assert r.status_code == 201, r.text
    page = scrape(app_client, operator)
    assert sample(page, "yufu_database_gauges_up") == 1
    assert sample(page, "yufu_reconciliation_breaks_open") == before + 1
    assert sample(page, "yufu_journal_entries") > 0
    assert sample(page, "yufu_signer_lag_entries") == sample(page, "yufu_journal_entries")
    app_client.post("/v1/audit/tree-heads", headers=operator)
    assert sample(scrape(app_client, operator), "yufu_signer_lag_entries") == 0


def test_job_metrics_count_an_imports_slices_and_lines(
        custody: Driver, app_client: TestClient, operator: Headers,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_client.app.state.ctx, "import_slice_lines_max", 2)  # type: ignore[attr-defined]
    custody.set_today(TODAY)
    merchant = custody.file("餐饮", bank_id=BANK)
    before = scrape(app_client, operator)
    statement = camt053([Stmt(merchant["custody_account"], "OBS-JOB", 0, TODAY, tuple(
        entry("CRDT", 100 + i, TODAY, cref=f"OBS-JOB-{i}") for i in range(5)))],
        message_id="OBS-JOB")
    r = app_client.post(f"/v1/banks/{BANK}/statements", headers=custody.bank_key(BANK),
                        content=statement)
    assert r.status_code == 202, r.text
    for _ in range(200):
        if app_client.get(r.headers["location"], headers=operator).json()["status"] == "done":
            break
        time.sleep(0.05)
    page = scrape(app_client, operator)
    kind = {"kind": "statement_import"}
    assert sample(page, "yufu_job_slices_total", **kind) == \
        sample(before, "yufu_job_slices_total", **kind) + 3  # 5 lines, 2 a slice
    assert sample(page, "yufu_job_units_total", **kind) == \
        sample(before, "yufu_job_units_total", **kind) + 5
    assert sample(page, "yufu_jobs_running", **kind) == 0  # done: none running
    assert "yufu_jobs_running{kind=\"closure\"} 0.0" in page


def test_metrics_are_for_the_operator_and_regulators_only(
        app_client: TestClient, engine: Engine) -> None:
    assert app_client.get("/metrics").status_code == 401
    regulator = bearer(issue_key(engine, Role.regulator))
    assert app_client.get("/metrics", headers=regulator).status_code == 200
    bank = bearer(issue_key(engine, Role.bank, bank_id=BANK))
    assert app_client.get("/metrics", headers=bank).status_code == 403


def test_ready_when_database_migrations_and_writer_are(app_client: TestClient) -> None:
    r = app_client.get("/v1/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready",
                        "checks": {"database": True, "migrations": True, "writer": True}}
    assert app_client.get("/v1/health").json()["status"] == "ok"


def test_not_ready_names_the_writer_when_it_is_stopped(app_client: TestClient) -> None:
    writer = app_client.app.state.ctx.writer  # type: ignore[attr-defined]
    writer.stop()
    try:
        r = app_client.get("/v1/ready")
        assert_problem(r, 503, "not_ready")
        assert [e["field"] for e in r.json()["errors"]] == ["writer"]
    finally:
        writer.start()
    assert app_client.get("/v1/ready").status_code == 200


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The `yufu` loggers' lines as `yufu serve` formats them, into a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    before = (service_log.level, service_log.propagate)
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    try:
        yield out
    finally:
        service_log.removeHandler(handler)
        service_log.setLevel(before[0])
        service_log.propagate = before[1]


def test_service_log_lines_are_json_with_the_request_id(
        engine: Engine, json_lines: io.StringIO) -> None:
    app = create_app(engine)

    @app.get("/test/log")
    def logs() -> dict[str, str]:
        logging.getLogger("yufu.api").warning("inside a request")
        return {}

    with TestClient(app) as client:
        r = client.get("/test/log", headers={"X-Request-Id": "obs-req-1"})
        assert r.status_code == 200
    logging.getLogger("yufu.api").warning("outside any request")
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    # The access line (its own shape, api/accesslog.py) passes too, outside `yufu serve`.
    inside, outside = [line for line in lines if "logger" in line]
    assert inside["request_id"] == "obs-req-1" and inside["message"] == "inside a request"
    assert inside["level"] == "WARNING" and inside["logger"] == "yufu.api"
    assert outside["request_id"] is None


def test_a_line_logged_in_a_request_carries_its_id(json_lines: io.StringIO) -> None:
    from api.problems import REQUEST_ID

    token = REQUEST_ID.set("obs-req-2")
    try:
        logging.getLogger("yufu.writer").info("inside", extra={"fields": {"batch": 3}})
    finally:
        REQUEST_ID.reset(token)
    [line] = [json.loads(x) for x in json_lines.getvalue().splitlines()]
    assert line["request_id"] == "obs-req-2" and line["batch"] == 3
    assert line["message"] == "inside" and line["time"].endswith("Z")


def test_access_lines_pass_the_json_formatter_unchanged() -> None:
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0,
                                   '{"request_id": "x"}', (), None)
    assert JsonLines().format(record) == '{"request_id": "x"}'
    assert BatchedLines  # the handler both share under `yufu serve`


WORKER = """
from api import metrics
metrics.observe_request("/v1/cards", "POST", 201, 0.003)
metrics.WriterMetrics().batch(2, 0.001)
"""
SCRAPE = """
import sys
from sqlalchemy import create_engine
from api import metrics
from ledger.db.writer import Writer
sys.stdout.write(metrics.render(create_engine(sys.argv[1]), Writer(create_engine(sys.argv[1])))
                 .decode())
"""


def test_several_workers_sum_into_one_page(tmp_path: Path, database_url: str) -> None:
    """`yufu serve --workers N`: prometheus-client's multiprocess mode. Two worker processes
    count a request each; a third, answering the scrape, shows both."""
    env = {**os.environ, MULTIPROCESS_DIR_ENV: str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, timeout=60)
    page = subprocess.run([sys.executable, "-c", SCRAPE, database_url], env=env, check=True,
                          timeout=60, capture_output=True, text=True).stdout
    assert sample(page, "yufu_http_requests_total", route="/v1/cards", status="201") == 2
    assert sample(page, "yufu_writer_batch_requests_count") == 2
    assert sample(page, "yufu_database_gauges_up") == 1
    assert sample(page, "yufu_writer_running") == 0  # the scraping process's own writer
