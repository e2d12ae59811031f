"""The database away: which errors say so (not a bug, not a refusal of the request), and the
log of an outage, one line when it starts and one when the database is back, however many
requests it refused (docs/reliability.md).

An outage starts with the first request refused for it; it ends when a connection to the
database is made again (SQLAlchemy's `connect` event, fired by the writer's reconnection, a
read's, or the key cache's listener): after a disconnect SQLAlchemy drops the pool's
connections, so the first one made afterwards is the sign the database is back. A silent
database (`silent`: a write without an answer in time) may answer again on the connection it
had, with no new one made: then the writer's next landed write ends the outage.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

import psycopg2
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from ledger.errors import DatabaseUnavailable, Recorded

log = logging.getLogger("yufu.database")

# SQLSTATEs of a server going away (class 57P: the server shuts down, crashed, is starting);
# class 08 is "connection exception" as a whole. A client-side failure (no server at the
# socket, the connection closed under us) has no SQLSTATE at all.
SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})
# psycopg2 counts these among its OperationalErrors, but the server is there: it refused.
REFUSALS = (psycopg2.extensions.TransactionRollbackError, psycopg2.extensions.QueryCanceledError)
cause_chars_max = 200


def connection_lost(error: BaseException) -> bool:
    """Whether the error says the database could not be reached or the connection died,
    rather than that a statement was refused (a constraint, a serialization failure, a
    timeout: those keep their own handling)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        return error.orig is not None and connection_lost(error.orig)
    if isinstance(error, psycopg2.InterfaceError):  # "connection already closed"
        return True
    if isinstance(error, psycopg2.OperationalError) and not isinstance(error, REFUSALS):
        code = error.pgcode
        return code is None or code.startswith("08") or code in SERVER_GOING_AWAY
    return False


def unavailable(error: BaseException, recorded: Recorded) -> DatabaseUnavailable:
    """The typed error for a connection's failure; one already typed keeps its own."""
    if isinstance(error, DatabaseUnavailable):
        return error
    orig = error.orig if isinstance(error, DBAPIError) else error
    cause = " ".join(str(orig).split())[:cause_chars_max] or type(orig).__name__
    return DatabaseUnavailable(recorded, cause)


class Outage:
    """One engine's outages: when the current one started, and how many requests it refused
    so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since_ns: int | None = None
        self._refused = 0

    @property
    def ongoing(self) -> bool:
        return self._since_ns is not None

    def refused(self, error: DatabaseUnavailable, count: int = 1) -> None:
        """`count` requests were answered `error`: the outage starts here if it had not."""
        with self._lock:
            if self._since_ns is None:
                self._since_ns = time.monotonic_ns()
                self._refused = 0
                log.warning("database unreachable (%s): requests answer 503 "
                            "database_unavailable until it is back", error.cause)
            self._refused += count

    def back(self) -> None:
        """The database answered (a connection was made, or a write landed): the outage, if
        one was going on, is over."""
        if self._since_ns is None:  # the usual case: no lock taken
            return
        with self._lock:
            if self._since_ns is None:
                return
            lasted_ns = time.monotonic_ns() - self._since_ns
            refused, self._since_ns, self._refused = self._refused, None, 0
        log.warning("database reachable again after %d ms: %d requests refused meanwhile",
                    lasted_ns // 1_000_000, refused)


_outages: weakref.WeakKeyDictionary[Engine, Outage] = weakref.WeakKeyDictionary()
_outages_lock = threading.Lock()


def outage_of(engine: Engine) -> Outage:
    """The engine's outage record, made (and told of every new connection) at first ask."""
    with _outages_lock:
        found = _outages.get(engine)
        if found is None:
            found = _outages[engine] = Outage()
            outage = found

            def on_connect(*_: Any) -> None:
                outage.back()

            event.listen(engine, "connect", on_connect)
        return found


def silent(engine: Engine, waited_s: int) -> DatabaseUnavailable:
    """The answer to a write the writer did not answer within `waited_s`: the database is
    taken for silent (no error would ever come), and the write may yet be recorded."""
    typed = DatabaseUnavailable(
        Recorded.UNKNOWN, f"no answer from the database within {waited_s} s",
        f"the database did not answer within {waited_s} s: this write may still be recorded "
        "when it does. Retry with the same Idempotency-Key: the retry answers the first "
        "result if it was recorded, or records it once if not (a write sent without a key "
        "may be recorded twice)")
    outage_of(engine).refused(typed)
    return typed


def refuse(engine: Engine, error: BaseException, recorded: Recorded,
           count: int = 1) -> DatabaseUnavailable:
    """The answer to `count` requests the database's absence refused, noted in the engine's
    outage."""
    typed = unavailable(error, recorded)
    outage_of(engine).refused(typed, count)
    return typed
