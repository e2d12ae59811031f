"""Tests of what migration 0013 makes of a database that ran before it: the schema taken back
to 0012 (what a service's statements looked like then), optionally edited as 0012 stored
them, upgraded again, and a file sent to the service that starts on it."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine

from api.app import create_app
from api.runtime import Database, alembic_config, grant_service, upgrade
from tests.support.driver import Banking


def import_after_0013(banking: Banking, engine: Engine, owner_url: str, service_url: str,
                      bank_id: str, data: bytes, filename: str = "statement.xml",
                      as_0012: Callable[[Connection], None] | None = None
                      ) -> dict[str, object]:
    """Down to 0012 (then `as_0012`, as the owner), up again, and `data` imported."""
    banking.client.close()
    engine.dispose()
    command.downgrade(alembic_config(owner_url), "0012")
    if as_0012 is not None:
        owner = create_engine(owner_url)
        with owner.begin() as conn:
            as_0012(conn)
        owner.dispose()
    upgrade(owner_url)
    grant_service(Database(service_url=service_url, owner_url=owner_url))
    engine.dispose()
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        after = Banking(client, engine, banking.operator, banking.outbox)
        after._bank_keys = dict(banking._bank_keys)
        return after.import_file(bank_id, data, filename=filename)
