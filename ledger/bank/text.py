"""Statement text in the encoding a bank really wrote it in.

MT940 and CSV files carry no declaration of their encoding. Banks write UTF-8 (with or
without a byte-order mark); Chinese banks GBK or its superset GB18030 (GB2312 is a subset of
both); European banks Latin-1 or Latin-2. A bank's profile, or the caller, may name the
encoding; otherwise it is detected:

1. a UTF-8 byte-order mark, or bytes that are valid UTF-8: UTF-8 (ASCII is both);
2. bytes that are valid GB18030 and read as Chinese: GB18030;
3. anything else: Latin-1, which decodes every byte (Latin-2 only when named: the two
   cannot be told apart by their bytes).

"Read as Chinese" is the test that keeps a German Latin-1 file from passing for GB18030 (any
pair of high bytes is a GB18030 character): a Latin-1 letter inside a word, as in `Müller`,
decodes to one Han character between two Latin letters, which Chinese text never has.
"""

from __future__ import annotations

import codecs
import re
from enum import StrEnum
from typing import Final

from ledger.bank.model import StatementRejected

_UTF8_BOM: Final = b"\xef\xbb\xbf"
# A Han character (or a run of them) with a Latin letter on both sides: a Latin-1 word read
# as GB18030, not Chinese.
_HAN_INSIDE_LATIN_RE: Final = re.compile(r"[A-Za-z][\u3400-\u9fff\uf900-\ufaff]+[A-Za-z]")
# What Chinese text is written in: Han, CJK punctuation and full-width forms.
_CHINESE_RE: Final = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
_NON_ASCII_RE: Final = re.compile(r"[^\x00-\x7f]")


class TextEncoding(StrEnum):
    """The encodings statement text is read in, by the names banks and profiles use."""

    utf8 = "utf-8"
    gb18030 = "gb18030"  # GBK and GB2312 files read the same: GB18030 contains both
    gbk = "gbk"
    gb2312 = "gb2312"
    latin1 = "latin-1"
    latin2 = "iso8859-2"


def encoding_named(name: str, field: str) -> TextEncoding:
    """The encoding a caller or profile names (`GBK`, `utf8`, `ISO-8859-2` ...)."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        canonical = ""
    for known in TextEncoding:
        if codecs.lookup(known.value).name == canonical:
            return known
    names = ", ".join(e.value for e in TextEncoding)
    raise StatementRejected(f"encoding {name[:40]!r} is not one we read: {names}", field=field)


def decode_text(data: bytes, encoding: TextEncoding | None = None) -> tuple[str, TextEncoding]:
    """The file's text and the encoding it was read in; a byte-order mark is dropped."""
    if encoding is not None:
        return _decode(data, encoding), encoding
    if data.startswith(_UTF8_BOM):
        return _decode(data, TextEncoding.utf8), TextEncoding.utf8
    try:
        return data.decode("utf-8"), TextEncoding.utf8
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return data.decode("latin-1"), TextEncoding.latin1
    if _reads_as_chinese(text):
        return text, TextEncoding.gb18030
    return data.decode("latin-1"), TextEncoding.latin1


def _reads_as_chinese(text: str) -> bool:
    non_ascii = _NON_ASCII_RE.findall(text)
    chinese = _CHINESE_RE.findall(text)
    return len(chinese) == len(non_ascii) and not _HAN_INSIDE_LATIN_RE.search(text)


def _decode(data: bytes, encoding: TextEncoding) -> str:
    codec = "gb18030" if encoding in (TextEncoding.gbk, TextEncoding.gb2312) else encoding.value
    try:
        return data.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StatementRejected(f"not {encoding.value} text (byte {exc.start})",
                                field=f"line {line}") from None
