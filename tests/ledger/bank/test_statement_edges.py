"""The edges of the statement import that an attacker's review found: hostile files that
answered 500 instead of 422 (odd zips, broken workbooks, codecs that are not character sets),
a workbook whose few kilobytes unpacked to gigabytes of cells, one custody account spelt two
ways filed for two merchants, a bank export re-sent with its account spelt otherwise, a file
sent again, a job whose file no longer reads on resume."""

from __future__ import annotations

import io
import re
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.profiles import load_profiles
from ledger.auth import Principal, Role
from ledger.bank.identity import fingerprints
from ledger.bank.model import RefusedStatement, Statement, StatementRejected
from ledger.bank.statements import read_file
from ledger.flows.imports import StageImport, import_steps
from tests.support.bank_exports import Line, generic_rows, generic_xlsx, to_csv
from tests.support.custody import credit_code
from tests.support.db import row, run_one
from tests.support.driver import Banking
from tests.support.http import wait_done
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 12, 7)
BANK = "BANK-REVIEW"
SHEET = "xl/worksheets/sheet1.xml"
OPERATOR = Principal(key_id=0, role=Role.operator)


def _lying_zip(member: bytes) -> bytes:
    """A zip whose end record says its directory starts later than it does: Python's zipfile
    then seeks to a negative offset (ValueError) when the member is opened."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("day.xml", member)
    data = bytearray(out.getvalue())
    end = data.rfind(b"PK\x05\x06")
    (offset,) = struct.unpack_from("<I", data, end + 16)
    struct.pack_into("<I", data, end + 16, offset + 64)
    return bytes(data)


def _name_not_utf8(member: bytes) -> bytes:
    """A zip whose member's name is flagged UTF-8 (as any non-ASCII name is written) but is
    not: zipfile raises UnicodeDecodeError reading its directory."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("日.xml", member)
    return out.getvalue().replace("日".encode(), b"\xff\xfe\xfd")


@pytest.mark.parametrize("odd", [_lying_zip, _name_not_utf8])
def test_an_odd_zip_is_a_422(banking: Banking, odd: Callable[[bytes], bytes]) -> None:
    m = banking.merchant(BANK)
    member = camt053([Stmt(m.account, "S1", 0, DAY, (entry("CRDT", 100, DAY),))],
                     message_id=f"ODD-{m.id}")
    for dry_run in ("false", "true"):
        response = banking.client.post(f"/v1/banks/{BANK}/statements",
                                       headers=banking.bank(BANK),
                                       params={"filename": "day.zip", "dry_run": dry_run},
                                       content=odd(member))
        assert response.status_code == 422, (dry_run, response.status_code, response.text)


