"""Typed errors.

`LedgerError` and its subclasses are expected failures: bad input, a refused operation.
They carry a stable `code`, the `field` at fault where there is one, and a reason.
`InvariantViolation` is a bug: it must stop the request loudly and is never swallowed.
"""

from __future__ import annotations

import enum


class LedgerError(Exception):
    # `status` is the HTTP status the API answers with; batch results carry it per item.
    code = "ledger_error"
    status = 400

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(LedgerError):
    code = "invalid_input"
    status = 422


class NotFound(LedgerError):
    code = "not_found"
    status = 404


class Conflict(LedgerError):
    code = "conflict"
    status = 409


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    status = 422


class Forbidden(LedgerError):
    code = "forbidden"
    status = 403


class Unauthorized(LedgerError):
    code = "unauthorized"
    status = 401


class Refused(LedgerError):
    """A well-formed request that the rules refuse (frozen merchant, cap exceeded, ...)."""

    code = "refused"
    status = 422


class Busy(LedgerError):
    """The service cannot take the write now (queue full, stopping): retry later."""

    code = "busy"
    status = 503


class Recorded(enum.Enum):
    """Whether a write refused by the database's absence may have been recorded."""

    NO = "no"  # it failed before anything of it was sent: it was not
    UNKNOWN = "unknown"  # the connection died after its COMMIT was sent: it may have been


_UNAVAILABLE_DETAILS = {
    Recorded.NO: "the database is unreachable; nothing of this request was recorded: retry "
                 "later, with the same Idempotency-Key",
    Recorded.UNKNOWN: "the connection to the database was lost after this write's commit was "
                      "sent: it may have been recorded. Retry with the same Idempotency-Key: "
                      "the retry answers the first result if it was, or records it once if "
                      "not (a write sent without a key may be recorded twice)"}


class DatabaseUnavailable(LedgerError):
    """The database could not be reached, or the connection died under the request: not a
    bug, and not the request's fault. `recorded` says whether a write may have been recorded;
    a retry with the same Idempotency-Key is safe either way (it answers the first result
    if there was one)."""

    code = "database_unavailable"
    status = 503

    def __init__(self, recorded: Recorded, cause: str = "", detail: str = "") -> None:
        super().__init__(detail or _UNAVAILABLE_DETAILS[recorded])
        self.recorded = recorded
        self.cause = cause  # the driver's message, for the log; never sent to the client


class RateLimited(LedgerError):
    """Too many attempts (one-time codes, failed authentications, requests): wait and retry."""

    code = "rate_limited"
    status = 429

    def __init__(self, detail: str, *, retry_after_s: int, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after_s = max(1, retry_after_s)


class BodyTooLarge(LedgerError):
    code = "body_too_large"
    status = 413


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"
    status = 409


class InvariantViolation(AssertionError):
    """A broken invariant: a bug in our code or a tampered database."""


def require(condition: bool, message: str) -> None:
    """Assert an invariant; unlike `assert`, this is never compiled away."""
    if not condition:
        raise InvariantViolation(message)
