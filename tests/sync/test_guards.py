"""One malformed record from an API never aborts a pass: it is set aside, the rest goes on.

Both sandboxes serve real records; a `Tamper` seam between a client and its sandbox rewrites the
answers so that one record (an order, a product, a shipment) arrives broken the way a hostile or
buggy API would send it — a "NaN" amount, a SKU holding a lone surrogate (valid JSON text, not
valid Unicode), a quantity that is no number — beside good ones. Each test checks the sandboxes'
own state: the good records went through exactly once, the broken one is an exception (or is
reported and left alone), and the pass completed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from stokline.config import Mapping
from stokline.sync.catalogue.sync import CatalogueReport, sync_catalogue
from stokline.sync.clients import open_clients
from stokline.sync.fulfilment.report import FulfilmentReport
from stokline.sync.fulfilment.sync import sync_fulfilment
from stokline.sync.orders.report import OrdersReport
from stokline.sync.orders.sync import sync_orders
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.sync import sync_stock
from tests.pg import BOTH_BACKENDS
from tests.sync.conftest import World
from tests.sync.fulfilment.test_sync import NO_WAIT, Shop, Warehouse, imported

TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
CLIENT = "demo-outdoor"
# Stands for a lone surrogate in the JSON text a seam sends (json.dumps would escape the backslash).
SURROGATE_MARK = "@@LONE-SURROGATE@@"

Edit = Callable[[dict[str, Any]], None]


class Tamper(httpx.AsyncBaseTransport):
    """A sandbox behind a seam that breaks chosen records of its JSON answers on the way out.

    ``edits`` maps (list key, id field, id) to a function that changes each such record in
    place, e.g. ``("orders", "id", "123")`` or ``("data", "itemId", "…")``; a string value
    ``SURROGATE_MARK`` becomes ``TENT-\\ud800`` in the JSON text. ``sent`` keeps what every
    request carried (query and body), to check that nothing broken went out.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = (
            inner if isinstance(inner, httpx.AsyncBaseTransport) else httpx.ASGITransport(app=inner)
        )
        self.edits: dict[tuple[str, str, str], Edit] = {}
        self.sent: list[tuple[str, bytes]] = []  # (path, query and body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.path, request.url.query + b" " + await request.aread()))
        response = await self.inner.handle_async_request(request)
        if not self.edits or "json" not in response.headers.get("content-type", ""):
            return response
        raw = await response.aread()
        body = json.loads(raw)
        touched = False
        for (key, field, record_id), edit in self.edits.items():
            records = body.get(key) if isinstance(body, dict) else None
            for record in records if isinstance(records, list) else []:
                if isinstance(record, dict) and str(record.get(field)) == record_id:
                    edit(record)
                    touched = True
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        content = body_of(body) if touched else raw
        return httpx.Response(response.status_code, headers=headers, content=content)


def body_of(data: Any) -> bytes:
    return json.dumps(data).replace(f'"{SURROGATE_MARK}', '"TENT-\\ud800').encode()


def run_orders(world: World, seam: Tamper) -> OrdersReport:
    async def scenario() -> OrdersReport:
        async with open_clients(
            world.mapping,
            lift_limits=True,
            shopline_transport=seam,
            stokly_transport=world.faults,
        ) as (shopline, stokly):
            return await sync_orders(
                world.mapping, shopline=shopline, stokly=stokly, store=world.store
            )

    return asyncio.run(scenario())


def one_sale_order(world: World, order_id: str) -> None:
    assert len(world.sale_orders(order_id)) == 1
    assert world.stokly_summary()["duplicateSaleOrders"] == []


def poison_of(world: World, order_id: str) -> Any:
    [record] = [
        r
        for r in world.store.exceptions.list(client=CLIENT, entity_kind="order")
        if r.entity_id == order_id
    ]
    assert record.code == "poison_message"
    return record


# -- orders ------------------------------------------------------------------------------------


def nan_total(order: dict[str, Any]) -> None:
    order["total_price"] = "NaN"


def surrogate_sku(order: dict[str, Any]) -> None:
    order["line_items"][0]["sku"] = SURROGATE_MARK


