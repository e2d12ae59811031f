"""What the service role may do to each table: the privilege policy, and its grant.

Two roles share the database (docs/database.md). The owner runs the migrations and owns
every table. The service connects as a role that owns nothing, so it cannot change the
schema or switch the triggers off; on top of that it holds only the privileges below, so it
cannot even ask to rewrite or delete history: a journal entry is refused by the missing
privilege before the append-only trigger would refuse it. The owner grants them right after
the migrations on every start (`grant`), so a table a later migration adds gets its
privileges at once, and a table nobody classified stops the start instead of going unseen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import Connection, text


class Access(enum.Enum):
    """What the service may do to the rows of a table."""

    # Written once, never changed: the journal and everything that hangs off it.
    append = ("SELECT", "INSERT")
    # Rows the service changes in place: caches of the journal (balances, the chain head)
    # and custody state whose every change is journaled.
    change = ("SELECT", "INSERT", "UPDATE")
    # Read only: the schema's revision, which a command run with the service's URL alone
    # reads to find its migrations done (runtime.migrate).
    read = ("SELECT",)

    @property
    def privileges(self) -> tuple[str, ...]:
        return tuple(self.value)


# The service never deletes or truncates a row, and never references or triggers: no table
# grants DELETE, TRUNCATE, REFERENCES or TRIGGER.
TABLE_PRIVILEGES_ALL = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES",
                        "TRIGGER")

# Every table, by what the service does with it (read from ledger/db: the batch's inserts
# and COPYs, its UPDATE ... FROM unnest, and the rows it locks FOR UPDATE, which PostgreSQL
# allows only with UPDATE). Tables of later migrations may be listed before they exist.
TABLES: Mapping[str, Access] = MappingProxyType({
    # the ledger core
    "journal_entries": Access.append,
    "transactions": Access.append,
    "postings": Access.append,
    "idempotency_records": Access.append,
    "accounts": Access.change,  # cached balances (the trigger keeps the rest fixed)
    "chain_head": Access.change,  # moved by every batch; its write generation bumped
    "api_keys": Access.append,  # a revocation is a row of its own (key_revocations)
    "key_revocations": Access.append,  # migration 0010
    # custody
    "rule_sets": Access.append,
    "department_maps": Access.append,  # migration 0016: each version a row
    "merchant_accounts": Access.append,
    "products": Access.append,
    "merchants": Access.change,  # status, tier, the register's amendments
    "merchant_amendments": Access.append,  # migration 0015: 变更登记, one row per entry
    "cards": Access.change,  # units used, status, disputes
    "consumptions": Access.change,  # confirmed, rejected, released
    "release_instructions": Access.change,  # settled, failed, the bank's answer
    "refund_instructions": Access.change,  # settled, failed, the bank's answer
    "consumer_codes": Access.change,  # migration 0010: a code is used up in place
    "closures": Access.append,  # migration 0011: a closure's plan
    "closure_payouts": Access.append,  # migration 0011
    # bans (migration 0018): each written once; a lift is a row of its own
    "bans": Access.append,
    "ban_lifts": Access.append,
    "premises_arrivals": Access.append,
    "premises_flags": Access.append,
    # supervision
    "complaints": Access.change,  # migration 0017: status, routing, dates, every step journaled
    "complaint_steps": Access.append,  # migration 0017: one row per journal entry
    "complaint_deadlines": Access.append,  # migration 0017: each version a row
    # audit
    "merkle_nodes": Access.append,
    "tree_heads": Access.append,
    "reports": Access.append,  # migration 0020: the routines' reports, each written once
    "access_records": Access.append,  # migration 0010
    # banks
    "banks": Access.append,  # migration 0010
    "statement_files": Access.append,
    "bank_statements": Access.append,  # migration 0013: one row per imported statement
    "statement_lines": Access.append,  # COPY only; their matches are written with them
    "cross_verifications": Access.append,
    "expected_deposits": Access.change,  # cleared by statements and confirmations
    "reconciliation_breaks": Access.change,  # resolved
    # supervision (migration 0019)
    "supervision_rules": Access.append,  # each version a row
    "signals": Access.append,  # raised and cleared, as journaled
    "merchant_risk": Access.change,  # standing signals, computed tier, release hold
    "status_records": Access.append,  # 经营异常名录 ... 舆情: a lifting is a row of its own
    "merchant_revenues": Access.append,  # prior-year revenue, per recording
    "tier_overrides": Access.change,  # ended by a review, in place (journaled)
    "alerts": Access.change,  # acknowledged in place (journaled)
    "webhook_subscriptions": Access.append,
    "webhook_deliveries": Access.change,  # attempts: operational, like a job's progress
    # long jobs
    "jobs": Access.change,  # migration 0012: a job's progress, updated in place
    # Alembic's revision: written by the migrations only.
    "alembic_version": Access.read,
})
# The tables whose id sequence the service moves on by setval as well as nextval (a whole
# block of statement line ids in one round trip: bank_store.line_ids): UPDATE on the
# sequence. Every other sequence is drawn from (USAGE) and read (SELECT) only.
SEQUENCES_SET: frozenset[str] = frozenset({"statement_lines"})
# Two starts granting at once would collide on the catalog rows ("tuple concurrently
# updated"): they take turns on this transaction-level advisory lock.
GRANT_LOCK_KEY = 0x59554655_0001  # "YUFU", 1


class UnsafeRoles(RuntimeError):
    """The service role could do more than the policy allows, or a table has no policy."""


def existing_tables(conn: Connection) -> list[str]:
    """Every relation of the current schema that takes table privileges."""
    return list(conn.execute(text(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY relname")).scalars())


def grant(conn: Connection, service_role: str) -> None:
    """Make the service role's privileges exactly the policy's, on the tables that exist;
    then read them back (`problems`). Run by the owner, in its transaction; idempotent."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GRANT_LOCK_KEY})
    tables = existing_tables(conn)
    unclassified = [name for name in tables if name not in TABLES]
    if unclassified:
        raise UnsafeRoles(f"tables without a privilege policy: {', '.join(unclassified)} "
                          "(classify them in ledger/db/privileges.py)")
    quote = conn.dialect.identifier_preparer.quote_identifier
    role = quote(service_role)
    database = quote(str(conn.execute(text("SELECT current_database()")).scalar_one()))
    statements = [
        # No temporary tables, for anyone but the owner: a session's own pg_temp comes first
        # in its search path, so a temporary `postings` or `chain_head` would be what the
        # triggers' functions read and write in that session (the balance check, the link
        # check, the write generation's bump), and they would pass on its say-so.
        f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC",
        f"REVOKE ALL ON DATABASE {database} FROM {role}",
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        f"GRANT USAGE ON SCHEMA {quote(_schema(conn))} TO {role}"]
    for name in tables:
        statements.append(f"REVOKE ALL ON TABLE {quote(name)} FROM {role}")
        statements.append(f"GRANT {', '.join(TABLES[name].privileges)} ON TABLE "
                          f"{quote(name)} TO {role}")
    for sequence, moved in _sequences(conn):
        statements.append(f"REVOKE ALL ON SEQUENCE {quote(sequence)} FROM {role}")
        statements.append(f"GRANT USAGE, SELECT{', UPDATE' if moved else ''} ON SEQUENCE "
                          f"{quote(sequence)} TO {role}")
    conn.exec_driver_sql(";\n".join(statements))
    found = problems(conn, service_role)
    if found:
        raise UnsafeRoles(f"the service role {service_role} can do more than Yufu grants it: "
                          + "; ".join(found))


