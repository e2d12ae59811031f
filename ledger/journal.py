"""The journal entry's canonical bytes, its hash, and the chain check.

docs/journal-format.md is the specification; this module is one implementation of it.
An entry is the JSON object {"kind", "payload", "prev", "seq", "ts"} written in the
canonical form of RFC 8785 (JCS) for the subset of JSON we allow: no floats, integers
within +-(2**53 - 1), object keys in ASCII. Its hash is SHA-256 of those bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from ledger import limits
from ledger.errors import InvalidInput, require

GENESIS_PREV_HASH = bytes(32)
KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")
ENTRY_KEYS = ("kind", "payload", "prev", "seq", "ts")
TS_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
PREV_RE = re.compile(r"^[0-9a-f]{64}\Z")
json_depth_max = 16


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    ts: str
    kind: str
    payload: Mapping[str, Any]
    prev_hash: bytes

    def canonical_bytes(self) -> bytes:
        return encode_entry(self.seq, self.ts, self.kind, self.payload, self.prev_hash)

    def hash(self) -> bytes:
        return hashlib.sha256(self.canonical_bytes()).digest()


def format_ts(moment: datetime) -> str:
    """UTC, microseconds, 'Z': one spelling per instant so the bytes are canonical."""
    require(moment.tzinfo is not None, "timestamps carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def check_canonical_value(value: object, where: str = "payload") -> None:
    """Refuse what the canonical form cannot carry exactly (floats, huge ints, ...)."""
    problem = _canonical_problem(value, 0)
    if problem is not None:
        path, reason = problem
        raise InvalidInput(reason, field=where + path)


_Problem = tuple[str, str]  # (the path below the value, why), as check_canonical_value says
_INTEGER_OUT_OF_RANGE: _Problem = ("", "integers must lie within +-(2**53 - 1)")
_TOO_DEEP: _Problem = ("", f"nests deeper than {json_depth_max} levels")
_KEY_NOT_ASCII: _Problem = ("", "object keys must be ASCII strings")


def _canonical_problem(value: object, depth: int) -> _Problem | None:
    # type() dispatch, not isinstance chains: this runs on every appended entry.
    kind = type(value)
    if kind is str:
        return _text_problem(cast(str, value))
    if kind is int:
        in_range = -limits.amount_fen_max <= cast(int, value) <= limits.amount_fen_max
        return None if in_range else _INTEGER_OUT_OF_RANGE
    if value is None or kind is bool:
        return None
    if depth >= json_depth_max:
        return _TOO_DEEP
    members = _MEMBERS_OF.get(kind)
    if members is None:
        return "", f"a {kind.__name__} has no canonical form (no floats)"
    return members(value, depth + 1)


def _object_problem(value: dict[object, object], depth: int) -> _Problem | None:
    """The first problem among an object's keys and values; `depth` is its members'."""
    for key, item in value.items():
        if type(key) is not str or not key.isascii():
            return _KEY_NOT_ASCII
        problem = _canonical_problem(item, depth)
        if problem is not None:
            return f".{key}{problem[0]}", problem[1]
    return None


def _array_problem(value: list[object] | tuple[object, ...], depth: int) -> _Problem | None:
    for i, item in enumerate(value):
        problem = _canonical_problem(item, depth)
        if problem is not None:
            return f"[{i}]{problem[0]}", problem[1]
    return None


# A container's walk by its exact class: a look-up per container, none per member (timed no
# slower than the one function of type() tests it replaced).
_MEMBERS_OF: dict[type, Callable[[Any, int], _Problem | None]] = {
    dict: _object_problem, list: _array_problem, tuple: _array_problem}


def _text_problem(text: str) -> _Problem | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "", "must be valid Unicode (no lone surrogates)"
    return None


def canonical_json(value: object) -> bytes:
    """JCS for our subset: sorted keys, no whitespace, UTF-8, minimal escapes."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return text.encode("utf-8")


