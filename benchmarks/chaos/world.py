"""The world of the reduced campaign: both sandboxes, the receiver and a state store, in this
process, on loopback.

Everything is real but the clock: the sandboxes are served by `ServerThread` and get the
``hostile`` fault profile with its time constants shortened (`COMPRESSED_FAULTS`), the SHOPLINE
sandbox delivers signed webhooks to the real receiver app — up to three copies of each, out of
order, retried on SHOPLINE's schedule scaled down — and the receiver writes them into a real
state store (SQLite). The clients are built as `stokline.sync.clients.open_clients` builds them, with a
short timeout and a backoff in milliseconds (`campaign_clients`).

`CrashingTransport` kills a pass in the middle of a write: the request reaches the sandbox and is
carried out, then the pass's task is cancelled before it reads the answer — the moment a SIGKILL
hurts most, when the other system has the record and the state store does not know.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from benchmarks.chaos.collisions import OVERRIDES, add_collisions
from stokline.config import Mapping, load_mapping
from stokline.connectors import RetryPolicy, ShoplineClient, StoklyClient
from stokline.sandbox.common import ServerThread
from stokline.sandbox.shopline import create_app as create_shopline
from stokline.sandbox.stokly import create_app as create_stokly
from stokline.store import Store
from stokline.store.tables import audit
from stokline.sync.clients import LIFTED, CountingPacer
from stokline.webhooks import ClientEndpoint
from stokline.webhooks import create_app as create_receiver

__all__ = ["CrashingTransport", "World", "campaign_clients", "point_mapping", "temporary_world"]

ROOT = Path(__file__).resolve().parents[2]
DEMO_MAPPING = ROOT / "mappings" / "demo.yaml"
CLIENT = "demo-outdoor"
ACCOUNT_KEY = "demo-outdoor"
WEBHOOK_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled")

CLIENT_TIMEOUT_S = 1.0
"""The clients' timeout in the reduced campaign; a faulted request sleeps longer than this."""
COMPRESSED_FAULTS = {
    "retry_after_s": 0.05,
    "latency_ms": [0, 20],
    "timeout_s": 2.0,
    "rate_limit_burst": 1,
}
"""The hostile profile's time constants, shortened, and its 429s one at a time: 5 % of requests,
as the issue states them, where the profile's bursts of four make about 17 % (each costs the
clients a second, SHOPLINE's shortest ``Retry-After``). Its other rates are left as they are."""
FAST_RETRY = RetryPolicy(max_attempts=5, max_elapsed=20.0, backoff_base=0.02, backoff_max=0.2)
WEBHOOK_RETRY_SCALE = 0.01
"""SHOPLINE retries a failed delivery after 5 s, 10 s, 30 s …; here after 50 ms, 100 ms, 300 ms …"""

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


DRIFT_EVERY = "1s"
"""How often the reduced campaign's stock passes read every SHOPLINE level for drift (the demo's
is an hour): a pass a second after the last reads them all. The storefront changes SHOPLINE's
levels itself — checkouts of orders not paid or not captured yet, refunds and cancellations that
restock, edits — and only the drift read sets those right; in the campaign's compressed time it
must come round within each settle round."""


def point_mapping(
    source: Path,
    target: Path,
    shopline_url: str,
    stokly_url: str,
    *,
    drift_every: str | None = None,
    overrides: Sequence[tuple[str, str]] = (),
) -> Path:
    """Copy a mapping with its two sandbox base URLs replaced (everything else unchanged but,
    when given, the stock sync's ``drift_every`` and SKU ``overrides`` added after its own)."""
    text = source.read_text(encoding="utf-8")
    if overrides:
        lines = "".join(
            f"    - {{shopline_sku: {shop}, stokly_sku: {stok}}}\n" for shop, stok in overrides
        )
        text, found = re.subn(
            r"(?m)^(  overrides:\n(?:    - .*\n)*)", lambda m: m.group(1) + lines, text
        )
        if found != 1:
            raise ValueError(f"{source}: expected a skus.overrides list to add overrides to")
    if drift_every is not None:
        text, found = re.subn(
            r"(?m)^(syncs:\n  stock:\n)", rf"\g<1>    drift_every: {drift_every}\n", text
        )
        if found != 1:
            raise ValueError(f"{source}: expected a syncs.stock section to set drift_every in")
    text, shop = re.subn(
        r"(?m)^(\s+base_url:\s*)http://127\.0\.0\.1:8801\s*$", rf"\g<1>{shopline_url}", text
    )
    text, stok = re.subn(
        r"(?m)^(\s+base_url:\s*)http://127\.0\.0\.1:8802\s*$", rf"\g<1>{stokly_url}", text
    )
    if (shop, stok) != (1, 1):
        raise ValueError(f"{source}: expected one SHOPLINE and one Stokly base_url on 8801/8802")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


