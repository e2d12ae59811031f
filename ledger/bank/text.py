"""Statement text in the encoding a bank really wrote it in.

MT940 and CSV files carry no declaration of their encoding. Banks write UTF-8 (with or
without a byte-order mark); Chinese banks GBK or its superset GB18030 (GB2312 is a subset of
both); European banks Latin-1 or Latin-2. A bank's profile, or the caller, may name the
encoding; otherwise it is detected:

1. a UTF-8 byte-order mark, or bytes that are valid UTF-8: UTF-8 (ASCII is both);
2. bytes that are valid GB18030 and read as Chinese: GB18030;
3. anything else: Latin-1, which decodes every byte (Latin-2 only when named: the two
   cannot be told apart by their bytes).

"Read as Chinese" is the test that keeps a German Latin-1 file from passing for GB18030 (a
high byte followed by almost any byte is a GB18030 character): a Latin-1 letter inside a word
takes the next letter as its second byte, as in `Müller` (FC 6C), `Straße` (DF 65) or `Ütz`
(DC 74). So a Han character whose second byte is an ASCII letter, beside a Latin letter, is a
Latin word misread. Chinese text has neither: its common characters (GB2312's) have both
bytes at 0xA1 or above, and those with an ASCII-range second byte are GBK's rare additions.
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
# A non-ASCII character with a Latin letter before or after it: the suspects (see above).
_BESIDE_LATIN_RE: Final = re.compile(r"(?<=[A-Za-z])[^\x00-\x7f]|[^\x00-\x7f](?=[A-Za-z])")
_ASCII_LETTERS: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# Of the distinct characters of a text read as GB18030, at most this share may be pairs whose
# second byte is an ASCII letter (GBK's rare additions: a name's 昇, say).
_LATIN_PAIRS_SHARE_MAX: Final = 0.2
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
    if len(chinese) != len(non_ascii) or _HAN_INSIDE_LATIN_RE.search(text):
        return False
    if any(_latin_pair(match[0]) for match in _BESIDE_LATIN_RE.finditer(text)):
        return False
    # A word that is all one accented letter and the next (`Öl`) has no Latin neighbour:
    # such pairs are then most of the text's characters, where in Chinese they are few.
    latin_pairs = sum(1 for char in set(non_ascii) if _latin_pair(char))
    return latin_pairs <= len(set(non_ascii)) * _LATIN_PAIRS_SHARE_MAX


def _latin_pair(char: str) -> bool:
    """Whether a character GB18030 made of two bytes took an ASCII letter as its second."""
    encoded = char.encode("gb18030")
    return len(encoded) == 2 and encoded[1] in _ASCII_LETTERS


def _decode(data: bytes, encoding: TextEncoding) -> str:
    codec = "gb18030" if encoding in (TextEncoding.gbk, TextEncoding.gb2312) else encoding.value
    try:
        return data.decode(codec).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StatementRejected(f"not {encoding.value} text (byte {exc.start})",
                                field=f"line {line}") from None
