"""The regulators' dashboard in a real headless Chromium (Debian's, tests/support/browser.py)
against a live `yufu serve` (tests/support/serve.py): merchants filed, sold to, verified and
tiered through the HTTP API, then a regulator logs in, and every figure read off the page
is the one the API answers. Screenshots go to docs/screenshots/ (docs/supervision.md)."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, ConsoleMessage, Page, Route
from stdnum.cn import uscc

from api import dashboard
from ledger import audit, limits
from ledger.journal import format_ts
from tests.support import ROOT
from tests.support.browser import chromium
from tests.support.serve import yufu_serve
from tests.support.statements import Stmt, entry, statement_csv

SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOT_QUALITY = 40  # JPEG: small files in the repository, the text still legible
CHINA = timezone(timedelta(hours=8))  # complaints are received on China's days
STREET = "望京街道"  # the blue and red merchants' (属地); the yellow one has none registered
# Valid identity card numbers (check character per GB 11643): the people filed, kept only as
# pseudonyms; the director sits on both boards.
ID_NUMBERS = {"blue": "110105198001011238", "red": "110105199003070017",
              "director": "11010519751212001X"}
# The blue merchant's department's figures (_complaints), computed by hand: 2 of 4 accepted;
# of the 3 closed or past their closure deadline, 1 closed on time; the register: 3 routed
# in (2 open), 1 received directly (open); open by age: 1 of today, 2 of 40 days.
COMPLAINT_FIGURES = {"received": 4, "acceptance": "2/4", "acceptance_rate_bp": 5000,
                     "on_time": "1/3", "on_time_rate_bp": 3333, "overdue": 2,
                     "open_0-1": 1, "open_2-7": 0, "open_8-30": 0, "open_31+": 2,
                     "routed_received": 3, "routed_open": 2, "direct_received": 1,
                     "direct_open": 1, "returned": 0, "rerouted_away": 0}
wait_ms = 15_000  # the longest a panel may take to show, on a loaded 2-core machine
ZH, EN = dashboard.strings("zh"), dashboard.strings("en")


@dataclass
class World:
    url: str
    operator: str
    regulator: str
    merchant_key: str
    bank_key: str
    merchants: dict[str, str] = field(default_factory=dict)  # tier -> merchant id

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10,
                             headers={"Authorization": f"Bearer {self.regulator}"})
        assert response.status_code == 200, response.text
        return response.json()


def _post(url: str, key: str, path: str, body: Any = None, status: int = 201, **more: Any
          ) -> Any:
    response = httpx.post(url + path, headers={"Authorization": f"Bearer {key}"}, json=body,
                          timeout=30, **more)
    assert response.status_code == status, response.text
    return response.json()


def _credit_code() -> str:
    base = "91110105" + "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY")
                                for _ in range(9))
    return base + uscc.calc_check_digit(base)


def _seed(url: str, operator: str) -> World:
    """Three merchants at two banks: 体育健身 (blue, sold to, its bank's statement 777 fen over
    the ledger), 美容美发 (yellow) and 学科类培训 (red, with a hard block); a signed tree head."""
    def post(path: str, body: Any = None, status: int = 201, key: str | None = None) -> Any:
        return _post(url, key or operator, path, body, status)

    for bank, code in (("DASH-A", "102100004567"), ("DASH-B", "103100000026")):
        post("/v1/banks", {"id": bank, "name": f"{bank} 支行", "code": code})
    filed = {}
    for tier, (name, industry, bank, street) in {
            "blue": ("朝阳少儿游泳馆", "体育健身", "DASH-A", STREET),
            "yellow": ("丽人美发沙龙", "美容美发", "DASH-B", None),
            "red": ("状元学科辅导", "学科类培训", "DASH-A", STREET)}.items():
        account = f"0200{secrets.randbelow(10**9):09d}"
        register: dict[str, Any] = {} if street is None else {
            "street": street, "address": "望京街10号", "people": [
                {"role": "legal_representative", "id_number": ID_NUMBERS[tier]},
                {"role": "director", "id_number": ID_NUMBERS["director"]}]}
        filed[tier] = (post("/v1/merchants", {"name": name, "industry": industry,
                                              "credit_code": _credit_code(), "bank_id": bank,
                                              "custody_account": account, **register})["id"],
                       account)
    blue, blue_account = filed["blue"]
    merchant_key = post("/v1/keys", {"role": "merchant", "merchant_id": blue})["key"]
    bank_key = post("/v1/keys", {"role": "bank", "bank_id": "DASH-A"})["key"]
    bank_b_key = post("/v1/keys", {"role": "bank", "bank_id": "DASH-B"})["key"]
    product = post(f"/v1/merchants/{blue}/products", {
        "kind": "sessions", "name": "10节游泳课", "price_fen": 100_000, "sessions": 10,
        "validity_months": 3}, key=merchant_key)["id"]
    for phone in ("13800138001", "13800138002"):
        post("/v1/cards", {"product_id": product, "consumer": {"phone": phone}},
             key=merchant_key)
    post(f"/v1/merchants/{blue}/deposits", {"amount_fen": 200_000}, key=bank_key)
    day = datetime.now(UTC).date() - timedelta(days=1)
    for bank, key, account, closing in (("DASH-A", bank_key, blue_account, 200_777),
                                        ("DASH-B", bank_b_key, filed["yellow"][1], 0)):
        entries = (entry("CRDT", closing, day),) if closing else ()
        _post(url, key, f"/v1/banks/{bank}/statements", None, 201,
              content=statement_csv([Stmt(account, f"S-{bank}", 0, day, entries)]),
              params={"filename": f"{bank}.csv"})
    # Yellow by a regulator's override (the risk rules' route): it raises an alert.
    post(f"/v1/merchants/{filed['yellow'][0]}/tier-overrides", {
        "tier": "yellow", "reason": "投诉三十日内增至5件，预售额较前30日均值增长3倍"})
    post(f"/v1/merchants/{filed['red'][0]}/tier", {"tier": "yellow", "reasons": ["投诉增长"]}, 200)
    post(f"/v1/merchants/{filed['red'][0]}/tier", {
        "tier": "red", "reasons": ["法定代表人变更且预售激增"],
        "hard_blocks": ["court_listed_defaulter"]}, 200)
    _complaints(post, blue, merchant_key)
    # The director of the blue and red merchants is banned (after the sales: a sale screens
    # its merchant's people); the yellow merchant moves (变更登记), its street still none.
    post("/v1/bans", {"kind": "person", "id_number": ID_NUMBERS["director"],
                      "reason": "曾任跑路商户董事", "source": "区市场监管局"})
    post(f"/v1/merchants/{filed['yellow'][0]}/amendments", {
        "reason": "经营场所迁址", "address": "望京街12号"})
    post("/v1/reports", {"kind": "daily"})
    regulator = post("/v1/keys", {"role": "regulator"})["key"]
    post("/v1/audit/tree-heads", status=200)
    return World(url, operator, regulator, merchant_key, bank_key,
                 {tier: merchant for tier, (merchant, _) in filed.items()})


def _complaints(post: Any, merchant: str, merchant_key: str) -> None:
    """Four complaints about the blue merchant (区文旅体局), as COMPLAINT_FIGURES counts them:
    one received now, accepted, answered and resolved (closed on time); one received 40 days
    ago and accepted only now (past its closure deadline, open); one received directly 40
    days ago and never accepted; one received now from 12315, untouched."""
    now = datetime.now(CHINA) - timedelta(minutes=1)
    long_ago = now - timedelta(days=40)
    filed = [post("/v1/complaints", {
        "channel": channel, "external_id": None if channel == "direct" else secrets.token_hex(6),
        "received_at": when.isoformat(timespec="seconds"), "merchant_id": merchant,
        "category": "退费纠纷", "amount_fen": 80_000})["id"]
        for channel, when in (("12345", now), ("12345", long_ago), ("direct", long_ago),
                              ("12315", now))]
    for complaint, steps in ((filed[0], ("accept", "respond", "resolve")),
                             (filed[1], ("accept",))):
        for step in steps:
            post(f"/v1/complaints/{complaint}/steps", {"step": step, "note": "已处理"}, 200,
                 key=merchant_key if step == "respond" else None)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    scratch = Path(tempfile.mkdtemp(prefix="yufu-dashboard-"))
    try:
        with yufu_serve(scratch / "home", scratch / "serve.log") as (url, _):
            operator = (scratch / "home" / "operator.key").read_text().strip()
            yield _seed(url, operator)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


@dataclass
class Watched:
    """What the page did that it must not: CSP violations and script errors, and any request
    that left the service's origin."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert [m for m in self.console if "Content Security Policy" in m] == []
        assert self.errors == [] and self.elsewhere == []


