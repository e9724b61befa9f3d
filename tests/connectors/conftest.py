"""Fixtures of the connector tests: virtual clock, strict transport, ready-made clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from stokline.connectors import RetryPolicy, ShoplineClient, StoklyClient

from .fakes import FakeClock, StrictTransport

SHOPLINE_TOKEN = "shpat_live_token_9f8e7d6c5b4a"
STOKLY_SECRET = "stokly-client-secret-0a1b2c3d"
STOKLY_CLIENT_ID = "client-123"
STOKLY_ACCOUNT = "acme"
STOKLY_BASE = "https://api.stok.ly"
SHOPLINE_BASE = "https://demo.myshopline.com"
API = "/admin/openapi/v20251201"

FAST_RETRY = RetryPolicy(max_attempts=4, max_elapsed=60.0, backoff_base=0.5, jitter=0.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transport() -> Iterator[StrictTransport]:
    fake = StrictTransport()
    yield fake
    fake.assert_done()


@pytest.fixture
def shopline(transport: StrictTransport, clock: FakeClock) -> ShoplineClient:
    return ShoplineClient(
        SHOPLINE_BASE,
        SecretStr(SHOPLINE_TOKEN),
        transport=transport,
        clock=clock,
        retry=FAST_RETRY,
    )


def make_stokly(transport: StrictTransport, clock: FakeClock, **kwargs: object) -> StoklyClient:
    """A Stokly client on the strict transport."""
    options: dict[str, object] = {"retry": FAST_RETRY, **kwargs}
    return StoklyClient(
        STOKLY_BASE,
        account_key=STOKLY_ACCOUNT,
        client_id=STOKLY_CLIENT_ID,
        client_secret=SecretStr(STOKLY_SECRET),
        transport=transport,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )
