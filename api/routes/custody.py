"""Custody endpoints: rule sets, merchants, products, cards, consumptions, releases, refunds."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from api.context import Authed, MaybeAuthed, ReceiptCode, context_of, write
from api.custody_schemas import (
    AutoConfirmed,
    CardsPage,
    Closure,
    Consumption,
    CreatedProduct,
    CreatedRuleSet,
    Deposit,
    Dispute,
    Exposures,
    FiledMerchant,
    HolderCard,
    MerchantStatusChange,
    MerchantView,
    Refund,
    RefundInstructions,
    ReleaseInstructions,
    ReleaseRun,
    ResolvedRefund,
    ResolvedRelease,
    RuleSets,
    Sale,
    SettledConsumption,
    TierChange,
)
from api.jobs import answer_job
from api.openapi import (
    NOT_BLANK,
    Responses,
    card_read,
    exactly_one_of,
    job_write,
    keyed_read,
    keyed_write,
    only_when,
)
from api.paging import After, AfterName, ExposureLimit, Limit, PageQuery
from api.register_schemas import PersonIn, people_of
from ledger import limits
from ledger.access import require_operator, require_overseer, require_till
from ledger.auth import Principal
from ledger.commands import Command
from ledger.custody import cards as card_rules
from ledger.custody.merchants import HARD_BLOCKS, Tier, parse_filing
from ledger.custody.rules import DEFAULT_JURISDICTION
from ledger.custody.settlement import check_as_of, release_run_ahead_days_max
from ledger.db import audit_queries
from ledger.db import custody_queries as views
from ledger.db.queries import Page
from ledger.errors import InvalidInput, Unauthorized
from ledger.flows import closure, sweeps
from ledger.flows.closure import closure_steps
from ledger.flows.consumption import ConfirmConsumption, Consume, RejectConsumption
from ledger.flows.filing import (
    CreateRuleSet,
    FileMerchant,
    FreezeMerchant,
    SetTier,
    UnfreezeMerchant,
)
from ledger.flows.refunds import (
    FailRefund,
    OpenDispute,
    RefundCard,
    ResolveDispute,
    SettleRefund,
)
from ledger.flows.releases import ConfirmDeposit, FailRelease, SettleRelease
from ledger.flows.sales import CreateProduct, SellCard
from ledger.flows.sweeps import auto_confirm_steps, release_steps
from ledger.supervision.register import (
    address_chars_max,
    people_per_merchant_max,
    street_chars_max,
)

router = APIRouter(prefix="/v1")
Id = Annotated[str, Path(min_length=1, max_length=64)]
NumericId = Annotated[int, Path(ge=1, le=2**63 - 1)]
CSV: Responses = {200: {"description": "The payout list: one row per card's closure refund, with a "
                            "header row.",
             "content": {"text/csv": {"schema": {"type": "string"}}}}}
units_max = 10**12
# A card is sold to a phone number or to an id of the merchant's own: exactly one, not blank.
ONE_CONSUMER_REFERENCE = exactly_one_of("phone", "external_id", {"type": "string", **NOT_BLANK})
reason_chars_max = 500


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSetIn(Strict):
    jurisdiction: str = Field(default=DEFAULT_JURISDICTION, min_length=1, max_length=50)
    industry: str = Field(min_length=1, max_length=50, description="'*' for the fallback")
    rules: dict[str, Any] = Field(description="rule values; left-out ones keep the last "
                                              "version's")


class FilingIn(Strict):
    name: str = Field(min_length=1, max_length=limits.name_chars_max)
    credit_code: str = Field(min_length=1, max_length=40)
    industry: str = Field(min_length=1, max_length=50)
    bank_id: str = Field(min_length=1, max_length=limits.owner_chars_max)
    custody_account: str = Field(min_length=1, max_length=64)
    jurisdiction: str | None = Field(default=None, max_length=50)
    street: str | None = Field(default=None, min_length=1, max_length=street_chars_max,
                               description="属地: the street or town (镇街/街乡)")
    address: str | None = Field(default=None, min_length=1, max_length=address_chars_max,
                                description="the premises as written")
    people: list[PersonIn] = Field(default_factory=list, max_length=people_per_merchant_max,
                                   description="the legal representative and officers, by "
                                               "identity card number: kept only as "
                                               "pseudonyms")


class ReasonIn(Strict):
    reason: str = Field(default="", max_length=reason_chars_max)


class TierIn(Strict):
    tier: Literal["blue", "yellow", "red"]
    reasons: list[Annotated[str, Field(max_length=reason_chars_max)]] = Field(
        default_factory=list, max_length=50)
    hard_blocks: list[Literal["court_listed_defaulter", "abnormal_operations_list",
                              "deregistering"]] = Field(default_factory=list, max_length=3)


class ProductIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=only_when(
        "kind", "sessions", "sessions", {"type": "integer"}))
    kind: Literal["stored_value", "sessions"]
    name: str = Field(min_length=1, max_length=limits.name_chars_max, json_schema_extra=NOT_BLANK)
    price_fen: StrictInt = Field(gt=0, le=limits.amount_fen_max)
    sessions: StrictInt | None = Field(default=None, ge=1, le=100_000)
    bonus_units: StrictInt = Field(default=0, ge=0, le=limits.amount_fen_max)
    validity_months: StrictInt = Field(default=12, ge=1, le=1200)


class ConsumerIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_CONSUMER_REFERENCE)

    phone: str | None = Field(default=None, max_length=card_rules.consumer_ref_chars_max)
    external_id: str | None = Field(default=None, max_length=card_rules.consumer_ref_chars_max)


class SaleIn(Strict):
    product_id: str = Field(min_length=1, max_length=64)
    consumer: ConsumerIn
    named: StrictBool = True


class ConsumptionIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=exactly_one_of(
        "sessions", "amount_fen", {"type": "integer"}))

    sessions: StrictInt | None = Field(default=None, ge=1, le=units_max)
    amount_fen: StrictInt | None = Field(default=None, ge=1, le=limits.amount_fen_max)


class RefundIn(Strict):
    reason: Literal["cooling_off", "balance"]


class AsOfIn(Strict):
    as_of: date | None = None
    merchant_id: str | None = Field(default=None, max_length=64)


class ResolveIn(Strict):
    outcome: Literal["settled", "failed"]
    reason: str = Field(default="", max_length=reason_chars_max)


class DepositIn(Strict):
    amount_fen: StrictInt = Field(gt=0, le=limits.amount_fen_max)


class InstructionsQuery(PageQuery):
    status: str | None = None
    merchant_id: str | None = None


class DisputeResolveIn(Strict):
    outcome: Literal["merchant", "consumer"]


# -- rule sets and merchants -------------------------------------------------------------


@router.get("/rule-sets", response_model=RuleSets, **keyed_read())
def list_rule_sets(request: Request, who: Authed, after: After = 0,
                   limit: Limit = limits.list_page_items_default) -> dict[str, Any]:
    """Every rule set version, a page by id."""
    with context_of(request).engine.connect() as conn:
        return views.rule_sets(conn, Page(after, limit))


@router.post("/rule-sets", status_code=201, response_model=CreatedRuleSet, **keyed_write())
async def create_rule_set(request: Request, body: RuleSetIn, who: Authed) -> JSONResponse:
    require_operator(who)  # before the input is read: others learn nothing of it
    command = CreateRuleSet(who, body.jurisdiction, body.industry, body.rules)
    return await write(request, who, command)


@router.post("/merchants", status_code=201, response_model=FiledMerchant, **keyed_write(404))
async def file_merchant(request: Request, body: FilingIn, who: Authed) -> JSONResponse:
    require_operator(who)  # before the filing is parsed: others learn nothing
    people = people_of(request, body.people)
    filing = parse_filing(body.model_dump(exclude={"people"}), DEFAULT_JURISDICTION, people)
    command = FileMerchant(who, filing, context_of(request).clock(),
                           tuple(p.person_id for p in people))
    return await write(request, who, command)


@router.get("/merchants/{merchant_id}", response_model=MerchantView, **keyed_read(404))
def get_merchant(request: Request, merchant_id: Id, who: Authed) -> dict[str, Any]:
    ctx = context_of(request)
    with ctx.engine.connect() as conn:
        return views.merchant_view(conn, who, merchant_id, ctx.clock())


@router.get("/merchants/{merchant_id}/cards", response_model=CardsPage, **keyed_read(404))
def get_merchant_cards(request: Request, merchant_id: Id, who: Authed, after: str = "",
                       limit: Annotated[int, Query(ge=1, le=limits.postings_page_max)] = 100
                       ) -> dict[str, Any]:
    with context_of(request).engine.connect() as conn:
        return views.merchant_cards(conn, who, merchant_id, after, limit)


@router.post("/merchants/{merchant_id}/freeze", response_model=MerchantStatusChange,
             **keyed_write(404))
async def freeze(request: Request, merchant_id: Id, body: ReasonIn, who: Authed) -> JSONResponse:
    require_operator(who)  # before the input is read: others learn nothing of it
    return await write(request, who, FreezeMerchant(who, merchant_id, body.reason), 200)


@router.post("/merchants/{merchant_id}/unfreeze", response_model=MerchantStatusChange,
             **keyed_write(404))
async def unfreeze(request: Request, merchant_id: Id, body: ReasonIn, who: Authed
                   ) -> JSONResponse:
    require_operator(who)  # before the input is read: others learn nothing of it
    return await write(request, who, UnfreezeMerchant(who, merchant_id, body.reason), 200)


@router.post("/merchants/{merchant_id}/tier", response_model=TierChange, **keyed_write(404))
async def set_tier(request: Request, merchant_id: Id, body: TierIn, who: Authed) -> JSONResponse:
    require_operator(who)  # before the input is read: others learn nothing of it
    blocks = [b for b in body.hard_blocks if b in HARD_BLOCKS]
    command = SetTier(who, merchant_id, Tier(body.tier), body.reasons, blocks)
    return await write(request, who, command, 200)


@router.post("/merchants/{merchant_id}/close", response_model=Closure,
             **job_write(404, what="A closure of more cards than one slice"))
async def close(request: Request, merchant_id: Id, who: Authed) -> JSONResponse:
    """A closure of at most one slice's cards answers at once; a bigger one answers 202 with
    the job to poll (`GET /v1/jobs/{id}`), carried on in the background."""
    require_operator(who)  # before the input is read: others learn nothing of it
    # In slices, each its own group commit (ledger/flows/closure.py): tills write between
    # two. The answer is kept under the request's Idempotency-Key (api/jobs.py).
    slice_cards_max = closure.closure_slice_cards_max
    return await answer_job(request, who, closure_steps(
        who, merchant_id, slice_cards_max, context_of(request).clock()),
                            slice_cards_max, 200)


@router.get("/merchants/{merchant_id}/payouts.csv", response_class=Response,
            **keyed_read(404, responses=CSV))
def payouts_csv(request: Request, merchant_id: Id, who: Authed) -> Response:
    with context_of(request).engine.connect() as conn:
        rows = views.payout_rows(conn, who, merchant_id)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="payouts-{merchant_id}.csv"'})


@router.post("/merchants/{merchant_id}/deposits", status_code=201, response_model=Deposit,
             **keyed_write(404))
async def confirm_deposit(request: Request, merchant_id: Id, body: DepositIn, who: Authed
                          ) -> JSONResponse:
    return await write(request, who, ConfirmDeposit(who, merchant_id, body.amount_fen))


@router.post("/merchants/{merchant_id}/products", status_code=201,
             response_model=CreatedProduct, **keyed_write(404))
async def create_product(request: Request, merchant_id: Id, body: ProductIn, who: Authed
                         ) -> JSONResponse:
    product = card_rules.parse_product(body.model_dump())
    return await write(request, who, CreateProduct(who, merchant_id, product))


@router.get("/exposure", response_model=Exposures, **keyed_read())
def get_exposure(request: Request, who: Authed, after: AfterName = "",
                 limit: ExposureLimit = limits.exposure_page_merchants_default
                 ) -> dict[str, Any]:
    """Every merchant's exposure, a page by merchant id: a department or street regulator
    key, its own merchants'."""
    require_overseer(who)
    with context_of(request).engine.connect() as conn:
        return audit_queries.merchants_exposure(conn, who, Page(after, limit))


