"""Open both API clients for a mapping, with a count of the requests they send.

Secrets are resolved here, when a sync runs (never when a mapping is loaded), and handed to the
clients as ``SecretStr``. Each client gets a `CountingPacer`: every HTTP request a client sends —
retries and token grants included — first takes a slot from its pacer, so the pacer is where a
run's API calls are counted without reaching into the clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from stokline.config import Mapping
from stokline.connectors import (
    Clock,
    LeakyBucketPacer,
    RateLimit,
    ShoplineClient,
    StoklyClient,
    SystemClock,
)
from stokline.connectors.shopline.client import SHOPLINE_RATE_LIMIT
from stokline.connectors.stokly import STOKLY_RATE_LIMIT

__all__ = ["LIFTED", "CountingPacer", "api_calls", "open_clients"]

LIFTED = RateLimit(per_second=10_000.0, burst=10_000)
"""A pace no API imposes: for sandboxes whose limits are switched off (benchmarks, tests)."""


class CountingPacer(LeakyBucketPacer):
    """A `LeakyBucketPacer` that counts the send slots it grants: one per HTTP request."""

    def __init__(self, limit: RateLimit, clock: Clock | None = None) -> None:
        super().__init__(limit, clock or SystemClock())
        self.requests = 0

    async def acquire(self, not_after: float | None = None) -> bool:
        granted = await super().acquire(not_after)
        self.requests += granted  # a slot refused at a deadline sends nothing
        return granted


def api_calls(*clients: ShoplineClient | StoklyClient) -> int:
    """Requests sent so far by ``clients`` whose pacers count (others add nothing)."""
    return sum(getattr(client.pacer, "requests", 0) for client in clients)


@asynccontextmanager
async def open_clients(
    mapping: Mapping,
    *,
    lift_limits: bool = False,
    shopline_transport: httpx.AsyncBaseTransport | None = None,
    stokly_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[tuple[ShoplineClient, StoklyClient]]:
    """Resolve the mapping's secrets (SecretRef.resolve) and open both clients for its connections.

    ``lift_limits`` drops the client-side pacing (only for sandboxes whose limits are off, e.g. a
    benchmark); the transports are for tests that serve the sandboxes in-process.
    """
    shop = mapping.connections.shopline
    stok = mapping.connections.stokly
    shopline = ShoplineClient(
        shop.url,
        shop.access_token.resolve(),
        api_version=shop.api_version,
        pacer=CountingPacer(LIFTED if lift_limits else SHOPLINE_RATE_LIMIT),
        max_concurrency=16 if lift_limits else 8,
        transport=shopline_transport,
    )
    try:
        stokly = StoklyClient(
            stok.base_url,
            account_key=stok.account_key,
            client_id=stok.client_id.resolve().get_secret_value(),
            client_secret=stok.client_secret.resolve(),
            pacer=CountingPacer(LIFTED if lift_limits else STOKLY_RATE_LIMIT),
            max_concurrency=16 if lift_limits else 4,
            transport=stokly_transport,
        )
    except BaseException:
        await shopline.aclose()
        raise
    try:
        yield shopline, stokly
    finally:
        await shopline.aclose()
        await stokly.aclose()
