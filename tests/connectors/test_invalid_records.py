"""One malformed record of a list answer: the page fails, unless the caller sets it aside.

A sync that can turn one record into an exception (an order, a shipment) passes ``on_invalid=``
and gets each malformed record as an `InvalidRecord` — its position, id, raw value and the typed
error — while the rest of the page and the following pages still arrive. Also here: amounts that
are not finite numbers, values that cannot be sent, and what errors may carry (no credential,
no unbounded text).
"""

from __future__ import annotations

import traceback
from decimal import Decimal
from typing import Any

import pytest

from stokline.connectors import (
    ApiError,
    ConnectorError,
    InvalidRecord,
    RequestEncodingError,
    ResponseFormatError,
    ShoplineClient,
    is_transient,
)
from stokline.connectors.errors import MAX_API_MESSAGE, MAX_MESSAGE, ServerError

from .conftest import API, SHOPLINE_BASE, STOKLY_CLIENT_ID, STOKLY_SECRET, make_stokly
from .fakes import FakeClock, StrictTransport, link

ORDERS = f"{API}/orders.json"
GRANTED = {
    "data": {
        "authenticationResult": {"accessToken": "tok-abcdef", "expiry": "2099-01-01T00:00:00Z"}
    }
}


def order(order_id: Any, price: Any = "10.00", **extra: Any) -> dict[str, Any]:
    return {"id": order_id, "line_items": [{"id": "1", "quantity": 1, "price": price}], **extra}


async def collect(iterator: Any) -> list[Any]:
    return [x async for x in iterator]


def test_a_malformed_order_is_handed_over_and_the_pages_go_on(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        ORDERS,
        body={"orders": [order("1"), order("2", price="NaN"), order(True)]},
        headers={"link": link(f"{SHOPLINE_BASE}{ORDERS}", "p2")},
    )
    transport.expect("GET", ORDERS, body={"orders": [order("3", total_price="Infinity")]})
    transport.expect("GET", ORDERS, body={"orders": [order("4")]})
    transport.expect("GET", ORDERS, body={"orders": [order("5", price="NaN")]})
    skipped: list[InvalidRecord] = []

    got = clock.run(collect(shopline.iter_orders(on_invalid=skipped.append)))
    assert [o.id for o in got] == ["1"]
    assert [(s.index, s.record_id) for s in skipped] == [(1, "2"), (2, None), (0, "3")]
    assert skipped[0].raw["line_items"][0]["price"] == "NaN"
    assert "orders[1].line_items[0].price: Input should be a finite number" in str(skipped[0].error)
    assert "orders[2].id" in str(skipped[1].error)
    assert "orders[0].total_price" in str(skipped[2].error)
    assert all(isinstance(s.error, ResponseFormatError) for s in skipped)

    # Read by ids (the way syncs re-read single orders), the same: by default the page fails.
    got = clock.run(collect(shopline.iter_orders(ids=["4"], on_invalid=skipped.append)))
    assert [o.id for o in got] == ["4"]
    with pytest.raises(ResponseFormatError, match=r"orders\[0\]\.line_items\[0\]\.price"):
        clock.run(collect(shopline.iter_orders(ids=["5"])))


def test_a_malformed_stokly_shipment_is_handed_over_with_its_id(
    transport: StrictTransport, clock: FakeClock
) -> None:
    stokly = make_stokly(transport, clock)
    good = {"shipmentId": "s1", "saleOrderId": "so1", "status": "dispatched", "items": []}
    bad = {**good, "shipmentId": "s2", "items": [{"lineId": "l1", "quantity": "lots"}]}
    transport.expect("POST", "/v1/grant", body=GRANTED)
    transport.expect("GET", "/v0/shipments", body={"metadata": {"count": 2}, "data": [bad, good]})
    skipped: list[InvalidRecord] = []
    got = clock.run(collect(stokly.iter_shipments(on_invalid=skipped.append)))
    assert [s.shipmentId for s in got] == ["s1"]
    [invalid] = skipped
    assert (invalid.index, invalid.record_id) == (0, "s2")
    assert "data[0].items[0].quantity" in str(invalid.error)


def test_amounts_must_be_finite_and_sane(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    for price in ("NaN", "-Infinity", "1E+400", "1000000000000000"):
        transport.expect("GET", ORDERS, body={"orders": [order("1", price=price)]})
        with pytest.raises(ResponseFormatError, match=r"line_items\[0\]\.price"):
            clock.run(collect(shopline.iter_orders()))
    transport.expect("GET", ORDERS, body={"orders": [order("1", price="999999999999999.99")]})
    [ok] = clock.run(collect(shopline.iter_orders()))
    assert ok.line_items[0].price == Decimal("999999999999999.99")


def test_a_nan_amount_is_never_sent(transport: StrictTransport, clock: FakeClock) -> None:
    stokly = make_stokly(transport, clock)
    with pytest.raises(RequestEncodingError, match="not a number JSON can carry") as info:
        clock.run(stokly.create_customer({"email": "a@example.com", "credit": Decimal("NaN")}))
    error = info.value
    assert isinstance(error, ApiError) and error.status == 0 and not is_transient(error)
    assert transport.requests == []  # not even the token grant


def test_a_lone_surrogate_in_a_query_or_a_path_is_refused_before_sending(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    with pytest.raises(RequestEncodingError, match="query value of 'ids' cannot be encoded"):
        clock.run(collect(shopline.iter_orders(ids=["12\ud83d"])))
    with pytest.raises(ValueError, match="is not valid Unicode"):
        clock.run(shopline.get_product("12\udcff"))
    assert transport.requests == []


def test_the_stokly_client_id_is_kept_like_a_secret(
    transport: StrictTransport, clock: FakeClock
) -> None:
    stokly = make_stokly(transport, clock)
    assert stokly.client_id == STOKLY_CLIENT_ID
    for text in (repr(stokly), repr(vars(stokly))):
        assert STOKLY_CLIENT_ID not in text
    echo = f"no client {STOKLY_CLIENT_ID} with secret {STOKLY_SECRET}"
    transport.expect(
        "POST", "/v1/grant", status=500, body={"message": echo}, headers={"x-request-id": echo}
    )
    transport.expect("POST", "/v1/grant", status=500, body={"message": echo}, times=3)
    with pytest.raises(ServerError) as info:
        clock.run(collect(stokly.iter_items()))
    texts = [
        str(info.value),
        repr(vars(info.value)),
        "".join(traceback.format_exception(info.value)),
    ]
    for text in texts:
        assert STOKLY_CLIENT_ID not in text and STOKLY_SECRET not in text
    assert "no client *** with secret ***" in str(info.value)


def test_error_texts_are_bounded_and_masking_reaches_every_attribute() -> None:
    error = ServerError(
        service="SHOPLINE",
        status=503,
        method="GET",
        path="/x",
        trace_id="t" * 5_000,
        api_message="busy " * 5_000,
    )
    assert len(error.api_message or "") == MAX_API_MESSAGE and error.api_message.endswith("…")
    assert len(str(error)) <= MAX_MESSAGE
    long = ConnectorError("x" * 10_000)
    assert len(str(long)) == MAX_MESSAGE and str(long).endswith("…")

    format_error = ResponseFormatError(
        "bad field", service="S", endpoint="GET /x", field="data.s3cr3t-value"
    ).masking(["s3cr3t-value"])
    assert "s3cr3t" not in repr(vars(format_error)) + str(format_error)
    assert format_error.field == "data.***"
