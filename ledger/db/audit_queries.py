"""Read side of the audit: Merkle nodes, proofs, signed tree heads, receipts, regulators' views.

Every proof or root is one plan (ledger/merkle.py, pure), one query for the O(log n) nodes
it needs, and a pure combine: never a walk over the journal.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg2
from sqlalchemy import Connection, select, text

from ledger import journal, limits, merkle
from ledger.audit import SignedTreeHead, TreeHead
from ledger.auth import Principal, Role
from ledger.custody.rules import basis_points_whole
from ledger.db import custody_queries, queries
from ledger.db import custody_tables as c
from ledger.db.audit_tables import TreeHead as TreeHeadRow
from ledger.db.custody_queries import CARD_MERCHANT_COLUMNS, readable_card
from ledger.db.scope import supervised
from ledger.errors import InvalidInput, NotFound, require

# Small enough that a chunk fits in the socket buffers: the next one is read from the
# database while the client still works on this one.
export_chunk_entries = 1000


# The keys go in as two arrays joined to the primary key: one statement text whatever the
# number of keys, so nothing is rebuilt per call; about three times cheaper than an
# expression `(level, idx) IN (...)` built per request, for the same plan of index probes.
_NODES_SQL = text(
    "SELECT n.level, n.idx, n.hash "
    "FROM unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS k(level, idx) "
    "JOIN merkle_nodes AS n ON n.level = k.level AND n.idx = k.idx")


class SqlNodeReader:
    """merkle_nodes as a BulkNodeReader: all the keys of one call in one query."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def node(self, level: int, index: int) -> bytes:
        return self.nodes([(level, index)])[(level, index)]

    def nodes(self, keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        if not keys:
            return {}
        rows = self.conn.execute(_NODES_SQL, {"levels": [k[0] for k in keys],
                                              "idxs": [k[1] for k in keys]})
        found = {(r.level, r.idx): bytes(r.hash) for r in rows}
        missing = [key for key in keys if key not in found]
        if missing:
            raise LookupError(f"Merkle nodes not stored: {missing}")
        return found


def stored_frontier(conn: Connection, tree_size: int) -> merkle.Frontier:
    """The frontier of the stored tree of `tree_size` leaves: one query of O(log n) nodes."""
    return merkle.frontier_from_reader(tree_size, SqlNodeReader(conn))


def _journal_size(conn: Connection) -> int:
    return queries.chain_head(conn)[0]


def _beyond_journal(conn: Connection, tree_size: int, field: str) -> InvalidInput:
    """A proof whose nodes are not all stored: fine for a tree larger than the journal (every
    proof reads a node over the tree's last leaf), a bug otherwise."""
    size = _journal_size(conn)
    require(tree_size > size, f"Merkle nodes of the tree of {tree_size} are missing")
    return InvalidInput(f"the journal has {size} entries, fewer than {tree_size}", field=field)


def inclusion(conn: Connection, seq: int, tree_size: int) -> dict[str, Any]:
    """The audit path of entry `seq` (leaf seq - 1) in the tree of the first tree_size entries.
    One query: the size is checked only when nodes turn out to be missing."""
    if not 1 <= seq <= tree_size:
        raise InvalidInput(f"entry {seq} is not among the first {tree_size}", field="seq")
    plan = merkle.inclusion_plan(seq - 1, tree_size)
    # The leaf is read too: the path of the last leaf does not cover it, and an entry beyond
    # the journal must have no proof.
    try:
        fetched = SqlNodeReader(conn).nodes([*merkle.needed_keys(plan), (0, seq - 1)])
    except LookupError:
        raise _beyond_journal(conn, tree_size, "tree_size") from None
    path = merkle.combine(plan, fetched)
    return {"seq": seq, "leaf_index": seq - 1, "tree_size": tree_size,
            "audit_path": [p.hex() for p in path]}


def consistency(conn: Connection, first: int, second: int) -> dict[str, Any]:
    if first > second:
        raise InvalidInput(f"first ({first}) is larger than second ({second})", field="first")
    if first in (0, second):
        # The proof is empty and reads no node, so the size is checked against the journal.
        if second > _journal_size(conn):
            raise _beyond_journal(conn, second, "second")
        return {"first": first, "second": second, "proof": []}
    try:
        proof = merkle.consistency_proof(first, second, SqlNodeReader(conn))
    except LookupError:
        raise _beyond_journal(conn, second, "second") from None
    return {"first": first, "second": second, "proof": [p.hex() for p in proof]}


# --- tree heads ----------------------------------------------------------------------------

_HEAD_COLUMNS = (TreeHeadRow.tree_size, TreeHeadRow.root_hash, TreeHeadRow.ts,
                 TreeHeadRow.key_id, TreeHeadRow.signature)


def _signed(row: Any) -> SignedTreeHead:
    head = TreeHead(row.tree_size, bytes(row.root_hash), journal.format_ts(row.ts), row.key_id)
    return SignedTreeHead(head, bytes(row.signature))


def latest_head(conn: Connection) -> SignedTreeHead | None:
    row = conn.execute(select(*_HEAD_COLUMNS).order_by(TreeHeadRow.tree_size.desc())
                       .limit(1)).first()
    return None if row is None else _signed(row)


def latest_head_view(conn: Connection) -> dict[str, Any]:
    head = latest_head(conn)
    if head is None:
        raise NotFound("no tree head has been signed yet", field="tree_size")
    return head.view()


def heads_page(conn: Connection, after: int, limit: int) -> dict[str, Any]:
    rows = conn.execute(select(*_HEAD_COLUMNS).where(TreeHeadRow.tree_size > after)
                        .order_by(TreeHeadRow.tree_size).limit(limit)).all()
    items = [_signed(r).view() for r in rows]
    return {"items": items, "next_after": rows[-1].tree_size if len(rows) == limit else None}


# --- consumer receipts -----------------------------------------------------------------------


def card_receipt(conn: Connection, card_id: str, reader: Principal | str) -> dict[str, Any]:
    """The card's sale entry, and its inclusion proof once a signed head covers it."""
    row = conn.execute(select(c.Card.id, c.Card.token_hash, c.Card.sold_seq, c.Card.consumer_id,
                              c.Card.merchant_id, *CARD_MERCHANT_COLUMNS)
                       .join(c.Merchant, c.Merchant.id == c.Card.merchant_id)
                       .where(c.Card.id == card_id)).first()
    if row is None or not readable_card(reader, row):
        raise NotFound(f"card {card_id} does not exist", field="card_id")
    entry = queries.journal_entry(conn, row.sold_seq)
    receipt: dict[str, Any] = {
        "card_id": row.id, "journal_seq": row.sold_seq, "entry_hash": entry["entry_hash"],
        "canonical_b64": entry["canonical_b64"],
        "leaf_hash": merkle.leaf_hash(base64.b64decode(entry["canonical_b64"])).hex(),
        "tree_head": None, "inclusion": None}
    head = latest_head(conn)
    if head is not None and head.head.tree_size >= row.sold_seq:
        receipt["tree_head"] = head.view()
        receipt["inclusion"] = inclusion(conn, row.sold_seq, head.head.tree_size)
    return receipt


# --- regulators' views -----------------------------------------------------------------------


def merchants_exposure(conn: Connection, principal: Principal, page: queries.Page
                       ) -> dict[str, Any]:
    """A page of merchants' exposure; a bank sees the merchants whose custody it holds, a
    department or street regulator key those of its scope."""
    bank_id = principal.bank_id if principal.role == Role.bank else None
    return custody_queries.all_exposure(conn, page, bank_id, supervised(principal))


_SUMMED = ("cards", "card_liability_fen", "custody_balance_fen")


def _summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Merchants, cards, card liability and custody balance summed; coverage of the sums."""
    sums = {name: sum(item[name] for item in items) for name in _SUMMED}
    liability = sums["card_liability_fen"]
    coverage = sums["custody_balance_fen"] * basis_points_whole // liability if liability \
        else None
    return {"merchants": len(items), **sums, "coverage_ratio_bp": coverage}


def _grouped(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item[key], []).append(item)
    return [{key: name, **_summary(groups[name])} for name in sorted(groups)]


def totals(conn: Connection, principal: Principal) -> dict[str, Any]:
    """Totals by industry and by supervising department, over the merchants this key sees."""
    items: list[dict[str, Any]] = []
    page = queries.Page("", limits.exposure_page_merchants_max)
    while page.after is not None:  # every merchant, a page at a time
        answer = merchants_exposure(conn, principal, page)
        items += answer["items"]
        page = page._replace(after=answer["next_after"])
    return {"by_industry": _grouped(items, "industry"),
            "by_department": _grouped(items, "department"), "all": _summary(items)}


# PostgreSQL writes the export lines itself, as text: seven times faster than fetching the
# bytes (hex on the wire) and joining them in Python. A body that is not UTF-8 (a tampered
# one: the journal writes only canonical UTF-8) fails the chunk, which is then sent as bytes.
_EXPORT_SQL = (
    """SELECT seq, '{"entry":' || convert_from(body, 'UTF8') || ',"hash":"' """
    """|| encode(entry_hash, 'hex') || '"}' || chr(10) FROM journal_entries """
    "WHERE seq > %(after)s AND seq <= %(last)s ORDER BY seq LIMIT %(chunk)s")
_EXPORT_BYTES_SQL = text(
    "SELECT seq, body, entry_hash FROM journal_entries WHERE seq > :after AND seq <= :last "
    "ORDER BY seq LIMIT :chunk")


def export_lines(conn: Connection) -> Iterator[bytes]:
    """The journal in the `yufu export` format (docs/journal-format.md section 6), up to the
    chain head as it was when the export began, in chunks of lines (few, large writes)."""
    last = _journal_size(conn)
    after = 0
    while True:
        params = {"after": after, "last": last, "chunk": export_chunk_entries}
        try:
            seqs, chunk = _export_text(conn, params)
        except psycopg2.DataError:  # a body that is not UTF-8
            conn.rollback()
            seqs, chunk = _export_bytes(conn, params)
        if not seqs:
            return
        after = seqs[-1]
        yield chunk


def _export_text(conn: Connection, params: dict[str, int]) -> tuple[list[int], bytes]:
    # The DB-API cursor directly: a million rows through SQLAlchemy's result rows cost more
    # than the query itself.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_EXPORT_SQL, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [r[0] for r in rows], "".join([r[1] for r in rows]).encode()


def _export_bytes(conn: Connection, params: dict[str, int]) -> tuple[list[int], bytes]:
    rows = conn.execute(_EXPORT_BYTES_SQL, params).all()
    return [r.seq for r in rows], b"".join([
        b'{"entry":' + bytes(r.body) + b',"hash":"' + bytes(r.entry_hash).hex().encode() +
        b'"}\n' for r in rows])
