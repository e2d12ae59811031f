"""The release run and the auto-confirmation sweep in slices (ledger/flows/sweeps.py): each
slice its own group commit; the whole the same as one command; run again (or resumed after
a stop), nothing is done twice."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.auth import Principal, Role
from ledger.commands import Command
from ledger.flows.sweeps import auto_confirm_steps, release_steps
from ledger.jobs import run_steps
from tests.support.db import run_one
from tests.support.driver import Banking, Merchant

BANK = "SWEEP-BANK"
SALE_DAY = date(2026, 11, 1)  # a Sunday
DAY = date(2026, 11, 2)  # the Monday that ends the weekly release period
OPERATOR = Principal(key_id=0, role=Role.operator)


def earning(banking: Banking, count: int) -> list[Merchant]:
    """Merchants with money earned in the period that ends on DAY."""
    banking.set_today(SALE_DAY)
    merchants = [banking.merchant(BANK, industry="美容美发") for _ in range(count)]
    for m in merchants:
        sale = banking.sell_at(m, 100_000)
        banking.consume(sale["card_id"], m.key, amount_fen=50_000)
    banking.set_today(DAY)
    return merchants


class Stopped(Exception):
    """The process running the run stopped here, between two slices."""


def test_a_release_run_in_slices_releases_each_merchant_once_and_resumes(
        banking: Banking, engine: Engine) -> None:
    merchants = earning(banking, 5)
    mine = {m.id for m in merchants}
    steps = release_steps(OPERATOR, DAY, merchants_max=2)
    seen: list[dict[str, Any]] = []
    commands = 0

    def stopping(command: Command) -> dict[str, Any]:
        nonlocal commands
        commands += 1
        if commands == 3:
            raise Stopped
        return run_one(engine)(command)

    with pytest.raises(Stopped):
        run_steps(steps, stopping, seen.append)
    first = [r for answer in seen for r in answer["releases"] if r["merchant_id"] in mine]
    assert [answer["progress"]["slices"] for answer in seen] == [1, 2]

    answer = run_steps(release_steps(OPERATOR, DAY, merchants_max=2), run_one(engine))

    rest = [r for r in answer["releases"] if r["merchant_id"] in mine]
    assert sorted(r["merchant_id"] for r in first + rest) == sorted(mine)  # each once
    assert all(r["amount_fen"] > 0 for r in first + rest)
    again = run_steps(release_steps(OPERATOR, DAY, merchants_max=2), run_one(engine))
    assert again == {"as_of": DAY.isoformat(), "releases": []}


def test_the_auto_confirmation_sweep_in_slices_confirms_each_consumption_once(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(SALE_DAY)
    m = banking.merchant(BANK)
    consumed = [banking.consume(banking.sell_at(m, 10_000)["card_id"], m.key, amount_fen=1_000)
                for _ in range(5)]
    assert {c["status"] for c in consumed} == {"pending"}
    due = max(date.fromisoformat(c["confirm_by"]) for c in consumed)
    ids = sorted(c["consumption_id"] for c in consumed)
    seen: list[dict[str, Any]] = []

    answer = run_steps(auto_confirm_steps(OPERATOR, due, consumptions_max=2), run_one(engine),
                       seen.append)

    assert set(ids) <= set(answer["confirmed"])
    assert len(answer["confirmed"]) == len(set(answer["confirmed"]))
    assert [a["progress"]["done"] for a in seen if "progress" in a][:2] == [2, 4]
    again = run_steps(auto_confirm_steps(OPERATOR, due, consumptions_max=2), run_one(engine))
    assert again == {"as_of": due.isoformat(), "confirmed": []}
