"""Migration 0013 and the statements imported before it: each is fingerprinted from its stored
file as an import now would, so the same statement sent again in another file after the
upgrade is named already imported (as it was before, by account and number), its lines not
stored twice.

The test imports a statement at head, takes the schema back to 0012 (what the statements of a
service that ran before issue 14 look like), upgrades again, and sends the same statement in a
file of another message id. Its own module: it migrates its database down and up."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from tests.support.db import row
from tests.support.driver import Banking
from tests.support.legacy import import_after_0013
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 12, 7)
BANK = "BANK-LEGACY"


def test_a_statement_imported_before_0013_is_a_duplicate_after_it(
        banking: Banking, engine: Engine, owner_database_url: str, database_url: str) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    statement = Stmt(m.account, "L1", 0, DAY, (entry("CRDT", 100, DAY, bank_reference="L-1"),
                                                entry("CRDT", 200, DAY, bank_reference="L-2")))
    banking.import_file(BANK, camt053([statement], message_id=f"LEGACY-A-{m.id}"))
    body = import_after_0013(banking, engine, owner_database_url, database_url, BANK,
                             camt053([statement], message_id=f"LEGACY-B-{m.id}"))

    assert [s["status"] for s in body["statements"]] == ["already_imported"], body
    assert row(engine, "SELECT count(*) AS n FROM statement_lines WHERE account = :a",
               a=m.account)["n"] == 2
