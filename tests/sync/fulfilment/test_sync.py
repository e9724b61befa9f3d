"""The fulfilment sync end to end against both sandboxes: shipments become fulfillments once each.

Orders are placed in the SHOPLINE sandbox and imported by the real orders sync; the Stokly
sandbox's warehouse dispatches them (its control API, as staff would); the fulfilment sync runs
through `open_clients`. Every scenario checks SHOPLINE's own fulfillments and the order's
fulfillment status, read back through its API, not our report alone. Faults are injected at the
SHOPLINE transport seam (`ShoplineSeam`), never by replacing our own functions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from stokline.config import Mapping
from stokline.sync.clients import open_clients
from stokline.sync.fulfilment.report import FulfilmentReport
from stokline.sync.fulfilment.sync import PushRetry, sync_fulfilment
from tests.sync.conftest import TOKEN, World

TENT = "ACME-TENT-2P-ORANGE"
SOCKS = "CRAG-SOCKS-75-M"
CLIENT = "demo-outdoor"
API = "/admin/openapi/v20251201"
NO_WAIT = PushRetry(attempts=3, delays=(0.0, 0.0))

Forward = Callable[[], Awaitable[httpx.Response]]


class ShoplineSeam(httpx.AsyncBaseTransport):
    """The SHOPLINE sandbox behind a seam where a test decides what happens to fulfillment POSTs.

    ``on_post(request, forward)`` sees every ``POST …/fulfillments.json`` (creates) and
    ``…/cancel.json``; it may answer itself, forward and then lose the answer, or just forward.
    """

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.on_post: Callable[[httpx.Request, Forward], Awaitable[httpx.Response]] | None = None
        self.posts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and "/fulfillments" in path:
            self.posts.append(path.rsplit("/", 1)[-1])
            if self.on_post is not None:
                return await self.on_post(request, lambda: self.inner.handle_async_request(request))
        return await self.inner.handle_async_request(request)


def unavailable(request: httpx.Request) -> httpx.Response:
    body = json.dumps({"errors": "Service Unavailable"}).encode()
    return httpx.Response(503, content=body, headers={"content-type": "application/json"})


class Shop:
    """What the storefront shows: orders and fulfillments read back through SHOPLINE's API."""

    def __init__(self, world: World) -> None:
        self.http = TestClient(world.shopline_app)
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(
            f"{API}/orders.json?ids={order_id}&status=any", headers=self.headers
        )
        assert response.status_code == 200, response.text
        (order,) = response.json()["orders"]
        return order

    def fulfillments(self, order_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{API}/orders/{order_id}/fulfillments.json", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()["fulfillments"]

    def live(self, order_id: str) -> list[dict[str, Any]]:
        return [f for f in self.fulfillments(order_id) if f["status"] != "cancelled"]


class Warehouse:
    """Stokly's warehouse staff, through the sandbox's control API."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.http = TestClient(world.stokly_app)

    def sale_order(self, shopline_id: str) -> dict[str, Any]:
        (sale,) = self.world.sale_orders(shopline_id)
        return sale

    def dispatch(
        self,
        shopline_id: str,
        *items: tuple[str, int],
        tracking: tuple[str, ...] = (),
        carrier: str = "royal-mail",
        url: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sourceReferenceId": shopline_id,
            "carrier": carrier,
            "trackingNumbers": list(tracking),
        }
        if url:
            body["trackingUrl"] = url
        if items:
            body["items"] = [{"sku": sku, "quantity": qty} for sku, qty in items]
        response = self.http.post("/_sandbox/dispatch", json=body)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def cancel(self, shipment_id: str) -> None:
        response = self.http.post(f"/_sandbox/shipments/{shipment_id}/cancel")
        assert response.status_code == 200, response.text


def fulfil(
    world: World,
    seam: ShoplineSeam | None = None,
    mapping: Mapping | None = None,
    **options: Any,
) -> FulfilmentReport:
    """One fulfilment pass against the sandboxes (no pauses between a write's tries)."""
    mapping = mapping or world.mapping
    options.setdefault("retry", NO_WAIT)

    async def scenario() -> FulfilmentReport:
        async with open_clients(
            mapping,
            lift_limits=True,
            shopline_transport=seam or httpx.ASGITransport(app=world.shopline_app),
            stokly_transport=world.faults,
        ) as (shopline, stokly):
            return await sync_fulfilment(
                mapping, shopline=shopline, stokly=stokly, store=world.store, **options
            )

    return asyncio.run(scenario())


def imported(world: World, *lines: tuple[str, int], **spec: Any) -> dict[str, Any]:
    """A paid SHOPLINE order, imported into Stokly by the orders sync."""
    order = world.place(*lines, customer={"email": "parcel@example.com"}, **spec)
    world.run()
    assert len(world.sale_orders(order["id"])) == 1
    return order


def shipment_link(world: World, shipment_id: str) -> Any:
    return world.store.links.by_stokly(CLIENT, "shipment", shipment_id)


@pytest.fixture
def shop(world: World) -> Shop:
    return Shop(world)


@pytest.fixture
def warehouse(world: World) -> Warehouse:
    return Warehouse(world)


# -- §3: partial shipment, the rest, rerun ------------------------------------------------------


def test_a_partial_shipment_then_the_rest_makes_two_fulfillments_and_the_order_fulfilled(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1), (SOCKS, 2))
    first = warehouse.dispatch(order["id"], (TENT, 1), tracking=("RM100000001GB",))

    report = fulfil(world)
    assert report.ok, report.errors
    assert report.created == 1
    [fulfillment] = shop.fulfillments(order["id"])
    tent_line = next(li for li in order["line_items"] if li["sku"] == TENT)
    assert [(li["id"], li["fulfillment_quantity"]) for li in fulfillment["line_items"]] == [
        (tent_line["id"], 1)
    ]
    assert fulfillment["tracking_info_list"] == [
        {
            "tracking_number": "RM100000001GB",
            "tracking_company": "Royal Mail",
            "tracking_url": "https://www.royalmail.com/track-your-item#/tracking-results/RM100000001GB",
        }
    ]
    assert shop.order(order["id"])["fulfillment_status"] == "partial"
    link = shipment_link(world, first["shipmentId"])
    assert link is not None and link.shopline_id == fulfillment["id"]
    [audit] = world.store.audit.list(CLIENT, f"{order['id']}:{first['shipmentId']}")
    assert audit.action == "create_fulfillment" and audit.entity_id == fulfillment["id"]
    assert "parcel@example.com" not in json.dumps(audit.details)
    assert world.store.cursors.get(CLIENT, "fulfilment") == report.cursor is not None

    rest = warehouse.dispatch(order["id"], tracking=("RM100000002GB",))
    second = fulfil(world)
    assert second.ok and second.created == 1
    assert len(shop.fulfillments(order["id"])) == 2
    assert shop.order(order["id"])["fulfillment_status"] == "fulfilled"
    socks = [
        li for f in shop.fulfillments(order["id"]) for li in f["line_items"] if li["sku"] == SOCKS
    ]
    assert [li["fulfillment_quantity"] for li in socks] == [2]
    assert shipment_link(world, rest["shipmentId"]) is not None

    # A rerun, and a run that starts over from the beginning of the feed, duplicate nothing.
    again = fulfil(world)
    assert again.created == 0 and again.ok
    world.store.cursors.set(CLIENT, "fulfilment", "0")
    replayed = fulfil(world)
    assert replayed.created == 0 and replayed.recovered == 0
    assert replayed.unchanged >= 2
    assert len(shop.fulfillments(order["id"])) == 2


def test_several_parcels_and_tracking_numbers_on_one_order(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (SOCKS, 3))
    # Two parcels of the same line; the second went by DPD with two tracking numbers, although
    # the buyer chose Royal Mail: DPD's name and links are what the buyer needs.
    warehouse.dispatch(order["id"], (SOCKS, 1), tracking=("RM200000001GB",))
    warehouse.dispatch(
        order["id"], (SOCKS, 2), carrier="dpd", tracking=("15501000000001", "15501000000002")
    )
    report = fulfil(world)
    assert report.ok and report.created == 2
    fulfillments = shop.fulfillments(order["id"])
    assert [[li["fulfillment_quantity"] for li in f["line_items"]] for f in fulfillments] == [
        [1],
        [2],
    ]
    assert fulfillments[1]["tracking_info_list"] == [
        {
            "tracking_number": number,
            "tracking_company": "DPD",
            "tracking_url": f"https://track.dpd.co.uk/parcels/{number}",
        }
        for number in ("15501000000001", "15501000000002")
    ]
    assert shop.order(order["id"])["fulfillment_status"] == "fulfilled"


# -- §3: transient failures ---------------------------------------------------------------------


def test_a_shopline_5xx_during_the_push_is_retried_not_lost(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1))
    warehouse.dispatch(order["id"], tracking=("RM300000001GB",))
    seam = ShoplineSeam(world.shopline_app)
    failures = 2

    async def twice_unavailable(request: httpx.Request, forward: Forward) -> httpx.Response:
        nonlocal failures
        if failures:
            failures -= 1
            return unavailable(request)
        return await forward()

    seam.on_post = twice_unavailable
    report = fulfil(world, seam)
    assert report.ok and report.created == 1
    assert seam.posts == ["fulfillments.json"] * 3
    assert len(shop.fulfillments(order["id"])) == 1


