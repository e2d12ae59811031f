"""The tree-head key: made once under YUFU_HOME or read from a named PEM file, and refused
when it is not the key that signed the latest head."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.runtime import AUDIT_KEY_FILE_NAME, AuditKeyMismatch, audit_signing_key, check_audit_key
from api.settings import Settings
from ledger import audit
from ledger.errors import InvalidInput
from tests.support.audit import doc_key, post_transfers, sign_head


def test_a_key_is_made_at_first_start_and_kept(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", audit_key_file=None)
    first = audit_signing_key(settings)
    key_file = settings.home / AUDIT_KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = audit_signing_key(settings)
    assert audit.key_id(again.public_key()) == audit.key_id(first.public_key())


def test_a_named_key_file_is_used_as_it_is(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(audit.private_key_pem(doc_key()))
    key = audit_signing_key(Settings(home=tmp_path / "home", audit_key_file=key_file))
    assert audit.key_id(key.public_key()) == audit.key_id(doc_key().public_key())
    assert not (tmp_path / "home" / AUDIT_KEY_FILE_NAME).exists()


def test_a_named_key_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_text("not a key")
    with pytest.raises(InvalidInput):
        audit_signing_key(Settings(home=tmp_path, audit_key_file=key_file))


def test_another_key_than_the_latest_heads_is_refused_unless_rotating(engine: Engine) -> None:
    other = audit.load_private_key_pem(audit.generate_private_key_pem())
    check_audit_key(engine, other, allow_rotation=False)  # no head yet: any key will do
    post_transfers(engine, 3)
    sign_head(engine, doc_key())
    check_audit_key(engine, doc_key(), allow_rotation=False)
    with pytest.raises(AuditKeyMismatch) as refused:
        check_audit_key(engine, other, allow_rotation=False)
    assert audit.key_id(doc_key().public_key()) in str(refused.value)
    check_audit_key(engine, other, allow_rotation=True)