def nan_discount(order: dict[str, Any]) -> None:
    # An amount no model declares: only the sync's own guard sees it.
    order["line_items"][0]["discount_allocations"] = [{"amount": "NaN"}]


@BOTH_BACKENDS
def test_an_order_with_a_nan_total_is_an_exception_and_the_good_one_imports_once(
    world: World,
) -> None:
    good = world.place((TENT, 1), customer={"email": "good@example.com"})
    bad = world.place((SOCKS, 1), customer={"email": "bad@example.com"})
    seam = Tamper(world.shopline_app)
    seam.edits[("orders", "id", bad["id"])] = nan_total

    report = run_orders(world, seam)
    one_sale_order(world, good["id"])
    assert world.sale_orders(bad["id"]) == []
    assert report.ok, report.errors
    record = poison_of(world, bad["id"])
    assert record.status == "open" and record.team
    assert "cannot be read" in record.message and "total_price" in record.message
    assert "finite" in record.message
    [row] = [r for r in report.exceptions if bad["id"] in r["entity"]]
    assert row["code"] == "poison_message"
    # The cursor moved past it: a broken order holds nothing up; its exception replays it.
    assert world.store.cursors.get(CLIENT, "orders") is not None

    again = run_orders(world, seam)
    assert again.ok and again.imported == 0
    one_sale_order(world, good["id"])
    assert poison_of(world, bad["id"]).attempts == 2

    seam.edits.clear()  # SHOPLINE's copy is readable again: it imports by itself
    healed = run_orders(world, seam)
    one_sale_order(world, bad["id"])
    one_sale_order(world, good["id"])
    assert poison_of(world, bad["id"]).status == "resolved"
    assert healed.exceptions_resolved == 1


@BOTH_BACKENDS
def test_an_order_with_a_sku_that_is_not_unicode_never_reaches_stokly(world: World) -> None:
    good = world.place((SOCKS, 2), customer={"email": "good@example.com"})
    bad = world.place((TENT, 1), customer={"email": "odd@example.com"})
    seam = Tamper(world.shopline_app)
    seam.edits[("orders", "id", bad["id"])] = surrogate_sku
    stokly_bodies: list[bytes] = []
    forward = world.faults.handle_async_request

    async def record(request: httpx.Request) -> httpx.Response:
        stokly_bodies.append(request.url.query + await request.aread())
        return await forward(request)

    world.faults.handle_async_request = record  # type: ignore[method-assign]
    report = run_orders(world, seam)
    one_sale_order(world, good["id"])
    assert world.sale_orders(bad["id"]) == []
    assert report.ok and report.deferred == 0, report.errors
    record_ = poison_of(world, bad["id"])
    assert "line_items[0].sku is not valid Unicode text: 'TENT-\\\\ud800'" in record_.message
    assert stokly_bodies and all(b"ud800" not in body.lower() for body in stokly_bodies)
    # What the run reports (and the flow's artifacts show) is valid Unicode: it can be sent on.
    json.dumps(report.exceptions, ensure_ascii=False).encode("utf-8")


def test_an_amount_no_model_declares_is_guarded_too(world: World) -> None:
    good = world.place((TENT, 1), customer={"email": "good@example.com"})
    bad = world.place((SOCKS, 1), customer={"email": "bad@example.com"})
    seam = Tamper(world.shopline_app)
    seam.edits[("orders", "id", bad["id"])] = nan_discount
    report = run_orders(world, seam)
    one_sale_order(world, good["id"])
    assert world.sale_orders(bad["id"]) == [] and report.ok
    message = poison_of(world, bad["id"]).message
    assert "line_items[0].discount_allocations[0].amount is 'NaN', not an amount" in message


def test_data_no_check_foresaw_fails_its_order_not_the_batch(world: World) -> None:
    good = world.place((TENT, 1), customer={"email": "good@example.com"})
    bad = world.place((SOCKS, 1), customer={"email": "bad@example.com"})
    seam = Tamper(world.shopline_app)

    def huge_discount(order: dict[str, Any]) -> None:
        # A finite number, so no guard refuses it: only the translation meets it (and overflows).
        order["line_items"][0]["discount_allocations"] = [{"amount": "1E+999999"}]

    seam.edits[("orders", "id", bad["id"])] = huge_discount
    report = run_orders(world, seam)
    one_sale_order(world, good["id"])
    assert world.sale_orders(bad["id"]) == [] and report.ok
    message = poison_of(world, bad["id"]).message
    assert message.startswith("the order could not be translated: InvalidOperation: ")


