"""The group commit: requests run together in one database transaction (one lock on the chain
head, one fsync), each with its own answer.

Every batch goes through one life cycle, on the plain path here as in the pipeline
(ledger/db/pipeline.py): `prepare` locks the chain head (or takes the lock the previous commit
took for it), runs the commands and makes the flush script; `land` runs that script, which
writes and commits, and passes the carry on; `abandon` rolls back a batch that failed and
puts its carry back. An expected error undoes only its request; an unexpected one (a bug, a
database error) makes the batch run again without the request that caused it
(`execute_resilient`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from ledger.auth import SYSTEM_ACTOR, without_secrets
from ledger.commands import NOTHING, Command
from ledger.db import tables as t
from ledger.db.batch import Batch
from ledger.db.outage import connection_lost, refuse, unavailable
from ledger.db.prefetch import prefetch_cards, prefetch_products
from ledger.db.script import Script
from ledger.db.writer_state import WriterState, default_state
from ledger.errors import (
    DatabaseUnavailable,
    IdempotencyConflict,
    InvariantViolation,
    LedgerError,
    Recorded,
)

log = logging.getLogger("yufu.writer")


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class WriteRequest:
    command: Command
    status_code: int = 201
    api_key_id: int | None = None
    idempotency_key: str | None = None
    request_hash: bytes | None = None
    # Named in every journal entry the command appends (ledger.auth.actor_of): the API passes
    # its caller's key; what Yufu does on its own (tree heads, bootstrap) is the system's.
    actor: Mapping[str, Any] = field(default_factory=lambda: dict(SYSTEM_ACTOR))
    future: Future[Outcome] = field(default_factory=Future)
    submitted_ns: int = 0  # time.perf_counter_ns() when the writer took it (for monitoring)


Seen = dict[tuple[int, str], tuple[bytes, Outcome]]  # idempotency slot: request hash, result
Results = list[Outcome | LedgerError]


def request_fingerprint(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).digest()


class _ItemCrashed(Exception):
    """A request's command failed with a bug: the batch runs again without it."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


@dataclass(slots=True)
class Prepared:
    """A batch whose commands have run, with its flush script (writes, and COMMIT when the
    batch owns its transaction) ready to run; its answers wait for the commit."""

    batch: Batch
    requests: Sequence[WriteRequest]
    results: Results
    seen: Seen
    script: Script
    commit: bool  # the script commits (the batch opened its own transaction)
    relock: bool  # ... and takes the next batch's lock in the same round trip
    run_ns: int = 0  # how long its commands and script took to make (for monitoring)


# -- the life cycle ----------------------------------------------------------------------
def prepare(conn: Connection, state: WriterState, requests: Sequence[WriteRequest],
            more_waiting: Callable[[], bool] | None = None) -> Prepared:
    """Lock the chain head and run the requests' commands; abandoned if anything fails.

    On a connection in autocommit (the appender's own), the batch opens its transaction in
    the round trip that locks the chain head and commits in the one that writes: two round
    trips fewer a batch, each of which, under load, also waited for the interpreter lock.
    When `more_waiting()` says requests are queued at the commit, the same round trip opens
    the next batch's transaction and takes its lock (never when idle: the lock would then
    hold up every other writer)."""
    try:  # the first use of a connection SQLAlchemy has to make again: it may fail here
        own = bool(conn.connection.dbapi_connection.autocommit)  # type: ignore[union-attr]
    except Exception as error:
        if connection_lost(error):
            raise unavailable(error, Recorded.NO) from error
        raise
    if not own:
        conn.begin()
    batch: Batch | None = None
    try:
        batch = Batch(conn, begin=own, head=state.take_lock(conn), state=state)
        return run_commands(batch, requests, prefetch_idempotency(conn, requests), own,
                            more_waiting)
    except BaseException as error:
        # Nothing of the batch is committed yet: a lost connection refused it unrecorded
        # (a command's query that met it is no bug of the command's).
        abandon(conn, batch, own)
        lost = error.error if isinstance(error, _ItemCrashed) else error
        if connection_lost(lost):
            raise unavailable(lost, Recorded.NO) from error
        raise