def problems(conn: Connection, service_role: str) -> list[str]:
    """What the service role can do beyond the policy (or cannot do within it), as the
    database answers it: privileges through PUBLIC or another role's membership count."""
    role = conn.execute(text(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
        {"role": service_role}).first()
    if role is None:
        return [f"there is no role {service_role}"]
    found = []
    if role.rolsuper:
        found.append("it is a superuser")
    if role.rolbypassrls:
        found.append("it bypasses row security")
    found += [f"it is a member of {owner}, who owns tables" for owner in conn.execute(text(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace "
        "AND pg_has_role(:role, relowner, 'MEMBER')"), {"role": service_role}).scalars()]
    found += [f"it owns {name}" for name in conn.execute(text(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relowner = to_regrole(:role) "
        "UNION ALL SELECT 'the schema' FROM pg_namespace "
        "WHERE oid = current_schema()::regnamespace AND nspowner = to_regrole(:role)"),
        {"role": service_role}).scalars()]
    creates = conn.execute(text(
        "SELECT has_schema_privilege(:role, current_schema(), 'CREATE'), "
        "has_database_privilege(:role, current_database(), 'CREATE'), "
        "has_database_privilege(:role, current_database(), 'TEMPORARY')"),
        {"role": service_role}).one()
    found += [what for what, can in zip(
        ("it may create objects in the schema", "it may create schemas",
         "it may create temporary tables"), creates, strict=True) if can]
    checks = ", ".join(f"has_table_privilege(:role, c.oid, '{p}')"
                       for p in TABLE_PRIVILEGES_ALL)
    for name, *held in conn.execute(text(
            f"SELECT c.relname, {checks} FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname"),
            {"role": service_role}):
        wanted = TABLES[name].privileges if name in TABLES else ()
        for privilege, has in zip(TABLE_PRIVILEGES_ALL, held, strict=True):
            if has != (privilege in wanted):
                found.append(f"{'has' if has else 'lacks'} {privilege} on {name}")
    for sequence, moved in _sequences(conn):
        if conn.execute(text("SELECT has_sequence_privilege(:role, :seq, 'UPDATE')"),
                        {"role": service_role, "seq": sequence}).scalar_one() != moved:
            found.append(f"{'has' if not moved else 'lacks'} UPDATE on {sequence}")
    return found


def _schema(conn: Connection) -> str:
    return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def _sequences(conn: Connection) -> list[tuple[str, bool]]:
    """Every sequence of the schema, and whether the service moves it on by setval."""
    moved = {str(name).rsplit(".", 1)[-1] for name in conn.execute(text(
        "SELECT pg_get_serial_sequence(t, 'id') FROM unnest(CAST(:tables AS text[])) AS t "
        "WHERE to_regclass(t) IS NOT NULL"), {"tables": sorted(SEQUENCES_SET)}).scalars()
        if name is not None}
    names = conn.execute(text(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relkind = 'S' ORDER BY relname")).scalars()
    return [(str(name), name in moved) for name in names]
