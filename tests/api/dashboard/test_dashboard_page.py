"""The dashboard's page, files and string tables, and its two JSON routes (GET /v1/tiers,
GET /v1/merchants/{id}/tier-changes), through the app in-process. What the page does in a
browser: test_dashboard_browser.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import dashboard
from ledger.auth import Role
from ledger.custody.merchants import HARD_BLOCKS, MerchantStatus, Tier
from ledger.db.custody_queries import risk_signals
from tests.support.db import issue_key
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

PACKAGE = resources.files("api.dashboard")


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline.append(data)


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


@pytest.mark.parametrize(("query", "lang", "html_lang"),
                         [("", "zh", "zh-CN"), ("?lang=zh", "zh", "zh-CN"),
                          ("?lang=en", "en", "en")])
def test_the_page_is_in_chinese_by_default_and_in_english_on_asking(
        app_client: TestClient, query: str, lang: str, html_lang: str) -> None:
    response = app_client.get(f"/dashboard{query}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<html lang="{html_lang}">' in response.text
    assert f"<title>{dashboard.strings(lang)['app.title']}</title>" in response.text
    other = "en" if lang == "zh" else "zh"
    assert f'href="?lang={other}"' in response.text  # the switch to the other language


def test_an_unknown_language_is_refused_naming_lang(app_client: TestClient) -> None:
    assert_problem(app_client.get("/dashboard?lang=fr"), 422, "invalid_input", "lang")
    assert_problem(app_client.get("/dashboard/strings/fr.json"), 422, "invalid_input", "lang")


def test_the_page_has_a_strict_policy_no_inline_script_or_style_and_nothing_from_elsewhere(
        app_client: TestClient) -> None:
    response = app_client.get("/dashboard")
    policy = dict(part.strip().split(" ", 1) for part in
                  response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["style-src"] == policy["connect-src"] == "'self'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    tags = parsed(response.text)
    assert tags.inline == []
    assert all("style" not in attrs and not any(a.startswith("on") for a in attrs)
               for _, attrs in tags.tags)
    loaded = [attrs.get("src") or attrs.get("href") for tag, attrs in tags.tags
              if tag in ("script", "link")]
    assert loaded and all(str(url).startswith("/dashboard/") for url in loaded), loaded
    for url in loaded:  # each one served by Yufu itself
        assert app_client.get(str(url)).status_code == 200, url


def test_no_file_of_the_dashboard_names_another_origin() -> None:
    for name, (content, _) in dashboard.static_files().items():
        assert re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", content) is None, name
    for template in PACKAGE.joinpath("templates").iterdir():
        if template.is_file():
            assert "http" not in template.read_text("utf-8"), template.name


def test_the_charts_are_chart_js_from_the_installed_chartkick_wheel(
        app_client: TestClient) -> None:
    response = app_client.get("/dashboard/vendor/chart.js")
    shipped = resources.files("chartkick").joinpath(dashboard.CHART_FILE).read_bytes()
    assert response.status_code == 200 and response.content == shipped
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b" * Chart.js v4." in shipped[:200]


def test_a_file_the_dashboard_does_not_have_is_404(app_client: TestClient) -> None:
    for path in ("/dashboard/static/nope.js", "/dashboard/static/../__init__.py",
                 "/dashboard/static/panels/"):
        assert app_client.get(path).status_code == 404, path


def test_both_string_tables_have_the_same_keys_and_every_key_used_is_in_them() -> None:
    zh, en = dashboard.strings("zh"), dashboard.strings("en")
    assert set(zh) == set(en)
    assert all(zh[key].strip() and en[key].strip() for key in zh)
    used: set[str] = set()
    for template in _files("templates"):
        used |= set(re.findall(r"""t\[["']([a-z_.]+)["']\]""", template))
    for script in _files("static"):
        used |= set(re.findall(r"""\bt\("([a-z_.]+)"[,)]""", script))
    # Keys made from values: every value the API may give has its string.
    used |= {f"tier.{t.value}" for t in Tier} | {f"status.{s.value}" for s in MerchantStatus}
    used |= {f"block.{b}" for b in HARD_BLOCKS}
    used |= {f"signal.{s}" for s in risk_signals(False, {"difference_fen": 1})}
    used |= {f"coverage.by_{g}" for g in ("industry", "department", "street")}
    assert used - set(zh) == set()
    assert len(used) > 60


def _files(folder: str) -> list[str]:
    found, pending = [], [PACKAGE.joinpath(folder)]
    while pending:
        for item in pending.pop().iterdir():
            if item.is_dir():
                pending.append(item)
            else:
                found.append(item.read_text("utf-8"))
    return found


def test_each_panel_is_a_unit_whose_sources_a_regulator_reads(
        app_client: TestClient, custody: Driver, engine: Engine) -> None:
    merchant = custody.file("体育健身")["id"]
    custody.ok("POST", "/v1/audit/tree-heads", custody.operator)
    regulator = bearer(issue_key(engine, Role.regulator))
    zh = dashboard.strings("zh")
    for panel in dashboard.PANELS:
        assert PACKAGE.joinpath(f"templates/panels/{panel.name}.html").is_file()
        script = app_client.get(f"/dashboard/static/panels/{panel.name}.js")
        assert script.status_code == 200
        assert "export async function load(section," in script.text
        assert any(key.startswith(f"{panel.name}.") for key in zh), panel.name
        for source in panel.sources:
            path = source.replace("{merchant_id}", merchant)
            assert app_client.get(path, headers=regulator).status_code == 200, path
        section = f'id="panel-{panel.name}" data-panel="{panel.name}"'
        assert section in app_client.get("/dashboard").text


# -- GET /v1/tiers and GET /v1/merchants/{id}/tier-changes -------------------------------------


def _tier(custody: Driver, merchant: str, tier: str, reasons: list[str],
          blocks: list[str] | None = None) -> dict[str, Any]:
    return dict(custody.ok("POST", f"/v1/merchants/{merchant}/tier", custody.operator,
                           {"tier": tier, "reasons": reasons, "hard_blocks": blocks or []}))


def _all(custody: Driver, key: Headers, **params: Any) -> list[dict[str, Any]]:
    items, after = [], None
    while True:
        page = custody.ok("GET", "/v1/tiers", key, params={**params, **(
            {"after": after} if after else {})})
        items += page["items"]
        after = page["next_after"]
        if after is None:
            return items


def test_merchants_by_tier_carry_the_reasons_of_their_last_change_as_journaled(
        custody: Driver, engine: Engine) -> None:
    regulator = bearer(issue_key(engine, Role.regulator))
    blue, yellow, red = (custody.file("美容美发")["id"] for _ in range(3))
    _tier(custody, yellow, "yellow", ["投诉增长"])
    _tier(custody, red, "yellow", ["预售激增"])
    change = _tier(custody, red, "red", ["法定代表人变更"], ["court_listed_defaulter"])
    items = {i["merchant_id"]: i for i in _all(custody, regulator, limit=2)}
    assert items[blue]["tier"] == "blue" and items[blue]["reasons"] == []
    assert items[blue]["tier_changed_seq"] is None and items[blue]["tier_changed_at"] is None
    assert (items[yellow]["tier"], items[yellow]["reasons"]) == ("yellow", ["投诉增长"])
    assert items[red] | {"tier_changed_at": None} == {
        "merchant_id": red, "name": items[red]["name"], "industry": "美容美发",
        "department": "区商务局", "status": "active", "tier": "red",
        "hard_blocks": ["court_listed_defaulter"], "reasons": ["法定代表人变更"],
        "tier_changed_seq": change["journal_seq"], "tier_changed_at": None}
    entry = custody.ok("GET", f"/v1/journal/{change['journal_seq']}", regulator)
    assert items[red]["tier_changed_at"] == entry["ts"]
    page = custody.ok("GET", "/v1/tiers", regulator, params={"tier": "red", "limit": 1000})
    assert red in {i["merchant_id"] for i in page["items"]}
    assert {i["tier"] for i in page["items"]} == {"red"}
    counted = _all(custody, regulator)
    assert page["by_tier"] == {t.value: sum(i["tier"] == t.value for i in counted) for t in Tier}


def test_a_merchants_tier_changes_are_listed_oldest_first_a_page_at_a_time(
        custody: Driver, engine: Engine) -> None:
    regulator = bearer(issue_key(engine, Role.regulator))
    merchant = custody.file("餐饮")["id"]
    changes = [_tier(custody, merchant, tier, [f"第{n}次"])
               for n, tier in enumerate(("yellow", "red", "yellow"), 1)]
    path = f"/v1/merchants/{merchant}/tier-changes"
    first = custody.ok("GET", path, regulator, params={"limit": 2})
    rest = custody.ok("GET", path, regulator, params={"after": first["next_after"]})
    assert (first["merchant_id"], first["tier"], rest["next_after"]) == (merchant, "yellow", None)
    assert [(i["journal_seq"], i["previous_tier"], i["tier"], i["reasons"], i["actor_role"])
            for i in first["items"] + rest["items"]] == [
        (c["journal_seq"], c["previous_tier"], c["tier"], c["reasons"], "operator")
        for c in changes]


def test_only_the_operator_and_regulators_read_tiers(custody: Driver, engine: Engine) -> None:
    merchant = custody.file("餐饮")["id"]
    merchant_key = custody.merchant_key(merchant)
    bank_key = custody.bank_key("ICBC-BJ")
    for key in (merchant_key, bank_key):
        for path in ("/v1/tiers", f"/v1/merchants/{merchant}/tier-changes"):
            assert_problem(custody.client.get(path, headers=key), 403, "forbidden")
    assert_problem(custody.client.get("/v1/tiers"), 401, "unauthorized")
    regulator = bearer(issue_key(engine, Role.regulator))
    assert_problem(custody.client.get("/v1/merchants/m_0000000000000000/tier-changes",
                                      headers=regulator), 404, "not_found", "merchant_id")
    assert_problem(custody.client.get("/v1/tiers", headers=regulator,
                                      params={"tier": "green"}), 422, "invalid_input", "tier")
