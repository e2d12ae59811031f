"""The regulators' dashboard (监管驾驶舱): a page the service serves at /dashboard, its panels,
its string tables per language, and its files (docs/supervision.md, "The regulators'
dashboard").

The page holds no data: it asks for a regulator's key, keeps it in the tab's sessionStorage,
and each panel's script reads the JSON API with it, as any client would. Everything it loads
is served from here or from an installed package (the charts: Chart.js from the chartkick
wheel), never from a CDN.

A panel is a unit: an entry in PANELS below, its template fragment
`templates/panels/<name>.html`, its script module `static/panels/<name>.js` (which exports
`load(section, ctx)`), its strings `<name>.*` in each table of `strings/`, and the JSON routes
it reads (`sources`). Adding one is adding those four; nothing else changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


class View(StrEnum):
    """Where a panel shows: the overview, or a merchant's detail view (`#merchant/<id>`),
    whose panels are given the merchant's id."""

    overview = "overview"
    merchant = "merchant"


@dataclass(frozen=True)
class Panel:
    name: str  # its template, script and strings are found by this name
    view: View
    sources: tuple[str, ...]  # the JSON routes its script reads (regulator-readable)
    wide: bool = False  # across the whole page, not one column of the overview


PANELS: Final = (
    Panel("alerts", View.overview, ("/v1/alerts",), wide=True),
    Panel("tiers", View.overview, ("/v1/tiers",)),
    Panel("coverage", View.overview, ("/v1/audit/totals",)),
    Panel("verification", View.overview, ("/v1/cross-verifications", "/v1/breaks", "/v1/tiers"),
          wide=True),
    Panel("complaints", View.overview, ("/v1/complaints/stats/departments",), wide=True),
    Panel("reports", View.overview, ("/v1/reports",)),
    Panel("journal", View.overview, ("/v1/audit/tree-head", "/v1/audit/public-key")),
    Panel("merchant", View.merchant, ("/v1/merchants/{merchant_id}",
                                      "/v1/merchants/{merchant_id}/tier-changes")),
    Panel("signals", View.merchant, ("/v1/merchants/{merchant_id}/risk",
                                     "/v1/merchants/{merchant_id}/signals")),
    Panel("register", View.merchant, ("/v1/merchants/{merchant_id}",
                                      "/v1/merchants/{merchant_id}/amendments",
                                      "/v1/bans?active=true")),
    Panel("merchant_complaints", View.merchant, ("/v1/complaints?merchant_id={merchant_id}",)),
)

LANGUAGES: Final = ("zh", "en")  # the first is the default
HTML_LANG: Final = {"zh": "zh-CN", "en": "en"}

# The page's Content-Security-Policy: scripts and styles are files of this origin (no inline
# script or style, no eval), data is read from this origin only, and nothing may frame it.
PAGE_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_STATIC_TYPES: Final = {".js": "text/javascript; charset=utf-8",
                        ".css": "text/css; charset=utf-8"}
# Chart.js 4 as the chartkick wheel ships it (pyproject.toml says why this package).
CHART_PACKAGE: Final = "chartkick"
CHART_FILE: Final = "django/static/chartkick/Chart.bundle.js"


@cache
def environment() -> Environment:
    # StrictUndefined: a string missing from a table fails the page, never shows blank.
    return Environment(loader=PackageLoader("api.dashboard", "templates"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined)


@cache
def strings(lang: str) -> dict[str, str]:
    """The language's string table (strings/<lang>.json): one flat object, key -> text."""
    text = resources.files("api.dashboard").joinpath(f"strings/{lang}.json").read_text("utf-8")
    table: dict[str, str] = json.loads(text)
    return table


def page(lang: str) -> str:
    """The page in this language: the log-in form, then every panel's fragment in its view."""
    context: dict[str, Any] = {
        "lang": lang, "html_lang": HTML_LANG[lang], "t": strings(lang),
        "other_lang": next(other for other in LANGUAGES if other != lang),
        "views": {view.value: [p for p in PANELS if p.view == view] for view in View}}
    return environment().get_template("page.html").render(context)


@cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of static/ by its path there, with its media type: the page's own scripts
    and style, read once."""
    found: dict[str, tuple[bytes, str]] = {}
    root = resources.files("api.dashboard").joinpath("static")
    pending = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        for item in folder.iterdir():
            if item.is_dir():
                pending.append((f"{prefix}{item.name}/", item))
                continue
            suffix = item.name[item.name.rfind("."):]
            if suffix in _STATIC_TYPES:
                found[prefix + item.name] = (item.read_bytes(), _STATIC_TYPES[suffix])
    return found


@cache
def chart_library() -> bytes:
    return resources.files(CHART_PACKAGE).joinpath(CHART_FILE).read_bytes()