def test_a_push_that_keeps_failing_stays_pending_for_the_next_run(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1))
    shipment = warehouse.dispatch(order["id"], tracking=("RM300000002GB",))
    seam = ShoplineSeam(world.shopline_app)

    async def down(request: httpx.Request, forward: Forward) -> httpx.Response:
        return unavailable(request)

    seam.on_post = down
    failed = fulfil(world, seam)
    assert not failed.ok and failed.deferred == 1 and failed.created == 0
    assert any("failed for now" in error for error in failed.errors)
    assert len(seam.posts) == NO_WAIT.attempts  # bounded, not endless
    assert shop.fulfillments(order["id"]) == []
    assert shipment_link(world, shipment["shipmentId"]) is None
    held = world.store.cursors.get(CLIENT, "fulfilment")

    # SHOPLINE is back: the next run reads the shipment again (the cursor waited) and pushes it.
    recovered = fulfil(world)
    assert recovered.ok and recovered.created == 1
    assert len(shop.fulfillments(order["id"])) == 1
    assert world.store.cursors.get(CLIENT, "fulfilment") != held


def test_a_timeout_whose_request_landed_creates_no_duplicate(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1), (SOCKS, 1))
    shipment = warehouse.dispatch(order["id"], tracking=("RM400000001GB",))
    seam = ShoplineSeam(world.shopline_app)

    async def answer_lost(request: httpx.Request, forward: Forward) -> httpx.Response:
        await forward()  # SHOPLINE creates the fulfillment...
        raise httpx.ReadTimeout("the answer never came", request=request)  # ...we never hear

    seam.on_post = answer_lost
    report = fulfil(world, seam)
    assert report.ok and report.created == 1
    assert seam.posts == ["fulfillments.json"]  # found on re-reading: never sent again
    [fulfillment] = shop.fulfillments(order["id"])
    link = shipment_link(world, shipment["shipmentId"])
    assert link is not None and link.shopline_id == fulfillment["id"]
    [audit] = world.store.audit.list(CLIENT, f"{order['id']}:{shipment['shipmentId']}")
    assert audit.details["confirmed_by_reread"] is True

    seam.on_post = None
    assert fulfil(world, seam).created == 0
    assert len(shop.fulfillments(order["id"])) == 1


