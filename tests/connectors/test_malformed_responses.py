"""Malformed success responses become ResponseFormatError naming the endpoint and field."""

from __future__ import annotations

import pytest

from stokline.connectors import ResponseFormatError, ShoplineClient

from .conftest import API, make_stokly
from .fakes import FakeClock, StrictTransport

LOCATIONS = f"{API}/locations/list.json"


async def collect(iterator) -> list:
    return [x async for x in iterator]


@pytest.mark.parametrize(
    ("answer", "message", "field"),
    [
        # Not JSON at all: tried on every attempt of the retry budget (see
        # test_malformed_upstream.py), then named.
        (
            {"text": "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "times": 4},
            'the answer is an HTML page ("502 Bad Gateway"), not JSON, with HTTP 200',
            None,
        ),
        ({"body": None, "times": 4}, "empty body with HTTP 200", None),
        ({"body": ["not", "an", "object"]}, "got a JSON array", None),
        (
            {"body": {"location": []}},
            "field 'locations' is missing (present: location)",
            "locations",
        ),
        (
            {"body": {"locations": {"id": "1"}}},
            "field 'locations' should be a JSON array",
            "locations",
        ),
        (
            {"body": {"locations": [{"id": "1"}, {"id": 6001}]}},
            "field locations[1].id: Input should be a valid string",
            "locations[1].id",
        ),
        (
            {"body": {"locations": [{"name": "no id"}]}},
            "field locations[0].id: Field required",
            "locations[0].id",
        ),
    ],
)
def test_shopline_malformed_bodies(
    shopline: ShoplineClient,
    transport: StrictTransport,
    clock: FakeClock,
    answer: dict[str, object],
    message: str,
    field: str | None,
) -> None:
    transport.expect("GET", LOCATIONS, **answer)  # type: ignore[arg-type]
    with pytest.raises(ResponseFormatError) as info:
        clock.run(shopline.list_locations())
    text = str(info.value)
    assert text.startswith(f"SHOPLINE GET {LOCATIONS}: ")
    assert message in text
    assert info.value.field == field


def test_money_as_a_float_like_word_is_refused(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        f"{API}/orders.json",
        body={
            "orders": [{"id": "1", "line_items": [{"id": "9", "quantity": 1, "price": "eight"}]}]
        },
    )
    with pytest.raises(ResponseFormatError, match=r"orders\[0\]\.line_items\[0\]\.price"):
        clock.run(collect(shopline.iter_orders()))


def test_count_must_be_a_number(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", f"{API}/orders/count.json", body={"count": "12"})
    with pytest.raises(ResponseFormatError, match="'count' should be an integer, got a string"):
        clock.run(shopline.count_orders())


@pytest.mark.parametrize(
    ("grant", "message"),
    [
        ({"data": {}}, "field 'data.authenticationResult' is missing"),
        (
            {
                "data": {
                    "authenticationResult": {"accessToken": 5, "expiry": "2030-01-01T00:00:00Z"}
                }
            },
            "field 'data.authenticationResult.accessToken' should be a string, got an integer",
        ),
        (
            {"data": {"authenticationResult": {"accessToken": "t", "expiry": "tomorrow"}}},
            "'data.authenticationResult.expiry' is not an ISO-8601 time",
        ),
    ],
)
def test_stokly_malformed_grant(
    transport: StrictTransport, clock: FakeClock, grant: dict[str, object], message: str
) -> None:
    client = make_stokly(transport, clock)
    transport.expect("POST", "/v1/grant", body=grant)
    with pytest.raises(ResponseFormatError, match=message) as info:
        clock.run(client.get_item("i1"))
    assert str(info.value).startswith("Stokly POST /v1/grant: ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": []}, "field 'metadata' is missing"),
        ({"metadata": {}, "data": []}, "field 'metadata.count' is missing"),
        (
            {"metadata": {"count": True}, "data": []},
            "'metadata.count' should be an integer, got a boolean",
        ),
        ({"metadata": {"count": 1}, "data": {"itemId": "x"}}, "'data' should be a JSON array"),
        (
            {"metadata": {"count": 1}, "data": [{"itemId": "x"}]},
            r"field data\[0\]\.sku: Field required",
        ),
    ],
)
def test_stokly_malformed_envelopes(
    transport: StrictTransport, clock: FakeClock, body: dict[str, object], message: str
) -> None:
    client = make_stokly(transport, clock)
    transport.expect(
        "POST",
        "/v1/grant",
        body={
            "data": {"authenticationResult": {"accessToken": "t", "expiry": "2099-01-01T00:00:00Z"}}
        },
    )
    transport.expect("GET", "/v0/items", body=body)
    with pytest.raises(ResponseFormatError, match=message) as info:
        clock.run(collect(client.iter_items()))
    assert str(info.value).startswith("Stokly GET /v0/items: ")
