"""What the custody tests check: valid credit codes, the custody identity, the journal's chain,
and the rules' arithmetic written again from the definitions (the custodied share, a
largest-remainder split)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, text
from stdnum.cn import ric, uscc

from ledger.db import custody_queries, queries
from ledger.journal import ChainBreak, check_chain

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ASSETS = ("custody_cash", "custody_in_transit", "direct_share")
LIABILITIES = ("earned_pending", "earned", "reserve", "release_pending", "refunds_payable",
               "merchant_refund_due")


def credit_code(rng: random.Random) -> str:
    """A valid unified social credit code: 8 digits (authority, type, region), 9 characters
    of organisation code, and the GB 32100-2015 check character."""
    base = "91" + "".join(rng.choice("0123456789") for _ in range(6)) + \
        "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    code = base + uscc.calc_check_digit(base)
    assert uscc.is_valid(code)
    return code


def id_number(rng: random.Random) -> str:
    """A valid resident identity card number (居民身份证号): region, birth day, order code and
    the ISO 7064 check character."""
    base = "110105" + f"19{rng.randrange(50, 99)}{rng.randrange(1, 13):02d}" \
        f"{rng.randrange(1, 29):02d}" + f"{rng.randrange(1000):03d}"
    number = base + ric.calc_check_digit(base + "0")  # it reads the first 17 of 18
    assert ric.is_valid(number)
    return number


def card_balances(conn: Connection, merchant_id: str) -> dict[str, int]:
    """Each card's normal balance (what is left on it), by card id."""
    rows = conn.execute(text(
        "SELECT c.id, -a.balance_fen FROM cards c JOIN accounts a ON a.id = c.account_id "
        "WHERE c.merchant_id = :m"), {"m": merchant_id}).all()
    return {r[0]: int(r[1]) for r in rows}


def check_custody_identity(conn: Connection, merchant_id: str) -> dict[str, int]:
    """The merchant's balance sheet and its custody identity; returns the balances."""
    b = custody_queries.merchant_balances(conn, merchant_id)
    assert set(b) == set(ASSETS) | set(LIABILITIES)
    assert all(value >= 0 for value in b.values()), b
    cards = sum(card_balances(conn, merchant_id).values())
    # Balance sheet: every asset account against every liability account, cards included.
    assert sum(b[p] for p in ASSETS) == cards + sum(b[p] for p in LIABILITIES)
    # Custody identity: what the bank holds or is receiving equals the custodied share of
    # the outstanding card balances, plus what is earned, reserved, being released and being
    # refunded. The custodied share is the card balances less what the merchant took
    # directly and still covers them with (what it took, less what it already owes back).
    custodied_share = cards - (b["direct_share"] - b["merchant_refund_due"])
    assert b["custody_cash"] + b["custody_in_transit"] == (
        custodied_share + b["earned_pending"] + b["earned"] + b["reserve"]
        + b["release_pending"] + b["refunds_payable"])
    return b


def check_journal(conn: Connection, start_after: int = 0, prev_hash: bytes | None = None
                  ) -> tuple[int, bytes]:
    """The chain verifies from `start_after` (whose hash is `prev_hash`); returns the head."""
    kwargs: dict[str, Any] = {}
    if start_after:
        assert prev_hash is not None
        kwargs = {"start_seq": start_after + 1, "start_prev_hash": prev_hash}
    seq, head = start_after, prev_hash
    for result in check_chain(queries.stored_entries(conn, start_after), **kwargs):
        assert not isinstance(result, ChainBreak), result
        seq, head = seq + 1, result
    assert queries.account_balance_mismatches(conn) == []
    assert queries.chain_head(conn) == (seq, head)
    assert head is not None
    return seq, head


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Written again from the definition, to check the service: floors of the exact shares,
    then one fen each to the largest remainders, ties to the earlier."""
    whole = sum(weights)
    exact = [Fraction(total * w, whole) for w in weights]
    parts = [int(x) for x in exact]  # floor: all non-negative
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def custodied(paid: int, ratio_bp: int) -> int:
    """The custodied share of a payment: the exact share, half a fen rounded up (largest
    remainder of two)."""
    return (paid * ratio_bp + 5_000) // 10_000
