"""A bank's own statement export, described as data: a bank profile (docs/bank-formats.md,
"Chinese banks' exports: bank profiles").

Chinese banks' online banking exports account details as CSV (in GBK) or Excel, each bank in
its own layout: title lines (账号, 户名, 币种, 查询期间), a header row in Chinese, the rows,
and footer lines (合计, 总笔数). A profile says where each thing is, so that a new layout is a
JSON file and not code. This module only checks a profile given as a mapping (what a JSON file
holds); reading the files is api/profiles.py's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar

from ledger.bank.model import StatementRejected
from ledger.bank.text import TextEncoding, encoding_named

E = TypeVar("E", bound=StrEnum)


class ProfileError(ValueError):
    """A profile that cannot be used, with the field at fault in the message."""


class ProfileFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


class ProfileReader(StrEnum):
    """`columns`: the rows are read by the profile's header and columns (profiled.py);
    `yufu-csv`: the file is our own CSV (bankcsv.py), the profile naming only its encoding."""

    columns = "columns"
    yufu_csv = "yufu-csv"


class Field(StrEnum):
    """What a column may hold, by the name a profile's `columns` gives it."""

    booking_date = "booking_date"  # 交易日期, 记账日期
    booking_time = "booking_time"  # 交易时间, when apart from the date
    value_date = "value_date"  # 起息日
    debit = "debit"  # 借方发生额: money out, positive
    credit = "credit"  # 贷方发生额: money in, positive
    amount = "amount"  # 金额: signed, or with a direction column
    direction = "direction"  # 借贷标志
    balance = "balance"  # 余额, after the row
    counterparty_name = "counterparty_name"  # 对方户名
    counterparty_account = "counterparty_account"  # 对方账号
    counterparty_bank = "counterparty_bank"  # 对方开户行
    summary = "summary"  # 摘要
    purpose = "purpose"  # 用途
    postscript = "postscript"  # 附言
    bank_reference = "bank_reference"  # 交易流水号, 凭证号
    currency = "currency"  # 币种
    account = "account"  # 本方账号


class RowOrder(StrEnum):
    """The order of a file's rows: the balance chain is checked oldest first."""

    oldest_first = "oldest_first"
    newest_first = "newest_first"


class AmountForm(StrEnum):
    """The ways of writing an amount a profile accepts beyond plain `1234.56`."""

    thousands = "thousands"  # 1,234.56
    minus = "minus"  # -1234.56 in a signed column
    parentheses = "parentheses"  # (1,234.56) for a debit in a signed column
    blank_zero = "blank_zero"  # an empty cell is 0
    yuan_sign = "yuan_sign"  # ¥1234.56, ￥1234.56


class DateForm(StrEnum):
    """The date forms a profile accepts; any of them may be followed by a time."""

    iso = "YYYY-MM-DD"
    slashes = "YYYY/MM/DD"
    digits = "YYYYMMDD"
    chinese = "YYYY年MM月DD日"


# Our own references (ledger/custody/chart.py: YFS + sale, YFD + day + merchant, YFR, YFF):
# found in 摘要/用途/附言, they are the line's creditor reference, which matching goes by.
DEFAULT_REFERENCE_PATTERN: Final = r"YF[SDRF][0-9][0-9A-Za-z-]*"
_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# A title or footer search looks this far: title lines are a handful, not pages.
title_rows_max: Final = 30
_TEXT_CHARS_MAX: Final = 200  # a label, a header name, a bank's display name
_REMITTANCE_FIELDS: Final = (Field.summary, Field.purpose, Field.postscript)


