"""The journal export is a read on a connection of its own: it never takes the single
writer, so a write made while an export streams is served at once (docs/reliability.md,
"Long jobs")."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from ledger.db import audit_queries
from tests.support.db import head_seq, open_account, run_one, transfer


def test_a_write_is_served_while_the_export_streams(engine: Engine) -> None:
    cash, card = open_account(engine), open_account(engine, "liability")
    for _ in range(3):
        run_one(engine)(transfer((cash, 100), (card, -100)))
    before = head_seq(engine)
    with engine.connect() as conn:
        stream = audit_queries.export_lines(conn)
        first = next(stream)  # the export has begun, its connection open
        written = run_one(engine)(transfer((cash, 7), (card, -7)))  # not blocked by it
        rest = b"".join(stream)
    lines = (first + rest).splitlines()
    assert written["journal_seq"] == before + 1
    # The export is the journal as it was when the export began: the write is not in it.
    assert [json.loads(line)["entry"]["seq"] for line in lines] == list(range(1, before + 1))
