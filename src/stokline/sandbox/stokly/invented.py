"""Invented [I] Stokly contracts: resources stokline needs that no public Stokly client shows.

Every path below is an **assumption to confirm with Stokly**. They all live in this one module so
that renaming a path or a field when Stokly answers touches one file here and one in the client.
They follow the confirmed conventions: bearer auth, ``{"message"}`` errors, the list envelope
``{"metadata":{"count"},"data"}`` with ``page/size/sortField/sortDirection/filter``, and
``{"data":{"id"}}`` on create.

====================================  ==============================================================
Path                                  Assumption
====================================  ==============================================================
GET /v0/allocations                   Stock reserved by open sale orders per (item, location):
                                      itemId, itemSku, locationId, locationName, allocated. An order
                                      allocates against its locationId (an optional sale order
                                      field, also [I]) or, without one, against locationId null.
POST /v2/saleorders/{id}/shipments    Dispatch lines with carrier, service, trackingNumbers[],
                                      trackingUrl, locationId, items[{lineId, quantity}] (all
                                      outstanding lines when items is omitted). Lines not yet
                                      collected are collected from locationId first.
POST /v0/channels/{id}/listings       Link an item to a channel {itemId, referenceId (the remote
                                      variant id), dataSynchronised, inventorySynchronised}; one
                                      listing per (channel, item), else 409. Reading and PATCHing
                                      listings (/v0/channels/{id}/listings, /v0/listings/{id}) is [C].
GET /v2/saleorders/{id}/shipments     The shipments of one order.
GET /v0/shipments[/{id}]              Every shipment (filter e.g. [updatedAt]>={...}).
PATCH /v0/shipments/{id}              Change trackingNumbers, trackingUrl or carrier, or cancel with
                                      status: cancelled (the lines return to collected).
POST /v2/saleorders/{id}/refunds      A refund: sourceReferenceId (the channel's refund id, unique
                                      per order, else 409), reason, amount, items[{lineId, quantity,
                                      amount}], shippingAmount, payments[{method, amount,
                                      transactionId}]. A credit note number (CN-...) is issued with
                                      it.
GET /v2/saleorders/{id}/refunds       The refunds of one order.
GET /v0/refunds                       Every refund.
POST /v2/saleorders/{id}/payments     A payment record: kind (payment|refund), method, gateway,
                                      transactionId (unique per kind, else 409), amount, fee,
                                      currency, paidAt, reference (the channel's own payment
                                      reference, e.g. SHOPLINE's pay_seq).
GET /v2/saleorders/{id}/payments      The payments of one order.
GET /v0/payments                      Every payment.
POST /v0/journals                     A ledger journal {reference, date, currency, description,
                                      lines[{account, debit, credit, description}]}. Debits must
                                      equal credits to the penny (else 422); reference is unique
                                      (else 409 carrying the existing journalId).
GET /v0/journals[/{id}]               Posted journals.
GET /v0/events?after=<cursor>         The change feed, oldest first: {cursor, eventId, type,
                                      occurredAt, data}; metadata carries cursor (send it back as
                                      after) and hasMore; type=a,b keeps some types. Types:
                                      stock.movement (reason adjustment, goods_receipt or
                                      collection), shipment.created, shipment.updated,
                                      shipment.cancelled, saleorder.created, saleorder.updated,
                                      refund.created, payment.created, journal.posted, item.created,
                                      item.updated, item.deleted.
====================================  ==============================================================
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from stokline.sandbox.stokly.app import Authorized
from stokline.sandbox.stokly.domain import (
    OPEN_STAGES,
    allocations,
    collect_items,
    refresh_line_status,
    require_saleorder,
    whole_number,
)
from stokline.sandbox.stokly.errors import ApiError
from stokline.sandbox.stokly.listing import MAX_PAGE_SIZE, Listing, page_envelope
from stokline.sandbox.stokly.routes_catalogue import require_channel
from stokline.sandbox.stokly.state import StoklyState

__all__ = ["INVENTED_PATHS", "create_shipment", "router"]

#: (method, path) of every invented route, for docs and the client's assumption list.
INVENTED_PATHS = (
    ("POST", "/v0/channels/{id}/listings"),
    ("GET", "/v0/allocations"),
    ("POST", "/v2/saleorders/{id}/shipments"),
    ("GET", "/v2/saleorders/{id}/shipments"),
    ("GET", "/v0/shipments"),
    ("GET", "/v0/shipments/{id}"),
    ("PATCH", "/v0/shipments/{id}"),
    ("POST", "/v2/saleorders/{id}/refunds"),
    ("GET", "/v2/saleorders/{id}/refunds"),
    ("GET", "/v0/refunds"),
    ("POST", "/v2/saleorders/{id}/payments"),
    ("GET", "/v2/saleorders/{id}/payments"),
    ("GET", "/v0/payments"),
    ("POST", "/v0/journals"),
    ("GET", "/v0/journals"),
    ("GET", "/v0/journals/{id}"),
    ("GET", "/v0/events"),
)

router = APIRouter(tags=["[I] invented contracts"])

_PENNY = Decimal("0.01")


def _money(value: Any, where: str, *, allow_zero: bool = True) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, f"{where} must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ApiError(400, f"{where} must be a number") from exc
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ApiError(400, f"{where} must be {'zero or ' if allow_zero else ''}positive")
    if amount != amount.quantize(_PENNY):
        raise ApiError(400, f"{where} has more than two decimal places")
    return amount.quantize(_PENNY, rounding=ROUND_HALF_UP)


# -- listings ------------------------------------------------------------------------------------


@router.post("/v0/channels/{channel_id}/listings", summary="[I] Link an item to a channel")
def create_listing(
    channel_id: str,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"itemId": "<itemId>", "referenceId": "<remote variant id>"}]),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        require_channel(state, channel_id)
        item = state.items.get(body.get("itemId") or "")
        if item is None:
            raise ApiError(422, f"Item {body.get('itemId')} does not exist")
        for listing in state.listings:
            if listing["channelId"] == channel_id and listing["itemId"] == item["itemId"]:
                raise ApiError(
                    409,
                    "The item is already listed on this channel",
                    listingId=listing["listingId"],
                )
        listing = {
            "listingId": state.new_id(),
            "channelId": channel_id,
            "itemId": item["itemId"],
            "referenceId": body.get("referenceId"),
            "sku": item["sku"],
            "dataSynchronised": bool(body.get("dataSynchronised", False)),
            "inventorySynchronised": bool(body.get("inventorySynchronised", False)),
            "createdAt": state.now(),
        }
        state.listings.add(listing["listingId"], listing)
        return {"data": {"id": listing["listingId"]}}


# -- allocations ---------------------------------------------------------------------------------


@router.get("/v0/allocations", summary="[I] Stock allocated to open sale orders")
def list_allocations(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(allocations(ctx.state), query)


# -- shipments -----------------------------------------------------------------------------------


def create_shipment(state: StoklyState, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Dispatch lines of a sale order (collecting what is not yet collected) with tracking."""
    order = require_saleorder(state, order_id)
    if order["stage"] not in OPEN_STAGES:
        raise ApiError(422, f"Sale order {order_id} is {order['stage']}; it cannot be shipped")
    location_id = body.get("locationId") or order.get("locationId")
    if not location_id:
        raise ApiError(400, "locationId is required (the order has no location)")
    if state.locations.get(location_id) is None:
        raise ApiError(422, f"Location {location_id} does not exist")
    tracking = body.get("trackingNumbers") or []
    if not isinstance(tracking, list) or not all(isinstance(t, str) and t for t in tracking):
        raise ApiError(400, "trackingNumbers must be a list of non-empty strings")
    carrier = body.get("carrier")
    if not isinstance(carrier, str) or not carrier:
        raise ApiError(400, "carrier is required")
    lines = {line["lineId"]: line for line in order["items"]}
    requested = body.get("items")
    wanted: dict[str, int] = defaultdict(int)
    if requested is None:
        for line in order["items"]:
            left = line["quantity"] - line["quantityDispatched"]
            if line["status"] != "cancelled" and left > 0:
                wanted[line["lineId"]] = left
        if not wanted:
            raise ApiError(422, f"Sale order {order_id} has nothing left to ship")
    else:
        if not isinstance(requested, list) or not requested:
            raise ApiError(400, "items must be a non-empty list when given")
        for index, raw in enumerate(requested):
            if not isinstance(raw, dict) or raw.get("lineId") not in lines:
                raise ApiError(422, f"items[{index}].lineId is not a line of this order")
            quantity = whole_number(raw.get("quantity"), f"items[{index}].quantity")
            wanted[raw["lineId"]] += quantity
    to_collect = []
    for line_id, quantity in wanted.items():
        line = lines[line_id]
        left = line["quantity"] - line["quantityDispatched"]
        if line["status"] == "cancelled" or quantity > left:
            raise ApiError(422, f"Line {line_id} has {max(left, 0)} left to ship, not {quantity}")
        uncollected = line["quantityDispatched"] + quantity - line["quantityCollected"]
        if uncollected > 0:
            to_collect.append({"lineId": line_id, "quantity": uncollected})
    with state.store.transaction():
        if to_collect:
            collect_items(state, order_id, location_id, to_collect)
        order = dict(state.saleorders.get(order_id))
        order["items"] = [dict(line) for line in order["items"]]
        shipped = []
        for line in order["items"]:
            quantity = wanted.get(line["lineId"], 0)
            if quantity:
                line["quantityDispatched"] += quantity
                refresh_line_status(line)
                shipped.append(
                    {
                        "lineId": line["lineId"],
                        "itemId": line["referenceId"],
                        "itemSku": line["itemSku"],
                        "quantity": quantity,
                    }
                )
        now = state.now()
        if tracking and not order.get("carrierReference"):
            order["carrierReference"] = tracking[0]
        order["updatedAt"] = now
        state.saleorders.save(order_id, order)
        shipment = {
            "shipmentId": state.new_id(),
            "niceId": state.nice_id("shipment"),
            "saleOrderId": order_id,
            "saleOrderNiceId": order["niceId"],
            "sourceId": order.get("sourceId"),
            "sourceReferenceId": order.get("sourceReferenceId"),
            "locationId": location_id,
            "carrier": carrier,
            "service": body.get("service"),
            "trackingNumbers": tracking,
            "trackingUrl": body.get("trackingUrl"),
            "status": "dispatched",
            "items": shipped,
            "dispatchedAt": body.get("dispatchedAt") or now,
            "createdAt": now,
            "updatedAt": now,
        }
        state.shipments.add(shipment["shipmentId"], shipment)
        state.emit("shipment.created", _shipment_event(shipment))
    return shipment


