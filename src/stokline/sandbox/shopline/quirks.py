"""Every SHOPLINE behaviour the sandbox *infers* rather than knows, in one place.

The reference (``reference/shopline-api.md``) marks facts [C] confirmed, [T] third-party, [I]
inferred. Confirmed facts are implemented directly where they belong; each constant below is a
guess (or a sandbox-only choice) and says so, so that when the real API proves different there is
one line to change.

Smaller inferences implemented inline, listed here so they are not lost:

- ``traceId`` is a random 32-hex string; ``X-Shopline-Webhook-Id`` a UUID (webhooks.py).
- ``X-Shopline-Shop-Id``/``Merchant-Id`` are numbers derived from the handle (state.py).
- A customer needs an email or a phone; emails are unique, case-insensitively (state.py).
- Refund ``restock_type`` defaults from ``type``: ``Unshipped`` → ``cancel`` (no longer
  fulfillable), ``Returned`` → ``return``; restocking adds back at the line's location.
- Refund amounts above what was paid and not yet refunded are a 422; a refund whose
  transactions differ from the computed amount gets a ``refund_discrepancy`` adjustment.
- ``payment_details.status_code`` is ``"0"`` on success; gateway deal ids imitate each gateway.
- An order paid at checkout fires ``orders/create`` (snapshot before payment, ``unpaid``)
  and then ``orders/paid`` and ``order_transactions/create``; paying, refunding, cancelling and
  fulfilling also fire ``orders/updated`` (state.py).
- Malformed bodies (a list where an object belongs) are a 422, never a 5xx (app.py).

Order money and shapes (pricing.py, state.py, routes.py), Shopify-like where SHOPLINE is silent:

- ``total_discounts`` counts line allocations, an order discount no line carries and shipping
  discounts; ``total_shipping_price_set`` is the shipping list price; a shipping line keeps its
  list ``price`` and shows what was charged in ``discounted_price``. An unallocated order
  discount changes no line's tax. ``discount_applications`` / ``discount_codes`` follow Shopify's
  shapes (a free-delivery code is a ``type: shipping`` code).
- An authorisation is a transaction of kind ``authorization`` (not in ``payment_details``); each
  capture is a ``capture`` transaction with its own ``payment_details[]`` entry and ``pay_seq``,
  ``parent_id`` the authorisation; the order is ``authorized`` → ``partially_paid`` → ``paid``
  and ``orders/paid`` fires when nothing is outstanding. A capture may reuse the authorisation's
  ``pay_channel_deal_id`` (an option: real gateways differ). Cancelling voids what was not
  captured (a ``void`` transaction); with nothing captured the order is ``unpaid`` again
  (SHOPLINE documents no ``voided`` status).
- A refund line without ``type`` refunds unshipped units first (``Unshipped``); any
  ``Unshipped`` refund, whatever its ``restock_type``, lowers ``fulfillable_quantity``.
  Line refunds give back the discounted price (the last units what is left of the line); a
  refund without transactions is capped at what is left to refund, the difference recorded as a
  ``refund_discrepancy`` adjustment; a refund by amount alone is a ``refund_discrepancy`` of
  minus that amount with no tax; a shipping refund gives back what was charged for shipping.
- Orders show ``refunds[]``; ``current_total_price`` is ``total_price`` less refunds.
- An edit prices the order again with its discounts and fires ``orders/edited`` (payload: the
  order) and ``orders/updated``; it may raise a paid order's total (``partially_paid`` until the
  rest is captured, as a ``sale``) but not lower it below what was paid (a 422: refund instead).
- ``POST /orders.json``: ``discount_price.amount`` is the discount of the whole line; a
  ``transaction_list`` entry is captured unless its status is unpaid/pending/failure;
  ``price_info.taxes_included`` absent means true (the SDK omits false); gateway names are
  lower-cased with spaces as underscores ("PayPal" → "paypal").
"""

from __future__ import annotations

import re

#: [C] versions are dates; the sandbox accepts any ``vYYYYMMDD``.
VERSION_RE = re.compile(r"^v\d{8}$")
#: [C] default version of the official Go SDK.
DEFAULT_API_VERSION = "v20251201"

#: [C] default page size and the per-resource maxima.
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_LIMIT_BY_RESOURCE = {"orders": 100, "customers": 250}
#: [I] a page request without ``limit`` keeps the ``limit`` stored in its ``page_info``.
#: [I] lists come in creation order (oldest first) unless ``sort_condition=order_at:desc``.
#: [I] a ``limit`` above the maximum is clamped to it (Shopify does the same) rather than refused;
#: a ``limit`` below 1 or not an integer is a 422.
CLAMP_LIMIT = True

#: [I] the documented ``page_info`` carries ``sinceId``, ``direction`` and ``limit``. Because the
#: next page is requested with only ``page_info``/``limit``/``fields``, the sandbox also stores the
#: first request's filters in it under this key, so following ``link`` keeps the same filters.
PAGE_INFO_QUERY_KEY = "query"

#: [C] 401 and 429 bodies are a bare ``{"errors": ...}``; [C] the 429 text is this exact string.
UNAUTHORIZED_MESSAGE = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
TOO_MANY_REQUESTS = "Too many request"
#: [I] ``Retry-After`` in whole seconds (rounded up, at least 1); not documented by SHOPLINE.
RETRY_AFTER_MIN_S = 1

#: [I] string ``code`` values of the ``{"code","message","errors"}`` error body per status.
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    402: "PAYMENT_REQUIRED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    406: "NOT_ACCEPTABLE",
    412: "PRECONDITION_FAILED",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