# -- cards and consumption -----------------------------------------------------------------


@router.post("/cards", status_code=201, response_model=Sale, **keyed_write(404))
async def sell_card(request: Request, body: SaleIn, who: Authed) -> JSONResponse:
    require_till(who)  # before the consumer's reference is read: others learn nothing
    ctx = context_of(request)
    consumer_id = consumer_id_of(request, body.consumer)
    return await write(request, who, SellCard(who, body.product_id, consumer_id, body.named,
                                              ctx.clock()))


def consumer_id_of(request: Request, consumer: ConsumerIn, where: str = "consumer") -> str:
    """The pseudonym of a phone number or external id: what a sale names and a one-time code
    proves (the phone number itself is never kept)."""
    if (consumer.phone is None) == (consumer.external_id is None):
        raise InvalidInput("give exactly one of phone or external_id", field="consumer")
    prefix = f"{where}." if where else ""
    if consumer.phone is not None:
        kind, reference = "phone", card_rules.normalise_phone(consumer.phone, f"{prefix}phone")
    else:
        kind, reference = "external", consumer.external_id or ""
        if not reference.strip():
            raise InvalidInput("must not be blank", field=f"{prefix}external_id")
    return card_rules.consumer_pseudonym(context_of(request).pseudonym_key,
                                         f"{kind}:{reference}")


