"""The last active operator key stays: refused by the domain and by the database. (A module
of its own: it revokes every other operator key of its database.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.auth import Role
from tests.support.db import head_seq, issue_key, nothing_written
from tests.support.http import assert_problem, bearer, key_id_of


def test_the_last_active_operator_key_cannot_be_revoked(app_client: TestClient,
                                                        engine: Engine) -> None:
    with engine.connect() as conn:
        active = conn.execute(text(
            "SELECT k.id FROM api_keys k WHERE k.role = 'operator' AND NOT EXISTS "
            "(SELECT 1 FROM key_revocations r WHERE r.key_id = k.id)")).scalars().all()
    fresh = issue_key(engine, Role.operator)
    fresh_id = key_id_of(app_client, fresh)
    for key_id in active:  # leave only the fresh one
        r = app_client.post(f"/v1/keys/{key_id}/revoke", headers=bearer(fresh))
        assert r.status_code == 200, r.text
    # An operator key that expires does not count: once its time is up nobody would be left.
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = app_client.post("/v1/keys", headers=bearer(fresh),
                        json={"role": "operator", "expires_at": soon})
    assert r.status_code == 201, r.text
    with nothing_written(app_client, engine):
        r = app_client.post(f"/v1/keys/{fresh_id}/revoke", headers=bearer(fresh))
        assert_problem(r, 409, "conflict", "key_id")
        assert "last active operator key" in r.json()["detail"]
    # ... and the database says so too, whatever code path would try.
    seq = head_seq(app_client)
    with pytest.raises(DBAPIError, match="last active operator key"), engine.begin() as conn:
        conn.execute(text("INSERT INTO key_revocations (key_id, revoked_seq) "
                          "VALUES (:k, :s)"), {"k": fresh_id, "s": seq})