def run_commands(batch: Batch, requests: Sequence[WriteRequest], seen: Seen, commit: bool,
                 more_waiting: Callable[[], bool] | None) -> Prepared:
    """The part of `prepare` after the lock: the pipeline also runs it, with no connection,
    on a batch made by `Batch.following`. Raises _ItemCrashed on a bug."""
    _prefetch(batch, requests)
    results: Results = [_run_one(batch, request, index, seen)
                        for index, request in enumerate(requests)]
    relock = commit and more_waiting is not None and more_waiting()
    return Prepared(batch, requests, results, seen, batch.flush_script(commit, relock),
                    commit, relock)


def land(conn: Connection, prepared: Prepared,
         flown: Callable[[], None] | None = None) -> None:
    """Run the flush script and commit, then pass the carry on and keep the next batch's lock,
    if the commit took it; abandoned if the database refuses. `flown` is told as soon as the
    database is done (the pipeline's helper waits for it)."""
    batch = prepared.batch
    # The script ends with the COMMIT when the batch owns its transaction: a connection lost
    # while it runs leaves the outcome unknown (the COMMIT may have reached the server).
    try:
        head = prepared.script.run(conn)
    except BaseException as error:
        abandon(conn, batch, prepared.commit)
        if connection_lost(error):
            raise unavailable(error, Recorded.UNKNOWN if prepared.commit else Recorded.NO
                              ) from error
        raise
    if not prepared.commit:
        try:
            conn.commit()  # the caller's kind of connection: its transaction commits here
        except BaseException as error:
            abandon(conn, batch, False)
            if connection_lost(error):
                raise unavailable(error, Recorded.UNKNOWN) from error
            raise
    if flown is not None:
        flown()
    batch.flushed(head, prepared.commit, prepared.relock)
    if prepared.commit:
        conn.commit()  # closes SQLAlchemy's own bookkeeping; the database has committed
    if batch.next_head is not None:
        batch.state.hold_lock(conn, batch.next_head)
    batch.committed()


def abandon(conn: Connection, batch: Batch | None, own: bool = True) -> None:
    """End a failed batch's transaction, if it is still open (a dead connection is the
    writer's to replace: its error is the one that matters), and put the carry back."""
    if own:
        with contextlib.suppress(Exception):
            conn.exec_driver_sql("ROLLBACK")
    with contextlib.suppress(Exception):
        conn.rollback()
    if batch is not None:
        batch.rolled_back()


def release_lock(conn: Connection, state: WriterState | None = None) -> None:
    """End a transaction a commit opened for a next batch that is not coming."""
    if (state or default_state(conn.engine)).take_lock(conn) is not None:
        abandon(conn, None)


# -- the plain path ----------------------------------------------------------------------
def execute_batch(conn: Connection, requests: Sequence[WriteRequest],
                  more_waiting: Callable[[], bool] | None = None,
                  state: WriterState | None = None) -> Results:
    """Run requests in one transaction on `conn` (see `prepare`); commits. Raises
    _ItemCrashed on a bug. `state`: the writer's; by default, the engine's."""
    prepared = prepare(conn, state or default_state(conn.engine), requests, more_waiting)
    land(conn, prepared)
    return prepared.results


def execute_resilient(conn: Connection, requests: Sequence[WriteRequest],
                      more_waiting: Callable[[], bool] | None = None,
                      state: WriterState | None = None) -> None:
    """Run a batch and resolve every request's future; a crashing request fails alone."""
    pending = list(requests)
    while pending:
        try:
            results = execute_batch(conn, pending, more_waiting, state)
        except _ItemCrashed as crash:
            culprit = pending.pop(crash.index)
            log.error("write request failed with a bug", exc_info=crash.error)
            resolve(culprit.future, crash.error)
            continue
        except Exception as error:  # the commit itself failed (a deferred constraint, say)
            retry_alone(conn, pending, error, state)
            return
        for request, result in zip(pending, results, strict=True):
            resolve(request.future, result)
        return


