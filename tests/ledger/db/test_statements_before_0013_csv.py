"""A statement of our CSV imported before migration 0013: 0012 numbered it `<account as the
file wrote it>:<currency>:<closing day>`, today's reader `<account normalised>:<currency>:
<closing day>`. The migration finds it in its stored file by the number 0012 gave it, so the
same statement re-sent in a new file after the upgrade (here with CRLF line ends) is named
already imported, not imported a second time."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, Engine, text

from tests.support.db import row
from tests.support.driver import Banking
from tests.support.legacy import import_after_0013
from tests.support.statements import Stmt, entry, statement_csv

DAY = date(2026, 12, 7)
BANK = "BANK-LEGACY-CSV"


def test_a_csv_statement_before_0013_is_a_duplicate_after_it(
        banking: Banking, engine: Engine, owner_database_url: str, database_url: str) -> None:
    banking.set_today(DAY + timedelta(days=1))
    m = banking.merchant(BANK)
    # The bank writes the account grouped for reading: 0012 kept it so in the number.
    written = " ".join(m.account[i:i + 4] for i in range(0, len(m.account), 4))
    statement = Stmt(written, "-", 0, DAY, (entry("CRDT", 100, DAY, bank_reference="C-1"),))
    banking.import_file(BANK, statement_csv([statement]), filename="a.csv")

    def as_0012(conn: Connection) -> None:  # as 0012 numbered it
        conn.execute(text("ALTER TABLE statement_lines DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE statement_lines SET statement_id = :n"),
                     {"n": f"{written}:CNY:{DAY.isoformat()}"})
        conn.execute(text("ALTER TABLE statement_lines ENABLE TRIGGER USER"))

    again = statement_csv([statement]).replace(b"\n", b"\r\n")  # other bytes, same statement
    body = import_after_0013(banking, engine, owner_database_url, database_url, BANK, again,
                             filename="b.csv", as_0012=as_0012)

    assert [s["status"] for s in body["statements"]] == ["already_imported"], body
    assert row(engine, "SELECT count(*) AS n FROM statement_lines")["n"] == 1