@pytest.fixture
def page(browser: Browser, world: World) -> Iterator[tuple[Page, Watched]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    opened = context.new_page()
    watched = Watched()

    def on_console(message: ConsoleMessage) -> None:
        watched.console.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: watched.errors.append(str(error)))
    opened.on("request", lambda request: None if request.url.startswith(world.url)
              else watched.elsewhere.append(request.url))
    opened.set_default_timeout(wait_ms)
    try:
        yield opened, watched
        assert context.cookies() == [], "the dashboard keeps no cookie"
    finally:
        context.close()


def log_in(page: Page, world: World, key: str, lang: str = "zh") -> None:
    page.goto(f"{world.url}/dashboard?lang={lang}")
    page.wait_for_selector("body[data-started=true]", state="attached")
    page.fill("#key", key)
    page.click("#login-form button")


def overview_ready(page: Page) -> None:
    page.wait_for_selector("#view-overview[data-ready=true]", state="attached")
    failed = page.locator("[data-panel][data-state=failed]")
    assert failed.count() == 0, failed.all_inner_texts()


def values(page: Page, selector: str) -> list[str]:
    return [str(v) for v in page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => n.dataset.value)")]


def test_a_wrong_key_a_merchant_key_and_a_bank_key_are_refused_with_a_clear_message(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    for key, message in (("yufu_0000000000000000_not-a-key", ZH["login.wrong_key"]),
                         (world.merchant_key, ZH["login.not_regulator"]),
                         (world.bank_key, ZH["login.not_regulator"])):
        log_in(p, world, key)
        p.wait_for_selector("#login-error:not([hidden])")
        assert p.inner_text("#login-error") == message
        assert p.is_hidden("#view-overview")
        assert p.evaluate("sessionStorage.length") == 0, "a refused key is not kept"
    watched.assert_clean()


def test_the_overview_shows_what_the_api_answers_and_saves_its_screenshot(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    log_in(p, world, world.regulator)
    overview_ready(p)
    # The key is in this tab's sessionStorage, and only there.
    assert p.evaluate("Object.values(sessionStorage)") == [world.regulator]
    assert p.evaluate("localStorage.length") == 0

    tiers = world.get("/v1/tiers")
    assert {tier: int(v) for tier, v in zip(("red", "yellow", "blue"), values(
        p, "#panel-tiers .tile .count"), strict=True)} == tiers["by_tier"]
    assert tiers["by_tier"] == {"blue": 1, "yellow": 1, "red": 1}
    for item in tiers["items"]:
        row = p.locator(f"#panel-tiers tr[data-merchant-id='{item['merchant_id']}']")
        assert row.get_attribute("data-tier") == item["tier"]
        assert row.locator("[data-field=name]").inner_text() == item["name"]
        blocks = [ZH[f"block.{b}"] for b in item["hard_blocks"]]
        assert row.locator("[data-field=reasons]").inner_text() == (
            "；".join(item["reasons"] + blocks) or ZH["tiers.no_reason"])

    totals = world.get("/v1/audit/totals")
    assert values(p, "#panel-coverage .tiles.all .figure") == [
        str(totals["all"][f]) for f in ("merchants", "card_liability_fen",
                                        "custody_balance_fen", "coverage_ratio_bp")]
    for grouping in ("department", "street"):
        for group in totals[f"by_{grouping}"]:
            row = (f"#panel-coverage [data-group={grouping}] "
                   f"tr[data-key='{group[grouping] or ''}']")
            assert values(p, f"{row} td[data-field]") == [
                str(group[f]) if group[f] is not None else "" for f in (
                    "merchants", "cards", "card_liability_fen", "custody_balance_fen",
                    "coverage_ratio_bp")]
    # Two merchants on the street, the third with none registered (shown as such).
    assert [(g["street"], g["merchants"]) for g in totals["by_street"]] == [
        (STREET, 2), (None, 1)]
    assert p.locator("#panel-coverage [data-group=street] tr[data-key=''] td").first \
        .inner_text() == ZH["coverage.unregistered"]
    assert p.locator("#panel-coverage [data-group=industry] tbody tr").count() == len(
        totals["by_industry"])

    verified = world.get("/v1/cross-verifications")["items"]
    open_breaks = world.get("/v1/breaks", status="open")["by_bank_merchant"]
    assert {v["result"] for v in verified} == {"match", "difference"}
    for bank in ("DASH-A", "DASH-B"):
        mine = [v for v in verified if v["bank_id"] == bank]
        row = f"#panel-verification .by-bank tr[data-bank-id='{bank}']"
        assert values(p, f"{row} td[data-field]") == [str(n) for n in (
            len(mine), sum(v["difference_fen"] == 0 for v in mine),
            sum(v["difference_fen"] != 0 for v in mine),
            sum(abs(v["difference_fen"]) for v in mine),
            sum(g["open"] for g in open_breaks if g["bank_id"] == bank),
            sum(g["amount_fen"] for g in open_breaks if g["bank_id"] == bank))]
    for v in verified:
        row = f"#panel-verification .by-account tr[data-merchant-id='{v['merchant_id']}']"
        assert values(p, f"{row} td[data-field]") == [
            str(v["bank_balance_fen"]), str(v["ledger_balance_fen"]), str(v["difference_fen"])]

    head = world.get("/v1/audit/tree-head")
    state = p.locator("#panel-journal .signature-state")
    assert state.get_attribute("data-state") == "verified", state.inner_text()
    assert ZH["journal.verified"] in state.inner_text()
    assert values(p, "#panel-journal dd[data-field]") == [
        str(head[f]) for f in ("tree_size", "timestamp", "root_hash", "key_id", "signature")]
    watched.assert_clean()
    SCREENSHOTS.mkdir(exist_ok=True)
    p.screenshot(path=SCREENSHOTS / "dashboard-overview-zh.jpg", full_page=True,
                 type="jpeg", quality=SCREENSHOT_QUALITY)


COMPLAINT_FIELDS = ("received", "acceptance", "acceptance_rate_bp", "on_time",
                    "on_time_rate_bp", "overdue", "open_0-1", "open_2-7", "open_8-30",
                    "open_31+", "routed_received", "routed_open", "direct_received",
                    "direct_open", "returned", "rerouted_away")


def complaint_row(row: dict[str, Any]) -> dict[str, str]:
    """A department's row of GET /v1/complaints/stats/departments as the panel's cells keep it."""
    accepted, on_time = row["acceptance_rate"], row["on_time_closure_rate"]
    figures = {"received": row["received"],
               "acceptance": f"{accepted['numerator']}/{accepted['denominator']}",
               "acceptance_rate_bp": accepted["rate_bp"],
               "on_time": f"{on_time['numerator']}/{on_time['denominator']}",
               "on_time_rate_bp": on_time["rate_bp"], "overdue": row["overdue"],
               **{f"open_{b['bucket']}": b["open"] for b in row["open_by_age_days"]},
               "routed_received": row["register"]["routed"]["received"],
               "routed_open": row["register"]["routed"]["open"],
               "direct_received": row["register"]["direct"]["received"],
               "direct_open": row["register"]["direct"]["open"],
               "returned": row["returned"], "rerouted_away": row["rerouted_away"]}
    return {name: "" if value is None else str(value) for name, value in figures.items()}


def test_the_complaints_panel_shows_each_departments_exact_rates(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    log_in(p, world, world.regulator)
    overview_ready(p)
    window = p.locator("#panel-complaints [data-field=window]")
    answer = world.get("/v1/complaints/stats/departments")
    assert (window.get_attribute("data-from"), window.get_attribute("data-to"),
            window.get_attribute("data-as-of")) == (answer["from"], answer["to"],
                                                     answer["as_of"])
    shown = {}
    for row in p.locator("#panel-complaints tbody tr[data-department]").all():
        cells = row.locator("td[data-field]").evaluate_all(
            "nodes => nodes.map(n => [n.dataset.field, n.dataset.value])")
        shown[row.get_attribute("data-department")] = dict(cells)
    assert shown == {row["department"]: complaint_row(row) for row in answer["items"]}
    assert list(shown["区文旅体局"]) == list(COMPLAINT_FIELDS)
    assert shown["区文旅体局"] == {k: str(v) for k, v in COMPLAINT_FIGURES.items()}
    rate = p.locator("#panel-complaints tr[data-department='区文旅体局'] "
                     "[data-field=on_time_rate_bp]")
    assert rate.inner_text() == "33.33%"
    watched.assert_clean()


def test_a_tampered_tree_head_shows_as_not_verified(page: tuple[Page, Watched],
                                                    world: World) -> None:
    p, watched = page

    def flip_a_byte(route: Route) -> None:
        head = route.fetch().json()
        signature = bytearray(bytes.fromhex(head["signature"]))
        signature[10] ^= 0x01
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({**head, "signature": signature.hex()}))

    p.route("**/v1/audit/tree-head", flip_a_byte)
    log_in(p, world, world.regulator)
    overview_ready(p)
    state = p.locator("#panel-journal .signature-state")
    assert state.get_attribute("data-state") == "not-verified"
    assert ZH["journal.not_verified"] in state.inner_text()
    watched.assert_clean()


def test_a_merchant_is_followed_from_the_tier_list_to_its_detail_then_read_in_english(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    red = follow(p, world, "red")
    merchant = world.get(f"/v1/merchants/{red}")
    changes = world.get(f"/v1/merchants/{red}/tier-changes")["items"]
    panel = p.locator("#panel-merchant")
    assert panel.locator("[data-field=name]").inner_text() == merchant["name"]
    assert panel.locator("[data-field=tier]").get_attribute("data-value") == "red"
    assert panel.locator("[data-field=credit_code]").inner_text() == merchant["credit_code"]
    assert [int(s) for s in panel.locator(".history tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.seq)")] == [c["journal_seq"] for c in changes]
    assert panel.locator(".history [data-field=reasons]").all_inner_texts() == [
        "；".join(c["reasons"] + [ZH[f"block.{b}"] for b in c["hard_blocks"]])
        for c in changes]

    p.click("#lang-toggle")  # the same view, in English, still logged in (sessionStorage)
    p.wait_for_url(f"**/dashboard?lang=en#merchant/{red}")
    p.wait_for_selector("#view-merchant[data-ready=true]", state="attached")
    assert p.get_attribute("html", "lang") == "en"
    assert p.inner_text("#view-merchant .back") == EN["merchant.back"]
    assert panel.locator("[data-field=tier]").inner_text() == EN["tier.red"]
    assert panel.locator("[data-field=hard_blocks]").inner_text() == EN[
        "block.court_listed_defaulter"]
    p.click("#view-merchant .back")
    overview_ready(p)
    assert p.inner_text("#panel-tiers h2") == EN["tiers.title"]
    SCREENSHOTS.mkdir(exist_ok=True)
    p.screenshot(path=SCREENSHOTS / "dashboard-overview-en.jpg", full_page=False,
                 type="jpeg", quality=SCREENSHOT_QUALITY)
    p.click("#logout")
    p.wait_for_selector("#login:not([hidden])")
    assert p.evaluate("sessionStorage.length") == 0
    watched.assert_clean()


def test_the_operator_key_may_read_it_too(page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    log_in(p, world, world.operator)
    overview_ready(p)
    assert values(p, "#panel-tiers .tile .count") == ["1", "1", "1"]
    watched.assert_clean()


def test_a_key_revoked_while_the_page_is_open_sends_it_back_to_the_log_in(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    issued = _post(world.url, world.operator, "/v1/keys", {"role": "regulator"})
    log_in(p, world, issued["key"])
    overview_ready(p)
    _post(world.url, world.operator, f"/v1/keys/{issued['key_id']}/revoke",
          {"reason": "rotated"}, 200)
    p.click(f"#panel-tiers a[data-merchant-id='{world.merchants['blue']}']")
    p.wait_for_selector("#login:not([hidden])")
    assert p.inner_text("#login-error") == ZH["login.wrong_key"]
    assert p.evaluate("sessionStorage.length") == 0
    assert p.is_hidden("#view-merchant") and p.is_hidden("#view-overview")
    watched.assert_clean()


def test_a_merchant_is_followed_to_its_complaints_register_ban_and_signals(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    blue = follow(p, world, "blue")
    # Its complaints, newest first, as the API lists them.
    complaints = world.get("/v1/complaints", merchant_id=blue)["items"]
    panel = "#panel-merchant_complaints"
    assert [int(i) for i in p.locator(f"{panel} tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.complaintId)")] == sorted(
        (c["id"] for c in complaints), reverse=True)
    assert values(p, f"{panel} td[data-field=status]") == [
        c["status"] for c in sorted(complaints, key=lambda c: -c["id"])]
    assert p.locator(f"{panel} [data-field=count]").get_attribute("data-value") == "4"
    # Its register: street, premises, people counted (no pseudonym on the page), the ban.
    merchant = world.get(f"/v1/merchants/{blue}")
    register = p.locator("#panel-register")
    assert register.locator("[data-field=street]").inner_text() == STREET == merchant["street"]
    assert register.locator("[data-field=premises]").inner_text() == merchant["premises"]
    assert register.locator("[data-field=people]").inner_text() == "法定代表人 1；董事 1"
    banned = register.locator("[data-field=banned]")
    assert banned.get_attribute("data-value") == "true"
    assert banned.inner_text().startswith("董事: 曾任跑路商户董事")
    text = p.inner_text("#view-merchant")
    assert all(person["person_id"] not in text for person in merchant["people"])
    # Its signals (四查), as the risk route answers.
    risk = world.get(f"/v1/merchants/{blue}/risk")
    signals = p.locator("#panel-signals")
    assert signals.locator("[data-field=tier]").get_attribute("data-value") == risk["tier"]
    assert signals.locator("[data-field=computed_tier]").get_attribute("data-value") == \
        risk["computed_tier"]
    assert values(p, "#panel-signals .standing td[data-field=kind]") == [
        s["kind"] for s in risk["signals"]]
    history = world.get(f"/v1/merchants/{blue}/signals")["items"]
    assert p.locator("#panel-signals .history tbody tr[data-seq]").count() == len(history)
    SCREENSHOTS.mkdir(exist_ok=True)
    p.screenshot(path=SCREENSHOTS / "dashboard-merchant-zh.jpg", full_page=True,
                 type="jpeg", quality=SCREENSHOT_QUALITY)

    yellow = world.merchants["yellow"]  # moved: its amendment, and no ban, no street
    p.goto(f"{world.url}/dashboard#merchant/{yellow}")
    merchant_ready(p)
    amendments = world.get(f"/v1/merchants/{yellow}/amendments")["items"]
    assert [a["reason"] for a in amendments] == ["经营场所迁址"]
    rows = p.locator("#panel-register .amendments tbody tr[data-seq]")
    assert [int(s) for s in rows.evaluate_all("rows => rows.map(r => r.dataset.seq)")] == [
        a["journal_seq"] for a in amendments]
    assert values(p, "#panel-register .amendments [data-field=changes]") == [
        ",".join(sorted(a["changes"])) for a in amendments]
    assert "地址: – → 望京街12号" in rows.first.inner_text()
    assert p.locator("#panel-register [data-field=banned]").get_attribute("data-value") \
        == "false"
    assert p.inner_text("#panel-register [data-field=street]") == ZH["register.none"]
    assert p.inner_text("#panel-merchant_complaints tbody") == ZH["merchant_complaints.none"]
    watched.assert_clean()


def test_the_reports_are_listed_and_downloaded_as_the_api_serves_them(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    log_in(p, world, world.regulator)
    overview_ready(p)
    reports = world.get("/v1/reports")["items"]
    assert [r["kind"] for r in reports] == ["daily"]
    rows = p.locator("#panel-reports tbody tr[data-report-id]")
    assert [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.reportId)")] \
        == [r["id"] for r in sorted(reports, key=lambda r: -r["id"])]
    report = reports[0]
    assert values(p, "#panel-reports td[data-field]") == [
        report["kind"], report["period"]["label"], "", str(report["tree_head"]["tree_size"])]
    for suffix in ("csv", "xlsx"):
        with p.expect_download() as download:
            p.click(f"#panel-reports tr[data-report-id='{report['id']}'] "
                    f"button[data-download={suffix}]")
        served = httpx.get(f"{world.url}/v1/reports/{report['id']}.{suffix}",
                           params={"lang": "zh"}, timeout=10,
                           headers={"Authorization": f"Bearer {world.regulator}"})
        assert served.status_code == 200
        assert Path(download.value.path()).read_bytes() == served.content
        assert download.value.suggested_filename.endswith(f"-{report['id']}.{suffix}")
    watched.assert_clean()


def test_the_alerts_inbox_holds_the_alert_and_a_regulator_acknowledges_it(
        page: tuple[Page, Watched], world: World) -> None:
    p, watched = page
    log_in(p, world, world.regulator)
    overview_ready(p)
    [alert] = world.get("/v1/alerts")["items"]
    assert (alert["merchant_id"], alert["kind"], alert["acknowledged_at"]) == (
        world.merchants["yellow"], "tier_yellow", None)
    row = p.locator(f"#panel-alerts tr[data-alert-id='{alert['id']}']")
    assert row.get_attribute("data-kind") == "tier_yellow"
    assert row.locator("[data-field=merchant]").inner_text() == alert["merchant_name"]
    assert row.locator("[data-field=signals]").get_attribute("data-value") == ",".join(
        s["kind"] for s in alert["signals"])
    assert values(p, "#panel-alerts .tiles .figure") == ["1", "1"]
    row.locator("button[data-acknowledge]").click()
    p.wait_for_selector(f"#panel-alerts tr[data-alert-id='{alert['id']}']"
                        "[data-acknowledged=true]")
    [acknowledged] = world.get("/v1/alerts")["items"]
    assert acknowledged["acknowledged_at"] is not None
    assert acknowledged["acknowledged_by"] == key_id(world, world.regulator)
    assert values(p, "#panel-alerts .tiles .figure") == ["0", "1"]
    # Acknowledged: no button to press again.
    assert p.locator("#panel-alerts button[data-acknowledge]").count() == 0
    watched.assert_clean()


def key_id(world: World, key: str) -> int:
    """The id of a key, as the operator's list of keys names it by its prefix."""
    keys = httpx.get(f"{world.url}/v1/keys", timeout=10,
                     headers={"Authorization": f"Bearer {world.operator}"}).json()["items"]
    [found] = [k["key_id"] for k in keys if key.startswith(f"{k['prefix']}_")
               or key.startswith(f"yufu_{k['prefix']}_")]
    return int(found)


def follow(page: Page, world: World, tier: str) -> str:
    """Logged in, the merchant of this tier followed from the tier list to its detail."""
    log_in(page, world, world.regulator)
    overview_ready(page)
    merchant = world.merchants[tier]
    page.click(f"#panel-tiers a[data-merchant-id='{merchant}']")
    merchant_ready(page)
    assert page.url.endswith(f"#merchant/{merchant}")
    return merchant


def merchant_ready(page: Page) -> None:
    page.wait_for_selector("#view-merchant[data-ready=true]", state="attached")
    failed = page.locator("#view-merchant [data-panel][data-state=failed]")
    assert failed.count() == 0, failed.all_inner_texts()


Tampering = tuple[str, int] | None  # what is changed in a signed head, and where


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # one page, reused
@given(seed=st.binary(min_size=32, max_size=32),
       tree_size=st.integers(1, limits.amount_fen_max - 1),
       root=st.binary(min_size=32, max_size=32),
       moment=st.datetimes(datetime(2000, 1, 1), datetime(2999, 12, 31), timezones=st.just(UTC)),
       tampering=st.none() | st.tuples(st.sampled_from(["signature", "root_hash", "tree_size"]),
                                        st.integers(0, 511)))
def test_the_browsers_check_of_a_tree_head_agrees_with_the_ledgers(
        page: tuple[Page, Watched], world: World, seed: bytes, tree_size: int, root: bytes,
        moment: datetime, tampering: Tampering) -> None:
    """For any head, signed by any key and then changed or not, the page's WebCrypto check
    (static/panels/journal.js) says verified exactly when ledger/audit.py does."""
    p, _ = page
    if not p.url.startswith(f"{world.url}/dashboard"):
        p.goto(f"{world.url}/dashboard")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signed = audit.sign_tree_head(key, tree_size, root, format_ts(moment))
    view = signed.view()
    if tampering is not None:
        where, bit = tampering
        if where == "tree_size":
            view["tree_size"] += 1
        else:
            flipped = bytearray(bytes.fromhex(view[where]))
            flipped[bit // 8 % len(flipped)] ^= 1 << bit % 8
            view[where] = flipped.hex()
    changed = audit.SignedTreeHead(audit.TreeHead(
        view["tree_size"], bytes.fromhex(view["root_hash"]), view["timestamp"],
        view["key_id"]), bytes.fromhex(view["signature"]))
    public = {"algorithm": "Ed25519", "key_id": audit.key_id(key.public_key()),
              "public_key_pem": audit.public_key_pem(key.public_key())}
    verdict = p.evaluate("""async ([head, publicKey]) => {
        const journal = await import("/dashboard/static/panels/journal.js");
        return await journal.check(head, publicKey, (name) => name);
    }""", [view, public])
    assert (verdict is True) == audit.verify_tree_head(key.public_key(), changed)
    assert (verdict is True) == (tampering is None)
