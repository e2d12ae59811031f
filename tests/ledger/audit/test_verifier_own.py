"""The auditor's verifier for a custodian bank (`--own`): the bank checks its own merchants'
entries against the signed heads, without reading any other bank's."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from api.app import create_app
from ledger.auth import Role
from tests.support.audit import doc_key, post_transfers, run_verifier, sign_head
from tests.support.db import file_merchant, issue_key
from tests.support.http import live_server


def test_a_bank_verifies_its_own_entries_and_only_those(engine: Engine) -> None:
    post_transfers(engine, 10)  # entries of nobody's bank
    for bank in ("OWN-A", "OWN-B"):
        file_merchant(engine, bank)
    sign_head(engine, doc_key())
    post_transfers(engine, 5)
    bank_key = issue_key(engine, Role.bank, bank_id="OWN-A")
    app = create_app(engine, audit_key=doc_key(), tree_head_interval_s=None)
    with live_server(app) as url:
        code, out = run_verifier("--url", url, "--key", bank_key, "--own")
        assert code == 0, out
        checked = re.search(r"ok   \[journal\] ([0-9]+) entries this key may read", out)
        # The bank's registration, its merchant's filing and its chart of accounts: not the
        # other bank's, not the transfers.
        assert checked is not None and 1 < int(checked.group(1)) < 15, out
        assert re.search(r"ok   \[inclusion\] [0-9]+ sampled entries proved included", out), out
        # The whole journal is not the bank's to walk.
        code, out = run_verifier("--url", url, "--key", bank_key)
        assert code == 2 and "403" in out, out
