"""Both sandboxes served in-process (ASGI transport), a SQLite store, and the demo mapping.

`World` drives the SHOPLINE sandbox through its control API as a buyer and a merchant would,
delivers signed webhooks through the real receiver, runs the orders sync through `open_clients`,
and reads the Stokly sandbox's state to check what arrived. Faults are injected only at the
transport seam (`StoklyFaults`), never by replacing our own functions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stokline.config import Mapping, load_mapping
from stokline.sandbox.shopline.app import create_app as create_shopline
from stokline.sandbox.stokly.app import create_app as create_stokly
from stokline.sandbox.stokly.control import summary as stokly_summary
from stokline.store import Store
from stokline.store.tables import metadata
from stokline.sync.clients import open_clients
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.sync import sync_orders
from stokline.webhooks import ClientEndpoint, sign
from stokline.webhooks import create_app as create_receiver

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-shopline-token-abcdef"
APP_SECRET = "sandbox-app-secret-abcdef"
CLIENT_ID = "stokline-tests"
CLIENT_SECRET = "sandbox-stokly-secret-abcdef"


class StoklyFaults(httpx.AsyncBaseTransport):
    """The Stokly sandbox behind a seam where a test decides, per request, what goes wrong.

    ``on_create(payload, forward)`` sees every ``POST /v2/saleorders``; it may answer itself
    (an error response), forward and then raise (a crash after Stokly created the order), or
    just forward.
    """

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.on_create: Callable[..., Any] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.on_create and request.method == "POST" and request.url.path == "/v2/saleorders":
            payload = json.loads(await request.aread())
            return await self.on_create(payload, lambda: self.inner.handle_async_request(request))
        return await self.inner.handle_async_request(request)


class World:
    def __init__(self, tmp_path: Path, mapping: Mapping, database_url: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.mapping = mapping
        self.shopline_app = create_shopline(
            access_token=TOKEN, app_secret=APP_SECRET, skus=30, rate_per_s=None
        )
        self.stokly_app = create_stokly(
            account_key="demo-outdoor",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            seed_skus=30,
            rate_per_minute=None,
        )
        self.shop = TestClient(self.shopline_app)
        # The demo seed leaves some variants nearly sold out; checkout refuses those, and stock is
        # not what these tests are about.
        sandbox_store = self.shopline_app.state.shopline.store
        for _, level in sandbox_store.scan("inventory_level"):
            key = f"{level['inventory_item_id']}:{level['location_id']}"
            sandbox_store.update("inventory_level", key, {**level, "available": 10_000})
        self.faults = StoklyFaults(self.stokly_app)
        self.store = Store(database_url or f"sqlite:///{tmp_path / 'state.db'}")
        self.receiver = create_receiver(
            {"demo-outdoor": ClientEndpoint("demo-outdoor", APP_SECRET)}, self.store
        )

    def close(self) -> None:
        self.shopline_app.state.shopline.close()
        self.store.close()

    # -- SHOPLINE: buyer and merchant -----------------------------------------------------------

    def place(self, *lines: tuple[str, int], **spec: Any) -> dict[str, Any]:
        body = {"lines": [{"sku": sku, "quantity": qty} for sku, qty in lines], **spec}
        response = self.shop.post("/_sandbox/orders", json=body)
        assert response.status_code == 200, response.text
        return response.json()["order"]

    def cancel(self, order_id: str) -> dict[str, Any]:
        response = self.shop.post(f"/_sandbox/orders/{order_id}/cancel", json={})
        assert response.status_code == 200, response.text
        return response.json()["order"]

    def shopline_summary(self) -> dict[str, Any]:
        return self.shop.get("/_sandbox/summary").json()

    # -- webhooks -------------------------------------------------------------------------------

    async def deliver(self, order: dict[str, Any], topic: str, webhook_id: str) -> int:
        body = json.dumps(order).encode()
        headers = {
            "X-Shopline-Topic": topic,
            "X-Shopline-Hmac-Sha256": sign(body, APP_SECRET),
            "X-Shopline-Webhook-Id": webhook_id,
            "Content-Type": "application/json",
        }
        transport = httpx.ASGITransport(app=self.receiver)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
            response = await http.post("/webhooks/demo-outdoor", content=body, headers=headers)
        return response.status_code

    # -- the sync -------------------------------------------------------------------------------

    def run(self, mapping: Mapping | None = None, **options: Any) -> OrdersReport:
        mapping = mapping or self.mapping

        async def scenario() -> OrdersReport:
            async with open_clients(
                mapping,
                lift_limits=True,  # the sandboxes' own limits are off too
                shopline_transport=httpx.ASGITransport(app=self.shopline_app),
                stokly_transport=self.faults,
            ) as (shopline, stokly):
                return await sync_orders(
                    mapping, shopline=shopline, stokly=stokly, store=self.store, **options
                )

        return asyncio.run(scenario())

    # -- Stokly: what arrived -------------------------------------------------------------------

    @property
    def stokly_state(self) -> Any:
        return self.stokly_app.state.sandbox.state

    def sale_orders(self, shopline_id: str) -> list[dict[str, Any]]:
        return [
            o for o in self.stokly_state.saleorders if o.get("sourceReferenceId") == shopline_id
        ]

    def stokly_summary(self) -> dict[str, Any]:
        return stokly_summary(self.stokly_state)

    def customers_with(self, **fields: str) -> list[dict[str, Any]]:
        return [
            c for c in self.stokly_state.customers if all(c.get(k) == v for k, v in fields.items())
        ]

    def store_rows(self) -> dict[str, list[tuple]]:
        with self.store.engine.connect() as conn:
            return {
                name: sorted(map(tuple, conn.execute(select(table))), key=repr)
                for name, table in metadata.tables.items()
            }

    def mapping_with(self, edit: Callable[[str], str]) -> Mapping:
        """A modified copy of demo.yaml, loaded from tmp_path (as a consultant would edit it)."""
        text = edit((ROOT / "mappings/demo.yaml").read_text(encoding="utf-8"))
        path = self.tmp_path / "demo-edited.yaml"
        path.write_text(text, encoding="utf-8")
        return load_mapping(path)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[World]:
    monkeypatch.setenv("STOKLY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("STOKLY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SHOPLINE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("SHOPLINE_APP_SECRET", APP_SECRET)
    # The state store: SQLite, or both backends where a module says `pytestmark = BOTH_BACKENDS`.
    world = World(tmp_path, load_mapping(ROOT / "mappings/demo.yaml"), database_url)
    yield world
    world.close()