@dataclass(frozen=True, slots=True)
class BankProfile:
    """One bank's export layout. `columns` maps each field to the header names it may have
    (the first the file holds is taken); `title_labels` the labels of title cells
    (`账号：123`); `footer_labels` the first cell of footer rows (合计, 总笔数)."""

    name: str
    bank: str
    format: ProfileFormat
    reader: ProfileReader = ProfileReader.columns
    encoding: TextEncoding | None = None  # CSV only; None: detected (text.py)
    delimiter: str = ","
    header_row: int | None = None  # 1-based; None: the first row naming every column
    columns: Mapping[Field, tuple[str, ...]] = field(default_factory=dict)
    optional_columns: frozenset[Field] = frozenset()  # of `columns`: may be absent
    row_order: RowOrder = RowOrder.oldest_first
    title_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    footer_labels: tuple[str, ...] = ()
    direction_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_forms: tuple[DateForm, ...] = tuple(DateForm)
    amount_forms: frozenset[AmountForm] = frozenset(AmountForm)
    currency: str = "CNY"  # when neither a title line nor a column gives it
    reference_pattern: str = DEFAULT_REFERENCE_PATTERN

    def header_names(self) -> frozenset[str]:
        return frozenset(name for names in self.columns.values() for name in names)

    def has(self, wanted: Field) -> bool:
        return wanted in self.columns


def profile_from_mapping(raw: Mapping[str, Any]) -> BankProfile:
    """The profile a JSON object describes, or ProfileError naming the field at fault."""
    unknown = set(raw) - _KEYS
    if unknown:
        raise ProfileError(f"unknown field {sorted(unknown)[0]!r}")
    name = _text(raw, "name")
    if not _NAME_RE.fullmatch(name):
        raise ProfileError(f"name {name!r}: lower-case letters, digits and '-' only")
    profile = BankProfile(
        name=name, bank=_text(raw, "bank"), format=_enum(ProfileFormat, raw, "format"),
        reader=_enum(ProfileReader, raw, "reader", ProfileReader.columns),
        encoding=_encoding(raw), delimiter=_delimiter(raw), header_row=_header_row(raw),
        columns=_columns(raw), optional_columns=_optional(raw),
        row_order=_enum(RowOrder, raw, "row_order", RowOrder.oldest_first),
        title_labels=_labels(raw, "title_labels", _TITLE_KEYS),
        footer_labels=_names(raw["footer_labels"], "footer_labels")
        if "footer_labels" in raw else (),
        direction_values=_labels(raw, "direction_values", _DIRECTIONS),
        date_forms=tuple(_enum_list(DateForm, raw, "date_forms", tuple(DateForm))),
        amount_forms=frozenset(_enum_list(AmountForm, raw, "amount_forms", tuple(AmountForm))),
        currency=_text(raw, "currency", "CNY"),
        reference_pattern=_pattern(raw))
    _check_layout(profile)
    return profile


_KEYS: Final = frozenset({
    "name", "bank", "format", "reader", "encoding", "delimiter", "header_row", "columns",
    "optional_columns", "row_order",
    "title_labels", "footer_labels", "direction_values", "date_forms", "amount_forms",
    "currency", "reference_pattern", "description"})
_TITLE_KEYS: Final = frozenset({"account", "currency", "account_name"})
_DIRECTIONS: Final = frozenset({"credit", "debit"})
# Without these a row cannot be read: never optional.
_STRUCTURAL: Final = frozenset({Field.booking_date, Field.debit, Field.credit, Field.amount,
                                Field.direction})


def _check_layout(p: BankProfile) -> None:
    if p.encoding is not None and p.format is not ProfileFormat.csv:
        raise ProfileError("encoding: only a CSV profile has one")
    if p.reader is ProfileReader.yufu_csv:
        if p.format is not ProfileFormat.csv or p.columns:
            raise ProfileError("reader yufu-csv: a CSV profile without columns")
        return
    if not p.has(Field.booking_date):
        raise ProfileError("columns: booking_date is required")
    two_columns = p.has(Field.debit) and p.has(Field.credit)
    if two_columns == p.has(Field.amount) or (p.has(Field.debit) != p.has(Field.credit)):
        raise ProfileError("columns: either debit and credit, or amount (with or without "
                           "direction)")
    if p.has(Field.direction) != bool(p.direction_values):
        raise ProfileError("direction_values: required with a direction column, and only then")
    if not p.optional_columns <= p.columns.keys() or p.optional_columns & _STRUCTURAL:
        raise ProfileError("optional_columns: fields of columns, other than booking_date, "
                           "debit, credit, amount and direction")
    names = [n for names in p.columns.values() for n in names]
    if len(names) != len(set(names)):
        raise ProfileError("columns: a header name is given to two fields")
    if p.has(Field.account) and "account" in p.title_labels:
        raise ProfileError("title_labels: account is a column already")


