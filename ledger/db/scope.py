"""A regulator key's scope (ledger/access.py supervises) as SQL: the lists a department or
street key reads are filtered in the query, never fetched whole and filtered after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select

from ledger.auth import Principal, Role
from ledger.db import custody_tables as c


def supervised(principal: Principal) -> ColumnElement[bool] | None:
    """The condition on merchants a scoped regulator key sees (ledger.access.covers); None
    for every other key, which this does not restrict (a district key sees all; the other
    roles have their own scopes)."""
    if principal.role != Role.regulator:
        return None
    if principal.department is not None:
        return c.Merchant.department == principal.department
    if principal.street is not None:
        return c.Merchant.street == principal.street
    return None


def supervised_ids(principal: Principal) -> Select[Any] | None:
    """The ids of the merchants a scoped regulator key sees, as a subquery; None: no limit."""
    condition = supervised(principal)
    return None if condition is None else select(c.Merchant.id).where(condition)


def within_scope(query: Any, principal: Principal, merchant_id: Any) -> Any:
    """`query` kept to the rows whose merchant (the column `merchant_id`) the key sees."""
    ids = supervised_ids(principal)
    return query if ids is None else query.where(merchant_id.in_(ids))