def test_a_crash_between_create_and_link_creates_nothing_on_the_rerun(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1))
    # No tracking number: the rerun must recognise the fulfillment by its lines alone.
    shipment = warehouse.dispatch(order["id"])
    seam = ShoplineSeam(world.shopline_app)

    async def die_after_create(request: httpx.Request, forward: Forward) -> httpx.Response:
        await forward()
        raise RuntimeError("the worker died after SHOPLINE created the fulfillment")

    seam.on_post = die_after_create
    with pytest.raises(RuntimeError, match="worker died"):
        fulfil(world, seam)
    assert len(shop.fulfillments(order["id"])) == 1
    assert shipment_link(world, shipment["shipmentId"]) is None

    rerun = fulfil(world)
    assert rerun.ok and rerun.created == 0 and rerun.recovered == 1
    [fulfillment] = shop.fulfillments(order["id"])
    link = shipment_link(world, shipment["shipmentId"])
    assert link is not None and link.shopline_id == fulfillment["id"]


def test_an_order_another_run_is_working_on_is_left_to_it(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1))
    warehouse.dispatch(order["id"], tracking=("RM450000001GB",))
    leases = world.store.leases
    assert leases.acquire(CLIENT, "fulfilment", [order["id"]], "another-run") == {order["id"]}

    report = fulfil(world)
    assert report.busy == 1 and report.created == 0 and report.ok
    assert shop.fulfillments(order["id"]) == []
    assert leases.holders(CLIENT, "fulfilment", [order["id"]]) == {order["id"]: "another-run"}

    leases.release("another-run")  # that run ended without pushing it: the feed brings it back
    after = fulfil(world)
    assert after.created == 1 and after.busy == 0
    assert len(shop.fulfillments(order["id"])) == 1
    assert leases.holders(CLIENT, "fulfilment", [order["id"]]) == {}  # released at the end


