"""The appender survives a database that is away, and an app that starts twice."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine

from ledger.db.writer import Writer, WriteRequest
from ledger.errors import Busy
from ledger.service import OpenAccount

request_wait_s = 30


def _open() -> WriteRequest:
    return WriteRequest(OpenAccount.parse({"kind": "asset", "name": "lifecycle"}))


def test_a_writer_restarts_after_stop_and_refuses_writes_while_stopped(engine: Engine) -> None:
    writer = Writer(engine)
    writer.start()
    first = writer.submit(_open()).result(timeout=request_wait_s)
    writer.stop()
    with pytest.raises(Busy, match="not accepting writes"):
        writer.submit(_open()).result(timeout=request_wait_s)
    writer.start()
    second = writer.submit(_open()).result(timeout=request_wait_s)
    writer.stop()
    assert second.body["id"] > first.body["id"]


def test_an_unreachable_database_fails_requests_without_killing_the_appender() -> None:
    unreachable = create_engine("postgresql+psycopg2://nobody@/none?host=/nonexistent-yufu")
    writer = Writer(unreachable)
    writer.start()
    try:
        for _ in range(2):  # the second request is answered too: the thread lives on
            future = writer.submit(_open())
            with pytest.raises(Exception, match=r"nonexistent-yufu|connect"):
                future.result(timeout=request_wait_s)
    finally:
        writer.stop()
    unreachable.dispose()
