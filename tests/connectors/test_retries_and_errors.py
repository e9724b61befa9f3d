"""The request core through ShoplineClient: transient retries, budgets, typed errors."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import (
    ApiError,
    AuthError,
    NotFoundError,
    RateLimitedError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    ShoplineClient,
    TransportError,
    ValidationError,
    is_transient,
)
from stokline.connectors.errors import error_class_for_status

from .conftest import API, SHOPLINE_BASE, SHOPLINE_TOKEN
from .fakes import FakeClock, StrictTransport

LOCATIONS = f"{API}/locations/list.json"
SET_LEVEL = f"{API}/inventory_levels/set.json"
ADJUST = f"{API}/inventory_levels/adjust.json"
CUSTOMERS = f"{API}/customers.json"
OK_LEVEL = {"inventory_level": {"inventory_item_id": "1", "location_id": "2", "available": 5}}


def test_429_honours_retry_after_then_succeeds(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        LOCATIONS,
        status=429,
        body={"errors": "Too many request"},
        headers={"Retry-After": "7"},
    )
    transport.expect("GET", LOCATIONS, body={"locations": [{"id": "6001", "is_default": "true"}]})
    locations = clock.run(shopline.list_locations())
    assert locations[0].default is True
    assert 7.0 in clock.sleeps
    assert clock.elapsed >= 7.0


def test_429_pauses_the_shared_pacer_for_every_caller(clock: FakeClock) -> None:
    sent: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, clock.now))
        if len(sent) == 1:
            return httpx.Response(
                429, json={"errors": "Too many request"}, headers={"Retry-After": "5"}
            )
        return httpx.Response(200, json={"locations": [], "webhooks": []})

    client = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(handler),
        clock=clock,
    )

    async def both() -> None:
        await asyncio.gather(client.list_locations(), client.list_webhooks())

    clock.run(both())
    start = sent[0][1]
    # The second caller never saw the 429 itself, yet waits out the Retry-After as well.
    assert sorted(path.rsplit("/", 1)[-1] for path, _ in sent) == [
        "list.json",
        "list.json",
        "webhooks.json",
    ]
    assert all(when >= start + 5 for _, when in sent[1:])


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_exponential_backoff(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock, status: int
) -> None:
    transport.expect("GET", LOCATIONS, status=status, body={"errors": "boom"}, times=2)
    transport.expect("GET", LOCATIONS, body={"locations": []})
    clock.run(shopline.list_locations())
    assert [s for s in clock.sleeps if s > 0] == [0.5, 1.0]


def test_timeouts_and_connection_errors_are_retried_for_reads(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", LOCATIONS, raises=httpx.ReadTimeout("read timed out"))
    transport.expect("GET", LOCATIONS, raises=httpx.ConnectError("connection refused"))
    transport.expect("GET", LOCATIONS, raises=httpx.RemoteProtocolError("peer closed"))
    transport.expect("GET", LOCATIONS, body={"locations": []})
    assert clock.run(shopline.list_locations()) == []


def test_exhausted_budget_gives_typed_error_with_status_method_path_trace_id(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        LOCATIONS,
        status=503,
        body={"code": "SYSTEM_BUSY", "message": "try later", "errors": ["busy"]},
        headers={"traceId": "trace-abc-123"},
        times=4,
    )
    with pytest.raises(ServerError) as info:
        clock.run(shopline.list_locations())
    error = info.value
    assert (error.status, error.method, error.path) == (503, "GET", LOCATIONS)
    assert error.trace_id == "trace-abc-123"
    assert error.attempts == 4
    assert error.api_message == "[SYSTEM_BUSY] try later; busy"
    assert "trace-abc-123" in str(error) and LOCATIONS in str(error)
    assert is_transient(error)


def test_exhausted_timeouts_give_transport_error(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", LOCATIONS, raises=httpx.ReadTimeout("read timed out"), times=4)
    with pytest.raises(TransportError, match="ReadTimeout") as info:
        clock.run(shopline.list_locations())
    assert (info.value.method, info.value.path, info.value.attempts) == ("GET", LOCATIONS, 4)
    assert is_transient(info.value)


def test_retry_after_beyond_the_time_budget_fails_at_once(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=transport,
        clock=clock,
        retry=RetryPolicy(max_attempts=10, max_elapsed=30.0),
    )
    transport.expect(
        "GET",
        LOCATIONS,
        status=429,
        body={"errors": "Too many request"},
        headers={"Retry-After": "120"},
    )
    with pytest.raises(RateLimitedError) as info:
        clock.run(client.list_locations())
    assert info.value.retry_after == 120.0
    assert info.value.attempts == 1
    assert clock.elapsed < 1


def test_http_date_retry_after_is_understood(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect(
        "GET",
        LOCATIONS,
        status=429,
        body={"errors": "Too many request"},
        headers={"Retry-After": formatdate(clock.time() + 12, usegmt=True)},
    )
    transport.expect("GET", LOCATIONS, body={"locations": []})
    clock.run(shopline.list_locations())
    assert any(11 <= s <= 12 for s in clock.sleeps)


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (400, {"errors": "bad query"}, ValidationError, "bad query"),
        (
            401,
            {"errors": "Invalid API key or access token"},
            AuthError,
            "Invalid API key or access token",
        ),
        (403, {"errors": "scope missing"}, AuthError, "scope missing"),
        (404, {"errors": "Not Found"}, NotFoundError, "Not Found"),
        (
            422,
            {"errors": {"available": ["must be an integer"], "location_id": ["unknown"]}},
            ValidationError,
            "available: must be an integer; location_id: unknown",
        ),
        (402, {"errors": "Unavailable Shop"}, ApiError, "Unavailable Shop"),
    ],
)
def test_4xx_raise_typed_errors_immediately(
    shopline: ShoplineClient,
    transport: StrictTransport,
    clock: FakeClock,
    status: int,
    body: dict[str, object],
    error_class: type[ApiError],
    message: str,
) -> None:
    transport.expect("POST", SET_LEVEL, status=status, body=body, headers={"traceId": "t-9"})
    with pytest.raises(error_class) as info:
        clock.run(shopline.set_inventory_level("1", "2", 5))
    assert type(info.value) is error_class
    assert info.value.api_message == message
    assert (info.value.status, info.value.method, info.value.trace_id) == (status, "POST", "t-9")
    assert not is_transient(info.value)
    assert clock.sleeps == []


def test_error_body_that_is_not_json_still_reports_status(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("GET", LOCATIONS, status=404, text="<html><body>Not here</body></html>")
    with pytest.raises(NotFoundError, match="Not here"):
        clock.run(shopline.list_locations())


def test_absolute_inventory_set_is_retried_after_a_timeout(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("POST", SET_LEVEL, raises=httpx.ReadTimeout("slow"))
    transport.expect("POST", SET_LEVEL, status=502, body={"errors": "bad gateway"})
    transport.expect("POST", SET_LEVEL, body=OK_LEVEL)
    assert clock.run(shopline.set_inventory_level("1", "2", 5)).available == 5


def test_non_idempotent_write_is_not_resent_after_a_timeout(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("POST", ADJUST, raises=httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError, match="may have been applied") as info:
        clock.run(shopline.adjust_inventory_level("1", "2", -2))
    assert info.value.attempts == 1


def test_non_idempotent_write_is_not_resent_after_a_5xx(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("POST", CUSTOMERS, status=500, body={"errors": "oops"})
    with pytest.raises(ServerError):
        clock.run(shopline.create_customer({"email": "a@example.com"}))


def test_non_idempotent_write_is_resent_when_it_never_left(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("POST", CUSTOMERS, raises=httpx.ConnectError("refused"))
    transport.expect("POST", CUSTOMERS, status=429, body={"errors": "Too many request"})
    transport.expect("POST", CUSTOMERS, body={"customer": {"id": "c1", "email": "a@example.com"}})
    assert clock.run(shopline.create_customer({"email": "a@example.com"})).id == "c1"


def test_success_is_exactly_200(
    shopline: ShoplineClient, transport: StrictTransport, clock: FakeClock
) -> None:
    transport.expect("POST", CUSTOMERS, status=201, body={"customer": {"id": "c1"}})
    with pytest.raises(ResponseFormatError, match="unexpected success status 201"):
        clock.run(shopline.create_customer({"email": "a@example.com"}))


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


def test_backoff_grows_and_is_capped_with_bounded_jitter() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=0.5)
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.backoff(2, lambda: 1.0) == 3.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ValidationError),
        (401, AuthError),
        (404, NotFoundError),
        (409, ApiError),
        (422, ValidationError),
        (429, RateLimitedError),
        (500, ServerError),
        (599, ServerError),
    ],
)
def test_error_class_for_status(status: int, expected: type[ApiError]) -> None:
    assert error_class_for_status(status) is expected
