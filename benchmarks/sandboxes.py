"""Both sandboxes for a benchmark: seeded ahead of time, served by `stokline sandbox` in a child.

The data directory is seeded in this process before the server starts (the sandboxes seed in
bulk: 20,000 SKUs take seconds), so a benchmark can shape the data first — a third SHOPLINE
location, a backlog of paid orders — and the server finds it seeded and serves it unchanged.
The sandbox process serves with its rate limits lifted; `Sandboxes.real_limits` switches both
to the documented ones (SHOPLINE 4/s with a burst of 40, Stokly 120/min) through their control
endpoints, and `lift_limits` switches them off again.

`benchmark_mapping` derives a mapping from the demo client's, pointed at the served ports and,
when asked, with other locations: the demo mapping stays the one source of every other rule.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.common import ROOT, Child, demo_env, free_port, http_ok, wait_until
from stokline.config import load_mapping
from stokline.sandbox.catalogue import CatalogueEntry, demo_catalogue
from stokline.sandbox.common import DocStore
from stokline.sandbox.shopline.seed import seed_demo as seed_shopline
from stokline.sandbox.shopline.state import ShoplineState, public
from stokline.sandbox.stokly.seed import seed_demo as seed_stokly

DEMO_MAPPING = ROOT / "mappings" / "demo.yaml"
SEED = 7  # the demo seed's random seed (both sandboxes' default)

SHOPLINE_REAL_LIMIT = {"rate_per_s": 4.0, "burst": 40}
STOKLY_REAL_LIMIT = 120  # per minute

#: The stock benchmark's three SHOPLINE locations, each fed by one Stokly location (buffer 0, so
#: one Stokly level changes exactly one SHOPLINE level). 7004 is added to the demo store, whose
#: own third location (7003) is closed.
THREE_LOCATIONS = (
    ("7001", "Online store (UK)", "Leeds DC"),
    ("7002", "Bristol click & collect", "Bristol DC"),
    ("7004", "York store", "York Store"),
)


def seed(data_dir: Path, skus: int, *, extra_locations: bool = False) -> dict[str, Any]:
    """Seed both sandboxes' stores in ``data_dir`` with the demo client at ``skus`` SKUs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shopline = DocStore(data_dir / "shopline.sqlite3")
    try:
        counts = {"shopline": seed_shopline(shopline, skus=skus, seed=SEED)}
        if extra_locations:
            state = ShoplineState(shopline)
            for location_id, name, _ in THREE_LOCATIONS:
                if shopline.get("location", location_id) is None:
                    state.add_location(location_id, name, city=name.split()[0])
    finally:
        shopline.close()
    stokly = DocStore(data_dir / "stokly.sqlite3")
    try:
        counts["stokly"] = seed_stokly(stokly, skus=skus, seed=SEED)
    finally:
        stokly.close()
    return counts


def synced_entries(skus: int) -> list[CatalogueEntry]:
    """Catalogue entries both sides know under one SKU and the mapping syncs (no gift cards,
    samples, overrides or case tricks): the SKUs a benchmark may change or order freely."""
    return [
        e
        for e in demo_catalogue(skus, SEED)[8:]
        if e.known_to_stokly and e.listed_on_shopline and e.sku == e.shopline_sku
    ]


def place_paid_orders(
    state: ShoplineState, count: int, *, skus: int, buyers: int, rng: random.Random
) -> list[dict[str, Any]]:
    """``count`` paid storefront orders (1–3 lines of SKUs Stokly knows, from ``buyers`` distinct
    buyers) placed in ``state``; returns them as SHOPLINE's API shows them."""
    sellable = [e.shopline_sku for e in synced_entries(skus)]
    placed = []
    for n in range(count):
        buyer = rng.randrange(buyers)
        customer: dict[str, Any] = {"first_name": "Bench", "last_name": f"Buyer {buyer}"}
        # Most buyers give an email, some a phone as well, one in five only a phone.
        if buyer % 5:
            customer["email"] = f"bench.buyer{buyer}@example.com"
        if buyer % 5 == 0 or buyer % 3 == 0:
            customer.update(phone=f"7700{buyer:06d}", area_code="+44")
        lines = [
            {"sku": sku, "quantity": rng.choice((1, 1, 1, 2))}
            for sku in rng.sample(sellable, rng.choice((1, 1, 2, 3)))
        ]
        order = state.create_order(
            {
                "line_items": lines,
                "customer": customer,
                "shipping_title": rng.choice(("Royal Mail Tracked 48", "DPD Next Day")),
                "gateway": rng.choice(("shopline_payments", "paypal", "klarna")),
                "paid": True,
                "note": f"benchmark order {n}",
            }
        )
        placed.append(public(order))
    return placed


