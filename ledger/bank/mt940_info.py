"""MT940 `:86:` (information to the account owner) read into references and counterparty.

Banks structure it three ways, and free text otherwise:

- German DK (Sparkassen, Volksbanken, Commerzbank, Deutsche Bank, LBBW): `GVC?00booking text
  ?10prima nota?20..?29 purpose?30BLZ or BIC?31account?32?33name?34..?38 IBAN?60..?63 purpose`;
  Triodos writes `>` for `?`. The purpose carries SEPA tags: `EREF+` (end-to-end id),
  `KREF+` (customer reference), `MREF+` (mandate), `CRED+`, `SVWZ+` (remittance text),
  `ABWA+` (ultimate party) ...
- SWIFT / Dutch (ING, Rabobank, ABN AMRO): `/EREF/id/REMI/text/CNTP/account/BIC/name/city/`;
  ING's REMI is `USTD//text` or `STRD/CUR/reference`.
- The SEPA `EREF+`-style tags in plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ledger.bank import limits
from ledger.bank.model import StatementRejected
from ledger.bank.mt940_lex import Field

NO_REFERENCE: Final = "NONREF"
NOT_PROVIDED: Final = "NOTPROVIDED"


@dataclass(frozen=True, slots=True)
class Info:
    end_to_end_id: str | None = None
    creditor_reference: str | None = None
    remittance: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    booking_text: str | None = None  # DK ?00, KREF, MREF: kept as the entry's information
    # KREF+: the account owner's reference, which the :61: line cuts to 16 characters or
    # gives as a bare `KREF+` (Commerzbank, LBBW).
    customer_reference: str | None = None


# Only these codes delimit values, so a slash inside a value (dates, "a/b" references) does not
# cut it short.
_SLASH_CODES: Final = (
    "EREF", "CREF", "REMI", "PREF", "MARF", "CSID", "NAME", "CNTP", "ORDP", "BENM", "IBAN", "ADDR",
    "TRTP", "RTRN", "PURP", "SVCL", "ISDT", "ULTC", "ULTD", "OCMT", "CHGS", "EXCH", "CDTRREFTP",
    "CDTRREF", "SUM", "TRCD", "BUSP", "ABWA")
_SLASH_RE: Final = re.compile(r"/(" + "|".join(_SLASH_CODES) + r")/")
_DK_START_RE: Final = re.compile(r"\s*[0-9]{3}(?P<mark>[?>])[0-9]{2}")
_DK_SUBFIELD_RE: Final = {
    mark: re.compile(rf"\{mark}([0-9]{{2}})((?:(?!\{mark}[0-9]{{2}}).)*)") for mark in "?>"}
_PLUS_CODES: Final = ("EREF", "KREF", "MREF", "CRED", "DEBT", "COAM", "OAMT", "SVWZ", "ABWA",
                      "ABWE", "IBAN", "BIC", "PURP")
# Before SEPA tags, German banks marked the remittance text `MTLG:` (Mitteilung).
_PLUS_RE: Final = re.compile(r"(?<![A-Z])(?:(" + "|".join(_PLUS_CODES) + r")\+|(MTLG):)")
_PURPOSE_SUBFIELDS: Final = tuple(f"{n:02d}" for n in (*range(20, 30), *range(60, 64)))
_REMI_UNSTRUCTURED: Final = "USTD//"
_REMI_STRUCTURED_RE: Final = re.compile(r"STRD/[A-Z]{3,4}/(?P<ref>.+)")


def parse_info(info: Field) -> Info:
    # The lines wrap at 65 characters, not at words: joined as they are.
    joined = "".join(part.strip() for part in info.lines)
    if len(joined) > limits.statement_text_chars_max:
        raise StatementRejected(f":86: of {len(joined)} characters, over the limit of "
                                f"{limits.statement_text_chars_max}", field=info.where)
    plain = " ".join(p for p in (part.strip() for part in info.lines) if p) or None
    dk = _DK_START_RE.match(joined)
    if dk is not None:
        return _dk_info(joined, dk["mark"], plain)
    slash = _tagged(_SLASH_RE, joined)
    if slash:
        return _slash_info(slash, plain)
    plus = _tagged(_PLUS_RE, joined)
    return Info(end_to_end_id=_provided(plus.get("EREF")), remittance=plus.get("SVWZ") or plain,
                counterparty_account=plus.get("IBAN"), booking_text=_sepa_refs(plus),
                customer_reference=plus.get("KREF"))


def _dk_info(joined: str, mark: str, plain: str | None) -> Info:
    subfields: dict[str, str] = {}
    for number, value in _DK_SUBFIELD_RE[mark].findall(joined):
        subfields[number] = subfields.get(number, "") + value
    purpose = "".join(subfields.get(n, "") for n in _PURPOSE_SUBFIELDS)
    plus = _tagged(_PLUS_RE, purpose)
    name = (subfields.get("32", "") + subfields.get("33", "")).strip() or plus.get("ABWA")
    account = subfields.get("38", "").strip() or subfields.get("31", "").strip() or None
    booking = " ".join(filter(None, (subfields.get("00", "").strip(), _sepa_refs(plus))))
    return Info(end_to_end_id=_provided(plus.get("EREF")),
                remittance=plus.get("SVWZ") or plus.get("MTLG") or purpose.strip() or plain,
                counterparty_name=name, counterparty_account=account,
                booking_text=booking or None, customer_reference=plus.get("KREF"))


def _slash_info(slash: dict[str, str], plain: str | None) -> Info:
    account, name = _counterparty(slash.get("CNTP"))
    remittance, creditor_reference = _remittance(slash.get("REMI"))
    return Info(
        end_to_end_id=_provided(slash.get("EREF")),
        creditor_reference=slash.get("CREF") or slash.get("CDTRREF") or creditor_reference,
        remittance=remittance or plain, counterparty_name=slash.get("NAME") or name,
        counterparty_account=slash.get("IBAN") or account)


def _counterparty(cntp: str | None) -> tuple[str | None, str | None]:
    """ING's `/CNTP/account/BIC/name/city/`: the account and the name."""
    if cntp is None:
        return None, None
    parts = [*cntp.split("/"), "", "", ""]
    return parts[0].strip() or None, parts[2].strip() or None


def _remittance(remi: str | None) -> tuple[str | None, str | None]:
    """The remittance text, and the creditor reference of a structured one."""
    if remi is None:
        return None, None
    structured = _REMI_STRUCTURED_RE.fullmatch(remi)
    if structured is not None:
        return remi, structured["ref"].strip("/") or None
    return remi.removeprefix(_REMI_UNSTRUCTURED).strip("/").strip() or None, None


def _sepa_refs(plus: dict[str, str]) -> str | None:
    """The SEPA references that have no field of their own: the customer's and the mandate."""
    refs = [f"{code}+{plus[code]}" for code in ("KREF", "MREF") if code in plus]
    return " ".join(refs) or None


def _tagged(pattern: re.Pattern[str], text: str) -> dict[str, str]:
    """`{code: value}` for each code the pattern finds, the value running to the next code."""
    marks = list(pattern.finditer(text))
    found: dict[str, str] = {}
    ends = [following.start() for following in marks[1:]] + [len(text)] if marks else []
    for mark, end in zip(marks, ends, strict=True):
        value = text[mark.end():end].strip().strip("/").strip()
        code = next(group for group in mark.groups() if group)
        if value and code not in found:
            found[code] = value
    return found


def _provided(value: str | None) -> str | None:
    return None if value in (None, NOT_PROVIDED, NO_REFERENCE) else value
