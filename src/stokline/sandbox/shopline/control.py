"""The sandbox's own control API under ``/_sandbox/`` (not part of SHOPLINE).

It plays the storefront and the merchant (place, pay, cancel, refund orders), changes faults
and the rate limit at runtime, resets the store and shows webhook deliveries. It needs no token
and is never rate-limited or faulted, so a rehearsal can always steer the sandbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

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
    discount: str | None = Field(
        None, description="Amount off the whole line (a manual discount allocated to it)."
    )
    discount_title: str | None = None


class StorefrontCustomer(BaseModel):
    """The buyer; a storefront customer may have a phone and no email."""

    email: str | None = None
    phone: str | None = Field(None, max_length=20)
    area_code: str | None = "+44"
    first_name: str = ""
    last_name: str = ""


class DiscountCode(BaseModel):
    """A discount code the buyer entered, allocated across the lines."""

    code: str
    type: Literal["percentage", "fixed_amount"] = "percentage"
    value: str = Field(description='Percent ("10") or amount ("5.00").')


class StorefrontOrder(BaseModel):
    """An order placed as a buyer would, through checkout."""

    lines: list[StorefrontLine] = Field(min_length=1)
    customer: StorefrontCustomer | None = None
    shipping_title: str = "Royal Mail Tracked 48"
    gateway: str = "shopline_payments"
    paid: bool = True
    authorize: bool = Field(
        False, description="Authorise the total at checkout and capture it later (/capture)."
    )
    location_id: str | None = None
    note: str = ""
    buyer_note: str = ""
    order_source: str = "web"
    created_at: str | None = Field(None, description="Backdate the order (ISO 8601).")
    discount_code: DiscountCode | None = None
    order_discount: str | None = Field(
        None, description="An order-level discount no line carries (total_discounts only)."
    )
    shipping_discounted_price: str | None = Field(
        None, description='What shipping was charged ("0.00" = free delivery).'
    )
    shipping_code: str | None = Field(None, description="The code that discounted shipping.")
    taxes_included: bool = Field(True, description="False: tax is added on top of prices.")
    omit: Literal["keys", "null"] | None = Field(
        None, description="Leave empty optional keys out of the order (keys) or send null."
    )
    omit_fields: list[str] | None = Field(
        None, description="Which keys omit applies to (default: quirks.OMITTABLE_FIELDS)."
    )
    shapes: list[str] | None = Field(None, description="Ignored: what a generator drew.")


class CancelRequest(BaseModel):
    """Cancel as the merchant would in the admin."""

    reason: str = "customer"


class RefundLine(BaseModel):
    """A line to refund."""

    line_item_id: str
    quantity: int = Field(1, ge=1)
    restock_type: str = "no_restock"
    type: Literal["Unshipped", "Returned"] | None = Field(
        None, description="Unshipped units first when not given."
    )


class RefundRequest(BaseModel):
    """A refund as the merchant would make it; empty means everything that is left."""

    lines: list[RefundLine] | None = None
    amount: str | None = Field(None, description="Refund exactly this amount.")
    shipping: bool = Field(False, description="Also refund shipping in full.")
    shipping_amount: str | None = Field(None, description="Refund this much of shipping.")
    note: str = "Refunded by merchant"


class CaptureRequest(BaseModel):
    """Capture (part of) an authorised order, or what an edit left outstanding."""

    amount: str | None = Field(None, description="Default: everything outstanding.")
    at: str | None = Field(None, description="When the capture happened (ISO 8601).")
    reuse_deal_id: bool = Field(
        False, description="Give the capture the authorisation's pay_channel_deal_id."
    )


class EditLine(BaseModel):
    """A line an edit adds."""

    sku: str
    quantity: int = Field(1, ge=1)


class EditRequest(BaseModel):
    """The merchant edits the order after it was placed (or paid)."""

    quantities: dict[str, int] = Field(
        default_factory=dict, description="New quantity by line item id."
    )
    add: list[EditLine] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list, description="Line item ids to remove.")


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
    titles: dict[str, str] = {}
    for _, product in sandbox.store.scan("product"):
        if product.get("status") == "active":
            for variant in product["variants"]:
                if variant["sku"]:
                    out.append(variant["sku"])
                    titles[variant["sku"]] = variant.get("_vat_title", "VAT 20%")
    return {"skus": out, "tax_titles": titles}


@router.post(
    "/orders",
    summary="Place an order as the storefront would",
    description="Sold-out variants with inventory_policy deny are refused (422), as at checkout.",
)
def place_order(sandbox: Sandbox, body: StorefrontOrder) -> dict[str, Any]:
    spec = body.model_dump(exclude={"shapes"})
    spec["line_items"] = spec.pop("lines")
    if spec["discount_code"] is None:
        spec.pop("discount_code")
    spec["checkout"] = True
    spec["customer"] = {k: v for k, v in (spec.get("customer") or {}).items() if v}
    if spec["customer"].get("phone") is None:
        spec["customer"].pop("area_code", None)
    return {"order": public(sandbox.state.create_order(spec))}


@router.get("/orders/{order_id}", summary="An order as the API shows it")
def get_order(order_id: str, sandbox: Sandbox) -> dict[str, Any]:
    return {"order": public(sandbox.state.order(order_id))}


@router.post(
    "/orders/{order_id}/capture",
    summary="Capture an authorised order, in full or in part",
    description=(
        "Each capture is its own capture transaction and payment_details entry; the order is"
        " partially_paid until nothing is outstanding."
    ),
)
def capture_order(
    order_id: str, sandbox: Sandbox, body: CaptureRequest | None = None
) -> dict[str, Any]:
    body = body or CaptureRequest()
    order = sandbox.state.capture_order(
        order_id, body.amount, at=body.at, reuse_deal_id=body.reuse_deal_id
    )
    return {"order": public(order)}


@router.post(
    "/orders/{order_id}/edit",
    summary="The merchant edits the order",
    description="Change quantities, add or remove lines; the order is priced again.",
)
def edit_order(order_id: str, sandbox: Sandbox, body: EditRequest) -> dict[str, Any]:
    order = sandbox.state.edit_order(
        order_id,
        quantities=body.quantities,
        add=[line.model_dump() for line in body.add],
        remove=body.remove,
    )
    return {"order": public(order)}


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
        lines = []
        for li in order["line_items"]:
            left = li["quantity"] - li["_refunded_quantity"]
            unshipped = min(left, li["fulfillable_quantity"])
            for kind, quantity in (("Unshipped", unshipped), ("Returned", left - unshipped)):
                if quantity > 0:
                    lines.append(
                        {
                            "line_item_id": li["id"],
                            "quantity": quantity,
                            "type": kind,
                            "restock_type": "no_restock",
                        }
                    )
        shipping = True
    else:
        lines = [
            {k: v for k, v in line.model_dump().items() if v is not None}
            for line in body.lines or []
        ]
        shipping = body.shipping
    request: dict[str, Any] = {
        "order_id": order_id,
        "note": body.note,
        "refund_line_items": lines,
        "shipping": {"full_refund": shipping},
    }
    if body.shipping_amount is not None and not shipping:
        request["shipping"] = {"amount": body.shipping_amount}
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
