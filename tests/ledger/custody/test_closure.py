"""Freeze, close and pay out: every cardholder's claim, paid from custody, pro rata by largest
remainder when custody falls short, every fen accounted for; the bank's payout file."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.runtime import run_command
from ledger.auth import LOCAL_OPERATOR
from ledger.db import job_queries
from ledger.flows import closure
from ledger.flows.closure import CloseMerchant, ContinueClosure
from tests.support.custody import check_custody_identity, custodied, largest_remainder
from tests.support.db import nothing_written
from tests.support.driver import Driver
from tests.support.http import assert_problem, wait_done

MONDAY = date(2026, 3, 2)
HEADER = ["end_to_end_id", "card_id", "consumer_id", "claim_fen", "payout_fen",
          "shortfall_fen", "custody_account", "bank_id", "status"]


def paid_used(card: dict[str, Any], units: int, kind: str) -> int:
    """Paid money consumed once `units` of the card are used (cumulative)."""
    paid, total = card["paid_fen"], card["total_units"]
    if units == total:
        return int(paid)
    if kind == "sessions":
        return int(units * (paid // total))
    return int(units * paid // total)


def custody_used(card: dict[str, Any], paid_consumed: int) -> int:
    if paid_consumed == card["paid_fen"]:
        return int(card["custody_fen"])
    return int(paid_consumed * card["custody_fen"] // card["paid_fen"])


def payout_file(client: TestClient, merchant_id: str, bank: dict[str, str]) -> list[list[str]]:
    r = client.get(f"/v1/merchants/{merchant_id}/payouts.csv", headers=bank)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.text)))


def settle(client: TestClient, bank: dict[str, str], refund_id: int) -> Any:
    return client.post(f"/v1/refunds/{refund_id}/resolve", headers=bank,
                       json={"outcome": "settled"})


def test_a_commerce_merchant_at_40_percent_pays_out_pro_rata(
        app_client: TestClient, engine: Engine, custody: Driver) -> None:
    custody.set_today(MONDAY)
    m = custody.file("餐饮", bank_id="CCB-BJ")
    key, bank = custody.merchant_key(m["id"]), custody.bank_key("CCB-BJ")
    topup = custody.product(m["id"], key, kind="stored_value", price_fen=33_333,
                            bonus_units=6_667)
    plain = custody.product(m["id"], key, kind="stored_value", price_fen=50_001)
    pack = custody.product(m["id"], key, kind="sessions", price_fen=88_888, sessions=10)
    small = custody.product(m["id"], key, kind="stored_value", price_fen=12_345)
    cards = {"topup": custody.sell(topup["id"], key), "plain": custody.sell(plain["id"], key),
             "pack": custody.sell(pack["id"], key),
             "anonymous": custody.sell(small["id"], key, named=False),
             "refunded": custody.sell(plain["id"], key), "used_up": custody.sell(pack["id"], key)}
    for card in cards.values():
        assert card["custody_fen"] == custodied(card["paid_fen"], 4_000)
        assert card["custody_fen"] + card["direct_fen"] == card["paid_fen"]
    assert [cards[n]["custody_fen"] for n in ("topup", "plain", "pack", "anonymous")] == [
        13_333, 20_000, 35_555, 4_938]

    # Use some of it: 10000 of the top-up card's 40000 units, 3 and 10 sessions of the packs.
    uses = {"topup": (10_000, "stored_value"), "pack": (3, "sessions"),
            "used_up": (10, "sessions")}
    consumed: dict[str, tuple[int, int]] = {}
    for name, (units, kind) in uses.items():
        field = "sessions" if kind == "sessions" else "amount_fen"
        use = custody.consume(cards[name]["card_id"], key, **{field: units})
        paid = paid_used(cards[name], units, kind)
        expected = (paid, custody_used(cards[name], paid))
        assert (use["paid_fen"], use["custody_fen"], use["status"]) == (*expected, "confirmed")
        consumed[name] = expected
    assert consumed["topup"] == (8_333, 3_333) and consumed["pack"] == (26_664, 10_665)
    earned = sum(c for _, c in consumed.values())

    # The bank has seen 60000 fen arrive; the rest is still in transit.
    custody.deposit(m["id"], bank, 60_000)
    [release] = custody.run_releases(MONDAY + timedelta(days=7), m["id"])
    holdback = earned // 10 + (1 if earned % 10 > 5 else 0)
    assert (release["amount_fen"], release["holdback_fen"]) == (earned - holdback, holdback)
    custody.ok("POST", f"/v1/releases/{release['release_id']}/resolve", bank,
               {"outcome": "settled"})
    # A balance refund still pending at closure: its custody share is spoken for.
    balance_refund = custody.ok("POST", f"/v1/cards/{cards['refunded']['card_id']}/refunds",
                                key, {"reason": "balance"}, 201)
    assert (balance_refund["claim_fen"], balance_refund["amount_fen"],
            balance_refund["merchant_due_fen"]) == (50_001, 20_000, 30_001)

    # Exposure: the custodied share of what is still on the cards.
    open_cards = ("topup", "plain", "pack", "anonymous", "used_up")
    on_cards = {n: cards[n]["paid_fen"] - consumed.get(n, (0, 0))[0] for n in open_cards}
    in_custody = {n: cards[n]["custody_fen"] - consumed.get(n, (0, 0))[1] for n in open_cards}
    [exposure] = [e for e in custody.ok("GET", "/v1/exposure", custody.operator)["items"]
                  if e["merchant_id"] == m["id"]]
    assert (exposure["card_liability_fen"], exposure["custodied_card_liability_fen"],
            exposure["cards"]) == (sum(on_cards.values()), sum(in_custody.values()), 6)

    total_custody = sum(card["custody_fen"] for card in cards.values())
    cash = 60_000 - release["amount_fen"]
    in_transit = total_custody - 60_000
    available = cash + in_transit - balance_refund["amount_fen"]
    claims = sorted((cards[n]["card_id"], on_cards[n]) for n in open_cards if on_cards[n])
    total_claims = sum(c for _, c in claims)
    assert total_claims == 25_000 + 50_001 + 62_224 + 12_345
    assert available < total_claims  # custody falls short
    payouts = largest_remainder(available, [c for _, c in claims])

    custody.ok("POST", f"/v1/merchants/{m['id']}/freeze", custody.operator,
               {"reason": "关门跑路"})
    closed = custody.ok("POST", f"/v1/merchants/{m['id']}/close", custody.operator)
    assert (closed["cards"], closed["available_fen"], closed["claims_fen"],
            closed["payout_fen"], closed["shortfall_fen"]) == (
        4, available, total_claims, available, total_claims - available)
    assert sum(payouts) == available  # every fen of the custody pays someone

    rows = payout_file(app_client, m["id"], bank)
    assert rows[0] == HEADER
    consumers = {c["card_id"]: c["consumer_id"] for c in cards.values()}
    expected_rows = [[cid, consumers[cid], str(claim), str(pay), str(claim - pay),
                      m["custody_account"], "CCB-BJ", "pending"]
                     for (cid, claim), pay in zip(claims, payouts, strict=True)]
    assert [row[1:] for row in rows[1:]] == expected_rows
    assert all(row[0].startswith("YFF") and len(row[0]) <= 35 for row in rows[1:])
    with engine.connect() as conn:
        b = check_custody_identity(conn, m["id"])
    assert (b["custody_cash"], b["custody_in_transit"], b["refunds_payable"]) == (
        cash, in_transit, balance_refund["amount_fen"] + available)
    card_view = custody.ok("GET", f"/v1/merchants/{m['id']}/cards", custody.operator)["items"]
    statuses = {c["id"]: c["status"] for c in card_view}
    assert statuses[cards["used_up"]["card_id"]] == "closed"
    assert {statuses[cid] for cid, _ in claims} == {"refund_pending"}

    # The bank pays from what it holds; a payout beyond its cash waits for the deposit.
    refunds = {r["card_id"]: r for r in custody.ok(
        "GET", "/v1/refunds", bank, None)["items"] if r["merchant_id"] == m["id"]}
    queue = [refunds[cid]["id"] for cid, _ in claims] + [balance_refund["refund_id"]]
    amounts = [*payouts, balance_refund["amount_fen"]]
    left = cash
    for refund_id, amount in zip(queue, amounts, strict=True):
        if amount > left:
            with nothing_written(app_client, engine):
                assert_problem(settle(app_client, bank, refund_id), 422,
                               field="outcome", code="insufficient_funds",
                               detail_has="the money in transit must be confirmed first")
            custody.deposit(m["id"], bank, in_transit)
            left += in_transit
            in_transit = 0
        assert settle(app_client, bank, refund_id).json()["status"] == "settled"
        left -= amount
    assert in_transit == 0, "the bank needed the money in transit"
    with engine.connect() as conn:
        b = check_custody_identity(conn, m["id"])
    # Custody is empty: every fen went to the cardholders; the merchant owes the rest.
    assert (b["custody_cash"], b["custody_in_transit"], b["refunds_payable"]) == (0, 0, 0)
    assert b["merchant_refund_due"] == 30_001 + total_claims - available
    rows = payout_file(app_client, m["id"], bank)
    assert {row[-1] for row in rows[1:]} == {"settled"}
    with nothing_written(app_client, engine):
        r = settle(app_client, bank, queue[0])
        assert_problem(r, 409, field="refund_id", code="conflict", detail_has="already settled")


def test_a_fully_custodied_merchant_with_deposits_in_transit_pays_every_claim(
        app_client: TestClient, engine: Engine, custody: Driver) -> None:
    """Custody counts the money in transit (paid by the consumer, not yet on the bank's
    statement): the claims are covered, but the bank can pay only what it has received."""
    custody.set_today(MONDAY)
    m = custody.file("体育健身", bank_id="ABC-BJ")
    key, bank = custody.merchant_key(m["id"]), custody.bank_key("ABC-BJ")
    pack = custody.product(m["id"], key, kind="sessions", price_fen=30_001, sessions=10,
                           validity_months=3)
    cards = [custody.sell(pack["id"], key) for _ in range(3)]
    use = custody.consume(cards[0]["card_id"], key, sessions=2)
    custody.confirm(use["consumption_id"], cards[0])
    assert use["paid_fen"] == 6_000
    custody.deposit(m["id"], bank, 30_001)  # one card of three has arrived
    custody.ok("POST", f"/v1/merchants/{m['id']}/freeze", custody.operator, {"reason": "跑路"})
    closed = custody.ok("POST", f"/v1/merchants/{m['id']}/close", custody.operator)
    claims = sorted((c["card_id"], 30_001 - (6_000 if c is cards[0] else 0)) for c in cards)
    assert (closed["cards"], closed["available_fen"], closed["claims_fen"],
            closed["payout_fen"], closed["shortfall_fen"]) == (3, 90_003, 84_003, 84_003, 0)
    rows = payout_file(app_client, m["id"], bank)
    assert rows[0] == HEADER
    assert [(row[1], int(row[3]), int(row[4]), int(row[5])) for row in rows[1:]] == [
        (cid, claim, claim, 0) for cid, claim in claims]
    refund_of = {r["card_id"]: int(r["id"]) for r in custody.ok(
        "GET", "/v1/refunds", bank)["items"] if r["merchant_id"] == m["id"]}
    # The used card's 24001 fen fit in the 30001 the bank holds; the next 30001 do not.
    assert settle(app_client, bank, refund_of[cards[0]["card_id"]]).status_code == 200
    waiting = [refund_of[c["card_id"]] for c in cards[1:]]
    with nothing_written(app_client, engine):
        assert_problem(settle(app_client, bank, waiting[0]), 422, field="outcome",
                       code="insufficient_funds",
                       detail_has="custody holds 6000 fen at the bank, not the 30001 fen")
    custody.deposit(m["id"], bank, 60_002)
    for rid in waiting:
        assert settle(app_client, bank, rid).json()["status"] == "settled"
    with engine.connect() as conn:
        b = check_custody_identity(conn, m["id"])
    # What is left in custody is the merchant's earned money (6000 fen), never released.
    assert (b["custody_cash"], b["custody_in_transit"], b["earned"], b["refunds_payable"],
            b["merchant_refund_due"]) == (6_000, 0, 6_000, 0, 0)
    assert custody.run_releases(MONDAY + timedelta(days=30), m["id"]) == []


# -- closures of any size, in slices (issue 13) --------------------------------------------------


def sold_cards(custody: Driver, count: int) -> tuple[dict[str, Any], str, list[str]]:
    """A frozen merchant with `count` cards sold and half the custody money received."""
    custody.set_today(MONDAY)
    m = custody.file("餐饮", bank_id="BOC-BJ")
    key, bank = custody.merchant_key(m["id"]), custody.bank_key("BOC-BJ")
    pack = custody.product(m["id"], key, kind="sessions", price_fen=10_003, sessions=7)
    cards = [custody.sell(pack["id"], key)["card_id"] for _ in range(count)]
    custody.deposit(m["id"], bank, count * custodied(10_003, 4_000) // 2)
    custody.ok("POST", f"/v1/merchants/{m['id']}/freeze", custody.operator, {"reason": "跑路"})
    return m, key, cards


def closure_refunds(engine: Engine, merchant_id: str) -> dict[str, tuple[int, int]]:
    """card -> (claim, payout) of the merchant's closure refunds, each card at most once."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT card_id, claim_fen, amount_fen FROM refund_instructions "
            "WHERE merchant_id = :m AND reason = 'closure'"), {"m": merchant_id}).all()
    found = {card: (claim, payout) for card, claim, payout in rows}
    assert len(found) == len(rows), "a card's closure refund is instructed once"
    return found


