"""Use cases of the ledger core. Each write is a command run inside one group commit.

Commands check everything they can before appending; `Books` (ledger/commands.py) gives them
the locked state, and is all they see of the write path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger import journal, limits
from ledger.auth import ISSUED_ROLES, NewKey, Role, check_scope, new_key
from ledger.books import AccountKind, TransactionDraft, parse_postings, reversal_of
from ledger.commands import Books, Command, IdKind, NewAccount, Reads
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.money import check_currency
from ledger.trust_store import KeyGrant


def storable(value: str, field: str) -> str:
    """Text PostgreSQL and the journal can hold: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise InvalidInput("must not contain NUL characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("must be valid Unicode (no lone surrogates)", field=field) from exc
    return value


def _text(raw: Mapping[str, Any], name: str, *, chars_max: int, required: bool = True,
          default: str = "") -> str:
    value = raw.get(name, None)
    if value is None:
        if required:
            raise InvalidInput("is required", field=name)
        return default
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=name)
    if len(value) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters", field=name)
    if required and not value.strip():
        raise InvalidInput("must not be blank", field=name)
    return storable(value, name)


def _optional_id(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    return _text(raw, name, chars_max=limits.owner_chars_max)


@dataclass(frozen=True)
class OpenAccount(Command):
    kind: AccountKind
    currency: str
    name: str
    merchant_id: str | None = None
    bank_id: str | None = None
    non_negative: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> OpenAccount:
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in AccountKind.__members__:
            raise InvalidInput(f"must be one of {', '.join(AccountKind)}", field="kind")
        non_negative = raw.get("non_negative", False)
        if not isinstance(non_negative, bool):
            raise InvalidInput("must be true or false", field="non_negative")
        return cls(AccountKind(kind), check_currency(raw.get("currency", "CNY")),
                   _text(raw, "name", chars_max=limits.name_chars_max),
                   _optional_id(raw, "merchant_id"), _optional_id(raw, "bank_id"), non_negative)

    def run(self, books: Books) -> dict[str, Any]:
        account_id = books.open_account(NewAccount(self.kind, self.name, self.merchant_id,
                                                   self.bank_id, self.currency,
                                                   self.non_negative))
        view = {"id": account_id, "kind": self.kind.value, "currency": self.currency,
                "name": self.name, "merchant_id": self.merchant_id, "bank_id": self.bank_id,
                "non_negative": self.non_negative}
        ref = books.append("account.opened", view)  # the entry that opens it
        return {**view, "balance_fen": 0, "opened_seq": ref.seq}


def transaction_view(seq: int, entry_hash: bytes, ts: str, draft: TransactionDraft
                     ) -> dict[str, Any]:
    return {"id": seq, "journal_seq": seq, "entry_hash": entry_hash.hex(), "ts": ts,
            "memo": draft.memo, "reverses": draft.reverses,
            "postings": [{"account_id": p.account_id, "amount_fen": p.amount_fen,
                          "currency": p.currency} for p in draft.postings]}


@dataclass(frozen=True)
class PostTransaction(Command):
    draft: TransactionDraft

    @classmethod
    def parse(cls, raw: object, field: str = "") -> PostTransaction:
        if not isinstance(raw, Mapping):
            raise InvalidInput("must be an object", field=field or None)
        prefix = f"{field}." if field else ""
        postings = parse_postings(raw.get("postings"), f"{prefix}postings")
        memo = _text(raw, "memo", chars_max=limits.memo_chars_max, required=False)
        return cls(TransactionDraft(postings, memo))

    def reads(self) -> Reads:
        return Reads(accounts=tuple(p.account_id for p in self.draft.postings))

    def run(self, books: Books) -> dict[str, Any]:
        ref = books.post(self.draft)
        return transaction_view(ref.seq, ref.entry_hash, ref.ts, self.draft)


@dataclass(frozen=True)
class ReverseTransaction(Command):
    original_id: int
    memo: str = ""

    def __post_init__(self) -> None:
        storable(self.memo, "memo")

    def run(self, books: Books) -> dict[str, Any]:
        postings = books.postings_of(self.original_id)
        if not postings:
            raise NotFound(f"transaction {self.original_id} does not exist", field="id")
        memo = self.memo or f"reversal of transaction {self.original_id}"
        draft = TransactionDraft(reversal_of(postings), memo, reverses=self.original_id)
        ref = books.post(draft)
        return transaction_view(ref.seq, ref.entry_hash, ref.ts, draft)


@dataclass(frozen=True)
class PostBatch(Command):
    """Many transactions in one request: each on its own, or all or nothing."""

    items: Sequence[PostTransaction]
    atomic: bool

    def reads(self) -> Reads:
        return Reads(accounts=tuple(i for item in self.items for i in item.reads().accounts))

    def run(self, books: Books) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for index, item in enumerate(self.items):
            checkpoint = books.checkpoint()
            try:
                results.append({"index": index, "status": 201, "transaction": item.run(books)})
            except LedgerError as error:
                books.rewind(checkpoint)
                if self.atomic:
                    raise type(error)(f"transactions[{index}]: {error.detail}",
                                      field=f"transactions[{index}].{error.field or ''}".rstrip(".")
                                      ) from error
                results.append({"index": index, "status": error.status,
                                "error": {"code": error.code, "field": error.field,
                                          "detail": error.detail}})
        return {"atomic": self.atomic, "results": results,
                "posted": sum(1 for r in results if r["status"] == 201)}


@dataclass(frozen=True)
class IssueKey(Command):
    """An operator issues a key for a filed merchant, a registered bank, a regulator or
    another operator; optionally expiring (rotation: issue the new key, then revoke the old)."""

    role: Role
    merchant_id: str | None = None
    bank_id: str | None = None
    label: str = ""
    expires_at: datetime | None = None
    department: str | None = None  # a regulator key's scope: a department, a street, or
    street: str | None = None  # neither (a district key, which sees every merchant)

    def __post_init__(self) -> None:
        for name in ("merchant_id", "bank_id", "label", "department", "street"):
            value = getattr(self, name)
            if value is not None:
                storable(value, name)
        if self.role not in ISSUED_ROLES:
            raise InvalidInput("consumers get their key with a one-time code "
                               "(POST /v1/consumer/keys)", field="role")
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise InvalidInput("must carry a time zone", field="expires_at")
            try:
                # Kept in UTC, as it is journaled: PostgreSQL refuses the offsets beyond
                # +-15:59 that Python takes (up to +-23:59), and a moment near year 1 or
                # 9999 may not convert at all.
                utc = self.expires_at.astimezone(UTC)
            except OverflowError as exc:
                raise InvalidInput("is out of range", field="expires_at") from exc
            object.__setattr__(self, "expires_at", utc)

    def run(self, books: Books) -> dict[str, Any]:
        check_scope(self.role, self.merchant_id, self.bank_id, self.department, self.street)
        if self.merchant_id is not None and not books.trust.merchant_filed(self.merchant_id):
            raise InvalidInput(f"merchant {self.merchant_id} is not filed", field="merchant_id")
        if self.bank_id is not None and not books.trust.bank_registered(self.bank_id):
            raise InvalidInput(f"bank {self.bank_id} is not registered (POST /v1/banks)",
                               field="bank_id")
        return issue_key(books, KeyGrant(self.role, self.merchant_id, self.bank_id,
                                         label=self.label, expires_at=self.expires_at,
                                         department=self.department, street=self.street))


def issue_key(books: Books, grant: KeyGrant) -> dict[str, Any]:
    """Append the key's issue and store its hash; the plaintext is only in the answer."""
    key: NewKey = new_key()
    key_id = books.draw_id(IdKind.api_key)
    expires = None if grant.expires_at is None else journal.format_ts(grant.expires_at)
    view = {"key_id": key_id, "prefix": key.prefix, "role": grant.role.value,
            "merchant_id": grant.merchant_id, "bank_id": grant.bank_id, "label": grant.label,
            "expires_at": expires}
    # Named only when set, so the entries of unscoped keys read as they always have.
    for name, value in (("consumer_id", grant.consumer_id), ("department", grant.department),
                        ("street", grant.street)):
        if value is not None:
            view[name] = value
    ref = books.append("key.issued", view)
    books.trust.add_key(key_id, key, grant, ref.seq)
    # The plaintext leaves once, in this answer; it is never stored or journaled.
    return {"department": grant.department, "street": grant.street, **view,
            "key": key.plaintext, "issued_seq": ref.seq}
