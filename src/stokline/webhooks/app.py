"""The webhook receiver: verify, persist, acknowledge, signal — and never import inline.

``POST /webhooks/{client}`` takes SHOPLINE deliveries for one client. The signature is checked over
the raw body before anything else; a missing or wrong one is 401 and nothing is stored. A signed
delivery is stored in the inbox (unique on ``X-Shopline-Webhook-Id``, so a re-delivery answers 200
and adds nothing) and acknowledged at once; the orders flow is signalled, debounced, from a
background thread. A signed body that is not JSON is kept as a poison message and surfaced as an
exception — never dropped. Input is bounded: a body over ``max_body_bytes`` is 413 (checked on the
declared length and again while reading), a header longer than the inbox column keeping it is 400,
and a request that does not arrive in time is 408 (the bound is the server's: see
`stokline.webhooks.deadline`). A client that goes away before its body is in is not an error: it
gets no answer and nothing is stored.

The clients served come from `stokline.webhooks.clients`: a client whose mapping does not load or
whose webhook secret is unset answers 503 with the reason in one line (never a secret) and stores
nothing, while the others are served; new and changed mappings are picked up without a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from stokline.store import Store
from stokline.store.tables import inbox as inbox_table
from stokline.webhooks.clients import ClientEndpoint, Clients
from stokline.webhooks.signature import verify

log = logging.getLogger("stokline.webhooks")

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
# Headers the inbox keeps, and the longest value its column holds. SHOPLINE's are far shorter; a
# longer one is refused (400), never truncated into a collision nor left to fail in the database.
STORED_HEADERS = {
    "x-shopline-webhook-id": inbox_table.c.webhook_id.type.length,
    "x-shopline-topic": inbox_table.c.topic.type.length,
    "x-shopline-shop-domain": inbox_table.c.shop_domain.type.length,
}


class Debouncer:
    """Calls ``signal(client, topic)`` at most once per ``interval`` per client, off the request path."""

    def __init__(self, signal: Callable[[str, str], None], interval: float = 2.0):
        self._signal = signal
        self._interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, client: str, topic: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(client, -1e9) < self._interval:
                return
            self._last[client] = now
        threading.Thread(target=self._safe, args=(client, topic), daemon=True).start()

    def _safe(self, client: str, topic: str) -> None:
        try:
            self._signal(client, topic)
        except Exception as exc:  # a lost signal costs one sweep interval, never the event
            log.warning("could not signal the orders flow for %s: %s", client, type(exc).__name__)


def _too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _not_json(constant: str) -> object:
    """Python reads NaN and Infinity; JSON (RFC 8259) has neither, and no amount can be one."""
    raise ValueError(f"{constant} is not a JSON value")


def _problem_with(body: bytes) -> str | None:
    """Why a signed body cannot be processed, or None when it is a JSON object."""
    try:
        data = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        return f"body is not JSON: {type(exc).__name__}"
    if not isinstance(data, dict):
        return "body is JSON but not an object"
    if _too_deep(data):
        return f"body nests deeper than {MAX_JSON_DEPTH} levels"
    try:  # JSON may escape half a UTF-16 pair (\ud800); no API downstream can take such text
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "body holds text that is not Unicode (a lone surrogate such as \\ud800)"
    return None


def create_app(
    endpoints: dict[str, ClientEndpoint] | Clients,
    store: Store,
    *,
    signal: Callable[[str, str], None] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    app = FastAPI(
        title="stokline webhook receiver",
        description="Receives SHOPLINE webhook deliveries, verifies and stores them for the syncs.",
        version="1",
    )
    # A fixed set of endpoints, or clients read from mapping files and reloaded when asked.
    clients = endpoints if isinstance(endpoints, Clients) else Clients.fixed(endpoints)
    notify = Debouncer(signal) if signal else None

    @app.get("/health", summary="Liveness, the clients served, and those not served with why")
    def health() -> dict[str, object]:
        # Checks the mapping files first (at most once per recheck interval), so that a client
        # just added is listed, as `stokline deploy --receiver` expects.
        return clients.refresh().health()

    @app.post(
        "/webhooks/{client}",
        summary="A SHOPLINE webhook delivery for one client",
        responses={
            200: {"description": "Stored (or already stored: a re-delivery)"},
            400: {"description": "A header longer than the inbox keeps; nothing stored"},
            401: {"description": "Missing or wrong X-Shopline-Hmac-Sha256; nothing stored"},
            404: {"description": "No such client"},
            503: {
                "description": "A client whose mapping does not load or whose webhook secret is "
                "not set: the reason in one line; nothing stored"
            },
            408: {
                "description": "Headers and body not received within the receiver's bound "
                "(`stokline receiver --body-timeout`); connection closed, nothing stored"
            },
            413: {"description": "Body larger than the limit; nothing stored"},
        },
    )
    async def receive(client: str, request: Request) -> JSONResponse:
        snapshot = clients.snapshot  # one snapshot for the whole request, whatever reloads
        endpoint = snapshot.served.get(client)
        if endpoint is None and clients.due():  # a client added or fixed since the last check?
            snapshot = await run_in_threadpool(clients.refresh)
            endpoint = snapshot.served.get(client)
        if endpoint is None:
            reason = snapshot.not_served.get(client)
            if reason is None:
                return JSONResponse({"error": "unknown client"}, status_code=404)
            return JSONResponse(
                {"error": f"client {client} is not served: {reason}"}, status_code=503
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return JSONResponse({"error": "body too large"}, status_code=413)
        received = bytearray()
        try:
            async for chunk in request.stream():
                received += chunk
                if len(received) > max_body_bytes:
                    return JSONResponse({"error": "body too large"}, status_code=413)
        except ClientDisconnect:  # gone before its body was in, or cut off at the server's bound
            return JSONResponse({"error": "client disconnected"}, status_code=400)  # never sent
        body = bytes(received)
        signed = request.headers.get("x-shopline-hmac-sha256")
        if not verify(body, endpoint.webhook_secret, signed):
            # The client's mapping may have changed its secret since the last check.
            fresh = (await run_in_threadpool(clients.refresh)) if clients.due() else snapshot
            changed = fresh.served.get(client)
            if changed in (None, endpoint) or not verify(body, changed.webhook_secret, signed):
                return JSONResponse({"error": "invalid signature"}, status_code=401)
            endpoint = changed
        for name, limit in STORED_HEADERS.items():
            if limit and len(request.headers.get(name, "")) > limit:
                return JSONResponse(
                    {"error": f"{name} is longer than {limit} characters"}, status_code=400
                )

        topic = request.headers.get("x-shopline-topic") or "unknown"
        # Without SHOPLINE's id, the body's digest still makes a re-delivery a duplicate.
        webhook_id = (
            request.headers.get("x-shopline-webhook-id")
            or "sha256:" + hashlib.sha256(body).hexdigest()
        )
        shop = request.headers.get("x-shopline-shop-domain")
        problem = _problem_with(body)
        if problem:
            added = store.inbox.add(
                client, webhook_id, topic, body, shop_domain=shop, status="poison", error=problem
            )
            if added:
                store.exceptions.raise_(
                    client,
                    "poison_message",
                    "webhook",
                    webhook_id,
                    f"a signed {topic} delivery could not be read: {problem}",
                    team=endpoint.poison_team,
                    payload={"topic": topic, "bytes": len(body)},
                )
            return JSONResponse({"status": "poison", "stored": added})
        added = store.inbox.add(client, webhook_id, topic, body, shop_domain=shop)
        if added and notify:
            notify(client, topic)
        return JSONResponse({"status": "stored" if added else "duplicate"})

    return app
