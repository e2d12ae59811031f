"""Account numbers as banks write them, brought to one form before they are compared.

The same custody account reaches us as `NL91 ABNA 0417 1643 00` (an IBAN printed in groups),
`ABNANL2A/NL91ABNA0417164300` (MT940's `:25:` with the bank's BIC before it),
`0417164300EUR` (the account followed by its currency), `6222-0210-0104-3300-123` or
`6222 0210 0104 3300 123` (a Chinese account number grouped for reading). Filing stores the
normalised form and a statement's account is normalised before it is looked up, so none of
these spellings sends a statement to the wrong merchant or to none.
"""

from __future__ import annotations

import re
from typing import Final

custody_currency: Final = "CNY"  # every custody account, like every ledger account, is in CNY
_SEPARATORS_RE: Final = re.compile(r"[\s\-.·]+")
_CURRENCY_SUFFIX_RE: Final = re.compile(r"(?P<account>.*[0-9])(?P<currency>[A-Z]{3})")


def normalise_account(text: str) -> str:
    """Upper case, without the spaces, dashes and dots that group it for reading."""
    return _SEPARATORS_RE.sub("", text).upper()


def account_candidates(text: str, currency: str) -> list[str]:
    """The forms a statement's account may match a filed account by, most literal first:
    as written; without a `BIC/` before it; without the statement's currency after it."""
    whole = normalise_account(text)
    found = [whole]
    tail = whole.rpartition("/")[2]
    for form in (tail, *_without_currency(tail, currency)):
        if form and form not in found:
            found.append(form)
    return found


def _without_currency(account: str, currency: str) -> list[str]:
    match = _CURRENCY_SUFFIX_RE.fullmatch(account)
    if match is None or match["currency"] != currency:
        return []
    return [match["account"]]
