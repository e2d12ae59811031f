"""The Merkle tree kept in PostgreSQL: the nodes every append stores equal the pure tree's,
proofs read from the database verify, tree heads sign the stored root, and the database
refuses what the code must never do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from api.runtime import alembic_config, run_command, upgrade
from ledger import journal, merkle
from ledger.audit_service import SignTreeHead
from ledger.commands import Command
from ledger.db import audit_queries
from ledger.db import tables as t
from ledger.db.door import Door
from ledger.db.engine import make_engine
from ledger.db.writer import WriteRequest, execute_resilient
from ledger.errors import InvalidInput, Refused
from ledger.service import OpenAccount, PostBatch, PostTransaction
from tests.support import testdb
from tests.support.audit import doc_key, memory_tree, post_transfers, sign_head, stored_nodes
from tests.support.db import head_seq, open_account

SIZES_MAX = 64


@pytest.fixture(scope="module")
def grown(engine: Engine) -> int:
    """A journal of at least SIZES_MAX entries, written through the appender."""
    post_transfers(engine, SIZES_MAX)
    return head_seq(engine)


def transfer(cash: int, card: int, amount: int) -> PostTransaction:
    return PostTransaction.parse({"postings": [{"account_id": cash, "amount_fen": amount},
                                               {"account_id": card, "amount_fen": -amount}]})


def test_every_append_stores_exactly_the_pure_trees_nodes(engine: Engine, grown: int) -> None:
    cash, card = open_account(engine, "asset"), open_account(engine, "liability")
    # Group commits of several requests, and one request of many entries.
    with engine.connect() as conn:
        execute_resilient(conn, [WriteRequest(transfer(cash, card, n)) for n in range(1, 8)])
        execute_resilient(conn, [WriteRequest(PostBatch(
            [transfer(cash, card, n) for n in range(1, 40)], atomic=False), 200)])
    assert stored_nodes(engine) == dict(memory_tree(engine).stored)


@pytest.mark.parametrize("size", range(1, SIZES_MAX + 1))
def test_database_proofs_verify_for_every_size(engine: Engine, grown: int, size: int) -> None:
    tree = memory_tree(engine)
    root = merkle.root(size, tree)
    with engine.connect() as conn:
        reader = audit_queries.SqlNodeReader(conn)
        assert merkle.root(size, reader) == root
        assert audit_queries.stored_frontier(conn, size).root() == root
        for seq in range(1, size + 1):
            proof = audit_queries.inclusion(conn, seq, size)
            path = [bytes.fromhex(p) for p in proof["audit_path"]]
            assert proof["leaf_index"] == seq - 1 and proof["tree_size"] == size
            assert merkle.verify_inclusion(tree.node(0, seq - 1), seq - 1, size, path, root)
        for first in range(size + 1):
            answer = audit_queries.consistency(conn, first, size)
            proof_hashes = [bytes.fromhex(p) for p in answer["proof"]]
            assert merkle.verify_consistency(first, size, merkle.root(first, tree), root,
                                             proof_hashes)


def test_proofs_beyond_the_journal_are_refused(engine: Engine, grown: int) -> None:
    size = head_seq(engine)
    with engine.connect() as conn:
        for seq in (1, size, size + 1):  # the last leaf's path does not cover that leaf
            with pytest.raises(InvalidInput) as too_far:
                audit_queries.inclusion(conn, seq, size + 1)
            assert too_far.value.field == "tree_size"
        with pytest.raises(InvalidInput) as outside:
            audit_queries.inclusion(conn, 5, 4)
        assert outside.value.field == "seq"
        for first in (0, 3, size, size + 1):
            with pytest.raises(InvalidInput):
                audit_queries.consistency(conn, first, size + 1)
        with pytest.raises(InvalidInput):
            audit_queries.consistency(conn, 5, 4)


@dataclass(frozen=True)
class FailsAtCommit(Command):
    """Appends an entry and an account row naming an entry that will never exist: the
    deferred foreign key fails at COMMIT, after the Merkle nodes were flushed."""

    def run(self, books: Door) -> dict[str, Any]:  # type: ignore[override]
        batch = books.batch  # a fault of the write path's own, below the doorway
        batch.append("test.fails_at_commit", {})
        batch.add_row(t.Account, {"id": batch.next_id(t.Account), "kind": "asset",
                                  "currency": "CNY", "name": "never", "merchant_id": None,
                                  "bank_id": None, "non_negative": False, "balance_fen": 0,
                                  "opened_seq": 10**12})
        return {}


def test_a_batch_rolled_back_at_commit_leaves_no_trace_in_the_tree(engine: Engine,
                                                                     grown: int) -> None:
    before = head_seq(engine)
    request = WriteRequest(FailsAtCommit())
    with engine.connect() as conn:
        execute_resilient(conn, [request])
    assert request.future.exception() is not None
    assert head_seq(engine) == before
    open_account(engine, "asset")  # the next append must start from the committed tree
    assert stored_nodes(engine) == dict(memory_tree(engine).stored)


def test_a_head_signs_the_root_of_the_committed_journal(engine: Engine, grown: int) -> None:
    post_transfers(engine, 3)
    head = sign_head(engine, doc_key())
    size = head_seq(engine)
    assert head["created"] is True
    assert head["tree_size"] == size
    assert head["root_hash"] == merkle.root(size, memory_tree(engine)).hex()
    again = sign_head(engine, doc_key())
    assert again == {**head, "created": False}
    with engine.connect() as conn:
        latest = audit_queries.latest_head(conn)
    assert latest is not None and latest.view() == {k: v for k, v in head.items()
                                                    if k != "created"}


def test_a_head_signed_mid_batch_covers_the_entries_before_it(engine: Engine,
                                                              grown: int) -> None:
    cash, card = open_account(engine, "asset"), open_account(engine, "liability")
    first, sign, last = (WriteRequest(transfer(cash, card, 7)),
                         WriteRequest(SignTreeHead(doc_key()), 200),
                         WriteRequest(transfer(cash, card, 8)))
    with engine.connect() as conn:
        execute_resilient(conn, [first, sign, last])
    head = sign.future.result().body
    assert head["tree_size"] == first.future.result().body["journal_seq"]
    assert head["tree_size"] + 1 == last.future.result().body["journal_seq"]
    assert head["root_hash"] == merkle.root(head["tree_size"], memory_tree(engine)).hex()


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_random_proofs_in_a_deeper_tree(engine: Engine, deep: int, data: st.DataObject
                                        ) -> None:
    size = data.draw(st.integers(min_value=1, max_value=deep), label="tree_size")
    seq = data.draw(st.integers(min_value=1, max_value=size), label="seq")
    first = data.draw(st.integers(min_value=0, max_value=size), label="first")
    with engine.connect() as conn:
        reader = audit_queries.SqlNodeReader(conn)
        root = merkle.root(size, reader)
        leaf = reader.node(0, seq - 1)
        path = [bytes.fromhex(p) for p in audit_queries.inclusion(conn, seq, size)["audit_path"]]
        assert merkle.verify_inclusion(leaf, seq - 1, size, path, root)
        proof = [bytes.fromhex(p) for p in audit_queries.consistency(conn, first, size)["proof"]]
        assert merkle.verify_consistency(first, size, merkle.root(first, reader), root, proof)


@pytest.fixture(scope="module")
def deep(engine: Engine, grown: int) -> int:
    """A few thousand entries, so proofs reach level 12 and right edges of every shape."""
    cash, card = open_account(engine, "asset"), open_account(engine, "liability")
    for _ in range(5):
        run_command(engine, PostBatch([transfer(cash, card, n) for n in range(1, 1000)],
                                      atomic=False), 200)
    size = head_seq(engine)
    assert stored_nodes(engine) == dict(memory_tree(engine).stored)
    return size


# --- the database's own guard --------------------------------------------------------------


def _refused(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> str:
    with engine.connect() as conn, pytest.raises(DBAPIError) as error:
        conn.execute(text(sql), params or {})
    return str(error.value.orig)


@pytest.mark.parametrize("sql", [
    "UPDATE merkle_nodes SET hash = hash WHERE level = 0 AND idx = 0",
    "DELETE FROM merkle_nodes WHERE level = 0 AND idx = 0",
    "TRUNCATE merkle_nodes",
    "UPDATE tree_heads SET ts = ts",
    "DELETE FROM tree_heads",
    "TRUNCATE tree_heads",
])
def test_nodes_and_heads_are_append_only_even_to_their_owner(
        engine: Engine, owner_engine: Engine, grown: int, sql: str) -> None:
    sign_head(engine, doc_key())
    assert "append-only" in _refused(owner_engine, sql)  # the service's role: no privilege


def _head_row(tree_size: int, root: bytes) -> dict[str, Any]:
    return {"tree_size": tree_size, "root_hash": root, "ts": datetime.now(UTC),
            "key_id": "0" * 64, "signature": bytes(64)}


INSERT_HEAD = ("INSERT INTO tree_heads (tree_size, root_hash, ts, key_id, signature) "
               "VALUES (:tree_size, :root_hash, :ts, :key_id, :signature)")


def test_the_database_refuses_a_head_over_another_root(engine: Engine, grown: int) -> None:
    post_transfers(engine, 3)
    size = head_seq(engine)
    message = _refused(engine, INSERT_HEAD, _head_row(size, bytes(32)))
    assert "does not sign the stored tree's root" in message


def test_the_database_refuses_a_head_beyond_the_journal(engine: Engine, grown: int) -> None:
    size = head_seq(engine)
    message = _refused(engine, INSERT_HEAD, _head_row(size + 1, bytes(32)))
    assert "covers entries not journaled" in message


def test_the_database_refuses_a_head_smaller_than_the_latest(engine: Engine,
                                                             grown: int) -> None:
    post_transfers(engine, 3)
    sign_head(engine, doc_key())
    root = merkle.root(5, memory_tree(engine))
    assert "only grow" in _refused(engine, INSERT_HEAD, _head_row(5, root))


def test_the_database_computes_the_same_root_as_the_code(engine: Engine, grown: int) -> None:
    tree = memory_tree(engine)
    with engine.connect() as conn:
        for size in (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, tree.size):
            found = conn.execute(text("SELECT yufu_merkle_root(:n)"), {"n": size}).scalar_one()
            assert bytes(found) == merkle.root(size, tree)


def test_signing_an_empty_journal_is_refused(server_url: str) -> None:
    with _database(server_url) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            request = WriteRequest(SignTreeHead(doc_key()), 200)
            with engine.connect() as conn:
                execute_resilient(conn, [request])
            assert isinstance(request.future.exception(), Refused)
        finally:
            engine.dispose()


# --- the migration backfills a journal that predates the tree -------------------------------


@pytest.fixture
def _database_url(server_url: str) -> Iterator[str]:
    with _database(server_url) as url:
        yield url


@contextmanager
def _database(server_url: str) -> Iterator[str]:
    name = f"yufu_audit_{uuid.uuid4().hex[:10]}"
    url = testdb.create_database(server_url, name)
    try:
        yield url
    finally:
        admin = create_engine(make_url(testdb.normalise_url(server_url)),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _old_journal(engine: Engine, count: int) -> None:
    """Entries written as a 0002 database had them: journal rows and the chain head only."""
    prev, moment = journal.GENESIS_PREV_HASH, datetime(2026, 11, 23, 2, tzinfo=UTC)
    with engine.begin() as conn:
        for seq in range(1, count + 1):
            body = journal.encode_entry(seq, journal.format_ts(moment), "test.before_audit",
                                        {"n": seq}, prev)
            digest = journal.entry_hash(body)
            conn.execute(text("INSERT INTO journal_entries (seq, ts, kind, prev_hash, "
                              "entry_hash, body) VALUES (:seq, :ts, :kind, :prev, :hash, "
                              ":body)"), {"seq": seq, "ts": moment, "kind": "test.before_audit",
                                          "prev": prev, "hash": digest, "body": body})
            prev = digest
        if count:
            conn.execute(text("UPDATE chain_head SET seq = :seq, entry_hash = :hash, ts = :ts"),
                         {"seq": count, "hash": prev, "ts": moment})


@pytest.mark.parametrize("count", [0, 1, 2, 7, 64, 1000])
def test_the_migration_backfills_nodes_for_an_existing_journal(_database_url: str,
                                                               count: int) -> None:
    command.upgrade(alembic_config(_database_url), "0002")
    engine = make_engine(_database_url)
    try:
        _old_journal(engine, count)
        upgrade(_database_url)
        assert stored_nodes(engine) == dict(memory_tree(engine).stored)
        # Appending continues the backfilled tree.
        run_command(engine, OpenAccount.parse({"kind": "asset", "name": "after"}))
        assert stored_nodes(engine) == dict(memory_tree(engine).stored)
        assert sign_head(engine, doc_key())["tree_size"] == count + 1
    finally:
        engine.dispose()
