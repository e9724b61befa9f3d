"""Typed SHOPLINE Admin REST API records (the fields the syncs read; all others are kept).

Ids are strings (SHOPLINE ids are 19–26 digit numbers, beyond what every consumer of JSON numbers
handles exactly); money is :class:`~decimal.Decimal` parsed from SHOPLINE's money strings. The real
quirks are kept as the API has them: a webhook ``id`` is an integer and ``location.is_default`` is
the string ``"true"``/``"false"`` (exposed as a boolean by :attr:`Location.default`).

Where SHOPLINE's sources disagree on a field's JSON type, or leave it unclear, the model reads
every form they give and keeps one: a customer's ``addresses`` (an object on an order, a list
from the customers API) is a list; ``pay_amount`` and ``settle_pay_amount`` (numbers in the
official SDK's order model, a string in its create-order answer) and a variant's ``weight`` (a
string in the SDK, read as well when a number) are Decimals. Each field says which source
settled its type.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from .._models import ApiModel, Money

__all__ = [
    "Address",
    "Customer",
    "Fulfillment",
    "FulfillmentLineItem",
    "InventoryLevel",
    "LineItem",
    "Location",
    "MoneySet",
    "Order",
    "OrderLocation",
    "PaymentDetail",
    "Product",
    "Refund",
    "RefundLineItem",
    "ShippingLine",
    "TaxLine",
    "TrackingInfo",
    "Transaction",
    "Variant",
    "Webhook",
]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _address_list(value: Any) -> Any:
    """An order's one address object, or the customers API's list, as a list (none: empty)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value] if any(v not in (None, "") for v in value.values()) else []
    return value


def _null_is_empty(value: Any) -> Any:
    return [] if value is None else value


Addresses = Annotated[list["Address"], BeforeValidator(_address_list)]
"""A customer's addresses: an object or a list on the wire, always a list here."""

Measure = Annotated[Money | None, BeforeValidator(_blank_is_none)]
"""A weight: a decimal string (``"0.23"``) or a number, as an exact Decimal; blank is none."""


class MoneyAmount(ApiModel):
    """One side of a ``*_set`` money pair."""

    amount: Money
    currency_code: str | None = None


class MoneySet(ApiModel):
    """SHOPLINE's ``*_set`` twin of a money field: shop and presentment currency."""

    shop_money: MoneyAmount | None = None
    presentment_money: MoneyAmount | None = None


class Variant(ApiModel):
    """A product variant: the sellable unit, linked to Stokly items by SKU."""

    id: str
    product_id: str | None = None
    sku: str | None = None
    barcode: str | None = None
    title: str | None = None
    price: Money | None = None
    compare_at_price: Money | None = None
    inventory_item_id: str | None = None
    inventory_quantity: int | None = None
    inventory_policy: str | None = None
    # Official SDK's variant model (rest/admin/v20251201/product/get_a_product_variant.go): a
    # string, "0.23", rounded to two places; SHOPLINE's Storefront API reference types
    # ProductVariant.weight as a String too. A number is read as well.
    weight: Measure = None
    weight_unit: str | None = None  # g (the default), kg, lb, oz, zh_kg
    updated_at: datetime | None = None


class Product(ApiModel):
    """A product with its variants."""

    id: str
    title: str | None = None
    handle: str | None = None
    status: str | None = None
    body_html: str | None = None
    vendor: str | None = None
    tags: str | list[str] | None = None
    variants: list[Variant] = Field(default_factory=list)
    updated_at: datetime | None = None


class InventoryLevel(ApiModel):
    """Available quantity of one inventory item at one location."""

    inventory_item_id: str
    location_id: str
    variant_id: str | None = None
    available: int | None = None
    updated_at: datetime | None = None


class Location(ApiModel):
    """A SHOPLINE location (warehouse, store)."""

    id: str
    name: str | None = None
    active: bool | None = None
    is_default: str | bool | None = None

    @property
    def default(self) -> bool:
        """``is_default`` as a boolean (SHOPLINE sends the strings ``"true"``/``"false"``)."""
        return str(self.is_default).lower() == "true"


class TaxLine(ApiModel):
    """A tax charged on a line or on shipping."""

    title: str | None = None
    rate: Money | None = None
    price: Money | None = None
    type: str | None = None
    price_set: MoneySet | None = None


class LineItem(ApiModel):
    """An order line. ``id`` is unique only within its order.

    ``requires_shipping`` omitted (None) means the line ships: only ``False`` is a collection.
    A list SHOPLINE sends as null (``discount_allocations: null``) is read as empty: whether it
    omits such keys or sends null is unknown, and both are read alike.
    """

    id: str
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    title: str | None = None
    name: str | None = None
    variant_title: str | None = None
    vendor: str | None = None
    quantity: int
    price: Money | None = None
    price_set: MoneySet | None = None
    fulfillable_quantity: int | None = None
    fulfillment_status: str | None = None
    location_id: str | None = None
    requires_shipping: bool | None = None
    taxable: bool | None = None
    gift_card: bool | None = None
    grams: Money | None = None
    properties: list[dict[str, Any]] | None = None
    tax_lines: Annotated[list[TaxLine], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )
    discount_allocations: Annotated[list[dict[str, Any]], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )


class ShippingLine(ApiModel):
    """A shipping charge; ``title`` names the carrier or method. ``discounted_price`` is what
    the buyer paid for it after discounts (``"0.00"`` for free delivery)."""

    title: str | None = None
    code: str | None = None
    source: str | None = None
    price: Money | None = None
    price_set: MoneySet | None = None
    discounted_price: Money | None = None
    tax_lines: Annotated[list[TaxLine], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )


class Address(ApiModel):
    """A shipping or billing address."""

    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    phone: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    district: str | None = None
    province: str | None = None
    province_code: str | None = None
    country: str | None = None
    country_code: str | None = None
    zip: str | None = None


class Customer(ApiModel):
    """A storefront customer; may have a phone and no e-mail."""

    id: str
    email: str | None = None
    phone: str | None = None
    area_code: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    # Official SDK's order model (rest/admin/v20251201/order/get_orders.go): an order's
    # customer.addresses is one object; the customers API (customer/search_for_customers.go)
    # sends a list. Either is read, as a list.
    addresses: Addresses = Field(default_factory=list)
    tags: str | list[str] | None = None
    currency: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PaymentDetail(ApiModel):
    """A payment on an order; ``pay_channel_deal_id`` is the gateway's transaction id."""

    pay_seq: str | None = None
    pay_channel_deal_id: str | None = None
    gateway: str | None = None
    pay_channel: str | None = None
    # Official SDK's order model (rest/admin/v20251201/order/get_orders.go): pay_amount and
    # settle_pay_amount are numbers (float64, "rounded to two decimal places"); its create-order
    # answer (order/create_an_order.go) has pay_amount as a string. Either is read, as a Decimal
    # (bodies are decoded with parse_float=Decimal, so a number carries no binary error).
    pay_amount: Money | None = None
    pay_status: str | None = None
    settle_currency: str | None = None
    settle_pay_amount: Money | None = None


class OrderLocation(ApiModel):
    """One of an order's ``locations[]``: a location and its part (``posLocation``,
    ``pickupLocation`` or ``productLocation``)."""

    location_id: str | None = None
    type: str | None = None


class Order(ApiModel):
    """A SHOPLINE order.

    Every field SHOPLINE documents for an order is declared (the reference's Orders section), so
    that one SHOPLINE omits is None in a dump rather than missing: a mapping's template reading
    ``order.buyer_note`` renders it as None, and `stokline validate` refuses a template naming a
    field declared here by no one. ``discount_codes``, ``discount_applications`` and ``refunds``
    follow Shopify's shape ([I]: SHOPLINE documents discount allocations on lines and a refunds
    endpoint, not these keys on the order); ``refunds`` is None when the order does not carry
    them, which is not the same as an empty list (carried, none made).
    """

    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    store_id: str | None = None
    currency: str | None = None
    presentment_currency: str | None = None
    status: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    processed_at: datetime | None = None
    order_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    taxes_included: bool | None = None
    total_tax: Money | None = None
    subtotal_price: Money | None = None
    total_discounts: Money | None = None
    total_price: Money | None = None
    current_total_price: Money | None = None
    total_outstanding: Money | None = None
    total_tax_set: MoneySet | None = None
    subtotal_price_set: MoneySet | None = None
    total_discounts_set: MoneySet | None = None
    total_price_set: MoneySet | None = None
    current_total_price_set: MoneySet | None = None
    total_outstanding_set: MoneySet | None = None
    tags: str | list[str] | None = None
    note: str | None = None
    buyer_note: str | None = None
    note_attributes: list[dict[str, Any]] | None = None
    order_source: str | None = None
    location_id: str | None = None
    pos_location_id: str | None = None
    locations: list[OrderLocation] | None = None
    customer: Customer | None = None
    line_items: Annotated[list[LineItem], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )
    shipping_lines: Annotated[list[ShippingLine], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )
    tax_lines: Annotated[list[TaxLine], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )
    shipping_address: Address | None = None
    billing_address: Address | None = None
    payment_details: Annotated[list[PaymentDetail], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )
    payment_gateway_names: Annotated[list[str], BeforeValidator(_null_is_empty)] = Field(
        default_factory=list
    )
    discount_codes: list[dict[str, Any]] | None = None
    discount_applications: list[dict[str, Any]] | None = None
    refunds: list[Refund] | None = None


class Transaction(ApiModel):
    """A payment or refund transaction of an order."""

    id: str
    order_id: str | None = None
    kind: str | None = None
    gateway: str | None = None
    amount: Money | None = None
    currency: str | None = None
    status: str | None = None
    payment_details: PaymentDetail | None = None


class RefundLineItem(ApiModel):
    """A refunded quantity of one order line."""

    line_item_id: str
    quantity: int
    restock_type: str | None = None
    subtotal: Money | None = None
    total_tax: Money | None = None


class Refund(ApiModel):
    """A refund; reasons live in ``note`` and ``order_adjustments[].reason``."""

    id: str
    order_id: str | None = None
    note: str | None = None
    created_at: datetime | None = None
    processed_at: datetime | None = None
    refund_line_items: list[RefundLineItem] = Field(default_factory=list)
    order_adjustments: list[dict[str, Any]] = Field(default_factory=list)
    transactions: list[Transaction] = Field(default_factory=list)


class TrackingInfo(ApiModel):
    """One parcel's tracking (a fulfilment carries up to 10)."""

    tracking_number: str
    tracking_company: str | None = None
    tracking_url: str | None = None


class FulfillmentLineItem(ApiModel):
    """A line to fulfil: the order line ``id`` and the quantity shipped."""

    id: str
    quantity: int


class Fulfillment(ApiModel):
    """A shipment of some order lines."""

    id: str
    order_id: str | None = None
    name: str | None = None
    status: str | None = None
    shipment_status: str | None = None
    tracking_info_list: list[TrackingInfo] = Field(default_factory=list)
    line_items: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Webhook(ApiModel):
    """A webhook subscription. SHOPLINE's webhook ``id`` is an integer (a real quirk)."""

    id: int
    address: str
    topic: str
    api_version: str | None = None
    created_at: datetime | None = None


Order.model_rebuild()
