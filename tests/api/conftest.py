"""Fixtures the HTTP tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from tests.support.http import ONE_ADDRESS_LIMITS


@pytest.fixture(scope="module")
def plain_client(engine: Engine) -> Iterator[TestClient]:
    """The app without the till's lane (api/lane.py): FastAPI's routes alone, on the same
    database as app_client, so both can be asked the same and must answer alike."""
    with TestClient(create_app(engine, lane=False, rate_limits=ONE_ADDRESS_LIMITS),
                    raise_server_exceptions=False) as client:
        yield client
