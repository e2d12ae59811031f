"""One group commit's unit of work: the chain head, the accounts it locked, what it appends.

Commands read what they need, check it in the pure core, then append. Journal entries,
transactions and postings are buffered and written in bulk by `flush`, so a batch of many
commands costs a handful of statements. A command that fails with an expected error is
undone from the buffers (`mark` / `undo_to`), so it never sinks its batch.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, select

from ledger import journal, merkle
from ledger.books import (
    Account,
    AccountKind,
    TransactionDraft,
    apply_postings,
    check_balanced,
)
from ledger.commands import EntryRef
from ledger.db import tables as t
from ledger.db.audit_queries import stored_frontier
from ledger.db.bulk import copy_text
from ledger.db.carry import Beside, Carry, after_commit
from ledger.db.door import Door
from ledger.db.rowcache import RowCache
from ledger.db.script import Script, script_rows_max
from ledger.db.writer_state import WriterState, default_state
from ledger.errors import Conflict, NotFound, require

JOURNAL_COLUMNS = ("seq", "ts", "kind", "prev_hash", "entry_hash", "body", "merchant_id",
                   "bank_id")
TRANSACTION_COLUMNS = ("id", "memo", "postings_count", "reverses_id", "ts")
POSTING_COLUMNS = ("transaction_id", "idx", "postings_count", "account_id", "currency",
                   "amount_fen")
NODE_COLUMNS = ("level", "idx", "hash")
ACCOUNT_BALANCES_SQL = (
    "UPDATE accounts SET balance_fen = v.balance FROM unnest(CAST(%(ids)s AS bigint[]), "
    "CAST(%(balances)s AS bigint[])) AS v(id, balance) WHERE accounts.id = v.id")
HEAD_SQL = select(t.ChainHead.seq, t.ChainHead.entry_hash, t.ChainHead.ts,
                  t.ChainHead.generation).where(t.ChainHead.id == 1).with_for_update()
# The appender's own connection runs in autocommit and opens and closes its transactions
# itself, each in the same round trip as the statements beside it (see writer.py).
BEGIN_HEAD_SQL = ("BEGIN; SELECT seq, entry_hash, ts, generation FROM chain_head "
                  "WHERE id = 1 FOR UPDATE")
# After a commit, when more requests wait: the next batch's transaction and chain-head lock,
# in the same round trip, with the generation this commit left beside the head.
RELOCK_SQL = ("BEGIN; SELECT seq, entry_hash, ts, generation, "
              "current_setting('yufu.generation')::bigint AS committed_generation "
              "FROM chain_head WHERE id = 1 FOR UPDATE")
# Move the head; the generation the batch leaves comes back, and stays in the session past
# a COMMIT in the same round trip (a rollback undoes it with the rest).
HEAD_MOVE_SQL = (
    "WITH moved AS (UPDATE chain_head SET seq = %(seq)s, entry_hash = %(entry_hash)s, "
    "ts = %(ts)s WHERE id = 1 RETURNING generation) "
    "SELECT set_config('yufu.generation', generation::text, false) FROM moved")

class Offline(BaseException):
    """A batch made by `Batch.following` needed the database (a row nobody carried, a new
    block of ids, a write of its own): the writer runs it again once its turn comes.
    A BaseException, so that no command's `except Exception` mistakes it for a failure."""


class _NoDatabase:
    """The connection a batch made by `Batch.following` sees while the real one is busy."""

    def __init__(self, conn: Connection) -> None:
        self.engine = conn.engine

    def __getattr__(self, name: str) -> Any:
        raise Offline(name)


# The write generation a batch made by `following` assumes: unknown until `rebase`.
_GENERATION_UNKNOWN = -1


class LockedHead(NamedTuple):
    """The chain head as a batch found it, under its lock."""

    seq: int
    entry_hash: bytes
    ts: datetime | None
    generation: int


@dataclass(frozen=True, slots=True)
class Mark:
    journal_rows: int
    transaction_rows: int
    posting_rows: int
    undo: int
    seq: int
    entry_hash: bytes
    ts: datetime
    extra_rows: int
    rows: int


