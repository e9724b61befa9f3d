"""The leaky-bucket pacer: a burst of writes against a fake SHOPLINE bucket sees no 429."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import (
    LeakyBucketPacer,
    RateLimit,
    RateLimitedError,
    RetryPolicy,
    ShoplineClient,
)
from stokline.connectors.shopline import SHOPLINE_RATE_LIMIT

from .conftest import SHOPLINE_BASE, SHOPLINE_TOKEN
from .fakes import FakeClock


class FakeBucket:
    """SHOPLINE's documented limit as a server: leaky bucket, 4/s, capacity 40, else 429."""

    def __init__(self, clock: FakeClock, per_second: float = 4.0, capacity: int = 40) -> None:
        self.clock = clock
        self.per_second = per_second
        self.capacity = capacity
        self.level = 0.0
        self.last = clock.now
        self.ok = 0
        self.rejected = 0
        self.peak = 0.0

    def handle(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.now
        self.level = max(0.0, self.level - (now - self.last) * self.per_second)
        self.last = now
        if self.level + 1 > self.capacity + 1e-9:
            self.rejected += 1
            return httpx.Response(
                429, json={"errors": "Too many request"}, headers={"Retry-After": "1"}
            )
        self.level += 1
        self.peak = max(self.peak, self.level)
        self.ok += 1
        body = json.loads(request.content)
        return httpx.Response(200, json={"inventory_level": {**body, "updated_at": None}})


def test_burst_of_2000_writes_sees_zero_429(clock: FakeClock) -> None:
    bucket = FakeBucket(clock)
    client = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(bucket.handle),
        clock=clock,
    )

    async def push_all() -> list[int]:
        levels = await asyncio.gather(
            *(client.set_inventory_level(str(n), "6001", n % 50) for n in range(2000))
        )
        return [level.available or 0 for level in levels]

    started = time.perf_counter()
    results = clock.run(push_all())
    wall = time.perf_counter() - started

    assert bucket.rejected == 0
    assert bucket.ok == 2000
    assert results == [n % 50 for n in range(2000)]
    # The bucket is used, not wasted: the first 36 go at once, the rest at 4/s.
    assert (2000 - 36) / 4 <= clock.elapsed <= (2000 - 36) / 4 + 1
    assert bucket.peak <= 36
    assert wall < 5


def test_the_fake_bucket_rejects_an_unpaced_burst(clock: FakeClock) -> None:
    # Proof that the test above can fail: without a matching pacer the bucket answers 429.
    bucket = FakeBucket(clock)
    client = ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=httpx.MockTransport(bucket.handle),
        clock=clock,
        rate_limit=RateLimit(per_second=1000.0, burst=1000),
        retry=RetryPolicy(max_attempts=1),
    )

    async def push_all() -> list[object]:
        calls = (client.set_inventory_level(str(n), "6001", 1) for n in range(200))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = clock.run(push_all())
    assert bucket.rejected > 0
    assert sum(isinstance(r, RateLimitedError) for r in results) == bucket.rejected


def test_pacer_spaces_calls_after_the_burst(clock: FakeClock) -> None:
    pacer = LeakyBucketPacer(RateLimit(per_second=2.0, burst=3), clock)
    sent: list[float] = []

    async def take(n: int) -> None:
        for _ in range(n):
            await pacer.acquire()
            sent.append(clock.elapsed)

    clock.run(take(6))
    assert sent == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


def test_pacer_refills_while_idle(clock: FakeClock) -> None:
    pacer = LeakyBucketPacer(RateLimit(per_second=1.0, burst=2), clock)

    async def scenario() -> list[float]:
        times = []
        for _ in range(3):
            await pacer.acquire()
            times.append(clock.elapsed)
        await clock.sleep(10)
        for _ in range(3):
            await pacer.acquire()
            times.append(clock.elapsed)
        return times

    assert clock.run(scenario()) == [0.0, 0.0, 1.0, 11.0, 11.0, 12.0]


def test_pause_holds_every_caller(clock: FakeClock) -> None:
    pacer = LeakyBucketPacer(RateLimit(per_second=10.0, burst=10), clock)
    pacer.pause_for(30)

    async def one() -> float:
        await pacer.acquire()
        return clock.elapsed

    assert clock.run(one()) == 30.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_second": 0, "burst": 1}, "per_second"),
        ({"per_second": 1, "burst": 0}, "burst"),
        ({"per_second": 1, "burst": 4, "headroom": 4}, "headroom"),
    ],
)
def test_rate_limit_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_clients_sharing_a_pacer_keep_the_aggregate_rate(clock: FakeClock) -> None:
    bucket = FakeBucket(clock)
    pacer = LeakyBucketPacer(SHOPLINE_RATE_LIMIT, clock)
    clients = [
        ShoplineClient(
            SHOPLINE_BASE,
            SecretStr(SHOPLINE_TOKEN),
            transport=httpx.MockTransport(bucket.handle),
            clock=clock,
            pacer=pacer,
        )
        for _ in range(3)
    ]

    async def push_all() -> None:
        await asyncio.gather(
            *(
                client.set_inventory_level(str(n), "6001", 1)
                for n in range(300)
                for client in clients
            )
        )

    clock.run(push_all())
    assert (bucket.ok, bucket.rejected) == (900, 0)


def test_a_rolling_limit_spends_a_whole_window_at_once_then_keeps_to_it(clock: FakeClock) -> None:
    # Stokly's 120 a minute: the 90 requests of a full stock read go at once, and no 60-second
    # window ever holds more than 120 (a leaky bucket with that burst would allow 240).
    pacer = LeakyBucketPacer(RateLimit(per_second=2.0, burst=120, rolling=True), clock)
    sent: list[float] = []

    async def take(n: int) -> None:
        for _ in range(n):
            await pacer.acquire()
            sent.append(clock.elapsed)

    clock.run(take(300))
    assert sent[:120] == [0.0] * 120
    assert sent[120] == 60.0
    assert max(sum(1 for t in sent if start <= t < start + 60) for start in sent) == 120
    bucket = LeakyBucketPacer(RateLimit(per_second=2.0, burst=120), clock)
    before = clock.elapsed
    bursty: list[float] = []

    async def take_bucket(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()
            bursty.append(clock.elapsed - before)

    clock.run(take_bucket(300))
    assert sum(1 for t in bursty if t < 60) > 200  # why the rolling window exists


def test_a_rolling_limit_keeps_its_headroom_and_obeys_a_pause(clock: FakeClock) -> None:
    pacer = LeakyBucketPacer(RateLimit(per_second=2.0, burst=120, headroom=3, rolling=True), clock)
    sent: list[float] = []

    async def take(n: int) -> None:
        for _ in range(n):
            await pacer.acquire()
            sent.append(clock.elapsed)

    clock.run(take(118))
    assert sent.count(0.0) == 117 and sent[117] == 60.0
    pacer.pause_for(90)
    clock.run(take(1))
    assert sent[-1] == 150.0
