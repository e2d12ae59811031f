"""The trust store in one group commit: what an earlier command of the batch registered,
issued or revoked is seen by the next one, never answered from before it. (A module of its
own: it revokes every operator key of its database.)"""

from __future__ import annotations

from sqlalchemy import Engine, text

from ledger.auth import Role
from ledger.db.writer import Outcome
from ledger.errors import Conflict, LedgerError
from ledger.service import IssueKey
from ledger.trust_service import RegisterBank, RevokeKey
from tests.support.db import bank_code
from tests.support.db import run_together as one_commit


def refused(result: Outcome | BaseException, field: str) -> bool:
    return isinstance(result, Conflict) and result.field == field


def test_a_bank_registered_in_the_same_commit_is_known_to_the_commands_after_it(
        engine: Engine) -> None:
    registered, key, again, same_code = one_commit(
        engine, RegisterBank("TS-1", "TS 银行", bank_code("TS-1")),
        IssueKey(Role.bank, bank_id="TS-1"),
        RegisterBank("TS-1", "TS 银行", bank_code("TS-2")),
        RegisterBank("TS-2", "TS 银行", bank_code("TS-1")))
    assert isinstance(registered, Outcome) and isinstance(key, Outcome)
    assert key.body["bank_id"] == "TS-1"
    assert refused(again, "id")
    assert refused(same_code, "code")


def test_a_key_revoked_in_the_same_commit_is_not_revoked_twice(engine: Engine) -> None:
    issued = one_commit(engine, IssueKey(Role.regulator))[0]
    assert isinstance(issued, Outcome)
    key_id = issued.body["key_id"]
    first, second = one_commit(engine, RevokeKey(None, key_id, "lost"),
                               RevokeKey(None, key_id, "lost again"))
    assert isinstance(first, Outcome)
    assert refused(second, "key_id")


def test_revocations_in_one_commit_leave_the_last_operator_key(engine: Engine) -> None:
    for _ in range(2):
        assert isinstance(one_commit(engine, IssueKey(Role.operator))[0], Outcome)
    with engine.connect() as conn:
        active = conn.execute(text(
            "SELECT k.id FROM api_keys k WHERE k.role = 'operator' AND k.expires_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM key_revocations r WHERE r.key_id = k.id) "
            "ORDER BY k.id")).scalars().all()
    results = one_commit(engine, *(RevokeKey(None, key_id, "rotation") for key_id in active))
    assert all(isinstance(r, Outcome) for r in results[:-1])
    last = results[-1]
    assert refused(last, "key_id")
    assert isinstance(last, LedgerError) and "last active operator key" in last.detail
