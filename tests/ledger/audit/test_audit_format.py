"""docs/audit-format.md against both implementations: ledger (merkle, audit) and the
auditor's scripts/verify_audit.py, which shares no code with it."""

from __future__ import annotations

import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from ledger import audit, journal, merkle
from ledger.errors import InvalidInput, InvariantViolation
from tests.support import ROOT
from tests.support.audit import doc_key, verifier

AUDIT_DOC = (ROOT / "docs" / "audit-format.md").read_text()
JOURNAL_DOC = (ROOT / "docs" / "journal-format.md").read_bytes()
BODY_RE = re.compile(rb"^```jsonc-canonical\n(?P<body>[^\n]*)\n```\n", re.M)
TIMESTAMP = "2026-11-23T02:00:05.000000Z"


def _block(tag: str) -> str:
    found = re.search(rf"^```{tag}\n(?P<text>.*?)\n```\n", AUDIT_DOC, re.M | re.S)
    assert found is not None, tag
    return found["text"]


VECTORS = dict(line.split(": ", 1) for line in _block("audit-vectors").splitlines())
BODIES = [m["body"] for m in BODY_RE.finditer(JOURNAL_DOC)]
TREE = merkle.MemoryTree(merkle.leaf_hash(b) for b in BODIES)


def _hexes(name: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in VECTORS[name].split()]


def test_the_vector_tree_is_the_five_journal_format_entries() -> None:
    assert len(BODIES) == 5
    for n, body in enumerate(BODIES, start=1):
        assert merkle.leaf_hash(body).hex() == VECTORS[f"leaf_hash {n}"]
        assert verifier().leaf_hash(body).hex() == VECTORS[f"leaf_hash {n}"]
        assert merkle.root(n, TREE).hex() == VECTORS[f"root {n}"]


def test_the_vector_proofs() -> None:
    assert merkle.inclusion_proof(2, 5, TREE) == _hexes("inclusion seq=3 tree_size=5")
    assert merkle.consistency_proof(3, 5, TREE) == _hexes("consistency first=3 second=5")
    root3, root5 = bytes.fromhex(VECTORS["root 3"]), bytes.fromhex(VECTORS["root 5"])
    v = verifier()
    assert v.verify_inclusion(merkle.leaf_hash(BODIES[2]), 2, 5,
                              _hexes("inclusion seq=3 tree_size=5"), root5)
    assert v.verify_consistency(3, 5, root3, root5, _hexes("consistency first=3 second=5"))


def test_the_vector_key_and_signed_head() -> None:
    key = doc_key()
    assert key.private_bytes_raw().hex() == VECTORS["private_key_seed"]
    assert key.public_key().public_bytes_raw().hex() == VECTORS["public_key_raw"]
    assert audit.key_id(key.public_key()) == VECTORS["key_id"]
    pem = _block("pem")
    assert audit.private_key_pem(key).decode() in pem + "\n"
    assert audit.public_key_pem(key.public_key()) in pem + "\n"
    signed = audit.sign_tree_head(key, 5, merkle.root(5, TREE), TIMESTAMP)
    assert signed.head.signed_bytes() == _block("tree-head-signed-bytes").encode()
    assert signed.signature.hex() == VECTORS["signature tree_size=5"]
    shown = json.loads(re.findall(r"^```json\n(.*?)\n```", AUDIT_DOC, re.M | re.S)[-1])
    assert shown == signed.view()


def test_the_verifier_checks_the_vector_head_as_ledger_signs_it() -> None:
    key = doc_key()
    signed = audit.sign_tree_head(key, 5, merkle.root(5, TREE), TIMESTAMP)
    v = verifier()
    head = v.parse_head(signed.view())
    assert head.signed_bytes() == signed.head.signed_bytes()
    assert v.signature_valid(key.public_key(), head)
    assert v.key_id_of(key.public_key()) == VECTORS["key_id"]


@pytest.mark.parametrize("change", [
    {"tree_size": 4}, {"timestamp": "2026-11-23T02:00:05.000001Z"},
    {"root_hash": bytes(32)}, {"key_id": "0" * 64}])
