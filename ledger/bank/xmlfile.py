"""Untrusted XML from banks, parsed safely: every DTD, entity and external reference refused.

camt.py reads what the tree says; this module only makes the tree.

Encodings: expat reads UTF-8, UTF-16, US-ASCII and Latin-1 itself, and single-byte encodings
through Python's codecs, but no multi-byte one: a camt declaring `encoding="GBK"` (Chinese
banks write GBK, GB18030 or GB2312) made it raise ValueError. So the declared encoding is read
from the XML declaration alone (the first `_DECLARATION_BYTES_MAX` bytes), the text decoded
with Python's codec (GBK and GB2312 through GB18030, which contains both) and re-encoded as
UTF-8 with the declaration saying so; the same DTD refusal and parse then run on that UTF-8.
"""

from __future__ import annotations

import codecs
import re
from typing import Final
from xml.etree import ElementTree
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden

from ledger.bank.model import StatementRejected, check_statement_size
from ledger.collector import collector_paused

_NO_ELEMENTS_CODE: Final = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
_PROLOG_READ_BYTES: Final = 64 * 1024  # the DTD check reads this much at a time, see _refuse_dtd
# The XML declaration is looked for in this many bytes at the start: `<?xml version="1.0"
# encoding="GB18030" standalone="yes"?>` with generous white space fits.
_DECLARATION_BYTES_MAX: Final = 256
_DECLARATION_RE: Final = re.compile(
    rb"(?P<bom>\xef\xbb\xbf)?<\?xml\s+version\s*=\s*(?:'[0-9.]{1,8}'|\"[0-9.]{1,8}\")\s+"
    rb"encoding\s*=\s*(?P<quote>['\"])(?P<name>[A-Za-z][A-Za-z0-9._-]{0,39})(?P=quote)")
# What expat reads itself, by Python's name for the codec: left as it is.
_EXPAT_NATIVE: Final = frozenset({"utf-8", "ascii", "latin-1", "utf-16"})
_GB_FAMILY: Final = frozenset({"gbk", "gb2312"})  # read as their superset, GB18030
# The character sets a declaration may name, by Python's name for each after codecs.lookup
# (so `UTF8`, `latin1` and `windows-1252` are found as `utf-8`, `iso8859-1`, `cp1252`).
# Python's codecs also include transforms that are no character set (`unicode_escape` reads
# `\x3c` as `<`, `punycode` and `undefined` raise UnicodeError, `idna`, `hz`, `iso2022_jp`):
# a declaration naming one is refused by name, not decoded.
_CHARSETS: Final = frozenset({
    "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-7", "ascii",
    *(f"iso8859-{n}" for n in (*range(1, 12), *range(13, 17))),
    *(f"cp{n}" for n in range(1250, 1259)),
    "gbk", "gb2312", "gb18030", "big5", "shift_jis", "euc_kr",
})


def parse_xml(data: bytes) -> Element:
    """Parse untrusted XML with every DTD, entity and external reference refused.

    XXE and entity expansion (billion laughs) both need a DTD, so refusing the DTD refuses
    them before a single entity is expanded or a single URL resolved.
    """
    check_statement_size(data)
    data = as_utf8(data)
    try:
        # A bare expat pass refuses any DTD (so no entity can ever be declared or expanded)
        # at C speed; the tree is then built by the C ElementTree, which has nothing left to
        # expand. defusedxml's pure-Python tree builder was most of a big file's import time.
        _refuse_dtd(data)
        root = _tree(data)
    except DTDForbidden as exc:
        raise StatementRejected(
            "a DTD (<!DOCTYPE ...>) is not accepted: entity declarations and external "
            "references are refused", field=_line_of(data, b"<!DOCTYPE")) from exc
    except DefusedXmlException as exc:  # entities or external references without a DTD
        raise StatementRejected(f"refused XML construct: {exc!r}", field="file") from exc
    except ValueError as exc:  # expat's "multi-byte encodings are not supported", should an
        # encoding reach it that as_utf8 did not see in the declaration
        raise StatementRejected(f"an encoding expat cannot read: {exc}",
                                field="line 1") from exc
    except (ParseError, expat.ExpatError) as exc:
        line, column = exc.position if isinstance(exc, ParseError) else (exc.lineno, exc.offset)
        reason = expat.ErrorString(exc.code)
        if exc.code == _NO_ELEMENTS_CODE:
            reason += ": the file ends before the document does (truncated?)"
        raise StatementRejected(f"not well-formed XML: {reason}",
                                field=f"line {line}, column {column}") from exc
    return root


def as_utf8(data: bytes) -> bytes:
    """`data` in an encoding expat reads: as it is, or re-encoded as UTF-8 from the encoding
    its XML declaration names, with the declaration rewritten to say UTF-8. An encoding that
    is unknown, or bytes not valid in it, are refused naming the line."""
    match = _DECLARATION_RE.match(data, 0, _DECLARATION_BYTES_MAX)
    if match is None:
        return data
    name = match["name"].decode("ascii")
    codec = _codec_named(name)
    if codec in _EXPAT_NATIVE:
        return data
    if match["bom"]:
        raise StatementRejected(f"the file starts with UTF-8's byte-order mark but its XML "
                                f"declaration says {name!r}", field="line 1")
    try:
        text = data.decode("gb18030" if codec in _GB_FAMILY else codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StatementRejected(
            f"not {name} text, as the XML declaration says: byte {exc.start} ({exc.reason})",
            field=f"line {line}") from None
    except UnicodeError as exc:  # a codec that says no without saying where
        raise StatementRejected(f"not {name} text, as the XML declaration says: {exc}",
                                field="line 1") from None
    end = match.end("name")
    declared = data[:end].decode("ascii")
    if not text.startswith(declared):  # an encoding that does not keep ASCII as it is
        raise StatementRejected(f"encoding {name!r} does not read its own XML declaration",
                                field="line 1")
    # The declaration's encoding name replaced by UTF-8, and the rest as UTF-8 after it.
    return data[:match.start("name")] + b"UTF-8" + text[len(declared):].encode("utf-8")


def _codec_named(name: str) -> str:
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or info.name not in _CHARSETS:
        raise StatementRejected(f"the XML declaration names encoding {name!r}, which is "
                                f"not a character set we read", field="line 1")
    return info.name


def _refuse_dtd(data: bytes) -> None:
    """Raise DTDForbidden for a DTD. One can only come before the root element (the prolog),
    so the pass stops at the root's start tag: whatever follows is the tree builder's to
    read, and any fault in it is reported by the same expat, at the same line and column."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def doctype(*_: object) -> None:
        raise DTDForbidden(None, None, None)

    def entity(*_: object) -> None:
        raise EntitiesForbidden(None, None, None, None, None, None)

    root_seen = False

    def start(*_: object) -> None:
        nonlocal root_seen
        root_seen = True

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.ExternalEntityRefHandler = lambda *_: False
    parser.StartElementHandler = start
    for offset in range(0, len(data), _PROLOG_READ_BYTES):
        parser.Parse(data[offset:offset + _PROLOG_READ_BYTES], False)
        if root_seen:
            return
    parser.Parse(b"", True)  # no root element: expat says what is wrong, and where


def _tree(data: bytes) -> Element:
    """The C ElementTree's tree of `data`, with the garbage collector paused: its passes
    over the growing tree were 40% of the build (see ledger/collector.py)."""
    with collector_paused():
        root: Element = ElementTree.fromstring(data)
    return root


def _line_of(data: bytes, needle: bytes) -> str:
    offset = data.find(needle)
    if offset < 0:
        return "file"
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}"
