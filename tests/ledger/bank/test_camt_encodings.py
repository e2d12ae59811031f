"""A camt in the encoding its XML declaration names: Chinese banks write GBK, GB18030 or GB2312,
which expat cannot read (it answered 500). Through the API: imported and matched, the names
read right; a wrong or unknown encoding is a 422 naming the line, and a DTD is still refused
after the text is re-encoded."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from ledger.bank.model import StatementRejected
from ledger.bank.statements import detect_and_parse, parse_camt053
from ledger.bank.xmlfile import as_utf8
from tests.support.db import rows
from tests.support.driver import Banking, Merchant
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 2)
PAYER = "北京张三体育健身有限公司"  # 对方户名
NOTE = "摘要：预付卡资金存管"  # 摘要


def _chinese_camt(m: Merchant, reference: str, encoding: str) -> bytes:
    """A camt.053.001.08 of one credit for the deposit `reference`, its payer and remittance
    in Chinese, written in `encoding` with the declaration saying so."""
    text = camt053([Stmt(m.account, f"{encoding}-1", 0, DAY,
                         (entry("CRDT", 10_000, DAY, cref=reference),))]).decode()
    text = text.replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)
    text = text.replace("<RmtInf>", f"<RltdPties><Dbtr><Pty><Nm>{PAYER}</Nm></Pty></Dbtr>"
                                    f"</RltdPties><RmtInf><Ustrd>{NOTE}</Ustrd>", 1)
    return text.encode(encoding)


@pytest.mark.parametrize("encoding", ["GBK", "GB18030", "GB2312"])
def test_a_chinese_camt053_imports_and_matches_with_its_names_read_right(
        banking: Banking, engine: Engine, encoding: str) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-GBK")
    sale = banking.sell_at(m, 10_000)
    data = _chinese_camt(m, sale["reference"], encoding)
    assert PAYER.encode() not in data  # truly not UTF-8 on the wire

    answer = banking.import_file("BANK-GBK", data)

    assert [s["outcome"] for s in answer["statements"]] == [{"deposit": 1}]
    assert banking.open_breaks(m) == []
    stored = rows(engine, "SELECT counterparty, matched_kind FROM statement_lines "
                          "WHERE account = :account", account=m.account)
    assert stored == [{"counterparty": PAYER, "matched_kind": "deposit"}]
    [statement] = parse_camt053(data)
    assert statement.entries[0].details[0].remittance_unstructured == NOTE


@pytest.mark.parametrize(("data", "field", "says"), [
    # \xff is no GBK lead byte: the bytes are not what the declaration says
    (b'<?xml version="1.0" encoding="GBK"?>\n<Document>\n<a>\xff\xfe</a></Document>',
     "line 3", "not GBK text"),
    (b'<?xml version="1.0" encoding="KLINGON-8"?>\n<Document/>', "line 1",
     "encoding 'KLINGON-8'"),
    (b'<?xml version="1.0" encoding="base64"?>\n<Document/>', "line 1", "encoding 'base64'"),
    (b'\xef\xbb\xbf<?xml version="1.0" encoding="GBK"?>\n<Document/>', "line 1",
     "byte-order mark"),
])
def test_a_wrong_or_unknown_encoding_is_a_422_naming_the_line(
        banking: Banking, data: bytes, field: str, says: str) -> None:
    m = banking.merchant("BANK-GBK")
    response = banking.post_statement(m.bank_id, data)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert says in problem["detail"]
    assert problem["field"] == field


def test_a_dtd_is_refused_after_the_text_is_re_encoded() -> None:
    """The transcoding must not be a way round the DTD check: in GBK, or hidden in UTF-7."""
    gbk = ('<?xml version="1.0" encoding="GBK"?>\n<!DOCTYPE d [<!ENTITY x "对方">]>\n'
           "<d>&x;</d>").encode("gbk")
    utf7 = (b'<?xml version="1.0" encoding="UTF-7"?>\n'
            b"+ADw-!DOCTYPE d +AFs-+ADw-!ENTITY x +ACI-y+ACI-+AD4-+AF0-+AD4-\n<d>&x;</d>")
    for data in (gbk, utf7):
        with pytest.raises(StatementRejected, match="DTD") as caught:
            detect_and_parse(data)
        assert caught.value.field == "line 2"


def test_single_byte_encodings_still_read() -> None:
    """Latin-2 and Windows-1252, which expat read before through Python's codecs, still do."""
    for encoding, name in (("ISO-8859-2", "Łódź Spółka"), ("windows-1252", "Müller €")):
        data = camt053([Stmt("6226090000000001", "S", 0, DAY,
                             (entry("CRDT", 500, DAY, cref="R1"),))]).decode()
        data = data.replace('encoding="UTF-8"', f'encoding="{encoding}"', 1).replace(
            "<RmtInf>", f"<RltdPties><Dbtr><Pty><Nm>{name}</Nm></Pty></Dbtr></RltdPties>"
                        "<RmtInf>", 1)
        [statement] = parse_camt053(data.encode(encoding))
        assert statement.entries[0].details[0].counterparty_name == name


@pytest.mark.parametrize("codec", ["unicode_escape", "raw_unicode_escape", "idna", "hz",
                                   "iso2022_jp", "punycode", "undefined", "base64", "rot13"])
def test_a_python_codec_that_is_no_character_set_is_refused_by_name(codec: str) -> None:
    """`unicode_escape` reads `\\x3c` as `<`, and `punycode` raised UnicodeError (a 500):
    only character sets are read, the rest refused naming the declaration's line."""
    data = (f'<?xml version="1.0" encoding="{codec}"?>\n<d>x</d>').encode("ascii")
    with pytest.raises(StatementRejected, match="not a character set we read") as caught:
        detect_and_parse(data)
    assert caught.value.field == "line 1"


def test_character_sets_are_known_by_any_of_their_names() -> None:
    for name in ("utf8", "latin1", "ISO_8859-15", "CP1251", "big5", "Shift_JIS"):
        text = f'<?xml version="1.0" encoding="{name}"?>\n<d>x</d>'
        assert b"<d>x</d>" in as_utf8(text.encode(name))
