"""Hostile webhook deliveries, as a table: what arrives at the receiver, and what must come of it.

Each `Delivery` is one HTTP request to ``POST /webhooks/<client>`` and its expected outcome:

* ``nothing``   — refused (401 bad signature, 404, 405, 413, 400): no inbox row, no exception;
* ``stored``    — signed and a JSON object: one pending inbox row with exactly the bytes sent;
* ``duplicate`` — a re-delivery: 200, and still the one row of the first delivery;
* ``poison``    — signed but not a JSON object: kept as a poison row with a ``poison_message``
  exception, never handed to a sync.

`deliveries(secret, max_body)` builds the table for a receiver with that webhook secret and body
limit. Every delivery has its own webhook id unless it is a replay, so cases never interfere and
the whole table can be sent, in order, to one receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass

CLIENT = "demo-outdoor"
PATH = f"/webhooks/{CLIENT}"


def signature(body: bytes, secret: str) -> str:
    """SHOPLINE's signature (hex HMAC-SHA256 of the raw body), written independently of the code."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def order_body(key: str, sku: str = "TENT-2P-GRN", **extra: object) -> bytes:
    """A small paid order as SHOPLINE would send it, its id derived from ``key``."""
    order = {
        "id": "9900" + str(int(hashlib.sha256(key.encode()).hexdigest()[:12], 16))[:12],
        "name": f"#H-{key}",
        "financial_status": "paid",
        "line_items": [{"id": "1", "sku": sku, "quantity": 1, "price": "10.00"}],
        **extra,
    }
    return json.dumps(order).encode()


@dataclass(frozen=True)
class Delivery:
    """One request and its expected outcome (see the module docstring)."""

    name: str
    why: str
    body: bytes | None
    headers: dict[str, str | bytes]
    status: int
    outcome: str
    path: str = PATH
    method: str = "POST"
    chunks: tuple[bytes, ...] = ()  # sent without Content-Length instead of ``body``
    topic: str | None = None  # the topic the stored row must carry, when it is not the header's
    replays: Delivery | None = None  # the earlier delivery this one repeats

    @property
    def webhook_id(self) -> str:
        """The id the inbox keys this delivery on: the header's, or the body's digest."""
        given = self.headers.get("X-Shopline-Webhook-Id")
        if given is not None:
            return given.decode("latin-1") if isinstance(given, bytes) else given
        return "sha256:" + hashlib.sha256(self.body or b"").hexdigest()


def _headers(name: str, body: bytes, secret: str, **changes: str | bytes | None) -> dict:
    headers: dict[str, str | bytes | None] = {
        "Content-Type": "application/json",
        "X-Shopline-Topic": "orders/paid",
        "X-Shopline-Hmac-Sha256": signature(body, secret),
        "X-Shopline-Webhook-Id": f"wh-{name}",
        "X-Shopline-Shop-Domain": "demo-outdoor.myshopline.com",
    }
    for key, value in changes.items():
        headers[key.replace("_", "-")] = value
    return {k: v for k, v in headers.items() if v is not None}


def deliveries(secret: str, max_body: int) -> list[Delivery]:
    """The corpus for a receiver with this webhook secret and body limit."""
    return list(_build(secret, max_body))


