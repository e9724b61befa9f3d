"""Answers of a broken upstream at the transport seam: what the clients retry, stop on, or name.

The shapes are those of the sandboxes' ``malformed`` fault: an HTML page in place of JSON (with
200, or with 502), JSON cut off part-way, and list pages that come back empty yet still lead on
(SHOPLINE's ``link`` header, Stokly's ``metadata.count``, the change feed's ``hasMore``). A read
that met one is tried again; a write is never resent; a page that never fills ends in one clear
line instead of a silent short list or an endless loop.
"""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import (
    PaginationLoopError,
    ServerError,
    ShoplineClient,
    UnreadableResponseError,
    is_transient,
)

from .conftest import API, FAST_RETRY, SHOPLINE_BASE, SHOPLINE_TOKEN, make_stokly
from .fakes import FakeClock, StrictTransport, link

LOCATIONS = f"{API}/locations/list.json"
ORDERS = f"{API}/orders.json"
MAINTENANCE = (
    "<!DOCTYPE html>\n<html><head><title>We'll be right back</title></head>"
    "<body><h1>We'll be right back</h1><p>The service is down for maintenance.</p></body></html>"
)
BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
)
GRANT = {"data": {"authenticationResult": {"accessToken": "t", "expiry": "2099-01-01T00:00:00Z"}}}
JSON = {"content-type": "application/json"}


async def collect(iterator) -> list:
    return [x async for x in iterator]


def one_line(text: str) -> None:
    assert "\n" not in text and "\r" not in text and "Traceback" not in text, text
    assert "<" not in text, f"markup in the message: {text}"


# -- not JSON at all ------------------------------------------------------------------------------


