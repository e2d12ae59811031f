"""What the OpenAPI contract test (test_openapi_contract.py) found beyond its fixed seed, held
here by examples of their own."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.http import assert_problem


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


@pytest.mark.parametrize("query", ["status=pending&status=settled", "limit=1&limit=1000",
                                   "status=pending&%73tatus=settled", "a&a"])
def test_a_query_parameter_given_twice_is_refused_not_guessed(
        app_client: TestClient, operator: dict[str, str], query: str) -> None:
    r = app_client.get(f"/v1/releases?{query}", headers=operator)
    body = assert_problem(r, 422, "invalid_input", query.split("=")[0].split("&")[0])
    assert "more than once" in body["detail"]


def test_distinct_query_parameters_are_read_as_ever(
        app_client: TestClient, operator: dict[str, str]) -> None:
    r = app_client.get("/v1/journal?after=0&limit=2", headers=operator)
    assert r.status_code == 200, r.text