def _build(secret: str, max_body: int) -> Iterator[Delivery]:
    def case(
        name: str,
        why: str,
        body: bytes,
        status: int,
        outcome: str,
        *,
        headers: dict | None = None,
        **options: object,
    ) -> Delivery:
        return Delivery(
            name,
            why,
            body,
            _headers(name, body, secret, **(headers or {})),
            status,
            outcome,
            **options,  # type: ignore[arg-type]
        )

    def signed(
        name: str, why: str, body: bytes, outcome: str, status: int = 200, **headers: str | None
    ) -> Delivery:
        return case(name, why, body, status, outcome, headers=headers)

    # -- signatures: refused, nothing stored ----------------------------------------------------
    body = order_body("sig")
    bad = {
        "sig-missing": ("no signature header at all", None),
        "sig-empty": ("an empty signature", ""),
        "sig-wrong-secret": ("signed with another app's secret", signature(body, secret + "x")),
        "sig-other-body": ("the signature of another body", signature(body + b" ", secret)),
        "sig-garbage": ("not a signature", "not-a-signature"),
        "sig-truncated": ("the first half of the right signature", signature(body, secret)[:32]),
        "sig-reserialised": (
            "signed over the same JSON re-serialised with indentation",
            signature(json.dumps(json.loads(body), indent=2).encode(), secret),
        ),
        "sig-sha1": (
            "HMAC-SHA1 instead of SHA-256",
            hmac.new(secret.encode(), body, "sha1").hexdigest(),
        ),
        "sig-unkeyed": ("a plain SHA-256 of the body, no key", hashlib.sha256(body).hexdigest()),
        "sig-the-secret-itself": ("the app secret sent as the signature", secret),
        "sig-base64-of-wrong-digest": (
            "base64 of a digest made with another secret",
            base64.b64encode(hmac.new(b"guess", body, "sha256").digest()).decode(),
        ),
    }
    for name, (why, value) in bad.items():
        yield case(name, why, body, 401, "nothing", headers={"X-Shopline-Hmac-Sha256": value})

    # -- signatures SHOPLINE may send: accepted ------------------------------------------------
    body = order_body("upper")
    yield signed(
        "sig-uppercase-hex",
        "the right signature in uppercase hex",
        body,
        "stored",
        X_Shopline_Hmac_Sha256=signature(body, secret).upper(),
    )
    body = order_body("b64")
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    yield signed(
        "sig-base64",
        "the right signature in base64",
        body,
        "stored",
        X_Shopline_Hmac_Sha256=base64.b64encode(digest).decode(),
    )

    # -- routing -------------------------------------------------------------------------------
    body = order_body("route")
    yield case(
        "unknown-client",
        "a client the receiver does not serve",
        body,
        404,
        "nothing",
        path="/webhooks/nobody",
    )
    yield case(
        "client-path-traversal",
        "an encoded ../ in the client name",
        body,
        404,
        "nothing",
        path="/webhooks/..%2Fdemo-outdoor",
    )
    yield case("get-method", "GET on the delivery URL", body, 405, "nothing", method="GET")

    # -- sizes ---------------------------------------------------------------------------------
    def padded(name: str, size: int) -> bytes:
        """A JSON order of exactly ``size`` bytes."""
        base = order_body(name, note="")
        return base.replace(b'"note": ""', b'"note": "' + b"x" * (size - len(base)) + b'"')

    yield case(
        "oversized",
        "one byte over the limit, with Content-Length",
        padded("big", max_body + 1),
        413,
        "nothing",
    )
    yield case(
        "at-the-limit", "exactly the limit: accepted", padded("limit", max_body), 200, "stored"
    )
    yield case(
        "oversized-chunked",
        "over the limit without Content-Length (streamed in chunks)",
        None,  # type: ignore[arg-type]
        413,
        "nothing",
        chunks=tuple(b"x" * 8192 for _ in range(max_body // 8192 + 2)),
        headers={"X-Shopline-Hmac-Sha256": "0" * 64},
    )

    # -- signed bodies that are not a JSON object: poison --------------------------------------
    not_objects = {
        "json-truncated": ("JSON cut off mid-way", order_body("trunc")[:40]),
        "json-empty-body": ("an empty body", b""),
        "json-array": ("a JSON array", b'[{"id": "1"}]'),
        "json-string": ("a JSON string", b'"orders/paid"'),
        "json-null": ("JSON null", b"null"),
        "json-number": ("a JSON number", b"12345"),
        "json-nan": ("a bare NaN", b"NaN"),
        "json-deep-objects": ("objects nested 100 deep", b'{"a":' * 100 + b"1" + b"}" * 100),
        "json-deep-arrays": (
            "arrays nested 100,000 deep (RecursionError)",
            b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        ),
        "json-invalid-utf8": ("bytes that are not UTF-8", b'{"id": "1", "name": "\xff\xfe"}'),
        "json-raw-nul": ("a raw NUL byte inside a string", b'{"id": "1", "name": "a\x00b"}'),
        "json-huge-integer": (
            "a 5,000-digit quantity (beyond what Python reads as an integer)",
            order_body("huge").replace(b'"quantity": 1', b'"quantity": ' + b"9" * 5000),
        ),
        "json-lone-surrogate": (
            "a lone surrogate, escaped, in a SKU (text no API can take)",
            order_body("surrogate", sku="SKU-\\ud800").replace(b"\\\\ud800", b"\\ud800"),
        ),
        "json-nan-total": (
            "NaN as the order total (Python reads it, JSON has no NaN)",
            order_body("nan").replace(
                b'"financial_status"', b'"total_price": NaN, "financial_status"'
            ),
        ),
        "json-trailing-garbage": ("a JSON object followed by garbage", order_body("tail") + b"}}"),
    }
    for name, (why, payload) in not_objects.items():
        yield signed(name, why, payload, "poison")
    form = b"id=1&name=%231001&financial_status=paid"
    yield signed(
        "content-type-form",
        "a form-encoded body declared as such",
        form,
        "poison",
        Content_Type="application/x-www-form-urlencoded",
    )
    multipart = b'--b\r\nContent-Disposition: form-data; name="id"\r\n\r\n1\r\n--b--\r\n'
    yield signed(
        "content-type-multipart",
        "a multipart body",
        multipart,
        "poison",
        Content_Type="multipart/form-data; boundary=b",
    )

    # -- signed JSON objects, however odd: stored for the sync to judge ------------------------
    odd = {
        "odd-wrong-types": (
            "an order whose fields have the wrong types",
            b'{"id": {"$gt": ""}, "line_items": "all", "total_price": [1]}',
        ),
        "odd-escaped-nul": (
            "an escaped NUL in the order name",
            order_body("nul", name="#H\\u0000X").replace(b"\\\\u0000", b"\\u0000"),
        ),
        "odd-rtl-override": (
            "a right-to-left override in a SKU",
            order_body("rtl", sku="\u202eSKU-LIVE"),
        ),
        "odd-emoji-sku": ("emoji in a SKU", order_body("emoji", sku="TENT-\U0001f3d5-GRN")),
        "odd-duplicate-keys": (
            "the same key twice in the object",
            order_body("dupkeys").replace(b'{"id"', b'{"id": "1", "id"'),
        ),
    }
    for name, (why, payload) in odd.items():
        yield signed(name, why, payload, "stored")
    yield signed(
        "content-type-text",
        "valid JSON declared as text/plain",
        order_body("text"),
        "stored",
        Content_Type="text/plain",
    )
    yield signed(
        "content-type-missing",
        "valid JSON with no Content-Type",
        order_body("noct"),
        "stored",
        Content_Type=None,
    )
    utf16 = json.dumps(json.loads(order_body("utf16"))).encode("utf-16")
    yield signed(
        "content-type-utf16",
        "the order in UTF-16, declared so",
        utf16,
        "stored",
        Content_Type="application/json; charset=utf-16",
    )

    # -- headers -------------------------------------------------------------------------------
    yield case(
        "topic-missing",
        "no X-Shopline-Topic: stored under 'unknown', for no sync to claim",
        order_body("notopic"),
        200,
        "stored",
        headers={"X-Shopline-Topic": None},
        topic="unknown",
    )
    yield signed(
        "topic-unknown",
        "a topic no sync handles",
        order_body("products"),
        "stored",
        X_Shopline_Topic="products/delete",
    )
    yield signed(
        "shop-domain-other",
        "another shop's domain (the signature is the authority)",
        order_body("othershop"),
        "stored",
        X_Shopline_Shop_Domain="evil.myshopline.com",
    )
    yield signed(
        "webhook-id-non-ascii",
        "a webhook id with Latin-1 bytes",
        order_body("latin"),
        "stored",
        X_Shopline_Webhook_Id=b"wh-caf\xe9",
    )
    yield signed(
        "webhook-id-missing",
        "no webhook id: the body's digest keys it",
        order_body("noid"),
        "stored",
        X_Shopline_Webhook_Id=None,
    )
    for name, header, value in (
        ("webhook-id-overlong", "X_Shopline_Webhook_Id", "w" * 1000),
        ("topic-overlong", "X_Shopline_Topic", "orders/" + "p" * 493),
        ("shop-domain-overlong", "X_Shopline_Shop_Domain", "s" * 990 + ".myshopline.com"),
    ):
        why = f"a {len(value):,}-character {header.split('_', 2)[2].replace('_', ' ').lower()}"
        yield signed(name, why, order_body(name), "nothing", status=400, **{header: value})

    # -- replays -------------------------------------------------------------------------------
    first = signed("replay-first", "the first delivery of an event", order_body("replay"), "stored")
    yield first
    yield Delivery(
        "replay-same",
        "the same event again, byte for byte",
        first.body,
        first.headers,
        200,
        "duplicate",
        replays=first,
    )
    changed = order_body("replay", note="edited")
    yield Delivery(
        "replay-other-body",
        "the same event id with another (signed) body: the first stays",
        changed,
        {**first.headers, "X-Shopline-Hmac-Sha256": signature(changed, secret)},
        200,
        "duplicate",
        replays=first,
    )
    noid = signed(
        "replay-no-id-first",
        "a delivery without id",
        order_body("replaynoid"),
        "stored",
        X_Shopline_Webhook_Id=None,
    )
    yield noid
    yield Delivery(
        "replay-no-id-again",
        "the same body again without id: its digest dedupes it",
        noid.body,
        noid.headers,
        200,
        "duplicate",
        replays=noid,
    )
    poisoned = signed(
        "replay-poison-first", "an unreadable signed delivery", b"{not json", "poison"
    )
    yield poisoned
    yield Delivery(
        "replay-poison-again",
        "the same unreadable delivery again: one poison row, one exception",
        poisoned.body,
        poisoned.headers,
        200,
        "duplicate",
        replays=poisoned,
    )