class Batch:
    def __init__(self, conn: Connection, *, begin: bool = False,
                 head: LockedHead | None = None, carry: Carry | None = None,
                 state: WriterState | None = None) -> None:
        """Lock the chain head in the caller's transaction, or (`begin`, on a connection in
        autocommit) in one this batch opens, and that `flush(commit=True)` closes. `head`:
        the previous batch's commit already opened the transaction and took the lock.
        `carry`: see `following`. `state`: the writer's (its carry, id pools, caches); a
        batch made without a writer shares the engine's default one."""
        self.conn = conn
        self.state = state if state is not None else default_state(conn.engine)
        if head is None:
            head = LockedHead(*(conn.exec_driver_sql(BEGIN_HEAD_SQL) if begin
                                else conn.execute(HEAD_SQL)).one())
        self.next_head: LockedHead | None = None  # set by flush(relock=True)
        self.seq: int = head.seq
        self.entry_hash: bytes = bytes(head.entry_hash)
        self.ts: datetime = head.ts or datetime.fromtimestamp(0, UTC)
        # The Merkle tree over the entries before this batch: read once, when first needed.
        self._tree_size_before: int = head.seq
        self._hash_before: bytes = self.entry_hash
        self._frontier_before: merkle.Frontier | None = None
        self.journal_rows: list[dict[str, Any]] = []
        self.transaction_rows: list[dict[str, Any]] = []
        self.posting_rows: list[dict[str, Any]] = []
        self.extra_rows: list[tuple[Any, dict[str, Any]]] = []
        self.accounts: dict[int, Account] = {}
        self._undo: list[tuple[int, Account | None]] = []
        self._dirty_accounts: set[int] = set()
        self._reversed_here: set[int] = set()
        # Set by `write`: a command that wrote directly can no longer be undone from the
        # buffers, so an expected error after it is treated as a bug (the batch is retried).
        self.wrote_directly = False
        self._carry = carry if carry is not None else self.state.carry.take(
            (head.generation, head.seq, self.entry_hash))
        self._direct_writes = False
        self._generation_after: int | None = None
        self.rows = RowCache(conn, self._carry.rows)
        self._sequences: Connection | None = None  # see `following`
        self._command_mark = self.mark()
        # Who the running command acts for (ledger.auth.actor_of): named in every entry.
        self.actor: dict[str, Any] | None = None

    @classmethod
    def following(cls, before: Batch, sequences: Connection | None = None) -> Batch:
        """A batch whose commands run while `before`'s flush is still in flight, on what
        `before` leaves: its head, its balances and rows over the carry it took. The
        connection is busy meanwhile, so the batch has none: a command that needs the
        database raises `Offline` (see `_NoDatabase`). Nothing it did may be written until
        `rebase` finds, under the lock, that `before` committed and nobody wrote since."""
        head = LockedHead(before.seq, before.entry_hash, before.ts, _GENERATION_UNKNOWN)
        batch = cls(cast(Connection, _NoDatabase(before.conn)), head=head, carry=Carry(
            (_GENERATION_UNKNOWN, before.seq, before.entry_hash),
            ChainMap(dict(before.accounts), before._carry.accounts),
            ChainMap(before.rows.carried_rows(), before._carry.rows)), state=before.state)
        batch._sequences = sequences
        return batch

    @property
    def books(self) -> Door:
        """What a command sees of the batch (ledger.commands.Books): never the batch. A new
        Door each time rather than one kept here: a batch and its Door referring to each other
        left every batch, its buffers with it, to the cyclic garbage collector (docs/
        reliability.md, "The soak")."""
        return Door(self)

    @property
    def database(self) -> str:
        """The database's URL, its password hidden (kept for code that named caches by it)."""
        return self.state.database

    def rebase(self, conn: Connection, head: LockedHead) -> bool:
        """Bind a batch made by `following` to the connection, under the lock the writer now
        holds: true if the carry the previous batch shelved shows this very head, i.e. that
        batch committed what this one ran on, and nothing was written since."""
        if (head.seq, bytes(head.entry_hash)) != (self._tree_size_before, self._hash_before):
            return False
        kept = self.state.carry.take_if((head.generation, head.seq, bytes(head.entry_hash)))
        if kept is None:
            return False
        self.conn = conn
        self._carry = kept
        self.rows.rebase(conn, kept.rows)
        return True

    # -- marks, so one failing command leaves no trace -------------------------------
    def mark(self) -> Mark:
        return Mark(len(self.journal_rows), len(self.transaction_rows), len(self.posting_rows),
                    len(self._undo), self.seq, self.entry_hash, self.ts, len(self.extra_rows),
                    self.rows.mark())

    def undo_to(self, mark: Mark) -> None:
        del self.journal_rows[mark.journal_rows:]
        del self.transaction_rows[mark.transaction_rows:]
        del self.posting_rows[mark.posting_rows:]
        del self.extra_rows[mark.extra_rows:]
        while len(self._undo) > mark.undo:
            account_id, before = self._undo.pop()
            if before is None:
                self.accounts.pop(account_id, None)
            else:
                self.accounts[account_id] = before
        self._reversed_here = {r["reverses_id"] for r in self.transaction_rows
                               if r["reverses_id"] is not None}
        self.seq, self.entry_hash, self.ts = mark.seq, mark.entry_hash, mark.ts
        self.rows.undo_to(mark.rows)

    # -- accounts -------------------------------------------------------------------
    def load_accounts(self, ids: Iterable[int]) -> dict[int, Account]:
        """The accounts with these ids that exist, locked in id order for the batch."""
        wanted = set(ids)
        missing = []
        # Not `wanted - self.accounts.keys()`: that walks every account of the batch.
        for account_id in sorted(i for i in wanted if i not in self.accounts):
            kept = self._carry.accounts.get(account_id)
            if kept is None:
                missing.append(account_id)
            else:
                self.accounts[account_id] = kept
        if missing:
            rows = self.conn.execute(
                select(t.Account.id, t.Account.kind, t.Account.currency, t.Account.non_negative,
                       t.Account.balance_fen)
                .where(t.Account.id.in_(missing)).order_by(t.Account.id).with_for_update())
            for row in rows:
                self.accounts[row.id] = Account(row.id, AccountKind(row.kind), row.currency,
                                                row.non_negative, row.balance_fen)
        return {i: self.accounts[i] for i in wanted if i in self.accounts}

    def _set_account(self, account: Account) -> None:
        self._undo.append((account.id, self.accounts.get(account.id)))
        self.accounts[account.id] = account
        self._dirty_accounts.add(account.id)

    # -- appending ------------------------------------------------------------------
    def append(self, kind: str, payload: Mapping[str, Any]) -> EntryRef:
        # encode_entry refuses a payload outside the canonical subset (floats, ...).
        # Every entry says who made it: the writer sets the actor of each request it runs.
        require(self.actor is not None, "every journal entry names its actor")
        payload = {**payload, "actor": self.actor}
        now = datetime.now(UTC)
        # Timestamps never go backwards along the chain, even if the clock does.
        self.ts = max(now, self.ts)
        ts_text = journal.format_ts(self.ts)
        seq = self.seq + 1
        body = journal.encode_entry(seq, ts_text, kind, payload, self.entry_hash)
        entry_hash = journal.entry_hash(body)
        self.journal_rows.append({"seq": seq, "ts": self.ts, "kind": kind,
                                  "prev_hash": self.entry_hash, "entry_hash": entry_hash,
                                  "body": body, "merchant_id": payload.get("merchant_id"),
                                  "bank_id": payload.get("bank_id")})
        self.seq, self.entry_hash = seq, entry_hash
        return EntryRef(seq, entry_hash, ts_text)

    def post(self, draft: TransactionDraft, kind: str = "transaction",
             details: Mapping[str, Any] | None = None) -> EntryRef:
        """Check and append a balanced transaction; returns its entry (id = seq)."""
        check_balanced(draft.postings)
        accounts = self.load_accounts(p.account_id for p in draft.postings)
        updated = apply_postings(accounts, draft.postings)
        if draft.reverses is not None:
            self._check_reversible(draft.reverses)
        payload = {"memo": draft.memo, "reverses": draft.reverses,
                   "postings": [{"account_id": p.account_id, "amount_fen": p.amount_fen,
                                 "currency": p.currency} for p in draft.postings],
                   **(details or {})}
        ref = self.append(kind, payload)
        count = len(draft.postings)
        self.transaction_rows.append({"id": ref.seq, "memo": draft.memo, "postings_count": count,
                                      "reverses_id": draft.reverses, "ts": self.ts})
        self.posting_rows.extend(
            {"transaction_id": ref.seq, "idx": i, "postings_count": count,
             "account_id": p.account_id, "currency": p.currency, "amount_fen": p.amount_fen}
            for i, p in enumerate(draft.postings))
        for account in updated.values():
            self._set_account(account)
        if draft.reverses is not None:
            self._reversed_here.add(draft.reverses)
        return ref

    def _check_reversible(self, original_id: int) -> None:
        if original_id in self._reversed_here:
            raise Conflict(f"transaction {original_id} is already reversed", field="id")
        held = next((r for r in self.transaction_rows if r["id"] == original_id), None)
        if held is not None:  # recorded by an earlier command of this batch
            if held["reverses_id"] is not None:
                raise Conflict(f"transaction {original_id} is itself a reversal", field="id")
            return
        row = self.conn.execute(
            select(t.Transaction.id, t.Transaction.reverses_id).where(
                t.Transaction.id == original_id)).one_or_none()
        if row is None:
            raise NotFound(f"transaction {original_id} does not exist", field="id")
        if row.reverses_id is not None:
            raise Conflict(f"transaction {original_id} is itself a reversal", field="id")
        already = self.conn.execute(
            select(t.Transaction.id).where(t.Transaction.reverses_id == original_id)).first()
        if already is not None:
            raise Conflict(f"transaction {original_id} is already reversed by {already.id}",
                           field="id")

    def next_id(self, table: Any) -> int:
        """Take an id from a table's identity sequence, before its row is buffered.

        Ids are drawn `id_block_size` at a time: a sequence never rolls back, so an id is
        unique whether or not its batch commits, and one round trip serves many rows."""
        # Sequences are outside transactions: a batch run ahead draws its ids on the
        # writer's helper connection, if it was given one.
        return self.draw(table.__tablename__)

    def draw(self, name: str) -> int:
        """An id from the sequence of the table `name` (see `next_id`)."""
        return self.state.ids.take(name, self._sequences or self.conn)

    def opened(self, account: Account) -> None:
        """Make a just-created account visible to later commands of this batch."""
        self._undo.append((account.id, None))
        self.accounts[account.id] = account

    def query(self, statement: Any, params: Any = None) -> Any:
        """Which rows match a condition: sees every earlier command's writes (`sync`), and
        is refused once the running command has changed a row, which it could not see."""
        self.sync()
        return self.conn.execute(statement, params)

    def lookup(self, statement: Any, params: Any = None) -> Any:
        """A read by what never changes once written (an id, a reference, a rule set
        version): right at any point of a command, since its caller reads the rows it finds
        through the batch, which holds every change not yet written."""
        return self.conn.execute(statement, params)

    def sync(self) -> None:
        """Write the batch's custody rows now, so an aggregate query sees them. Only while the
        running command has changed nothing (its undo would otherwise miss the database)."""
        require(not self.rows.changed_since(self._command_mark.rows),
                "sync before the command changes anything")
        self.rows.flush()
        self._command_mark = self.mark()

    def start_command(self, actor: Mapping[str, Any]) -> None:
        self._command_mark = self.mark()
        self.wrote_directly = False
        self.actor = dict(actor)

    def undo_command(self) -> None:
        self.undo_to(self._command_mark)

    def write(self, statement: Any, params: Any = None) -> Any:
        """Execute a direct write (custody state): only after every check has passed."""
        return self.writing_directly().execute(statement, params)

    def writing_directly(self) -> Connection:
        """The connection, for writes the batch's buffers do not hold (a COPY, an UPDATE):
        only after every check has passed. The command can no longer be undone from the
        buffers, and the batch passes no carry on."""
        self.wrote_directly = self._direct_writes = True
        return self.conn

    def add_row(self, table: Any, row: dict[str, Any]) -> None:
        """Buffer a row of another table for the bulk flush (undone with the command)."""
        self.extra_rows.append((table, row))

    # -- the Merkle tree ---------------------------------------------------------------
    def merkle_frontier(self) -> merkle.Frontier:
        """The tree over every entry so far, the ones buffered in this batch included."""
        return merkle.append_leaves(self._stored_frontier(), self._leaves())[0]

    def _stored_frontier(self) -> merkle.Frontier:
        if self._frontier_before is None:
            cached = self.state.frontier
            if cached is not None and cached[:2] == (self._tree_size_before, self._hash_before):
                self._frontier_before = cached[2]
            else:
                self._frontier_before = stored_frontier(self.conn, self._tree_size_before)
        return self._frontier_before

    def _leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(row["body"]) for row in self.journal_rows]

    def _flush_merkle_nodes(self, script: Script) -> None:
        """Store the nodes the new entries complete: about two small rows per entry."""
        frontier, nodes = merkle.append_leaves(self._stored_frontier(), self._leaves())
        require(frontier.size == self.seq, "the Merkle tree has one leaf per journal entry")
        if len(nodes) <= script_rows_max:
            script.insert("merkle_nodes", NODE_COLUMNS, [
                {"level": n.level, "idx": n.index, "hash": n.digest} for n in nodes])
        else:
            # Formatted here, not by copy_rows: a node is two integers and a hash, and this
            # is about seven times faster than the general row formatter.
            script.run()
            copy_text(self.conn, "merkle_nodes", NODE_COLUMNS,
                      "".join([f"{n.level}\t{n.index}\t\\\\x{n.digest.hex()}\n"
                               for n in nodes]))
        self.state.frontier = (self.seq, self.entry_hash, frontier)

    # -- the write --------------------------------------------------------------------
    def flush(self, commit: bool = False, relock: bool = False) -> None:
        """Write everything; with `commit`, the COMMIT goes in the same round trip, and with
        `relock` the next batch's BEGIN and chain-head lock too (see `next_head`)."""
        self.flushed(self.flush_script(commit, relock).run(), commit, relock)

    def flush_script(self, commit: bool = False, relock: bool = False) -> Script:
        """The flush's script, not yet run: the writer runs it while the next batch's
        commands run (see `following`); `flushed` then takes its result."""
        script = Script(self.conn)
        script.insert("journal_entries", JOURNAL_COLUMNS, self.journal_rows)
        if self.journal_rows:
            self._flush_merkle_nodes(script)
        # Accounts opened in this batch go in before the postings that name them.
        self._flush_extra_rows(script)
        self.rows.flush(script)
        script.insert("transactions", TRANSACTION_COLUMNS, self.transaction_rows)
        script.insert("postings", POSTING_COLUMNS, self.posting_rows)
        if self._dirty_accounts:
            # One statement for every account the batch moved, in id order.
            ids = sorted(self._dirty_accounts)
            script.add(ACCOUNT_BALANCES_SQL, ids=ids,
                       balances=[self.accounts[i].balance_fen for i in ids])
        if self.journal_rows:
            require(self.journal_rows[-1]["seq"] == self.seq, "the head is the last entry")
            script.add(HEAD_MOVE_SQL, seq=self.seq, entry_hash=self.entry_hash, ts=self.ts)
        if commit:
            script.add("COMMIT")
            if self.journal_rows:
                script.add(RELOCK_SQL if relock
                           else "SELECT current_setting('yufu.generation')::bigint")
        return script

    def flushed(self, head: Any, commit: bool, relock: bool) -> None:
        """Take in the flush script's result: the generation left, the next batch's lock."""
        if self.journal_rows:
            self._generation_after = int(head[-1])
            if commit and relock:
                self.next_head = LockedHead(*head[:4])

    def _flush_extra_rows(self, script: Script) -> None:
        # One insert per table and shape: a statement each, so each fires its table's
        # statement triggers (the write generation's bump) once, not once per row.
        grouped: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] = {}
        for table, row in self.extra_rows:
            grouped.setdefault((table, tuple(row)), []).append(row)
        for (table, columns), rows in grouped.items():
            script.insert(table.__tablename__, columns, rows)

    # -- after the transaction ---------------------------------------------------------
    def committed(self) -> None:
        """Pass what this batch committed on to the writer's next batch."""
        head = None if self._generation_after is None else (
            self._generation_after, self.seq, self.entry_hash)
        beside = Beside(self._direct_writes, bool(self.extra_rows))
        carry = after_commit(self._carry, head, beside, self.accounts, self.rows)
        if carry is not None:
            self.state.carry.put(carry)

    def rolled_back(self) -> None:
        """The database is as it was before the batch, and so is the carry: put it back."""
        self.state.carry.put(self._carry)
