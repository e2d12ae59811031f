#!/usr/bin/env python3
"""Verify a Yufu journal from the outside, as an auditor would.

One file that needs only Python 3.11+ and the `cryptography` package (pip install
cryptography) and no code of Yufu's: everything it checks is specified in
docs/journal-format.md and docs/audit-format.md, and docs/audit.md explains how to use it.

    python verify_audit.py --url https://yufu.example.org --key yufu_... \\
        --public-key yufu-audit.pem [--sample 200] [--strict]

It downloads the signed tree heads, every journal entry and proofs, and checks in order:

  key          the service's tree-head public key (pin it: --public-key or --key-id);
  heads        every head: signed by that key, a valid signature, sizes growing, time
               never going back;
  journal      every entry in order: its bytes hash to its recorded hash, it has the next
               sequence number and names the previous entry's hash; and at each head's size,
               the Merkle root of the entries so far equals the root the head signed;
  consistency  a consistency proof between every two consecutive heads;
  inclusion    inclusion proofs of a random sample of entries against the latest head;
  format       the canonical form of the sampled entries (of every entry with --strict).

A custodian bank reads only its own merchants' entries: with --own the journal check is
instead, for each entry the key may read, that its bytes hash to its recorded hash and are in
canonical form, and that it is proved included in the latest signed head (key, heads and
consistency are checked as above). The whole chain is the regulators' to walk.

It prints what it checked. At the first failure it prints `FAIL [check] ...` naming what
failed and where, and exits 1; it exits 2 when it could not run (bad arguments, no answer).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import itertools
import json
import queue
import random
import re
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TREE_HEAD_CONTEXT = b"yufu-tree-head-v1\n"
HEX64_RE = re.compile(r"^[0-9a-f]{64}\Z")
HEX128_RE = re.compile(r"^[0-9a-f]{128}\Z")
TS_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")
ENTRY_KEYS = ["kind", "payload", "prev", "seq", "ts"]
EXPORT_PREFIX = b'{"entry":'
EXPORT_HASH = b',"hash":"'
export_suffix_bytes = len(EXPORT_HASH) + 64 + 2  # ,"hash":"<64 hex>"}
integer_max = 2**53 - 1
json_depth_max = 16
heads_page_max = 1000
journal_page_max = 1000
sample_default = 200
reorder_window_entries = 1000  # how far past a gap to look for the missing entry
stream_block_bytes = 1 << 18
read_ahead_blocks = 64  # at most this many blocks wait in memory (16 MiB)
request_timeout_s = 120.0
EMPTY_ROOT = hashlib.sha256(b"").digest()
ZERO_HASH_HEX = b"0" * 64


class Failure(Exception):
    """A check failed: `check` is its name, the message says what and where."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check, self.message = check, message


class CannotRun(Exception):
    """The verification could not be carried out (arguments, network): not a verdict."""


# --- RFC 9162 section 2.1: the Merkle tree over SHA-256 ---------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The roots of the complete subtrees over the leaves so far: appends in O(1) amortised,
    the root in O(log n) (MTH splits at the largest power of two below n, 2.1.1)."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def push(self, leaf: bytes) -> None:
        digest, n, stack = leaf, self.size, self.stack
        while n & 1:
            digest = hashlib.sha256(b"\x01" + stack.pop() + digest).digest()
            n >>= 1
        stack.append(digest)
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        acc = self.stack[-1]
        for digest in reversed(self.stack[:-1]):
            acc = node_hash(digest, acc)
        return acc