def _workbook(mutate: Callable[[str, bytes], bytes | None]) -> bytes:
    base = generic_xlsx("6222021001043300123", 100_000, [Line(DAY, 5_000), Line(DAY, -300)])
    source, out = zipfile.ZipFile(io.BytesIO(base)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            part = mutate(info.filename, source.read(info.filename))
            if part is not None:
                archive.writestr(info.filename, part)
    return out.getvalue()


def _in_sheet(change: Callable[[bytes], bytes]) -> Callable[[str, bytes], bytes | None]:
    return lambda name, part: change(part) if name == SHEET else part


ODD_WORKBOOKS: dict[str, Callable[[str, bytes], bytes | None]] = {
    "sheet cut in half": _in_sheet(lambda p: p[:len(p) // 2]),
    "text in a number cell": _in_sheet(lambda p: p.replace(b"<v>5000</v>", b"<v>abc</v>", 1)
                                       if b"<v>5000</v>" in p
                                       else re.sub(rb"<v>[0-9.]+</v>", b"<v>abc</v>", p, count=1)),
    "a cell reference that is not one": _in_sheet(lambda p: p.replace(b'r="A6"', b'r="!!"', 1)),
    "a date cell that is not a date": _in_sheet(lambda p: re.sub(
        rb'<c r="A6"[^>]*>(<v>[^<]*</v>)?', b'<c r="A6" t="d"><v>notadate</v>', p, count=1)),
    "the sheet part missing": lambda name, part: None if name == SHEET else part,
}


@pytest.mark.parametrize("odd", sorted(ODD_WORKBOOKS))
def test_an_odd_workbook_is_a_422_not_a_500(banking: Banking, odd: str) -> None:
    banking.merchant(BANK)
    data = _workbook(ODD_WORKBOOKS[odd])
    for params in ({"filename": "x.xlsx"}, {"filename": "x.xlsx", "profile": "cn-generic-xlsx"},
                   {"filename": "x.xlsx", "dry_run": "true"}):
        response = banking.client.post(f"/v1/banks/{BANK}/statements",
                                       headers=banking.bank(BANK), params=params, content=data)
        assert response.status_code == 422, (odd, params, response.status_code, response.text)


def test_a_wide_workbook_is_refused_before_its_columns_are_unpacked() -> None:
    """Each extra row holds one cell in the sheet's last column (XFD): openpyxl pads every row
    to 16,384 cells before the reader sees it. 1,000 such rows are an 11 KB file; 8,000 (47 KB)
    took 2 GB and 8 s on main, 20,000 would take 5 GB."""
    rows = b"".join(b'<row r="%d"><c r="XFD%d" t="inlineStr"><is><t>x</t></is></c></row>'
                    % (i, i) for i in range(10, 1_010))
    data = _workbook(_in_sheet(lambda p: p.replace(b"</sheetData>", rows + b"</sheetData>")))
    assert len(data) < 16 * 1024
    profiles = tuple(load_profiles().values())
    tracemalloc.start()
    try:
        with pytest.raises(StatementRejected):
            read_file(data, "x.xlsx", None, profiles)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024, f"{peak // 2**20} MiB held for a {len(data)} byte file"


@pytest.mark.parametrize("spelling", ["ICBKCNBJ/{a}", "{a}CNY"])
def test_one_custody_account_spelt_otherwise_is_not_filed_for_a_second_merchant(
        banking: Banking, spelling: str) -> None:
    """accounts.py takes `BIC/account` and `accountCNY` for the account itself when it sorts a
    statement; filing must then take them for it too, or two merchants hold one account (the
    bug issue 14 names) and a statement spelt so goes to the other one."""
    m = banking.merchant(BANK)
    body = {"name": "商户同户", "industry": "体育健身", "credit_code": _credit_code(banking),
            "bank_id": BANK, "custody_account": spelling.format(a=m.account)}
    response = banking.client.post("/v1/merchants", headers=banking.operator, json=body)
    assert response.status_code == 409, response.text


def _credit_code(banking: Banking) -> str:
    return credit_code(banking.rng)


@pytest.mark.parametrize("where", ["resolution", "custody_account", "filename"])
def test_a_nul_character_is_a_4xx(banking: Banking, where: str) -> None:
    m = banking.merchant(BANK)
    if where == "resolution":
        response = banking.client.post("/v1/breaks/resolve", headers=banking.operator,
                                       json={"resolution": "ok\x00", "filter": {"bank_id": BANK}})
    elif where == "custody_account":
        response = banking.client.post("/v1/merchants", headers=banking.operator, json={
            "name": "商户NUL", "industry": "体育健身", "credit_code": _credit_code(banking),
            "bank_id": BANK, "custody_account": "6222\x000001"})
    else:
        data = camt053([Stmt(m.account, "NUL", 0, DAY, (entry("CRDT", 7, DAY),))],
                       message_id=f"NUL-{m.id}")
        response = banking.client.post(f"/v1/banks/{BANK}/statements",
                                       headers=banking.bank(BANK),
                                       params={"filename": "a\x00b.xml"}, content=data)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


@pytest.mark.parametrize("spelt", ["6222 0210 0104 3300 123", "6222-0210-0104-3300-123"])
def test_a_bank_export_sent_again_with_its_account_spelt_otherwise_is_the_same_statement(
        spelt: str) -> None:
    """identity.py takes the account in its barest form so that a re-sent statement spelt
    otherwise is a duplicate; but profiled.py (and bankcsv.py) put the account as written into
    the statement's number, which the fingerprint also hashes: the same day's export sent
    again spelt otherwise is imported a second time, every line stored twice."""
    lines = [Line(DAY, 5_000, serial="SN1"), Line(DAY, -300, serial="SN2")]
    profiles = tuple(load_profiles().values())
    first = read_file(to_csv(generic_rows("6222021001043300123", 100_000, lines)), "a.csv",
                      None, profiles)
    again = read_file(to_csv(generic_rows(spelt, 100_000, lines)), "b.csv", None, profiles)
    assert len(first.statements) == len(again.statements) == 1
    assert fingerprints(first) == fingerprints(again)


def test_a_file_sent_again_names_each_statement_and_how_to_import_one_refused_before(
        banking: Banking) -> None:
    """A file's second statement is refused (its account is not yet a custody account); the
    merchant is filed and the bank sends the same file again. The very same bytes import
    nothing twice (the file is unique by its hash), but the answer names every statement:
    the first as imported before, the second as not imported, saying how it will be."""
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    later = f"62{banking.rng.randrange(10**14):014d}"
    statements = [Stmt(m.account, "S1", 0, DAY, (entry("CRDT", 100, DAY),)),
                  Stmt(later, "S1", 0, DAY, (entry("CRDT", 200, DAY),))]
    data = camt053(statements, message_id=f"LATER-{m.id}")
    first = banking.import_file(BANK, data)
    assert [s["status"] for s in first["statements"]] == ["imported", "refused"]
    banking.file("体育健身", BANK, custody_account=later)

    again = banking.post_statement(BANK, data)

    assert again.status_code == 201, again.text
    body = again.json()
    assert body["duplicate"] is True
    assert [s["status"] for s in body["statements"]] == ["already_imported", "refused"]
    assert "send the statement in a new file" in body["statements"][1]["reason"]
    # Sent in a new file (another message id), it is imported; the first is named again.
    resent = banking.import_file(BANK, camt053(statements, message_id=f"AGAIN-{m.id}"))
    assert [s["status"] for s in resent["statements"]] == ["already_imported", "imported"]


def test_one_job_that_cannot_be_read_again_does_not_stop_the_others_resuming(
        banking: Banking, engine: Engine) -> None:
    """An import staged by a named profile, then the service restarted without that profile
    (an operator's profile file renamed or removed): `_steps_of` raises in `resume_jobs`, and
    every job after it in the list is left running, unresumed, until someone sends its file
    again. The job that cannot be read should fail by name; the others resume."""
    banking.set_today(DAY)
    m, other = banking.merchant(BANK), banking.merchant(BANK)
    csv = to_csv(generic_rows(m.account, 0, [Line(DAY, 100, serial=f"R-{m.id}")]))
    camt = camt053([Stmt(other.account, "S1", 0, DAY, (entry("CRDT", 100, DAY),))],
                   message_id=f"RESUME-{other.id}")
    run = run_one(engine)
    jobs = []
    for data, name, profile in ((csv, "a.csv", "cn-generic"), (camt, "b.xml", None)):
        profiles = load_profiles()
        parsed = read_file(data, name, profiles[profile] if profile else None,
                           tuple(profiles.values()))
        steps = import_steps(StageImport(OPERATOR, BANK, name, data, DAY, parsed,
                                         profile=profile), 1)
        jobs.append(run(next(steps))["job"]["job_id"])  # staged; the service stops
    kept = {k: v for k, v in load_profiles().items() if k != "cn-generic"}

    with TestClient(create_app(engine, bank_profiles=kept)) as restarted:
        job = wait_done(restarted, f"/v1/jobs/{jobs[1]}", banking.operator)

    assert job["status"] == "done"


def test_the_same_file_in_concurrent_requests_is_imported_once(banking: Banking,
                                                               engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    banking.set_today(DAY)
    m = banking.merchant(BANK)
    data = camt053([Stmt(m.account, "C1", 0, DAY, tuple(
        entry("CRDT", 1 + i, DAY, bank_reference=f"C{i}") for i in range(120)))],
        message_id=f"CONC-{m.id}")
    headers = banking.bank(BANK)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: banking.post_statement(BANK, data, headers=headers),
                                range(4)))
    assert all(a.status_code in (200, 201, 202) for a in answers), \
        [(a.status_code, a.text[:200]) for a in answers]
    for a in answers:
        if a.status_code == 202:
            assert wait_done(banking.client, a.headers["location"], headers)["status"] == "done"
    lines = row(engine, "SELECT count(*) AS n FROM statement_lines WHERE account = :a",
                a=m.account)["n"]
    assert lines == 120


@pytest.mark.parametrize("body", [
    {"resolution": "x", "break_ids": [0]}, {"resolution": "x", "break_ids": [2**63]},
    {"resolution": "x", "break_ids": [1, 1]}, {"resolution": "x", "break_ids": [-1]},
    {"resolution": "x", "filter": {"kind": "nonsense"}},
    {"resolution": "x", "filter": {"opened_before": "2026-13-01"}},
    {"resolution": "x", "filter": {"bank_id": "x" * 101}},
    {"resolution": "x", "filter": {}, "break_ids": [1]}, {"resolution": "x"},
    {"resolution": " ", "filter": {}}, {"resolution": "x", "break_ids": "1"},
    {"resolution": "x", "filter": {"merchant_id": "\x00"}},
    '{"resolution": "x", "filter": {"bank_id": "\\ud800"}}',
    [1, 2], "x", None,
])
def test_odd_bulk_resolutions_are_4xx(banking: Banking, body: object) -> None:
    if isinstance(body, str) and body.startswith("{"):  # JSON text a client cannot encode
        response = banking.client.post("/v1/breaks/resolve", content=body.encode(),
                                       headers={**banking.operator,
                                                "content-type": "application/json"})
    else:
        response = banking.client.post("/v1/breaks/resolve", headers=banking.operator,
                                       json=body)
    assert response.status_code < 500, response.text


def test_odd_bank_profile_and_dry_run_queries_are_4xx(banking: Banking) -> None:
    m = banking.merchant(BANK)
    data = camt053([Stmt(m.account, "Q1", 0, DAY, (entry("CRDT", 1, DAY),))],
                   message_id=f"Q-{m.id}")
    for params in ({"profile": "\x00"}, {"profile": "x" * 101}, {"dry_run": "maybe"},
                   {"all_or_nothing": "2"}, {"profile": "../../etc/passwd"},
                   ):
        response = banking.client.post(f"/v1/banks/{BANK}/statements",
                                       headers=banking.bank(BANK), params=params, content=data)
        assert 400 <= response.status_code < 500, (params, response.text)
    # A file name that is not UTF-8 once percent-decoded.
    odd = banking.client.post(f"/v1/banks/{BANK}/statements?filename=%ED%A0%80.xml",
                              headers=banking.bank(BANK), content=data)
    assert odd.status_code < 500, odd.text
    listed = banking.client.get("/v1/bank-profiles", headers=m.key)
    assert listed.status_code == 200


@pytest.mark.parametrize("encoding", ["punycode", "undefined"])
def test_an_xml_declaration_naming_an_odd_codec_is_a_422(banking: Banking, encoding: str) -> None:
    """xmlfile.as_utf8 catches UnicodeDecodeError; these codecs raise its parent UnicodeError.
    (`unicode_escape`, `raw_unicode_escape` and `idna` are even read: codecs, not charsets.)"""
    m = banking.merchant(BANK)
    data = camt053([Stmt(m.account, "E1", 0, DAY, (entry("CRDT", 1, DAY),))],
                   message_id=f"ENC-{m.id}")
    data = re.sub(rb'^<\?xml[^>]*\?>', b'<?xml version="1.0" encoding="' + encoding.encode()
                  + b'"?>', data.lstrip())
    assert data.startswith(b'<?xml version="1.0" encoding="' + encoding.encode())
    response = banking.post_statement(BANK, data)
    assert response.status_code == 422, (response.status_code, response.text)


@pytest.mark.parametrize("params", [{"after": "-1"}, {"after": "abc"}, {"limit": "0"},
                                    {"limit": str(10**9)}, {"after": str(2**64)},
                                    {"status": "nope"}, {"bank_id": "\x00"}])
def test_odd_break_pages_are_4xx(banking: Banking, params: dict[str, str]) -> None:
    response = banking.client.get("/v1/breaks", headers=banking.operator, params=params)
    assert response.status_code < 500, (params, response.text)


def test_a_zip_of_a_banks_exports_is_read_member_by_member_by_its_profile() -> None:
    rows = generic_rows("6222000011112222", 10_000, [
        Line(date(2026, 12, 1), 2_500, summary="货款", purpose="YFS000000000042")])
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("明细.csv", to_csv(rows))
        archive.writestr("明细.xlsx", generic_xlsx("6222000011113333", 0, [
            Line(date(2026, 12, 1), 700)]))
    shipped = load_profiles(None)
    profiles = tuple(shipped.values())
    named = read_file(packed.getvalue(), "day.zip", shipped["cn-generic"], profiles)
    first, second = named.items
    assert isinstance(first, Statement) and first.closing_booked_fen == 12_500
    assert isinstance(second, RefusedStatement)  # an Excel file is not a cn-generic CSV
    detected = read_file(packed.getvalue(), "day.zip", None, profiles)
    assert [(s.account, s.closing_booked_fen) for s in detected.statements] == [
        ("6222000011112222", 12_500), ("6222000011113333", 700)]