def encode_entry(seq: int, ts: str, kind: str, payload: Mapping[str, Any],
                 prev_hash: bytes) -> bytes:
    """The entry's canonical bytes. Raises InvalidInput for a payload outside our subset
    (floats, integers beyond +-(2**53 - 1), non-ASCII keys), which JCS would not keep exact."""
    require(isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1,
            "sequence numbers are integers from 1")
    require(seq <= limits.amount_fen_max, "sequence numbers stay exact in JSON")
    require(len(prev_hash) == 32, "a previous hash is 32 bytes")
    require(isinstance(kind, str) and bool(KIND_RE.match(kind)),
            f"kind {kind!r} is a dotted lower-case name")
    require(isinstance(ts, str) and bool(TS_RE.match(ts)),
            f"ts {ts!r} is UTC with microseconds and 'Z'")
    if not isinstance(payload, Mapping):
        raise InvalidInput("the payload must be an object", field="payload")
    check_canonical_value(payload)
    return canonical_json({"kind": kind, "payload": payload, "prev": prev_hash.hex(),
                           "seq": seq, "ts": ts})


def entry_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def decode_entry(body: bytes) -> Entry:
    """Parse canonical bytes back into an Entry, insisting they are canonical."""
    try:
        obj = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a 5000-digit integer...
        raise InvalidInput(f"entry is not UTF-8 JSON: {exc}", field="entry") from exc
    if not isinstance(obj, dict) or tuple(sorted(obj)) != ENTRY_KEYS:
        raise InvalidInput(f"entry must have exactly the keys {ENTRY_KEYS}", field="entry")
    seq, ts, kind, prev = obj["seq"], obj["ts"], obj["kind"], obj["prev"]
    # Check every field's type and shape here, so that hostile bytes are reported as
    # InvalidInput rather than crashing the encoder (check_chain relies on that).
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= limits.amount_fen_max:
        raise InvalidInput("seq must be an integer from 1 to 2**53 - 1", field="entry.seq")
    if not isinstance(ts, str) or not TS_RE.match(ts) or not _valid_ts(ts):
        raise InvalidInput("ts must be UTC with microseconds and 'Z'", field="entry.ts")
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise InvalidInput("kind must be a dotted lower-case name", field="entry.kind")
    if not isinstance(prev, str) or not PREV_RE.match(prev):
        raise InvalidInput("prev must be 64 lower-case hex digits", field="entry.prev")
    if not isinstance(obj["payload"], dict):
        raise InvalidInput("the payload must be an object", field="entry.payload")
    entry = Entry(seq=seq, ts=ts, kind=kind, payload=obj["payload"],
                  prev_hash=bytes.fromhex(prev))
    if entry.canonical_bytes() != body:  # refuses floats (NaN too) and big integers first
        raise InvalidInput("entry bytes are not in canonical form", field="entry")
    return entry


def _valid_ts(text: str) -> bool:
    try:
        parse_ts(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored or exported: its columns, its bytes, its recorded hash."""

    seq: int
    kind: str
    prev_hash: bytes
    entry_hash: bytes
    body: bytes


def check_chain(entries: Iterable[StoredEntry], start_seq: int = 1,
                start_prev_hash: bytes = GENESIS_PREV_HASH) -> Iterator[ChainBreak | bytes]:
    """Walk entries in order; yield each verified entry hash, or the first break and stop."""
    expected_seq, expected_prev = start_seq, start_prev_hash
    for stored in entries:
        problem = _entry_problem(stored, expected_seq, expected_prev)
        if problem is not None:
            # Always the first sequence number not verified: entries before it are intact.
            # (Naming the entry found instead would skip past a deleted or moved entry.)
            yield ChainBreak(expected_seq, problem)
            return
        yield stored.entry_hash
        expected_seq, expected_prev = stored.seq + 1, stored.entry_hash


def _entry_problem(stored: StoredEntry, expected_seq: int, expected_prev: bytes) -> str | None:
    if stored.seq != expected_seq:
        return f"expected sequence number {expected_seq}, found {stored.seq} (gap or reorder)"
    if entry_hash(stored.body) != stored.entry_hash:
        return "entry hash does not match the entry's bytes"
    try:
        entry = decode_entry(stored.body)
    except InvalidInput as exc:
        return exc.detail
    if entry.seq != stored.seq or entry.kind != stored.kind or entry.prev_hash != stored.prev_hash:
        return "stored columns disagree with the entry's bytes"
    if entry.prev_hash != expected_prev:
        return "previous hash does not match the hash of the entry before"
    return None
