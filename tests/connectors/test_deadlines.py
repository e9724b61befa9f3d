"""Requests under a deadline: nothing is started, retried or waited for past it.

Hangs and answers are played at the transport seam on the virtual clock (`FakeClock`), so a
request that "hangs 30 s" costs no real time and every figure is exact.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import (
    DeadlineError,
    LeakyBucketPacer,
    RateLimit,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    ShoplineClient,
    TransportError,
    current_deadline,
    deadline,
    is_transient,
)

from .conftest import API, FAST_RETRY, SHOPLINE_BASE, SHOPLINE_TOKEN
from .fakes import FakeClock, StrictTransport

LOCATIONS = f"{API}/locations/list.json"
HANG = 30.0  # seconds a request hangs before its (client's) timeout gives up on it


def client(clock: FakeClock, handler: object, retry: RetryPolicy | None = None) -> ShoplineClient:
    return ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        clock=clock,
        retry=retry or RetryPolicy(jitter=0.0),
    )


def test_a_hanging_read_is_not_tried_again_past_the_deadline(clock: FakeClock) -> None:
    sent: list[float] = []

    async def hangs(request: httpx.Request) -> httpx.Response:
        sent.append(clock.elapsed)
        await clock.sleep(HANG)
        raise httpx.ReadTimeout("no answer", request=request)

    shopline = client(clock, hangs)

    async def under(seconds: float | None) -> None:
        if seconds is None:
            await shopline.list_locations()
            return
        with deadline(seconds, clock=clock, what="the test's budget"):
            await shopline.list_locations()

    # Without one, the retry policy alone lets four hanging attempts run: over two minutes.
    with pytest.raises(TransportError):
        clock.run(under(None))
    assert sent == [0.0, 30.5, 61.5, 93.5] and clock.elapsed == 123.5

    # With 45 s, the attempt started at 30.5 s is the last: the request ends within one
    # timeout of the deadline, with the error of its last attempt.
    sent.clear()
    start = clock.elapsed
    with pytest.raises(TransportError):
        clock.run(under(45.0))
    assert [round(t - start, 1) for t in sent] == [0.0, 30.5]
    assert clock.elapsed - start == 60.5 <= 45.0 + HANG


def test_a_failing_read_keeps_its_last_answer_when_a_retry_would_cross_the_deadline(
    clock: FakeClock,
) -> None:
    transport = StrictTransport()
    transport.expect("GET", LOCATIONS, status=503, body={"errors": "busy"}, times=3)
    shopline = ShoplineClient(
        SHOPLINE_BASE, SecretStr(SHOPLINE_TOKEN), transport=transport, clock=clock, retry=FAST_RETRY
    )

    async def read() -> None:
        with deadline(2.0, clock=clock):
            await shopline.list_locations()

    # Backoffs of 0.5 s and 1 s fit; the third (2 s) would end past the deadline.
    with pytest.raises(ServerError) as raised:
        clock.run(read())
    assert raised.value.attempts == 3 and clock.elapsed == 1.5
    transport.assert_done()


def test_nothing_is_sent_once_the_deadline_has_passed(clock: FakeClock) -> None:
    transport = StrictTransport()  # expects no request at all
    shopline = ShoplineClient(
        SHOPLINE_BASE, SecretStr(SHOPLINE_TOKEN), transport=transport, clock=clock
    )

    async def late() -> None:
        with deadline(270.0, clock=clock, what="the stock pass's time budget"):
            clock.advance(270.0)
            await shopline.adjust_inventory_level("1", "2", 3)

    with pytest.raises(DeadlineError) as raised:
        clock.run(late())
    error = raised.value
    assert "not sent" in str(error)
    assert "the stock pass's time budget of 270 s ran out" in str(error)
    assert error.attempts == 0 and error.budget == 270.0 and error.path.endswith("adjust.json")
    assert not is_transient(error)  # its pass ran out of time: the next pass does it
    assert SHOPLINE_TOKEN not in repr(error)
    assert transport.requests == []


def test_a_long_retry_after_is_not_waited_out_past_the_deadline(clock: FakeClock) -> None:
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.elapsed)
        return httpx.Response(429, json={"errors": "slow down"}, headers={"Retry-After": "600"})

    shopline = client(clock, handler)

    async def two_reads() -> tuple[BaseException | None, BaseException | None]:
        with deadline(60.0, clock=clock):
            first = await asyncio.gather(shopline.list_locations(), return_exceptions=True)
            # The 429 paused the pacer for 10 minutes: the next read is refused at once.
            second = await asyncio.gather(shopline.list_webhooks(), return_exceptions=True)
        return first[0], second[0]

    first, second = clock.run(two_reads())
    assert isinstance(first, RateLimitedError) and first.retry_after == 600
    assert isinstance(second, DeadlineError) and "rate-limit slot" in str(second)
    assert sent == [0.0] and clock.elapsed < 1.0


def test_a_deadline_reaches_the_tasks_started_under_it_and_the_earlier_one_holds(
    clock: FakeClock,
) -> None:
    seen: list[float | None] = []

    async def look() -> None:
        found = current_deadline()
        seen.append(None if found is None else found.budget)

    async def scenario() -> None:
        await look()
        with deadline(300.0, clock=clock):
            await asyncio.gather(look(), asyncio.ensure_future(look()))
            with deadline(600.0, clock=clock):
                await look()  # the outer one ends first: it holds
            with deadline(10.0, clock=clock):
                await look()
        await look()

    clock.run(scenario())
    assert seen == [None, 300.0, 300.0, 300.0, 10.0, None]


def test_the_pacer_refuses_a_slot_after_not_after_without_booking_it(clock: FakeClock) -> None:
    pacer = LeakyBucketPacer(RateLimit(per_second=1.0, burst=1), clock)

    async def slots() -> list[bool]:
        got = [await pacer.acquire(not_after=clock.now + 0.5)]  # free now
        got.append(await pacer.acquire(not_after=clock.now + 0.5))  # only in 1 s: refused
        got.append(await pacer.acquire(not_after=clock.now + 1.0))  # the same slot, booked
        return got

    assert clock.run(slots()) == [True, False, True]
    assert clock.elapsed == 1.0