def _shipment_event(shipment: dict[str, Any]) -> dict[str, Any]:
    keys = ("shipmentId", "saleOrderId", "sourceId", "sourceReferenceId", "status")
    return {key: shipment[key] for key in keys} | {"trackingNumbers": shipment["trackingNumbers"]}


@router.post("/v2/saleorders/{order_id}/shipments", summary="[I] Dispatch lines with tracking")
def post_shipment(
    order_id: str,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "locationId": "<locationId>",
                    "carrier": "royal-mail",
                    "service": "RM48",
                    "trackingNumbers": ["RM123456785GB"],
                    "items": [{"lineId": "<lineId>", "quantity": 1}],
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": {"id": create_shipment(ctx.state, order_id, body)["shipmentId"]}}


@router.get("/v2/saleorders/{order_id}/shipments", summary="[I] Shipments of a sale order")
def list_order_shipments(order_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        require_saleorder(state, order_id)
        return page_envelope([s for s in state.shipments if s["saleOrderId"] == order_id], query)


@router.get("/v0/shipments", summary="[I] All shipments")
def list_shipments(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.shipments), query)


def _require_shipment(state: StoklyState, shipment_id: str) -> dict[str, Any]:
    shipment = state.shipments.get(shipment_id)
    if shipment is None:
        raise ApiError(404, f"Shipment {shipment_id} not found")
    return shipment


@router.get("/v0/shipments/{shipment_id}", summary="[I] Get a shipment")
def get_shipment(shipment_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": _require_shipment(ctx.state, shipment_id)}


def update_shipment(state: StoklyState, shipment_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change tracking details or cancel a shipment (its lines go back to collected)."""
    shipment = dict(_require_shipment(state, shipment_id))
    unknown = sorted(set(body) - {"trackingNumbers", "trackingUrl", "carrier", "status"})
    if unknown:
        raise ApiError(400, f"These shipment fields cannot be patched: {', '.join(unknown)}")
    if "status" in body and body["status"] != "cancelled":
        raise ApiError(400, "status can only be set to 'cancelled'")
    if shipment["status"] == "cancelled":
        raise ApiError(422, f"Shipment {shipment_id} is already cancelled")
    tracking = body.get("trackingNumbers", shipment["trackingNumbers"])
    if not isinstance(tracking, list) or not all(isinstance(t, str) and t for t in tracking):
        raise ApiError(400, "trackingNumbers must be a list of non-empty strings")
    cancelled = body.get("status") == "cancelled"
    shipment.update({key: value for key, value in body.items() if key != "status"})
    shipment["updatedAt"] = state.now()
    with state.store.transaction():
        if cancelled:
            shipment["status"] = "cancelled"
            order = dict(state.saleorders.get(shipment["saleOrderId"]))
            order["items"] = [dict(line) for line in order["items"]]
            returned = {line["lineId"]: line["quantity"] for line in shipment["items"]}
            for line in order["items"]:
                if line["lineId"] in returned:
                    line["quantityDispatched"] -= returned[line["lineId"]]
                    refresh_line_status(line)
            order["updatedAt"] = shipment["updatedAt"]
            state.saleorders.save(order["saleOrderId"], order)
        state.shipments.save(shipment_id, shipment)
        event = "shipment.cancelled" if cancelled else "shipment.updated"
        state.emit(event, _shipment_event(shipment))
    return shipment


@router.patch("/v0/shipments/{shipment_id}", summary="[I] Update or cancel a shipment")
def patch_shipment(
    shipment_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"trackingNumbers": ["RM987654321GB"]}])],
    ctx: Authorized,
) -> dict[str, Any]:
    with ctx.state.lock:
        update_shipment(ctx.state, shipment_id, body)
        return {"data": {"id": shipment_id}}


# -- refunds -------------------------------------------------------------------------------------


@router.post("/v2/saleorders/{order_id}/refunds", summary="[I] Refund a sale order")
def post_refund(
    order_id: str,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "sourceReferenceId": "RF-1001",
                    "reason": "damaged",
                    "currency": "GBP",
                    "amount": 49.99,
                    "items": [{"lineId": "<lineId>", "quantity": 1, "amount": 49.99}],
                    "shippingAmount": 0,
                    "payments": [{"method": 4, "amount": 49.99, "transactionId": "tx_123"}],
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        order = require_saleorder(state, order_id)
        reference = body.get("sourceReferenceId")
        if reference is not None:
            for refund in state.refunds:
                if refund["saleOrderId"] == order_id and refund["sourceReferenceId"] == reference:
                    raise ApiError(
                        409,
                        f"Refund {reference} already recorded on this sale order",
                        refundId=refund["refundId"],
                    )
        currency = body.get("currency", order["currency"])
        if currency != order["currency"]:
            raise ApiError(422, f"currency {currency} differs from the order's")
        amount = _money(body.get("amount"), "amount", allow_zero=False)
        lines = {line["lineId"]: line for line in order["items"]}
        refunded: dict[str, int] = defaultdict(int)
        for refund in state.refunds:
            if refund["saleOrderId"] == order_id:
                for line in refund["items"]:
                    refunded[line["lineId"]] += line["quantity"]
        items = body.get("items") or []
        parts = _money(body.get("shippingAmount", 0), "shippingAmount")
        for index, raw in enumerate(items):
            where = f"items[{index}]"
            if not isinstance(raw, dict) or raw.get("lineId") not in lines:
                raise ApiError(422, f"{where}.lineId is not a line of this order")
            line = lines[raw["lineId"]]
            quantity = whole_number(raw.get("quantity", 0), f"{where}.quantity", minimum=0)
            if refunded[line["lineId"]] + quantity > line["quantity"]:
                raise ApiError(
                    422, f"{where}: refunding {quantity} would exceed the line's quantity"
                )
            refunded[line["lineId"]] += quantity
            parts += _money(raw.get("amount", 0), f"{where}.amount")
        if items and parts != amount:
            raise ApiError(422, f"amount {amount} differs from the sum of its parts {parts}")
        payments = body.get("payments") or []
        for index, payment in enumerate(payments):
            if not isinstance(payment, dict) or not isinstance(payment.get("method"), int):
                raise ApiError(400, f"payments[{index}].method must be an integer")
            _money(payment.get("amount"), f"payments[{index}].amount")
        now = state.now()
        nice = state.nice_id("refund")
        refund = {
            "refundId": state.new_id(),
            "niceId": nice,
            "creditNoteNumber": f"CN-{nice:06d}",
            "saleOrderId": order_id,
            "sourceId": order.get("sourceId"),
            "sourceReferenceId": reference,
            "reason": body.get("reason"),
            "currency": currency,
            "amount": float(amount),
            "shippingAmount": float(_money(body.get("shippingAmount", 0), "shippingAmount")),
            "items": [
                {
                    "lineId": raw["lineId"],
                    "itemId": lines[raw["lineId"]]["referenceId"],
                    "quantity": whole_number(raw.get("quantity", 0), "quantity", minimum=0),
                    "amount": float(_money(raw.get("amount", 0), "amount")),
                }
                for raw in items
            ],
            "payments": payments,
            "createdAt": now,
        }
        with state.store.transaction():
            state.refunds.add(refund["refundId"], refund)
            state.emit(
                "refund.created",
                {
                    "refundId": refund["refundId"],
                    "saleOrderId": order_id,
                    "amount": refund["amount"],
                },
            )
        return {"data": {"id": refund["refundId"]}}


@router.get("/v2/saleorders/{order_id}/refunds", summary="[I] Refunds of a sale order")
def list_order_refunds(order_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        require_saleorder(ctx.state, order_id)
        return page_envelope([r for r in ctx.state.refunds if r["saleOrderId"] == order_id], query)


@router.get("/v0/refunds", summary="[I] All refunds")
def list_refunds(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.refunds), query)


# -- payments ------------------------------------------------------------------------------------


@router.post("/v2/saleorders/{order_id}/payments", summary="[I] Record a gateway payment")
def post_payment(
    order_id: str,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "kind": "payment",
                    "method": 4,
                    "gateway": "shopline_payments",
                    "transactionId": "tx_123",
                    "amount": 53.98,
                    "currency": "GBP",
                    "paidAt": "2026-11-27T09:00:00.000Z",
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        order = require_saleorder(state, order_id)
        kind = body.get("kind", "payment")
        if kind not in ("payment", "refund"):
            raise ApiError(400, "kind must be 'payment' or 'refund'")
        if not isinstance(body.get("method"), int) or isinstance(body.get("method"), bool):
            raise ApiError(400, "method must be an integer payment method id")
        transaction_id = body.get("transactionId")
        if not isinstance(transaction_id, str) or not transaction_id:
            raise ApiError(400, "transactionId is required")
        for payment in state.payments:
            if payment["transactionId"] == transaction_id and payment["kind"] == kind:
                raise ApiError(
                    409,
                    f"A {kind} with transactionId {transaction_id} is already recorded",
                    paymentId=payment["paymentId"],
                )
        currency = body.get("currency", order["currency"])
        if currency != order["currency"]:
            raise ApiError(422, f"currency {currency} differs from the order's")
        amount = _money(body.get("amount"), "amount", allow_zero=False)
        fee = _money(body.get("fee", 0), "fee")
        payment = {
            "paymentId": state.new_id(),
            "saleOrderId": order_id,
            "sourceId": order.get("sourceId"),
            "kind": kind,
            "method": body["method"],
            "gateway": body.get("gateway"),
            "transactionId": transaction_id,
            "amount": float(amount),
            "fee": float(fee),
            "currency": currency,
            "paidAt": body.get("paidAt") or state.now(),
            "reference": body.get("reference"),
            "createdAt": state.now(),
        }
        with state.store.transaction():
            state.payments.add(payment["paymentId"], payment)
            state.emit(
                "payment.created",
                {"paymentId": payment["paymentId"], "saleOrderId": order_id, "kind": kind},
            )
        return {"data": {"id": payment["paymentId"]}}


@router.get("/v2/saleorders/{order_id}/payments", summary="[I] Payments of a sale order")
def list_order_payments(order_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        require_saleorder(ctx.state, order_id)
        rows = [p for p in ctx.state.payments if p["saleOrderId"] == order_id]
        return page_envelope(rows, query)


@router.get("/v0/payments", summary="[I] All payments")
def list_payments(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.payments), query)


# -- journals ------------------------------------------------------------------------------------


def validate_journal(body: dict[str, Any]) -> tuple[list[dict[str, Any]], Decimal]:
    """Check a journal body; return its normalised lines and total. Unbalanced → 422."""
    reference = body.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise ApiError(400, "reference is required")
    currency = body.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ApiError(400, "currency is required (ISO 4217 code)")
    if not isinstance(body.get("date"), str):
        raise ApiError(400, "date is required (YYYY-MM-DD)")
    raw_lines = body.get("lines")
    if not isinstance(raw_lines, list) or len(raw_lines) < 2:
        raise ApiError(400, "lines must hold at least two lines")
    lines = []
    debits = credits = Decimal(0)
    for index, raw in enumerate(raw_lines):
        where = f"lines[{index}]"
        if not isinstance(raw, dict):
            raise ApiError(400, f"{where} must be an object")
        account = raw.get("account")
        if not isinstance(account, str) or not account.strip():
            raise ApiError(400, f"{where}.account is required")
        debit = _money(raw.get("debit", 0), f"{where}.debit")
        credit = _money(raw.get("credit", 0), f"{where}.credit")
        if (debit > 0) == (credit > 0):
            raise ApiError(400, f"{where} needs exactly one of debit or credit above zero")
        debits += debit
        credits += credit
        lines.append({**raw, "account": account, "debit": float(debit), "credit": float(credit)})
    if debits != credits:
        raise ApiError(
            422,
            f"Journal is not balanced: debits {debits} != credits {credits} "
            f"(difference {debits - credits})",
        )
    return lines, debits


@router.post("/v0/journals", summary="[I] Post a balanced ledger journal")
def post_journal(
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "reference": "demo-outdoor:2026-11-26:shopline_payments:GBP",
                    "date": "2026-11-26",
                    "currency": "GBP",
                    "description": "SHOPLINE takings",
                    "lines": [
                        {"account": "1210", "debit": 120.0, "credit": 0},
                        {"account": "4000", "debit": 0, "credit": 100.0},
                        {"account": "2200", "debit": 0, "credit": 20.0},
                    ],
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        lines, total = validate_journal(body)
        for journal in state.journals:
            if journal["reference"] == body["reference"]:
                raise ApiError(
                    409,
                    f"A journal with reference {body['reference']} is already posted",
                    journalId=journal["journalId"],
                )
        journal = {
            "journalId": state.new_id(),
            "niceId": state.nice_id("journal"),
            "reference": body["reference"],
            "date": body["date"],
            "currency": body["currency"],
            "description": body.get("description"),
            "status": "posted",
            "total": float(total),
            "lines": lines,
            "createdAt": state.now(),
        }
        with state.store.transaction():
            state.journals.add(journal["journalId"], journal)
            state.emit(
                "journal.posted",
                {"journalId": journal["journalId"], "reference": journal["reference"]},
            )
        return {"data": {"id": journal["journalId"]}}


@router.get("/v0/journals", summary="[I] Posted journals")
def list_journals(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope(list(ctx.state.journals), query)


@router.get("/v0/journals/{journal_id}", summary="[I] Get a journal")
def get_journal(journal_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        journal = ctx.state.journals.get(journal_id)
        if journal is None:
            raise ApiError(404, f"Journal {journal_id} not found")
        return {"data": journal}


# -- change feed ---------------------------------------------------------------------------------


@router.get("/v0/events", summary="[I] Change feed of stock movements, shipments and more")
def list_events(
    ctx: Authorized,
    after: Annotated[
        str, Query(description="Cursor from the previous page; 0 for the beginning.")
    ] = "0",
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Events per page.")] = 100,
    type: Annotated[str | None, Query(description="Comma-separated event types to keep.")] = None,
) -> dict[str, Any]:
    if not after.isdigit():
        raise ApiError(400, f"after {after!r} is not a cursor returned by this feed")
    cursor = int(after)
    wanted = {t.strip() for t in type.split(",") if t.strip()} if type else None
    data: list[dict[str, Any]] = []
    has_more = False
    scanned_to = cursor
    # Scan in chunks so a type filter cannot return an empty page while events remain.
    while len(data) < size:
        chunk = ctx.state.events_after(scanned_to, size + 1)
        if not chunk:
            break
        for seq, event in chunk:
            if len(data) == size:
                has_more = True
                break
            scanned_to = seq
            if wanted is None or event["type"] in wanted:
                data.append({"cursor": str(seq), **event})
        if has_more or len(chunk) <= size:
            break
    if not has_more and len(data) == size:
        has_more = bool(ctx.state.events_after(scanned_to, 1))
    return {
        "metadata": {"count": len(data), "cursor": str(scanned_to), "hasMore": has_more},
        "data": data,
    }
