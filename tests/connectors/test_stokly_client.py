"""StoklyClient against a strict fake transport: grant, token refresh, envelopes, paging."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from stokline.connectors import AuthError, PaginationLoopError, StoklyClient
from stokline.connectors.stokly import filters as f

from .conftest import STOKLY_ACCOUNT, STOKLY_CLIENT_ID, STOKLY_SECRET, make_stokly
from .fakes import FakeClock, StrictTransport


def grant_body(token: str, clock: FakeClock, ttl: float = 3600) -> dict[str, object]:
    expiry = datetime.fromtimestamp(clock.now + ttl, tz=UTC).isoformat().replace("+00:00", "Z")
    return {"data": {"authenticationResult": {"accessToken": token, "expiry": expiry}}}


def expect_grant(transport: StrictTransport, clock: FakeClock, token: str, ttl: float = 3600):
    expected_signature = hmac.new(
        STOKLY_SECRET.encode(), STOKLY_CLIENT_ID.encode(), hashlib.sha256
    ).hexdigest()
    transport.expect(
        "POST",
        "/v1/grant",
        json_body={
            "accountkey": STOKLY_ACCOUNT,
            "clientId": STOKLY_CLIENT_ID,
            "signature": expected_signature,
        },
        body=grant_body(token, clock, ttl),
    )


def envelope(rows: list[dict[str, object]], count: int | None = None) -> dict[str, object]:
    return {"metadata": {"count": len(rows) if count is None else count}, "data": rows}


def item(n: int) -> dict[str, object]:
    return {"itemId": f"item-{n}", "sku": f"SKU-{n}", "name": f"Item {n}", "status": 0}


async def collect(iterator) -> list:
    return [x async for x in iterator]


@pytest.fixture
def stokly(transport: StrictTransport, clock: FakeClock) -> StoklyClient:
    return make_stokly(transport, clock)


def test_grant_signs_client_id_and_token_is_reused(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok-1")
    transport.expect("GET", "/v0/items/item-1", body={"data": item(1)})
    transport.expect("GET", "/v0/items/item-2", body={"data": item(2)})

    async def two() -> None:
        await stokly.get_item("item-1")
        await stokly.get_item("item-2")

    clock.run(two())
    grant_request, *calls = transport.requests
    assert "authorization" not in grant_request.headers
    assert [r.headers["authorization"] for r in calls] == ["Bearer tok-1", "Bearer tok-1"]
    assert stokly.auth.grants == 1


def test_token_is_refreshed_before_expiry(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok-1", ttl=3600)
    transport.expect("GET", "/v0/items/item-1", body={"data": item(1)})
    clock.run(stokly.get_item("item-1"))
    clock.advance(3600 - 30)  # inside the 60 s refresh margin
    expect_grant(transport, clock, "tok-2")
    transport.expect("GET", "/v0/items/item-1", body={"data": item(1)})
    clock.run(stokly.get_item("item-1"))
    assert transport.requests[-1].headers["authorization"] == "Bearer tok-2"
    assert stokly.auth.grants == 2


def test_jwt_expired_refreshes_once_and_resends(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok-1")
    transport.expect("GET", "/v0/items/item-1", status=401, body={"message": "jwt expired"})
    expect_grant(transport, clock, "tok-2")
    transport.expect("GET", "/v0/items/item-1", body={"data": item(1)})
    assert clock.run(stokly.get_item("item-1")).sku == "SKU-1"
    assert transport.requests[-1].headers["authorization"] == "Bearer tok-2"


def test_jwt_expired_twice_is_an_auth_error_not_a_loop(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok-1")
    transport.expect("GET", "/v0/items/item-1", status=401, body={"message": "jwt expired"})
    expect_grant(transport, clock, "tok-2")
    transport.expect("GET", "/v0/items/item-1", status=401, body={"message": "jwt expired"})
    with pytest.raises(AuthError, match="jwt expired") as info:
        clock.run(stokly.get_item("item-1"))
    assert info.value.status == 401
    assert stokly.auth.grants == 2


def test_other_401_is_not_refreshed(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok-1")
    transport.expect("GET", "/v0/items/item-1", status=401, body={"message": "Unauthorized"})
    with pytest.raises(AuthError):
        clock.run(stokly.get_item("item-1"))
    assert stokly.auth.grants == 1


def test_rejected_grant_is_an_auth_error(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("POST", "/v1/grant", status=401, body={"message": "invalid signature"})
    with pytest.raises(AuthError, match="POST /v1/grant -> HTTP 401: invalid signature"):
        clock.run(stokly.get_item("item-1"))


def test_concurrent_requests_share_one_grant(transport: StrictTransport, clock: FakeClock) -> None:
    grants = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal grants
        if request.url.path == "/v1/grant":
            grants += 1
            return httpx.Response(200, json=grant_body(f"tok-{grants}", clock))
        assert request.headers["authorization"] == "Bearer tok-1"
        return httpx.Response(200, json={"data": item(1)})

    client = make_stokly(httpx.MockTransport(handler), clock, max_concurrency=2)  # type: ignore[arg-type]

    async def many() -> None:
        await asyncio.gather(*(client.get_item("item-1") for _ in range(8)))

    clock.run(many())
    assert grants == 1


def test_page_size_paging_across_three_pages(transport: StrictTransport, clock: FakeClock) -> None:
    client = make_stokly(transport, clock, page_size=2)
    expect_grant(transport, clock, "tok")
    for page, rows in enumerate([[item(1), item(2)], [item(3), item(4)], [item(5)]]):
        transport.expect(
            "GET",
            "/v0/items",
            params={"page": str(page), "size": "2", "filter": "[status]!={1}"},
            body=envelope(rows, count=5),
        )
    items = clock.run(collect(client.iter_items(filter=f.ne("status", 1))))
    assert [i.sku for i in items] == ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-5"]


def test_paging_stops_at_count_without_an_extra_empty_page(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = make_stokly(transport, clock, page_size=2)
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v0/locations",
        body=envelope(
            [{"locationId": "l1", "name": "A"}, {"locationId": "l2", "name": "B"}], count=4
        ),
    )
    transport.expect(
        "GET",
        "/v0/locations",
        body=envelope(
            [{"locationId": "l3", "name": "C"}, {"locationId": "l4", "name": "D"}], count=4
        ),
    )
    assert len(clock.run(collect(client.iter_locations()))) == 4


def test_server_ignoring_page_raises_pagination_loop_error(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = make_stokly(transport, clock, page_size=2)
    expect_grant(transport, clock, "tok")
    transport.expect("GET", "/v0/items", body=envelope([item(1), item(2)], count=10), times=2)
    with pytest.raises(PaginationLoopError, match="page 1 repeats"):
        clock.run(collect(client.iter_items()))


def test_items_by_sku_are_batched_into_one_of_filters(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = make_stokly(transport, clock, id_batch_size=2)
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v0/items",
        params={"filter": "[sku]=*{SKU-1,SKU-2}"},
        body=envelope([item(1), item(2)]),
    )
    transport.expect(
        "GET", "/v0/items", params={"filter": "[sku]=*{SKU-3}"}, body=envelope([item(3)])
    )
    items = clock.run(collect(client.iter_items(skus=["SKU-1", "SKU-2", "SKU-3", "SKU-1"])))
    assert [i.itemId for i in items] == ["item-1", "item-2", "item-3"]
    assert [r.url.params["size"] for r in transport.requests[1:]] == ["1000", "1000"]


def test_find_sale_orders_by_source_uses_one_call_for_many_ids(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v2/saleorders",
        params={
            "filter": "[sourceId]=={chan-1}&&[sourceReferenceId]=*{2101,2102,2103}",
            "size": "1000",
            "page": "0",
        },
        body=envelope([{"saleOrderId": "so-1", "sourceId": "chan-1", "sourceReferenceId": "2102"}]),
    )
    found = clock.run(stokly.find_sale_orders_by_source("chan-1", ["2101", "2102", "2103"]))
    assert [(o.saleOrderId, o.sourceReferenceId) for o in found] == [("so-1", "2102")]
    # && travels URL-encoded, as Stokly expects.
    assert "%26%26" in str(transport.requests[1].url)


def test_inventory_records_filter_by_items_and_locations(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v1/inventory-records",
        params={"filter": "[itemId]=*{i1,i2}&&[locationId]=*{L1}"},
        body=envelope(
            [
                {
                    "itemId": "i1",
                    "locationId": "L1",
                    "binId": "UNASSIGNED",
                    "onHand": 4.5,
                    "quarantined": 1,
                }
            ]
        ),
    )
    records = clock.run(
        collect(stokly.iter_inventory_records(item_ids=["i1", "i2"], location_ids=["L1"]))
    )
    assert records[0].onHand == Decimal("4.5")
    assert records[0].quarantined == Decimal(1)


def test_create_sale_order_sends_exact_decimal_numbers(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect("POST", "/v2/saleorders", body={"data": {"id": "so-9"}})
    created = clock.run(
        stokly.create_sale_order(
            {
                "items": [{"displayPrice": Decimal("49.99"), "quantity": 2}],
                "shipping": {"cost": Decimal("3.00")},
            }
        )
    )
    assert created.id == "so-9"
    sent = transport.requests[-1].content.decode()
    assert '"displayPrice":49.99' in sent and '"cost":3' in sent


def test_create_is_not_resent_after_a_timeout(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    from stokline.connectors import TransportError

    expect_grant(transport, clock, "tok")
    transport.expect("POST", "/v2/saleorders", raises=httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError, match="may have been applied"):
        clock.run(stokly.create_sale_order({"stage": "order"}))


def test_adjustments_are_split_into_chunks_of_500(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect("POST", "/v1/adjustments", body={"data": {"id": "adj-1"}})
    transport.expect("POST", "/v1/adjustments", body={"data": {"id": "adj-2"}})
    lines = [(f"item-{n}", 1) for n in range(700)]
    created = clock.run(stokly.create_adjustment("L1", lines, reason="shopline sync"))
    assert [c.id for c in created] == ["adj-1", "adj-2"]
    bodies = [json.loads(r.content) for r in transport.requests[1:]]
    assert [len(b["items"]) for b in bodies] == [500, 200]
    assert bodies[0]["reason"] == "shopline sync" and "binId" not in bodies[0]


def test_low_remaining_quota_pauses_the_next_request(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET", "/v0/items/item-1", body={"data": item(1)}, headers={"x-ratelimit-remaining": "3"}
    )
    transport.expect("GET", "/v0/items/item-1", body={"data": item(1)})

    async def two() -> None:
        await stokly.get_item("item-1")
        before = clock.now
        await stokly.get_item("item-1")
        assert clock.now - before >= 60

    clock.run(two())


def test_customers_by_email_and_phone(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v0/customers",
        params={"filter": "[email]=*{a@example.com,b@example.com}"},
        body=envelope([{"customerId": "c1", "email": "a@example.com"}]),
    )
    transport.expect(
        "GET",
        "/v0/customers",
        params={"filter": "[phone]=*{+447700900123}"},
        body=envelope([]),
    )

    async def both() -> tuple[list, list]:
        by_email = await stokly.find_customers_by_email(["a@example.com", "b@example.com"])
        by_phone = await stokly.find_customers_by_phone(["+447700900123"])
        return by_email, by_phone

    by_email, by_phone = clock.run(both())
    assert [c.customerId for c in by_email] == ["c1"] and by_phone == []


def test_invented_event_feed_returns_cursor_for_the_caller_to_store(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v0/events",
        params={"after": "41", "type": "stock.movement,shipment.created"},
        body={
            "metadata": {"count": 1, "cursor": "42", "hasMore": False},
            "data": [
                {
                    "cursor": "42",
                    "eventId": "e42",
                    "type": "stock.movement",
                    "data": {"itemId": "i1"},
                }
            ],
        },
    )
    page = clock.run(stokly.get_events("41", types=["stock.movement", "shipment.created"]))
    assert (page.cursor, page.has_more, page.events[0].type) == ("42", False, "stock.movement")


def test_invented_shipments_and_journals(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v0/shipments",
        params={"filter": "[updatedAt]>={2026-11-27T00:00:00+00:00}"},
        body=envelope(
            [
                {
                    "shipmentId": "sh1",
                    "saleOrderId": "so1",
                    "status": "dispatched",
                    "trackingNumbers": ["RM1GB"],
                    "items": [{"lineId": "l1", "quantity": 1}],
                }
            ]
        ),
    )
    transport.expect(
        "POST",
        "/v0/journals",
        json_body={"reference": "r1", "lines": [{"account": "1210", "debit": 10.5, "credit": 0}]},
        body={"data": {"id": "j1"}},
    )

    async def run() -> None:
        since = datetime(2026, 11, 27, tzinfo=UTC)
        shipments = await collect(stokly.iter_shipments(f.gte("updatedAt", since)))
        assert shipments[0].trackingNumbers == ["RM1GB"]
        journal = await stokly.create_journal(
            {
                "reference": "r1",
                "lines": [{"account": "1210", "debit": Decimal("10.50"), "credit": 0}],
            }
        )
        assert journal.id == "j1"

    clock.run(run())


def test_stokly_429_waits_for_retry_after_not_the_quota_pause(
    stokly: StoklyClient, transport: StrictTransport, clock: FakeClock
) -> None:
    expect_grant(transport, clock, "tok")
    transport.expect(
        "GET",
        "/v0/items/item-1",
        status=429,
        body={"message": "Rate limit exceeded, slow down"},
        headers={"Retry-After": "2", "x-ratelimit-remaining": "0"},
    )
    transport.expect("GET", "/v0/items/item-1", status=503, body={"message": "Service unavailable"})
    transport.expect("GET", "/v0/items/item-1", body={"data": item(1)})
    assert clock.run(stokly.get_item("item-1")).itemId == "item-1"
    assert 2.0 <= clock.elapsed < 10