def test_a_read_answered_by_an_html_page_with_200_is_tried_again(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", LOCATIONS, text=MAINTENANCE)
    transport.expect("GET", LOCATIONS, body={"locations": [{"id": "7001", "name": "Leeds"}]})
    (location,) = clock.run(shopline.list_locations())
    assert location.id == "7001"
    assert clock.sleeps == [FAST_RETRY.backoff(1, lambda: 0.0)]


def test_an_html_page_with_200_on_every_try_is_one_transient_line(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", LOCATIONS, text=MAINTENANCE, times=FAST_RETRY.max_attempts)
    with pytest.raises(UnreadableResponseError) as info:
        clock.run(shopline.list_locations())
    message = str(info.value)
    assert message == (
        f'SHOPLINE GET {LOCATIONS}: the answer is an HTML page ("We\'ll be right back"),'
        f" not JSON, with HTTP 200 after {FAST_RETRY.max_attempts} attempts"
    )
    one_line(message)
    assert is_transient(info.value) and info.value.attempts == FAST_RETRY.max_attempts


def test_json_cut_off_part_way_is_tried_again_and_then_named(
    transport: StrictTransport, clock: FakeClock
) -> None:
    stokly = make_stokly(transport, clock)
    body = json.dumps({"metadata": {"count": 1}, "data": [{"itemId": "i1", "sku": "TENT"}]})
    transport.expect("POST", "/v1/grant", body=GRANT)
    transport.expect("GET", "/v0/items", text=body[:37], headers=JSON)
    transport.expect("GET", "/v0/items", text=body)
    assert [i.sku for i in clock.run(collect(stokly.iter_items()))] == ["TENT"]

    transport.expect("GET", "/v0/items", text=body[:37], headers=JSON, times=4)
    with pytest.raises(UnreadableResponseError) as info:
        clock.run(collect(stokly.iter_items()))
    assert str(info.value) == (
        "Stokly GET /v0/items: the JSON body is cut off after 37 bytes (HTTP 200) after 4 attempts"
    )


def test_a_write_answered_unreadably_is_not_sent_again(
    transport: StrictTransport, clock: FakeClock
) -> None:
    """The customer may exist now: no second create, and a transient error (no clear answer)."""
    stokly = make_stokly(transport, clock)
    transport.expect("POST", "/v1/grant", body=GRANT)
    transport.expect("POST", "/v0/customers", text='{"data":{"id":"c-', headers=JSON)
    with pytest.raises(UnreadableResponseError) as info:
        clock.run(stokly.create_customer({"email": "a@example.com"}))
    assert str(info.value) == (
        "Stokly POST /v0/customers: the JSON body is cut off after 17 bytes (HTTP 200)"
    )
    assert is_transient(info.value)


def test_an_html_error_page_is_named_by_its_title_not_quoted(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", LOCATIONS, status=502, text=BAD_GATEWAY, times=4)
    with pytest.raises(ServerError) as info:
        clock.run(shopline.list_locations())
    assert str(info.value) == (
        f'SHOPLINE GET {LOCATIONS} -> HTTP 502: an HTML page ("502 Bad Gateway") after 4 attempts'
    )


# -- empty pages that still lead on ---------------------------------------------------------------


def test_a_stokly_page_that_comes_back_empty_though_records_remain_is_asked_again(
    transport: StrictTransport, clock: FakeClock
) -> None:
    stokly = make_stokly(transport, clock)
    rows = [{"itemId": "i1", "sku": "A"}, {"itemId": "i2", "sku": "B"}]
    transport.expect("POST", "/v1/grant", body=GRANT)
    transport.expect("GET", "/v0/items", body={"metadata": {"count": 2}, "data": []})
    transport.expect("GET", "/v0/items", body={"metadata": {"count": 2}, "data": rows})
    items = clock.run(collect(stokly.iter_items()))
    assert [i.sku for i in items] == ["A", "B"]
    pages = [r.url.params["page"] for r in transport.requests[1:]]
    assert pages == ["0", "0"]


def test_stokly_pages_that_never_fill_end_in_one_clear_line(
    transport: StrictTransport, clock: FakeClock
) -> None:
    stokly = make_stokly(transport, clock, page_size=2)
    rows = [{"itemId": "i1", "sku": "A"}, {"itemId": "i2", "sku": "B"}]
    transport.expect("POST", "/v1/grant", body=GRANT)
    transport.expect("GET", "/v0/items", body={"metadata": {"count": 5}, "data": rows})
    transport.expect("GET", "/v0/items", body={"metadata": {"count": 5}, "data": []}, times=3)
    with pytest.raises(PaginationLoopError) as info:
        clock.run(collect(stokly.iter_items()))
    assert str(info.value) == (
        "Stokly GET /v0/items: page 1 came back empty 3 times though metadata.count says 5"
        " records and 2 were read; stopping instead of reading a short list"
    )


def test_a_shopline_page_with_no_orders_and_a_next_link_loses_nothing(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    url = f"{SHOPLINE_BASE}{ORDERS}"
    order = {"id": "1", "line_items": []}
    transport.expect("GET", ORDERS, body={"orders": []}, headers={"link": link(url, "p1")})
    transport.expect("GET", ORDERS, body={"orders": [order]})
    assert [o.id for o in clock.run(collect(shopline.iter_orders()))] == ["1"]


def test_shopline_empty_pages_with_ever_new_cursors_stop_instead_of_looping(
    clock: FakeClock,
) -> None:
    url = f"{SHOPLINE_BASE}{ORDERS}"
    sent: list[httpx.Request] = []

    def endless(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) > 50:
            raise AssertionError("still paging after 50 empty pages")
        headers = {**JSON, "link": link(url, f"cursor-{len(sent)}")}
        return httpx.Response(200, json={"orders": []}, headers=headers)

    shopline = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(endless),
        clock=clock,
        retry=FAST_RETRY,
    )
    with pytest.raises(PaginationLoopError) as info:
        clock.run(collect(shopline.iter_orders()))
    assert str(info.value) == (
        f"SHOPLINE GET {ORDERS}: 5 pages in a row came back empty, each with a next link;"
        " stopping instead of following them"
    )
    assert len(sent) == 5


def test_an_empty_change_feed_page_that_says_more_is_asked_again_then_named(
    transport: StrictTransport, clock: FakeClock
) -> None:
    stokly = make_stokly(transport, clock)
    event = {"cursor": "6", "type": "shipment.created", "data": {"shipmentId": "s1"}}
    stalled = {"metadata": {"count": 0, "cursor": "5", "hasMore": True}, "data": []}
    transport.expect("POST", "/v1/grant", body=GRANT)
    transport.expect("GET", "/v0/events", body=stalled, params={"after": "5"})
    transport.expect(
        "GET",
        "/v0/events",
        body={"metadata": {"count": 1, "cursor": "6", "hasMore": False}, "data": [event]},
        params={"after": "5"},
    )
    page = clock.run(stokly.get_events("5"))
    assert [e.cursor for e in page.events] == ["6"] and page.cursor == "6"

    transport.expect("GET", "/v0/events", body=stalled, params={"after": "5"}, times=3)
    with pytest.raises(PaginationLoopError) as info:
        clock.run(stokly.get_events("5"))
    assert str(info.value) == (
        "Stokly GET /v0/events: the change feed came back empty 3 times after cursor '5'"
        " though it says more events follow; stopping"
    )
