"""docs/journal-format.md against ledger.journal: the document's vectors, an independent
encoder written from the document's rules, and the chain check's verdicts."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import journal
from ledger.errors import InvalidInput
from ledger.journal import (
    GENESIS_PREV_HASH,
    ChainBreak,
    StoredEntry,
    check_canonical_value,
    check_chain,
    decode_entry,
    encode_entry,
    format_ts,
)
from tests.support import ROOT

DOC = ROOT / "docs" / "journal-format.md"
VECTOR_RE = re.compile(
    rb"^```jsonc-canonical\n(?P<body>[^\n]*)\n```\nsha256: (?P<hash>[0-9a-f]{64})\n", re.M)
EXPORT_RE = re.compile(rb"^```jsonl-export\n(?P<line>[^\n]*)\n```\n", re.M)
MAX_SAFE = 2**53 - 1


def doc_vectors() -> list[tuple[bytes, str]]:
    text = DOC.read_bytes()
    found = [(m["body"], m["hash"].decode()) for m in VECTOR_RE.finditer(text)]
    # Every block tagged as a vector must be parsed as one: none may be skipped silently.
    assert len(found) == text.count(b"```jsonc-canonical")
    return found


VECTORS = doc_vectors()


def fields(body: bytes) -> dict[str, Any]:
    obj = json.loads(body)
    assert isinstance(obj, dict)
    return obj


# --- An encoder written from the document alone ------------------------------------------
ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
           "\r": "\\r"}


def reference_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def reference_jcs(value: object) -> str:
    """RFC 8785 for the document's subset: keys in UTF-16 code-unit order, as JCS says."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return reference_string(value)
    if isinstance(value, list):
        return "[" + ",".join(reference_jcs(v) for v in value) + "]"
    assert isinstance(value, dict)
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(f"{reference_string(k)}:{reference_jcs(value[k])}" for k in keys) + "}"


def reference_entry(seq: int, ts: str, kind: str, payload: object, prev: bytes) -> bytes:
    entry = {"kind": kind, "payload": payload, "prev": prev.hex(), "seq": seq, "ts": ts}
    return reference_jcs(entry).encode("utf-8")


