"""Fixtures for the sandbox tests: a served SHOPLINE sandbox and a webhook receiver.

Fixture names carry their system (``shopline_*``) because the Stokly sandbox tests share
this directory.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from stokline.sandbox.common import ServerThread
from stokline.sandbox.shopline import create_app

SHOPLINE_TOKEN = "shpat_sandbox_test_token"
SHOPLINE_SECRET = "sandbox-app-secret"
SHOPLINE_VERSION = "v20251201"
SHOPLINE_PREFIX = f"/admin/openapi/{SHOPLINE_VERSION}"


@dataclass
class ShoplineServer:
    """A running SHOPLINE sandbox and clients for its two APIs."""

    server: ServerThread
    app: Any
    admin: httpx.Client
    control: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sandbox(self) -> Any:
        return self.app.state.shopline

    def place_order(self, **spec: Any) -> dict[str, Any]:
        """Place a storefront order through the control API."""
        spec.setdefault("lines", [{"sku": "TENT-2P-GRN", "quantity": 1}])
        spec.setdefault("customer", {"email": "walker@example.com", "first_name": "Wendy"})
        response = self.control.post("/_sandbox/orders", json=spec)
        assert response.status_code == 200, response.text
        return response.json()["order"]


def _stock_up(app: Any, skus: tuple[str, ...]) -> None:
    """Plenty of stock for the SKUs tests order, so checkout never refuses them."""
    state = app.state.shopline.state
    for sku in skus:
        ref = state.store.get("sku_ref", sku)
        _, variant = state.variant(ref["variant_id"])
        for location in ("7001", "7002"):
            body = {"inventory_item_id": variant["inventory_item_id"], "location_id": location}
            state.set_level({**body, "available": 500})


@pytest.fixture(scope="module")
def shopline_server() -> Iterator[ShoplineServer]:
    """A seeded sandbox over real HTTP, no rate limit, fast webhook retries."""
    app = create_app(
        access_token=SHOPLINE_TOKEN,
        app_secret=SHOPLINE_SECRET,
        rate_per_s=None,
        webhook_retry_scale=0.01,
    )
    _stock_up(app, ("TENT-2P-GRN", "STOVE-MINI", "ACME-TENT-2P-ORANGE"))
    with ServerThread(app) as server:
        admin = httpx.Client(
            base_url=server.url + SHOPLINE_PREFIX,
            headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
            timeout=10,
        )
        control = httpx.Client(base_url=server.url, timeout=10)
        try:
            yield ShoplineServer(server, app, admin, control)
        finally:
            admin.close()
            control.close()
    app.state.shopline.close()


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class WebhookReceiver:
    """A tiny ASGI webhook endpoint that records every request.

    ``plan[topic]`` is a list of statuses answered in turn (then 200); ``delay_s`` makes every
    answer slow.
    """

    received: list[Received] = field(default_factory=list)
    plan: dict[str, list[int]] = field(default_factory=dict)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            self.received.append(Received(headers, body, time.monotonic()))
            queue = self.plan.get(headers.get("x-shopline-topic", ""), [])
            status = queue.pop(0) if queue else 200
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self.lock:
            return [r for r in self.received if predicate(r)]

    def wait_for(
        self, predicate: Callable[[Received], bool], count: int = 1, timeout: float = 5.0
    ) -> list[Received]:
        """Wait until ``count`` received requests match; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(
            f"expected {count} matching webhook(s), got {self.matching(predicate)}"
        )


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A fresh receiver served on a free loopback port."""
    receiver = WebhookReceiver()
    with ServerThread(receiver) as server:
        receiver.url = server.url
        yield receiver