def _shift_until_odd_or_zero(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162, 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162, 2.1.4.2 (with first == second and first == 0 as trivially empty proofs)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --- Signed tree heads (docs/audit-format.md) -----------------------------------------------


@dataclass(frozen=True)
class Head:
    tree_size: int
    root_hash: bytes
    timestamp: str
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        # Canonical JSON (RFC 8785) of ASCII strings and one integer: sorted keys, no spaces.
        return TREE_HEAD_CONTEXT + json.dumps(
            {"key_id": self.key_id, "root_hash": self.root_hash.hex(),
             "timestamp": self.timestamp, "tree_size": self.tree_size},
            sort_keys=True, separators=(",", ":")).encode("ascii")


def parse_head(raw: Any) -> Head:
    if not isinstance(raw, dict):
        raise Failure("heads", f"a tree head is not a JSON object: {raw!r:.200}")
    size, root, ts = raw.get("tree_size"), raw.get("root_hash"), raw.get("timestamp")
    key_id, signature = raw.get("key_id"), raw.get("signature")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= integer_max:
        raise Failure("heads", f"a tree head has no valid tree_size: {raw!r:.200}")
    if not all(isinstance(v, str) for v in (root, ts, key_id, signature)) or not (
            HEX64_RE.match(root) and TS_RE.match(ts) and HEX64_RE.match(key_id)
            and HEX128_RE.match(signature)):
        raise Failure("heads", f"tree head {size} is malformed: {raw!r:.300}")
    return Head(size, bytes.fromhex(root), ts, key_id, bytes.fromhex(signature))


def key_id_of(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise Failure("key", f"{where} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise Failure("key", f"{where} is not an Ed25519 public key")
    return key


def signature_valid(key: Ed25519PublicKey, head: Head) -> bool:
    try:
        key.verify(head.signature, head.signed_bytes())
    except InvalidSignature:
        return False
    return True


# --- Canonical entries (docs/journal-format.md sections 1 to 3) --------------------------------


def _refuse_number(text: str) -> Any:
    raise ValueError(f"{text} is not an integer (no floats in the journal)")


def _value_problem(value: Any, depth: int) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        return None if -integer_max <= value <= integer_max else f"integer {value} too large"
    if depth >= json_depth_max:
        return f"nests deeper than {json_depth_max} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            if not key.isascii():
                return f"object key {key!r} is not ASCII"
            problem = _value_problem(item, depth + 1)
            if problem:
                return problem
        return None
    for item in value:
        problem = _value_problem(item, depth + 1)
        if problem:
            return problem
    return None


def canonical_problem(body: bytes) -> str | None:
    """Why `body` is not a canonical journal entry, or None."""
    try:
        entry = json.loads(body.decode("utf-8"), parse_float=_refuse_number,
                           parse_constant=_refuse_number)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"not UTF-8 JSON of integers: {exc}"
    if not isinstance(entry, dict) or sorted(entry) != ENTRY_KEYS:
        return f"not an object with exactly the keys {ENTRY_KEYS}"
    problem = _field_problem(entry) or _value_problem(entry["payload"], 0)
    if problem:
        return problem
    try:
        again = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                           allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return "a string holds a lone surrogate"
    return None if again == body else "the bytes are not the canonical form of their JSON"


def _field_problem(entry: dict[str, Any]) -> str | None:
    seq, ts, kind, prev = entry["seq"], entry["ts"], entry["kind"], entry["prev"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= integer_max:
        return "seq is not an integer from 1 to 2**53 - 1"
    if not isinstance(ts, str) or not TS_RE.match(ts) or not _valid_time(ts):
        return "ts is not a UTC time with microseconds and 'Z'"
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        return "kind is not a dotted lower-case name"
    if not isinstance(prev, str) or not HEX64_RE.match(prev):
        return "prev is not 64 lower-case hex digits"
    if not isinstance(entry["payload"], dict):
        return "the payload is not an object"
    return None


def _valid_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text[:-1])  # the shape is checked by TS_RE already
    except ValueError:
        return False
    return True


# --- HTTP ---------------------------------------------------------------------------------------


class Api:
    """GETs on one kept-alive connection (the journal stream gets its own)."""

    def __init__(self, base_url: str, api_key: str | None,
                 timeout_s: float = request_timeout_s) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CannotRun(f"--url must be an http:// or https:// URL, not {base_url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.api_key, self.timeout_s = api_key, timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def _url(self, path: str, params: dict[str, Any] | None) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.prefix}{path}{query}"

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if auth and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def get_json(self, path: str, params: dict[str, Any] | None = None,
                 auth: bool = True) -> Any:
        url = self._url(path, params)
        for attempt in range(2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._conn.request("GET", url, headers=self._headers(auth))
                response = self._conn.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, OSError) as exc:
                # A kept-alive connection the server closed: one fresh try, then give up.
                self._conn.close()
                self._conn = None
                if attempt:
                    raise CannotRun(f"GET {url} failed: {exc}") from exc
        _check_status(url, response.status, body)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise CannotRun(f"GET {url} did not answer JSON: {exc}") from exc

    def stream_lines(self, path: str) -> Iterator[bytes]:
        """The lines of a streamed answer, without their line feeds."""
        url = self._url(path, None)
        conn = self._connect()
        try:
            conn.request("GET", url, headers=self._headers(True))
            response = conn.getresponse()
            if response.status != 200:
                _check_status(url, response.status, response.read())
            yield from _split_lines(_read_ahead(response.read, stream_block_bytes))
        except (http.client.HTTPException, OSError) as exc:
            raise CannotRun(f"GET {url} failed: {exc}") from exc
        finally:
            conn.close()


def _check_status(url: str, status: int, body: bytes) -> None:
    if status == 200:
        return
    detail = body[:300].decode("utf-8", "replace")
    if status in (401, 403):
        raise CannotRun(f"GET {url} answered {status}: the --key may not read this ({detail})")
    raise CannotRun(f"GET {url} answered {status}: {detail}")


def _read_ahead(read: Callable[[int], bytes], block_bytes: int) -> Iterator[bytes]:
    """Blocks of the answer, read by a thread while the caller checks the ones before: the
    socket read releases the interpreter, so download and checks overlap."""
    blocks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=read_ahead_blocks)

    def reader() -> None:
        try:
            while True:
                block = read(block_bytes)
                blocks.put(block)
                if not block:
                    return
        except BaseException as error:  # handed to the caller, who raises it
            blocks.put(error)

    threading.Thread(target=reader, name="verify-audit-reader", daemon=True).start()
    while True:
        block = blocks.get()
        if isinstance(block, BaseException):
            raise block
        if not block:
            return
        yield block


def _split_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for block in blocks:
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest  # a last line without its line feed: cut short, reported as malformed


# --- The checks ---------------------------------------------------------------------------------


@dataclass
class Report:
    out: TextIO

    def ok(self, check: str, message: str) -> None:
        print(f"ok   [{check}] {message}", file=self.out, flush=True)

    def note(self, check: str, message: str) -> None:
        print(f"note [{check}] {message}", file=self.out, flush=True)


def check_key(api: Api, pinned_pems: Sequence[bytes], pinned_ids: Sequence[str],
              report: Report) -> dict[str, Ed25519PublicKey]:
    """The keys heads may be signed with, by key id: the pinned ones (an old key stays
    trusted for the heads it signed before a rotation), or the served one if none is pinned.
    The key the service signs with now must be among them."""
    served = api.get_json("/v1/audit/public-key", auth=False)
    if not isinstance(served, dict) or not isinstance(served.get("public_key_pem"), str):
        raise Failure("key", "the service did not return a public key")
    key = load_public_key(served["public_key_pem"].encode(), "the served key")
    key_id = key_id_of(key)
    if served.get("key_id") != key_id:
        raise Failure("key", f"the served key id {served.get('key_id')} is not SHA-256 of the "
                             f"served key ({key_id})")
    trusted = {key_id_of(k): k for k in (load_public_key(pem, "--public-key")
                                         for pem in pinned_pems)}
    pinned = set(trusted) | set(pinned_ids)
    if not pinned:
        report.note("key", f"key {key_id} taken as served: compare it with the published one "
                           "(--public-key or --key-id pins it)")
        return {key_id: key}
    if key_id not in pinned:
        raise Failure("key", f"the service now signs with key {key_id}, not with a pinned key "
                             f"({', '.join(sorted(pinned))})")
    report.ok("key", f"the service signs with the pinned key {key_id}")
    return {**trusted, key_id: key}


def fetch_heads(api: Api) -> list[Head]:
    heads: list[Head] = []
    after = 0
    while True:
        page = api.get_json("/v1/audit/tree-heads", {"after": after, "limit": heads_page_max},
                            auth=False)
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise Failure("heads", "the tree-head list is not {\"items\": [...]}")
        heads.extend(parse_head(item) for item in page["items"])
        after = page.get("next_after")
        if after is None or not page["items"]:
            return heads


def check_heads(heads: list[Head], keys: dict[str, Ed25519PublicKey], report: Report) -> None:
    if not heads:
        raise Failure("heads", "the service has signed no tree head yet: nothing to verify")
    before: Head | None = None
    for head in heads:
        key = keys.get(head.key_id)
        if key is None:
            raise Failure("heads", f"tree head {head.tree_size} is signed by key {head.key_id},"
                                   " which is not a trusted key (--public-key)")
        if not signature_valid(key, head):
            raise Failure("heads", f"tree head {head.tree_size}: the signature is not valid")
        if before is not None and head.tree_size <= before.tree_size:
            raise Failure("heads", f"tree head {head.tree_size} follows head {before.tree_size}:"
                                   " sizes must grow")
        if before is not None and head.timestamp < before.timestamp:
            raise Failure("heads", f"tree head {head.tree_size} is dated before head "
                                   f"{before.tree_size}")
        before = head
    report.ok("heads", f"{len(heads)} signed tree heads, sizes {heads[0].tree_size} to "
                       f"{heads[-1].tree_size}: every signature valid, sizes growing")


@dataclass
class JournalResult:
    entries: int
    head_hash: str
    leaves: dict[int, bytes]


def check_journal(lines: Iterator[bytes], heads: list[Head], sample: set[int], strict: bool,
                  partial: bool = False) -> JournalResult:
    """Walk the export. This loop is the verifier's hot path: bytes and hashes only, and
    Frontier.push written out in it (a method call per entry costs a tenth of the time)."""
    sha256 = hashlib.sha256
    frontier, leaves = Frontier(), {}
    stack = frontier.stack
    pending = iter(heads)
    head = next(pending, None)
    prev_hex, prev_ts, n = ZERO_HASH_HEX, b"", 0
    for line in lines:
        n += 1
        if line[:9] != EXPORT_PREFIX or line[-export_suffix_bytes:-66] != EXPORT_HASH \
                or line[-2:] != b'"}':
            raise Failure("journal", f"line {n} is not an export line "
                                     '{"entry":...,"hash":"..."}')
        body, recorded = line[9:-export_suffix_bytes], line[-66:-2]
        digest_hex = sha256(body).hexdigest().encode()
        if digest_hex != recorded:
            raise Failure("journal", f"entry {n} was altered: its bytes hash to "
                                     f"{digest_hex.decode()}, not to its recorded hash "
                                     f"{recorded.decode()}")
        # In canonical bytes the entry ends with its prev, seq and ts members, in that order.
        tail = b',"prev":"%s","seq":%d,"ts":"' % (prev_hex, n)
        ts = body[-29:-2]
        if body[-29 - len(tail):-29] != tail or body[:9] != b'{"kind":"' or body[-2:] != b'"}':
            raise _diagnose(body, n, prev_hex, lines)
        if ts < prev_ts:
            raise Failure("journal", f"entry {n} is dated before entry {n - 1}")
        leaf = digest = sha256(b"\x00" + body).digest()
        size = n - 1
        while size & 1:
            digest = sha256(b"\x01" + stack.pop() + digest).digest()
            size >>= 1
        stack.append(digest)
        if n in sample:
            leaves[n] = leaf
            _check_format(body, n)
        elif strict:
            _check_format(body, n)
        while head is not None and head.tree_size == n:
            frontier.size = n
            _check_root(head, frontier)
            head = next(pending, None)
        prev_hex, prev_ts = digest_hex, ts
    if head is not None and not partial:
        raise Failure("journal", f"the journal ends at entry {n}, but tree head "
                                 f"{head.tree_size} was signed over {head.tree_size} entries: "
                                 "entries were removed from its end")
    return JournalResult(n, prev_hex.decode(), leaves)


def _check_root(head: Head, frontier: Frontier) -> None:
    computed = frontier.root()
    if computed != head.root_hash:
        raise Failure("journal", f"forked history: tree head {head.tree_size} signs the root "
                                 f"{head.root_hash.hex()}, but the Merkle root of the entries "
                                 f"1..{head.tree_size} served is {computed.hex()}")


def _check_format(body: bytes, n: int) -> None:
    problem = canonical_problem(body)
    if problem:
        raise Failure("format", f"entry {n} is not in canonical form: {problem}")


def _diagnose(body: bytes, n: int, prev_hex: bytes, lines: Iterator[bytes]) -> Failure:
    """Name what is wrong with entry n (its hash was right; its place in the chain is not)."""
    try:
        entry = json.loads(body)
        seq, prev = entry["seq"], entry["prev"]
    except (ValueError, TypeError, KeyError):
        return Failure("journal", f"entry {n} is not a journal entry object")
    if isinstance(seq, int) and seq > n:
        if _comes_later(n, lines):
            return Failure("journal", f"entries out of order: entry {seq} stands where entry "
                                      f"{n} belongs, and entry {n} comes later (swapped or "
                                      "moved)")
        return Failure("journal", f"entry {n} is missing: entry {n - 1} is followed by entry "
                                  f"{seq} (an entry was dropped)")
    if seq != n:
        return Failure("journal", f"entry {seq} appears again where entry {n} belongs "
                                  "(duplicated or moved)")
    if prev != prev_hex.decode():
        return Failure("journal", f"entry {n} does not link to entry {n - 1}: it names "
                                  f"{prev}, but entry {n - 1} hashes to {prev_hex.decode()} "
                                  f"(entry {n - 1} was replaced)")
    problem = canonical_problem(body) or "its members are not in canonical order"
    return Failure("format", f"entry {n} is not in canonical form: {problem}")


def _comes_later(seq: int, lines: Iterator[bytes]) -> bool:
    for _, line in zip(range(reorder_window_entries), lines, strict=False):
        try:
            if json.loads(line)["entry"]["seq"] == seq:
                return True
        except (ValueError, TypeError, KeyError):
            return False
    return False


def check_consistency(api: Api, heads: list[Head], report: Report) -> None:
    for first, second in itertools.pairwise(heads):
        answer = api.get_json("/v1/audit/proofs/consistency",
                              {"first": first.tree_size, "second": second.tree_size})
        proof = _hex_list(answer, "proof", "consistency")
        if not verify_consistency(first.tree_size, second.tree_size, first.root_hash,
                                  second.root_hash, proof):
            raise Failure("consistency", f"tree head {second.tree_size} is not consistent with "
                                         f"tree head {first.tree_size}: the history between "
                                         "them was rewritten (a fork)")
    report.ok("consistency", f"{max(0, len(heads) - 1)} consistency proofs between consecutive "
                             "heads verified")


def check_inclusion(api: Api, head: Head, leaves: dict[int, bytes], report: Report) -> None:
    for seq in sorted(leaves):
        answer = api.get_json("/v1/audit/proofs/inclusion",
                              {"seq": seq, "tree_size": head.tree_size})
        path = _hex_list(answer, "audit_path", "inclusion")
        if answer.get("leaf_index") != seq - 1 or answer.get("tree_size") != head.tree_size:
            raise Failure("inclusion", f"entry {seq}: the proof is for another leaf or tree")
        if not verify_inclusion(leaves[seq], seq - 1, head.tree_size, path, head.root_hash):
            raise Failure("inclusion", f"entry {seq}: the inclusion proof against tree head "
                                       f"{head.tree_size} does not verify")
    report.ok("inclusion", f"{len(leaves)} sampled entries proved included in tree head "
                           f"{head.tree_size}")


def _hex_list(answer: Any, name: str, check: str) -> list[bytes]:
    items = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(items, list) or not all(
            isinstance(i, str) and HEX64_RE.match(i) for i in items):
        raise Failure(check, f"the {check} proof is not a list of 64-digit lower-case hex")
    return [bytes.fromhex(i) for i in items]


def pick_sample(size: int, count: int, seed: int | None) -> set[int]:
    """`count` entries of 1..size at random, always with the first and the last."""
    if size == 0 or count <= 0:
        return set()
    picked = set(random.Random(seed).sample(range(1, size + 1), min(count, size)))
    return picked | {1, size} if count >= 2 else picked


def verify(api: Api, *, sample: int = sample_default, public_key_pems: Sequence[bytes] = (),
           key_ids: Sequence[str] = (), strict: bool = False, seed: int | None = None,
           export_file: str | None = None, out: TextIO | None = None) -> int:
    """Run every check; 0 when all pass, 1 at the first failure (printed), 2 if it cannot run.
    With `export_file` the entries come from that file, heads and proofs from the service."""
    started = time.perf_counter()

    def checks(report: Report) -> None:
        keys = check_key(api, public_key_pems, key_ids, report)
        heads = fetch_heads(api)
        check_heads(heads, keys, report)
        chosen = pick_sample(heads[-1].tree_size, sample, seed)
        result = check_journal(_entries(api, export_file), heads, chosen, strict,
                               partial=export_file is not None)
        heads = _covered(heads, result.entries, report)
        latest = heads[-1]
        seconds = time.perf_counter() - started
        report.ok("journal", f"{result.entries} entries: hashes and chain intact, head hash "
                             f"{result.head_hash}; every head's root recomputed from them "
                             f"({result.entries / max(seconds, 1e-9):,.0f} entries/s)")
        if result.entries > latest.tree_size:
            report.note("journal", f"{result.entries - latest.tree_size} entries after tree "
                                   f"head {latest.tree_size} are not yet under a signed head")
        check_consistency(api, heads, report)
        leaves = {seq: leaf for seq, leaf in result.leaves.items() if seq <= latest.tree_size}
        check_inclusion(api, latest, leaves, report)
        checked = "every entry" if strict else f"{len(result.leaves)} sampled entries"
        report.ok("format", f"{checked} in canonical form")

    return run_checks(checks, out or sys.stdout)


def verify_own(api: Api, *, public_key_pems: Sequence[bytes] = (),
               key_ids: Sequence[str] = (), out: TextIO | None = None) -> int:
    """A bank's check: its own entries, each hashed and proved included in the latest head;
    the heads and their consistency. 0 when all pass, 1 at the first failure, 2 if it cannot
    run."""

    def checks(report: Report) -> None:
        keys = check_key(api, public_key_pems, key_ids, report)
        heads = fetch_heads(api)
        check_heads(heads, keys, report)
        check_consistency(api, heads, report)
        latest = heads[-1]
        leaves = own_leaves(api, latest.tree_size)
        report.ok("journal", f"{len(leaves)} entries this key may read hash to their "
                             "recorded hashes, in canonical form")
        check_inclusion(api, latest, leaves, report)

    return run_checks(checks, out or sys.stdout)


def run_checks(checks: Callable[[Report], None], out: TextIO) -> int:
    """Run the checks; print the first failure (exit 1), why they could not run (exit 2),
    or that every one passed (exit 0)."""
    started = time.perf_counter()
    try:
        checks(Report(out))
    except Failure as failure:
        print(f"FAIL [{failure.check}] {failure.message}", file=out, flush=True)
        return 1
    except CannotRun as problem:
        print(f"ERROR could not verify: {problem}", file=out, flush=True)
        return 2
    print(f"OK: every check passed in {time.perf_counter() - started:.1f} s", file=out,
          flush=True)
    return 0


def own_leaves(api: Api, tree_size: int) -> dict[int, bytes]:
    """The leaf hashes of the entries this key reads (GET /v1/journal), up to `tree_size`."""
    leaves: dict[int, bytes] = {}
    after: int | None = 0
    while after is not None:
        page = api.get_json("/v1/journal", {"after": after, "limit": journal_page_max})
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise Failure("journal", "the journal page is not {items: [...]}")
        for item in page["items"]:
            seq, body = _own_entry(item)
            if seq <= tree_size:
                leaves[seq] = leaf_hash(body)
        after = page.get("next_after")
    return leaves


def _own_entry(item: Any) -> tuple[int, bytes]:
    try:
        seq, body = int(item["seq"]), base64.b64decode(item["canonical_b64"], validate=True)
        recorded = str(item["entry_hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Failure("journal", f"a journal item is malformed: {exc}") from exc
    if hashlib.sha256(body).hexdigest() != recorded:
        raise Failure("journal", f"entry {seq} was altered: its bytes do not hash to its "
                                 "recorded hash")
    _check_format(body, seq)
    return seq, body


def _entries(api: Api, export_file: str | None) -> Iterator[bytes]:
    if export_file is None:
        yield from api.stream_lines("/v1/audit/journal/export")
        return
    try:
        with open(export_file, "rb") as handle:
            yield from _split_lines(_read_ahead(handle.read, stream_block_bytes))
    except OSError as exc:
        raise CannotRun(f"cannot read --export {export_file}: {exc}") from exc


def _covered(heads: list[Head], entries: int, report: Report) -> list[Head]:
    """The heads an export file covers (a file may predate the latest heads)."""
    covered = [head for head in heads if head.tree_size <= entries]
    if not covered:
        raise Failure("journal", f"the export ends at entry {entries}, before the first "
                                 f"signed tree head ({heads[0].tree_size} entries)")
    if len(covered) < len(heads):
        report.note("journal", f"{len(heads) - len(covered)} tree heads are beyond the "
                               f"export's {entries} entries and were not checked")
    return covered


def parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Verify a Yufu journal, its signed tree heads and "
                                            "its proofs (docs/audit.md).", add_help=add_help)
    p.add_argument("--url", required=True, help="the service's base URL")
    p.add_argument("--key", required=True, help="a regulator or bank API key")
    p.add_argument("--public-key", action="append", default=[],
                   help="PEM file of a tree-head key you trust (repeat for keys before a "
                        "rotation)")
    p.add_argument("--key-id", action="append", default=[],
                   help="hex SHA-256 of the tree-head key you trust (repeatable)")
    p.add_argument("--sample", type=int, default=sample_default,
                   help=f"entries to prove included (default {sample_default})")
    p.add_argument("--strict", action="store_true",
                   help="check every entry's canonical form, not only the sample's")
    p.add_argument("--seed", type=int, help="fix the random sample (to repeat a run)")
    p.add_argument("--own", action="store_true",
                   help="check only the entries this key may read (a custodian bank's): each "
                        "hashed and proved included in the latest head")
    p.add_argument("--export", help="check the entries of this export file (`yufu export`, or "
                                    "a saved GET /v1/audit/journal/export) instead of "
                                    "downloading them; heads and proofs still come from --url")
    return p


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    return run_args(parser().parse_args(argv), out)


def run_args(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    pems = []
    try:
        for name in args.public_key:
            with open(name, "rb") as handle:
                pems.append(handle.read())
        api = Api(args.url, args.key)
    except (OSError, CannotRun) as problem:
        print(f"ERROR could not verify: {problem}", file=out)
        return 2
    if args.own:
        return verify_own(api, public_key_pems=pems, key_ids=args.key_id, out=out)
    return verify(api, sample=args.sample, public_key_pems=pems, key_ids=args.key_id,
                  strict=args.strict, seed=args.seed, export_file=args.export, out=out)


if __name__ == "__main__":
    sys.exit(main())
