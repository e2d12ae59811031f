"""The write path: every command runs inside a group commit under the chain-head lock.

A single appender thread takes requests from a queue; when several are waiting it runs them
together in one database transaction (one lock, one fsync). Each request still gets its own
result: an expected error undoes only that request, and an unexpected one (a bug, a database
error) makes the batch retry without the request that caused it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, tuple_

from ledger import limits
from ledger.db import tables as t
from ledger.db.batch import Batch
from ledger.errors import Busy, IdempotencyConflict, InvariantViolation, LedgerError

log = logging.getLogger("yufu.writer")


class Command(Protocol):
    """A use case's write: reads and checks, then appends to the batch."""

    def run(self, batch: Batch) -> dict[str, Any]: ...


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
    future: Future[Outcome] = field(default_factory=Future)


def request_fingerprint(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).digest()


class _ItemCrashed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


# Connection.info key: the chain head a commit re-locked for the connection's next batch.
LOCKED_HEAD = "yufu.locked_head"


def execute_batch(conn: Connection, requests: Sequence[WriteRequest],
                  more_waiting: Callable[[], bool] | None = None
                  ) -> list[Outcome | LedgerError]:
    """Run requests in one transaction on `conn`; commits. Raises _ItemCrashed on a bug.

    On a connection in autocommit (the appender's own), the batch opens its transaction in
    the round trip that locks the chain head and commits in the one that writes: two round
    trips fewer a batch, each of which, under load, also waited for the interpreter lock.
    When `more_waiting()` says requests are queued at the commit, the same round trip opens
    the next batch's transaction and takes its lock (never when idle: the lock would then
    hold up every other writer)."""
    own_transaction = bool(conn.connection.dbapi_connection.autocommit)  # type: ignore[union-attr]
    locked = conn.info.pop(LOCKED_HEAD, None)
    batch: Batch | None = None
    try:
        with contextlib.nullcontext() if own_transaction else conn.begin():
            batch = Batch(conn, begin=own_transaction, head=locked)
            seen = _prefetch_idempotency(conn, requests)
            batch.load_accounts(_account_hints(requests))
            _prefetch(batch, requests)
            results = [_run_one(batch, request, index, seen)
                       for index, request in enumerate(requests)]
            relock = own_transaction and more_waiting is not None and more_waiting()
            batch.flush(commit=own_transaction, relock=relock)
    except BaseException:
        if own_transaction:
            _abandon(conn)
        if batch is not None:
            batch.rolled_back()
        raise
    if own_transaction:
        conn.commit()  # closes SQLAlchemy's own bookkeeping; the database has committed
    if batch.next_head is not None:
        conn.info[LOCKED_HEAD] = batch.next_head
    batch.committed()
    return results


def release_lock(conn: Connection) -> None:
    """End a transaction a commit opened for a next batch that is not coming."""
    if conn.info.pop(LOCKED_HEAD, None) is not None:
        _abandon(conn)


def _abandon(conn: Connection) -> None:
    """End the batch's transaction, if it is still open (a dead connection is the writer's
    to replace: its error is the one that matters)."""
    with contextlib.suppress(Exception):
        conn.exec_driver_sql("ROLLBACK")
    with contextlib.suppress(Exception):
        conn.rollback()


def _run_one(batch: Batch, request: WriteRequest, index: int,
             seen: dict[tuple[int, str], tuple[bytes, Outcome]]) -> Outcome | LedgerError:
    key = _idempotency_slot(request)
    if key is not None and key in seen:
        first_hash, first = seen[key]
        if first_hash != request.request_hash:
            return IdempotencyConflict(
                "this Idempotency-Key was used before with a different request",
                field="Idempotency-Key")
        return Outcome(first.status_code, first.body, replayed=True)
    batch.start_command()
    try:
        body = request.command.run(batch)
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
        seen[key] = (request.request_hash, outcome)
        batch.add_row(t.IdempotencyRecord, {
            "api_key_id": key[0], "key": key[1], "request_hash": request.request_hash,
            "status_code": outcome.status_code, "response": outcome.body})
    return outcome


def _account_hints(requests: Sequence[WriteRequest]) -> set[int]:
    """Accounts the batch will touch, locked up front in one query (in id order)."""
    ids: set[int] = set()
    for request in requests:
        hint = getattr(request.command, "account_ids", None)
        if hint is not None:
            ids.update(hint())
    return ids


