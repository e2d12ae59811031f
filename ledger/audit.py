"""Signed tree heads: their canonical signed bytes, Ed25519 signing and verification.

docs/audit-format.md is the specification; this module is one implementation of it. Pure:
no I/O. Loading a key from a file, or making one at first start, is api/runtime.py's job;
here a key is PEM bytes in and PEM bytes out.

A tree head says "the journal's first `tree_size` entries have the Merkle root `root_hash`"
(ledger/merkle.py, RFC 9162), at `timestamp`, under the key `key_id`. The signed bytes are
a fixed context label, then the head as canonical JSON (the journal's own encoding, RFC 8785
for a subset that here is only ASCII strings and one integer).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger import limits
from ledger.errors import InvalidInput, require
from ledger.journal import TS_RE, canonical_json

# The label binds a signature to its meaning: the service's key signs nothing else, and a
# later format would change the label rather than reinterpret old signatures.
TREE_HEAD_CONTEXT: Final = b"yufu-tree-head-v1\n"
signature_bytes: Final = 64
digest_bytes: Final = 32
KEY_ID_RE: Final = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp: str
    key_id: str

    def __post_init__(self) -> None:
        require(0 <= self.tree_size <= limits.amount_fen_max, "tree sizes stay exact in JSON")
        require(len(self.root_hash) == digest_bytes, "a root hash is 32 bytes")
        require(bool(TS_RE.match(self.timestamp)), "timestamps are UTC with microseconds")
        require(bool(KEY_ID_RE.match(self.key_id)), "a key id is 64 lower-case hex digits")

    def signed_bytes(self) -> bytes:
        return TREE_HEAD_CONTEXT + canonical_json({
            "key_id": self.key_id, "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp, "tree_size": self.tree_size})


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    head: TreeHead
    signature: bytes

    def view(self) -> dict[str, Any]:
        """The head as the API and the verifier see it: hashes and signature in hex."""
        return {"tree_size": self.head.tree_size, "root_hash": self.head.root_hash.hex(),
                "timestamp": self.head.timestamp, "key_id": self.head.key_id,
                "signature": self.signature.hex()}


def generate_private_key_pem() -> bytes:
    return private_key_pem(Ed25519PrivateKey.generate())


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key_pem(data: bytes) -> Ed25519PrivateKey:
    """An unencrypted PKCS#8 PEM Ed25519 key; anything else is InvalidInput."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not an unencrypted PEM private key: {exc}", field="key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the tree-head key must be an Ed25519 key", field="key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key_pem(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a PEM public key: {exc}", field="key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the tree-head key must be an Ed25519 key", field="key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign_tree_head(key: Ed25519PrivateKey, tree_size: int, root_hash: bytes,
                   timestamp: str) -> SignedTreeHead:
    head = TreeHead(tree_size, root_hash, timestamp, key_id(key.public_key()))
    return SignedTreeHead(head, key.sign(head.signed_bytes()))


def verify_tree_head(key: Ed25519PublicKey, signed: SignedTreeHead) -> bool:
    """True when `key` is the head's key and its signature is valid. Never raises."""
    if signed.head.key_id != key_id(key) or len(signed.signature) != signature_bytes:
        return False
    try:
        key.verify(signed.signature, signed.head.signed_bytes())
    except InvalidSignature:
        return False
    return True
