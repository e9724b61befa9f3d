"""The sandbox's own control API under ``/_sandbox/`` (not part of SHOPLINE).

It plays the storefront and the merchant (place, pay, cancel, refund orders), changes faults
and the rate limit at runtime, resets the store and shows webhook deliveries. It needs no token
and is never rate-limited or faulted, so a rehearsal can always steer the sandbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stokline.sandbox.shopline import quirks
from stokline.sandbox.shopline.app import ShoplineSandbox
from stokline.sandbox.shopline.state import ApiError, money, public

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


def _sandbox(request: Request) -> ShoplineSandbox:
    return request.app.state.shopline


Sandbox = Annotated[ShoplineSandbox, Depends(_sandbox)]


class ResetRequest(BaseModel):
    """Wipe the store; reseed the demo data unless ``seed`` is false."""

    seed: bool = Field(True, description="Seed the demo data after wiping.")
    skus: int = Field(300, ge=1, le=50000, description="Number of catalogue SKUs to seed.")
    seed_value: int = Field(7, description="Random seed of the demo data.")


class FaultsRequest(BaseModel):
    """A profile name and/or single fields of :class:`~stokline.sandbox.common.Faults`."""

    model_config = ConfigDict(extra="allow")
    profile: str | None = Field(
        None,
        description=(
            "none, flaky, hostile or malformed; other keys change single fields, e.g."
            " malformed_rate, malformed_kinds, seed."
        ),
    )


class RateLimitRequest(BaseModel):
    """The leaky bucket of every token."""

    rate_per_s: float | None = Field(4.0, gt=0, description="Drain rate; null disables limiting.")
    burst: int = Field(40, ge=1, description="Bucket capacity.")


class WebhookSettings(BaseModel):
    """How deliveries are signed and retried."""

    signature_encoding: str | None = Field(None, description="hex (default) or base64.")
    retry_scale: float | None = Field(None, ge=0, description="Multiplier of the retry delays.")
    timeout_s: float | None = Field(None, gt=0, description="Seconds before an attempt fails.")


class StorefrontLine(BaseModel):
    """One line of a storefront order, by SHOPLINE SKU."""

    sku: str
    quantity: int = Field(1, ge=1)
    price: str | None = Field(None, description="Override the variant price (VAT-inclusive).")


class StorefrontCustomer(BaseModel):
    """The buyer; a storefront customer may have a phone and no email."""

    email: str | None = None
    phone: str | None = Field(None, max_length=20)
    area_code: str | None = "+44"
    first_name: str = ""
    last_name: str = ""


class StorefrontOrder(BaseModel):
    """An order placed as a buyer would, through checkout."""

    lines: list[StorefrontLine] = Field(min_length=1)
    customer: StorefrontCustomer | None = None
    shipping_title: str = "Royal Mail Tracked 48"
    gateway: str = "shopline_payments"
    paid: bool = True
    location_id: str | None = None
    note: str = ""
    buyer_note: str = ""
    order_source: str = "web"
    created_at: str | None = Field(None, description="Backdate the order (ISO 8601).")


class CancelRequest(BaseModel):
    """Cancel as the merchant would in the admin."""

    reason: str = "customer"


class RefundLine(BaseModel):
    """A line to refund."""

    line_item_id: str
    quantity: int = Field(1, ge=1)
    restock_type: str = "no_restock"


class RefundRequest(BaseModel):
    """A refund as the merchant would make it; empty means everything that is left."""

    lines: list[RefundLine] | None = None
    amount: str | None = Field(None, description="Refund exactly this amount.")
    shipping: bool = Field(False, description="Also refund shipping in full.")
    note: str = "Refunded by merchant"


@router.get("/health", summary="Liveness and identity")
def health(sandbox: Sandbox) -> dict[str, Any]:
    state = sandbox.state
    return {
        "ok": True,
        "shop_domain": state.shop_domain,
        "store_id": state.store_id,
        "merchant_id": state.merchant_id,
        "api_version": quirks.DEFAULT_API_VERSION,
    }


@router.get("/summary", summary="Counts of every resource")
def summary(sandbox: Sandbox) -> dict[str, Any]:
    store = sandbox.store
    kinds = ("product", "inventory_item", "inventory_level", "location", "customer", "order")
    counts = {kind: store.count(kind) for kind in kinds}
    counts.update(webhook=store.count("webhook"), delivery=store.count("delivery"))
    return counts


@router.post("/reset", summary="Wipe the store and reseed")
def reset(sandbox: Sandbox, body: ResetRequest | None = None) -> dict[str, Any]:
    body = body or ResetRequest()
    sandbox.reset(seed=body.seed, skus=body.skus, seed_value=body.seed_value)
    return summary(sandbox)


@router.get("/faults", summary="Current fault settings")
def get_faults(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.faults.as_dict()


@router.put("/faults", summary="Change the fault profile or single fields")
def put_faults(sandbox: Sandbox, body: FaultsRequest) -> dict[str, Any]:
    changes = dict(body.model_extra or {})
    try:
        return sandbox.set_faults(body.profile, **changes).as_dict()
    except (ValueError, TypeError) as exc:
        raise ApiError(422, str(exc)) from None


@router.get("/faults/injected", summary="Malformed answers sent so far, by kind")
def get_injected(sandbox: Sandbox) -> dict[str, Any]:
    return {"injected": sandbox.faults.injected}


@router.get("/rate_limit", summary="Current rate limit")
def get_rate_limit(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.rate_limit()


@router.put("/rate_limit", summary="Change the rate limit")
def put_rate_limit(sandbox: Sandbox, body: RateLimitRequest) -> dict[str, Any]:
    sandbox.configure_rate_limit(body.rate_per_s, body.burst)
    return sandbox.rate_limit()


@router.get("/webhook_settings", summary="Webhook signing and retry settings")
def get_webhook_settings(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.webhooks.settings()


@router.put("/webhook_settings", summary="Change webhook signing and retry settings")
def put_webhook_settings(sandbox: Sandbox, body: WebhookSettings) -> dict[str, Any]:
    try:
        sandbox.webhooks.configure(**body.model_dump())
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return sandbox.webhooks.settings()


@router.get("/skus", summary="SKUs the storefront sells")
def skus(sandbox: Sandbox) -> dict[str, Any]:
    out: list[str] = []
    for _, product in sandbox.store.scan("product"):
        if product.get("status") == "active":
            out.extend(v["sku"] for v in product["variants"] if v["sku"])
    return {"skus": out}


@router.post(
    "/orders",
    summary="Place an order as the storefront would",
    description="Sold-out variants with inventory_policy deny are refused (422), as at checkout.",
)
def place_order(sandbox: Sandbox, body: StorefrontOrder) -> dict[str, Any]:
    spec = body.model_dump()
    spec["line_items"] = [
        {"sku": line["sku"], "quantity": line["quantity"], "price": line["price"]}
        for line in spec.pop("lines")
    ]
    spec["checkout"] = True
    spec["customer"] = {k: v for k, v in (spec.get("customer") or {}).items() if v}
    if spec["customer"].get("phone") is None:
        spec["customer"].pop("area_code", None)
    return {"order": public(sandbox.state.create_order(spec))}


@router.post("/orders/{order_id}/pay", summary="The buyer completes payment")
def pay_order(order_id: str, sandbox: Sandbox) -> dict[str, Any]:
    return {"order": public(sandbox.state.pay_order(order_id))}


@router.post("/orders/{order_id}/cancel", summary="The merchant cancels the order")
def cancel_order(
    order_id: str, sandbox: Sandbox, body: CancelRequest | None = None
) -> dict[str, Any]:
    reason = (body or CancelRequest()).reason
    return {"order": public(sandbox.state.cancel_order(order_id, reason))}


@router.post("/orders/{order_id}/refund", summary="The merchant refunds the order")
def refund_order(
    order_id: str, sandbox: Sandbox, body: RefundRequest | None = None
) -> dict[str, Any]:
    body = body or RefundRequest()
    state = sandbox.state
    order = state.order(order_id)
    if body.lines is None and body.amount is None:
        lines = [
            {
                "line_item_id": li["id"],
                "quantity": li["quantity"] - li["_refunded_quantity"],
                "restock_type": "no_restock",
            }
            for li in order["line_items"]
            if li["quantity"] > li["_refunded_quantity"]
        ]
        shipping = True
    else:
        lines = [line.model_dump() for line in body.lines or []]
        shipping = body.shipping
    request: dict[str, Any] = {
        "order_id": order_id,
        "note": body.note,
        "refund_line_items": lines,
        "shipping": {"full_refund": shipping},
    }
    if body.amount is not None:
        request["transactions"] = [
            {"kind": "refund", "gateway": order["_gateway"], "amount": money(Decimal(body.amount))}
        ]
    return {"refund": state.create_refund(request)}


@router.get("/deliveries", summary="Webhook deliveries and their attempts")
def deliveries(
    sandbox: Sandbox,
    topic: Annotated[str | None, Query(description="Only this topic.")] = None,
    state: Annotated[
        str | None, Query(description="pending, retrying, delivered or failed.")
    ] = None,
) -> dict[str, Any]:
    return {"deliveries": sandbox.webhooks.deliveries(topic=topic, state=state)}
