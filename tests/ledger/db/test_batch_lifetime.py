"""A batch is gone as soon as its writer lets go of it, not when the cyclic collector runs.

A batch holds its journal entries, postings and rows until it is dropped; one that sat in a
reference cycle (it and the Door its commands see used to refer to each other) waited for a
full collection, which under steady load never came: the service's memory grew with every
big batch (docs/reliability.md, "The soak"). With the collector off, no batch outlives its
writes here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ledger.db.batch import Batch
from tests.support.driver import Driver

writes_count = 40
batches_in_flight_max = 2  # the writer's last batch and one run ahead may still be held


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def live_batches() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, Batch))


def test_no_batch_outlives_its_writes_without_the_cyclic_collector(custody: Driver,
                                                                   no_collector: None) -> None:
    merchant = custody.file("体育健身")
    key = custody.merchant_key(merchant["id"])
    product = custody.product(merchant["id"], key, kind="stored_value", price_fen=100_000,
                              validity_months=3)
    before = live_batches()
    cards = [custody.sell(product["id"], key)["card_id"] for _ in range(writes_count // 2)]
    paid = [custody.consume(card, key, amount_fen=100)["paid_fen"] for card in cards]
    assert paid == [100] * len(cards)
    assert live_batches() <= before + batches_in_flight_max
