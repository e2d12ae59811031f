"""What a process caches of a database stays that database's: the tests serve many databases
from one process (one per module), and ids repeat across them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from api.runtime import Database, grant_service, run_command
from ledger.custody.rules import BEIJING_COMMERCE, DEFAULT_JURISDICTION
from ledger.custody_service import CreateRuleSet
from ledger.db import custody_store
from ledger.db.batch import Batch
from ledger.db.engine import make_engine
from tests.support import testdb
from tests.support.db import drop_database


@pytest.fixture(scope="module")
def other_engine(server: testdb.Server, template_name: str) -> Iterator[Engine]:
    """A second database cloned from the same template: its ids are drawn alike."""
    name = f"yufu_t_{uuid.uuid4().hex[:10]}"
    testdb.create_database(server.owner_url, name, template=template_name)
    grant_service(Database(service_url=server.service(name), owner_url=server.owner(name)))
    engine = make_engine(server.service(name))
    yield engine
    engine.dispose()
    drop_database(server.owner_url, name)


@dataclass(frozen=True)
class ReadRules:
    rule_set_id: int

    def run(self, batch: Batch) -> dict[str, Any]:
        return custody_store.rule_set(batch, self.rule_set_id).as_dict()


def test_a_rule_set_read_is_the_one_of_its_own_database(engine: Engine,
                                                         other_engine: Engine) -> None:
    ids = []
    for db, days in ((engine, 3), (other_engine, 9)):
        rules = dataclasses.replace(BEIJING_COMMERCE, cooling_off_days=days).as_dict()
        ids.append(run_command(db, CreateRuleSet(DEFAULT_JURISDICTION, "缓存测试", rules))["id"])
    assert ids[0] == ids[1]  # the same id in both databases, with other rules

    assert run_command(engine, ReadRules(ids[0]))["cooling_off_days"] == 3
    assert run_command(other_engine, ReadRules(ids[1]))["cooling_off_days"] == 9
