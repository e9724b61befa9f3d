"""The control API under ``/_sandbox/``: reset, faults, rate limit and a simulated warehouse.

These routes are not Stokly's: they let the demo, rehearsals and tests drive the account the way
warehouse staff would (receive goods, count stock, pick and dispatch orders) and make the API
misbehave. They need no token, are never rate limited and never faulted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from stokline.sandbox.common import Faults
from stokline.sandbox.stokly.app import SandboxContext, context
from stokline.sandbox.stokly.domain import adjust_stock, require_saleorder, set_quarantine
from stokline.sandbox.stokly.errors import ApiError
from stokline.sandbox.stokly.invented import create_shipment, update_shipment
from stokline.sandbox.stokly.state import StoklyState

__all__ = ["router"]

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


def _location_id(state: StoklyState, ref: str) -> str:
    """A location by id or (case-insensitive) name."""
    if state.locations.get(ref) is not None:
        return ref
    for location in state.locations:
        if location["name"].lower() == ref.lower():
            return location["locationId"]
    names = ", ".join(sorted(loc["name"] for loc in state.locations))
    raise ApiError(404, f"No location {ref!r}; locations: {names}")


def _item_id(state: StoklyState, line: StockLine) -> str:
    if line.itemId:
        if state.items.get(line.itemId) is None:
            raise ApiError(404, f"No item {line.itemId}")
        return line.itemId
    if line.sku:
        found = state.item_by_sku.get(line.sku)
        if found is None:
            lowered = line.sku.lower()
            found = next((i for s, i in state.item_by_sku.items() if s.lower() == lowered), None)
        if found is None:
            raise ApiError(404, f"No item with SKU {line.sku}")
        return found
    raise ApiError(400, "each line needs a sku or an itemId")


class StockLine(BaseModel):
    sku: str | None = Field(None, description="Stokly SKU (case-insensitive).")
    itemId: str | None = None
    quantity: int = Field(description="Units received (positive) or the signed delta.")


class StockMove(BaseModel):
    location: str = Field(description="Location id or name, e.g. 'Leeds DC'.")
    binId: str | None = None
    reference: str | None = Field(None, description="Delivery note, count sheet, …")
    items: list[StockLine] = Field(min_length=1)


@router.post("/goods-receipt", summary="Receive goods into a location")
def goods_receipt(body: StockMove, request: Request) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        lines = [(_item_id(state, line), line.quantity) for line in body.items]
        if any(quantity <= 0 for _, quantity in lines):
            raise ApiError(400, "a goods receipt only adds stock: quantities must be positive")
        result = adjust_stock(
            state,
            location_id=_location_id(state, body.location),
            bin_id=body.binId,
            reason=body.reference or "goods receipt",
            lines=lines,
            kind="goods_receipt",
        )
        return {"data": result}


@router.post("/adjust", summary="Adjust stock by signed deltas (a stock count)")
def adjust(body: StockMove, request: Request) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        result = adjust_stock(
            state,
            location_id=_location_id(state, body.location),
            bin_id=body.binId,
            reason=body.reference or "stock count",
            lines=[(_item_id(state, line), line.quantity) for line in body.items],
        )
        return {"data": result}


@router.post("/quarantine", summary="Set the quarantined units of stock rows")
def quarantine(body: StockMove, request: Request) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        rows = set_quarantine(
            state,
            location_id=_location_id(state, body.location),
            bin_id=body.binId,
            lines=[(_item_id(state, line), line.quantity) for line in body.items],
        )
        keys = ("itemId", "binId", "onHand", "quarantined")
        return {"data": [{key: row[key] for key in keys} for row in rows]}


class DispatchLine(BaseModel):
    lineId: str | None = None
    sku: str | None = None
    quantity: int = Field(ge=1)


class Dispatch(BaseModel):
    saleOrderId: str | None = None
    sourceReferenceId: str | None = Field(
        None, description="Find the order by the channel's order id instead."
    )
    location: str | None = Field(None, description="Location id or name; default: the order's.")
    carrier: str = "royal-mail"
    service: str | None = None
    trackingNumbers: list[str] = Field(default_factory=list)
    trackingUrl: str | None = None
    items: list[DispatchLine] | None = Field(
        None, description="Lines to ship (partial shipment); all outstanding lines when omitted."
    )


def _find_order(state: StoklyState, body: Dispatch) -> dict[str, Any]:
    if body.saleOrderId:
        return require_saleorder(state, body.saleOrderId)
    if body.sourceReferenceId:
        for order in state.saleorders:
            if order.get("sourceReferenceId") == body.sourceReferenceId:
                return order
        raise ApiError(404, f"No sale order with sourceReferenceId {body.sourceReferenceId}")
    raise ApiError(400, "give saleOrderId or sourceReferenceId")


@router.post("/dispatch", summary="Pick and dispatch a sale order (fully or partly)")
def dispatch(body: Dispatch, request: Request) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        order = _find_order(state, body)
        payload: dict[str, Any] = {
            "carrier": body.carrier,
            "service": body.service,
            "trackingNumbers": body.trackingNumbers,
            "trackingUrl": body.trackingUrl,
        }
        if body.location:
            payload["locationId"] = _location_id(state, body.location)
        if body.items is not None:
            lines = []
            for wanted in body.items:
                line_id = wanted.lineId
                if line_id is None and wanted.sku:
                    line_id = next(
                        (
                            line["lineId"]
                            for line in order["items"]
                            if line["itemSku"].lower() == wanted.sku.lower()
                        ),
                        None,
                    )
                if line_id is None:
                    raise ApiError(404, f"No line for {wanted.sku or wanted.lineId} on the order")
                lines.append({"lineId": line_id, "quantity": wanted.quantity})
            payload["items"] = lines
        shipment = create_shipment(state, order["saleOrderId"], payload)
        return {"data": shipment}


@router.get("/awaiting-dispatch", summary="Sale orders with lines still to ship, oldest first")
def awaiting_dispatch(request: Request, limit: int = 50) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        waiting = []
        for order in state.saleorders:
            if order.get("stage") != "order":
                continue
            left = [
                {
                    "lineId": line["lineId"],
                    "sku": line["itemSku"],
                    "left": line["quantity"] - line["quantityDispatched"],
                }
                for line in order["items"]
                if line.get("status") != "cancelled"
                and line["quantity"] > line["quantityDispatched"]
            ]
            if left:
                waiting.append(
                    {
                        "saleOrderId": order["saleOrderId"],
                        "sourceReferenceId": order.get("sourceReferenceId"),
                        "lines": left,
                    }
                )
            if len(waiting) >= limit:
                break
        return {"data": waiting}


@router.post("/shipments/{shipment_id}/cancel", summary="Cancel a shipment")
def cancel_shipment(shipment_id: str, request: Request) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        return {"data": update_shipment(state, shipment_id, {"status": "cancelled"})}


@router.post("/expire-tokens", summary="Expire every issued token (next call gets 'jwt expired')")
def expire_tokens(request: Request) -> dict[str, Any]:
    return {"data": {"expired": context(request).expire_tokens()}}


class FaultChange(BaseModel):
    profile: str | None = Field(
        None, description="none, flaky, hostile or malformed; applied first."
    )
    changes: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of Faults to override, e.g. error_rate, malformed_rate, seed.",
    )


@router.get("/faults", summary="Current fault settings")
def get_faults(request: Request) -> dict[str, Any]:
    return {"data": context(request).faults.as_dict()}


@router.put("/faults", summary="Change fault settings")
def put_faults(body: FaultChange, request: Request) -> dict[str, Any]:
    ctx = context(request)
    try:
        faults = Faults.profile(body.profile) if body.profile else ctx.faults
        faults.update(**body.changes)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    ctx.faults = faults
    return {"data": faults.as_dict()}


@router.get("/faults/injected", summary="Malformed answers sent so far, by kind")
def get_injected(request: Request) -> dict[str, Any]:
    return {"data": {"injected": context(request).faults.injected}}


class RateLimit(BaseModel):
    rate_per_minute: int | None = Field(
        description="Requests a minute (bucket capacity and drain rate); null disables limiting.",
        ge=1,
    )


@router.get("/rate-limit", summary="Current rate limit")
def get_rate_limit(request: Request) -> dict[str, Any]:
    ctx = context(request)
    return {"data": {"rate_per_minute": ctx.rate_per_minute, "remaining": ctx.bucket.remaining()}}


@router.put("/rate-limit", summary="Change the rate limit")
def put_rate_limit(body: RateLimit, request: Request) -> dict[str, Any]:
    ctx = context(request)
    ctx.configure_rate(body.rate_per_minute)
    return {"data": {"rate_per_minute": ctx.rate_per_minute}}


class Reset(BaseModel):
    seed: bool = Field(True, description="Seed the demo client after clearing.")
    skus: int = Field(300, ge=8, le=50000)
    seed_value: int = Field(7, description="Random seed of the demo catalogue.")


@router.post("/reset", summary="Forget everything (and reseed the demo client)")
def reset(body: Reset, request: Request) -> dict[str, Any]:
    from stokline.sandbox.stokly.seed import seed_demo

    ctx: SandboxContext = context(request)
    with ctx.state.lock:
        ctx.store.clear()
        if body.seed:
            seed_demo(ctx.store, skus=body.skus, seed=body.seed_value)
        ctx.state.reload()
        ctx.bucket.reset()
    return {"data": summary(ctx.state)}


def summary(state: StoklyState) -> dict[str, Any]:
    """Counts per resource, and duplicate sale orders (the orders sync must never make any)."""
    keys = Counter(
        (o.get("sourceId"), o.get("sourceReferenceId"))
        for o in state.saleorders
        if o.get("sourceReferenceId")
    )
    return {
        "counts": {kind: len(collection) for kind, collection in state.c.items()}
        | {"event": state.store.count("event")},
        "duplicateSaleOrders": sorted(ref for (_, ref), n in keys.items() if n > 1),
    }


@router.get("/state", summary="Counts and integrity checks")
def get_state(request: Request) -> dict[str, Any]:
    state = context(request).state
    with state.lock:
        return {"data": summary(state)}
