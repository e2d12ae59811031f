"""What the OpenAPI contract test (test_openapi_contract.py) found beyond its fixed seed, held
here by examples of their own."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.support import assert_problem


def test_a_key_expiring_at_an_offset_postgresql_does_not_take_is_kept_in_utc(
        app_client: TestClient, operator: dict[str, str]) -> None:
    # PostgreSQL takes offsets up to +-15:59; Python's datetime, and so the API, up to 23:59.
    r = app_client.post("/v1/keys", headers=operator,
                        json={"role": "regulator", "expires_at": "2030-01-01T00:00:00+16:00"})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] == "2029-12-31T08:00:00.000000Z"

    r = app_client.post("/v1/keys", headers=operator,
                        json={"role": "regulator", "expires_at": "0001-01-01T00:00:00+16:00"})
    assert_problem(r, 422, "invalid_input", "expires_at")