@router.get("/cards/{card_id}", response_model=HolderCard, **card_read())
def consumer_card(request: Request, card_id: Id, who: MaybeAuthed,
                  receipt: ReceiptCode = None) -> dict[str, Any]:
    """The card as its holder sees it: with the consumer's own key, the receipt code from the
    sale, or a key that may read the merchant's books."""
    with context_of(request).engine.connect() as conn:
        return views.consumer_card_status(conn, card_id, card_reader(who, receipt))


def card_reader(who: Principal | None, receipt: str | None) -> Principal | str:
    if who is not None:
        return who
    if not receipt:
        raise Unauthorized("the cardholder's consumer key (Authorization: Bearer) or the "
                           "sale's receipt code (X-Receipt-Code) is required")
    return receipt


@router.post("/cards/{card_id}/consumptions", status_code=201, response_model=Consumption,
             **keyed_write(404))
async def consume(request: Request, card_id: Id, body: ConsumptionIn, who: Authed
                  ) -> JSONResponse:
    if (body.sessions is None) == (body.amount_fen is None):
        raise InvalidInput("give exactly one of sessions or amount_fen", field="sessions")
    units = body.sessions if body.sessions is not None else body.amount_fen
    assert units is not None
    unit = "sessions" if body.sessions is not None else "amount_fen"
    command = Consume(who, card_id, units, context_of(request).clock(), unit)
    return await write(request, who, command)


