"""Trust use cases: registering custodian banks, revoking keys, and the consumer's own
credential (a one-time code, then a consumer key). Each a command in one group commit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from ledger import consumer
from ledger.auth import Principal, Role
from ledger.commands import Books, Command, IdKind
from ledger.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from ledger.service import issue_key, storable
from ledger.trust_store import KeyGrant, OneTimeCode

bank_id_chars_max: Final = 64
# One answer for a wrong code, a spent one and none at all: it tells nobody whether a code is
# outstanding for a phone, nor how many tries are left on it.
WRONG_CODE: Final = "the code is wrong or has expired: ask for a new one if it keeps failing"
# CNAPS bank codes (大额支付系统行号) are 12 digits; SWIFT BICs 8 or 11 characters.
BANK_CODE_RE = re.compile(r"^(?:[0-9]{12}|[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\Z")
BANK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


@dataclass(frozen=True)
class RegisterBank(Command):
    bank_id: str
    name: str
    code: str

    def __post_init__(self) -> None:
        if not BANK_ID_RE.match(self.bank_id):
            raise InvalidInput("1 to 64 letters, digits, '.', '_' or '-'", field="id")
        if not BANK_CODE_RE.match(self.code):
            raise InvalidInput("a CNAPS bank code (12 digits) or a SWIFT BIC (8 or 11)",
                               field="code")
        storable(self.name, "name")

    def run(self, books: Books) -> dict[str, Any]:
        taken = books.trust.bank_code_taken(self.code)  # a query: first
        if books.trust.bank_registered(self.bank_id):
            raise Conflict(f"bank {self.bank_id} is already registered", field="id")
        if taken is not None:
            raise Conflict(f"code {self.code} is bank {taken}'s", field="code")
        view = {"bank_id": self.bank_id, "name": self.name, "code": self.code}
        entry = books.append("bank.registered", view)
        books.trust.add_bank(self.bank_id, self.name, self.code, entry.seq)
        return {"id": self.bank_id, "name": self.name, "code": self.code,
                "journal_seq": entry.seq}


@dataclass(frozen=True)
class RevokeKey(Command):
    """An operator revokes any key; a merchant, bank or consumer may revoke its own (a lost
    phone, a leaked till). The last active operator key stays, or nobody could administer
    Yufu."""

    principal: Principal | None  # None: the CLI, run by whoever holds the database
    key_id: int
    reason: str

    def run(self, books: Books) -> dict[str, Any]:
        p = self.principal
        if p is not None:
            p.require_writer()  # a regulator writes nothing, not even its own revocation
        key = books.trust.key(self.key_id)
        own = p is not None and p.key_id == self.key_id
        if key is None or (p is not None and p.role != Role.operator and not own):
            # Decided before existence: another's key id and a missing one answer alike.
            raise NotFound(f"key {self.key_id} does not exist", field="key_id")
        if key.revoked_seq is not None:
            raise Conflict(f"key {self.key_id} is already revoked", field="key_id")
        if key.role == Role.operator and \
                books.trust.other_lasting_operator_keys(self.key_id) == 0:
            raise Conflict("the last active operator key cannot be revoked: issue another "
                           "that does not expire first", field="key_id")
        view = {"key_id": self.key_id, "role": key.role.value, "merchant_id": key.merchant_id,
                "bank_id": key.bank_id, "consumer_id": key.consumer_id,
                "reason": storable(self.reason, "reason")}
        entry = books.append("key.revoked", view)
        books.trust.revoke_key(self.key_id, self.reason, entry.seq)
        return {**view, "revoked": True, "journal_seq": entry.seq}


@dataclass(frozen=True)
class RequestCode(Command):
    """Store a new one-time code for the consumer; the caller sends it once this commits."""

    consumer_id: str
    code_hash: bytes
    now: datetime

    def run(self, books: Books) -> dict[str, Any]:
        since = self.now - timedelta(seconds=consumer.codes_window_s)
        sent = books.trust.codes_sent_since(self.consumer_id, since)
        if len(sent) >= consumer.codes_per_consumer_max:
            wait = consumer.codes_window_s - (self.now - sent[0]).total_seconds()
            raise RateLimited(f"at most {consumer.codes_per_consumer_max} codes an hour are "
                              "sent to one phone", retry_after_s=int(wait) + 1, field="phone")
        books.trust.add_code(OneTimeCode(
            books.draw_id(IdKind.consumer_code), self.consumer_id, self.code_hash, self.now,
            consumer.code_expiry(self.now), 0, None))
        return {"sent": True, "expires_in_s": consumer.code_ttl_s}


@dataclass(frozen=True)
class VerifyCode(Command):
    """A right code gives the consumer a key bound to their pseudonym; a wrong one counts
    against the code (and is answered, not raised, so the count is kept)."""

    consumer_id: str
    code: str
    secret: bytes
    now: datetime
    label: str = ""

    def run(self, books: Books) -> dict[str, Any]:
        code = books.trust.latest_code(self.consumer_id, self.now)
        if code is None or code.attempts >= consumer.code_attempts_max:
            raise Unauthorized(WRONG_CODE, field="code")
        if not consumer.code_matches(self.secret, self.consumer_id, self.code, code.code_hash):
            attempts = code.attempts + 1
            books.trust.count_attempt(code.id, attempts)
            return {"verified": False,
                    "attempts_left": consumer.code_attempts_max - attempts}
        books.trust.use_code(code.id, self.now)
        issued = issue_key(books, KeyGrant(Role.consumer, consumer_id=self.consumer_id,
                                           label=self.label,
                                           expires_at=consumer.key_expiry(self.now)))
        return {"verified": True, **issued}
