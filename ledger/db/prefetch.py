"""What a batch brings in before its commands run (ledger/commands.py `Reads`): the cards and
products its commands name, with their merchants, accounts and screens, a few queries for the
whole batch."""

from __future__ import annotations

from ledger.db import custody_tables as c
from ledger.db.ban_store import prefetch_screens
from ledger.db.batch import Batch
from ledger.db.custody_store import load_rows, merchant_accounts


def prefetch_cards(batch: Batch, card_ids: list[str]) -> None:
    """Cards, their merchants and their accounts, three queries for a whole batch."""
    load_rows(batch, c.Card, card_ids)
    cards = [row for i in card_ids if (row := batch.rows.get(c.Card, i)) is not None]
    merchant_ids = sorted({row["merchant_id"] for row in cards})
    load_rows(batch, c.Merchant, merchant_ids)
    charts = [merchant_accounts(batch, m) for m in merchant_ids]
    batch.load_accounts([row["account_id"] for row in cards]
                        + [a for chart in charts for a in chart.values()])


def prefetch_products(batch: Batch, product_ids: list[str]) -> None:
    load_rows(batch, c.Product, product_ids, lock=False)  # products never change
    products = [row for i in product_ids if (row := batch.rows.get(c.Product, i)) is not None]
    merchant_ids = sorted({row["merchant_id"] for row in products})
    load_rows(batch, c.Merchant, merchant_ids)
    batch.load_accounts([a for m in merchant_ids for a in merchant_accounts(batch, m).values()])
    prefetch_screens(batch, merchant_ids)  # a sale screens its merchant's people, premises