# -- changes in Stokly --------------------------------------------------------------------------


def test_a_tracking_correction_in_stokly_updates_the_fulfillment(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1))
    shipment = warehouse.dispatch(order["id"], tracking=("RM500000001GB",))
    assert fulfil(world).created == 1

    async def correct() -> None:
        async with open_clients(world.mapping, stokly_transport=world.faults) as (_, stokly):
            await stokly.update_shipment(
                shipment["shipmentId"], {"trackingNumbers": ["RM500000009GB", "RM500000010GB"]}
            )

    asyncio.run(correct())
    report = fulfil(world)
    assert report.ok and report.tracking_updated == 1 and report.created == 0
    [fulfillment] = shop.fulfillments(order["id"])
    assert [t["tracking_number"] for t in fulfillment["tracking_info_list"]] == [
        "RM500000009GB",
        "RM500000010GB",
    ]
    actions = [
        a.action for a in world.store.audit.list(CLIENT, f"{order['id']}:{shipment['shipmentId']}")
    ]
    assert actions == ["create_fulfillment", "update_fulfillment_tracking"]
    assert fulfil(world).tracking_updated == 0


def test_a_cancelled_shipment_is_an_exception_by_default(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    assert world.mapping.syncs.fulfilment.on_shipment_cancelled == "exception"
    order = imported(world, (TENT, 1))
    shipment = warehouse.dispatch(order["id"], tracking=("RM600000001GB",))
    fulfil(world)
    warehouse.cancel(shipment["shipmentId"])

    report = fulfil(world)
    assert report.cancelled == 0
    [record] = world.store.exceptions.list(
        client=CLIENT, code="order_changed", entity_kind="shipment"
    )
    assert record.entity_id == shipment["shipmentId"] and record.team == "operations"
    assert "on_shipment_cancelled is 'exception'" in record.message
    assert [f["status"] for f in shop.fulfillments(order["id"])] == ["success"]

    again = fulfil(world)
    assert again.exceptions_opened == 0
    [record] = world.store.exceptions.list(client=CLIENT, code="order_changed")
    assert record.attempts == 1  # reported once, not every run


def test_a_cancelled_shipment_cancels_the_fulfillment_when_the_mapping_says_so(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    mapping = world.mapping_with(
        lambda text: text.replace(
            "on_shipment_cancelled: exception", "on_shipment_cancelled: cancel"
        )
    )
    order = imported(world, (TENT, 1))
    shipment = warehouse.dispatch(order["id"], tracking=("RM700000001GB",))
    fulfil(world, mapping=mapping)
    warehouse.cancel(shipment["shipmentId"])

    report = fulfil(world, mapping=mapping)
    assert report.ok and report.cancelled == 1
    assert [f["status"] for f in shop.fulfillments(order["id"])] == ["cancelled"]
    assert shop.order(order["id"])["fulfillment_status"] in (None, "unshipped")
    assert world.store.exceptions.list(client=CLIENT, code="order_changed") == []

    # Dispatched again, it reaches SHOPLINE again as a new fulfillment.
    warehouse.dispatch(order["id"], tracking=("RM700000002GB",))
    assert fulfil(world, mapping=mapping).created == 1
    assert [f["status"] for f in shop.fulfillments(order["id"])] == ["cancelled", "success"]
    assert fulfil(world, mapping=mapping).cancelled == 0


# -- stale shipments ----------------------------------------------------------------------------


def test_a_stale_shipment_becomes_an_exception_once_and_resolves_when_it_arrives(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1))
    shipment = warehouse.dispatch(order["id"], tracking=("RM800000001GB",))
    seam = ShoplineSeam(world.shopline_app)

    async def down(request: httpx.Request, forward: Forward) -> httpx.Response:
        return unavailable(request)

    seam.on_post = down
    early = fulfil(world, seam)
    assert early.deferred == 1
    assert [r for r in early.stale if r["shipment"] == shipment["shipmentId"]] == []

    later = datetime.now(UTC) + timedelta(hours=5)  # past the demo's stale_after of 4 h
    stale = fulfil(world, seam, now=later)
    [row] = [r for r in stale.stale if r["shipment"] == shipment["shipmentId"]]
    assert row["new"] and row["shopline_order_id"] == order["id"] and row["age_hours"] >= 4.9
    assert row in stale.newly_stale
    [record] = world.store.exceptions.list(
        client=CLIENT, code="stale_fulfilment", entity_kind="shipment", status="open"
    )
    assert record.entity_id == shipment["shipmentId"]
    assert record.team == "operations"
    assert record.payload["shopline_order_id"] == order["id"]

    still = fulfil(world, seam, now=later + timedelta(minutes=5))
    [row] = [r for r in still.stale if r["shipment"] == shipment["shipmentId"]]
    assert not row["new"]  # alerted once

    # Someone silences the alert: no news any more, but the shipment is still not dropped.
    assert world.store.exceptions.ignore(record.id, "carrier outage, known")
    silenced = fulfil(world, seam, now=later + timedelta(minutes=7))
    [row] = [r for r in silenced.stale if r["shipment"] == shipment["shipmentId"]]
    assert not row["new"] and silenced.deferred == 1

    arrived = fulfil(world, now=later + timedelta(minutes=10))
    assert arrived.created == 1
    assert len(shop.fulfillments(order["id"])) == 1
    [record] = world.store.exceptions.list(client=CLIENT, code="stale_fulfilment")
    assert record.status == "resolved"


# -- dry run ------------------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_lists_what_it_would_write(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, (TENT, 1), (SOCKS, 1))
    warehouse.dispatch(order["id"], (TENT, 1), tracking=("RM900000001GB",))
    warehouse.dispatch(order["id"], (SOCKS, 1), tracking=("RM900000002GB",))
    rows_before = world.store_rows()
    shopline_before = world.shopline_summary()

    report = fulfil(world, dry_run=True)
    assert report.dry_run and report.created == 0
    planned = [r for r in report.would_write if r.get("shopline_id") == order["id"]]
    assert [(r["action"], r["tracking"]) for r in planned] == [
        ("create fulfillment", "RM900000001GB"),
        ("create fulfillment", "RM900000002GB"),
    ]
    assert shop.fulfillments(order["id"]) == []
    assert world.shopline_summary() == shopline_before
    assert world.store_rows() == rows_before
    assert ("would write", len(report.would_write)) in [
        (r["metric"], r["value"]) for r in report.summary_rows()
    ]


# -- a refund that landed while the parcel was packed -------------------------------------------


def test_a_shipment_shopline_refunded_as_not_shipped_is_an_exception_not_already_fulfilled(
    world: World, shop: Shop, warehouse: Warehouse
) -> None:
    order = imported(world, ("CRAG-SOCKS-75-M", 2))
    line = order["line_items"][0]["id"]
    refund = {"lines": [{"line_item_id": line, "quantity": 2, "type": "Unshipped"}]}
    response = world.shop.post(f"/_sandbox/orders/{order['id']}/refund", json=refund)
    assert response.status_code == 200, response.text
    shipment = warehouse.dispatch(order["id"], tracking=("RM123456785GB",))

    report = fulfil(world)

    assert report.already_fulfilled == 0 and shop.fulfillments(order["id"]) == []
    [record] = [
        r
        for r in world.store.exceptions.list(client=CLIENT, code="order_changed")
        if r.entity_id == shipment["shipmentId"]
    ]
    assert "SHOPLINE refunded CRAG-SOCKS-75-M x2 as not shipped" in record.message
    assert record.payload["refunded"] == {"CRAG-SOCKS-75-M": 2}
