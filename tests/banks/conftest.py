"""Fixtures for the partner-bank tests: the driver over the module's app and database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.banks.support import Banking
from tests.custody.support import Headers


@pytest.fixture(scope="module")
def banking(app_client: TestClient, engine: Engine, operator: Headers) -> Banking:
    return Banking(app_client, engine, operator)
