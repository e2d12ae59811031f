"""Every real statement file of ../shared/real-statements imported through the API: each
statement whose balances add up is imported with every one of its lines stored, the rest are
refused by name, and nothing is dropped (issue 14, "done when").

The files are in euros, roubles and the like; custody accounts are in CNY, so each file's
currency codes are made CNY here (its bytes otherwise as the bank wrote them), and each
account in it is filed as a merchant's custody account at a bank of the file's own. A zip is
sent as it is (its members' bytes cannot be edited without rebuilding it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ledger.bank.accounts import account_candidates
from ledger.bank.matching import lines_of
from ledger.bank.model import ParsedFile, Statement, StatementKind
from ledger.bank.statements import read_file
from tests.support.corpus import CORPUS, needs_corpus
from tests.support.db import register_bank, rows
from tests.support.driver import Banking
from tests.support.http import wait_done

FILES = sorted(p.name for p in CORPUS.glob("*") if p.name != "SOURCES.md") \
    if CORPUS.is_dir() else []
_CURRENCY_RE = re.compile(
    rb"(?<![A-Z])(EUR|RUB|CHF|PLN|HUF|NGN|USD|GBP|SEK|DKK|RON)(?![A-Z])")
# An MT940 :61: may carry the currency's third letter (its funds code) after the C/D mark.
_FUNDS_CODE_RE = re.compile(rb"(:61:[0-9]{6}(?:[0-9]{4}| {4})?R?[CD])[A-Z]([0-9])")


def _in_cny(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".zip":
        return data
    return _FUNDS_CODE_RE.sub(rb"\1Y\2", _CURRENCY_RE.sub(b"CNY", data))


def _file_accounts(banking: Banking, bank_id: str, parsed: ParsedFile) -> None:
    register_bank(banking.engine, bank_id)
    filed: set[str] = set()
    for s in parsed.statements:
        account = account_candidates(s.account, s.currency)[-1]
        if account not in filed:
            banking.file("体育健身", bank_id, custody_account=account)
            filed.add(account)
    banking.bank(bank_id)


def _importable(s: Statement) -> bool:
    return s.kind is StatementKind.final and s.currency == "CNY"


@needs_corpus
@pytest.mark.parametrize("name", FILES)
def test_a_real_file_imports_what_adds_up_and_refuses_the_rest_by_name(
        banking: Banking, engine: Engine, name: str) -> None:
    data = _in_cny(CORPUS / name)
    parsed = read_file(data, name)
    bank_id = f"CORPUS-{FILES.index(name)}"
    _file_accounts(banking, bank_id, parsed)
    answer = banking.post_statement(bank_id, data, filename=name)

    wanted = [isinstance(i, Statement) and _importable(i) for i in parsed.items]
    if not any(wanted):
        # Nothing in it can be imported: refused whole, naming each statement and why.
        assert answer.status_code == 422, answer.text
        assert f"{len(parsed.items)} of {len(parsed.items)} statements refused" in \
            answer.json()["detail"]
        return
    assert answer.status_code in (201, 202), answer.text
    body = answer.json() if answer.status_code == 201 else wait_done(
        banking.client, answer.headers["Location"], banking.operator)["result"]
    got = body["statements"]
    assert [s["status"] == "imported" or s["status"] == "already_imported" for s in got] == wanted
    for item, s in zip(parsed.items, got, strict=True):
        if s["status"] == "refused":
            assert s["reason"], s  # by name: a reason and where
        elif s["status"] == "imported":
            assert isinstance(item, Statement)
            assert s["lines"] == len(lines_of(item.entries))
    stored = rows(engine, "SELECT count(*) AS n FROM statement_lines WHERE file_id = :f",
                  f=body["file_id"])[0]["n"]
    assert stored == sum(s["lines"] for s in got if s["status"] == "imported")
