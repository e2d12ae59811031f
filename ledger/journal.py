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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger import limits
from ledger.errors import InvalidInput, require

GENESIS_PREV_HASH = bytes(32)
KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
ENTRY_KEYS = ("kind", "payload", "prev", "seq", "ts")
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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def check_canonical_value(value: object, where: str = "payload", depth: int = 0) -> None:
    """Refuse what the canonical form cannot carry exactly."""
    if depth > json_depth_max:
        raise InvalidInput(f"nests deeper than {json_depth_max} levels", field=where)
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            _check_text(value, where)
        return
    if isinstance(value, int):
        if abs(value) > limits.amount_fen_max:
            raise InvalidInput("integers must lie within +-(2**53 - 1)", field=where)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_canonical_value(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise InvalidInput("object keys must be ASCII strings", field=where)
            check_canonical_value(item, f"{where}.{key}", depth + 1)
        return
    raise InvalidInput(f"a {type(value).__name__} has no canonical form (no floats)", field=where)


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("must be valid Unicode (no lone surrogates)", field=where) from exc


def canonical_json(value: object) -> bytes:
    """JCS for our subset: sorted keys, no whitespace, UTF-8, minimal escapes."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return text.encode("utf-8")


def encode_entry(seq: int, ts: str, kind: str, payload: Mapping[str, Any],
                 prev_hash: bytes) -> bytes:
    require(seq >= 1, "sequence numbers start at 1")
    require(len(prev_hash) == 32, "a previous hash is 32 bytes")
    require(bool(KIND_RE.match(kind)), f"kind {kind!r} is a dotted lower-case name")
    return canonical_json({"kind": kind, "payload": payload, "prev": prev_hash.hex(),
                           "seq": seq, "ts": ts})


def entry_hash(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def decode_entry(body: bytes) -> Entry:
    """Parse canonical bytes back into an Entry, insisting they are canonical."""
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"entry is not UTF-8 JSON: {exc}", field="entry") from exc
    if not isinstance(obj, dict) or tuple(sorted(obj)) != ENTRY_KEYS:
        raise InvalidInput(f"entry must have exactly the keys {ENTRY_KEYS}", field="entry")
    entry = Entry(seq=obj["seq"], ts=obj["ts"], kind=obj["kind"], payload=obj["payload"],
                  prev_hash=bytes.fromhex(obj["prev"]))
    if entry.canonical_bytes() != body:
        raise InvalidInput("entry bytes are not in canonical form", field="entry")
    return entry


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
            yield ChainBreak(stored.seq if stored.seq >= expected_seq else expected_seq, problem)
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