def same(a: object, b: object) -> bool:
    """Equality that tells True from 1 and a list from a dict."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# --- The document's vectors --------------------------------------------------------------
def test_document_gives_at_least_three_consecutive_vectors() -> None:
    assert len(VECTORS) >= 3
    assert [fields(body)["seq"] for body, _ in VECTORS] == list(range(1, len(VECTORS) + 1))


@pytest.mark.parametrize(("body", "stated"), VECTORS, ids=lambda v: str(v)[:12])
def test_vector_bytes_are_what_encode_entry_writes(body: bytes, stated: str) -> None:
    f = fields(body)
    assert encode_entry(f["seq"], f["ts"], f["kind"], f["payload"],
                        bytes.fromhex(f["prev"])) == body
    assert reference_entry(f["seq"], f["ts"], f["kind"], f["payload"],
                           bytes.fromhex(f["prev"])) == body
    assert decode_entry(body).canonical_bytes() == body


@pytest.mark.parametrize(("body", "stated"), VECTORS, ids=lambda v: str(v)[:12])
def test_vector_hash_is_sha256_of_its_bytes(body: bytes, stated: str) -> None:
    assert hashlib.sha256(body).hexdigest() == stated
    assert journal.entry_hash(body).hex() == stated


def test_vector_prev_fields_chain_from_zeros() -> None:
    prevs = [fields(body)["prev"] for body, _ in VECTORS]
    hashes = [stated for _, stated in VECTORS]
    assert prevs == ["0" * 64, *hashes[:-1]]
    stored = [StoredEntry(fields(body)["seq"], fields(body)["kind"],
                          bytes.fromhex(fields(body)["prev"]), bytes.fromhex(stated), body)
              for body, stated in VECTORS]
    assert verdict(stored) == ([bytes.fromhex(h) for h in hashes], None)


def test_vectors_cover_chinese_text_controls_and_every_kind() -> None:
    decoded = [fields(body) for body, _ in VECTORS]
    strings = [v for f in decoded for v in _strings(f["payload"])]
    assert any(re.search("[\u4e00-\u9fff]", s) for s in strings)
    assert any(re.search("[\x00-\x1f]", s) for s in strings)
    assert any(f["kind"] == "transaction" and len(f["payload"]["postings"]) >= 2
               for f in decoded)
    assert {f["kind"] for f in decoded} == {"account.opened", "transaction", "key.issued"}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def test_export_example_is_the_first_vector_as_an_export_line() -> None:
    match = EXPORT_RE.search(DOC.read_bytes())
    assert match is not None
    body, stated = VECTORS[0]
    line = match["line"]
    assert line == b'{"entry":' + body + b',"hash":"' + stated.encode() + b'"}'
    assert line[9:-75] == body  # the document's slicing rule (its 76 bytes include the LF)


def test_encoder_writes_the_documented_escapes() -> None:
    payload = {"s": 'a"b\\c\b\t\n\f\r\x00\x01\x1f\x7f/中\u2028😀'}
    body = encode_entry(1, "2026-01-01T00:00:00.000000Z", "x", payload, GENESIS_PREV_HASH)
    assert body == (b'{"kind":"x","payload":{"s":"a\\"b\\\\c\\b\\t\\n\\f\\r\\u0000\\u0001'
                    b'\\u001f\x7f/\xe4\xb8\xad\xe2\x80\xa8\xf0\x9f\x98\x80"},"prev":"'
                    + b"0" * 64 + b'","seq":1,"ts":"2026-01-01T00:00:00.000000Z"}')


def test_timestamps_are_utc_with_microseconds_and_z() -> None:
    moment = datetime(2026, 11, 23, 10, 0, 0, 5, tzinfo=UTC)
    assert format_ts(moment) == "2026-11-23T10:00:00.000005Z"
    assert format_ts(moment.astimezone(ZoneInfo("Asia/Shanghai"))) == "2026-11-23T10:00:00.000005Z"
    assert format_ts(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    assert journal.parse_ts("2026-11-23T10:00:00.000005Z") == moment


# --- Strategies -----------------------------------------------------------------------------
ASCII_KEYS = st.text(st.characters(max_codepoint=0x7F), max_size=6)
CHARS = st.one_of(st.characters(codec="utf-8"), st.characters(max_codepoint=0x1F),
                  st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF))
TEXT = st.text(CHARS, max_size=12)
INTS = st.integers(-MAX_SAFE, MAX_SAFE)
SCALARS = st.none() | st.booleans() | INTS | TEXT


def values(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return SCALARS
    inner = values(depth - 1)
    return SCALARS | st.lists(inner, max_size=4) | st.dictionaries(ASCII_KEYS, inner, max_size=4)


PAYLOADS = st.dictionaries(ASCII_KEYS, values(3), max_size=5)
KINDS = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){0,2}", fullmatch=True)
MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31),
                       timezones=st.just(UTC))
SEQS = st.integers(1, MAX_SAFE)
PREVS = st.binary(min_size=32, max_size=32)


# --- Canonical encoding --------------------------------------------------------------------
@given(seq=SEQS, moment=MOMENTS, kind=KINDS, payload=PAYLOADS, prev=PREVS)
def test_encoding_round_trips_through_decode(seq: int, moment: datetime, kind: str,
                                             payload: dict[str, Any], prev: bytes) -> None:
    ts = format_ts(moment)
    body = encode_entry(seq, ts, kind, payload, prev)
    entry = decode_entry(body)
    assert (entry.seq, entry.ts, entry.kind, entry.prev_hash) == (seq, ts, kind, prev)
    assert same(entry.payload, payload)
    assert entry.canonical_bytes() == body


@given(seq=SEQS, moment=MOMENTS, kind=KINDS, payload=PAYLOADS, prev=PREVS)
def test_encoding_equals_the_documents_rules(seq: int, moment: datetime, kind: str,
                                             payload: dict[str, Any], prev: bytes) -> None:
    ts = format_ts(moment)
    assert encode_entry(seq, ts, kind, payload, prev) == reference_entry(seq, ts, kind, payload,
                                                                         prev)


@given(payload=PAYLOADS, position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_decode_refuses_or_reencodes_any_one_byte_change(payload: dict[str, Any], position: int,
                                                         flip: int) -> None:
    body = encode_entry(7, "2026-01-01T00:00:00.000000Z", "transaction", payload,
                        GENESIS_PREV_HASH)
    changed = bytearray(body)
    changed[position % len(body)] ^= flip
    try:
        entry = decode_entry(bytes(changed))
    except InvalidInput:
        return
    assert entry.canonical_bytes() == bytes(changed)


def _nest(value: object, where: list[str]) -> dict[str, Any]:
    for key in reversed(where):
        value = {key: value}
    assert isinstance(value, dict)
    return value


@given(number=st.floats(allow_nan=True, allow_infinity=True),
       where=st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=4))
def test_floats_are_refused_wherever_they_are(number: float, where: list[str]) -> None:
    payload = _nest(number, where)
    with pytest.raises(InvalidInput, match=r"a float has no canonical form \(no floats\)"):
        encode_entry(1, "2026-01-01T00:00:00.000000Z", "x", payload, GENESIS_PREV_HASH)
    with pytest.raises(InvalidInput) as caught:
        check_canonical_value(payload)
    assert caught.value.field == "payload." + ".".join(where)


@given(number=st.integers(min_value=MAX_SAFE + 1) | st.integers(max_value=-MAX_SAFE - 1),
       in_list=st.booleans())
def test_integers_beyond_two_to_the_53_are_refused(number: int, in_list: bool) -> None:
    payload = {"amount_fen": [number] if in_list else number}
    with pytest.raises(InvalidInput, match=r"integers must lie within \+-\(2\*\*53 - 1\)"):
        encode_entry(1, "2026-01-01T00:00:00.000000Z", "x", payload, GENESIS_PREV_HASH)


def test_integers_at_the_bounds_are_kept_exactly() -> None:
    payload = {"max": MAX_SAFE, "min": -MAX_SAFE}
    body = encode_entry(1, "2026-01-01T00:00:00.000000Z", "x", payload, GENESIS_PREV_HASH)
    assert b'"payload":{"max":9007199254740991,"min":-9007199254740991}' in body
    assert decode_entry(body).payload == payload


@pytest.mark.parametrize("payload", [{"名": 1}, {"a": {"é": 1}}, {"a": [{"\u0080": None}]}])
def test_non_ascii_keys_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="object keys must be ASCII strings"):
        encode_entry(1, "2026-01-01T00:00:00.000000Z", "x", payload, GENESIS_PREV_HASH)


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no lone surrogates"):
        encode_entry(1, "2026-01-01T00:00:00.000000Z", "x", {"s": "\ud800"}, GENESIS_PREV_HASH)


def test_sixteen_levels_below_the_payload_are_allowed_seventeen_refused() -> None:
    ts = "2026-01-01T00:00:00.000000Z"
    assert decode_entry(encode_entry(1, ts, "x", _nest(0, ["k"] * 16), GENESIS_PREV_HASH))
    with pytest.raises(InvalidInput, match="nests deeper than 16 levels"):
        encode_entry(1, ts, "x", _nest(0, ["k"] * 17), GENESIS_PREV_HASH)


CANONICAL = encode_entry(3, "2026-01-01T00:00:00.000000Z", "transaction",
                         {"a": 1, "s": "中\x1f", "z": [True, None]}, GENESIS_PREV_HASH)


@pytest.mark.parametrize("variant", [
    CANONICAL.replace(b'"a":1', b'"a": 1'),
    CANONICAL + b"\n",
    b"\xef\xbb\xbf" + CANONICAL,
    CANONICAL.replace(b'{"a":1,"s":"\xe4\xb8\xad\\u001f"', b'{"s":"\xe4\xb8\xad\\u001f","a":1'),
    CANONICAL.replace("中".encode(), b"\\u4e2d"),
    CANONICAL.replace(b"\\u001f", b"\\u001F"),
    CANONICAL.replace(b'"a":1', b'"a":1.0'),
    CANONICAL.replace(b'"a":1', b'"a":1e0'),
    CANONICAL.replace(b'"a":1', b'"a":01'),
    CANONICAL.replace(b'"a":1', b'"a":NaN'),
    CANONICAL.replace(b'"a":1', b'"a":1,"a":1'),
    CANONICAL.replace(b'"kind":"transaction"', b'"kind":"Transaction"'),
    CANONICAL.replace(b'"seq":3', b'"seq":"3"'),
    CANONICAL.replace(b'"seq":3', b'"seq":0'),
    CANONICAL.replace(b'"seq":3', b'"seq":true'),
    CANONICAL.replace(b'"prev":"00', b'"prev":"0A'),
    CANONICAL.replace(b'"prev":"00', b'"prev":"'),
    CANONICAL.replace(b".000000Z", b"Z"),
    CANONICAL.replace(b".000000Z", b".000000+00:00"),
    CANONICAL.replace(b"2026-01-01T", b"2026-13-01T"),
    b'{"kind":"x","payload":[],"prev":"' + b"0" * 64
    + b'","seq":1,"ts":"2026-01-01T00:00:00.000000Z"}',
    CANONICAL.replace(b',"ts":"2026-01-01T00:00:00.000000Z"', b""),
    b"[" * 100_000,
    b"1" * 5_000,
    b"\xff",
], ids=range(25))
def test_decode_refuses_non_canonical_or_hostile_bytes(variant: bytes) -> None:
    assert variant != CANONICAL
    with pytest.raises(InvalidInput):
        decode_entry(variant)


# --- The chain ----------------------------------------------------------------------------
def build_chain(payloads: list[dict[str, Any]]) -> list[StoredEntry]:
    chain, prev = [], GENESIS_PREV_HASH
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    for seq, payload in enumerate(payloads, start=1):
        body = encode_entry(seq, format_ts(start + timedelta(microseconds=seq)), "transaction",
                            payload, prev)
        digest = hashlib.sha256(body).digest()
        chain.append(StoredEntry(seq, "transaction", prev, digest, body))
        prev = digest
    return chain


# Chains keep their payloads small: what is under test here is the linking, not the encoding.
CHAINS = st.lists(st.dictionaries(ASCII_KEYS, values(1), max_size=3), min_size=1,
                  max_size=6).map(build_chain)
CHAIN_SETTINGS = settings(max_examples=60)


def verdict(entries: list[StoredEntry]) -> tuple[list[bytes], ChainBreak | None]:
    hashes: list[bytes] = []
    for result in check_chain(entries):
        if isinstance(result, ChainBreak):
            return hashes, result
        hashes.append(result)
    return hashes, None


def replace(entry: StoredEntry, **changes: Any) -> StoredEntry:
    values = {"seq": entry.seq, "kind": entry.kind, "prev_hash": entry.prev_hash,
              "entry_hash": entry.entry_hash, "body": entry.body, **changes}
    return StoredEntry(**values)


def flip_byte(data: bytes, position: int, flip: int) -> bytes:
    changed = bytearray(data)
    changed[position % len(data)] ^= flip
    return bytes(changed)


@CHAIN_SETTINGS
@given(chain=CHAINS)
def test_intact_chain_verifies_every_entry(chain: list[StoredEntry]) -> None:
    assert verdict(chain) == ([hashlib.sha256(e.body).digest() for e in chain], None)


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data())
def test_checking_from_the_middle_needs_only_the_previous_hash(chain: list[StoredEntry],
                                                                data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(chain) - 1))
    start_prev = chain[i - 1].entry_hash if i else GENESIS_PREV_HASH
    assert list(check_chain(chain[i:], i + 1, start_prev)) == [e.entry_hash for e in chain[i:]]


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data(), column=st.sampled_from(["body", "entry_hash", "prev_hash"]),
       position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_changing_any_one_byte_is_reported_at_its_entry(chain: list[StoredEntry],
                                                        data: st.DataObject, column: str,
                                                        position: int, flip: int) -> None:
    chain, i = list(chain), data.draw(st.integers(0, len(chain) - 1))
    original = chain[i]
    chain[i] = replace(original, **{column: flip_byte(getattr(original, column), position, flip)})
    reason = ("stored columns disagree with the entry's bytes" if column == "prev_hash"
              else "entry hash does not match the entry's bytes")
    assert verdict(chain) == ([e.entry_hash for e in chain[:i]], ChainBreak(i + 1, reason))


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data())
def test_changing_the_kind_column_is_reported_at_its_entry(chain: list[StoredEntry],
                                                           data: st.DataObject) -> None:
    chain, i = list(chain), data.draw(st.integers(0, len(chain) - 1))
    chain[i] = replace(chain[i], kind="account.opened")
    assert verdict(chain) == ([e.entry_hash for e in chain[:i]],
                              ChainBreak(i + 1, "stored columns disagree with the entry's bytes"))


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data())
def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link(chain: list[StoredEntry],
                                                                   data: st.DataObject) -> None:
    chain, i = list(chain), data.draw(st.integers(0, len(chain) - 1))
    old = chain[i]
    forged_body = encode_entry(old.seq, decode_entry(old.body).ts, old.kind, {"forged": True},
                               old.prev_hash)
    forged = replace(old, body=forged_body, entry_hash=hashlib.sha256(forged_body).digest())
    chain[i] = forged
    hashes, broken = verdict(chain)
    assert hashes == [e.entry_hash for e in chain[:i + 1]]
    if i + 1 < len(chain):
        assert broken == ChainBreak(i + 2, "previous hash does not match the hash of the entry "
                                           "before")
    else:  # only a head kept elsewhere can tell
        assert broken is None
        assert hashes[-1] != old.entry_hash


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data())
def test_dropping_an_entry_is_reported_at_the_missing_number(chain: list[StoredEntry],
                                                             data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(chain) - 1))
    rest = chain[:i] + chain[i + 1:]
    hashes, broken = verdict(rest)
    assert hashes == [e.entry_hash for e in chain[:i]]
    if i + 1 < len(chain):
        assert broken == ChainBreak(
            i + 1, f"expected sequence number {i + 1}, found {i + 2} (gap or reorder)")
    else:  # a cut-off tail verifies: the head must be compared too
        assert broken is None


@CHAIN_SETTINGS
@given(chain=CHAINS.filter(lambda c: len(c) >= 2), data=st.data())
def test_swapping_two_entries_is_reported_at_the_first_moved(chain: list[StoredEntry],
                                                             data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(chain) - 2))
    j = data.draw(st.integers(i + 1, len(chain) - 1))
    swapped = list(chain)
    swapped[i], swapped[j] = chain[j], chain[i]
    assert verdict(swapped) == (
        [e.entry_hash for e in chain[:i]],
        ChainBreak(i + 1, f"expected sequence number {i + 1}, found {j + 1} (gap or reorder)"))


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data())
def test_repeating_an_entry_is_reported_after_it(chain: list[StoredEntry],
                                                 data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(chain) - 1))
    repeated = [*chain[:i + 1], chain[i], *chain[i + 1:]]
    assert verdict(repeated) == (
        [e.entry_hash for e in chain[:i + 1]],
        ChainBreak(i + 2, f"expected sequence number {i + 2}, found {i + 1} (gap or reorder)"))


@CHAIN_SETTINGS
@given(chain=CHAINS, data=st.data())
def test_a_payload_outside_the_subset_with_a_matching_hash_is_reported(
        chain: list[StoredEntry], data: st.DataObject) -> None:
    chain, i = list(chain), data.draw(st.integers(0, len(chain) - 1))
    old = decode_entry(chain[i].body)
    body = journal.canonical_json({"kind": old.kind, "payload": {**old.payload, "f": 1.5},
                                   "prev": old.prev_hash.hex(), "seq": old.seq, "ts": old.ts})
    assert b'"f":1.5' in body
    chain[i] = replace(chain[i], body=body, entry_hash=hashlib.sha256(body).digest())
    hashes, broken = verdict(chain)
    assert hashes == [e.entry_hash for e in chain[:i]]
    assert broken == ChainBreak(i + 1, "a float has no canonical form (no floats)")
