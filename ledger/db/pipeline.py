"""The pipeline: the next batch's commands run while the batch before it is in the database.

While the appender waits for the database to run one batch's flush (the flight), the writer's
helper thread gathers the next batch and runs its commands on what the flight leaves
(`Batch.following`); the appender lands them once the flight has committed and the lock
shows nobody else wrote meanwhile (`Batch.rebase`). Anything out of the ordinary (a command
that needs the database, a crash, a failed commit) goes the plain way. Each batch goes
through the same life cycle as on the plain path (ledger/db/group_commit.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine

from ledger.db.batch import BEGIN_HEAD_SQL, Batch, LockedHead, Offline
from ledger.db.group_commit import (
    Prepared,
    Seen,
    WriteRequest,
    execute_resilient,
    idempotency_slot,
    land,
    prefetch_idempotency,
    prepare,
    release_lock,
    resolve,
    retry_alone,
    run_commands,
)
from ledger.db.script import Script
from ledger.db.writer_state import WriterState

T = TypeVar("T")


def _always() -> bool:
    """Every flight's commit also takes the next batch's lock: under load the helper gathers
    the next batch during the flight, so the queue is usually empty when the script is made,
    and asking it would mostly say no. `Pipeline.follow` gives the lock up if no batch
    follows (one round trip when idle, instead of one when busy)."""
    return True


class Observer(Protocol):
    """What the writer reports for monitoring (api/metrics.py makes them Prometheus metrics).
    Called on the appender's or the helper's thread: each call must be cheap and thread-safe.
    Times are integer nanoseconds of time.perf_counter_ns()."""

    def batch(self, requests: int, run_ns: int) -> None:
        """A batch about to be sent: its size, and the time its commands took to run."""

    def flushed(self, flush_ns: int) -> None:
        """A batch's flush (its writes and commit) done, in this time."""

    def answered(self, requests: Sequence[WriteRequest], now_ns: int) -> None:
        """These requests have their answers (each knows when it was submitted)."""


class NoObserver:
    def batch(self, requests: int, run_ns: int) -> None:
        pass

    def flushed(self, flush_ns: int) -> None:
        pass

    def answered(self, requests: Sequence[WriteRequest], now_ns: int) -> None:
        pass


class Pipeline:
    """The appender's side (`launch`, `fly`, `follow`) and the helper's (`run_ahead`), with
    the helper's own connection: the appender's is busy with the flight."""

    def __init__(self, engine: Engine, state: WriterState, counts: Counter[str],
                 more_waiting: Callable[[], bool]) -> None:
        self._engine = engine
        self._state = state
        # For monitoring: batches sent, and batches that ran ahead during the previous
        # flight and landed ("ran_ahead") or had to run again ("ran_again").
        self._counts = counts
        self._more_waiting = more_waiting
        self._reader: Connection | None = None  # the helper's
        self.observer: Observer = NoObserver()

    def launch(self, conn: Connection, requests: Sequence[WriteRequest],
               ready: Prepared | None = None) -> Prepared | None:
        """The flight of these requests: `ready` (run ahead) or prepared now; None if the batch
        went the plain way instead (a command crashed, a write was refused), answered."""
        if ready is None:
            started_ns = time.perf_counter_ns()
            try:
                ready = prepare(conn, self._state, requests, _always)
            except Exception:  # abandoned: the plain way finds the culprit
                execute_resilient(conn, requests, self._more_waiting, self._state)
                self.observer.answered(requests, time.perf_counter_ns())
                return None
            ready.run_ns = time.perf_counter_ns() - started_ns
        self._counts["batches"] += 1
        self.observer.batch(len(requests), ready.run_ns)
        return ready

    def fly(self, conn: Connection, flight: Prepared, flown: threading.Event) -> bool:
        """Land the flight and answer its requests; true if it committed."""
        started_ns = time.perf_counter_ns()
        try:
            land(conn, flight, flown.set)
        except Exception as error:  # abandoned
            flown.set()
            retry_alone(conn, flight.requests, error, self._state)
            self.observer.answered(flight.requests, time.perf_counter_ns())
            return False
        landed_ns = time.perf_counter_ns()
        for request, result in zip(flight.requests, flight.results, strict=True):
            resolve(request.future, result)
        self.observer.flushed(landed_ns - started_ns)
        self.observer.answered(flight.requests, landed_ns)
        return True

    def follow(self, conn: Connection, requests: Sequence[WriteRequest],
               following: Prepared | None) -> Prepared | None:
        """The batch that ran during the last flight, if its work still stands; else its
        requests run again, now with the database."""
        if not requests:
            release_lock(conn, self._state)  # nobody waits: never hold the lock while idle
            return None
        if following is not None:
            locked = self._state.take_lock(conn)
            if locked is None:
                locked = LockedHead(*conn.exec_driver_sql(BEGIN_HEAD_SQL).one())
            if following.batch.rebase(conn, locked):
                self._counts["ran_ahead"] += 1
                return self.launch(conn, requests, following)
            self._counts["ran_again"] += 1
            self._state.hold_lock(conn, locked)
        return self.launch(conn, requests)

    def run_ahead(self, before: Prepared, requests: Sequence[WriteRequest]) -> Prepared | None:
        """On the helper: run the requests' commands on what the flight `before` leaves, while
        it is in the database; None if one of them needs the database, or crashed (they then
        run the plain way). Earlier results for their idempotency keys: those committed (read
        on the helper's connection: a key committed by another process meanwhile is caught
        by the unique index at the flush, and the batch then runs again) and the flight's."""
        try:
            sequences: Connection | None = self._on_helper_connection(lambda conn: conn)
        except Exception:
            sequences = None  # the ids then come the slow way, if the pool runs dry
        try:
            seen = {**self._committed_results(requests), **before.seen}
            started_ns = time.perf_counter_ns()
            batch = Batch.following(before.batch, sequences)
            ahead = run_commands(batch, requests, seen, True, _always)
            self._render(ahead.script)
            ahead.run_ns = time.perf_counter_ns() - started_ns
            return ahead
        except (Offline, Exception):  # a crash shows itself, with its request, the plain way
            return None

    def close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):  # its server may be gone
                self._reader.close()
            self._reader = None

    def _committed_results(self, requests: Sequence[WriteRequest]) -> Seen:
        if all(idempotency_slot(request) is None for request in requests):
            return {}
        return self._on_helper_connection(lambda conn: prefetch_idempotency(conn, requests))

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
            with contextlib.suppress(Exception):  # its server may be gone
                self._reader.invalidate()
                self._reader.close()
            self._reader = None

