"""Reading inventory levels: SHOPLINE's documented limits, concurrent requests, the sandbox's rules.

SHOPLINE's ``GET inventory_levels.json`` requires ``inventory_item_ids`` (at most 50) and takes
at most 10 ``location_ids``: a large read is many requests. The client sends them concurrently
(up to ``max_concurrency``) and yields the levels in the order of the ids; a failure or an early
stop leaves nothing running. The sandbox refuses what SHOPLINE documents as out of bounds.

Levels are written by difference (``inventory_levels/adjust.json``): the sandbox adds the delta
and refuses a body SHOPLINE would, and the client never resends an adjust whose answer was lost
(an absolute set it may).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from stokline.connectors import ConnectorError, RateLimit, RetryPolicy, ShoplineClient
from stokline.sandbox.shopline.app import create_app as create_shopline

from .conftest import API, SHOPLINE_BASE, SHOPLINE_TOKEN

FAST = RateLimit(per_second=10_000.0, burst=10_000)
NO_RETRY = RetryPolicy(max_attempts=1)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def client(handler: Handler, **options: Any) -> ShoplineClient:
    return ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(handler),
        rate_limit=FAST,
        retry=NO_RETRY,
        **options,
    )


def ids_of(request: httpx.Request, name: str) -> list[str]:
    raw = request.url.params.get(name)
    return raw.split(",") if raw else []


def levels_answer(request: httpx.Request) -> httpx.Response:
    """One level per (item, location) asked for, ``available`` = the item's number."""
    body = {
        "inventory_levels": [
            {"inventory_item_id": item, "location_id": location, "available": int(item)}
            for item in ids_of(request, "inventory_item_ids")
            for location in ids_of(request, "location_ids")
        ]
    }
    return httpx.Response(200, json=body)


def collect(shopline: ShoplineClient, items: list[str], locations: list[str]) -> list[Any]:
    async def scenario() -> list[Any]:
        async with shopline:
            return [lv async for lv in shopline.iter_inventory_levels(items, locations)]

    return asyncio.run(scenario())


