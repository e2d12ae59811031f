"""MT940/MT942 text into messages of fields, framed as banks really frame them.

What a bank puts around and between its messages is skipped: SWIFT blocks (`{1:...}{2:...}
{3:...}{4:` together or each on its own line, ended by `-}` and a `{5:...}` trailer), SOH
(0x01) and ETX (0x03) framing (mBank), header lines (ABN AMRO's `ABNANL2A` / `940` /
`ABNANL2A`, Rabobank's `:940:`, ING's `0000 01INGBNL2AXXXX00001` / `940 00`) and a few lines of
other text before a message's first field. A message ends at a `-` line (`-}`, ING's `-XXX`),
at the next `:20:`, or at a second `:25:` (Rabobank writes no `-` between messages).

Inside a line's `:61:` or `:86:`, a `-` line ends the message only where a field, an envelope or
the end of the file follows it: ING wraps `:86:` text so that a line holds only `-` and the text
goes on in the next one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from ledger.bank import limits
from ledger.bank.model import StatementRejected

_TAG_RE: Final = re.compile(r":(?P<tag>[0-9]{2}[A-Z]?|NS):(?P<value>.*)")
_BLOCK: Final = r"(?:[^{}]|\{[^{}]*\})*"  # a block's content: text and {nested} blocks
# {1:...}{2:...}{3:{108:...}}{4: on one line, or any of them on a line of its own; a {5:}
# trailer on a line of its own.
_BLOCKS_RE: Final = re.compile(rf"(?:\{{[1-3]:{_BLOCK}\}})+(?:\{{4:)?|\{{4:|(?:\{{5:{_BLOCK}\}})+")
_END_RE: Final = re.compile(rf"-(?:\}}|XXX)?(?:\{{5:{_BLOCK}\}})*")
_HEADER_RE: Final = re.compile(
    r":?94[02]:?(?: [0-9]{2})?"  # Rabobank :940:, ABN AMRO 940, ING 940 00
    r"|[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?:/94[02])?"  # a BIC: ABNANL2A, ABNANL2A/940
    r"|[0-9]{4} [0-9]{2}[A-Z0-9]{8,20}")  # ING: 0000 01INGBNL2AXXXX00001
_FRAMING: Final = str.maketrans("", "", "\x01\x03")  # SOH and ETX
# Fields whose value runs over lines of its own: :61: (its supplementary details), :86: and
# a bank's private :NS:. Any other field may wrap once (ING wraps `:28C:0000` / `0`).
_MULTILINE_TAGS: Final = frozenset({"61", "86", "NS"})
_SINGLE_FIELD_LINES_MAX: Final = 2
_MT940_HEAD_RE: Final = re.compile(rb"(?m)^[\x01\s]*(?:\{1:|:20:|:25:|:94[02]:)")
_SNIFF_LINES: Final = 6


@dataclass(slots=True)
class Field:
    tag: str
    line_no: int
    lines: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line_no}"

    @property
    def value(self) -> str:
        """A one-line field's value, a wrapped one joined where the bank cut it."""
        return "".join(self.lines)


def looks_like_mt940(head: bytes) -> bool:
    """Whether a file's first lines are MT940's: a field or envelope within the first few
    lines, after whatever header a bank writes."""
    first_lines = b"\n".join(head.splitlines()[:_SNIFF_LINES])
    return _MT940_HEAD_RE.search(first_lines) is not None


def messages(lines: list[str]) -> list[list[Field]]:
    """Group the lines into fields and the fields into messages, checking only the lexis; the
    order and content of the fields are the statement reader's business."""
    reader = _Reader(lines)
    for line_no, raw in enumerate(lines, 1):
        reader.feed(line_no, raw.translate(_FRAMING).rstrip())
    reader.close()
    return reader.found


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self.found: list[list[Field]] = []
        self._current: list[Field] = []
        self._open = False  # inside a message, whose end has not been seen
        self._header_lines = 0
        self._entries = 0

    def feed(self, line_no: int, line: str) -> None:
        tag = _TAG_RE.fullmatch(line)
        if tag is not None:
            self._field(tag["tag"], tag["value"], line_no)
        elif not line:
            return
        elif self._is_boundary(line, line_no):
            self.close()
        elif self._open:
            self._continue(line, line_no)
        else:
            self._header_lines += 1
            if self._header_lines > limits.mt940_header_lines_max:
                raise StatementRejected(
                    f"{self._header_lines} lines of text outside any message: "
                    f"{line[:40]!r}; an MT940 message starts with :20:", field=f"line {line_no}")

    def close(self) -> None:
        if self._current:
            self.found.append(self._current)
        self._current = []
        self._open = False

    def _is_boundary(self, line: str, line_no: int) -> bool:
        """An envelope, a header between messages, or a `-` that ends the message."""
        if _END_RE.fullmatch(line):
            return not self._open or self._closed() or self._ends_here(line_no)
        return bool(_BLOCKS_RE.fullmatch(line)
                    or (not self._open and _HEADER_RE.fullmatch(line)))

    def _closed(self) -> bool:
        """Past the closing balance, or in a field of one line: a `-` cannot be text."""
        return self._current[-1].tag not in _MULTILINE_TAGS or any(
            f.tag in ("62F", "62M") for f in self._current)

    def _ends_here(self, line_no: int) -> bool:
        """A `-` ends the message if a field, an envelope or the end of the file is next."""
        for raw in self._lines[line_no:]:
            line = raw.translate(_FRAMING).strip()
            if line:
                return bool(_TAG_RE.fullmatch(line) or _BLOCKS_RE.fullmatch(line)
                            or _HEADER_RE.fullmatch(line) or _END_RE.fullmatch(line))
        return True

    def _field(self, tag: str, value: str, line_no: int) -> None:
        if tag == "20" or (tag == "25" and any(f.tag == "25" for f in self._current)):
            self.close()
        self._current.append(Field(tag, line_no, [value]))
        self._open = True
        self._header_lines = 0
        self._entries += tag == "61"
        if self._entries > limits.statement_entries_max:
            raise StatementRejected(f"over the limit of {limits.statement_entries_max} "
                                    f"entries per file", field=f"line {line_no}")

    def _continue(self, line: str, line_no: int) -> None:
        last = self._current[-1]
        if last.tag not in _MULTILINE_TAGS and len(last.lines) >= _SINGLE_FIELD_LINES_MAX:
            raise StatementRejected(f"field :{last.tag}: (line {last.line_no}) has at most "
                                    f"{_SINGLE_FIELD_LINES_MAX} lines; unexpected {line[:40]!r}",
                                    field=f"line {line_no}")
        if sum(map(len, last.lines)) + len(line) > limits.statement_text_chars_max:
            raise StatementRejected(f"field :{last.tag}: (line {last.line_no}) runs over "
                                    f"{limits.statement_text_chars_max} characters",
                                    field=f"line {line_no}")
        last.lines.append(line)