# -- stock -------------------------------------------------------------------------------------


class StockSeams:
    """Both sandboxes behind `Tamper` seams, and the level writes SHOPLINE accepted."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.shopline = Tamper(world.shopline_app)
        self.stokly = Tamper(world.faults)

    def run(self) -> StockReport:
        async def scenario() -> StockReport:
            async with open_clients(
                self.world.mapping,
                lift_limits=True,
                shopline_transport=self.shopline,
                stokly_transport=self.stokly,
            ) as (shopline, stokly):
                return await sync_stock(
                    self.world.mapping, shopline=shopline, stokly=stokly, store=self.world.store
                )

        self.shopline.sent.clear()
        return asyncio.run(scenario())

    def variant(self, sku: str) -> tuple[str, str]:
        """(product id, inventory item id) of the SHOPLINE variant with ``sku``."""
        for _, product in self.world.shopline_app.state.shopline.store.scan("product"):
            for variant in product["variants"]:
                if variant.get("sku") == sku:
                    return str(product["id"]), str(variant["inventory_item_id"])
        raise AssertionError(f"no SHOPLINE variant {sku}")

    def pushed_items(self) -> set[str]:
        """Inventory items whose level this pass wrote in SHOPLINE (adjusted or set)."""
        writes = [
            sent
            for path, sent in self.shopline.sent
            if path.endswith(("/inventory_levels/adjust.json", "/inventory_levels/set.json"))
        ]
        return {str(json.loads(s.split(b" ", 1)[1])["inventory_item_id"]) for s in writes}

    def item_id(self, sku: str) -> str:
        return next(i["itemId"] for i in self.world.stokly_state.items if i["sku"] == sku)


def test_a_malformed_product_or_stock_figure_holds_back_only_its_own_levels(world: World) -> None:
    world.run()  # the seeded paid orders reach Stokly: none waits for import
    seams = StockSeams(world)
    socks_product, socks_item = seams.variant(SOCKS)
    _, tent_item = seams.variant(TENT)

    def nan_price(product: dict[str, Any]) -> None:
        product["variants"][0]["price"] = "NaN"

    def nan_on_hand(record: dict[str, Any]) -> None:
        record["onHand"] = "NaN"

    seams.shopline.edits[("products", "id", socks_product)] = nan_price
    seams.stokly.edits[("data", "itemId", seams.item_id(TENT))] = nan_on_hand
    report = seams.run()

    pushed = seams.pushed_items()
    assert len(pushed) > 5  # every other level went out (SHOPLINE showed 10,000 everywhere)
    assert socks_item not in pushed and tent_item not in pushed
    assert report.pushed == report.levels_changed > 0 and report.failed == 0
    assert not report.ok  # incomplete: the next pass must finish the job
    errors = " | ".join(report.errors)
    assert f"SHOPLINE product {socks_product} is malformed" in errors
    assert "variants[0].price" in errors and "its variants are left alone" in errors
    assert f"a Stokly stock figure of item {seams.item_id(TENT)} is malformed" in errors
    # No variant of either was taken for an unknown SKU.
    assert not [r for r in report.exceptions if SOCKS in r["entity"] or TENT in r["entity"]]

    seams.shopline.edits.clear()
    seams.stokly.edits.clear()
    healed = seams.run()
    assert healed.ok, healed.errors
    assert {socks_item, tent_item} <= seams.pushed_items()


def test_a_malformed_paid_order_awaiting_import_holds_back_its_skus(world: World) -> None:
    world.run()
    seams = StockSeams(world)
    waiting = world.place((TENT, 2), customer={"email": "late@example.com"})
    seams.shopline.edits[("orders", "id", waiting["id"])] = nan_total
    _, tent_item = seams.variant(TENT)
    report = seams.run()
    # Its two tents cannot be subtracted from a figure nobody can read: TENT is not pushed.
    assert tent_item not in seams.pushed_items() and len(seams.pushed_items()) > 5
    assert any(f"SHOPLINE order {waiting['name']} is malformed" in e for e in report.errors)


# -- fulfilment --------------------------------------------------------------------------------


def run_fulfilment(world: World, shopline: Tamper, stokly: Tamper) -> FulfilmentReport:
    async def scenario() -> FulfilmentReport:
        async with open_clients(
            world.mapping,
            lift_limits=True,
            shopline_transport=shopline,
            stokly_transport=stokly,
        ) as (shop, stok):
            return await sync_fulfilment(
                world.mapping, shopline=shop, stokly=stok, store=world.store, retry=NO_WAIT
            )

    return asyncio.run(scenario())


def shipment_poison(world: World, shipment_id: str) -> Any:
    [record] = [
        r
        for r in world.store.exceptions.list(client=CLIENT, entity_kind="shipment")
        if r.entity_id == shipment_id
    ]
    assert record.code == "poison_message"
    return record


def test_a_malformed_shipment_is_an_exception_and_the_good_one_is_fulfilled_once(
    world: World,
) -> None:
    shop, warehouse = Shop(world), Warehouse(world)
    good_order = imported(world, (TENT, 1))
    bad_order = imported(world, (SOCKS, 1))
    warehouse.dispatch(good_order["id"], tracking=("RM200000001GB",))
    bad = warehouse.dispatch(bad_order["id"], tracking=("RM200000002GB",))
    shopline, stokly = Tamper(world.shopline_app), Tamper(world.faults)

    def uncountable(shipment: dict[str, Any]) -> None:
        shipment["items"][0]["quantity"] = "a few"

    stokly.edits[("data", "shipmentId", bad["shipmentId"])] = uncountable
    report = run_fulfilment(world, shopline, stokly)
    assert report.ok, report.errors
    assert len(shop.live(good_order["id"])) == 1
    assert shop.live(bad_order["id"]) == []
    record = shipment_poison(world, bad["shipmentId"])
    assert record.status == "open"
    assert "cannot be read" in record.message and "items[0].quantity" in record.message
    # The feed moved on: the exception replays the shipment by id, the cursor waits for nothing.
    assert world.store.cursors.get(CLIENT, "fulfilment") == report.cursor is not None

    again = run_fulfilment(world, shopline, stokly)
    assert again.ok and again.created == 0
    assert len(shop.live(good_order["id"])) == 1
    assert shipment_poison(world, bad["shipmentId"]).attempts == 2

    stokly.edits.clear()
    healed = run_fulfilment(world, shopline, stokly)
    assert healed.created == 1 and healed.exceptions_resolved >= 1
    assert len(shop.live(bad_order["id"])) == 1 and len(shop.live(good_order["id"])) == 1
    assert shipment_poison(world, bad["shipmentId"]).status == "resolved"


def test_a_shipment_whose_order_or_tracking_cannot_be_read_is_set_aside(world: World) -> None:
    shop, warehouse = Shop(world), Warehouse(world)
    good_order = imported(world, (TENT, 1))
    nan_order = imported(world, (SOCKS, 1))
    odd_order = imported(world, (SOCKS, 2))
    good = warehouse.dispatch(good_order["id"], tracking=("RM300000001GB",))
    by_nan = warehouse.dispatch(nan_order["id"], tracking=("RM300000002GB",))
    by_odd = warehouse.dispatch(odd_order["id"], tracking=("RM300000003GB",))
    shopline, stokly = Tamper(world.shopline_app), Tamper(world.faults)
    shopline.edits[("orders", "id", nan_order["id"])] = nan_total

    def odd_tracking(shipment: dict[str, Any]) -> None:
        shipment["trackingNumbers"] = [SURROGATE_MARK]

    stokly.edits[("data", "shipmentId", by_odd["shipmentId"])] = odd_tracking
    report = run_fulfilment(world, shopline, stokly)
    assert report.ok, report.errors
    assert len(shop.live(good_order["id"])) == 1
    assert shop.live(nan_order["id"]) == [] and shop.live(odd_order["id"]) == []
    nan_record = shipment_poison(world, by_nan["shipmentId"])
    assert f"its SHOPLINE order {nan_order['id']} cannot be read" in nan_record.message
    assert "total_price" in nan_record.message
    odd_record = shipment_poison(world, by_odd["shipmentId"])
    assert "trackingNumbers[0] is not valid Unicode text" in odd_record.message
    assert good["shipmentId"] not in {
        r.entity_id for r in world.store.exceptions.list(client=CLIENT)
    }
    # Nothing that is not valid Unicode went to SHOPLINE.
    assert all(b"ud800" not in sent.lower() for _, sent in shopline.sent)


# -- catalogue ---------------------------------------------------------------------------------

BOTTLE_IN_SHOPLINE = "acme-bottle-1l"  # Stokly's ACME-BOTTLE-1L, matched case-insensitively
STOVE = "JETBOIL-MINI-01"  # listed on SHOPLINE as STOVE-MINI (an override)
CHAIR = "ACME-CHAIR-LITE"  # in Stokly, not on SHOPLINE


def run_catalogue(world: World, mapping: Mapping, shopline: Tamper, stokly: Tamper) -> Any:
    async def scenario() -> CatalogueReport:
        async with open_clients(
            mapping, lift_limits=True, shopline_transport=shopline, stokly_transport=stokly
        ) as (shop, stok):
            return await sync_catalogue(mapping, shopline=shop, stokly=stok, store=world.store)

    return asyncio.run(scenario())


def shopline_products_with(world: World, sku: str) -> list[str]:
    store = world.shopline_app.state.shopline.store
    return [
        str(p["id"])
        for _, p in store.scan("product")
        if any((v.get("sku") or "").casefold() == sku.casefold() for v in p["variants"])
    ]


def test_malformed_catalogue_records_are_left_alone_and_never_created_twice(
    world: World,
) -> None:
    allow = world.mapping_with(
        lambda text: text.replace("create_missing: false", "create_missing: true", 1)
    )
    shopline, stokly = Tamper(world.shopline_app), Tamper(world.faults)
    [bottle_product] = shopline_products_with(world, BOTTLE_IN_SHOPLINE)
    stove = next(i for i in world.stokly_state.items if i["sku"] == STOVE)

    def nan_price(product: dict[str, Any]) -> None:
        product["variants"][0]["price"] = "NaN"

    def nan_sale_price(item: dict[str, Any]) -> None:
        item["salePrice"] = {"amount": "NaN", "currency": "GBP"}

    shopline.edits[("products", "id", bottle_product)] = nan_price
    stokly.edits[("data", "itemId", stove["itemId"])] = nan_sale_price
    report = run_catalogue(world, allow, shopline, stokly)

    assert report.ok, report.errors
    assert report.created >= 1 and len(shopline_products_with(world, CHAIR)) == 1
    # The malformed product still stands for its bottle: no second one was created.
    assert shopline_products_with(world, BOTTLE_IN_SHOPLINE) == [bottle_product]
    poison = {
        (r.entity_kind, r.entity_id): r
        for r in world.store.exceptions.list(client=CLIENT, code="poison_message")
    }
    assert set(poison) == {("product", bottle_product), ("stokly_item", stove["itemId"])}
    assert "variants[0].price" in poison[("product", bottle_product)].message
    assert "salePrice.amount" in poison[("stokly_item", stove["itemId"])].message
    unknown = [r for r in report.exceptions if r["code"] == "unknown_shopline_sku"]
    assert not [r for r in unknown if "STOVE-MINI" in r["entity"]]  # its item is unreadable

    shopline.edits.clear()
    stokly.edits.clear()
    healed = run_catalogue(world, allow, shopline, stokly)
    assert healed.ok and healed.exceptions_resolved >= 2
    assert shopline_products_with(world, BOTTLE_IN_SHOPLINE) == [bottle_product]
    statuses = {r.status for r in world.store.exceptions.list(client=CLIENT, code="poison_message")}
    assert statuses == {"resolved"}
