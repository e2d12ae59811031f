"""Who may act on what: every authorisation rule, decided once, for commands and queries alike.

Routes only authenticate (api/context.py makes the Principal); these decide. Where a caller
may not see a thing, it is told what it would be told of a missing one (`missing`), so
sequential ids and others' ids reveal nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.auth import Principal, Role
from ledger.custody.lifecycle import Card, Merchant
from ledger.errors import Forbidden, NotFound
from ledger.jobs import JobKind
from ledger.supervision.routines import DISTRICT, Scope, ScopeKind


def require_merchant_or_operator(principal: Principal, merchant_id: str,
                                 missing: NotFound) -> None:
    """The operator, or the merchant's own key. Any other role may never do this."""
    if principal.role == Role.operator:
        return
    if principal.role != Role.merchant:
        raise Forbidden(f"a {principal.role.value} key cannot do this (needs: merchant, "
                        "operator)")
    if principal.merchant_id != merchant_id:
        raise missing


def require_custodian(principal: Principal, merchant: Merchant, missing: NotFound) -> None:
    """The operator, or the merchant's custodian bank; another bank learns nothing."""
    if principal.role == Role.operator:
        return
    if principal.role == Role.bank and principal.bank_id == merchant.bank_id:
        return
    if principal.role == Role.bank:
        raise missing
    raise Forbidden("only the operator or the merchant's custodian bank can do this")


def require_bank(principal: Principal, bank_id: str) -> None:
    """The operator, or this very bank."""
    if principal.role == Role.operator:
        return
    if principal.role == Role.bank and principal.bank_id == bank_id:
        return
    raise Forbidden("only the operator or this bank can do this")


def may_act_on(principal: Principal, card: Card) -> bool:
    """The operator on any card, a merchant on its own cards, a consumer on the cards sold
    to them."""
    if principal.role == Role.operator:
        return True
    if principal.role == Role.merchant:
        return principal.merchant_id == card.merchant_id
    if principal.role == Role.consumer:
        return principal.consumer_id == card.consumer_id
    return False


def require_card(principal: Principal, card: Card | None, card_id: str) -> Card:
    """The card, if this principal may act on it; to anyone else an existing card and a
    missing one answer alike."""
    if card is None or not may_act_on(principal, card):
        raise NotFound(f"card {card_id} does not exist", field="card_id")
    return card


def require_cardholder(principal: Principal, card: Card | None, what: str, field: str
                       ) -> Card:
    """The card of something (a consumption) only its cardholder, with their own consumer
    key, may settle: to anyone else it answers as missing."""
    consumer_id = principal.require_consumer()
    if card is None or card.consumer_id != consumer_id:
        raise NotFound(f"{what} does not exist", field=field)
    return card


def require_operator(principal: Principal) -> None:
    principal.require_role(Role.operator)


def require_overseer(principal: Principal) -> None:
    """The operator or a regulator of any scope: what names no merchant (the service's
    metrics), or a list each merchant of which is then filtered by `supervises` (in SQL:
    ledger/db/scope.py)."""
    principal.require_role(Role.operator, Role.regulator)


def is_scoped(principal: Principal) -> bool:
    """A regulator key scoped to a department or a street (not a district key)."""
    return principal.department is not None or principal.street is not None


def require_district(principal: Principal) -> None:
    """The operator or a district regulator key: reads across every merchant at once (the
    whole journal, every key). A department or street key is refused for its scope."""
    principal.require_role(Role.operator, Role.regulator)
    if is_scoped(principal):
        raise Forbidden("a department or street regulator key reads its own merchants only; "
                        "this is for the operator or a district key")


def covers(principal: Principal, department: str, street: str | None) -> bool:
    """Whether a merchant of this department and street is in a regulator key's scope: a
    district key covers all, a department key its department's, a street key its street's."""
    if principal.department is not None:
        return department == principal.department
    if principal.street is not None:
        return street == principal.street
    return True


def supervises(principal: Principal, merchant: Merchant) -> bool:
    """The operator supervises every merchant; a regulator key the merchants of its scope
    (a district key: all; a department key: its department's; a street key: its street's,
    属地); anyone else none."""
    if principal.role == Role.operator:
        return True
    if principal.role != Role.regulator:
        return False
    return covers(principal, merchant.department, merchant.street)


def require_supervisor(principal: Principal, merchant: Merchant, missing: NotFound) -> None:
    """The operator or a regulator whose scope holds this merchant. A regulator outside its
    scope is told what it would be told of a missing merchant; any other role is refused for
    its role."""
    principal.require_role(Role.operator, Role.regulator)
    if not supervises(principal, merchant):
        raise missing


def handles_complaint(principal: Principal, department: str, street: str | None) -> bool:
    """The operator handles every complaint; a regulator key those routed into its scope (a
    complaint re-routed to another department is that department's now)."""
    if principal.role == Role.operator:
        return True
    return principal.role == Role.regulator and covers(principal, department, street)