@router.post("/consumptions/{consumption_id}/confirm", response_model=SettledConsumption,
             **keyed_write(404, body=False))
async def confirm_consumption(request: Request, consumption_id: NumericId, who: Authed
                              ) -> JSONResponse:
    """The cardholder confirms, with their own consumer key."""
    command = ConfirmConsumption(who, consumption_id, context_of(request).clock())
    return await write(request, who, command, 200)


@router.post("/consumptions/{consumption_id}/reject", response_model=SettledConsumption,
             **keyed_write(404, body=False))
async def reject_consumption(request: Request, consumption_id: NumericId, who: Authed
                             ) -> JSONResponse:
    """The cardholder rejects, with their own consumer key: the value goes back on the card."""
    command = RejectConsumption(who, consumption_id, context_of(request).clock())
    return await write(request, who, command, 200)


@router.post("/consumptions/auto-confirm", response_model=AutoConfirmed,
             **job_write(what="A sweep of more consumptions due than one slice", body=True))
async def auto_confirm(request: Request, body: AsOfIn, who: Authed) -> JSONResponse:
    """A sweep of at most one slice's consumptions answers at once; a bigger one answers 202
    with the job to poll (`GET /v1/jobs/{id}`), carried on in the background."""
    require_operator(who)  # before the input is read: others learn nothing of it
    today = context_of(request).clock()
    as_of = check_as_of(body.as_of or today, today, 0)  # silence confirms nothing early
    # In slices, each its own group commit (ledger/flows/sweeps.py): tills write between two.
    slice_max = sweeps.auto_confirm_slice_consumptions_max
    return await answer_job(request, who, auto_confirm_steps(who, as_of, slice_max),
                            slice_max, 200)