def add_paid_orders(
    data_dir: Path, count: int, *, skus: int, buyers: int, rng: random.Random
) -> int:
    """A backlog of ``count`` paid orders in the seeded SHOPLINE store of ``data_dir``."""
    store = DocStore(data_dir / "shopline.sqlite3")
    try:
        place_paid_orders(ShoplineState(store), count, skus=skus, buyers=buyers, rng=rng)
    finally:
        store.close()
    return count


def order_documents(count: int, *, skus: int = 300, seed_value: int = 11) -> list[dict[str, Any]]:
    """``count`` paid orders as SHOPLINE's API and webhooks show them, made by an in-memory demo
    store (nothing served, nothing kept)."""
    store = DocStore(None)
    try:
        seed_shopline(store, skus=skus, seed=SEED)
        state = ShoplineState(store)
        rng = random.Random(seed_value)
        return place_paid_orders(state, count, skus=skus, buyers=3_600, rng=rng)
    finally:
        store.close()


@dataclass
class Sandboxes:
    """The served sandboxes: their URLs and the child process serving them."""

    shopline_url: str
    stokly_url: str
    child: Child

    def _put(self, url: str, body: dict[str, Any]) -> None:
        httpx.put(url, json=body, timeout=30).raise_for_status()

    def real_limits(self) -> None:
        """SHOPLINE's documented leaky bucket and Stokly's 120 requests a minute."""
        self._put(f"{self.shopline_url}/_sandbox/rate_limit", SHOPLINE_REAL_LIMIT)
        self._put(f"{self.stokly_url}/_sandbox/rate-limit", {"rate_per_minute": STOKLY_REAL_LIMIT})

    def lift_limits(self) -> None:
        self._put(f"{self.shopline_url}/_sandbox/rate_limit", {"rate_per_s": None, "burst": 40})
        self._put(f"{self.stokly_url}/_sandbox/rate-limit", {"rate_per_minute": None})

    def goods_receipt(self, location: str, lines: Iterable[tuple[str, int]], reference: str):
        """Receive goods into a Stokly location (the warehouse's control endpoint)."""
        body = {
            "location": location,
            "reference": reference,
            "items": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        }
        response = httpx.post(f"{self.stokly_url}/_sandbox/goods-receipt", json=body, timeout=120)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.child.stop()


def serve(data_dir: Path, skus: int, log: Path) -> Sandboxes:
    """Serve the seeded ``data_dir`` with `stokline sandbox` on free ports, limits lifted."""
    shop_port, stok_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "stokline",
        "sandbox",
        "--data-dir",
        str(data_dir),
        "--skus",
        str(skus),
        "--shopline-port",
        str(shop_port),
        "--stokly-port",
        str(stok_port),
        "--no-rate-limit",
    ]
    child = Child("sandbox", argv, log, env=demo_env())
    served = Sandboxes(f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{stok_port}", child)
    try:
        wait_until(
            lambda: http_ok(f"{served.shopline_url}/_sandbox/health"), "SHOPLINE sandbox", 60, child
        )
        wait_until(
            lambda: http_ok(f"{served.stokly_url}/_sandbox/state"), "Stokly sandbox", 60, child
        )
    except BaseException:
        child.stop()
        raise
    return served


def benchmark_mapping(
    target: Path,
    shopline_url: str,
    stokly_url: str,
    *,
    locations: Iterable[tuple[str, str, str]] | None = None,
) -> Path:
    """The demo mapping pointed at ``shopline_url``/``stokly_url``, written to ``target``.

    ``locations`` (SHOPLINE id, name, Stokly location) replaces the demo's locations, each with
    buffer 0. The result is validated like any mapping file.
    """
    data = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
    data["connections"]["shopline"]["base_url"] = shopline_url
    data["connections"]["stokly"]["base_url"] = stokly_url
    if locations is not None:
        data["locations"] = [
            {
                "shopline_location": shopline_id,
                "name": name,
                "stokly_locations": [stokly_name],
                "fulfil_from": stokly_name,
                "stock": {"sync": True, "buffer": 0},
                **({"default": True} if n == 0 else {}),
            }
            for n, (shopline_id, name, stokly_name) in enumerate(locations)
        ]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    load_mapping(target)  # refuses an invalid file with its problems
    return target