#: [I] numeric-string ids: a 4-digit resource prefix, 13 digits of milliseconds and a 9-digit
#: sequence (26 digits, like the documented order id), so ids sort in creation order.
ID_PREFIXES = {
    "product": "1605",
    "variant": "1806",
    "inventory_item": "1907",
    "order": "2105",
    "transaction": "2206",
    "refund": "2307",
    "fulfillment": "2408",
    "customer": "4200",
    "payment": "5100",
}
#: [I] line item ids are short snapshot ids unique within one order, starting here.
LINE_ITEM_ID_START = 417
#: [I] order names: prefix and first number.
ORDER_NAME_PREFIX = "#"
FIRST_ORDER_NUMBER = 1001

#: [I] when ``status`` is not given, the order list shows open orders only (Shopify's default).
DEFAULT_ORDER_STATUS = "open"
#: [C] ``fulfillment_status`` filter values → the order's ``fulfillment_status`` value.
FULFILLMENT_FILTER = {"unshipped": None, "partial": "partial", "shipped": "fulfilled"}

#: [C] listing inventory levels requires ``inventory_item_ids`` (at most 50 a request) and takes
#: at most 10 ``location_ids``: unlike Shopify, a location's levels cannot be listed on their own.
LEVELS_REQUIRE_ITEM_IDS = True
LEVELS_MAX_ITEM_IDS = 50
LEVELS_MAX_LOCATION_IDS = 10
#: [I] ``set`` connects an unconnected item to the location; ``adjust`` needs a connected level.
SET_CONNECTS = True
#: [I] placing an order takes the ordered quantity off ``available`` at the line's location.
ORDERS_DECREMENT_STOCK = True
#: [I] ``inventory_levels/update`` payload fields SHOPLINE sends that the sandbox cannot know.
COMMITTED_UNAVAILABLE_ZERO = True

#: [I] cancelling a paid order through the Admin API refunds it in full, like the admin does.
CANCEL_REFUNDS_PAID = True
#: [C] the SDK types fulfillment-create ``line_items[].id`` as an integer; [I] the sandbox
#: refuses a string there (422) so a client cannot depend on a leniency production may lack.
FULFILLMENT_LINE_ID_INTEGER = True
#: [I] ``update_tracking`` takes ``{"fulfillment": {"tracking_info_list": [...]}}``; a bare
#: ``{"tracking_info_list": [...]}`` is accepted too.
#: [I] fulfillment name: order number without prefix, "-F", running number (e.g. "1032-F2").
FULFILLMENT_NAME = "{number}-F{n}"
#: [I] order topics fired when a fulfillment is created, besides ``fulfillments/create``.
FULFILLMENT_TOPICS = {"partial": "orders/partially_fulfilled", "fulfilled": "orders/fulfilled"}

#: [T] webhook retry delays after the first attempt (seconds): 5s … 2h, then 4h until 19 retries.
WEBHOOK_RETRY_DELAYS_S = [5, 10, 30, 45, 60, 120, 300, 720, 2280, 3600, 7200] + [14400] * 8
#: [T] an attempt counts as failed without a 200 within this many seconds.
WEBHOOK_TIMEOUT_S = 5.0
#: [I] a subscription is deleted when one message has failed its last retry.
DELETE_SUBSCRIPTION_AFTER_FINAL_FAILURE = True
#: [I] production requires https addresses; the sandbox also accepts http (loopback receivers).
WEBHOOK_ALLOW_HTTP = True
#: [C] topics a subscription may name.
WEBHOOK_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/edited",
    "orders/delete",
    "order_transactions/create",
    "refunds/create",
    "fulfillments/create",
    "fulfillments/update",
    "products/create",
    "products/update",
    "products/delete",
    "inventory_levels/update",
    "customers/create",
    "customers/update",
    "customers/delete",
    "apps/installed_uninstalled",
    "customers/redact",
    "merchants/redact",
)

#: Sandbox data: shipping prices of the demo methods (VAT-inclusive, GBP).
SHIPPING_PRICES = {
    "Royal Mail Tracked 48": "3.95",
    "DPD Next Day": "6.95",
    "Click & Collect Bristol": "0.00",
}
SHIPPING_CODES = {
    "Royal Mail Tracked 48": "royal-mail-48",
    "DPD Next Day": "dpd-next-day",
    "Click & Collect Bristol": "collect-bristol",
}
DEFAULT_SHIPPING_PRICE = "4.95"
#: Sandbox data: the method of an order that names none.
DEFAULT_SHIPPING_TITLE = "Royal Mail Tracked 48"
#: Sandbox data: collection methods, and the location an order for collection is placed at.
PICKUP_LOCATIONS = {"Click & Collect Bristol": "7002"}
SHIPPING_TAX_TITLE = "VAT 20%"

#: [I] keys SHOPLINE may leave out of an order when it has no value for them (an order placed
#: with ``omit: "keys"`` leaves them out, ``omit: "null"`` sends null): whether SHOPLINE omits
#: keys or sends null is unknown, so the sandbox can do both. ``a.b`` is a key of object ``a``;
#: ``requires_shipping`` and ``discount_allocations`` are line item keys.
OMITTABLE_FIELDS = (
    "buyer_note",
    "note",
    "note_attributes",
    "tags",
    "requires_shipping",
    "discount_allocations",
    "shipping_address.phone",
    "billing_address.phone",
    "customer.phone",
    "phone",
    "email",
)
