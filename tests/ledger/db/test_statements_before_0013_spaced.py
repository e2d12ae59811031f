"""A statement imported before migration 0013 whose file spelt its account grouped (0012 stored
the account as the file spelt it, matched literally to the filing) is a duplicate after 0013:
the migration finds it in its stored file with the account normalised."""

from __future__ import annotations

from datetime import date

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from api.app import create_app
from api.runtime import Database, alembic_config, grant_service, upgrade
from tests.support.db import row
from tests.support.driver import Banking
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
    banking.client.close()
    engine.dispose()
    command.downgrade(alembic_config(owner_database_url), "0012")
    owner = create_engine(owner_database_url)
    with owner.begin() as conn:  # as 0012 stored it: the account as the file and filing spelt it
        conn.execute(text("ALTER TABLE statement_lines DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE statement_lines SET account = :s"), {"s": spaced})
        conn.execute(text("ALTER TABLE statement_lines ENABLE TRIGGER USER"))
        conn.execute(text("UPDATE merchants SET custody_account = :s WHERE id = :m"),
                     {"s": spaced, "m": m.id})
    owner.dispose()
    upgrade(owner_database_url)
    grant_service(Database(service_url=database_url, owner_url=owner_database_url))
    engine.dispose()

    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        after = Banking(client, engine, banking.operator, banking.outbox)
        after._bank_keys = dict(banking._bank_keys)
        body = after.import_file(BANK, camt053([statement], message_id=f"SPACED-B-{m.id}"))

    assert [s["status"] for s in body["statements"]] == ["already_imported"], body
    assert row(engine, "SELECT count(*) AS n FROM statement_lines")["n"] == 1