# ---------------------------------------------------------------------------------------------
# Crashing a pass in the middle of a write
# ---------------------------------------------------------------------------------------------


class CrashingTransport(httpx.AsyncBaseTransport):
    """A client's transport that, when armed, kills its pass right after a write went through.

    ``arm(task, path)``: the next write request whose path contains ``path`` is sent and carried
    out by the sandbox; then ``task`` (the whole pass) is cancelled before the answer is read.
    Unarmed, it only forwards.
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.victim: asyncio.Task[Any] | None = None
        self.path = ""
        self.fired: list[str] = []

    def arm(self, victim: asyncio.Task[Any], path: str) -> None:
        self.victim, self.path = victim, path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if (
            self.victim is not None
            and request.method in WRITES
            and self.path in request.url.path
            and response.status_code < 300
        ):
            victim, self.victim = self.victim, None
            self.fired.append(f"{request.method} {request.url.path}")
            await response.aclose()
            victim.cancel()
            await asyncio.sleep(0)  # the cancellation lands here, before the answer is read
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def campaign_clients(
    mapping: Mapping, crash: CrashingTransport | None = None
) -> AsyncIterator[tuple[ShoplineClient, StoklyClient]]:
    """Both clients as `open_clients` makes them (limits lifted: the sandboxes' are off), with
    the compressed timeout and backoff, and ``crash`` as the transport of both."""
    shop = mapping.connections.shopline
    stok = mapping.connections.stokly
    shopline = ShoplineClient(
        shop.url,
        shop.access_token.resolve(),
        api_version=shop.api_version,
        pacer=CountingPacer(LIFTED),
        retry=FAST_RETRY,
        timeout=CLIENT_TIMEOUT_S,
        max_concurrency=16,
        transport=crash,
    )
    stokly = StoklyClient(
        stok.base_url,
        account_key=stok.account_key,
        client_id=stok.client_id.resolve().get_secret_value(),
        client_secret=SecretStr(stok.client_secret.resolve().get_secret_value()),
        pacer=CountingPacer(LIFTED),
        retry=FAST_RETRY,
        timeout=CLIENT_TIMEOUT_S,
        max_concurrency=16,
        transport=crash,
    )
    try:
        yield shopline, stokly
    finally:
        await shopline.aclose()
        await stokly.aclose()


# ---------------------------------------------------------------------------------------------
# The world: sandboxes, receiver, store, mapping
# ---------------------------------------------------------------------------------------------


class World:
    """Both sandboxes and the receiver on loopback, a state store, and the demo mapping pointed
    at them. Credentials come from the environment (the demo's, `.env.demo`).

    Beside the demo seed, SHOPLINE sells some Stokly items on several variants (the mapping
    gains the override of one): `benchmarks.chaos.collisions`."""

    def __init__(self, workdir: Path, *, skus: int, credentials: dict[str, str]) -> None:
        self.workdir = workdir
        self.skus = skus
        self.shopline_app: Any = create_shopline(
            access_token=credentials["SHOPLINE_ACCESS_TOKEN"],
            app_secret=credentials["SHOPLINE_APP_SECRET"],
            rate_per_s=None,
            skus=skus,
            webhook_retry_scale=WEBHOOK_RETRY_SCALE,
        )
        self.stokly_app: Any = create_stokly(
            account_key=ACCOUNT_KEY,
            client_id=credentials["STOKLY_CLIENT_ID"],
            client_secret=credentials["STOKLY_CLIENT_SECRET"],
            rate_per_minute=None,
            seed_skus=skus,
        )
        self.store = Store(f"sqlite:///{workdir / 'state.db'}")
        self.receiver_app = create_receiver(
            {CLIENT: ClientEndpoint(CLIENT, credentials["SHOPLINE_APP_SECRET"])}, self.store
        )
        self.shopline = ServerThread(self.shopline_app).start()
        self.stokly = ServerThread(self.stokly_app).start()
        self.receiver: ServerThread | None = ServerThread(self.receiver_app).start()
        self.receiver_port = self.receiver.port
        self.mapping_path = point_mapping(
            DEMO_MAPPING,
            workdir / "mappings" / "demo.yaml",
            self.shopline.url,
            self.stokly.url,
            drift_every=DRIFT_EVERY,
            overrides=OVERRIDES,
        )
        self.mapping = load_mapping(self.mapping_path)
        shop = self.mapping.connections.shopline
        self.collided = add_collisions(
            self.shopline.url,
            shop.access_token.resolve().get_secret_value(),
            shop.api_version,
            skus,
        )
        self.subscribe()

    # -- the sandboxes' documents (what the invariants read) ------------------------------------

    @property
    def shopline_docs(self) -> Any:
        return self.shopline_app.state.shopline.store

    @property
    def stokly_docs(self) -> Any:
        return self.stokly_app.state.sandbox.store

    # -- control ---------------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Subscribe the receiver to the order topics, as `stokline up` does."""
        conn = self.mapping.connections.shopline
        token = conn.access_token.resolve().get_secret_value()
        url = f"{self.shopline.url}/admin/openapi/{conn.api_version}/webhooks.json"
        address = f"http://127.0.0.1:{self.receiver_port}/webhooks/{CLIENT}"
        for topic in WEBHOOK_TOPICS:
            response = httpx.post(
                url,
                headers={"Authorization": f"Bearer {token}"},
                json={"webhook": {"address": address, "topic": topic}},
                timeout=10,
            )
            response.raise_for_status()

    def faults(self, profile: str, **changes: Any) -> None:
        """Switch both sandboxes to ``profile`` with ``changes`` (their control APIs differ)."""
        httpx.put(
            f"{self.shopline.url}/_sandbox/faults", json={"profile": profile, **changes}, timeout=10
        ).raise_for_status()
        httpx.put(
            f"{self.stokly.url}/_sandbox/faults",
            json={"profile": profile, "changes": changes},
            timeout=10,
        ).raise_for_status()

    def bounce_receiver(self, down_s: float) -> None:
        """Stop the receiver, leave it down for ``down_s`` seconds, start it again."""
        self.stop_receiver()
        time.sleep(down_s)
        self.start_receiver()

    def stop_receiver(self) -> None:
        if self.receiver is not None:
            self.receiver.stop(timeout=5)
            self.receiver = None

    def start_receiver(self) -> None:
        if self.receiver is None:
            self.receiver = ServerThread(self.receiver_app, port=self.receiver_port).start()

    def deliveries_settled(self) -> bool:
        """True when the SHOPLINE sandbox has no delivery waiting or in flight."""
        dispatcher = self.shopline_app.state.shopline.webhooks
        waiting = [
            d for d in self.shopline_docs.list("delivery") if d["state"] in ("pending", "retrying")
        ]
        return not waiting and dispatcher.idle()

    def writes(self) -> int:
        """Writes to either system so far (the audit log has one row per write)."""
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit)).scalar_one())

    def close(self) -> None:
        self.stop_receiver()
        for server in (self.shopline, self.stokly):
            server.stop(timeout=5)
        self.shopline_app.state.shopline.close()
        self.stokly_app.state.sandbox.close()
        self.store.close()


@contextlib.contextmanager
def temporary_world(skus: int, credentials: dict[str, str]) -> Iterator[World]:
    """A `World` in a temporary directory, closed and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="stokline-chaos-") as tmp:
        world = World(Path(tmp), skus=skus, credentials=credentials)
        try:
            yield world
        finally:
            world.close()