def test_a_closure_of_more_cards_than_a_slice_claims_every_card_pro_rata(
        app_client: TestClient, engine: Engine, custody: Driver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(closure, "closure_slice_cards_max", 3)
    m, _, cards = sold_cards(custody, 11)
    accepted = custody.ok("POST", f"/v1/merchants/{m['id']}/close", custody.operator,
                          status=202)  # more cards than a slice: a job, to poll
    job = custody.ok("GET", f"/v1/jobs/{accepted['job_id']}", custody.operator)
    while job["status"] == "running":
        time.sleep(0.05)
        job = custody.ok("GET", f"/v1/jobs/{accepted['job_id']}", custody.operator)
    assert (job["kind"], job["status"], job["progress"]["done"], job["progress"]["total"]) \
        == ("closure", "done", 11, 11)
    assert job["progress"]["slices"] >= 4  # 11 cards, 3 a slice
    closed = job["result"]
    claims = [10_003] * 11
    available = closed["available_fen"]
    assert available < sum(claims)  # custody falls short: pro rata over all eleven
    payouts = largest_remainder(available, claims)
    refunds = closure_refunds(engine, m["id"])
    assert sorted(refunds) == sorted(cards)
    assert sorted(p for _, p in refunds.values()) == sorted(payouts)
    assert (closed["cards"], closed["claims_fen"], closed["payout_fen"],
            closed["shortfall_fen"]) == (11, sum(claims), available, sum(claims) - available)
    assert len(set(closed["refunds"])) == 11
    assert custody.ok("GET", f"/v1/merchants/{m['id']}", custody.operator)["status"] == "closed"
    with engine.connect() as conn:
        kinds = conn.execute(text(
            "SELECT kind FROM journal_entries WHERE merchant_id = :m AND kind LIKE 'merchant.%' "
            "ORDER BY seq"), {"m": m["id"]}).scalars().all()
        still_active = conn.execute(text(
            "SELECT count(*) FROM cards WHERE merchant_id = :m AND status = 'active'"),
            {"m": m["id"]}).scalar_one()
    assert kinds == ["merchant.frozen", "merchant.closing", "merchant.closed"]
    assert still_active == 0
    with engine.connect() as conn:
        check_custody_identity(conn, m["id"])


def test_a_closure_stopped_half_way_goes_on_where_it_stopped(
        app_client: TestClient, engine: Engine, custody: Driver) -> None:
    """As after a crash between two slices: the plan is in the database, and the next close
    instructs only the refunds not yet instructed."""
    m, _, cards = sold_cards(custody, 7)
    run_command(engine, CloseMerchant(LOCAL_OPERATOR, m["id"]), 200)
    run_command(engine, ContinueClosure(LOCAL_OPERATOR, m["id"], 4), 200)
    assert len(closure_refunds(engine, m["id"])) == 4
    key = {**custody.operator, "Idempotency-Key": "close-once"}
    closed = custody.ok("POST", f"/v1/merchants/{m['id']}/close", key)
    assert sorted(closure_refunds(engine, m["id"])) == sorted(cards)
    assert closed["cards"] == 7
    again = app_client.post(f"/v1/merchants/{m['id']}/close", headers=key)
    assert again.status_code == 200 and again.json() == closed  # the first answer, again
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_closing_merchants_cards_are_refunded_by_its_closure_alone(
        app_client: TestClient, engine: Engine, custody: Driver) -> None:
    m, _, cards = sold_cards(custody, 2)
    run_command(engine, CloseMerchant(LOCAL_OPERATOR, m["id"]), 200)
    with nothing_written(app_client, engine):
        r = app_client.post(f"/v1/cards/{cards[0]}/refunds", headers=custody.operator,
                            json={"reason": "balance"})
        assert_problem(r, 422, field="card_id", code="refused", detail_has="is closing")
        for action in ("freeze", "unfreeze"):
            r = app_client.post(f"/v1/merchants/{m['id']}/{action}", headers=custody.operator,
                                json={"reason": "x"})
            assert_problem(r, 422, code="refused", detail_has="the merchant is closing")
    custody.ok("POST", f"/v1/merchants/{m['id']}/close", custody.operator)
    assert sorted(closure_refunds(engine, m["id"])) == sorted(cards)


def test_the_service_resumes_an_interrupted_closure_when_it_starts(
        app_client: TestClient, engine: Engine, custody: Driver) -> None:
    m, _, cards = sold_cards(custody, 5)
    planned = run_command(engine, CloseMerchant(LOCAL_OPERATOR, m["id"]), 200)
    run_command(engine, ContinueClosure(LOCAL_OPERATOR, m["id"], 2), 200)  # then a stop
    job_id = planned["job"]["job_id"]

    with TestClient(create_app(engine)) as restarted:  # its start resumes the job
        job = wait_done(restarted, f"/v1/jobs/{job_id}", custody.operator)

    assert (job["kind"], job["status"]) == ("closure", "done")
    assert (job["progress"]["done"], job["progress"]["total"]) == (5, 5)
    assert job["result"]["cards"] == 5 and len(set(job["result"]["refunds"])) == 5
    assert sorted(closure_refunds(engine, m["id"])) == sorted(cards)  # each card once
    assert custody.ok("GET", f"/v1/merchants/{m['id']}", custody.operator)["status"] == "closed"


def test_a_job_refused_for_good_ends_failed_with_its_problem_and_is_not_resumed(
        app_client: TestClient, engine: Engine, owner_engine: Engine, custody: Driver) -> None:
    """A refusal that will not go away (here: the closure of a merchant there is not, as a
    row left by hand would be): the job ends `failed`, its problem in its result."""
    with owner_engine.begin() as conn:
        job_id = conn.execute(text(
            "INSERT INTO jobs (kind, key, status, done, total, slices, created_by, created_at,"
            " updated_at, state) VALUES ('closure', 'NO-SUCH-MERCHANT', 'running', 0, 1, 0, 0,"
            " now(), now(), '{}') RETURNING id")).scalar_one()

    with TestClient(create_app(engine)) as restarted:  # its start tries to resume the job
        job = wait_done(restarted, f"/v1/jobs/{job_id}", custody.operator)

    assert job["status"] == "failed"
    problem = job["result"]["problem"]
    assert (problem["status"], problem["code"], problem["field"]) == \
        (404, "not_found", "merchant_id")
    assert "NO-SUCH-MERCHANT" in problem["detail"]
    with engine.connect() as conn:
        assert job_id not in [j.id for j in job_queries.running(conn)]  # no start resumes it