def test_at_most_50_items_and_10_locations_a_request_whatever_the_batch_size() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"{API}/inventory_levels.json"
        seen.append(request)
        return levels_answer(request)

    items = [str(1000 + i) for i in range(120)]
    locations = [str(7000 + i) for i in range(12)]
    levels = collect(client(handler, id_batch_size=100), items, locations)

    assert len(seen) == 3 * 2  # items 50 + 50 + 20, locations 10 + 2
    assert all(len(ids_of(r, "inventory_item_ids")) <= 50 for r in seen)
    assert all(len(ids_of(r, "location_ids")) <= 10 for r in seen)
    pairs = [(lv.inventory_item_id, lv.location_id) for lv in levels]
    assert sorted(pairs) == sorted((i, loc) for i in items for loc in locations)
    assert len(set(pairs)) == len(pairs)
    # In the order of the ids: every level of the first 50 items before any of the next.
    batch_of = [items.index(i) // 50 for i, _ in pairs]
    assert batch_of == sorted(batch_of)


def test_requests_overlap_and_levels_keep_the_order_of_the_ids() -> None:
    """No request is answered before the fourth has arrived: sequential reads would hang."""
    arrived: list[str] = []
    fourth = asyncio.Event()
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        first_item = ids_of(request, "inventory_item_ids")[0]
        arrived.append(first_item)
        in_flight += 1
        peak = max(peak, in_flight)
        if len(arrived) == 4:
            fourth.set()
        await asyncio.wait_for(fourth.wait(), timeout=5)
        in_flight -= 1
        return levels_answer(request)

    items = [str(1000 + i) for i in range(200)]  # four requests of 50
    levels = collect(client(handler, max_concurrency=4), items, ["7001"])

    assert peak == 4
    assert [lv.inventory_item_id for lv in levels] == items


def test_never_more_requests_in_flight_than_max_concurrency() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return levels_answer(request)

    items = [str(1000 + i) for i in range(50 * 12)]
    levels = collect(client(handler, max_concurrency=3), items, ["7001", "7002"])
    assert peak == 3
    assert len(levels) == len(items) * 2


def test_a_failed_request_fails_the_read_and_stops_the_rest() -> None:
    sent: list[str] = []
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        first_item = ids_of(request, "inventory_item_ids")[0]
        sent.append(first_item)
        if first_item == "1050":  # the second request
            return httpx.Response(422, json={"errors": "inventory_item_ids is invalid"})
        try:
            await asyncio.sleep(0 if first_item == "1000" else 10)
        except asyncio.CancelledError:
            cancelled.append(first_item)
            raise
        return levels_answer(request)

    items = [str(1000 + i) for i in range(50 * 20)]

    async def scenario() -> list[str]:
        shopline = client(handler, max_concurrency=3)
        async with shopline:
            got = []
            with pytest.raises(ConnectorError, match="inventory_item_ids is invalid"):
                async for lv in shopline.iter_inventory_levels(items, ["7001"]):
                    got.append(lv.inventory_item_id)
            assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left running
            return got

    got = asyncio.run(scenario())
    assert got == items[:50]  # the first request's levels, then the failure in its place
    assert len(sent) <= 4  # no request launched after the failure was seen
    assert "1100" in cancelled  # the third, still waiting, was cancelled
    assert set(cancelled) <= {"1100", "1150"}


def test_stopping_early_cancels_what_is_in_flight() -> None:
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        first_item = ids_of(request, "inventory_item_ids")[0]
        if first_item != "1000":
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(first_item)
                raise
        return levels_answer(request)

    items = [str(1000 + i) for i in range(50 * 5)]

    async def scenario() -> str:
        shopline = client(handler, max_concurrency=3)
        async with shopline:
            levels = shopline.iter_inventory_levels(items, ["7001"])
            async with aclosing(levels):
                async for level in levels:
                    first = level.inventory_item_id
                    break
            assert asyncio.all_tasks() == {asyncio.current_task()}
            return first

    assert asyncio.run(scenario()) == "1000"
    # The three in flight when the caller stopped (and the one launched as the first finished).
    assert {"1050", "1100"} <= set(cancelled) <= {"1050", "1100", "1150"}


def test_no_ids_no_request() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    assert collect(client(handler), [], ["7001"]) == []


# -- the sandbox keeps SHOPLINE's documented bounds --------------------------------------------


class Sandbox:
    """The SHOPLINE sandbox in-process: a test client, and a transport that tallies statuses."""

    def __init__(self) -> None:
        self.app = create_shopline(access_token=SHOPLINE_TOKEN, app_secret="secret", skus=150)
        self.http = TestClient(
            self.app,
            base_url=f"http://sandbox{API}",
            headers={"Authorization": f"Bearer {SHOPLINE_TOKEN}"},
        )
        self.statuses: list[int] = []
        inner = httpx.ASGITransport(app=self.app)

        async def handler(request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            self.statuses.append(response.status_code)
            return response

        self.handler = handler

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params)

    def item_ids(self, count: int) -> list[str]:
        products = self.get("/products/products.json", limit="250").json()["products"]
        ids = [v["inventory_item_id"] for p in products for v in p["variants"]]
        assert len(ids) >= count
        return ids[:count]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    yield box
    box.app.state.shopline.close()


def test_sandbox_requires_inventory_item_ids(sandbox: Sandbox) -> None:
    by_location = sandbox.get("/inventory_levels.json", location_ids="7001")
    assert by_location.status_code == 422
    assert "inventory_item_ids" in by_location.text


def test_sandbox_takes_50_items_and_10_locations_at_most(sandbox: Sandbox) -> None:
    ids = sandbox.item_ids(51)
    ten = ",".join(str(7001 + i) for i in range(10))
    ok = sandbox.get(
        "/inventory_levels.json", inventory_item_ids=",".join(ids[:50]), location_ids=ten
    )
    assert ok.status_code == 200
    assert {lv["inventory_item_id"] for lv in ok.json()["inventory_levels"]} <= set(ids[:50])
    too_many_items = sandbox.get("/inventory_levels.json", inventory_item_ids=",".join(ids))
    assert too_many_items.status_code == 422
    too_many_locations = sandbox.get(
        "/inventory_levels.json", inventory_item_ids=ids[0], location_ids=f"{ten},7011"
    )
    assert too_many_locations.status_code == 422


def test_the_client_reads_every_level_of_the_sandbox_in_requests_it_accepts(
    sandbox: Sandbox,
) -> None:
    """120 items at every location: three requests, all answered, every level once."""
    ids = sandbox.item_ids(120)
    locations = [loc["id"] for loc in sandbox.get("/locations/list.json").json()["locations"]]
    levels = collect(client(sandbox.handler), ids, locations)
    assert sandbox.statuses == [200, 200, 200]
    expected = [
        (lv["inventory_item_id"], lv["location_id"])
        for start in range(0, 120, 50)
        for lv in sandbox.get(
            "/inventory_levels.json",
            inventory_item_ids=",".join(ids[start : start + 50]),
            limit="1000",
        ).json()["inventory_levels"]
    ]
    assert len(expected) >= 120
    assert sorted((lv.inventory_item_id, lv.location_id) for lv in levels) == sorted(expected)


# -- writing by difference ------------------------------------------------------------------------


def write(shopline: ShoplineClient, work: Callable[[ShoplineClient], Awaitable[Any]]) -> Any:
    async def scenario() -> Any:
        async with shopline:
            return await work(shopline)

    return asyncio.run(scenario())


def test_the_sandbox_adjusts_by_the_delta_and_refuses_what_shopline_would(
    sandbox: Sandbox,
) -> None:
    [item] = sandbox.item_ids(1)
    target = {"inventory_item_id": item, "location_id": "7001"}
    settled = sandbox.http.post("/inventory_levels/set.json", json={**target, "available": 10})
    assert settled.status_code == 200
    shopline = client(sandbox.handler)
    level = write(shopline, lambda s: s.adjust_inventory_level(item, "7001", -3))
    assert level.available == 7
    again = client(sandbox.handler)
    assert write(again, lambda s: s.adjust_inventory_level(item, "7001", 5)).available == 12

    for body in (
        target,  # no available_adjustment
        {**target, "available_adjustment": "2"},
        {**target, "available_adjustment": 1.5},
        {**target, "available_adjustment": True},
        {"location_id": "7001", "available_adjustment": 1},
    ):
        refused = sandbox.http.post("/inventory_levels/adjust.json", json=body)
        assert refused.status_code == 422, body
    levels = sandbox.get("/inventory_levels.json", inventory_item_ids=item, location_ids="7001")
    assert [lv["available"] for lv in levels.json()["inventory_levels"]] == [12]


def test_an_adjust_whose_answer_is_lost_is_never_resent() -> None:
    sent: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        raise httpx.ReadTimeout("the answer was lost", request=request)

    retrying = RetryPolicy(max_attempts=4, backoff_base=0.0, backoff_max=0.0)
    shopline = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(handler),
        rate_limit=FAST,
        retry=retrying,
    )
    with pytest.raises(ConnectorError):
        write(shopline, lambda s: s.adjust_inventory_level("1", "7001", 2))
    assert len(sent) == 1

    sent.clear()
    absolute = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(handler),
        rate_limit=FAST,
        retry=retrying,
    )
    with pytest.raises(ConnectorError):
        write(absolute, lambda s: s.set_inventory_level("1", "7001", 2))
    assert len(sent) == 4  # an absolute set may be repeated
