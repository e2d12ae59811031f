"""The writer carries committed rows from one batch to the next, and never trusts a stale copy.

Between its group commits the appender keeps the cards, balances and merchants it committed
(`ledger.db.carry.Carry`). These tests check the two promises that make that safe: a write
by anyone else (here, SQL typed by hand, as an operator in psql would) is seen by the very
next batch; and while nobody else writes, a batch reads nothing but the chain head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from ledger.db import carry as carry_module
from ledger.db.rowcache import CARRIED_MEMOS, CARRIED_TABLES
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem


@pytest.fixture(scope="module")
def shop(custody: Driver) -> tuple[dict[str, Any], Headers, dict[str, Any]]:
    merchant = custody.file("体育健身")
    key = custody.merchant_key(merchant["id"])
    product = custody.product(merchant["id"], key, kind="stored_value", price_fen=100_000,
                              validity_months=3)
    return merchant, key, product


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def generation(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT generation FROM chain_head")).scalar_one())


def test_a_writer_alone_reads_only_the_chain_head(custody: Driver, shop: Any) -> None:
    _, key, product = shop
    card = custody.sell(product["id"], key)
    custody.consume(card["card_id"], key, amount_fen=100)  # the card is now carried
    with statements(custody.engine) as seen:
        custody.consume(card["card_id"], key, amount_fen=100)
    # The appender opens its transaction in the same round trip as its first read, the chain
    # head's. (A batch the pipeline gathered while another was in flight, a background
    # write's, reads not even that: so at most that one read, and never a row's.)
    reads = [s for s in seen
             if s.upper().removeprefix("BEGIN;").lstrip().startswith("SELECT")]
    assert len(reads) <= 1 and all("FROM chain_head" in r for r in reads), reads


def reads(seen: list[str]) -> list[str]:
    return [s for s in seen if s.upper().removeprefix("BEGIN;").lstrip().startswith("SELECT")]


def test_a_card_the_bounded_carry_dropped_is_read_again(custody: Driver, shop: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The carry keeps only the rows and balances batches used last (ledger/db/carry.py)."""
    monkeypatch.setattr(carry_module, "carry_rows_max", 12)
    monkeypatch.setattr(carry_module, "carry_accounts_max", 12)
    _, key, product = shop
    cards = [custody.sell(product["id"], key)["card_id"] for _ in range(16)]
    for card in cards:
        custody.consume(card, key, amount_fen=100)
    with statements(custody.engine) as seen:  # the oldest card has fallen out: read again
        assert custody.consume(cards[0], key, amount_fen=100)["paid_fen"] == 100
    assert any("FROM cards" in s for s in reads(seen)), seen
    with statements(custody.engine) as seen:  # just used: carried again
        assert custody.consume(cards[0], key, amount_fen=100)["paid_fen"] == 100
    assert [s for s in reads(seen) if "chain_head" not in s] == []
    assert custody.consume(cards[0], key, amount_fen=100_000 - 300)["paid_fen"] == 99_700


def test_a_write_by_hand_is_seen_by_the_next_batch(custody: Driver, shop: Any) -> None:
    merchant, key, product = shop
    card = custody.sell(product["id"], key)
    custody.consume(card["card_id"], key, amount_fen=100)
    before = generation(custody.engine)
    with custody.engine.begin() as conn:  # as an operator in psql: no journal, no writer
        conn.execute(text("UPDATE merchants SET status = 'frozen' WHERE id = :id"),
                     {"id": merchant["id"]})
    assert generation(custody.engine) > before
    refused = custody.client.post(f"/v1/cards/{card['card_id']}/consumptions", headers=key,
                                  json={"amount_fen": 100})
    assert_problem(refused, 422, code="refused", detail_has="frozen")
    with custody.engine.begin() as conn:
        conn.execute(text("UPDATE merchants SET status = 'active' WHERE id = :id"),
                     {"id": merchant["id"]})
    assert custody.consume(card["card_id"], key, amount_fen=100)["paid_fen"] == 100


def test_a_balance_changed_by_hand_is_read_again(custody: Driver, shop: Any) -> None:
    _, key, product = shop
    card = custody.sell(product["id"], key)
    custody.consume(card["card_id"], key, amount_fen=100)
    with custody.engine.begin() as conn:  # the card's account emptied behind the writer's back
        account_id = conn.execute(text("SELECT account_id FROM cards WHERE id = :id"),
                                  {"id": card["card_id"]}).scalar_one()
        conn.execute(text("UPDATE accounts SET balance_fen = 0 WHERE id = :id"),
                     {"id": account_id})
    refused = custody.client.post(f"/v1/cards/{card['card_id']}/consumptions", headers=key,
                                  json={"amount_fen": 100})
    # The card row still says there is value; the balance read afresh says there is none,
    # so the posting would overdraw the card's account: refused, nothing written.
    assert_problem(refused, 422, field="postings", code="insufficient_funds")


def test_the_generation_never_moves_back(custody: Driver) -> None:
    with pytest.raises(DBAPIError, match="never moves back"), custody.engine.begin() as conn:
        conn.execute(text("UPDATE chain_head SET generation = generation - 1"))


def test_every_carried_table_bumps_the_generation(custody: Driver) -> None:
    """The carry trusts rows only of tables whose writes the database counts (0005)."""
    carried = {name for name in CARRIED_TABLES if name not in CARRIED_MEMOS} | {"accounts"}
    carried |= {table for tables in CARRIED_MEMOS.values() for table in tables}
    with custody.engine.connect() as conn:
        bumping = set(conn.execute(text(
            "SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
            "JOIN pg_proc p ON p.oid = g.tgfoid WHERE p.proname = 'yufu_bump_generation'"
        )).scalars())
    assert carried <= bumping, carried - bumping
