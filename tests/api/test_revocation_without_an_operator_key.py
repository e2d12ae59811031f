"""A holder revokes its own key whether or not an operator key is active. (A module of its
own: its database has no operator key at all, as before the bootstrap key or once every
operator key has expired.)"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ledger.auth import Role
from tests.support.db import file_merchant, issue_key
from tests.support.http import bearer, key_id_of


def test_a_merchant_revokes_its_own_key_while_no_operator_key_is_active(
        app_client: TestClient, engine: Engine) -> None:
    key = issue_key(engine, Role.merchant, file_merchant(engine, "LONE-BANK"))
    key_id = key_id_of(app_client, key)

    r = app_client.post(f"/v1/keys/{key_id}/revoke", headers=bearer(key),
                        json={"reason": "the till was stolen"})

    assert r.status_code == 200, r.text
    assert r.json()["revoked"] is True
    assert app_client.get("/v1/banks", headers=bearer(key)
                          ).status_code == 401