def test_a_changed_head_no_longer_verifies(change: dict[str, object]) -> None:
    key = doc_key()
    signed = audit.sign_tree_head(key, 5, merkle.root(5, TREE), TIMESTAMP)
    fields = {"tree_size": 5, "root_hash": signed.head.root_hash, "timestamp": TIMESTAMP,
              "key_id": signed.head.key_id, **change}
    forged = audit.SignedTreeHead(audit.TreeHead(**fields), signed.signature)  # type: ignore[arg-type]
    assert audit.verify_tree_head(key.public_key(), signed)
    assert not audit.verify_tree_head(key.public_key(), forged)
    v = verifier()
    assert not v.signature_valid(key.public_key(), v.parse_head(forged.view()))


def test_another_key_does_not_verify_the_head() -> None:
    signed = audit.sign_tree_head(doc_key(), 5, merkle.root(5, TREE), TIMESTAMP)
    other = audit.load_private_key_pem(audit.generate_private_key_pem())
    assert not audit.verify_tree_head(other.public_key(), signed)


def test_keys_round_trip_through_pem_and_only_ed25519_is_accepted() -> None:
    key = doc_key()
    again = audit.load_private_key_pem(audit.private_key_pem(key))
    assert audit.key_id(again.public_key()) == VECTORS["key_id"]
    public = audit.load_public_key_pem(audit.public_key_pem(key.public_key()).encode())
    assert audit.key_id(public) == VECTORS["key_id"]
    ec_pem = generate_private_key(SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    with pytest.raises(InvalidInput):
        audit.load_private_key_pem(ec_pem)
    with pytest.raises(InvalidInput):
        audit.load_private_key_pem(b"not a key")


def test_a_head_refuses_malformed_fields() -> None:
    with pytest.raises(InvariantViolation):
        audit.TreeHead(5, bytes(31), TIMESTAMP, "0" * 64)
    with pytest.raises(InvariantViolation):
        audit.TreeHead(5, bytes(32), "2026-11-23T02:00:05Z", "0" * 64)
    with pytest.raises(InvariantViolation):
        audit.TreeHead(5, bytes(32), TIMESTAMP, "A" * 64)


# --- the verifier's own tree and canonical form agree with ledger's ----------------------------

SIZES_MAX = 64
BIG = merkle.MemoryTree(merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(SIZES_MAX))


@pytest.mark.parametrize("size", range(1, SIZES_MAX + 1))
def test_the_verifier_agrees_with_ledger_on_every_small_tree(size: int) -> None:
    v = verifier()
    frontier = v.Frontier()
    for index in range(size):
        frontier.push(BIG.node(0, index))
    root = merkle.root(size, BIG)
    assert frontier.root() == root
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, BIG)
        assert v.verify_inclusion(BIG.node(0, index), index, size, proof, root)
        assert not v.verify_inclusion(BIG.node(0, index), index, size, proof, bytes(32))
    for first in range(size + 1):
        proof = merkle.consistency_proof(first, size, BIG)
        first_root = merkle.root(first, BIG)
        assert v.verify_consistency(first, size, first_root, root, proof)
        if 0 < first < size:
            assert not v.verify_consistency(first, size, root, root, proof)


def test_the_verifier_accepts_the_canonical_vectors() -> None:
    for body in BODIES:
        assert verifier().canonical_problem(body) is None


@pytest.mark.parametrize("edit", [
    (b'"seq":3', b'"seq": 3'), (b'"seq":3', b'"seq":3.0'), (b'"memo"', b'"memo" '),
    (b"\\t", b"\\u0009"), ("备".encode(), b"\\u5907"),
])
def test_the_verifier_refuses_non_canonical_bytes(edit: tuple[bytes, bytes]) -> None:
    found = [b for b in BODIES if edit[0] in b]
    assert found, edit
    body = found[0].replace(edit[0], edit[1], 1)
    assert verifier().canonical_problem(body) is not None
    with pytest.raises(InvalidInput):
        journal.decode_entry(body)
