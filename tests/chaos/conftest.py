"""Fixtures of the reliability campaign's tests: the demo credentials, and a calm world.

The calm world is the reduced campaign's world (both sandboxes, the receiver and a state store on
loopback) with no faults and a few orders carried all the way through — imported, shipped, paid,
posted — so that every invariant holds in it and a test can break one thing and watch the
invariant that guards it fail. One order has discounts and a unit refunded before its import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from benchmarks.chaos.reduced import ReducedCampaign, credentials_from_env
from benchmarks.chaos.world import World, campaign_clients, temporary_world
from stokline.envfile import load_env_file
from stokline.sync.stock.sync import sync_stock

ROOT = Path(__file__).resolve().parents[2]
KNOWN_SKUS = ("TENT-2P-GRN", "STOVE-MINI")  # renamed in Stokly, mapped by override


@pytest.fixture(scope="module")
def credentials() -> Iterator[dict[str, str]]:
    """The demo sandbox credentials, in the environment as the mapping expects them."""
    values: dict[str, str] = {}
    load_env_file(ROOT / ".env.demo", environ=values)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield credentials_from_env()


class CalmWorld:
    """A world where a few orders went all the way through without a fault."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.campaign = ReducedCampaign(world, rounds=0, crashes=0, receiver_restarts=0)
        self.shop = httpx.Client(base_url=world.shopline.url, timeout=10)
        self.stok = httpx.Client(base_url=world.stokly.url, timeout=10)
        self.orders = [self.place(sku, n) for n, sku in enumerate(KNOWN_SKUS * 2)]
        self.refunded = self.place_refunded_in_part()
        self.settle()
        for order in self.orders[:2]:
            self.dispatch(order["id"])
        self.settle()

    def place(self, sku: str, n: int) -> dict:
        body = {
            "lines": [{"sku": sku, "quantity": 1}],
            "customer": {"email": f"calm.{n}@example.com", "first_name": "Calm"},
        }
        response = self.shop.post("/_sandbox/orders", json=body)
        response.raise_for_status()
        return response.json()["order"]

    def place_refunded_in_part(self) -> dict:
        """Three units with a line discount and a 10 % code, one unit refunded before the
        orders sync sees it: imported with two units and their share of the money."""
        body = {
            "lines": [{"sku": KNOWN_SKUS[0], "quantity": 3, "discount": "2.50"}],
            "customer": {"email": "calm.refunded@example.com", "first_name": "Calm"},
            "discount_code": {"code": "SPRING10", "type": "percentage", "value": "10"},
            "shipping_title": "DPD Next Day",
        }
        response = self.shop.post("/_sandbox/orders", json=body)
        response.raise_for_status()
        order = response.json()["order"]
        refund = {
            "lines": [
                {
                    "line_item_id": order["line_items"][0]["id"],
                    "quantity": 1,
                    "type": "Unshipped",
                    "restock_type": "cancel",
                }
            ]
        }
        self.shop.post(f"/_sandbox/orders/{order['id']}/refund", json=refund).raise_for_status()
        return order

    def dispatch(self, order_id: str) -> None:
        body = {
            "sourceReferenceId": order_id,
            "carrier": "royal-mail",
            "trackingNumbers": [f"RM{order_id[-9:]}GB"],
        }
        self.stok.post("/_sandbox/dispatch", json=body).raise_for_status()

    def settle(self) -> None:
        assert asyncio.run(self.campaign.settle()), "the calm world did not settle"

    def read_all_drift(self) -> None:
        """A full stock pass as one started a drift period after the last: it reads every
        SHOPLINE level, so a level changed by hand there is set right whatever the rotation."""
        mapping = self.world.mapping
        later = datetime.now(UTC) + mapping.syncs.stock.drift_every

        async def run() -> None:
            async with campaign_clients(mapping) as (shop, stok):
                report = await sync_stock(
                    mapping, shopline=shop, stokly=stok, store=self.world.store, clock=lambda: later
                )
                assert report.ok, report

        asyncio.run(run())

    def snapshot(self):
        return asyncio.run(self.campaign.observe())

    def close(self) -> None:
        self.shop.close()
        self.stok.close()
        self.campaign.close()


@pytest.fixture(scope="module")
def calm(credentials: dict[str, str]) -> Iterator[CalmWorld]:
    with temporary_world(24, credentials) as world:
        calm = CalmWorld(world)
        try:
            yield calm
        finally:
            calm.close()
