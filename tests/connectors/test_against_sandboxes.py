"""Both clients, unchanged, over real HTTP against the project's sandboxes of the two APIs.

The sandboxes emulate the documented APIs (auth, pagination, rate limits, error bodies), so these
tests check the clients' reading of the contracts end to end, on top of the transport-seam fakes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import (
    ConnectorError,
    NotFoundError,
    RateLimit,
    RetryPolicy,
    ShoplineClient,
    StoklyClient,
    ValidationError,
)
from stokline.connectors.stokly import filters as f
from stokline.sandbox.common import ServerThread
from stokline.sandbox.shopline.app import create_app as create_shopline
from stokline.sandbox.stokly.app import create_app as create_stokly
from stokline.sandbox.stokly.seed import DEMO_SEEDED_ORDER_REFERENCES, SHOPLINE_CHANNEL_ID

pytestmark = pytest.mark.slow

TOKEN = "sandbox-shopline-token-abcdef"
SECRET = "sandbox-stokly-secret-abcdef"


@pytest.fixture(scope="module")
def shopline_server() -> Iterator[ServerThread]:
    app = create_shopline(access_token=TOKEN, app_secret="app-secret", skus=30, rate_per_s=None)
    with ServerThread(app) as server:
        yield server
    app.state.shopline.close()


@pytest.fixture(scope="module")
def stokly_server() -> Iterator[ServerThread]:
    app = create_stokly(
        account_key="demo-outdoor", client_id="cid", client_secret=SECRET, seed_skus=30
    )
    with ServerThread(app) as server:
        yield server


def shopline_client(server: ServerThread) -> ShoplineClient:
    return ShoplineClient(server.url, SecretStr(TOKEN), timeout=10.0)


def stokly_client(server: ServerThread, **kwargs: object) -> StoklyClient:
    return StoklyClient(
        server.url,
        account_key="demo-outdoor",
        client_id="cid",
        client_secret=SecretStr(SECRET),
        timeout=10.0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_shopline_products_across_pages_and_inventory(shopline_server: ServerThread) -> None:
    async def scenario() -> None:
        async with shopline_client(shopline_server) as client:
            products = [p async for p in client.iter_products(limit=5)]
            assert len(products) > 10  # three pages of 5 or more
            assert len({p.id for p in products}) == len(products)
            variants = [v for p in products for v in p.variants]
            locations = await client.list_locations()
            assert locations and all(isinstance(loc.default, bool) for loc in locations)
            item_ids = [v.inventory_item_id for v in variants[:5] if v.inventory_item_id]
            location_id = locations[0].id
            level = await client.set_inventory_level(item_ids[0], location_id, 17)
            assert level.available == 17
            levels = [lv async for lv in client.iter_inventory_levels(item_ids, [location_id])]
            assert {lv.inventory_item_id for lv in levels} <= set(item_ids)
            assert any(lv.available == 17 for lv in levels)

    asyncio.run(scenario())


def test_shopline_orders_count_and_errors(shopline_server: ServerThread) -> None:
    async def scenario() -> None:
        async with shopline_client(shopline_server) as client:
            orders = [o async for o in client.iter_orders(limit=2)]
            assert len(orders) == await client.count_orders()
            if orders:
                again = [o async for o in client.iter_orders(ids=[o.id for o in orders])]
                assert {o.id for o in again} == {o.id for o in orders}
            with pytest.raises(NotFoundError) as info:
                await client.get_product("999999999999999999")
            assert info.value.status == 404
            product = await anext(client.iter_products(limit=1))
            with pytest.raises(ValidationError) as rejected:
                await client.update_variant(product.variants[0].id, {"price": "not money"})
            assert rejected.value.status == 422 and rejected.value.trace_id

    asyncio.run(scenario())


def test_stokly_grant_paging_filters_and_token_refresh(stokly_server: ServerThread) -> None:
    async def scenario() -> None:
        async with stokly_client(stokly_server, page_size=7, id_batch_size=4) as client:
            items = [i async for i in client.iter_items()]
            assert len(items) > 14  # at least three pages of 7
            skus = [i.sku for i in items[:9]]
            by_sku = [i async for i in client.iter_items(skus=skus)]
            assert sorted(i.sku for i in by_sku) == sorted(skus)
            found = await client.find_sale_orders_by_source(
                SHOPLINE_CHANNEL_ID, [*DEMO_SEEDED_ORDER_REFERENCES, "no-such-order"]
            )
            assert {o.sourceReferenceId for o in found} == set(DEMO_SEEDED_ORDER_REFERENCES)
            assert client.auth.grants == 1
            stokly_server.app.state.sandbox.expire_tokens()
            assert (await client.get_item(items[0].itemId)).sku == items[0].sku
            assert client.auth.grants == 2

    asyncio.run(scenario())


def test_stokly_escaped_filters_round_trip(stokly_server: ServerThread) -> None:
    async def scenario() -> None:
        async with stokly_client(stokly_server) as client:
            odd = [c async for c in client.iter_customers(f.eq("email", "we,ird}@example.com"))]
            assert odd == []
            channels = [c async for c in client.iter_channels(f.eq("type", 7))]
            assert [c.channelId for c in channels] == [SHOPLINE_CHANNEL_ID]

    asyncio.run(scenario())


def test_stokly_invented_contracts(stokly_server: ServerThread) -> None:
    async def scenario() -> None:
        async with stokly_client(stokly_server) as client:
            page = await client.get_events("0", size=5)
            assert len(page.events) <= 5 and page.cursor
            shipments = [s async for s in client.iter_shipments()]
            assert all(s.status for s in shipments)
            reference = "connectors-test:2026-11-26:shopline_payments:GBP"
            created = await client.create_journal(
                {
                    "reference": reference,
                    "date": "2026-11-26",
                    "currency": "GBP",
                    "lines": [
                        {"account": "1210", "debit": 12, "credit": 0},
                        {"account": "4000", "debit": 0, "credit": 10},
                        {"account": "2200", "debit": 0, "credit": 2},
                    ],
                }
            )
            journals = [j async for j in client.iter_journals(f.eq("reference", reference))]
            assert [j.journalId for j in journals] == [created.id]
            assert sum(line.debit for line in journals[0].lines) == 12

    asyncio.run(scenario())


def test_shopline_fulfilment_round_trip(shopline_server: ServerThread) -> None:
    async def scenario() -> None:
        async with shopline_client(shopline_server) as client:
            candidates = [
                o
                async for o in client.iter_orders(financial_status="paid", status="open")
                if any((li.fulfillable_quantity or 0) > 0 for li in o.line_items)
            ]
            assert candidates, "the seeded store has a paid, unfulfilled order"
            order = candidates[0]
            line = next(li for li in order.line_items if (li.fulfillable_quantity or 0) > 0)
            created = await client.create_fulfillment(
                order.id,
                [{"id": line.id, "quantity": 1}],
                [{"tracking_number": "RM100GB", "tracking_company": "Royal Mail"}],
            )
            assert [t.tracking_number for t in created.tracking_info_list] == ["RM100GB"]
            updated = await client.update_fulfillment_tracking(
                order.id, created.id, [{"tracking_number": "RM200GB"}]
            )
            assert [t.tracking_number for t in updated.tracking_info_list] == ["RM200GB"]
            listed = await client.list_fulfillments(order.id)
            assert created.id in {f.id for f in listed}
            cancelled = await client.cancel_fulfillment(order.id, created.id)
            assert cancelled.status == "cancelled"

    asyncio.run(scenario())


def test_stokly_sale_order_create_then_found_by_source(stokly_server: ServerThread) -> None:
    async def scenario() -> None:
        async with stokly_client(stokly_server) as client:
            item = await anext(client.iter_items(filter=f.ne("status", 1) & f.ne("format", 2)))
            reference = "21999999999999999999990001"
            assert await client.find_sale_orders_by_source(SHOPLINE_CHANNEL_ID, [reference]) == []
            price, tax = Decimal("49.99"), Decimal("8.33")
            created = await client.create_sale_order(
                {
                    "stage": "order",
                    "currency": "GBP",
                    "sourceType": "other",
                    "sourceId": SHOPLINE_CHANNEL_ID,
                    "sourceReferenceId": reference,
                    "customerReference": "#9001",
                    "items": [
                        {
                            "type": "item",
                            "referenceId": item.itemId,
                            "quantity": 1,
                            "displayPrice": price,
                            "displayTax": tax,
                            "displayLinePrice": price,
                            "displayLineTax": tax,
                            "displayLineTotal": price,
                            "fulfilmentType": "delivery",
                        }
                    ],
                    "payments": [{"method": 4, "amount": price}],
                }
            )
            found = await client.find_sale_orders_by_source(SHOPLINE_CHANNEL_ID, [reference])
            assert [o.saleOrderId for o in found] == [created.id]
            lines = await client.get_sale_order_items(created.id)
            assert [(line.referenceId, line.displayPrice) for line in lines] == [
                (item.itemId, price)
            ]

    asyncio.run(scenario())


def test_every_shopline_read_parses_the_sandbox_records(shopline_server: ServerThread) -> None:
    async def scenario() -> None:
        async with shopline_client(shopline_server) as client:
            customers = [c async for c in client.iter_customers(limit=10)]
            assert customers
            assert (await client.get_customer(customers[0].id)).id == customers[0].id
            probe = customers[0].email or customers[0].phone or customers[0].last_name or ""
            found = [c async for c in client.search_customers(probe)]
            assert customers[0].id in {c.id for c in found}
            orders = [o async for o in client.iter_orders()]
            for order in orders[:5]:
                await client.list_transactions(order.id)
                await client.list_refunds(order.id)
                await client.list_fulfillments(order.id)
            product = await anext(client.iter_products(limit=1))
            assert (await client.get_product(product.id)).variants
            await client.list_webhooks()

    asyncio.run(scenario())


def test_every_stokly_read_parses_the_sandbox_records(stokly_server: ServerThread) -> None:
    async def scenario() -> None:
        # A burst within the sandbox's own bucket (120), so this read-everything test is quick.
        async with stokly_client(stokly_server, rate_limit=RateLimit(2.0, 60)) as client:
            locations = [loc async for loc in client.iter_locations()]
            assert locations
            bins = [b async for b in client.iter_bins(locations[0].locationId)]
            assert all(b.binId for b in bins)
            records = [
                r
                async for r in client.iter_inventory_records(
                    location_ids=[loc.locationId for loc in locations]
                )
            ]
            assert records and all(r.onHand >= 0 for r in records)
            listings = [li async for li in client.iter_listings(SHOPLINE_CHANNEL_ID)]
            assert listings
            allocations = [a async for a in client.iter_allocations()]
            assert all(a.allocated >= 0 for a in allocations)
            customers = [c async for c in client.iter_customers()]
            emails = [c.email for c in customers if c.email]
            assert {c.email for c in await client.find_customers_by_email(emails)} == set(emails)
            orders = [o async for o in client.iter_sale_orders()]
            assert orders
            await client.get_sale_order(orders[0].saleOrderId)
            await client.get_sale_order_items(orders[0].saleOrderId)
            for order in orders[:3]:
                own = order.saleOrderId
                shipments = [s async for s in client.iter_sale_order_shipments(own)]
                refunds = [r async for r in client.iter_sale_order_refunds(own)]
                payments = [p async for p in client.iter_sale_order_payments(own)]
                assert {x.saleOrderId for x in [*shipments, *refunds, *payments]} <= {own}
            invoices = [i async for i in client.iter_invoices()]
            assert all(i.saleInvoiceId for i in invoices)
            assert all(p.transactionId for p in [p async for p in client.iter_payments()])
            assert all(r.amount > 0 for r in [r async for r in client.iter_refunds()])

    asyncio.run(scenario())


class _CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that tallies the statuses the sandbox answered."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.statuses[response.status_code] += 1
        return response


def test_inventory_levels_paginate_across_pages(shopline_server: ServerThread) -> None:
    async def scenario() -> None:
        async with shopline_client(shopline_server) as client:
            products = [p async for p in client.iter_products()]
            item_ids = [
                v.inventory_item_id for p in products for v in p.variants if v.inventory_item_id
            ][:4]
            locations = [loc.id for loc in await client.list_locations()]
            every = [lv async for lv in client.iter_inventory_levels(item_ids, locations)]
            paged = [lv async for lv in client.iter_inventory_levels(item_ids, locations, limit=2)]
            assert len(every) >= 6  # at least three pages of two
            assert [(lv.inventory_item_id, lv.location_id) for lv in paged] == [
                (lv.inventory_item_id, lv.location_id) for lv in every
            ]

    asyncio.run(scenario())


def test_pacing_holds_through_a_2000_call_burst_with_zero_429s() -> None:
    # The sandbox enforces SHOPLINE's bucket shape at 100/s (burst 40) so that 2,000 calls take
    # seconds; a client told the same limit is never refused.
    app = create_shopline(
        access_token=TOKEN, app_secret="app-secret", skus=30, rate_per_s=100.0, burst=40
    )

    async def burst(limit: RateLimit, calls: int) -> Counter[int]:
        counting = _CountingTransport()
        async with ShoplineClient(
            server.url,
            SecretStr(TOKEN),
            rate_limit=limit,
            max_concurrency=16,
            transport=counting,
            timeout=10.0,
            retry=RetryPolicy(max_attempts=10),
        ) as client:
            await asyncio.gather(*(client.count_orders() for _ in range(calls)))
        return counting.statuses

    with ServerThread(app) as server:
        # Headroom absorbs requests that reach the server later than they left the pacer: 4 slots
        # cover a second of delay at SHOPLINE's 4/s; at 100/s, 20 slots cover 200 ms.
        paced = asyncio.run(burst(RateLimit(per_second=100.0, burst=40, headroom=20), 2000))
        # The control: the same bucket, tightened so that any machine outruns it, does refuse a
        # client that ignores it — so the zero above is the pacer's doing.
        httpx.put(f"{server.url}/_sandbox/rate_limit", json={"rate_per_s": 10.0, "burst": 5})
        unpaced = asyncio.run(burst(RateLimit(per_second=100_000.0, burst=1000), 60))
    app.state.shopline.close()
    assert paced[200] == 2000 and paced[429] == 0
    assert unpaced[429] > 0


@pytest.mark.parametrize("profile", ["flaky", "hostile"])
def test_faults_are_recovered_or_surface_as_typed_errors(profile: str) -> None:
    # Both sandboxes misbehave per the profile (5xx, 429 bursts, latency; hostile adds timeouts
    # and dropped connections). Every call must end in a result or a ConnectorError: nothing else.
    shopline_app = create_shopline(
        access_token=TOKEN, app_secret="app-secret", skus=30, rate_per_s=None, faults=profile
    )
    stokly_app = create_stokly(
        account_key="demo-outdoor",
        client_id="cid",
        client_secret=SECRET,
        seed_skus=30,
        rate_per_minute=None,
        faults=profile,
    )
    shopline_app.state.shopline.faults.update(timeout_s=2.0)
    stokly_app.state.sandbox.faults.update(timeout_s=2.0)
    retry = RetryPolicy(max_attempts=6, max_elapsed=30.0, backoff_base=0.01, backoff_max=0.2)
    outcomes: Counter[str] = Counter()
    seen = _CountingTransport()

    async def settle(call: Any) -> None:
        try:
            await call
            outcomes["ok"] += 1
        except ConnectorError as exc:
            outcomes[type(exc).__name__] += 1

    async def scenario(shop_url: str, stok_url: str) -> None:
        async with (
            ShoplineClient(
                shop_url,
                SecretStr(TOKEN),
                rate_limit=RateLimit(1000.0, 100),
                retry=retry,
                timeout=1.0,
                max_concurrency=8,
                transport=seen,
            ) as shop,
            StoklyClient(
                stok_url,
                account_key="demo-outdoor",
                client_id="cid",
                client_secret=SecretStr(SECRET),
                rate_limit=RateLimit(1000.0, 100),
                retry=retry,
                timeout=1.0,
                max_concurrency=8,
            ) as stok,
        ):
            calls = [shop.count_orders() for _ in range(60)]
            calls += [shop.list_locations() for _ in range(30)]
            calls += [_drain(stok.iter_locations()) for _ in range(30)]
            await asyncio.gather(*(settle(c) for c in calls))

    with ServerThread(shopline_app) as shop_server, ServerThread(stokly_app) as stok_server:
        asyncio.run(scenario(shop_server.url, stok_server.url))
    shopline_app.state.shopline.close()
    assert sum(outcomes.values()) == 120
    assert outcomes["ok"] >= 114, outcomes  # retries recover nearly everything
    assert sum(n for status, n in seen.statuses.items() if status >= 429) > 0, seen.statuses


async def _drain(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


# Each list, and how many records the demo seed has at least (so: how many one-record pages).
STOKLY_LISTS = {
    "iter_items": 30,
    "iter_locations": 4,
    "iter_inventory_records": 30,
    "iter_channels": 2,
    "iter_customers": 5,
    "iter_sale_orders": 4,
    "iter_allocations": 1,
    "iter_shipments": 1,
}


@pytest.fixture(scope="module")
def unlimited_stokly() -> Iterator[ServerThread]:
    app = create_stokly(
        account_key="demo-outdoor",
        client_id="cid",
        client_secret=SECRET,
        seed_skus=30,
        rate_per_minute=None,
    )
    with ServerThread(app) as server:
        yield server


def _key(record: Any) -> str:
    data = record.model_dump()
    return repr(sorted((k, str(v)) for k, v in data.items()))


@pytest.mark.parametrize(("method", "at_least"), STOKLY_LISTS.items())
def test_every_stokly_list_paginates_across_pages(
    unlimited_stokly: ServerThread, method: str, at_least: int
) -> None:
    # One record a page versus the largest page: the same records, in the same order, over as
    # many pages as there are records.
    async def scenario() -> tuple[list[str], list[str]]:
        async with (
            stokly_client(
                unlimited_stokly, page_size=1, rate_limit=RateLimit(1000.0, 100)
            ) as small,
            stokly_client(unlimited_stokly) as big,
        ):
            paged = [_key(r) async for r in getattr(small, method)()]
            whole = [_key(r) async for r in getattr(big, method)()]
            return paged, whole

    paged, whole = asyncio.run(scenario())
    assert len(whole) >= at_least
    assert paged == whole


@pytest.mark.parametrize("method", ["iter_products", "iter_orders", "iter_customers"])
def test_every_shopline_list_paginates_across_pages(
    shopline_server: ServerThread, method: str
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with shopline_client(shopline_server) as client:
            paged = [r.id async for r in getattr(client, method)(limit=2)]
            whole = [r.id async for r in getattr(client, method)()]
            return paged, whole

    paged, whole = asyncio.run(scenario())
    assert len(whole) >= 6  # three pages of two, at least
    assert paged == whole


def test_clients_through_an_asgi_transport_need_no_server() -> None:
    # Where speed matters (many scenarios, no sockets), the sandboxes plug in at the transport seam.
    shopline_app = create_shopline(
        access_token=TOKEN, app_secret="app-secret", skus=30, rate_per_s=None
    )
    stokly_app = create_stokly(
        account_key="demo-outdoor",
        client_id="cid",
        client_secret=SECRET,
        seed_skus=30,
        rate_per_minute=None,
    )

    async def scenario() -> None:
        async with (
            ShoplineClient(
                "http://shopline.test",
                SecretStr(TOKEN),
                transport=httpx.ASGITransport(app=shopline_app),
            ) as shop,
            StoklyClient(
                "http://stokly.test",
                account_key="demo-outdoor",
                client_id="cid",
                client_secret=SECRET_STR,
                transport=httpx.ASGITransport(app=stokly_app),
            ) as stok,
        ):
            products = [p async for p in shop.iter_products(limit=10)]
            assert len(products) > 10
            skus = [v.sku for p in products for v in p.variants if v.sku][:5]
            items = [i async for i in stok.iter_items(skus=[s.upper() for s in skus])]
            assert items  # the two sides share the demo catalogue

    asyncio.run(scenario())
    shopline_app.state.shopline.close()


SECRET_STR = SecretStr(SECRET)
