"""A statement of our CSV imported before migration 0013: 0012 numbered it `<account as the
file wrote it>:<currency>:<closing day>`, today's reader `<account normalised>:<currency>:
<closing day>`. The migration finds it in its stored file by the number 0012 gave it, so the
same statement re-sent in a new file after the upgrade (here with CRLF line ends) is named
already imported, not imported a second time."""

from __future__ import annotations

from datetime import date, timedelta

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from api.app import create_app
from api.runtime import Database, alembic_config, grant_service, upgrade
from tests.support.db import row
from tests.support.driver import Banking
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
    banking.client.close()
    engine.dispose()
    command.downgrade(alembic_config(owner_database_url), "0012")
    owner = create_engine(owner_database_url)
    with owner.begin() as conn:  # as 0012's reader numbered it
        conn.execute(text("ALTER TABLE statement_lines DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE statement_lines SET statement_id = :n"),
                     {"n": f"{written}:CNY:{DAY.isoformat()}"})
        conn.execute(text("ALTER TABLE statement_lines ENABLE TRIGGER USER"))
    owner.dispose()
    upgrade(owner_database_url)
    grant_service(Database(service_url=database_url, owner_url=owner_database_url))
    engine.dispose()

    again = statement_csv([statement]).replace(b"\n", b"\r\n")  # other bytes, same statement
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        after = Banking(client, engine, banking.operator, banking.outbox)
        after._bank_keys = dict(banking._bank_keys)
        body = after.import_file(BANK, again, filename="b.csv")

    assert [s["status"] for s in body["statements"]] == ["already_imported"], body
    assert row(engine, "SELECT count(*) AS n FROM statement_lines")["n"] == 1