def remittance_fields() -> tuple[Field, ...]:
    return _REMITTANCE_FIELDS


# --- leaf values ---------------------------------------------------------------------------
def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip() or len(value) > _TEXT_CHARS_MAX:
        raise ProfileError(f"{key}: a text of 1 to {_TEXT_CHARS_MAX} characters is required")
    return value


def _enum(kind: type[E], raw: Mapping[str, Any], key: str,
                      default: E | None = None) -> E:
    value = raw.get(key, default)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(e.value for e in kind)
        raise ProfileError(f"{key}: {str(value)[:40]!r} is not one of {allowed}") from None


def _enum_list(kind: type[E], raw: Mapping[str, Any], key: str,
                           default: tuple[E, ...]) -> list[E]:
    values = raw.get(key, [e.value for e in default])
    if not isinstance(values, list) or not values:
        raise ProfileError(f"{key}: a non-empty list is required")
    return [_enum(kind, {key: value}, key) for value in values]


def _encoding(raw: Mapping[str, Any]) -> TextEncoding | None:
    name = raw.get("encoding")
    if name is None:
        return None
    if not isinstance(name, str):
        raise ProfileError("encoding: a name such as gb18030 or utf-8 is required")
    try:
        return encoding_named(name, "encoding")
    except StatementRejected as exc:
        raise ProfileError(f"encoding: {exc.detail}") from None


def _delimiter(raw: Mapping[str, Any]) -> str:
    value = raw.get("delimiter", ",")
    if value not in (",", ";", "\t", "|"):
        raise ProfileError("delimiter: one of ',', ';', '\\t' or '|'")
    return str(value)


def _header_row(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("header_row")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= title_rows_max:
        raise ProfileError(f"header_row: a row number from 1 to {title_rows_max}")
    return value


def _columns(raw: Mapping[str, Any]) -> dict[Field, tuple[str, ...]]:
    given = raw.get("columns", {})
    if not isinstance(given, Mapping):
        raise ProfileError("columns: an object of field to header names is required")
    columns: dict[Field, tuple[str, ...]] = {}
    for key, names in given.items():
        columns[_enum(Field, {"columns": key}, "columns")] = _names(names, f"columns.{key}")
    return columns


def _optional(raw: Mapping[str, Any]) -> frozenset[Field]:
    values = raw.get("optional_columns", [])
    if not isinstance(values, list):
        raise ProfileError("optional_columns: a list of fields is required")
    return frozenset(_enum(Field, {"optional_columns": v}, "optional_columns") for v in values)


def _labels(raw: Mapping[str, Any], key: str, allowed: frozenset[str]
            ) -> dict[str, tuple[str, ...]]:
    given = raw.get(key, {})
    if not isinstance(given, Mapping):
        raise ProfileError(f"{key}: an object is required")
    for name in given:
        if name not in allowed:
            raise ProfileError(f"{key}: {str(name)[:40]!r} is not one of "
                               f"{', '.join(sorted(allowed))}")
    return {name: _names(values, f"{key}.{name}") for name, values in given.items()}


def _names(values: Any, key: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values or not all(
            isinstance(v, str) and v.strip() and len(v) <= _TEXT_CHARS_MAX for v in values):
        raise ProfileError(f"{key}: a name or a non-empty list of names is required")
    return tuple(v.strip() for v in values)


def _pattern(raw: Mapping[str, Any]) -> str:
    pattern = _text(raw, "reference_pattern", DEFAULT_REFERENCE_PATTERN)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ProfileError(f"reference_pattern: {exc}") from None
    return pattern
