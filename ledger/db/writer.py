"""The write path's public face, and its thread and queue: every command runs inside a group
commit under the chain-head lock.

A single appender thread takes requests from a queue; when several are waiting it runs them
together in one database transaction (ledger/db/group_commit.py), pipelined with the next
batch (ledger/db/pipeline.py). Each request still gets its own result: an expected error
undoes only that request, and an unexpected one (a bug, a database error) makes the batch
retry without the request that caused it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Engine

from ledger import limits
from ledger.commands import Command
from ledger.db.group_commit import (
    Outcome,
    Prepared,
    WriteRequest,
    execute_batch,
    execute_resilient,
    release_lock,
    request_fingerprint,
    resolve,
)
from ledger.db.outage import connection_lost, outage_of, refuse
from ledger.db.pipeline import Observer, Pipeline
from ledger.db.writer_state import WriterState
from ledger.errors import Busy, Recorded

__all__ = ["Command", "Outcome", "WriteRequest", "Writer", "execute_batch",
           "execute_resilient", "release_lock", "request_fingerprint"]

log = logging.getLogger("yufu.writer")

# What the helper hands back after a flight: the requests gathered meanwhile, whether a stop
# was asked for, and their batch run ahead (None if it could not be).
Gathered = tuple[list[WriteRequest], bool, Prepared | None]


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

    Batches are pipelined (ledger/db/pipeline.py). The appender, not the helper, sends each
    flush, so the flush never waits for the interpreter lock to start."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[WriteRequest | None] = queue.Queue(
            maxsize=limits.appender_queue_requests_max)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # the appender's (see _connection)
        self.state = WriterState(engine)
        self.counts: Counter[str] = Counter()  # see Pipeline
        self._pipeline = Pipeline(engine, self.state, self.counts, self._more_waiting)
        self._outage = outage_of(engine)  # told of every new connection, so an outage ends
        # Requests submitted so far (approximate under threads: a sign that others write,
        # for a long job deciding its next slice, api/jobs.py `import_slices`).
        self.submitted = 0

    @property
    def observer(self) -> Observer:
        return self._pipeline.observer

    @observer.setter
    def observer(self, observer: Observer) -> None:
        self._pipeline.observer = observer

    @property
    def running(self) -> bool:
        """The appender thread is alive and taking requests."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def queue_depth(self) -> int:
        """Requests waiting for the appender (approximate, as any queue's size is)."""
        return self._queue.qsize()

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
        if not self.running:  # stopped, or died: answered now rather than at the time-out
            resolve(request.future, Busy("the service is not accepting writes (stopped)"))
            return request.future
        request.submitted_ns = time.perf_counter_ns()
        self.submitted += 1
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            resolve(request.future, Busy("the write queue is full; retry shortly"))
        return request.future

    def _loop(self) -> None:
        helper = _Helper()
        flight: Prepared | None = None
        stop = False
        while not (stop and flight is None):
            waiting: list[WriteRequest] = []
            try:
                if flight is None:
                    first = self._queue.get()
                    if first is None:
                        break
                    waiting, stop = self._gather(first)
                    flight = self._pipeline.launch(self._connection(), waiting)
                    continue
                conn = self._conn  # the flight's: its transaction is open there
                assert conn is not None
                flown = threading.Event()
                ahead = helper.submit(functools.partial(self._run_ahead, flight, flown, stop))
                try:
                    landed = self._pipeline.fly(conn, flight, flown)
                finally:
                    flown.set()
                    waiting, stop, following = ahead.result()
                if landed:  # a silent database makes no new connection when it answers again
                    self._outage.back()
                flight = None
                flight = self._pipeline.follow(self._connection(), waiting,
                                               following if landed else None)
            except Exception as error:  # the database went away: fail these, reconnect
                self._fail(flight.requests if flight else [], waiting, error)
                flight = None
                self._discard()
        if self._conn is not None:
            with contextlib.suppress(Exception):  # its server may be gone
                release_lock(self._conn, self.state)
            self._discard()
        helper.stop()
        self._pipeline.close()

    def _fail(self, flown: Sequence[WriteRequest], waiting: Sequence[WriteRequest],
              error: Exception) -> None:
        """Answer the requests a failure outside a batch's life cycle caught: a lost
        connection as DatabaseUnavailable (the outage logs it once), anything else as the
        bug it is. A flight's COMMIT may have been sent; what waited was not."""
        if not connection_lost(error):
            log.error("appender batch failed", exc_info=error)
            for request in [*flown, *waiting]:
                resolve(request.future, error)
            return
        for requests, recorded in ((flown, Recorded.UNKNOWN), (waiting, Recorded.NO)):
            if requests:
                refused = refuse(self._engine, error, recorded, len(requests))
                for request in requests:
                    resolve(request.future, refused)

    def _connection(self) -> Connection:
        """The appender's connection: its own while it has its server, else a new one
        (SQLAlchemy would make a lost one again by itself, but not in autocommit). Held on
        the writer, not in the loop, so a connection given up is given up once, whatever
        fails next (the appender once died dropping a dropped connection a second time)."""
        conn = self._conn
        if conn is not None and (conn.invalidated or not conn.connection.dbapi_connection
                                 .autocommit):  # type: ignore[union-attr]
            self._discard()
        if self._conn is None:
            # Autocommit: batches open and commit their transactions themselves.
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _discard(self) -> None:
        """Give up the connection, if any (it failed, or the appender stops); the lock it held
        for a next batch goes with it. Never raises: its server may be gone."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self.state.take_lock(conn)
        with contextlib.suppress(Exception):
            conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()

    def _more_waiting(self) -> bool:
        return not self._queue.empty()

    def _run_ahead(self, flight: Prepared, flown: threading.Event, stop: bool) -> Gathered:
        """On the helper: gather the next batch while the flight is in the air, and run its
        commands on what the flight leaves."""
        waiting, stop = self._gather_during(flown, stop)
        if not waiting:
            return waiting, stop, None
        return waiting, stop, self._pipeline.run_ahead(flight, waiting)

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
