"""A statement imported before migration 0013 whose file spelt its account grouped (0012 stored
the account as the file spelt it, matched literally to the filing) is a duplicate after 0013:
the migration finds it in its stored file with the account normalised."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, Engine, text

from tests.support.db import row
from tests.support.driver import Banking
from tests.support.legacy import import_after_0013
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 12, 7)
BANK = "BANK-LEGACY-SPACED"


def test_a_spaced_account_statement_before_0013_is_a_duplicate_after_it(
        banking: Banking, engine: Engine, owner_database_url: str, database_url: str) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    spaced = " ".join(m.account[i:i + 4] for i in range(0, len(m.account), 4))
    statement = Stmt(spaced, "L1", 0, DAY, (entry("CRDT", 100, DAY, bank_reference="S-1"),))
    banking.import_file(BANK, camt053([statement], message_id=f"SPACED-A-{m.id}"))

    def as_0012(conn: Connection) -> None:  # the account as the file and the filing spelt it
        conn.execute(text("ALTER TABLE statement_lines DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE statement_lines SET account = :s"), {"s": spaced})
        conn.execute(text("ALTER TABLE statement_lines ENABLE TRIGGER USER"))
        conn.execute(text("UPDATE merchants SET custody_account = :s WHERE id = :m"),
                     {"s": spaced, "m": m.id})

    body = import_after_0013(banking, engine, owner_database_url, database_url, BANK,
                             camt053([statement], message_id=f"SPACED-B-{m.id}"),
                             as_0012=as_0012)

    assert [s["status"] for s in body["statements"]] == ["already_imported"], body
    assert row(engine, "SELECT count(*) AS n FROM statement_lines")["n"] == 1
