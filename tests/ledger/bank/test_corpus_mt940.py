"""Every real MT940 file of ../shared/real-statements read, or refused for a reason true of it.

The files are other projects' test data (SOURCES.md lists them), read where they lie and never
copied here. Per file the table says what each statement became: read (its account, number,
balances and line count) or refused (where and why, each reason checked by hand against the
file: the sums in the reasons were added up on paper). Every :61: of a file is a line of a read
statement or inside a refused one: none is dropped. Two lines per file, read by hand from the
file, are checked field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import mt940  # the `mt-940` package: a test oracle only (pyproject.toml, dev)
import pytest
from mt940 import processors

from ledger.bank.model import (
    Direction,
    EntryStatus,
    RefusedStatement,
    Statement,
    booked_movement_fen,
)
from ledger.bank.statements import read_file
from tests.support.corpus import CORPUS, needs_corpus


@dataclass(frozen=True)
class Read:
    account: str
    statement_id: str
    opening_fen: int
    closing_fen: int
    lines: int


@dataclass(frozen=True)
class Refused:
    position: str
    field: str
    says: str
    lines: int  # the :61: lines inside it, counted by hand


@dataclass(frozen=True)
class Line:
    """One hand-checked line: statement and line index, and what the file says of it."""

    statement: int
    index: int
    amount_fen: int
    direction: Direction
    booking_date: date
    value_date: date
    reference: str | None  # the end-to-end id read (:86: EREF, else the :61: customer ref)
    bank_reference: str | None = None
    counterparty: str | None = None
    status: EntryStatus = EntryStatus.booked


@dataclass(frozen=True)
class File:
    statements: tuple[Read | Refused, ...]
    lines: tuple[Line, ...] = ()
    chained: tuple[tuple[int, int], ...] = ()  # (a, b): a's closing balance is b's opening


def _daily(account: str, numbers: range, balances: list[int], lines: list[int]) -> tuple[
        Read, ...]:
    """A run of daily statements of one account, numbered `n/1`, each opening at the last's
    closing."""
    return tuple(Read(account, f"{n}/1", balances[i], balances[i + 1], lines[i])
                 for i, n in enumerate(numbers))


D, C = Direction.debit, Direction.credit
BALANCES_OFF = "balances do not add up"
ASNB_BALANCES = [44429, 37929, *[37929] * 3, 57774, *[57774] * 19, 57609, *[57609] * 3, 40481,
                 40481, 50123]
ASNB_LINES = [1, 0, 0, 0, 2, *[0] * 19, 1, 0, 0, 0, 2, 0, 2]
BETTERPLACE_ACCOUNT = "50880050/0194774600888"

EXPECTED: dict[str, File] = {
    "mt940_jejik_K4262927_20200905-080000-952.txt": File((
        # :65F:Dnullnull7414,3 where the closing balance should be: no such field, no :62F:.
        Refused("line 1", "line 10", "field :65F: is not part of MT940", 1),)),
    "mt940_jejik_commerzbank.txt": File((
        # opens at 0, one debit of 12,35, closes at 0
        Refused("line 1", "line 13", f"{BALANCES_OFF}: opening 0 fen + booked entries -1235 fen "
                "!= closing 0 fen", 1),)),
    "mt940_jejik_deutschebank.txt": File((
        Refused("line 1", "line 13", f"{BALANCES_OFF}: opening 0 fen + booked entries -1235 fen "
                "!= closing 0 fen", 1),)),
    "mt940_jejik_lbbw.txt": File(
        (Read("12345678/1324357", "1", 0, 0, 2),),
        (Line(0, 0, 1, D, date(2021, 2, 8), date(2021, 2, 8), None, counterparty=None),
         # :61: says KREF+ only; :86: gives the customer reference whole, over ?20 to ?21
         Line(0, 1, 1, C, date(2021, 2, 8), date(2021, 2, 8), "SEPA-20210203175805-00154800-P1",
              "202102040007693", "NIC RICHTER"))),
    "mt940_jejik_oldenburgischelandesbank.txt": File((
        # opens at 0, one credit of 104,50, closes at 0
        Refused("line 1", "line 7", f"{BALANCES_OFF}: opening 0 fen + booked entries 10450 fen "
                "!= closing 0 fen", 1),)),
    "mt940_jejik_sparkasse_interim_balance.txt": File(
        (Read("87052000/123456789", "00000/001", 19457, 17457, 1),
         Read("87052000/123456789", "00000/001", 17457, 15457, 1),
         Read("87052000/123456789", "00215/00129", 0, 0, 0)),
        (Line(0, 0, 2000, D, date(2019, 2, 18), date(2019, 2, 18), None, None, "ARAL AG"),
         Line(1, 0, 2000, D, date(2019, 2, 19), date(2019, 2, 19), None, None,
              "Max Mustermann")),
        chained=((0, 1),)),
    # :28C:0 on every day: eight statements all the same number.
    "mt940_jejik_volksbankenraiffeisenbanken.txt": File(
        tuple(Read("66642399/93387", "0", a, b, n) for a, b, n in [
            (308500, 323000, 2), (323000, 331000, 1), (331000, 343000, 2), (343000, 362000, 3),
            (362000, 368500, 1), (368500, 373500, 1), (373500, 377500, 1), (377500, 383000, 1)]),
        (Line(0, 0, 6500, C, date(2020, 2, 19), date(2020, 2, 19), None, None, "Olivia Dorn"),
         Line(2, 0, 5500, C, date(2020, 2, 24), date(2020, 2, 24), "ZV0100284190949300000002",
              None, "Thomas Schulz")),
        chained=tuple((n, n + 1) for n in range(7))),
    # ING in SWIFT blocks on lines of their own; :28C:0000 wrapped to a line "0"; :86: lines
    # holding only "-"; :64:, two :65: and an :86: after the closing balance.
    "mt940_oca_test-ing.940": File(
        (Read("NL77INGB0574908765EUR", "00000", 66223, 56435, 8),),
        (Line(0, 0, 156, C, date(2014, 2, 20), date(2014, 2, 20), "EV12341REP1231456T1234",
              "00000000001", "ING BANK NV INZAKE WEB"),
         Line(0, 7, 11900, D, date(2014, 2, 20), date(2014, 2, 20), "15614016000384600",
              "00000000001012"))),
    # Rabobank: :940: header, no "-" between messages, :28C:0 on four days.
    "mt940_oca_test-rabo.swi": File(
        (Read("NL34RABO0142623393 EUR", "0", 443352, 483352, 1),
         Read("NL34RABO0142623393 EUR", "0", 483352, 483352, 0),
         Read("NL34RABO0142623393 EUR", "0", 483352, 479891, 1),
         Read("NL34RABO0142623393 EUR", "0", 479891, 479891, 0)),
        (Line(0, 0, 40000, C, date(2014, 1, 2), date(2014, 1, 2), None, None, "R. SMITH"),
         Line(2, 0, 3461, D, date(2014, 1, 1), date(2014, 1, 1), None, None, "Kosten")),
        chained=((0, 1), (1, 2), (2, 3))),
    # SNS: customer references of 18 characters, or none; a zero line; the third message
    # ends (-}{5:}) after its lines, with no closing balance.
    "mt940_oca_test-sns.940": File(
        (Read("NL05SNSB0908244436", "361/1", 302696, 226452, 4),
         Read("NL05SNSB0908244436", "362/1", 226452, 225357, 2),
         Refused("line 60", "line 73", "expected :62F: or :62M: after this field; the statement "
                 "ends (truncated?)", 2)),
        (Line(0, 0, 71313, D, date(2017, 12, 27), date(2017, 12, 27), "NL49RABO0166416932"),
         Line(0, 1, 1018, D, date(2017, 12, 27), date(2017, 12, 27), None, "228ohu/972795"),
         Line(1, 1, 0, C, date(2017, 12, 28), date(2017, 12, 28), None,
              status=EntryStatus.info)),
        chained=((0, 1),)),
    "mt940_wolph_ASNB_mt940.txt": File(
        _daily("NL81ASNB9999999999", range(1, 32), ASNB_BALANCES, ASNB_LINES),
        (Line(0, 0, 6500, D, date(2020, 1, 1), date(2020, 1, 1), "NL47INGB9999999999"),
         Line(30, 0, 100018, C, date(2020, 1, 31), date(2020, 1, 31), "NL56ASNB9999999999")),
        chained=tuple((n, n + 1) for n in range(30))),
    # 26 messages of 20 accounts; :61: marks with a funds code (CR, DR, RCR).
    "mt940_wolph_betterplace_sepa_mt9401.sta": File(
        (Read(BETTERPLACE_ACCOUNT, "00004/00001", -123471836, -123762823, 7),
         *[Read(a, n, o, c, k) for a, n, o, c, k in [
             ("50880050/0194777100888", "00004/00001", -97049990, -145574985, 2),
             ("50880050/0194778300888", "00004/00001", -170929634, -223733485, 5),
             ("50880050/0194779500888", "00004/00001", 319267504, 424267504, 3),
             ("50880050/0194780100888", "00004/00001", -236882787, -309552214, 5),
             ("50880050/0194780101888", "00004/00001", 15297015, 20396020, 1),
             ("50880050/0194781300888", "00004/00001", -4043220, -3050383, 4),
             ("50880050/0194781300888", "00004/00002", -3050383, -10085445, 4),
             ("50880050/0194782500888", "00004/00001", -155249738, -135894552, 8),
             ("50880050/0194782500888", "00004/00002", -135894552, -230347111, 3),
             ("50880050/0194783700888", "00004/00001", -382947787, -293199484, 6),
             ("50880050/0194783700888", "00004/00002", -293199484, -501969796, 6),
             ("50880050/0194784900888", "00004/00001", -577758557, -601811338, 6),
             ("50880050/0194784900888", "00004/00002", -601811338, -884442538, 3),
             ("50880050/0194784901888", "00003/00001", 1399005, 2798010, 1),
             ("50880050/0194785000888", "00004/00001", -361251902, -363258504, 5),
             ("50880050/0194785000888", "00004/00002", -363258504, -381490147, 5),
             ("50880050/0194785000888", "00004/00003", -381490147, -511359352, 2),
             ("50880050/0194785001888", "00004/00001", 15297015, 20396020, 1),
             ("50880050/0194786200888", "00004/00001", 14596458, 23895477, 3),
             ("50880050/0194787400888", "00004/00001", 76665649, 112525040, 4),
             ("50880050/0194791600888", "00004/00001", -197043187, -447204909, 7),
             ("50880050/0194791601888", "00004/00001", -32491025, -39731025, 3),
             ("50880050/0194798900888", "00004/00001", -45000, -60000, 1),
             ("50880050/0194799000888", "00004/00001", -45000, -60000, 1),
             ("50880050/0194804000888", "00001/00001", 0, 5005, 1)]]),
        (Line(0, 0, 30000, C, date(2007, 9, 4), date(2007, 9, 4), "TFNR 40005 00005",
              "0724710345313905"),
         Line(0, 5, 20488, D, date(2007, 9, 4), date(2007, 9, 4), None)),  # RCR: a reversal
        chained=((6, 7), (8, 9), (10, 11), (12, 13), (15, 16), (16, 17))),
    # Citi: a blank entry date (four spaces), zero lines carrying balance notes.
    "mt940_wolph_citi_mt940.txt": File(
        (Read("123456789", "1/1", 1737667, 1623392, 5),),
        (Line(0, 0, 21239, D, date(2024, 3, 12), date(2024, 3, 12), None),
         Line(0, 2, 0, C, date(2024, 3, 12), date(2024, 3, 12), None,
              status=EntryStatus.info))),
    # Amounts without decimals (6800,) or with one (620,3); a DK :86: run over lines.
    "mt940_wolph_cmxl_mt940.sta": File(
        (Read("45050050/76198810", "27/01", 8434974, 8443704, 11),
         Read("10020030/1234567", "5/1", 218795, 438795, 2),
         Read("BPHKPLPK/320000546101", "00084/001", 4000000, 5004000, 3)),
        (Line(0, 1, 62030, D, date(2013, 10, 17), date(2013, 10, 17), "N"),
         Line(2, 1, 1000000, D, date(2003, 10, 20), date(2003, 10, 20), "REF 25611247",
              "8327000090031790"))),
    # ABN AMRO: header lines before each message. Neither adds up (by hand: 3236,28 - 321,44
    # is 2914,84, not 876,84; 2876,84 - 24,49 is 2852,35, not 1849,75).
    "mt940_wolph_jejik_abnamro.sta": File((
        Refused("line 4", "line 27", f"{BALANCES_OFF}: opening 323628 fen + booked entries "
                "-32144 fen != closing 87684 fen", 8),
        Refused("line 32", "line 40", f"{BALANCES_OFF}: opening 287684 fen + booked entries "
                "-2449 fen != closing 184975 fen", 2))),
    # ING's 0000 01INGBNL2AXXXX00001 header and -XXX end; 0 - 45,59 is not 3,47.
    "mt940_wolph_jejik_ing.sta": File((
        Refused("line 4", "line 26", f"{BALANCES_OFF}: opening 0 fen + booked entries -4559 fen "
                "!= closing 347 fen", 7),)),
    # Knab: amounts `500,` and `500`; the second: 3058,98 - 7260 + 500 is not 798,98.
    "mt940_wolph_jejik_knab.sta": File(
        (Read("123456789", "998/1", 0, 50000, 1),
         Refused("line 10", "line 20", f"{BALANCES_OFF}: opening 305898 fen + booked entries "
                 "-676000 fen != closing 79898 fen", 2)),
        (Line(0, 0, 50000, C, date(2014, 5, 7), date(2014, 5, 7), None, "B4E07XM00J000023"),)),
    # PostFinance: the second, 229,2 - 79,9 + 10,1 is 159,4, not 159,6.
    "mt940_wolph_jejik_postfinance.sta": File(
        (Read("123456789", "999/1", 0, 22920, 2),
         Refused("line 15", "line 27", f"{BALANCES_OFF}: opening 22920 fen + booked entries "
                 "-6980 fen != closing 15960 fen", 2)),
        (Line(0, 0, 7970, C, date(2013, 12, 9), date(2013, 12, 9), "01916", "NONREF"),
         Line(0, 1, 14950, C, date(2013, 12, 9), date(2013, 12, 9), "01916", "NONREF"))),
    "mt940_wolph_jejik_rabobank-iban.sta": File(
        (Read("NL71RABO0123456789", "0", 100000, 96500, 2),
         Read("NL71RABO0123456789", "0", 96500, 93000, 2)),
        (Line(0, 0, 2500, D, date(2013, 1, 1), date(2013, 1, 1),
              "01-01-2013 12:00 0030000987654321", None, "CONTRA ACCOUNT HOLDER"),
         Line(1, 1, 1000, D, date(2013, 1, 9), date(2013, 1, 9), None, None, "JOHN DOE")),
        chained=((0, 1),)),
    "mt940_wolph_jejik_sns.sta": File(
        (Read("0123456789", "160/1", 123456, 120956, 2),
         Read("0123456789", "161/1", 120956, 120956, 0)),
        (Line(0, 0, 2000, D, date(2012, 6, 8), date(2012, 6, 7), "0987654321"),
         Line(0, 1, 500, D, date(2012, 6, 8), date(2012, 6, 8), "0987654321")),
        chained=((0, 1),)),
    # 4975,09 - 15,70 - 700,00 is 4259,39, not 4370,79.
    "mt940_wolph_jejik_triodos.sta": File((
        Refused("line 1", "line 12", f"{BALANCES_OFF}: opening 497509 fen + booked entries "
                "-71570 fen != closing 437079 fen", 2),)),
    # SOH and ETX framing.
    "mt940_wolph_mBank_mt940.sta": File(
        (Read("PL29114010810000267002001002", "1/1", 40, 43, 3),),
        (Line(0, 0, 1, C, date(2017, 1, 19), date(2017, 1, 19), None, "MB170119012058"),
         Line(0, 2, 1, C, date(2017, 1, 19), date(2017, 1, 19), None, "MB170119012121"))),
    # Sberbank Hungary: the bank's own :NS: fields; transaction type `S   `.
    "mt940_wolph_sberbank_171011_01234945.sta": File(
        (Read("1966315302010001", "00046", 62731130, 61787430, 3),),
        (Line(0, 0, 240200, D, date(2017, 10, 11), date(2017, 10, 11), "X"),
         Line(0, 2, 357500, D, date(2017, 10, 11), date(2017, 10, 11), "X"))),
    # An MT942 whose :90D: (1 debit of 2,30) is not its one line (a debit of 0,42).
    "mt940_wolph_self-provided_mt942.sta": File((
        Refused("line 1", "line 11", ":90D: gives 1 debits of 230 fen, the lines hold 1 of 42 "
                "fen", 1),)),
    # 25170637,10 + 2066637,00 - 3078850,50 is 24158423,60, not 25281687,60.
    "mt940_wolph_self-provided_raiffeisen-cmi.sta": File((
        Refused("line 1", "line 40", f"{BALANCES_OFF}: opening 2517063710 fen + booked entries "
                "-101221350 fen != closing 2528168760 fen", 7),)),
    # A fragment: one :61: broken over lines, no :20:, :25: or balances.
    "mt940_wolph_self-provided_sparkassen.sta": File((
        Refused("line 1", "line 1", "expected :25:, found :61:", 1),)),
}


def _corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.glob("mt940_*")) if CORPUS.is_dir() else []


@needs_corpus
def test_the_table_covers_every_mt940_file_of_the_corpus() -> None:
    assert _corpus_files() == sorted(EXPECTED)


def _count_61(data: bytes) -> int:
    return len(re.findall(rb"(?m)^\x01?:61:", data))


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_reads_as_the_table_says(name: str) -> None:
    expected = EXPECTED[name]
    data = (CORPUS / name).read_bytes()
    parsed = read_file(data, name)
    assert parsed.format == "mt940"
    assert len(parsed.items) == len(expected.statements)
    for item, want in zip(parsed.items, expected.statements, strict=True):
        if isinstance(want, Read):
            assert isinstance(item, Statement), item
            assert (item.account, item.statement_id, item.opening_booked_fen,
                    item.closing_booked_fen, len(item.entries)) == (
                want.account, want.statement_id, want.opening_fen, want.closing_fen,
                want.lines)
            assert want.opening_fen + booked_movement_fen(item.entries) == want.closing_fen
        else:
            assert isinstance(item, RefusedStatement), item
            assert (item.position, item.field) == (want.position, want.field)
            assert want.says in item.reason
    # every :61: of the file is a line read or inside a statement refused by name
    assert sum(s.lines for s in expected.statements) == _count_61(data)
    statements = parsed.items
    for first, second in expected.chained:
        before, after = statements[first], statements[second]
        assert isinstance(before, Statement) and isinstance(after, Statement)
        assert before.account == after.account
        assert before.closing_booked_fen == after.opening_booked_fen
    for line in expected.lines:
        _check_line(statements[line.statement], line)


def _check_line(statement: Statement | RefusedStatement, want: Line) -> None:
    assert isinstance(statement, Statement)
    entry = statement.entries[want.index]
    [detail] = entry.details
    assert (entry.amount_fen, entry.direction, entry.booking_date, entry.value_date,
            entry.status) == (want.amount_fen, want.direction, want.booking_date,
                              want.value_date, want.status)
    assert (detail.end_to_end_id, entry.bank_reference) == (want.reference, want.bank_reference)
    if want.counterparty is not None:
        assert want.counterparty in (detail.counterparty_name, detail.counterparty_account)


@needs_corpus
def test_rabobank_four_days_numbered_0_are_four_statements_with_every_line() -> None:
    parsed = read_file((CORPUS / "mt940_oca_test-rabo.swi").read_bytes(), "test-rabo.swi")
    statements = parsed.statements
    assert not parsed.refused
    assert [s.statement_id for s in statements] == ["0"] * 4
    assert [s.closing_date for s in statements] == [
        date(2014, 1, 2), date(2014, 1, 3), date(2014, 1, 6), date(2014, 1, 7)]
    # the 34,61 debit of 2014-01-06 that identity by number alone lost
    [cost] = statements[2].entries
    assert (cost.amount_fen, cost.direction, cost.value_date) == (3461, D, date(2014, 1, 1))


# --- the `mt-940` package as an oracle ------------------------------------------------------
# What the package cannot read at all (its error), where Yufu reads the file (table above).
PACKAGE_FAILS: dict[str, str] = {
    "mt940_jejik_K4262927_20200905-080000-952.txt": "ForwardAvailableBalance",  # :65F:
    "mt940_oca_test-ing.940": "StatementNumber",  # :28C: wrapped over two lines
    "mt940_oca_test-sns.940": "Statement",  # a :61: customer reference of 18 characters
    "mt940_wolph_ASNB_mt940.txt": "Statement",  # the same
}
# Each line's statement as the package reports it: it keeps one set of statement fields for
# the whole file, so each line is given a copy of them as it is read, to group by.
_PACKAGE_STATEMENT_KEYS = ("transaction_reference", "account_identification", "statement_number",
                           "final_opening_balance", "intermediate_opening_balance")
_MOVED_RE = re.compile(r"booked entries (-?[0-9]+) fen")
_MT942_SUM_RE = re.compile(r"the lines hold ([0-9]+) of ([0-9]+) fen")


@dataclass(frozen=True)
class _PackageLine:
    signed_fen: int
    value_date: date
    account: str | None


def _package_statements(data: bytes) -> list[list[_PackageLine]]:
    """The lines the `mt-940` package reads, grouped into its statements."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    copy_keys = processors.transactions_to_transaction(*_PACKAGE_STATEMENT_KEYS)
    reader = mt940.models.Transactions(processors={
        "post_statement": [processors.date_cleanup_post_processor, copy_keys]})
    reader.parse(text)
    groups: list[list[_PackageLine]] = []
    last_key: tuple[str, ...] | None = None
    for transaction in reader.transactions:
        key = tuple(str(transaction.data.get(k)) for k in _PACKAGE_STATEMENT_KEYS)
        if key != last_key:
            groups.append([])
            last_key = key
        amount = transaction.data["amount"].amount
        groups[-1].append(_PackageLine(int(amount * 100), transaction.data["date"],
                                       transaction.data.get("account_identification")))
    return groups


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_where_the_mt_940_package_reads_a_file_yufu_reads_the_same_lines(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    if name in PACKAGE_FAILS:
        with pytest.raises(RuntimeError, match=PACKAGE_FAILS[name]):
            _package_statements(data)
        return
    theirs = _package_statements(data)
    # the package has no statement for one without lines
    ours = [i for i in read_file(data, name).items
            if isinstance(i, RefusedStatement) or i.entries]
    assert len(theirs) == len(ours)
    for package_lines, item in zip(theirs, ours, strict=True):
        if isinstance(item, Statement):
            _same_lines(item, package_lines)
        else:
            _refusal_borne_out(item, package_lines)


def _same_lines(statement: Statement, package_lines: list[_PackageLine]) -> None:
    assert len(statement.entries) == len(package_lines)
    for entry, line in zip(statement.entries, package_lines, strict=True):
        assert entry.value_date == line.value_date
        if entry.reversal and entry.direction is Direction.debit:
            # RC, the reversal of a credit, takes money out (SWIFT); the package books it
            # in. Ours is right: only with it does the statement add up.
            assert line.signed_fen == -entry.signed_fen
        else:
            assert line.signed_fen == entry.signed_fen
    assert statement.opening_booked_fen is not None
    assert statement.opening_booked_fen + booked_movement_fen(statement.entries) == \
        statement.closing_booked_fen


def _refusal_borne_out(refusal: RefusedStatement, package_lines: list[_PackageLine]) -> None:
    """The package reads what Yufu refuses, without checking: its own lines show the reason
    true."""
    package_sum = sum(line.signed_fen for line in package_lines)
    if (moved := _MOVED_RE.search(refusal.reason)) is not None:
        assert int(moved[1]) == package_sum  # the movement that does not add up
    elif (mt942 := _MT942_SUM_RE.search(refusal.reason)) is not None:
        assert (int(mt942[1]), -int(mt942[2])) == (len(package_lines), package_sum)
    else:
        assert "expected :25:" in refusal.reason
        assert {line.account for line in package_lines} == {None}  # lines of no account
