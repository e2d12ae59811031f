"""What the trust commands read and write, typed: banks, keys and their revocations, the
consumers' one-time codes. The trust half of the doorway (`ledger.commands.Books.trust`);
ledger/db/trust_store.py implements it.

Reads by id (a bank, a merchant, a key) are right at any point of a command: they see the
batch's own writes. Queries (which rows match a condition) are marked below: each sees every
earlier command's writes and is refused once the running command has changed something, so a
command runs its queries first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger.auth import NewKey, Role


@dataclass(frozen=True, slots=True)
class Key:
    """An issued API key as a revocation sees it: whose it is, and whether it still works."""

    id: int
    role: Role
    merchant_id: str | None
    bank_id: str | None
    consumer_id: str | None
    revoked_seq: int | None


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a new key may do, and for how long: journaled, then stored with its hash."""

    role: Role
    merchant_id: str | None = None
    bank_id: str | None = None
    consumer_id: str | None = None
    label: str = ""
    expires_at: datetime | None = None
    # A regulator key's scope (ledger/auth.py Principal): a department or a street, or neither.
    department: str | None = None
    street: str | None = None


@dataclass(frozen=True, slots=True)
class OneTimeCode:
    """A code sent to a consumer: only its keyed hash is kept."""

    id: int
    consumer_id: str
    code_hash: bytes
    created_at: datetime
    expires_at: datetime
    attempts: int
    used_at: datetime | None


class TrustStore(Protocol):
    # -- by id ---------------------------------------------------------------------------
    def bank_registered(self, bank_id: str) -> bool: ...
    def merchant_filed(self, merchant_id: str) -> bool: ...
    def key(self, key_id: int) -> Key | None: ...

    # -- queries -------------------------------------------------------------------------
    def bank_code_taken(self, code: str) -> str | None:
        """The bank registered with this CNAPS code or BIC, if any."""
        ...

    def other_lasting_operator_keys(self, key_id: int) -> int:
        """Operator keys other than this one that are not revoked and never expire: an
        expiring key would leave nobody to administer Yufu once its time is up."""
        ...

    def codes_sent_since(self, consumer_id: str, since: datetime) -> list[datetime]:
        """When the consumer's codes since then were made, oldest first."""
        ...

    def latest_code(self, consumer_id: str, now: datetime) -> OneTimeCode | None:
        """The consumer's newest code that is unused and unexpired (locked)."""
        ...

    # -- writes --------------------------------------------------------------------------
    def add_bank(self, bank_id: str, name: str, code: str, registered_seq: int) -> None: ...
    def add_key(self, key_id: int, key: NewKey, grant: KeyGrant, issued_seq: int) -> None: ...
    def revoke_key(self, key_id: int, reason: str, revoked_seq: int) -> None: ...
    def add_code(self, code: OneTimeCode) -> None: ...
    def count_attempt(self, code_id: int, attempts: int) -> None: ...
    def use_code(self, code_id: int, used_at: datetime) -> None: ...
