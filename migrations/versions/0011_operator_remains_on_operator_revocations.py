"""the last-operator-key trigger judges only the revocation of an operator key

Before, any revocation failed while no other operator key was active (none issued yet, or
all expired): a merchant, bank or consumer revoking its own leaked key got a 500. The domain
check (ledger/trust_service.py RevokeKey) refuses only an operator key's revocation; the
trigger now says the same.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 13:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_OPERATOR_KEY_SQL = """
  NOT EXISTS (SELECT 1 FROM api_keys k
               WHERE k.role = 'operator' AND (k.expires_at IS NULL OR k.expires_at > now())
                 AND NOT EXISTS (SELECT 1 FROM key_revocations r WHERE r.key_id = k.id))"""


def function_sql(condition: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION yufu_operator_remains() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {condition} THEN
    RAISE EXCEPTION 'yufu: the last active operator key cannot be revoked'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(function_sql(
        "EXISTS (SELECT 1 FROM api_keys WHERE id = NEW.key_id AND role = 'operator') AND"
        + ACTIVE_OPERATOR_KEY_SQL))


def downgrade() -> None:
    op.execute(function_sql(ACTIVE_OPERATOR_KEY_SQL))
