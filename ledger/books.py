"""Double entry: accounts, postings, transactions and the rules they obey.

Sign convention: a posting's amount is signed, debit positive and credit negative, so a
balanced transaction sums to zero per currency. An account's stored balance is the plain
sum of its postings; its *normal* balance flips the sign for credit-normal kinds
(liability, equity, income), so a consumer's card liability of 100 fen reads as +100.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ledger import limits
from ledger.errors import InsufficientFunds, InvalidInput, NotFound
from ledger.money import check_amount, check_currency


class AccountKind(StrEnum):
    asset = "asset"
    liability = "liability"
    equity = "equity"
    income = "income"
    expense = "expense"


DEBIT_NORMAL_KINDS = frozenset({AccountKind.asset, AccountKind.expense})


def normal_sign(kind: AccountKind | str) -> int:
    return 1 if AccountKind(kind) in DEBIT_NORMAL_KINDS else -1


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    kind: AccountKind
    currency: str
    non_negative: bool
    balance_fen: int  # plain sum of postings, debit positive

    @property
    def normal_balance_fen(self) -> int:
        return self.balance_fen * normal_sign(self.kind)


@dataclass(frozen=True, slots=True)
class Posting:
    account_id: int
    amount_fen: int  # debit positive, credit negative
    currency: str


@dataclass(frozen=True, slots=True)
class TransactionDraft:
    postings: tuple[Posting, ...]
    memo: str = ""
    reverses: int | None = None


def parse_postings(raw: object, field: str = "postings") -> tuple[Posting, ...]:
    """Turn untrusted posting dicts into Postings, naming the field at fault."""
    if not isinstance(raw, list):
        raise InvalidInput("must be a list of postings", field=field)
    if not limits.postings_per_transaction_min <= len(raw) <= limits.postings_per_transaction_max:
        raise InvalidInput(
            f"must hold between {limits.postings_per_transaction_min} and "
            f"{limits.postings_per_transaction_max} postings", field=field)
    postings = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput("must be an object", field=where)
        account_id = item.get("account_id")
        if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id <= 0:
            raise InvalidInput("must be a positive account id", field=f"{where}.account_id")
        amount = check_amount(item.get("amount_fen"), f"{where}.amount_fen", allow_negative=True)
        currency = item.get("currency", "CNY")
        postings.append(Posting(account_id, amount, check_currency(currency, f"{where}.currency")))
    return tuple(postings)


def check_balanced(postings: Sequence[Posting], field: str = "postings") -> None:
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.currency] += p.amount_fen
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        detail = ", ".join(f"{c} off by {s} fen" for c, s in sorted(unbalanced.items()))
        raise InvalidInput(f"postings must sum to zero per currency ({detail})", field=field)


def apply_postings(accounts: Mapping[int, Account], postings: Iterable[Posting],
                   field: str = "postings") -> dict[int, Account]:
    """Check postings against the accounts and return the accounts with new balances.

    Raises for an unknown account, a currency that is not the account's, or a balance that
    would break an account's never-negative flag. Pure: the caller persists the result.
    """
    updated: dict[int, Account] = {}
    for i, p in enumerate(postings):
        account = updated.get(p.account_id) or accounts.get(p.account_id)
        if account is None:
            raise NotFound(f"account {p.account_id} does not exist",
                           field=f"{field}[{i}].account_id")
        if account.currency != p.currency:
            raise InvalidInput(f"account {account.id} holds {account.currency}, not {p.currency}",
                               field=f"{field}[{i}].currency")
        new_balance = account.balance_fen + p.amount_fen
        if abs(new_balance) > 2**63 - 1:
            raise InvalidInput("balance would leave the representable range", field=field)
        updated[p.account_id] = Account(account.id, account.kind, account.currency,
                                        account.non_negative, new_balance)
    for account in updated.values():
        if account.non_negative and account.normal_balance_fen < 0:
            raise InsufficientFunds(
                f"account {account.id} must not go negative "
                f"(it would be {account.normal_balance_fen} fen)", field=field)
    return updated


def reversal_of(postings: Sequence[Posting]) -> tuple[Posting, ...]:
    return tuple(Posting(p.account_id, -p.amount_fen, p.currency) for p in postings)
