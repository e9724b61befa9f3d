"""Confirmed [C] sale order (v2) and invoice resources."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from stokline.sandbox.stokly.app import Authorized
from stokline.sandbox.stokly.domain import (
    collect_items,
    create_saleorder,
    line_view,
    require_saleorder,
    saleorder_view,
)
from stokline.sandbox.stokly.errors import ApiError
from stokline.sandbox.stokly.listing import Listing, page_envelope
from stokline.sandbox.stokly.state import StoklyState

__all__ = ["router"]

router = APIRouter()

_EXAMPLE_ORDER = {
    "stage": "order",
    "createdAt": "2026-11-27T09:00:00.000Z",
    "currency": "GBP",
    "sourceType": "other",
    "sourceId": "3f0b6a52-6c1e-4d7a-9a51-5b0f1f2c7e01",
    "sourceReferenceId": "21000001",
    "customerReference": "SL1001",
    "tags": ["shopline"],
    "customer": {"customerId": "<customerId>"},
    "shipping": {
        "name": {"forename": "Ada", "surname": "Lovelace"},
        "address": {
            "line1": "1 Park Row",
            "line2": "",
            "city": "Leeds",
            "region": "West Yorkshire",
            "country": "GB",
            "postcode": "LS1 5AB",
        },
        "option": "RM48",
        "cost": 3.99,
        "tax": 0.67,
    },
    "items": [
        {
            "type": "item",
            "referenceId": "<itemId>",
            "quantity": 1,
            "displayPrice": 49.99,
            "displayTax": 8.33,
            "displayDiscount": 0,
            "displayLinePrice": 49.99,
            "displayLineTax": 8.33,
            "displayLineDiscount": 0,
            "displayLineTotal": 49.99,
            "fulfilmentType": "delivery",
        }
    ],
    "payments": [{"method": 4, "amount": 53.98}],
}


@router.post("/v2/saleorders", tags=["sale orders"], summary="Create a sale order")
def post_saleorder(
    body: Annotated[dict[str, Any], Body(examples=[_EXAMPLE_ORDER])],
    ctx: Authorized,
) -> dict[str, Any]:
    with ctx.state.lock:
        order = create_saleorder(ctx.state, body)
        return {"data": {"id": order["saleOrderId"]}}


@router.get("/v2/saleorders", tags=["sale orders"], summary="List sale orders")
def list_saleorders(query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        return page_envelope((saleorder_view(state, o) for o in state.saleorders), query)


@router.get("/v2/saleorders/{order_id}", tags=["sale orders"], summary="Get a sale order")
def get_saleorder(order_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return {"data": saleorder_view(ctx.state, require_saleorder(ctx.state, order_id))}


@router.get("/v2/saleorders/{order_id}/items", tags=["sale orders"], summary="Sale order lines")
def list_saleorder_items(order_id: str, query: Listing, ctx: Authorized) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        order = require_saleorder(state, order_id)
        return page_envelope((line_view(state, line) for line in order["items"]), query)


_PATCHABLE = {"tags", "customerReference", "notes", "carrierReference", "stage", "locationId"}


@router.patch("/v2/saleorders/{order_id}", tags=["sale orders"], summary="Update a sale order")
def patch_saleorder(
    order_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"tags": ["shopline", "web"]}])],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        order = dict(require_saleorder(state, order_id))
        unknown = sorted(set(body) - _PATCHABLE)
        if unknown:
            raise ApiError(400, f"These sale order fields cannot be patched: {', '.join(unknown)}")
        if "tags" in body and (
            not isinstance(body["tags"], list) or not all(isinstance(t, str) for t in body["tags"])
        ):
            raise ApiError(400, "tags must be a list of strings")
        if "stage" in body:
            if body["stage"] not in ("order", "removed"):
                raise ApiError(400, "stage must be 'order' or 'removed'")
            if order["stage"] == "removed" and body["stage"] == "order":
                raise ApiError(422, "A removed sale order cannot be reopened")
        if body.get("locationId") is not None and state.locations.get(body["locationId"]) is None:
            raise ApiError(422, f"Location {body['locationId']} does not exist")
        order.update(body)
        order["updatedAt"] = state.now()
        with state.store.transaction():
            state.saleorders.save(order_id, order)
            state.emit(
                "saleorder.updated",
                {"saleOrderId": order_id, "stage": order["stage"], "fields": sorted(body)},
            )
        return {"data": {"id": order_id}}


class CollectLine(BaseModel):
    lineId: str
    quantity: int


class CollectRequest(BaseModel):
    """Body of `POST /v2/saleorders/{id}/collect-items` [C]."""

    locationId: str
    items: list[CollectLine] = Field(min_length=1)


@router.post(
    "/v2/saleorders/{order_id}/collect-items",
    tags=["sale orders"],
    status_code=202,
    summary="Fulfil lines from a location",
)
def post_collect_items(order_id: str, body: CollectRequest, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        collect_items(
            ctx.state, order_id, body.locationId, [line.model_dump() for line in body.items]
        )
        return {"data": {"id": order_id}}


# -- invoices ------------------------------------------------------------------------------------


def _invoice(
    state: StoklyState, order: dict[str, Any], raw: dict[str, Any], where: str
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ApiError(400, f"{where} must be an object")
    status = raw.get("status", "paid")
    if status not in ("draft", "unpaid", "paid"):
        raise ApiError(400, f"{where}.status must be draft, unpaid or paid")
    currency = raw.get("currency", order["currency"])
    if currency != order["currency"]:
        raise ApiError(422, f"{where}.currency {currency} differs from the order's")
    items = raw.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError(400, f"{where}.items must be a non-empty list")
    total = 0.0
    for index, line in enumerate(items):
        at = f"{where}.items[{index}]"
        if not isinstance(line, dict):
            raise ApiError(400, f"{at} must be an object")
        if (
            line.get("referenceType", "item") == "item"
            and state.items.get(line.get("referenceId") or "") is None
        ):
            raise ApiError(422, f"{at}.referenceId {line.get('referenceId')} is not a known item")
        quantity = line.get("quantity", 1)
        price = line.get("displayPrice", 0)
        if not isinstance(quantity, int | float) or not isinstance(price, int | float):
            raise ApiError(400, f"{at}.quantity and displayPrice must be numbers")
        total += quantity * price
    payments = raw.get("payments") or []
    for index, payment in enumerate(payments):
        if not isinstance(payment, dict) or not isinstance(payment.get("method"), int):
            raise ApiError(400, f"{where}.payments[{index}].method must be an integer")
    now = state.now()
    nice = state.nice_id("invoice")
    return {
        "saleInvoiceId": state.new_id(),
        "invoiceNumber": f"INV-{nice:06d}",
        "niceId": nice,
        "saleOrderId": order["saleOrderId"],
        "issueDate": raw.get("issueDate", now),
        "dueDate": raw.get("dueDate", now),
        "currency": currency,
        "status": status,
        "total": round(total, 2),
        "items": items,
        "payments": payments,
        "createdAt": now,
    }


@router.post("/v2/saleorders/{order_id}/invoices", tags=["invoices"], summary="Invoice an order")
def post_invoices(
    order_id: str,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "invoices": [
                        {
                            "status": "paid",
                            "currency": "GBP",
                            "payments": [{"method": 4, "amount": 49.99}],
                            "items": [
                                {
                                    "referenceType": "item",
                                    "referenceId": "<itemId>",
                                    "itemName": "Trail stove",
                                    "quantity": 1,
                                    "displayPrice": 49.99,
                                    "displayTax": 8.33,
                                }
                            ],
                        }
                    ]
                }
            ],
        ),
    ],
    ctx: Authorized,
) -> dict[str, Any]:
    state = ctx.state
    with state.lock:
        order = require_saleorder(state, order_id)
        raw = body.get("invoices")
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "invoices must be a non-empty list")
        invoices = [_invoice(state, order, inv, f"invoices[{n}]") for n, inv in enumerate(raw)]
        with state.store.transaction():
            for invoice in invoices:
                state.invoices.add(invoice["saleInvoiceId"], invoice)
        ids = [invoice["saleInvoiceId"] for invoice in invoices]
        return {"data": {"id": ids[0], "ids": ids}}


def _invoice_view(invoice: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in invoice.items() if key not in ("items", "payments")}


@router.get("/v0/invoices", tags=["invoices"], summary="List invoices")
def list_invoices(query: Listing, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        return page_envelope((_invoice_view(i) for i in ctx.state.invoices), query)


@router.get("/v0/invoices/{invoice_id}", tags=["invoices"], summary="Get an invoice")
def get_invoice(invoice_id: str, ctx: Authorized) -> dict[str, Any]:
    with ctx.state.lock:
        invoice = ctx.state.invoices.get(invoice_id)
        if invoice is None:
            raise ApiError(404, f"Invoice {invoice_id} not found")
        return {"data": invoice}
