"""Coverage and exposure by street (属地) as well as by industry and department
(GET /v1/audit/totals `by_street`): every merchant the key sees in its street's group, those
with no street registered in one group of their own (street null, last), each group summed
as the merchants' own exposure says."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

from tests.support.driver import Driver
from tests.support.http import Headers, bearer

SPORTS = "体育健身"
streets = itertools.count()


def regulator(client: TestClient, operator: Headers, **scope: str) -> Headers:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def sold(custody: Driver, merchant_id: str, price_fen: int) -> None:
    """One stored-value card sold at this price (its money on its way into custody)."""
    key = custody.merchant_key(merchant_id)
    product = custody.product(merchant_id, key, kind="stored_value", price_fen=price_fen,
                              validity_months=3)
    custody.sell(product["id"], key)


def every_merchant(custody: Driver, key: Headers) -> dict[str, Any]:
    """Every merchant's exposure the key sees, by id, over every page."""
    found: dict[str, Any] = {}
    after: str | None = ""
    while after is not None:
        page = custody.ok("GET", "/v1/audit/merchants", key, params={"after": after})
        found.update((i["merchant_id"], i) for i in page["items"])
        after = page["next_after"]
    return found


def test_totals_by_street_sum_each_streets_merchants_and_group_those_without_one_last(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    north, south = (f"总额街道{next(streets)}" for _ in range(2))
    a = custody.file(SPORTS, street=north)
    b = custody.file(SPORTS, street=north)
    c = custody.file(SPORTS, street=south)
    nowhere = custody.file(SPORTS)
    sold(custody, a["id"], 100_000)
    sold(custody, b["id"], 50_000)
    sold(custody, c["id"], 30_000)
    district = regulator(app_client, operator)
    totals = custody.ok("GET", "/v1/audit/totals", district)
    groups = {g["street"]: g for g in totals["by_street"]}
    exposure = every_merchant(custody, district)
    for street, members in ((north, (a, b)), (south, (c,))):
        mine = [exposure[m["id"]] for m in members]
        liability = sum(i["card_liability_fen"] for i in mine)
        custody_fen = sum(i["custody_balance_fen"] for i in mine)
        assert groups[street] == {
            "street": street, "merchants": len(mine), "cards": len(mine),
            "card_liability_fen": liability, "custody_balance_fen": custody_fen,
            "coverage_ratio_bp": custody_fen * 10_000 // liability}
    assert groups[north]["card_liability_fen"] == 150_000
    # Named streets in order, then the merchants with none (null) in one group.
    named = [g["street"] for g in totals["by_street"]]
    assert named[-1] is None and named[:-1] == sorted(named[:-1])
    # Every merchant in exactly one street's group: the groups add up to the whole.
    assert sum(g["merchants"] for g in totals["by_street"]) == totals["all"]["merchants"] \
        == len(exposure)
    for figure in ("cards", "card_liability_fen", "custody_balance_fen"):
        assert sum(g[figure] for g in totals["by_street"]) == totals["all"][figure]
    view = custody.ok("GET", f"/v1/merchants/{nowhere['id']}", operator)
    assert view["street"] is None
    assert groups[None]["merchants"] >= 1


def test_a_street_key_gets_its_streets_group_only(
        custody: Driver, operator: Headers, app_client: TestClient) -> None:
    mine, other = (f"总额街道{next(streets)}" for _ in range(2))
    custody.file(SPORTS, street=mine)
    custody.file(SPORTS, street=other)
    totals: dict[str, Any] = custody.ok("GET", "/v1/audit/totals",
                                        regulator(app_client, operator, street=mine))
    assert [(g["street"], g["merchants"]) for g in totals["by_street"]] == [(mine, 1)]
    assert totals["all"]["merchants"] == 1
