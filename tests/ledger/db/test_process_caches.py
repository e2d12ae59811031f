"""What a process caches of a database stays that database's: the tests serve many databases
from one process (one per module), and ids repeat across them. The caches are a writer's own
(`Writer.state`), or, for batches made without one, their engine's."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from api.runtime import Database, grant_service, run_command
from ledger.auth import LOCAL_OPERATOR
from ledger.commands import Books, Command
from ledger.custody.rules import BEIJING_COMMERCE, DEFAULT_JURISDICTION
from ledger.db.batch import Batch
from ledger.db.engine import make_engine
from ledger.db.writer import Writer, WriteRequest
from ledger.db.writer_state import default_state
from ledger.flows.filing import CreateRuleSet
from tests.support import testdb
from tests.support.db import drop_database

request_wait_s = 30


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
class ReadRules(Command):
    rule_set_id: int

    def run(self, books: Books) -> dict[str, Any]:
        return books.custody.rule_set(self.rule_set_id).as_dict()


def test_a_rule_set_read_is_the_one_of_its_own_database(engine: Engine,
                                                         other_engine: Engine) -> None:
    ids = []
    for db, days in ((engine, 3), (other_engine, 9)):
        rules = dataclasses.replace(BEIJING_COMMERCE, cooling_off_days=days).as_dict()
        command = CreateRuleSet(LOCAL_OPERATOR, DEFAULT_JURISDICTION, "缓存测试", rules)
        ids.append(run_command(db, command)["id"])
    assert ids[0] == ids[1]  # the same id in both databases, with other rules

    assert run_command(engine, ReadRules(ids[0]))["cooling_off_days"] == 3
    assert run_command(other_engine, ReadRules(ids[1]))["cooling_off_days"] == 9


def test_two_writers_on_two_databases_keep_their_state_apart(engine: Engine,
                                                              other_engine: Engine) -> None:
    writers = [Writer(engine), Writer(other_engine)]
    for writer in writers:
        writer.start()
    try:
        ids = []
        for writer, days in zip(writers, (4, 8), strict=True):
            rules = dataclasses.replace(BEIJING_COMMERCE, cooling_off_days=days).as_dict()
            command = CreateRuleSet(LOCAL_OPERATOR, DEFAULT_JURISDICTION, "分开测试", rules)
            made = writer.submit(WriteRequest(command))
            ids.append(made.result(timeout=request_wait_s).body["id"])
        read = [writer.submit(WriteRequest(ReadRules(i))).result(timeout=request_wait_s)
                .body["cooling_off_days"] for writer, i in zip(writers, ids, strict=True)]
    finally:
        for writer in writers:
            writer.stop()
    assert ids[0] == ids[1]  # the same id in both databases, with other rules
    assert read == [4, 8]
    first, second = (writer.state for writer in writers)
    assert first is not second
    assert default_state(engine) not in (first, second)  # a writer's state is its own
    assert first.rules_by_id[ids[0]].cooling_off_days == 4
    assert second.rules_by_id[ids[1]].cooling_off_days == 8


def test_a_batch_made_without_a_writer_shares_its_engines_state(engine: Engine,
                                                                other_engine: Engine) -> None:
    with engine.connect() as conn, conn.begin():
        batch = Batch(conn)
        assert batch.state is default_state(engine)
        batch.rolled_back()
    assert default_state(engine) is not default_state(other_engine)
