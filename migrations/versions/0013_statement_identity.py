"""statement identity: a statement is its content, not its account and number; one custody
account per merchant at a bank

- `bank_statements`: one row per imported statement, unique by its bank and fingerprint (the
  hash of its account, number, dates, balances and every line: ledger/bank/identity.py).
  Keyed on account and number, as before, Rabobank's `:28C:0` of every day made each later
  day "already imported" and lost its lines. Append-only, like the files.
- `statement_lines.statement_ref` names its statement; a line's position is unique within its
  statement (it was unique per account and number, which two different statements share).
  Checked once per INSERT statement, set-based, like the line's file (migration 0008).
  Lines imported before this migration get a statement each, per account and number as they
  were identified then, fingerprinted from its stored file as an import now would (so the
  same statement sent again after the upgrade is named a duplicate); a file that no longer
  reads keeps a hash of bank, account and number.
- `statement_lines.uetr` keeps SWIFT gpi's end-to-end reference; a zero-amount line is kept
  as information (status NOTB) rather than refusing the file.
- `merchants.custody_account` is stored in its barest form (ledger/bank/accounts.py: no
  spacing, no `BIC/` before it, no currency after it) and unique per bank: a second
  merchant filed on the same custody account sent statements to an arbitrary one of the
  two. The upgrade stops, naming the pair, if existing filings already collide.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 21:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_STATEMENTS = """
INSERT INTO bank_statements (id, bank_id, account, number, fingerprint, file_id, position,
                             kind, format, lines, imported_seq)
SELECT nextval(pg_get_serial_sequence('bank_statements', 'id')), l.bank_id, l.account,
       l.statement_id,
       sha256(convert_to('legacy:' || l.bank_id || ':' || l.account || ':' || l.statement_id,
                         'UTF8')),
       min(l.file_id), '', 'final', min(f.format), count(*), min(f.imported_seq)
FROM statement_lines l JOIN statement_files f ON f.id = l.file_id
GROUP BY l.bank_id, l.account, l.statement_id
"""
LEGACY_REFS = """
UPDATE statement_lines l SET statement_ref = s.id FROM bank_statements s
WHERE s.bank_id = l.bank_id AND s.account = l.account AND s.number = l.statement_id
"""
TRIGGERS = """
CREATE TRIGGER bank_statements_append_only BEFORE UPDATE OR DELETE ON bank_statements
  FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER bank_statements_no_truncate BEFORE TRUNCATE ON bank_statements
  FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER statement_lines_name_statements AFTER INSERT ON statement_lines
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT
  EXECUTE FUNCTION yufu_written_rows_name_rows(
    'statement_ref', 'bank_statements', 'a statement line names a statement');
CREATE TRIGGER statement_lines_statement_fixed BEFORE UPDATE ON statement_lines FOR EACH ROW
  WHEN (NEW.statement_ref IS DISTINCT FROM OLD.statement_ref)
  EXECUTE FUNCTION yufu_line_keys_fixed();
