"""What the complaint flows read and write, typed: the complaints half of the doorway
(`ledger.commands.Books.complaints`). ledger/db/complaint_store.py implements it.

As in ledger/custody/store.py: reads by id see the batch's own writes; queries (marked) see
every earlier command's writes and are refused once the running command has changed
something, so a flow runs its queries first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ledger.supervision.complaints import Complaint, Deadlines


class ComplaintStore(Protocol):
    # -- by id ---------------------------------------------------------------------------
    def complaint(self, complaint_id: int) -> Complaint: ...
    def deadlines(self, deadline_set_id: int) -> Deadlines: ...  # a version never changes

    # -- queries -------------------------------------------------------------------------
    def orders_taken(self, orders: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """A query: of these (channel, external order id), those recorded, with their
        complaint."""
        ...

    def merchants_by_credit_code(self, codes: Sequence[str]) -> dict[str, str]:
        """A query: credit code -> merchant id, of the codes filed."""
        ...

    def latest_deadlines(self, jurisdiction: str) -> tuple[int, Deadlines] | None:
        """A query: the newest stored deadlines of a jurisdiction, with their id."""
        ...

    def next_deadlines_version(self, jurisdiction: str) -> int:
        """A query: the version a jurisdiction's next deadlines take."""
        ...

    # -- writes --------------------------------------------------------------------------
    def add_deadlines(self, row: Mapping[str, Any]) -> None: ...
    def add_complaint(self, complaint: Complaint) -> None: ...
    def update_complaint(self, complaint: Complaint) -> None: ...
    def add_step(self, row: Mapping[str, Any]) -> None: ...  # one per journal entry
    def count_complaint(self, merchant_id: str) -> None:  # merchants.complaint_count + 1
        ...
