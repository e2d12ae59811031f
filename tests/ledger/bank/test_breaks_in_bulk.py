"""Breaks resolved in bulk (issue 14, item 9): `POST /v1/breaks/resolve` by ids or by a filter,
all or none, each break journaled as its own resolution, idempotent, refused by index; and
`yufu breaks resolve`, the same from the command line."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.flows import instructions
from tests.support.db import rows
from tests.support.driver import Banking, Merchant
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 5)
BANK = "BANK-BULK"
ROOT = Path(__file__).resolve().parents[3]
RESOLVE = "/v1/breaks/resolve"


def with_breaks(banking: Banking, m: Merchant, count: int, tag: str) -> list[int]:
    """`count` open breaks of the merchant: a statement of credits nobody expects."""
    banking.set_today(DAY)
    banking.import_file(BANK, camt053([Stmt(m.account, f"BULK-{tag}", 0, DAY, tuple(
        entry("CRDT", 100 + n, DAY, bank_reference=f"{tag}-{n}") for n in range(count)))],
        message_id=f"BULK-{tag}"))
    return [b["id"] for b in banking.open_breaks(m)]


def breaks_of(engine: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in rows(
        engine, "SELECT b.id, b.status, b.resolution, b.resolved_seq, j.kind, j.body "
        "FROM reconciliation_breaks b LEFT JOIN journal_entries j ON j.seq = b.resolved_seq "
        "WHERE b.id = ANY(:ids)", ids=ids)}


def problem(banking: Banking, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = banking.client.post(RESOLVE, headers=banking.operator, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(response.json())


def test_breaks_resolved_by_ids_each_journaled_and_idempotent(banking: Banking,
                                                              engine: Engine) -> None:
    m = banking.merchant(BANK)
    ids = with_breaks(banking, m, 4, "IDS")
    headers = {**banking.operator, "Idempotency-Key": "bulk-ids-1"}
    body = {"resolution": "the payers' own transfers, returned", "break_ids": ids[:3]}

    first = banking.client.post(RESOLVE, headers=headers, json=body)
    again = banking.client.post(RESOLVE, headers=headers, json=body)

    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["count"], answer["more"]) == (3, False)
    assert [r["break_id"] for r in answer["resolved"]] == ids[:3]
    assert (again.status_code, again.json()) == (200, answer)
    assert again.headers["Idempotent-Replayed"] == "true"
    found = breaks_of(engine, ids)
    for resolved in answer["resolved"]:  # each its own journal entry, naming it
        b = found[resolved["break_id"]]
        assert (b["status"], b["resolution"], b["resolved_seq"]) == (
            "resolved", body["resolution"], resolved["journal_seq"])
        assert b["kind"] == "reconciliation.break_resolved"
        assert json.loads(bytes(b["body"]))["payload"]["break_id"] == b["id"]
    assert len({r["journal_seq"] for r in answer["resolved"]}) == 3
    assert found[ids[3]]["status"] == "open"


def test_a_bad_id_refuses_the_whole_request_naming_its_index(banking: Banking,
                                                             engine: Engine) -> None:
    m = banking.merchant(BANK)
    ids = with_breaks(banking, m, 3, "BAD")
    banking.ok("POST", RESOLVE, banking.operator, {"resolution": "done", "break_ids": [ids[0]]})

    resolved = problem(banking, {"resolution": "x", "break_ids": [ids[1], ids[0]]}, 409)
    unknown = problem(banking, {"resolution": "x", "break_ids": [ids[1], 10**15]}, 404)
    twice = problem(banking, {"resolution": "x", "break_ids": [ids[1], ids[2], ids[1]]}, 422)

    assert (resolved["field"], unknown["field"], twice["field"]) == (
        "break_ids[1]", "break_ids[1]", "break_ids[2]")
    assert f"break {ids[0]} is already resolved" in resolved["detail"]
    assert {b["status"] for b in breaks_of(engine, ids[1:]).values()} == {"open"}


@pytest.mark.parametrize(("body", "field"), [
    ({"resolution": "x"}, "break_ids"),  # neither ids nor a filter
    ({"resolution": "x", "break_ids": [1], "filter": {"bank_id": BANK}}, "break_ids"),
    ({"resolution": "  ", "break_ids": [1]}, "resolution"),
    ({"resolution": "x", "break_ids": list(range(1, 1_002))}, "break_ids"),
    ({"resolution": "x", "filter": {"kind": "no_such_kind"}}, "filter.kind"),
    ({"resolution": "x", "filter": {"opened_before": "yesterday"}}, "filter.opened_before"),
    ({"resolution": "x", "break_ids": [0]}, "break_ids[0]"),
])
def test_bad_input_is_a_422_naming_the_field(banking: Banking, body: dict[str, Any],
                                             field: str) -> None:
    answer = problem(banking, body, 422)
    named = answer.get("field") or json.dumps(answer)
    assert field in named, answer


def test_a_filter_resolves_the_oldest_open_breaks_it_picks_and_says_if_more_remain(
        banking: Banking, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    m, other = banking.merchant(BANK), banking.merchant(BANK)
    ids = with_breaks(banking, m, 5, "FLT")
    theirs = with_breaks(banking, other, 2, "FLT-OTHER")
    monkeypatch.setattr(instructions, "breaks_resolved_per_request_max", 3)
    wanted = {"merchant_id": m.id, "kind": "unmatched_line",
              "opened_before": (DAY + timedelta(days=1)).isoformat()}

    none = banking.ok("POST", RESOLVE, banking.operator, {
        "resolution": "x", "filter": {**wanted, "opened_before": DAY.isoformat()}})
    first = banking.ok("POST", RESOLVE, banking.operator, {"resolution": "x", "filter": wanted})
    second = banking.ok("POST", RESOLVE, banking.operator, {"resolution": "x", "filter": wanted})

    assert (none["count"], none["more"]) == (0, False)
    assert ([r["break_id"] for r in first["resolved"]], first["more"]) == (ids[:3], True)
    assert ([r["break_id"] for r in second["resolved"]], second["more"]) == (ids[3:], False)
    assert {b["status"] for b in breaks_of(engine, theirs).values()} == {"open"}


def test_only_the_operator_resolves_breaks(banking: Banking) -> None:
    m = banking.merchant(BANK)
    [break_id] = with_breaks(banking, m, 1, "ROLE")
    body = {"resolution": "x", "break_ids": [break_id]}
    for headers in (banking.bank(BANK), m.key):
        assert banking.client.post(RESOLVE, headers=headers, json=body).status_code == 403


def test_yufu_breaks_resolve_by_filter_and_by_id(banking: Banking, engine: Engine,
                                                 database_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    m = banking.merchant(BANK)
    ids = with_breaks(banking, m, 3, "CLI")
    env = {**os.environ, **database_env, "YUFU_HOME": str(tmp_path)}

    def yufu(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/yufu"), "breaks", "resolve", *args],
                              env=env, capture_output=True, text=True, check=False,
                              timeout=120)

    by_id = yufu("--resolution", "returned by hand", "--id", str(ids[0]))
    by_filter = yufu("--resolution", "returned in bulk", "--merchant", m.id,
                     "--kind", "unmatched_line")
    refused = yufu("--resolution", "again", "--id", str(ids[0]))

    assert by_id.returncode == 0, by_id.stderr
    assert [r["break_id"] for r in json.loads(by_id.stdout)["resolved"]] == ids[:1]
    assert by_filter.returncode == 0, by_filter.stderr
    assert [r["break_id"] for r in json.loads(by_filter.stdout)["resolved"]] == ids[1:]
    assert refused.returncode == 2
    assert f"break {ids[0]} is already resolved (break_ids[0])" in refused.stderr
    assert [b["resolution"] for _, b in sorted(breaks_of(engine, ids).items())] == [
        "returned by hand", "returned in bulk", "returned in bulk"]
