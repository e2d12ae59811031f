"""What the ban flows read and write, typed: the bans half of the doorway
(`ledger.commands.Books.bans`). ledger/db/ban_store.py implements it.

`bans_of` is what every sale asks: it answers from the batch's memo of the subjects' bans,
which the writer carries from batch to batch, so a sale reads no row for it once its
merchant's subjects are known (ledger/db/ban_store.py prefetch_screens).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol

from ledger.supervision.bans import Arrival, Ban, Subject


class BanStore(Protocol):
    # -- by id, right at any point of a command -----------------------------------------
    def bans_of(self, subjects: Sequence[Subject]) -> Mapping[Subject, Sequence[Ban]]:
        """The bans not lifted of each subject (in force or not yet, or ended)."""
        ...

    def ban(self, ban_id: int) -> Ban | None: ...

    # -- queries: before the command changes anything -----------------------------------
    def arrivals(self, premises: str, since: date) -> list[Arrival]:
        """Merchants filed or amended onto the premises since `since`."""
        ...

    def flagged(self, premises: str) -> bool: ...

    # -- writes --------------------------------------------------------------------------
    def add_ban(self, ban: Ban, listed_by: int, merchant_id: str | None) -> None: ...
    def lift_ban(self, ban: Ban, reason: str, lifted_on: date, lifted_seq: int,
                 lifted_by: int) -> None: ...
    def add_arrival(self, premises: str, arrival: Arrival, seq: int) -> None: ...
    def add_flag(self, premises: str, flagged_on: date, seq: int) -> None: ...