"""


def upgrade() -> None:
    _custody_accounts()
    op.create_table(
        "bank_statements",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bank_id", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("opening_booked_fen", sa.BigInteger(), nullable=True),
        sa.Column("closing_booked_fen", sa.BigInteger(), nullable=True),
        sa.Column("opening_date", sa.Date(), nullable=True),
        sa.Column("closing_date", sa.Date(), nullable=True),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("imported_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('final','interim')",
                           name=op.f("ck_bank_statements_kind_known")),
        sa.CheckConstraint("lines >= 0", name=op.f("ck_bank_statements_lines_counted")),
        sa.ForeignKeyConstraint(["file_id"], ["statement_files.id"],
                                name=op.f("fk_bank_statements_file_id_statement_files")),
        sa.ForeignKeyConstraint(["imported_seq"], ["journal_entries.seq"],
                                name=op.f("fk_bank_statements_imported_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statements")),
        sa.UniqueConstraint("bank_id", "fingerprint", name="uq_bank_statements_fingerprint"),
    )
    op.create_index("ix_bank_statements_account", "bank_statements",
                    ["bank_id", "account", "number"])
    op.add_column("statement_lines", sa.Column("statement_ref", sa.BigInteger(), nullable=True))
    op.add_column("statement_lines", sa.Column("uetr", sa.Text(), nullable=True))
    op.execute(LEGACY_STATEMENTS)
    _fingerprint_legacy()
    op.execute(LEGACY_REFS)
    op.alter_column("statement_lines", "statement_ref", nullable=False)
    op.drop_constraint(op.f("uq_statement_lines_position"), "statement_lines", type_="unique")
    op.create_unique_constraint(op.f("uq_statement_lines_position"), "statement_lines",
                                ["statement_ref", "position"])
    op.drop_constraint(op.f("ck_statement_lines_amount_positive"), "statement_lines",
                       type_="check")
    op.create_check_constraint("amount_counted", "statement_lines",
                               "amount_fen > 0 OR (amount_fen = 0 AND status = 'NOTB')")
    op.execute(TRIGGERS)


def _fingerprint_legacy() -> None:
    """Each statement imported before this revision, fingerprinted as an import now would
    fingerprint it, from its file as stored: else the same statement sent again after the
    upgrade would not be known and would be imported twice. The fingerprint is what the
    service's reader makes of a file, so it is made here with that reader (imported here
    alone: no other migration needs the application's code). A file that no longer reads,
    or a statement not found in it, keeps the `legacy:` hash of its bank, account and
    number."""
    from ledger.bank.accounts import account_candidates, normalise_account
    from ledger.bank.identity import fingerprint
    from ledger.bank.model import Statement, StatementRejected
    from ledger.bank.statements import read_file

    def numbered(s: Statement, number: str) -> bool:
        """Whether the reader's statement is the one numbered so before this revision: our
        CSV's were `account as written:currency:closing day` then."""
        day = s.closing_date.isoformat() if s.closing_date else s.message_id
        return number in (s.statement_id, f"{s.account}:{s.currency}:{day}")

    conn = op.get_bind()
    file_ids = conn.execute(sa.text(
        "SELECT DISTINCT file_id FROM bank_statements ORDER BY file_id")).scalars().all()
    for file_id in file_ids:  # one body at a time: a long history's files are gigabytes
        body, filename = conn.execute(sa.text(
            "SELECT body, filename FROM statement_files WHERE id = :f"), {"f": file_id}).one()
        try:
            statements = read_file(bytes(body), filename or None).statements
        except StatementRejected:
            continue
        for statement_id, account, number in conn.execute(sa.text(
                "SELECT id, account, number FROM bank_statements WHERE file_id = :f"),
                {"f": file_id}).all():
            # The account as it was stored then: as the file wrote it, matched letter for
            # letter to the merchant's filing.
            found = next((s for s in statements if numbered(s, number) and normalise_account(
                account) in account_candidates(s.account, s.currency)), None)
            if found is not None:
                conn.execute(sa.text("UPDATE bank_statements SET fingerprint = :fp "
                                     "WHERE id = :id"),
                             {"fp": fingerprint(found), "id": statement_id})


def _custody_accounts() -> None:
    """Each merchant's custody account in its barest form, computed here in Python as filing
    computes it (ledger/bank/accounts.py, copied as it stands at this revision: a migration
    must not change when that module does). SQL's `[[:space:]]` in a C-locale database misses
    the ideographic space U+3000 and the no-break space, which Chinese input is full of."""
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, bank_id, custody_account FROM merchants "
                                "ORDER BY id")).all()
    held: dict[tuple[str, str], str] = {}
    for merchant_id, bank_id, written in rows:
        account = _barest(written)
        other = held.setdefault((bank_id, account), merchant_id)
        if other != merchant_id:
            raise RuntimeError(f"merchants {other} and {merchant_id} share custody account "
                               f"{account} at bank {bank_id}: refile one before upgrading")
        if account != written:
            conn.execute(sa.text("UPDATE merchants SET custody_account = :a WHERE id = :id"),
                         {"a": account, "id": merchant_id})
    op.create_unique_constraint(op.f("uq_merchants_custody_account"), "merchants",
                                ["bank_id", "custody_account"])


def _barest(written: str) -> str:
    account = re.sub(r"[\s\-.·]+", "", written).upper().rpartition("/")[2]
    match = re.fullmatch(r"(.*[0-9])CNY", account)
    return match[1] if match else account


def downgrade() -> None:
    op.drop_constraint(op.f("uq_merchants_custody_account"), "merchants", type_="unique")
    for trigger in ("statement_lines_name_statements", "statement_lines_statement_fixed"):
        op.execute(f"DROP TRIGGER {trigger} ON statement_lines")
    op.drop_constraint(op.f("ck_statement_lines_amount_counted"), "statement_lines",
                       type_="check")
    op.create_check_constraint("amount_positive", "statement_lines", "amount_fen > 0")
    op.drop_constraint(op.f("uq_statement_lines_position"), "statement_lines", type_="unique")
    op.create_unique_constraint(op.f("uq_statement_lines_position"), "statement_lines",
                                ["bank_id", "account", "statement_id", "position"])
    op.drop_column("statement_lines", "uetr")
    op.drop_column("statement_lines", "statement_ref")
    op.drop_index("ix_bank_statements_account", table_name="bank_statements")
    op.drop_table("bank_statements")