def retry_alone(conn: Connection, requests: Sequence[WriteRequest], error: Exception,
                state: WriterState | None = None) -> None:
    """A batch failed as a whole: each request runs again on its own, so only the one at
    fault fails. Not when the database is away, or the outcome unknown: nobody is at fault,
    and a request whose COMMIT may have landed must not run again without its key."""
    if isinstance(error, DatabaseUnavailable):
        refused = refuse(conn.engine, error, error.recorded, len(requests))
        for request in requests:
            resolve(request.future, refused)
        return
    if len(requests) == 1:
        log.error("write batch failed at commit", exc_info=error)
        resolve(requests[0].future, error)
        return
    for request in requests:
        execute_resilient(conn, [request], state=state)


def resolve(future: Future[Outcome], result: Outcome | BaseException) -> None:
    """Answer a request unless its caller gave up waiting (a cancelled future). A lost
    connection's raw error is answered as DatabaseUnavailable, `unknown` since where it came
    from is not known here (the paths above type it where it happens)."""
    if future.cancelled() or future.done():
        return
    if isinstance(result, BaseException):
        if connection_lost(result):
            result = unavailable(result, Recorded.UNKNOWN)
        future.set_exception(result)
    else:
        future.set_result(result)


# -- each request ------------------------------------------------------------------------
def _run_one(batch: Batch, request: WriteRequest, index: int,
             seen: Seen) -> Outcome | LedgerError:
    key = idempotency_slot(request)
    if key is not None and key in seen:
        first_hash, first = seen[key]
        if first_hash != request.request_hash:
            return IdempotencyConflict(
                "this Idempotency-Key was used before with a different request",
                field="Idempotency-Key")
        return Outcome(first.status_code, first.body, replayed=True)
    batch.start_command(request.actor)
    try:
        body = request.command.run(batch.books)
    except LedgerError as error:
        if batch.wrote_directly:
            bug = InvariantViolation(f"a command failed after writing directly: {error}")
            raise _ItemCrashed(index, bug) from error
        batch.undo_command()
        return error
    except Exception as error:
        raise _ItemCrashed(index, error) from error
    outcome = Outcome(request.status_code, body)
    if key is not None:
        assert request.request_hash is not None
        kept = Outcome(request.status_code, without_secrets(body))
        seen[key] = (request.request_hash, kept)
        batch.add_row(t.IdempotencyRecord, {
            "api_key_id": key[0], "key": key[1], "request_hash": request.request_hash,
            "status_code": kept.status_code, "response": kept.body})
    return outcome


def _prefetch(batch: Batch, requests: Sequence[WriteRequest]) -> None:
    """What the batch's commands declared they read (`Command.reads`), loaded with one query
    per kind for the whole batch, not one per command; accounts locked in id order."""
    accounts: set[int] = set()
    cards: set[str] = set()
    products: set[str] = set()
    for request in requests:
        reads = request.command.reads()
        if reads is not NOTHING:
            accounts.update(reads.accounts)
            cards.update(reads.cards)
            products.update(reads.products)
    batch.load_accounts(accounts)
    if cards:
        prefetch_cards(batch, sorted(cards))
    if products:
        prefetch_products(batch, sorted(products))


# -- idempotency -------------------------------------------------------------------------
def idempotency_slot(request: WriteRequest) -> tuple[int, str] | None:
    if request.idempotency_key is None or request.api_key_id is None:
        return None
    return (request.api_key_id, request.idempotency_key)


# By primary key, for a batch's slots: a plain statement, as it runs for every batch.
IDEMPOTENCY_SQL = (
    "SELECT r.api_key_id, r.key, r.request_hash, r.status_code, r.response "
    "FROM unnest(CAST(%(key_ids)s AS bigint[]), CAST(%(keys)s AS text[])) AS s(api_key_id, key) "
    "JOIN idempotency_records r ON r.api_key_id = s.api_key_id AND r.key = s.key")


def prefetch_idempotency(conn: Connection, requests: Sequence[WriteRequest]) -> Seen:
    """Earlier results for the batch's keys, read under the chain-head lock, so a retry
    racing its original (in another process too) sees the committed first result."""
    slots = {s for s in (idempotency_slot(r) for r in requests) if s is not None}
    if not slots:
        return {}
    rows = conn.exec_driver_sql(IDEMPOTENCY_SQL, {"key_ids": [s[0] for s in slots],
                                                  "keys": [s[1] for s in slots]})
    return {(r.api_key_id, r.key): (bytes(r.request_hash), Outcome(r.status_code, r.response))
            for r in rows}
