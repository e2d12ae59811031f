"""Untrusted XML from banks, parsed safely: every DTD, entity and external reference refused.

camt.py reads what the tree says; this module only makes the tree.
"""

from __future__ import annotations

from typing import Final
from xml.etree import ElementTree
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden

from ledger.bank.model import StatementRejected, check_statement_size
from ledger.collector import collector_paused

_NO_ELEMENTS_CODE: Final = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
_PROLOG_READ_BYTES: Final = 64 * 1024  # the DTD check reads this much at a time, see _refuse_dtd


def parse_xml(data: bytes) -> Element:
    """Parse untrusted XML with every DTD, entity and external reference refused.

    XXE and entity expansion (billion laughs) both need a DTD, so refusing the DTD refuses
    them before a single entity is expanded or a single URL resolved.
    """
    check_statement_size(data)
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
    except (ParseError, expat.ExpatError) as exc:
        line, column = exc.position if isinstance(exc, ParseError) else (exc.lineno, exc.offset)
        reason = expat.ErrorString(exc.code)
        if exc.code == _NO_ELEMENTS_CODE:
            reason += ": the file ends before the document does (truncated?)"
        raise StatementRejected(f"not well-formed XML: {reason}",
                                field=f"line {line}, column {column}") from exc
    return root


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
