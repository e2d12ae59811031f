"""Every list the API answers is paged (api/paging.py): walked page by page from the first,
each list gives its whole set once, in id order; a page over the list's maximum is refused;
and /v1/breaks' summary counts every break its filter matches, on every page alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import limits
from ledger.auth import Role
from tests.support.db import issue_key, register_bank, rows
from tests.support.driver import Banking, Merchant
from tests.support.http import Headers, assert_problem, bearer, every_page
from tests.support.statements import Stmt, camt053, entry

BANK, OTHER_BANK = "PAGE-BANK", "PAGE-OTHER"
SALE_DAY = date(2026, 11, 1)  # a Sunday
DAY = date(2026, 11, 2)  # the Monday that ends the weekly release period
PAGE = 2  # items per page in these walks: every list below holds more


@dataclass(frozen=True)
class World:
    merchants: list[Merchant]  # three at BANK, one at OTHER_BANK
    regulator: Headers


@pytest.fixture(scope="module")
def world(banking: Banking, engine: Engine) -> World:
    """At BANK, three merchants, each with a release, two refunds and a statement of two
    lines nobody expects (two breaks); one break resolved. At OTHER_BANK, a merchant with a
    refund. A few more banks."""
    banking.set_today(SALE_DAY)
    merchants = [banking.merchant(BANK, industry="美容美发") for _ in range(3)]
    merchants.append(banking.merchant(OTHER_BANK, industry="美容美发"))
    for m in merchants:
        sale = banking.sell_at(m, 100_000)
        banking.consume(sale["card_id"], m.key, amount_fen=50_000)
        if m.bank_id == BANK:
            banking.run_releases(DAY, m.id)
            banking.refund(m, banking.sell_at(m, 30_000)["card_id"])
        banking.refund(m, banking.sell_at(m, 20_000)["card_id"])
    banking.set_today(DAY)
    for n, m in enumerate(merchants[:3]):
        statement = Stmt(m.account, f"PAGE-S{n}", 0, DAY, (
            entry("CRDT", 100 + n, DAY, cref=f"PAYER-{n}-A"),
            entry("CRDT", 200 + n, DAY, cref=f"PAYER-{n}-B")))
        banking.import_file(BANK, camt053([statement], message_id=f"PAGE-{n}"))
    first = banking.breaks(merchant_id=merchants[0].id, status="open")["items"][0]
    banking.ok("POST", f"/v1/breaks/{first['id']}/resolve", banking.operator,
               {"resolution": "the payer's own transfer, returned"})
    for n in range(3):
        register_bank(engine, f"PAGE-MORE-{n}")
    return World(merchants, bearer(issue_key(engine, Role.regulator)))


def walked(banking: Banking, path: str, headers: Headers, key: str = "id",
           **filters: str) -> list[Any]:
    """The keys of every item of the list, walked PAGE at a time: in order, none twice, over
    more than one page."""
    items = every_page(banking.client, path, headers, PAGE, **filters)
    keys = [i[key] for i in items]
    assert keys == sorted(set(keys)), keys
    assert len(keys) > PAGE, f"{path} fits one page: the walk shows nothing"
    return keys


def ids(engine: Engine, sql: str, **params: Any) -> list[Any]:
    return [r["id"] for r in rows(engine, sql + " ORDER BY id", **params)]


def test_refunds_and_releases_are_walked_whole(banking: Banking, engine: Engine,
                                               world: World) -> None:
    for kind in ("refunds", "releases"):
        everything = ids(engine, f"SELECT id FROM {kind[:-1]}_instructions")
        assert walked(banking, f"/v1/{kind}", banking.operator) == everything
    own = ids(engine, "SELECT r.id FROM refund_instructions r JOIN merchants m "
                      "ON m.id = r.merchant_id WHERE m.bank_id = :b", b=BANK)
    assert walked(banking, "/v1/refunds", banking.bank(BANK)) == own  # its merchants' only
    m = world.merchants[0]  # a merchant's own, filtered, a refund a page
    assert [i["id"] for i in every_page(banking.client, "/v1/refunds", m.key, 1,
                                        status="pending")] == ids(
        engine, "SELECT id FROM refund_instructions WHERE merchant_id = :m "
                "AND status = 'pending'", m=m.id)


def test_breaks_are_walked_whole_with_the_summary_of_the_whole_filtered_set(
        banking: Banking, engine: Engine, world: World) -> None:
    assert walked(banking, "/v1/breaks", banking.operator) == ids(
        engine, "SELECT id FROM reconciliation_breaks")
    assert walked(banking, "/v1/breaks", banking.operator, status="open") == ids(
        engine, "SELECT id FROM reconciliation_breaks WHERE status = 'open'")
    everything = every_page(banking.client, "/v1/breaks", banking.operator, 1000)
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for b in everything:  # the summary as it was made from every item
        if b["status"] == "open":
            g = groups.setdefault((b["bank_id"], b["merchant_id"]), {
                "bank_id": b["bank_id"], "merchant_id": b["merchant_id"], "open": 0,
                "amount_fen": 0, "oldest_age_days": 0})
            g["open"] += 1
            g["amount_fen"] += b["amount_fen"]
            g["oldest_age_days"] = max(g["oldest_age_days"], b["age_days"])
    summary = {"open": sum(g["open"] for g in groups.values()),
               "by_bank_merchant": [groups[k] for k in sorted(groups,
                                                              key=lambda k: (k[0], k[1] or ""))]}
    assert summary["open"] > PAGE and len(summary["by_bank_merchant"]) == 3
    after = 0
    while after is not None:  # every page carries the whole set's summary
        page = banking.breaks(after=str(after), limit=str(PAGE))
        assert {k: page[k] for k in summary} == summary
        after = page["next_after"]
    m = world.merchants[0]
    one = banking.breaks(merchant_id=m.id, limit="1")
    assert (len(one["items"]), one["open"]) == (1, 1)  # one of its two resolved
    assert one["by_bank_merchant"] == [g for g in summary["by_bank_merchant"]
                                       if g["merchant_id"] == m.id]


def test_cross_verifications_and_payment_instructions_are_walked_whole(
        banking: Banking, engine: Engine, world: World) -> None:
    assert walked(banking, "/v1/cross-verifications", banking.operator) == ids(
        engine, "SELECT max(id) AS id FROM cross_verifications GROUP BY bank_id, account")
    pending = [r["id"] for r in rows(
        engine, "SELECT i.end_to_end_id AS id FROM release_instructions i JOIN merchants m "
                "ON m.id = i.merchant_id WHERE m.bank_id = :b AND i.status = 'pending' "
                "UNION ALL SELECT i.end_to_end_id FROM refund_instructions i JOIN merchants m "
                "ON m.id = i.merchant_id WHERE m.bank_id = :b AND i.status = 'pending'",
        b=BANK)]
    assert walked(banking, f"/v1/banks/{BANK}/instructions", banking.bank(BANK),
                  key="end_to_end_id", format="json") == sorted(pending)
    assert len(pending) == 9


def test_rule_sets_banks_and_exposures_are_walked_whole(
        banking: Banking, engine: Engine, world: World) -> None:
    assert walked(banking, "/v1/rule-sets", banking.operator) == ids(
        engine, "SELECT id FROM rule_sets")
    assert walked(banking, "/v1/banks", banking.operator) == ids(
        engine, "SELECT id FROM banks")
    merchants = ids(engine, "SELECT id FROM merchants")
    assert walked(banking, "/v1/exposure", banking.operator, key="merchant_id") == merchants
    assert walked(banking, "/v1/audit/merchants", world.regulator,
                  key="merchant_id") == merchants
    assert walked(banking, "/v1/audit/merchants", banking.bank(BANK),
                  key="merchant_id") == sorted(m.id for m in world.merchants[:3])
    totals = banking.ok("GET", "/v1/audit/totals", world.regulator)
    assert totals["all"]["merchants"] == len(merchants)  # over every page


PAGED = [("/v1/refunds", {}, limits.list_page_items_max),
         ("/v1/releases", {}, limits.list_page_items_max),
         ("/v1/breaks", {}, limits.list_page_items_max),
         ("/v1/cross-verifications", {}, limits.list_page_items_max),
         (f"/v1/banks/{BANK}/instructions", {"format": "json"}, limits.list_page_items_max),
         ("/v1/rule-sets", {}, limits.list_page_items_max),
         ("/v1/banks", {}, limits.list_page_items_max),
         ("/v1/exposure", {}, limits.exposure_page_merchants_max),
         ("/v1/audit/merchants", {}, limits.exposure_page_merchants_max)]


@pytest.mark.parametrize(("path", "params", "most"), PAGED)
def test_a_page_over_the_lists_maximum_is_refused(
        banking: Banking, world: World, path: str, params: dict[str, str], most: int) -> None:
    headers = world.regulator
    assert banking.client.get(path, headers=headers,
                              params={**params, "limit": most}).status_code == 200
    for limit in (most + 1, 0):
        assert_problem(banking.client.get(path, headers=headers,
                                          params={**params, "limit": limit}),
                       422, "invalid_input", "limit")
