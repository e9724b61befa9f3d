"""Malformed API answers, as a table: what the fake server says, and the error the client must raise.

Each `ApiCase` scripts the answers of SHOPLINE or Stokly at the transport seam for one client call
and names the `ConnectorError` subclass it must end in, fragments its message must contain, and
what it must never contain: a credential, or more than a short excerpt of the body (`MAX_MESSAGE`).
A few answers are odd but usable (valid JSON labelled text/plain): those name no error.

Cases that are already tested elsewhere are not repeated here (an HTML page with 200 and
``text/html``, an empty body, a JSON array, a missing or mistyped list, repeated page cursors, the
malformed Stokly grants and envelopes of ``test_malformed_responses.py``; errors echoing a token in
``test_secrets.py``).

``known_gap`` marks an answer the clients do not yet turn into a typed error: the test expects the
right behaviour and is a strict xfail, so fixing the gap makes it fail until the mark is removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

API = "/admin/openapi/v20251201"
LOCATIONS = f"{API}/locations/list.json"
ORDERS = f"{API}/orders.json"
GRANT = "/v1/grant"
ITEMS = "/v0/items"

SHOPLINE_TOKEN = "shpat_corpus_token_5e4d3c2b1a"
STOKLY_CLIENT_ID = "corpus-client"
STOKLY_SECRET = "stokly-corpus-secret-9f8e7d"
STOKLY_TOKEN = "stokly-corpus-access-token-1a2b3c4d"
# The client id is paired with the secret (a server echoing the grant request shows both): masked.
SECRETS = (SHOPLINE_TOKEN, STOKLY_SECRET, STOKLY_TOKEN, STOKLY_CLIENT_ID)
# Longest message an error may carry: the endpoint, the status, a short excerpt, a field path.
MAX_MESSAGE = 400
# Put at the end of long bodies: a message that contains it dumped the whole body.
TAIL = "END-OF-BODY-MARKER"
SURROGATE = "TENT-\ud800"  # a lone surrogate: valid in Python and in JSON text, never in UTF-8
ATTEMPTS = 4  # the retry budget of the clients under test: transient failures come 4 times


@dataclass(frozen=True)
class Answer:
    """One scripted answer: JSON ``body``, ``text``, or ``raw`` bytes (``stream``: decoded on read)."""

    path: str
    status: int = 200
    body: Any = None
    text: str | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    times: int = 1
    stream: bool = False


@dataclass(frozen=True)
class ApiCase:
    name: str
    why: str
    call: str  # a key of the test's CALLS
    answers: tuple[Answer, ...]
    error: str | None  # the ConnectorError subclass's name; None: the call succeeds
    fragments: tuple[str, ...] = ()
    known_gap: str | None = None


def _html(title: str, secret: str = "") -> str:
    filler = "<p>The server encountered a temporary error.</p>" * 400
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{secret}{filler}{TAIL}</body></html>"


def _orders(count: int, broken_last: bool = False) -> dict[str, Any]:
    orders = [
        {"id": str(10_000 + i), "line_items": [{"id": "1", "quantity": 1, "price": "1.00"}]}
        for i in range(count)
    ]
    if broken_last:
        del orders[-1]["id"]
    return {"orders": orders}


GRANTED = Answer(
    GRANT,
    method="POST",
    body={
        "data": {
            "authenticationResult": {"accessToken": STOKLY_TOKEN, "expiry": "2099-01-01T00:00:00Z"}
        }
    },
)
JSON = {"content-type": "application/json"}

CASES: tuple[ApiCase, ...] = (
    # -- error pages --------------------------------------------------------------------------
    ApiCase(
        "shopline-502-html-page",
        "a load balancer's HTML page with 502, on every retry",
        "shopline.locations",
        (Answer(LOCATIONS, 502, text=_html("502 Bad Gateway"), times=ATTEMPTS),),
        "ServerError",
        ("HTTP 502", 'an HTML page ("502 Bad Gateway")', f"after {ATTEMPTS} attempts"),
    ),
    ApiCase(
        "shopline-500-html-echoing-the-token",
        "an HTML 500 page that prints the request's Authorization header",
        "shopline.locations",
        (
            Answer(
                LOCATIONS,
                500,
                text=_html(
                    "Error", f"Authorization: Bearer {SHOPLINE_TOKEN} token={SHOPLINE_TOKEN}"
                ),
                times=ATTEMPTS,
            ),
        ),
        "ServerError",
        ("HTTP 500",),
    ),
    ApiCase(
        "shopline-500-empty",
        "500 with an empty body",
        "shopline.locations",
        (Answer(LOCATIONS, 500, text="", times=ATTEMPTS),),
        "ServerError",
        ("HTTP 500: (empty body)",),
    ),
    ApiCase(
        "shopline-503-huge-json-error",
        "503 whose JSON error message is 5,000 characters long",
        "shopline.locations",
        (Answer(LOCATIONS, 503, body={"errors": "overloaded " * 500 + TAIL}, times=ATTEMPTS),),
        "ServerError",
        ("HTTP 503", "overloaded overloaded", "…"),
    ),
    ApiCase(
        "shopline-302-to-another-host",
        "a redirect to another host: never followed, the token stays home",
        "shopline.locations",
        (Answer(LOCATIONS, 302, text="", headers={"location": "https://evil.example/x"}),),
        "ApiError",
        ("HTTP 302",),
    ),
    # -- success statuses with bodies that are not what they claim ------------------------------
    ApiCase(
        "shopline-200-html-labelled-json",
        "an HTML page served as application/json",
        "shopline.locations",
        (Answer(LOCATIONS, text=_html("Maintenance"), headers=JSON, times=ATTEMPTS),),
        "UnreadableResponseError",
        ('the answer is an HTML page ("Maintenance"), not JSON, with HTTP 200',),
    ),
    ApiCase(
        "shopline-200-xml",
        "XML instead of JSON",
        "shopline.locations",
        (
            Answer(
                LOCATIONS,
                text="<?xml version='1.0'?><locations><location id='1'/></locations>",
                headers={"content-type": "application/xml"},
                times=ATTEMPTS,
            ),
        ),
        "UnreadableResponseError",
        ("got application/xml: ",),
    ),
    ApiCase(
        "shopline-200-json-labelled-text",
        "valid JSON labelled text/plain: read as JSON all the same",
        "shopline.locations",
        (
            Answer(
                LOCATIONS,
                text=json.dumps({"locations": [{"id": "7001", "name": "Leeds"}]}),
                headers={"content-type": "text/plain"},
            ),
        ),
        None,
    ),
    ApiCase(
        "shopline-200-null",
        "the JSON value null",
        "shopline.locations",
        (Answer(LOCATIONS, text="null", headers=JSON),),
        "ResponseFormatError",
        ("expected a JSON object, got null",),
    ),
    ApiCase(
        "shopline-200-string",
        "a JSON string",
        "shopline.locations",
        (Answer(LOCATIONS, text='"ok"', headers=JSON),),
        "ResponseFormatError",
        ("expected a JSON object, got a string",),
    ),
    ApiCase(
        "shopline-200-whitespace",
        "a body of blanks and newlines",
        "shopline.locations",
        (Answer(LOCATIONS, text=" \r\n\t ", headers=JSON, times=ATTEMPTS),),
        "UnreadableResponseError",
        ("empty body with HTTP 200",),
    ),
    ApiCase(
        "shopline-200-truncated-json",
        "JSON cut off mid-way (a dropped connection behind a proxy)",
        "shopline.locations",
        (
            Answer(
                LOCATIONS, text='{"locations": [{"id": "7001", "na', headers=JSON, times=ATTEMPTS
            ),
        ),
        "UnreadableResponseError",
        ("the JSON body is cut off after 33 bytes (HTTP 200)",),
    ),
    ApiCase(
        "shopline-200-not-utf8",
        "bytes that are not UTF-8",
        "shopline.locations",
        (
            Answer(
                LOCATIONS, raw=b'{"locations": [{"id": "\xff\xfe"}]}', headers=JSON, times=ATTEMPTS
            ),
        ),
        "UnreadableResponseError",
        ("expected a JSON object",),
    ),
    ApiCase(
        "shopline-200-deeply-nested",
        "arrays nested 100,000 deep",
        "shopline.locations",
        (Answer(LOCATIONS, text="[" * 100_000 + "]" * 100_000, headers=JSON),),
        "ResponseFormatError",
        ("expected a JSON object, got application/json nested too deeply to read",),
    ),
    ApiCase(
        "shopline-200-gzip-that-is-not",
        "Content-Encoding: gzip on a body that is not compressed",
        "shopline.locations",
        (
            Answer(
                LOCATIONS,
                raw=b'{"locations": []}',
                headers={**JSON, "content-encoding": "gzip"},
                stream=True,
            ),
        ),
        "ResponseFormatError",
        ("cannot be decoded as Content-Encoding 'gzip' says",),
    ),
    # -- fields ----------------------------------------------------------------------------------
    ApiCase(
        "shopline-order-line-items-a-string",
        "line_items as a string",
        "shopline.orders",
        (Answer(ORDERS, body={"orders": [{"id": "1", "line_items": "all"}]}),),
        "ResponseFormatError",
        ("orders[0].line_items",),
    ),
    ApiCase(
        "shopline-order-line-without-quantity",
        "an order line with no quantity",
        "shopline.orders",
        (
            Answer(
                ORDERS, body={"orders": [{"id": "1", "line_items": [{"id": "9", "price": "1"}]}]}
            ),
        ),
        "ResponseFormatError",
        ("orders[0].line_items[0].quantity: Field required",),
    ),
    ApiCase(
        "shopline-order-id-a-boolean",
        "an order id that is true",
        "shopline.orders",
        (Answer(ORDERS, body={"orders": [{"id": True, "line_items": []}]}),),
        "ResponseFormatError",
        ("orders[0].id",),
    ),
    ApiCase(
        "shopline-money-nan-string",
        'a line price of "NaN"',
        "shopline.orders",
        (
            Answer(
                ORDERS,
                body={
                    "orders": [
                        {"id": "1", "line_items": [{"id": "9", "quantity": 1, "price": "NaN"}]}
                    ]
                },
            ),
        ),
        "ResponseFormatError",
        ("orders[0].line_items[0].price", "finite"),
    ),
    ApiCase(
        "shopline-money-bare-nan",
        "a bare NaN (not JSON) as an order's total_price",
        "shopline.orders",
        (
            Answer(
                ORDERS,
                text='{"orders": [{"id": "1", "total_price": NaN, "line_items": []}]}',
                headers=JSON,
            ),
        ),
        "ResponseFormatError",
        ("with NaN, which is not a JSON number",),
    ),
    ApiCase(
        "shopline-money-bare-infinity",
        "a bare -Infinity (not JSON) as a line price",
        "shopline.orders",
        (
            Answer(
                ORDERS,
                text='{"orders": [{"id": "1", "line_items": [{"id": "9", "quantity": 1,'
                ' "price": -Infinity}]}]}',
                headers=JSON,
            ),
        ),
        "ResponseFormatError",
        ("with -Infinity, which is not a JSON number",),
    ),
    ApiCase(
        "shopline-money-absurd-exponent",
        "a line price of 1E+999999: finite, but no amount (Decimal arithmetic would overflow)",
        "shopline.orders",
        (
            Answer(
                ORDERS,
                text='{"orders": [{"id": "1", "line_items": [{"id": "9", "quantity": 1,'
                ' "price": "1E+999999"}]}]}',
                headers=JSON,
            ),
        ),
        "ResponseFormatError",
        ("orders[0].line_items[0].price: Input should be a finite number",),
    ),
    ApiCase(
        "shopline-401-token-echoed-as-trace-id",
        "a 401 whose traceId header repeats the access token",
        "shopline.locations",
        (
            Answer(
                LOCATIONS,
                401,
                body={"errors": "Unauthorized"},
                headers={"traceId": SHOPLINE_TOKEN},
            ),
        ),
        "AuthError",
        ("HTTP 401: Unauthorized (trace id ***)",),
    ),
    ApiCase(
        "shopline-503-trace-id-of-a-megabyte",
        "a trace id far longer than any request id, on every retry",
        "shopline.locations",
        (
            Answer(
                LOCATIONS,
                503,
                body={"errors": "busy"},
                headers={"traceId": "t" * 20_000 + TAIL},
                times=ATTEMPTS,
            ),
        ),
        "ServerError",
        ("HTTP 503: busy (trace id ttt",),
    ),
    ApiCase(
        "shopline-huge-page-bad-last-record",
        "a 5,000-order page (more than asked) whose last order has no id",
        "shopline.orders",
        (Answer(ORDERS, body=_orders(5_000, broken_last=True)),),
        "ResponseFormatError",
        ("orders[4999].id: Field required",),
    ),
    # -- Stokly -----------------------------------------------------------------------------------
    ApiCase(
        "stokly-grant-html-200",
        "the token grant answered by an HTML page with 200",
        "stokly.items",
        (Answer(GRANT, method="POST", text=_html("Sign in"), times=ATTEMPTS),),
        "UnreadableResponseError",
        ('Stokly POST /v1/grant: the answer is an HTML page ("Sign in"), not JSON',),
    ),
    ApiCase(
        "stokly-grant-500-echoing-the-secret",
        "the token grant failing with 500 and the client secret in its body",
        "stokly.items",
        (
            Answer(
                GRANT,
                500,
                method="POST",
                body={"message": f"cannot verify secret {STOKLY_SECRET}"},
                times=ATTEMPTS,
            ),
        ),
        "ServerError",
        ("Stokly POST /v1/grant -> HTTP 500", "cannot verify secret"),
    ),
    ApiCase(
        "stokly-grant-422-echoing-the-request",
        "the token grant refused with the request it was sent (client id, signature) in the body",
        "stokly.items",
        (
            Answer(
                GRANT,
                422,
                method="POST",
                body={
                    "message": f"unknown client {STOKLY_CLIENT_ID} for accountkey corpus",
                    "request": {"clientId": STOKLY_CLIENT_ID},
                },
                headers={"x-request-id": f"grant-{STOKLY_CLIENT_ID}"},
            ),
        ),
        "ValidationError",
        ("Stokly POST /v1/grant -> HTTP 422: unknown client *** for accountkey",),
    ),
    ApiCase(
        "stokly-items-429-with-a-huge-json-message",
        "429 whose JSON message is 50,000 characters, on every retry",
        "stokly.items",
        (
            GRANTED,
            Answer(ITEMS, 429, body={"message": "slow down " * 5_000 + TAIL}, times=ATTEMPTS),
        ),
        "RateLimitedError",
        ("HTTP 429: slow down slow down", "…"),
    ),
    ApiCase(
        "stokly-item-price-infinity-string",
        'a sale price amount of "Infinity"',
        "stokly.items",
        (
            GRANTED,
            Answer(
                ITEMS,
                body={
                    "metadata": {"count": 1},
                    "data": [{"itemId": "a", "sku": "A", "salePrice": {"amount": "Infinity"}}],
                },
            ),
        ),
        "ResponseFormatError",
        ("data[0].salePrice.amount", "finite"),
    ),
    ApiCase(
        "stokly-401-deeply-nested",
        "a 401 whose body nests 100,000 arrays (read by the token refresh to spot 'jwt expired')",
        "stokly.items",
        (GRANTED, Answer(ITEMS, 401, text="[" * 100_000 + "]" * 100_000, headers=JSON)),
        "AuthError",
        ("Stokly GET /v0/items -> HTTP 401",),
    ),
    ApiCase(
        "stokly-items-data-null",
        "an envelope whose data is null",
        "stokly.items",
        (GRANTED, Answer(ITEMS, body={"metadata": {"count": 1}, "data": None})),
        "ResponseFormatError",
        ("'data' should be a JSON array, got null",),
    ),
    ApiCase(
        "stokly-items-503-html",
        "an HTML 503 on a page of items, on every retry",
        "stokly.items",
        (GRANTED, Answer(ITEMS, 503, text=_html("Service Unavailable"), times=ATTEMPTS)),
        "ServerError",
        ("Stokly GET /v0/items -> HTTP 503",),
    ),
    ApiCase(
        "stokly-items-truncated",
        "a page of items cut off mid-way",
        "stokly.items",
        (
            GRANTED,
            Answer(
                ITEMS,
                text='{"metadata": {"count": 2}, "data": [{"itemId": "a',
                headers=JSON,
                times=ATTEMPTS,
            ),
        ),
        "UnreadableResponseError",
        ("Stokly GET /v0/items: the JSON body is cut off after",),
    ),
    ApiCase(
        "stokly-item-id-a-number",
        "an itemId that is a number",
        "stokly.items",
        (
            GRANTED,
            Answer(ITEMS, body={"metadata": {"count": 1}, "data": [{"itemId": 7, "sku": "A"}]}),
        ),
        "ResponseFormatError",
        ("data[0].itemId",),
    ),
    ApiCase(
        "stokly-429-with-a-garbage-retry-after",
        "429 with Retry-After: banana, on every retry",
        "stokly.items",
        (
            GRANTED,
            Answer(
                ITEMS,
                429,
                body={"message": "slow down"},
                headers={"retry-after": "banana"},
                times=ATTEMPTS,
            ),
        ),
        "RateLimitedError",
        ("HTTP 429", "slow down"),
    ),
    ApiCase(
        "stokly-sku-that-cannot-be-sent",
        "a SKU holding a lone surrogate (from an earlier answer), asked for by filter:"
        " refused before anything is sent, the token grant included",
        "stokly.items_by_bad_sku",
        (),
        "RequestEncodingError",
        ("Stokly GET /v0/items: not sent", "query value of 'filter' cannot be encoded"),
    ),
    ApiCase(
        "stokly-customer-name-that-cannot-be-sent",
        "a customer whose name holds a lone surrogate, created: refused before it is sent",
        "stokly.create_customer_bad_name",
        (),
        "RequestEncodingError",
        ("Stokly POST /v0/customers: not sent", "request body cannot be encoded as UTF-8"),
    ),
)
