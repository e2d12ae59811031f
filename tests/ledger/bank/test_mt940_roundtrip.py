"""Any statement written out as MT940, in any encoding and envelope banks use, reads back to
the same lines and balances."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.bank.model import (
    Direction,
    EntryStatus,
    Statement,
    StatementEntry,
    TxDetail,
    booked_movement_fen,
)
from ledger.bank.mt940 import read_mt940
from ledger.bank.text import TextEncoding
from tests.support.mt940_writer import ENVELOPES, write_mt940

# Chinese text whose every GBK byte is 0xC0 or above: no run of them is also valid UTF-8, so
# detection cannot mistake the file (a UTF-8 lead byte wants a continuation byte below 0xC0).
_CHINESE: str = "".join(
    c for c in "张王李赵刘陈杨黄周吴徐孙马朱胡林郭何高罗郑梁谢宋唐许韩冯邓"
    "曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈学费课时退款预付卡充值会员健身瑜伽游泳培训"
    if all(b >= 0xC0 for b in c.encode("gbk")))
# Latin-1 words with their accented letters inside the word, as German, French and Nordic
# names and texts have them: what detection reads as Latin-1 without being told.
_LATIN_WORDS = ("Müller", "Gebühr", "Straße", "Zürich", "Bäcker", "Käse", "Crèmerie", "Søren",
                "Jørgensen", "Hämäläinen", "Lösung", "Miete", "Rechnung", "Beitrag", "Mai",
                "2024", "Nr", "Kundin")
_REF_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."


def _text(script: str) -> st.SearchStrategy[str]:
    if script == "chinese":
        return st.text(alphabet=_CHINESE, min_size=1, max_size=40)
    return st.lists(st.sampled_from(_LATIN_WORDS), min_size=1, max_size=12).map(" ".join)


_references = st.text(alphabet=_REF_CHARS, min_size=1, max_size=35).filter(
    lambda r: r != "NONREF")


@st.composite
def _entry(draw: st.DrawFn, script: str, day: date, position: int) -> StatementEntry:
    value_date = day + timedelta(days=draw(st.integers(-3, 3)))
    fen = draw(st.integers(0, 10**11))
    direction = draw(st.sampled_from(Direction))
    detail = TxDetail(
        amount_fen=fen, end_to_end_id=draw(st.none() | _references),
        counterparty_name=draw(st.none() | _text(script)),
        # Always some: without /REMI/, the reader keeps the whole :86: as the remittance.
        remittance_unstructured=draw(_text(script)),
        bank_reference=draw(st.none() | st.text(alphabet=_REF_CHARS, min_size=1, max_size=16)))
    return StatementEntry(
        position=f"line {position}", amount_fen=fen, direction=direction,
        status=EntryStatus.booked if fen else EntryStatus.info, booking_date=day,
        value_date=value_date, reversal=draw(st.booleans()),
        bank_reference=detail.bank_reference, details=(detail,))


@st.composite
def _statements(draw: st.DrawFn, script: str) -> list[Statement]:
    day = draw(st.dates(date(2001, 1, 1), date(2098, 12, 31)))
    balance = draw(st.integers(-10**12, 10**12))
    statements = []
    for number in range(draw(st.integers(1, 3))):
        entries = tuple(draw(st.lists(_entry(script, day, 0), max_size=5)))
        closing = balance + booked_movement_fen(entries)
        statements.append(Statement(
            format="mt940", message_id=draw(st.none() | _references),
            statement_id=draw(st.sampled_from(["", "0", f"{number + 1}/1", "00061/001"])),
            account=draw(st.sampled_from(["6226090000000048", "NL34RABO0142623393",
                                          "CMBCCNBS/6226090000000055"])),
            currency="CNY", opening_booked_fen=balance, closing_booked_fen=closing,
            closing_date=day, created_at=None, entries=entries, opening_date=day))
        balance, day = closing, day + timedelta(days=1)
    return statements


@st.composite
def _files(draw: st.DrawFn) -> tuple[list[Statement], bytes, TextEncoding | None]:
    encoding = draw(st.sampled_from([TextEncoding.utf8, TextEncoding.gbk, TextEncoding.latin1]))
    script = {TextEncoding.gbk: "chinese", TextEncoding.latin1: "latin"}.get(
        encoding, draw(st.sampled_from(["chinese", "latin"])))
    statements = draw(_statements(script))
    text = write_mt940(statements, draw(st.sampled_from(sorted(ENVELOPES))),
                       draw(st.sampled_from(["\r\n", "\n"])))
    data = text.encode(encoding.value)
    if encoding is TextEncoding.utf8 and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    # Named by the bank's profile, or left to detection.
    return statements, data, draw(st.sampled_from([None, encoding]))


@settings(max_examples=300, deadline=None)
@given(_files())
def test_a_statement_written_as_mt940_reads_back_the_same(
        case: tuple[list[Statement], bytes, TextEncoding | None]) -> None:
    written, data, encoding = case
    read = read_mt940(data, encoding)
    assert not read.refused, read.refused
    assert len(read.statements) == len(written)
    for got, want in zip(read.statements, written, strict=True):
        assert (got.message_id, got.statement_id, got.account, got.currency) == (
            want.message_id, want.statement_id, want.account, want.currency)
        assert (got.opening_booked_fen, got.closing_booked_fen, got.opening_date,
                got.closing_date) == (want.opening_booked_fen, want.closing_booked_fen,
                                      want.opening_date, want.closing_date)
        assert [_line(e) for e in got.entries] == [_line(e) for e in want.entries]


def _line(e: StatementEntry) -> tuple[object, ...]:
    [detail] = e.details
    return (e.amount_fen, e.direction, e.reversal, e.status, e.value_date, e.booking_date,
            e.bank_reference, detail.end_to_end_id, detail.counterparty_name,
            detail.remittance_unstructured)
