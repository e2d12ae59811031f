"""API keys and principals: who may do what. Pure: the database only stores the hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ledger.errors import Forbidden, InvalidInput, Unauthorized

KEY_PREFIX = "yufu"
prefix_hex_chars = 16
secret_bytes = 32


class Role(StrEnum):
    operator = "operator"
    merchant = "merchant"
    bank = "bank"
    regulator = "regulator"
    # A cardholder, after proving control of the phone number (or external id) the card was
    # sold to with a one-time code: every card sold to that pseudonym is theirs.
    consumer = "consumer"


# The roles a key can be issued for by an operator; consumers get theirs by one-time code.
ISSUED_ROLES = (Role.operator, Role.merchant, Role.bank, Role.regulator)
# Who wrote a journal entry when no key did: tree heads, bootstrap, scheduled jobs.
SYSTEM_ACTOR: Mapping[str, Any] = {"role": "system"}


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    role: Role
    merchant_id: str | None = None
    bank_id: str | None = None
    consumer_id: str | None = None
    # A regulator key's scope: one department (行业主管部门) or one street (属地), or neither
    # (a district key, which sees every merchant): ledger/access.py supervises.
    department: str | None = None
    street: str | None = None

    @property
    def actor(self) -> dict[str, Any]:
        """How the journal names this key's writes (docs/journal-format.md)."""
        named: dict[str, Any] = {"key_id": self.key_id, "role": self.role.value}
        if self.consumer_id is not None:
            named["consumer_id"] = self.consumer_id
        if self.department is not None:
            named["department"] = self.department
        if self.street is not None:
            named["street"] = self.street
        return named

    def require_consumer(self) -> str:
        if self.role != Role.consumer or self.consumer_id is None:
            raise Forbidden("only the cardholder's own consumer key can do this")
        return self.consumer_id

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"a {self.role.value} key cannot do this (needs: {allowed})")

    def require_writer(self) -> None:
        if self.role == Role.regulator:
            raise Forbidden("a regulator key can only read")

    def may_read_account(self, merchant_id: str | None, bank_id: str | None) -> bool:
        if self.role in (Role.operator, Role.regulator):
            return True
        if self.role == Role.merchant:
            return merchant_id is not None and merchant_id == self.merchant_id
        if self.role == Role.bank:
            return bank_id is not None and bank_id == self.bank_id
        return False


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    secret_hash: bytes
    plaintext: str


def new_key() -> NewKey:
    prefix = secrets.token_hex(prefix_hex_chars // 2)
    secret = secrets.token_urlsafe(secret_bytes)
    return NewKey(prefix, hash_secret(secret), f"{KEY_PREFIX}_{prefix}_{secret}")


def hash_secret(secret: str) -> bytes:
    # Keys are 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).digest()


def split_key(presented: str) -> tuple[str, str]:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != prefix_hex_chars:
        raise Unauthorized("the API key is malformed")
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


# Answers that carry a credential shown once: an issued key, a card's receipt code.
SECRET_FIELDS = ("key", "receipt_code")


def without_secrets(body: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as it may be kept (an Idempotency-Key's first result) and replayed: what it
    showed once is withheld, and named, so a secret never rests in the database in clear."""
    kept = {k: v for k, v in body.items() if k not in SECRET_FIELDS}
    withheld = [k for k in SECRET_FIELDS if k in body]
    return {**kept, "withheld": withheld} if withheld else kept


# The operator acting on the machine itself (the `yufu` CLI, the service's first start), which
# needs the database's own credentials, not a key: key id 0 is never issued.
LOCAL_OPERATOR = Principal(key_id=0, role=Role.operator)


def cli_actor(os_user: str) -> dict[str, Any]:
    """The actor of a write made with the `yufu` CLI, which needs the database's own
    credentials (so only the operator can run it): named by the OS account that ran it."""
    return {"role": Role.operator.value, "via": "cli", "os_user": os_user}


def check_scope(role: Role, merchant_id: str | None, bank_id: str | None,
                department: str | None = None, street: str | None = None) -> None:
    if (role == Role.merchant) != (merchant_id is not None):
        raise InvalidInput("a merchant key, and only a merchant key, names its merchant",
                           field="merchant_id")
    if (role == Role.bank) != (bank_id is not None):
        raise InvalidInput("a bank key, and only a bank key, names its bank", field="bank_id")
    for field, scope in (("department", department), ("street", street)):
        if scope is not None and role != Role.regulator:
            raise InvalidInput(f"only a regulator key is scoped to a {field}", field=field)
        if scope is not None and not scope.strip():
            raise InvalidInput(f"name the {field}, or leave it out for a district key",
                               field=field)
    if department is not None and street is not None:
        raise InvalidInput("a regulator key is scoped to a department or to a street, not "
                           "both", field="street")