def require_complaint_handler(principal: Principal, department: str, street: str | None,
                              missing: NotFound) -> None:
    """The operator, or a regulator whose scope the complaint is routed into; to a regulator
    outside it the complaint answers as missing, any other role is refused for its role."""
    principal.require_role(Role.operator, Role.regulator)
    if not handles_complaint(principal, department, street):
        raise missing


def require_till(principal: Principal) -> None:
    """A sale is made at the till: the merchant's key, or the operator's."""
    principal.require_role(Role.merchant, Role.operator)


# -- reads ---------------------------------------------------------------------------------

BOOK_READERS = (Role.operator, Role.regulator, Role.merchant, Role.bank)


def require_book_reader(principal: Principal) -> None:
    """Roles that may read some merchant's books: decided before anything exists or not."""
    principal.require_role(*BOOK_READERS)


@dataclass(frozen=True, slots=True)
class MerchantBooks:
    """Whose books a read touches: the merchant, and what decides who else may read them (its
    custodian bank, its department and its street)."""

    merchant_id: str
    bank_id: str
    department: str
    street: str | None


def may_read_merchant(principal: Principal, books: MerchantBooks) -> bool:
    """Every merchant's books for the operator; those of its scope for a regulator; its own
    for a merchant; its custodian bank's merchants' for a bank."""
    if principal.role == Role.operator:
        return True
    if principal.role == Role.regulator:
        return covers(principal, books.department, books.street)
    if principal.role == Role.merchant:
        return principal.merchant_id == books.merchant_id
    return principal.role == Role.bank and principal.bank_id == books.bank_id


def may_read_card(reader: Principal, consumer_id: str, books: MerchantBooks) -> bool:
    """The cardholder's consumer key, or a key that may read the merchant's books. (The sale's
    receipt code reads the card too: ledger/custody/cards.py token_hash.)"""
    if reader.role == Role.consumer:
        return reader.consumer_id == consumer_id
    return may_read_merchant(reader, books)


JOURNAL_READERS = (Role.operator, Role.regulator, Role.bank)


def require_journal_reader(principal: Principal) -> None:
    """The journal, its proofs and its heads: the operator, regulators, banks (a bank sees the
    entries of its own merchants: ledger/db/queries.py)."""
    principal.require_role(*JOURNAL_READERS)


def require_bank_reader(principal: Principal, bank_id: str) -> None:
    """A bank's files and instructions: the operator, a regulator, or this very bank."""
    if principal.role in (Role.operator, Role.regulator):
        return
    if principal.role == Role.bank and principal.bank_id == bank_id:
        return
    raise Forbidden("only the operator, a regulator or this bank can read this")


def bank_scope(principal: Principal, asked: str | None, what: str) -> str | None:
    """The bank whose `what` a list shows: a bank key only its own (asking for another's is
    refused); any other reader the bank it asked for, or every bank (None)."""
    if principal.role != Role.bank:
        return asked
    if asked is not None and asked != principal.bank_id:
        raise Forbidden(f"a bank key reads only its own bank's {what}")
    return principal.bank_id


def merchant_scope(principal: Principal, asked: str | None) -> str | None:
    """The merchant whose items a list shows: a merchant key only its own."""
    return principal.merchant_id if principal.role == Role.merchant else asked


def require_job_role(principal: Principal) -> None:
    """Roles that may read some long job: decided before the job is looked up."""
    principal.require_role(Role.operator, Role.bank)


def require_job_reader(principal: Principal, kind: JobKind, bank_id: str | None,
                       missing: NotFound) -> None:
    """A long job (ledger/jobs.py) is read by who may do what it does: a statement import
    by the operator or its bank (another bank is told it does not exist), the rest by the
    operator."""
    if kind is JobKind.statement_import and principal.role == Role.bank:
        if principal.bank_id != bank_id:
            raise missing
        return
    require_operator(principal)


def report_scope(principal: Principal, asked: Scope) -> Scope:
    """The scope of a report this key may make (日管控/周排查/月调度/季度报告): the operator
    and a district key any; a department or street key its own only, which is also what it
    gets when it names none (the district)."""
    require_overseer(principal)
    own = own_scope(principal)
    if own.kind == ScopeKind.district or asked == own:
        return asked
    if asked.kind == ScopeKind.district:
        return own
    raise Forbidden(f"this key's reports are of its own {own.kind.value} ({own.name}) only")


def own_scope(principal: Principal) -> Scope:
    if principal.department is not None:
        return Scope(ScopeKind.department, principal.department)
    if principal.street is not None:
        return Scope(ScopeKind.street, principal.street)
    return DISTRICT


def reads_report(principal: Principal, scope: Scope) -> bool:
    """Whether a stored report is this key's to read: the operator's and a district key's
    all; a scoped key's those of its own scope."""
    if principal.role not in (Role.operator, Role.regulator):
        return False
    own = own_scope(principal)
    return own.kind == ScopeKind.district or own == scope
