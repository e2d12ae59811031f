"""After a key rotation the verifier trusts each head's own key, if the auditor pinned it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from api.app import create_app
from ledger import audit
from ledger.auth import Role
from tests.support.audit import doc_key, post_transfers, run_verifier, sign_head
from tests.support.db import issue_key
from tests.support.http import live_server


def test_heads_before_a_rotation_verify_with_the_old_key_pinned(engine: Engine,
                                                                tmp_path: Path) -> None:
    old, new = doc_key(), audit.load_private_key_pem(audit.generate_private_key_pem())
    post_transfers(engine, 10)
    sign_head(engine, old)
    post_transfers(engine, 10)
    sign_head(engine, new)
    pems = []
    for name, key in (("old", old), ("new", new)):
        pem = tmp_path / f"{name}.pem"
        pem.write_text(audit.public_key_pem(key.public_key()))
        pems.append(str(pem))
    reader = issue_key(engine, Role.regulator)
    with live_server(create_app(engine, audit_key=new, tree_head_interval_s=None)) as url:
        base = ["--url", url, "--key", reader, "--sample", "5"]
        code, out = run_verifier(*base, "--public-key", pems[0], "--public-key", pems[1])
        assert code == 0, out
        code, out = run_verifier(*base, "--public-key", pems[1])
    assert code == 1, out
    first = out.splitlines()[1]
    assert first.startswith("FAIL [heads] tree head ") and \
        f"is signed by key {audit.key_id(old.public_key())}, which is not a trusted key" in first
