"""The page a list asks for (docs/api.md, "Lists"): the items after `after`, the previous
page's `next_after` (an id), at most `limit` of them, by id. Every list the API answers is
paged, each with a named maximum (ledger/limits.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from ledger import limits
from ledger.db.queries import Page

_AFTER = "the previous page's `next_after`; absent for the first page"
_LIMIT = "items per page at most"
After = Annotated[int, Query(ge=0, le=2**63 - 1, description=_AFTER)]
# Merchants and banks are named by strings: their cursor is one.
AfterName = Annotated[str, Query(max_length=limits.owner_chars_max, description=_AFTER)]
Limit = Annotated[int, Query(ge=1, le=limits.list_page_items_max, description=_LIMIT)]
ExposureLimit = Annotated[int, Query(ge=1, le=limits.exposure_page_merchants_max,
                                     description="merchants per page at most")]


class PageQuery(BaseModel):
    """A list's page as query parameters, for a route that takes filters too (its own
    fields, in a subclass)."""

    after: int = Field(default=0, ge=0, le=2**63 - 1, description=_AFTER)
    limit: int = Field(default=limits.list_page_items_default, ge=1,
                       le=limits.list_page_items_max, description=_LIMIT)

    def page(self) -> Page:
        return Page(self.after, self.limit)