# -- refunds, disputes ---------------------------------------------------------------------


@router.post("/cards/{card_id}/refunds", status_code=201, response_model=Refund,
             **keyed_write(404))
async def refund_card(request: Request, card_id: Id, body: RefundIn, who: Authed
                      ) -> JSONResponse:
    command = RefundCard(who, card_id, body.reason, context_of(request).clock())
    return await write(request, who, command)


@router.post("/cards/{card_id}/consumer-refunds", status_code=201, response_model=Refund,
             **keyed_write(404))
async def consumer_refund(request: Request, card_id: Id, body: RefundIn, who: Authed
                          ) -> JSONResponse:
    """The cardholder asks for their money back, with their own consumer key."""
    who.require_consumer()
    command = RefundCard(who, card_id, body.reason, context_of(request).clock())
    return await write(request, who, command)


@router.post("/cards/{card_id}/dispute", response_model=Dispute,
             **keyed_write(404, body=False))
async def dispute_card(request: Request, card_id: Id, who: Authed) -> JSONResponse:
    """Opened by the cardholder (their consumer key) or an operator."""
    return await write(request, who, OpenDispute(who, card_id), 200)


@router.post("/cards/{card_id}/dispute/resolve", response_model=Dispute, **keyed_write(404))
async def resolve_dispute(request: Request, card_id: Id, body: DisputeResolveIn, who: Authed
                          ) -> JSONResponse:
    return await write(request, who, ResolveDispute(who, card_id, body.outcome), 200)


# -- releases and refund instructions --------------------------------------------------------


@router.post("/releases/run", response_model=ReleaseRun,
             **job_write(404, what="A run over more merchants than one slice", body=True))
async def run_releases(request: Request, body: AsOfIn, who: Authed) -> JSONResponse:
    """A run over at most one slice's merchants answers at once; a bigger one answers 202
    with the job to poll (`GET /v1/jobs/{id}`), carried on in the background."""
    require_operator(who)  # before the input is read: others learn nothing of it
    today = context_of(request).clock()
    as_of = check_as_of(body.as_of or today, today, release_run_ahead_days_max)
    # In slices, each its own group commit (ledger/flows/sweeps.py): tills write between two.
    slice_max = sweeps.release_slice_merchants_max
    steps = release_steps(who, as_of, body.merchant_id, slice_max)
    return await answer_job(request, who, steps, slice_max, 200)


@router.get("/releases", response_model=ReleaseInstructions, **keyed_read())
def list_releases(request: Request, who: Authed,
                  wanted: Annotated[InstructionsQuery, Query()]) -> dict[str, Any]:
    """A page of release instructions by id."""
    which = views.InstructionFilter(wanted.status, wanted.merchant_id)
    with context_of(request).engine.connect() as conn:
        return views.instructions(conn, who, "releases", which, wanted.page())


@router.post("/releases/{release_id}/resolve", response_model=ResolvedRelease,
             **keyed_write(404))
async def resolve_release(request: Request, release_id: NumericId, body: ResolveIn,
                          who: Authed) -> JSONResponse:
    command: Command = SettleRelease(who, release_id) if body.outcome == "settled" \
        else FailRelease(who, release_id, body.reason)
    return await write(request, who, command, 200)


@router.get("/refunds", response_model=RefundInstructions, **keyed_read())
def list_refunds(request: Request, who: Authed,
                 wanted: Annotated[InstructionsQuery, Query()]) -> dict[str, Any]:
    """A page of refund instructions by id."""
    which = views.InstructionFilter(wanted.status, wanted.merchant_id)
    with context_of(request).engine.connect() as conn:
        return views.instructions(conn, who, "refunds", which, wanted.page())


@router.post("/refunds/{refund_id}/resolve", response_model=ResolvedRefund,
             **keyed_write(404))
async def resolve_refund(request: Request, refund_id: NumericId, body: ResolveIn, who: Authed
                         ) -> JSONResponse:
    command: Command = SettleRefund(who, refund_id) if body.outcome == "settled" \
        else FailRefund(who, refund_id, body.reason)
    return await write(request, who, command, 200)
