"""Typed errors.

`LedgerError` and its subclasses are expected failures: bad input, a refused operation.
They carry a stable `code`, the `field` at fault where there is one, and a reason.
`InvariantViolation` is a bug: it must stop the request loudly and is never swallowed.
"""

from __future__ import annotations


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
