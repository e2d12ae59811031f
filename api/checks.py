"""`yufu verify`'s checks, shared by `yufu restore` (api/backup_cli.py), which runs them on
what it restored."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from ledger.db import queries
from ledger.journal import GENESIS_PREV_HASH, ChainBreak, check_chain


def _walk(results: Iterable[ChainBreak | bytes]) -> tuple[int, bytes, ChainBreak | None]:
    """Count the verified entries and keep the last hash, up to the first break."""
    count, head = 0, GENESIS_PREV_HASH
    for result in results:
        if isinstance(result, ChainBreak):
            return count, head, result
        count, head = count + 1, result
    return count, head, None


def report(results: Iterable[ChainBreak | bytes]) -> tuple[int, int, bytes]:
    """Print the outcome of a chain walk; returns (exit code, entries verified, head hash)."""
    count, head, broken = _walk(results)
    if broken is not None:
        print(f"BROKEN at sequence number {broken.seq}: {broken.reason}")
        return 1, count, head
    print(f"OK: {count} entries verified; head hash {head.hex()}")
    return 0, count, head


def verify_books(conn: Connection) -> int:
    """The whole chain, the chain head against its end, the cached balances against the
    postings; prints what it found and returns the exit code (0 sound, 1 broken)."""
    code, count, last_hash = report(check_chain(queries.stored_entries(conn)))
    if code:
        return code
    head_seq, head_hash = queries.chain_head(conn)
    mismatched = queries.account_balance_mismatches(conn)
    # The chain alone cannot see its last entries deleted or rewritten: the head can.
    if (head_seq, head_hash) != (count, last_hash):
        # Name the first entry in doubt: a missing one, the rewritten last one, or the
        # first one beyond the head.
        first_bad = count + 1 if head_seq > count else min(head_seq + 1, count)
        print(f"BROKEN at sequence number {first_bad}: the chain head says "
              f"entry {head_seq} ({head_hash.hex()}) but the journal ends at entry {count} "
              f"({last_hash.hex()})")
        return 1
    if mismatched:
        print(f"BROKEN: cached balances differ from postings for accounts {mismatched}")
        return 1
    print(f"chain head at {head_seq} ({head_hash.hex()}); account balances equal postings")
    return 0
