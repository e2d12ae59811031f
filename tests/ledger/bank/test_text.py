"""Statement text in the encoding the bank wrote it in (ledger/bank/text.py): detected when not
named, and a Latin-1 word never taken for Chinese (every high byte followed by almost any byte
is a GB18030 character)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.bank.model import StatementRejected
from ledger.bank.text import TextEncoding, decode_text, encoding_named

# Words whose accented letter takes the next ASCII letter as a GB18030 pair, wherever it sits.
LATIN = ["Müller", "Straße", "Ütz", "Käse", "Søren", "Gebühr", "Zürich", "Crème", "Jørgensen",
         "Lösung", "Åse", "Öl", "ÉCOLE"]
CHINESE = ["北京朝阳 健身房", "VIP会员 A座", "张三 转账 预付卡充值", "摘要：货款", "（退款）"]


@pytest.mark.parametrize("text", LATIN)
def test_a_latin1_word_is_read_as_latin1(text: str) -> None:
    assert decode_text(text.encode("latin-1")) == (text, TextEncoding.latin1)


@pytest.mark.parametrize("text", CHINESE)
def test_chinese_in_gbk_is_read_as_gb18030(text: str) -> None:
    assert decode_text(text.encode("gbk")) == (text, TextEncoding.gb18030)


@given(st.lists(st.sampled_from([*LATIN, "Miete", "Nr", "2024", "-"]), min_size=1,
                max_size=8).map(" ".join))
def test_any_run_of_latin1_words_is_read_as_latin1(text: str) -> None:
    assert decode_text(text.encode("latin-1"))[1] in (TextEncoding.latin1, TextEncoding.utf8)
    assert decode_text(text.encode("latin-1"))[0] == text


def test_utf8_with_or_without_a_bom_and_a_named_encoding() -> None:
    assert decode_text("Straße 北京".encode()) == ("Straße 北京", TextEncoding.utf8)
    assert decode_text(b"\xef\xbb\xbf" + "北京".encode()) == ("北京", TextEncoding.utf8)
    named = encoding_named("ISO-8859-2", "encoding")
    assert decode_text("Łódź".encode("iso-8859-2"), named) == ("Łódź", TextEncoding.latin2)


def test_bytes_not_in_the_named_encoding_are_refused_naming_the_line() -> None:
    with pytest.raises(StatementRejected) as refused:
        decode_text(b"ok\n\xff\xfe\n", TextEncoding.utf8)
    assert refused.value.field == "line 2"
    with pytest.raises(StatementRejected, match="is not one we read"):
        encoding_named("EBCDIC-NOPE", "encoding")
