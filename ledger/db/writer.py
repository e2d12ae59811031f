"""The write path: every command runs inside a group commit under the chain-head lock.

A single appender thread takes requests from a queue; when several are waiting it runs them
together in one database transaction (one lock, one fsync). Each request still gets its own
result: an expected error undoes only that request, and an unexpected one (a bug, a database
error) makes the batch retry without the request that caused it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from ledger import limits
from ledger.auth import SYSTEM_ACTOR, without_secrets
from ledger.db import tables as t
from ledger.db.batch import BEGIN_HEAD_SQL, Batch, LockedHead, Offline
from ledger.db.script import Script
from ledger.db.writer_state import WriterState, default_state
from ledger.errors import Busy, IdempotencyConflict, InvariantViolation, LedgerError

log = logging.getLogger("yufu.writer")
T = TypeVar("T")


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
    # Named in every journal entry the command appends (ledger.auth.actor_of): the API passes
    # its caller's key; what Yufu does on its own (tree heads, bootstrap) is the system's.
    actor: Mapping[str, Any] = field(default_factory=lambda: dict(SYSTEM_ACTOR))
    future: Future[Outcome] = field(default_factory=Future)


Seen = dict[tuple[int, str], tuple[bytes, Outcome]]  # idempotency slot: request hash, result


def request_fingerprint(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).digest()


class _ItemCrashed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


def execute_batch(conn: Connection, requests: Sequence[WriteRequest],
                  more_waiting: Callable[[], bool] | None = None,
                  state: WriterState | None = None) -> list[Outcome | LedgerError]:
    """Run requests in one transaction on `conn`; commits. Raises _ItemCrashed on a bug.

    On a connection in autocommit (the appender's own), the batch opens its transaction in
    the round trip that locks the chain head and commits in the one that writes: two round
    trips fewer a batch, each of which, under load, also waited for the interpreter lock.
    When `more_waiting()` says requests are queued at the commit, the same round trip opens
    the next batch's transaction and takes its lock (never when idle: the lock would then
    hold up every other writer). `state`: the writer's; by default, the engine's."""
    state = state or default_state(conn.engine)
    own_transaction = bool(conn.connection.dbapi_connection.autocommit)  # type: ignore[union-attr]
    locked = state.take_lock(conn)
    batch: Batch | None = None
    try:
        with contextlib.nullcontext() if own_transaction else conn.begin():
            batch = Batch(conn, begin=own_transaction, head=locked, state=state)
            results = _run_commands(batch, requests, _prefetch_idempotency(conn, requests))
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
        state.hold_lock(conn, batch.next_head)
    batch.committed()
    return results


def _run_commands(batch: Batch, requests: Sequence[WriteRequest], seen: Seen
                  ) -> list[Outcome | LedgerError]:
    batch.load_accounts(_account_hints(requests))
    _prefetch(batch, requests)
    return [_run_one(batch, request, index, seen) for index, request in enumerate(requests)]


def release_lock(conn: Connection, state: WriterState | None = None) -> None:
    """End a transaction a commit opened for a next batch that is not coming."""
    if (state or default_state(conn.engine)).take_lock(conn) is not None:
        _abandon(conn)


def _abandon(conn: Connection) -> None:
    """End the batch's transaction, if it is still open (a dead connection is the writer's
    to replace: its error is the one that matters)."""
    with contextlib.suppress(Exception):
        conn.exec_driver_sql("ROLLBACK")
    with contextlib.suppress(Exception):
        conn.rollback()


def _run_one(batch: Batch, request: WriteRequest, index: int,
             seen: Seen) -> Outcome | LedgerError:
    key = _idempotency_slot(request)
    if key is not None and key in seen:
        first_hash, first = seen[key]
        if first_hash != request.request_hash:
            return IdempotencyConflict(
                "this Idempotency-Key was used before with a different request",
                field="Idempotency-Key")
        return Outcome(first.status_code, first.body, replayed=True)
    batch.start_command(request.actor)
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
        kept = Outcome(request.status_code, without_secrets(body))
        seen[key] = (request.request_hash, kept)
        batch.add_row(t.IdempotencyRecord, {
            "api_key_id": key[0], "key": key[1], "request_hash": request.request_hash,
            "status_code": kept.status_code, "response": kept.body})
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


# By primary key, for a batch's slots: a plain statement, as it runs for every batch.
IDEMPOTENCY_SQL = (
    "SELECT r.api_key_id, r.key, r.request_hash, r.status_code, r.response "
    "FROM unnest(CAST(%(key_ids)s AS bigint[]), CAST(%(keys)s AS text[])) AS s(api_key_id, key) "
    "JOIN idempotency_records r ON r.api_key_id = s.api_key_id AND r.key = s.key")


def _prefetch_idempotency(conn: Connection, requests: Sequence[WriteRequest]) -> Seen:
    """Earlier results for the batch's keys, read under the chain-head lock, so a retry
    racing its original (in another process too) sees the committed first result."""
    slots = {s for s in (_idempotency_slot(r) for r in requests) if s is not None}
    if not slots:
        return {}
    rows = conn.exec_driver_sql(IDEMPOTENCY_SQL, {"key_ids": [s[0] for s in slots],
                                                  "keys": [s[1] for s in slots]})
    return {(r.api_key_id, r.key): (bytes(r.request_hash), Outcome(r.status_code, r.response))
            for r in rows}


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
            _resolve(culprit.future, crash.error)
            continue
        except Exception as error:  # the commit itself failed (a deferred constraint, say)
            _retry_alone(conn, pending, error, state)
            return
        for request, result in zip(pending, results, strict=True):
            _resolve(request.future, result)
        return


def _retry_alone(conn: Connection, requests: Sequence[WriteRequest],
                 error: Exception, state: WriterState | None = None) -> None:
    """A batch failed as a whole: each request runs again on its own, so only the one at
    fault fails."""
    if len(requests) == 1:
        log.error("write batch failed at commit", exc_info=error)
        _resolve(requests[0].future, error)
        return
    for request in requests:
        execute_resilient(conn, [request], state=state)


def _speculate(before: _Flight, requests: Sequence[WriteRequest],
               committed_results: Callable[[Sequence[WriteRequest]], Seen],
               render: Callable[[Script], None], sequences: Connection | None
               ) -> _Following | None:
    """Run the requests' commands on what the flight `before` leaves, while it is in the
    database; None if one of them needs the database, or crashed (they then run the plain
    way). Earlier results for their idempotency keys: those committed (read on another
    connection: a key committed by another process meanwhile is caught by the unique index
    at the flush, and the batch then runs again) and those of the flight itself."""
    try:
        seen = {**committed_results(requests), **before.seen}
        batch = Batch.following(before.batch, sequences)
        results = _run_commands(batch, requests, seen)
        script = batch.flush_script(commit=True, relock=True)
        render(script)
        return batch, results, seen, script
    except (Offline, Exception):  # a crash shows itself, with its request, the plain way
        return None


def _resolve(future: Future[Outcome], result: Outcome | BaseException) -> None:
    """Answer a request unless its caller gave up waiting (a cancelled future)."""
    if future.cancelled() or future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


@dataclass
class _Flight:
    """A batch whose commands have run, with its flush script (writes and COMMIT) ready to
    run; its answers wait for the commit.

    Every flight's commit also takes the next batch's lock: under load the helper gathers
    the next batch during the flight, so the queue is usually empty when the script is
    made, and asking it would mostly say no. `_follow` gives the lock up if no batch
    follows (one round trip when idle, instead of one when busy)."""

    batch: Batch
    requests: list[WriteRequest]
    results: list[Outcome | LedgerError]
    seen: Seen
    script: Script


# A batch run ahead: its batch, results, idempotency results and rendered flush script.
_Following = tuple[Batch, list[Outcome | LedgerError], Seen, Script]


class _Helper:
    """A thread that gathers and runs the next batch's commands while the appender waits for
    the database to run the current batch's flush."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="yufu-helper", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        done: Future[Any] = Future()
        self._jobs.put((job, done))
        return done

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=limits.request_timeout_s)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            work, done = job
            try:
                done.set_result(work())
            except BaseException as error:  # the appender's to handle
                done.set_exception(error)


