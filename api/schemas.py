"""What the API answers, as pydantic models: the OpenAPI document's success schemas and the
problem every error is (api/openapi.py).

Each model is exactly the dict its command (ledger/*_service.py) or query
(ledger/db/*queries.py) builds: `extra="forbid"`, so the document says no other field comes,
and a read that returns a dict is validated against its model by FastAPI (a drift fails
loudly, in the tests first). The writes answer a JSONResponse the appender built, which
FastAPI does not validate again: their models document them, and
tests/api/test_openapi_document.py holds each answer to its model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["operator", "merchant", "bank", "regulator", "consumer"]
AccountKind = Literal["asset", "liability", "equity", "income", "expense"]
MerchantStatus = Literal["active", "frozen", "closed"]
Tier = Literal["blue", "yellow", "red"]
CardKind = Literal["stored_value", "sessions"]
CardStatus = Literal["active", "refund_pending", "refunded", "closed"]
InstructionStatus = Literal["pending", "settled", "failed"]
BankStatus = Literal["pending", "accepted", "rejected"]
Seq = Annotated[int, Field(description="a journal sequence number")]
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]*$")]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"},
                                 description="UTC, microseconds, 'Z'")]
NextAfter = Annotated[int | None, Field(description="the cursor of the next page (`after`); "
                                                    "null on the last page")]
NextAfterName = Annotated[str | None, Field(description="the cursor of the next page "
                                                        "(`after`); null on the last page")]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- problems (RFC 9457) ----------------------------------------------------------------------


class FieldError(Out):
    field: str
    reason: str


class Problem(Out):
    """An RFC 9457 problem: every error the service answers, as application/problem+json."""

    type: str = Field(examples=["urn:yufu:problem:insufficient_funds"])
    title: str
    status: int
    detail: str
    code: str = Field(description="stable, machine-readable: `urn:yufu:problem:<code>` is "
                                  "`type`", examples=["insufficient_funds"])
    field: str | None = Field(default=None, description="the field at fault, if one is")
    request_id: str | None = Field(default=None, description="as in `X-Request-Id`")
    errors: list[FieldError] | None = Field(default=None,
                                            description="the fields at fault (validation; at "
                                                        "most 20)")
    errors_count: int | None = Field(default=None,
                                     description="how many fields were at fault in all")
    recorded: Literal["no", "unknown"] | None = Field(
        default=None, description="`database_unavailable` only: whether the write may have "
                                  "been recorded (`unknown`: the connection died after its "
                                  "commit was sent)")
    retry_safe_with_same_idempotency_key: bool | None = Field(
        default=None, description="`database_unavailable` only: a retry with the same "
                                  "Idempotency-Key answers the first result if there was one, "
                                  "or writes once")


# -- system, keys, banks, consumers -------------------------------------------------------------


class Health(Out):
    status: Literal["ok"]
    journal_head_seq: Seq
    journal_head_hash: Hex


class ReadyChecks(Out):
    database: bool  # reachable, within the statement timeout
    migrations: bool  # the database's revision is the code's Alembic head
    writer: bool  # the appender thread is alive


class Ready(Out):
    status: Literal["ready"]
    checks: ReadyChecks


class IssuedKey(Out):
    key_id: int
    prefix: str
    role: Role
    merchant_id: str | None
    bank_id: str | None
    department: str | None = Field(default=None, description="a regulator key's department "
                                   "(行业主管部门): it sees that department's merchants")
    street: str | None = Field(default=None, description="a regulator key's street (属地): it "
                               "sees that street's merchants")
    label: str
    expires_at: Timestamp | None
    key: str | None = Field(default=None, description="the key itself: shown this once, never "
                                                       "stored (absent from a replay)")
    issued_seq: Seq
    withheld: list[Literal["key"]] | None = Field(
        default=None, description="on a replay (Idempotency-Key): what the first answer "
                                  "showed once and is not shown again")


class ConsumerKey(IssuedKey):
    consumer_id: str = Field(description="the cardholder's pseudonym")


class KeyView(Out):
    key_id: int
    prefix: str
    role: Role
    merchant_id: str | None
    bank_id: str | None
    consumer_id: str | None
    department: str | None = Field(description="a regulator key's department, if scoped")
    street: str | None = Field(description="a regulator key's street (属地), if scoped")
    label: str
    created_at: Timestamp
    expires_at: Timestamp | None
    issued_seq: Seq
    revoked_seq: Seq | None
    revoked_reason: str | None


class KeysPage(Out):
    items: list[KeyView]
    next_after: NextAfter


class Revocation(Out):
    key_id: int
    role: Role
    merchant_id: str | None
    bank_id: str | None
    consumer_id: str | None
    reason: str
    revoked: Literal[True]
    journal_seq: Seq


class AccessRecord(Out):
    id: int
    ts: Timestamp
    request_id: str
    key_id: int
    role: Role
    method: str
    route: str
    path: str
    query: str
    status: int


class AccessRecordsPage(Out):
    items: list[AccessRecord]
    next_after: NextAfter


class RegisteredBank(Out):
    id: str
    name: str
    code: str
    journal_seq: Seq


class Bank(Out):
    id: str
    name: str
    code: str
    registered_seq: Seq | None


class Banks(Out):
    items: list[Bank]
    next_after: NextAfterName


class CodeSent(Out):
    sent: Literal[True]
    expires_in_s: int


# -- accounts, transactions, the journal --------------------------------------------------------


class Account(Out):
    id: int
    kind: AccountKind
    currency: str
    name: str
    merchant_id: str | None
    bank_id: str | None
    non_negative: bool


class OpenedAccount(Account):
    balance_fen: int
    opened_seq: Seq


class AccountView(Account):
    opened_seq: Seq
    as_of: Seq | None
    balance_fen: int = Field(description="debit positive")
    normal_balance_fen: int = Field(description="positive on the account's normal side")


class PostingLine(Out):
    transaction_id: int
    idx: int
    amount_fen: int
    currency: str
    memo: str
    ts: Timestamp


class PostingsPage(Out):
    account_id: int
    items: list[PostingLine]
    next_after: NextAfter


class Posting(Out):
    account_id: int
    amount_fen: int = Field(description="signed fen: debit positive, credit negative")
    currency: str


class Transaction(Out):
    id: int = Field(description="the transaction's journal sequence number")
    journal_seq: Seq
    entry_hash: Hex
    ts: Timestamp
    memo: str
    reverses: int | None
    postings: list[Posting]


class ItemError(Out):
    code: str
    field: str | None
    detail: str


class BatchItem(Out):
    index: int
    status: int = Field(description="201, or the status the item alone would have answered")
    transaction: Transaction | None = Field(default=None, description="when posted")
    error: ItemError | None = Field(default=None, description="when refused")


class BatchResult(Out):
    atomic: bool
    results: list[BatchItem]
    posted: int


class JournalEntry(Out):
    seq: Seq
    ts: Timestamp
    kind: str
    payload: dict[str, Any]
    prev_hash: Hex
    entry_hash: Hex
    canonical_b64: str = Field(description="the exact bytes that were hashed, base64")


class JournalPage(Out):
    items: list[JournalEntry]
    head_seq: Seq
    next_after: NextAfter


# -- the audit ------------------------------------------------------------------------------------


class PublicKey(Out):
    algorithm: Literal["Ed25519"]
    key_id: Hex
    public_key_pem: str


class TreeHead(Out):
    tree_size: int
    root_hash: Hex
    timestamp: Timestamp
    key_id: Hex
    signature: Hex = Field(description="Ed25519 over the head (docs/audit-format.md)")


class TreeHeadsPage(Out):
    items: list[TreeHead]
    next_after: NextAfter


class SignedTreeHead(TreeHead):
    created: bool = Field(description="false: the journal did not grow; the latest head")


class InclusionProof(Out):
    seq: Seq
    leaf_index: int
    tree_size: int
    audit_path: list[Hex]


class ConsistencyProof(Out):
    first: int
    second: int
    proof: list[Hex]


class Summary(Out):
    merchants: int
    cards: int
    card_liability_fen: int
    custody_balance_fen: int
    coverage_ratio_bp: int | None


class IndustrySummary(Summary):
    industry: str


class DepartmentSummary(Summary):
    department: str


class StreetSummary(Summary):
    street: str | None = Field(description="属地 (镇街); null: the merchants with no street "
                                           "registered")


class Totals(Out):
    by_industry: list[IndustrySummary]
    by_department: list[DepartmentSummary]
    by_street: list[StreetSummary]
    all: Summary


class Receipt(Out):
    card_id: str
    journal_seq: Seq
    entry_hash: Hex
    canonical_b64: str
    leaf_hash: Hex
    tree_head: TreeHead | None = Field(description="the latest signed head, once one covers "
                                                   "the sale")
    inclusion: InclusionProof | None


# -- long jobs ----------------------------------------------------------------------------------


class JobProgress(Out):
    done: int = Field(description="statement lines, merchants, consumptions or cards carried "
                                  "out so far")
    total: int
    slices: int = Field(description="slices committed so far, each its own group commit")


class JobView(Out):
    job_id: int
    kind: Literal["statement_import", "release_run", "auto_confirm", "closure"]
    status: Literal["running", "done", "failed"]
    progress: JobProgress
    result: dict[str, Any] | None = Field(description="the job's answer once done: what the "
                                                      "same request answers when it is small")