def _prefetch(batch: Batch, requests: Sequence[WriteRequest]) -> None:
    """Rows the batch's commands will read, loaded with one query per kind, not per command.

    A command may offer `prefetch() -> (loader, ids)`; the loaders are called once each with
    every id the batch asked for (a command's own read then finds its row in the batch)."""
    wanted: dict[Any, set[Any]] = {}
    for request in requests:
        hint = getattr(request.command, "prefetch", None)
        if hint is not None:
            loader, ids = hint()
            wanted.setdefault(loader, set()).update(ids)
    for loader, ids in wanted.items():
        loader(batch, sorted(ids))


def _idempotency_slot(request: WriteRequest) -> tuple[int, str] | None:
    if request.idempotency_key is None or request.api_key_id is None:
        return None
    return (request.api_key_id, request.idempotency_key)


def _prefetch_idempotency(conn: Connection, requests: Sequence[WriteRequest]
                          ) -> dict[tuple[int, str], tuple[bytes, Outcome]]:
    """Earlier results for the batch's keys, read under the chain-head lock, so a retry
    racing its original (in another process too) sees the committed first result."""
    slots = {s for s in (_idempotency_slot(r) for r in requests) if s is not None}
    if not slots:
        return {}
    rows = conn.execute(
        select(t.IdempotencyRecord.api_key_id, t.IdempotencyRecord.key,
               t.IdempotencyRecord.request_hash, t.IdempotencyRecord.status_code,
               t.IdempotencyRecord.response)
        .where(tuple_(t.IdempotencyRecord.api_key_id, t.IdempotencyRecord.key).in_(list(slots))))
    return {(r.api_key_id, r.key): (bytes(r.request_hash), Outcome(r.status_code, r.response))
            for r in rows}


def execute_resilient(conn: Connection, requests: Sequence[WriteRequest],
                      more_waiting: Callable[[], bool] | None = None) -> None:
    """Run a batch and resolve every request's future; a crashing request fails alone."""
    pending = list(requests)
    while pending:
        try:
            results = execute_batch(conn, pending, more_waiting)
        except _ItemCrashed as crash:
            culprit = pending.pop(crash.index)
            log.error("write request failed with a bug", exc_info=crash.error)
            _resolve(culprit.future, crash.error)
            continue
        except Exception as error:  # the commit itself failed (a deferred constraint, say)
            if len(pending) == 1:
                log.error("write batch failed at commit", exc_info=error)
                _resolve(pending[0].future, error)
                return
            for request in pending:
                execute_resilient(conn, [request])
            return
        for request, result in zip(pending, results, strict=True):
            _resolve(request.future, result)
        return


def _resolve(future: Future[Outcome], result: Outcome | BaseException) -> None:
    """Answer a request unless its caller gave up waiting (a cancelled future)."""
    if future.cancelled() or future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class Writer:
    """The single appender of a process: a thread, a queue, one connection."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[WriteRequest | None] = queue.Queue(
            maxsize=limits.appender_queue_requests_max)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                # A new thread each time: an app may live through several lifespans.
                self._thread = threading.Thread(target=self._loop, name="yufu-appender",
                                                daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=limits.request_timeout_s)
                self._thread = None

    def submit(self, request: WriteRequest) -> Future[Outcome]:
        if self._thread is None:
            _resolve(request.future, Busy("the service is not accepting writes (stopped)"))
            return request.future
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            _resolve(request.future, Busy("the write queue is full; retry shortly"))
        return request.future

    def _loop(self) -> None:
        conn: Connection | None = None
        while True:
            first = self._queue.get()
            if first is None:
                break
            requests, stop = self._gather(first)
            try:
                conn = conn or self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")  # execute_batch opens and commits itself
                execute_resilient(conn, requests, lambda: not self._queue.empty())
            except Exception as error:  # the database went away: fail this batch, reconnect
                log.exception("appender batch failed")
                for request in requests:
                    _resolve(request.future, error)
                if conn is not None:
                    conn.invalidate()
                    conn.close()
                conn = None
            if stop:
                break
        if conn is not None:
            release_lock(conn)
            conn.close()

    def _gather(self, first: WriteRequest) -> tuple[list[WriteRequest], bool]:
        requests = [first]
        deadline = time.monotonic() + limits.group_commit_wait_ms / 1000
        while len(requests) < limits.group_commit_requests_max:
            try:
                if self._queue.empty() and len(requests) > 1:
                    break
                timeout = max(0.0, deadline - time.monotonic())
                item = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return requests, True
            requests.append(item)
        return requests, False