class Writer:
    """The single appender of a process: a thread, a queue, one connection, and the state its
    batches share (`state`: the carry, id pools, caches), its own.

    Batches are pipelined: while the appender waits for the database to run one batch's
    flush, a helper thread gathers the next batch and runs its commands on what the first
    one leaves (`Batch.following`); the appender writes them once the first has committed and
    the lock shows nobody else wrote meanwhile (`Batch.rebase`). Anything out of the ordinary
    (a command that needs the database, a crash, a failed commit) goes the plain way.
    The appender, not the helper, sends each flush, so the flush never waits for the
    interpreter lock to start."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[WriteRequest | None] = queue.Queue(
            maxsize=limits.appender_queue_requests_max)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # For monitoring: batches sent, and batches that ran ahead during the previous
        # flight and landed ("ran_ahead") or had to run again ("ran_again").
        self.counts: Counter[str] = Counter()
        self._reader: Connection | None = None  # the helper's, for idempotency keys
        self.state = WriterState(engine)

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
        helper = _Helper()
        conn: Connection | None = None
        flight: _Flight | None = None
        stop = False
        while not (stop and flight is None):
            waiting: list[WriteRequest] = []
            try:
                if flight is None:
                    first = self._queue.get()
                    if first is None:
                        break
                    waiting, stop = self._gather(first)
                    conn = conn or self._engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT")  # batches open and commit themselves
                    flight = self._launch(conn, waiting)
                    continue
                assert conn is not None
                flown = threading.Event()
                ahead = helper.submit(functools.partial(self._run_ahead, flight, flown, stop))
                try:
                    landed = self._fly(conn, flight, flown)
                finally:
                    flown.set()
                    waiting, stop, following = ahead.result()
                flight = None
                flight = self._follow(conn, waiting, following if landed else None)
            except Exception as error:  # the database went away: fail these, reconnect
                log.exception("appender batch failed")
                for request in [*(flight.requests if flight else []), *waiting]:
                    _resolve(request.future, error)
                flight = None
                if conn is not None:
                    self.state.take_lock(conn)  # the lock went with the connection
                    conn.invalidate()
                    conn.close()
                conn = None
        if conn is not None:
            release_lock(conn, self.state)
            conn.close()
        helper.stop()
        if self._reader is not None:
            with contextlib.suppress(Exception):  # its server may be gone
                self._reader.close()
            self._reader = None

    def _more_waiting(self) -> bool:
        return not self._queue.empty()

    def _launch(self, conn: Connection, requests: list[WriteRequest],
                ready: _Following | None = None) -> _Flight | None:
        """Run the commands (unless `ready`) and make the flush script; None if the batch
        went the plain way instead (a command crashed, a write was refused), answered."""
        batch: Batch | None = None
        try:
            if ready is not None:
                batch, results, seen, script = ready
            else:
                batch = Batch(conn, begin=True, head=self.state.take_lock(conn),
                              state=self.state)
                seen = _prefetch_idempotency(conn, requests)
                results = _run_commands(batch, requests, seen)
                script = batch.flush_script(commit=True, relock=True)
        except Exception:
            _abandon(conn)
            if batch is not None:
                batch.rolled_back()
            execute_resilient(conn, requests, self._more_waiting, self.state)
            return None
        self.counts["batches"] += 1
        return _Flight(batch, requests, results, seen, script)

    def _fly(self, conn: Connection, flight: _Flight, flown: threading.Event) -> bool:
        """Run the flight's flush and answer its requests; true if it committed."""
        try:
            head = flight.script.run(conn)
        except Exception as error:
            _abandon(conn)
            flight.batch.rolled_back()
            flown.set()
            _retry_alone(conn, flight.requests, error, self.state)
            return False
        flown.set()
        flight.batch.flushed(head, commit=True, relock=True)
        conn.commit()  # closes SQLAlchemy's own bookkeeping; the database has committed
        if flight.batch.next_head is not None:
            self.state.hold_lock(conn, flight.batch.next_head)
        flight.batch.committed()
        for request, result in zip(flight.requests, flight.results, strict=True):
            _resolve(request.future, result)
        return True

    def _run_ahead(self, flight: _Flight, flown: threading.Event, stop: bool
                   ) -> tuple[list[WriteRequest], bool, _Following | None]:
        """On the helper: gather the next batch while the flight is in the air, and run its
        commands on what the flight leaves."""
        waiting, stop = self._gather_during(flown, stop)
        if not waiting:
            return waiting, stop, None
        try:
            sequences = self._on_helper_connection(lambda conn: conn)
        except Exception:
            sequences = None  # the ids then come the slow way, if the pool runs dry
        return waiting, stop, _speculate(flight, waiting, self._committed_results,
                                         self._render, sequences)

    def _committed_results(self, requests: Sequence[WriteRequest]) -> Seen:
        """Committed results for the requests' idempotency keys, on the helper's own
        connection (the appender's is busy with the flight)."""
        if all(_idempotency_slot(request) is None for request in requests):
            return {}
        return self._on_helper_connection(lambda conn: _prefetch_idempotency(conn, requests))

    def _render(self, script: Script) -> None:
        self._on_helper_connection(
            lambda conn: script.render(conn.connection.dbapi_connection))

    def _on_helper_connection(self, use: Callable[[Connection], T]) -> T:
        try:
            if self._reader is not None and self._reader.invalidated:
                self._close_reader()  # it lost its server
            if self._reader is None:
                self._reader = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
            return use(self._reader)
        except Exception:
            self._close_reader()  # a new one next time
            raise

    def _close_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.invalidate()
                self._reader.close()
            self._reader = None

    def _follow(self, conn: Connection, requests: list[WriteRequest],
                following: _Following | None) -> _Flight | None:
        """The batch that ran during the last flight, if its work still stands; else its
        requests run again, now with the database."""
        if not requests:
            release_lock(conn, self.state)  # nobody waits: never hold the lock while idle
            return None
        if following is not None:
            locked = self.state.take_lock(conn)
            if locked is None:
                locked = LockedHead(*conn.exec_driver_sql(BEGIN_HEAD_SQL).one())
            if following[0].rebase(conn, locked):
                self.counts["ran_ahead"] += 1
                return self._launch(conn, requests, following)
            self.counts["ran_again"] += 1
            self.state.hold_lock(conn, locked)
        return self._launch(conn, requests)

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

    def _gather_during(self, flown: threading.Event, stop: bool
                       ) -> tuple[list[WriteRequest], bool]:
        """What is queued while a flight is in the air: the first request waited for until the
        flight lands, then whatever else is queued by then."""
        requests: list[WriteRequest] = []
        while not stop and len(requests) < limits.group_commit_requests_max:
            try:
                if requests or flown.is_set():
                    item = self._queue.get_nowait()
                else:
                    item = self._queue.get(timeout=limits.flight_poll_ms / 1000)
            except queue.Empty:
                if requests or flown.is_set():
                    break
                continue
            if item is None:
                stop = True
            else:
                requests.append(item)
        return requests, stop
