"""A flash sale in this process: two channels sell the same small stock while the stock sync runs.

`run_flash_sale` is the whole scenario, for one way of writing SHOPLINE's levels (``mode``):

- ``difference``: stokline's stock pass as it is (`stokline.sync.stock.sync.sync_stock`), which
  adjusts each level by its target minus the level it read just before;
- ``set``: the same pass with only its write replaced (`AbsoluteSetRun`): every level is set to
  its target, as the pass did before it pushed by difference. The baseline lives here, never in
  the production code.

**The world.** Both sandboxes are served in this process (ASGI transport, no sockets), seeded
with the demo catalogue at 60 SKUs; the mapping is the demo client's with one SHOPLINE location,
7001, fed by Leeds DC with no buffer. ``skus`` synced SKUs (seeded choice) get a small stock at
Leeds DC (``stock`` units each, seeded), everything else is left as seeded. Before the sale the
orders sync imports whatever the seed left paid, each SKU's onHand is adjusted so that Stokly's
sellable figure (onHand − quarantined − allocated) is exactly its stock, and one full pass brings
SHOPLINE's level to it (checked).

**The channels.** ``buyers`` storefront buyers check out one unit of a SKU each (paid at
checkout, through the SHOPLINE sandbox's control API, which takes the unit off SHOPLINE's level
and refuses a ``deny`` variant at 0, as SHOPLINE's checkout does). A buyer checks out again as
soon as the last checkout was answered (a ``think_s`` pause at most): SHOPLINE's checkout is the
only limit. A SKU refused is tried again ``retry_s`` later (buyers refresh a sold-out page), so a
unit SHOPLINE shows by mistake is found and sold. In-store, one till sells a unit every
``till_s`` seconds as a Stokly stock movement (``/_sandbox/adjust`` −1 at Leeds DC, which puts a
``stock.movement`` on Stokly's change feed, as a warehouse's own sale does). The till only sells a
unit nobody has bought on either channel (nor is being bought at SHOPLINE's checkout at that
moment): in-store never oversells by construction, so every oversold unit is one SHOPLINE sold
that Stokly could not allocate.

**The sync.** As the deployments run it, without Prefect: the orders sync every ``orders_s``
(the inbox watcher imports within seconds), the stock event path polling Stokly's change feed
every ``poll_s`` (`stokline.sync.stock.events.StockMovements`, as flows/stock_events.py does,
2 s there) and pushing the SKUs that moved, and full passes every ``schedule_s`` (5 min in the
demo mapping; compressed here so that full passes run during a sale that lasts seconds). The
two stock paths take turns (one `asyncio.Lock`), so that the writes the benchmark lays at a pass's
door are that pass's own; the sync itself does not need it (passes keep apart SKU by SKU, see
`stokline.sync.stock.claims`), and how long a receipt waits during a full pass of 20,000 SKUs is
measured by ``benchmarks/bench_stock.py``. The orders sync
and the stock sync have clients of their own (separate flows), on the same sandboxes.

**The clock.** Every SHOPLINE request — checkouts and the sync's reads and writes — passes one
at a time through `SerialShopline`, so SHOPLINE's requests have one order, and "SHOPLINE knew"
is exact: a level write that ended before a checkout started was applied before it. Passes are
serialised by the lock, so the level writes between a pass's start and end are that pass's.

**The sale ends** when every unit is sold (by the ledger of both channels). Buyers keep trying
until a full pass that started after that has finished (whatever that pass still showed by
mistake is sold meanwhile), then try every SKU until SHOPLINE refuses each (the last phantom units
are sold). The orders sync then imports every order, and Stokly's own figures are read.

**Figures** (`Outcome`):

- oversold units per SKU: units sold on both channels beyond its stock — the units SHOPLINE
  sold that Stokly could not allocate. Counted from the ledger, and checked against Stokly's own
  sellable figure after every order is imported (``stokly_oversold``: −sellable where negative).
- each oversold unit is attributed. A SHOPLINE sale is *inside the event-path latency* when
  SHOPLINE would have accepted it had it known every in-store sale that had reached it by then
  or that was older than ``window_s``, the stated event-path latency (README: a goods receipt
  reaches SHOPLINE in p95 < 15 s): it landed before a till sale's movement reached SHOPLINE.
  Every other oversold unit is *caused by the sync* — a level SHOPLINE showed although the pass
  knew better, such as a checkout overwritten by an absolute set.
- latency of each in-store movement to SHOPLINE: from the movement (Stokly's answer) to the
  first pass that started after it and covers its SKU (an event batch naming it, or a full
  pass) — to its write of that SKU's level, or to its end where SHOPLINE already showed the
  target and nothing was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.sandboxes import benchmark_mapping, synced_entries
from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.sandbox.shopline.app import create_app as create_shopline
from stokline.sandbox.stokly.app import create_app as create_stokly
from stokline.sandbox.stokly.domain import allocations
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.orders.sync import stokly_location_index, sync_orders
from stokline.sync.stock.events import StockMovements
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.sync import _Run, sync_stock
from stokline.sync.stock.translate import DesiredLevel

__all__ = ["MODES", "AbsoluteSetRun", "Config", "Outcome", "run_flash_sale"]

MODES = ("set", "difference")
CATALOGUE = 60  # SKUs of the demo catalogue both sandboxes are seeded with (49 of them synced)
SHOPLINE_LOCATION = ("7001", "Online store (UK)", "Leeds DC")
STOKLY_LOCATION = "Leeds DC"
LEVEL_WRITES = ("/inventory_levels/adjust.json", "/inventory_levels/set.json")
SHOPLINE_BASE = "http://shopline.flash-sale"
STOKLY_BASE = "http://stokly.flash-sale"


@dataclass(frozen=True)
class Config:
    """The sale's size and pace (the module docstring says what each does)."""

    skus: int = 30
    stock: tuple[int, int] = (3, 10)  # units per SKU, drawn uniformly
    buyers: int = 4
    think_s: float = 0.05  # a buyer's pause between checkouts, at most (drawn uniformly)
    retry_s: float = 0.5  # a SKU refused is tried again after this long
    till_s: float = 0.4  # the till's pace: one in-store sale every this many seconds
    poll_s: float = 2.0  # the event path's read of the change feed (flows/stock_events.py)
    schedule_s: float = 5.0  # full passes (the demo's 5 minutes, compressed)
    orders_s: float = 1.0  # the orders sync
    window_s: float = 15.0  # the stated event-path latency (README: p95 < 15 s)
    seed: int = 16
    max_s: float = 240.0  # the whole sale must be over by then (else RuntimeError)
    # Stepped (deterministic) sale instead of free-running tasks: see `run_flash_sale`.
    stepped: bool = False
    till_every: int = 2  # stepped: an in-store sale every this many steps
    full_every: int = 3  # stepped: a full pass every this many steps
    inject: str | None = None  # stepped: "write" | "read", a checkout just before each level
    # write (or level read) of a pass, of that level's SKU


# ---------------------------------------------------------------------------------------------
# The baseline: the same pass, every level set to its target
# ---------------------------------------------------------------------------------------------


class AbsoluteSetRun(_Run):
    """stokline's stock pass with its write as it was before the difference push: an absolute
    ``inventory_levels/set`` of the target, whatever SHOPLINE sold since the pass read it."""

    async def _push(self, level: DesiredLevel, shown: int | None, drift: int | None) -> None:
        await super()._push(level, None, drift)


async def stock_pass(
    mode: str,
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    trigger: str,
    skus: set[str] | None,
    locations: dict[str, str],
) -> StockReport:
    """One pass, as the flows run it (drift checked), writing by ``mode``."""
    if mode == "difference":
        return await sync_stock(
            mapping,
            shopline=shopline,
            stokly=stokly,
            store=store,
            trigger=trigger,
            skus=skus,
            check_drift=True,
            locations=locations,
        )
    run = AbsoluteSetRun(
        mapping=mapping,
        shopline=shopline,
        stokly=stokly,
        store=store,
        dry=False,
        trigger=trigger,
        progress=None,
        only=skus,
        check_drift=True,
        locations=locations,
    )
    return await run.execute()


# ---------------------------------------------------------------------------------------------
# SHOPLINE, one request at a time, with its level writes recorded
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelWrite:
    """A level write SHOPLINE accepted: the level it left, and the units really left then."""

    inventory_item_id: str
    end: float
    available: int
    truth: int | None = None


class SerialShopline(httpx.AsyncBaseTransport):
    """The SHOPLINE sandbox behind one lock: its requests are handled one after another, so
    their start and end times order them; every level write SHOPLINE accepted is recorded."""

    def __init__(
        self, app: Any, clock: Callable[[], float], truth: Callable[[str], int | None]
    ) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.lock = asyncio.Lock()
        self.clock = clock
        self.truth = truth  # units really left of an inventory item's SKU, None if not sold
        self.writes: list[LevelWrite] = []
        # Called with the inventory item ids of a level write ("write") or read ("read") before
        # SHOPLINE gets it: a checkout landing inside a pass.
        self.before: Callable[[list[str]], Awaitable[None]] | None = None
        self.before_kind: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.before is not None:
            items = _level_items(request, self.before_kind)
            if items:
                await self.before(items)
        async with self.lock:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            end = self.clock()
        if request.url.path.endswith(LEVEL_WRITES) and response.status_code == 200:
            level = response.json()["inventory_level"]
            item = str(level["inventory_item_id"])
            self.writes.append(LevelWrite(item, end, int(level["available"]), self.truth(item)))
        return response


def _level_items(request: httpx.Request, kind: str | None) -> list[str]:
    """The inventory items of a level write (``kind`` "write") or level read ("read")."""
    path = request.url.path
    if kind == "write" and path.endswith(LEVEL_WRITES):
        return [str(json.loads(request.content)["inventory_item_id"])]
    if kind == "read" and request.method == "GET" and path.endswith("/inventory_levels.json"):
        ids = request.url.params.get("inventory_item_ids") or ""
        return [i for i in ids.split(",") if i]
    return []


# ---------------------------------------------------------------------------------------------
# What happened
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    """One unit SHOPLINE sold: when its checkout was sent and answered."""

    sku: str
    start: float
    end: float


@dataclass(frozen=True)
class TillSale:
    """One unit sold in-store: taken off the shelf at ``taken``, in Stokly's feed at ``end``."""

    sku: str
    taken: float
    end: float


@dataclass
class PassLog:
    kind: str  # "event" | "schedule"
    skus: frozenset[str] | None  # Stokly SKUs of an event batch; None: a full pass
    start: float
    end: float = 0.0
    writes: dict[str, float] = field(default_factory=dict)  # inventory item → first write's end
    levels: list[LevelWrite] = field(default_factory=list)  # every level write of the pass
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """One flash sale's figures (see the module docstring)."""

    mode: str
    stock: dict[str, int]
    shopline_sold: dict[str, int]
    in_store_sold: dict[str, int]
    oversold: dict[str, int]
    oversold_inside_window: int
    oversold_by_sync: int
    stokly_oversold: dict[str, int]
    latencies: list[float]
    not_reflected: int
    refused: int
    passes: dict[str, int]
    level_writes: int
    seconds: float
    sale_seconds: float
    shopline_left: dict[str, int]
    phantom_writes: int = 0
    phantom_units: int = 0
    caused: list[dict[str, Any]] = field(default_factory=list)
    phantoms: list[dict[str, Any]] = field(default_factory=list)
    pass_errors: list[str] = field(default_factory=list)

    @property
    def oversold_units(self) -> int:
        return sum(self.oversold.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "units": sum(self.stock.values()),
            "shopline_sold": sum(self.shopline_sold.values()),
            "in_store_sold": sum(self.in_store_sold.values()),
            "oversold_units": self.oversold_units,
            "oversold_inside_window": self.oversold_inside_window,
            "oversold_by_sync": self.oversold_by_sync,
            "stokly_oversold_units": sum(self.stokly_oversold.values()),
            "oversold_by_sku": {k: v for k, v in self.oversold.items() if v},
            "latencies_s": [round(x, 3) for x in self.latencies],
            "not_reflected": self.not_reflected,
            "checkouts_refused": self.refused,
            "passes": self.passes,
            "level_writes": self.level_writes,
            "seconds": round(self.seconds, 2),
            "sale_seconds": round(self.sale_seconds, 2),
            "shopline_left": {k: v for k, v in self.shopline_left.items() if v},
            "phantom_writes": self.phantom_writes,
            "phantom_units": self.phantom_units,
            "phantoms": self.phantoms[:50],
            "caused_by_sync": self.caused[:50],
            "pass_errors": self.pass_errors[:10],
        }


def attribute(
    stock: dict[str, int],
    checkouts: list[Checkout],
    till: list[TillSale],
    reflected: dict[int, float | None],
    window_s: float,
) -> tuple[dict[str, int], int, list[dict[str, Any]]]:
    """Oversold units per SKU; how many of them were inside the event-path latency; and one row
    per oversold unit the sync caused. ``reflected[i]`` is when ``till[i]`` reached SHOPLINE
    (None: never)."""
    oversold: Counter[str] = Counter()
    inside = 0
    caused: list[dict[str, Any]] = []
    sold: Counter[str] = Counter()
    for sale in sorted(checkouts, key=lambda c: c.end):
        sold[sale.sku] += 1
        taken = [(i, t) for i, t in enumerate(till) if t.sku == sale.sku and t.taken < sale.end]
        if sold[sale.sku] + len(taken) <= stock[sale.sku]:
            continue
        oversold[sale.sku] += 1
        # What SHOPLINE had been told when this checkout reached it, or should have been told
        # by then were the event path as quick as stated.
        known = sum(
            1
            for i, t in taken
            if ((at := reflected[i]) is not None and at <= sale.start)
            or t.end + window_s <= sale.start
        )
        if sold[sale.sku] + known <= stock[sale.sku]:
            inside += 1
            continue
        caused.append(
            {
                "sku": sale.sku,
                "stock": stock[sale.sku],
                "checkout_s": [round(sale.start, 3), round(sale.end, 3)],
                "shopline_sold_by_then": sold[sale.sku],
                "in_store": [
                    [round(t.taken, 3), round(t.end, 3), reflected[i] and round(reflected[i], 3)]
                    for i, t in taken
                ],
            }
        )
    return dict(oversold), inside, caused


def phantom_units(
    passes: list[PassLog], till: list[TillSale], sku_of: dict[str, str]
) -> list[dict[str, Any]]:
    """Level writes that showed more than their pass could know was left: the units left when
    SHOPLINE applied the write, plus in-store sales whose movement came after the pass started.
    One row per such write, with its excess (the phantom units)."""
    out = []
    for p in passes:
        for write in p.levels:
            sku = sku_of.get(write.inventory_item_id)
            if sku is None or write.truth is None:
                continue
            unseen = sum(1 for t in till if t.sku == sku and t.end > p.start)
            excess = write.available - max(write.truth + unseen, 0)
            if excess > 0:
                out.append(
                    {
                        "pass": p.kind,
                        "sku": sku,
                        "pass_start_s": round(p.start, 3),
                        "write_s": round(write.end, 3),
                        "shown": write.available,
                        "left": write.truth,
                        "in_store_unseen": unseen,
                        "excess": excess,
                    }
                )
    return out


def movement_latencies(
    till: list[TillSale], passes: list[PassLog], item_of: dict[str, str]
) -> dict[int, float | None]:
    """When each till sale reached SHOPLINE: the first pass started after it that covers its
    SKU — its write of the SKU's level, or its end if it wrote none (SHOPLINE showed it)."""
    out: dict[int, float | None] = {}
    for i, sale in enumerate(till):
        out[i] = None
        for p in passes:
            if p.start > sale.end and p.end and (p.skus is None or sale.sku in p.skus):
                out[i] = p.writes.get(item_of[sale.sku], p.end)
                break
    return out


# ---------------------------------------------------------------------------------------------
# The sale
# ---------------------------------------------------------------------------------------------


class _Ledger:
    """Both channels' sales, as the benchmark knows them: the truth oversold units are judged by."""

    def __init__(self, stock: dict[str, int]) -> None:
        self.stock = stock
        self.shopline: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.in_store: Counter[str] = Counter()
        self.sold_out = asyncio.Event()

    def left(self, sku: str) -> int:
        """Units nobody has bought nor is buying: what the till may sell."""
        return self.stock[sku] - self.shopline[sku] - self.in_flight[sku] - self.in_store[sku]

    def check(self) -> None:
        if all(self.stock[s] - self.shopline[s] - self.in_store[s] <= 0 for s in self.stock):
            self.sold_out.set()


class _Sale:
    def __init__(self, mode: str, config: Config, workdir: Path, credentials: dict[str, str]):
        self.mode = mode
        self.config = config
        self.workdir = workdir
        self.credentials = credentials
        self.origin = time.monotonic()
        self.rng = random.Random(config.seed)
        self.checkouts: list[Checkout] = []
        self.till: list[TillSale] = []
        self.passes: list[PassLog] = []
        self.refused = 0
        self.pass_errors: list[str] = []
        self.stock_lock = asyncio.Lock()
        self.pass_done = asyncio.Condition()
        self.stopping = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() - self.origin

    # -- set-up ---------------------------------------------------------------------------------

    def build(self) -> None:
        creds = self.credentials
        self.shopline_app = create_shopline(
            access_token=creds["SHOPLINE_ACCESS_TOKEN"],
            app_secret=creds["SHOPLINE_APP_SECRET"],
            rate_per_s=None,
            skus=CATALOGUE,
        )
        self.mapping = _mapping(self.workdir)
        self.own_channel = self.mapping.connections.stokly.channel_id
        self.stokly_app = create_stokly(
            account_key=self.mapping.connections.stokly.account_key,
            client_id=creds["STOKLY_CLIENT_ID"],
            client_secret=creds["STOKLY_CLIENT_SECRET"],
            rate_per_minute=None,
            seed_skus=CATALOGUE,
        )
        self.store = Store(f"sqlite:///{self.workdir / f'state-{self.mode}.db'}")
        self.shopline_wire = SerialShopline(self.shopline_app, self.now, self._units_left)
        self.stokly_wire = httpx.ASGITransport(app=self.stokly_app)
        entries = synced_entries(CATALOGUE)
        picked = self.rng.sample(entries, self.config.skus)
        low, high = self.config.stock
        self.stock = {e.sku: self.rng.randint(low, high) for e in picked}
        self.ledger = _Ledger(self.stock)
        self.sku_of: dict[str, str] = {}  # SHOPLINE inventory item → SKU, once known

    def _units_left(self, inventory_item_id: str) -> int | None:
        sku = self.sku_of.get(inventory_item_id)
        if sku is None:
            return None
        ledger = self.ledger
        return ledger.stock[sku] - ledger.shopline[sku] - ledger.in_store[sku]

    def close(self) -> None:
        self.shopline_app.state.shopline.close()
        self.store.close()

    @property
    def client(self) -> str:
        return self.mapping.client.name

    def _clients(self) -> Any:
        return open_clients(
            self.mapping,
            lift_limits=True,
            shopline_transport=self.shopline_wire,
            stokly_transport=self.stokly_wire,
        )

    def _leeds(self) -> str:
        state = self.stokly_app.state.sandbox.state
        return next(loc["locationId"] for loc in state.locations if loc["name"] == STOKLY_LOCATION)

    def _allocated(self) -> dict[str, int]:
        """Units open sale orders allocate per SKU at Leeds DC (or at no location), as the
        stock pass subtracts them."""
        state = self.stokly_app.state.sandbox.state
        leeds = self._leeds()
        out = dict.fromkeys(self.stock, 0)
        for row in allocations(state):
            if row["itemSku"] in out and row["locationId"] in (leeds, None):
                out[row["itemSku"]] += int(row["allocated"])
        return out

    def _sellable(self) -> dict[str, int]:
        """Stokly's sellable figure at Leeds DC per SKU (onHand − quarantined − allocated),
        from the sandbox's own state: a second sum, independent of the stock pass's."""
        state = self.stokly_app.state.sandbox.state
        leeds = self._leeds()
        allocated = self._allocated()
        out = {}
        for sku in self.stock:
            item = state.item_by_sku[sku]
            rows = [
                state.inventory.get(key)
                for key in state.inventory_by_item.get(item, ())
                if key.split("|")[1] == leeds
            ]
            out[sku] = sum(r["onHand"] - r["quarantined"] for r in rows) - allocated[sku]
        return out

    async def _drain_orders(self, shopline: ShoplineClient, stokly: StoklyClient) -> None:
        """Import every paid order SHOPLINE holds (bounded by a few passes)."""
        for _ in range(10):
            report = await sync_orders(
                self.mapping, shopline=shopline, stokly=stokly, store=self.store
            )
            if report.ok and not report.imported:
                return
        raise RuntimeError("the orders sync did not settle before the sale")

    async def _stock_up(self, http: httpx.AsyncClient) -> None:
        """Each SKU's units at Leeds DC in its unassigned bin, none quarantined, so many that
        its sellable figure is its stock (whatever open sale orders allocate) and the till's
        −1 can always be taken from that bin."""
        state = self.stokly_app.state.sandbox.state
        leeds = self._leeds()
        allocated = self._allocated()
        for sku in self.stock:
            item = state.item_by_sku[sku]
            keys = [k for k in state.inventory_by_item.get(item, ()) if k.split("|")[1] == leeds]
            for row in (state.inventory.get(k) for k in keys):
                line = [{"sku": sku, "quantity": 0}]
                await _control(http, "/_sandbox/quarantine", row["binId"], line)
                if row["onHand"]:
                    line = [{"sku": sku, "quantity": -row["onHand"]}]
                    await _control(http, "/_sandbox/adjust", row["binId"], line)
            units = self.stock[sku] + allocated[sku]
            await _control(http, "/_sandbox/adjust", None, [{"sku": sku, "quantity": units}])
        sellable = self._sellable()
        if sellable != self.stock:
            raise RuntimeError(f"Stokly's sellable figures are not the sale's stock: {sellable}")

    async def prepare(self) -> None:
        async with self._clients() as (shopline, stokly), self._stokly_http() as http:
            await self._drain_orders(shopline, stokly)
            self.locations = await stokly_location_index(stokly)
            await self._stock_up(http)
            self.item_of: dict[str, str] = {}
            async for product in shopline.iter_products(fields="id,variants"):
                for variant in product.variants:
                    if variant.sku in self.stock and variant.inventory_item_id:
                        self.item_of[variant.sku] = str(variant.inventory_item_id)
            self.sku_of = {item: sku for sku, item in self.item_of.items()}
            await self._settle(shopline, stokly)
            # Paid SHOPLINE orders the seed left that the orders sync does not import (older
            # than its look-back) hold units back: Stokly gets as many more, so that SHOPLINE
            # shows exactly the sale's stock.
            shown = await self._shopline_levels(shopline)
            self.held_back = {sku: n - shown.get(sku, 0) for sku, n in self.stock.items()}
            more = [{"sku": s, "quantity": n} for s, n in self.held_back.items() if n > 0]
            if more:
                await _control(http, "/_sandbox/adjust", None, more)
                await self._settle(shopline, stokly)
            shown = await self._shopline_levels(shopline)
            # The event path starts after the set-up's movements.
            feed = StockMovements(self.client, stokly, self.store, self.own_channel)
            batch = await feed.poll()
            if batch is not None:
                feed.done(batch)
        wrong = {s: (shown.get(s), n) for s, n in self.stock.items() if shown.get(s) != n}
        if wrong:
            raise RuntimeError(f"SHOPLINE does not show the sale's stock before it: {wrong}")
        self.shopline_wire.writes.clear()

    async def _settle(self, shopline: ShoplineClient, stokly: StoklyClient) -> None:
        report = await stock_pass(
            self.mode,
            self.mapping,
            shopline=shopline,
            stokly=stokly,
            store=self.store,
            trigger="schedule",
            skus=None,
            locations=self.locations,
        )
        if not report.ok:
            raise RuntimeError(f"the settling pass failed: {report.errors[:3]}")

    async def _shopline_levels(self, shopline: ShoplineClient) -> dict[str, int]:
        by_item = {item: sku for sku, item in self.item_of.items()}
        return {
            by_item[str(lv.inventory_item_id)]: lv.available
            async for lv in shopline.iter_inventory_levels(list(by_item), [SHOPLINE_LOCATION[0]])
        }

    def _stokly_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.stokly_app), base_url=STOKLY_BASE
        )

    # -- the sync -------------------------------------------------------------------------------

    async def _pass(
        self, shopline: ShoplineClient, stokly: StoklyClient, kind: str, skus: frozenset[str] | None
    ) -> bool:
        async with self.stock_lock:
            log = PassLog(kind, skus, self.now())
            first_write = len(self.shopline_wire.writes)
            try:
                report = await stock_pass(
                    self.mode,
                    self.mapping,
                    shopline=shopline,
                    stokly=stokly,
                    store=self.store,
                    trigger="event" if skus is not None else "schedule",
                    skus=set(skus) if skus is not None else None,
                    locations=self.locations,
                )
            finally:
                log.end = self.now()
                for write in self.shopline_wire.writes[first_write:]:
                    log.writes.setdefault(write.inventory_item_id, write.end)
                    log.levels.append(write)
                self.passes.append(log)
        log.report = {"pushed": report.pushed, "failed": report.failed}
        self.pass_errors.extend(report.errors)
        async with self.pass_done:
            self.pass_done.notify_all()
        return report.ok

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping.is_set():
            await step()
            await _pause(self.stopping, seconds)

    async def event_path(self) -> None:
        async with self._clients() as (shopline, stokly):
            feed = StockMovements(self.client, stokly, self.store, self.own_channel)

            async def poll() -> None:
                batch = await feed.poll()
                if batch is not None and await self._pass(shopline, stokly, "event", batch.skus):
                    feed.done(batch)

            await self._every(self.config.poll_s, poll)

    async def schedule(self) -> None:
        async with self._clients() as (shopline, stokly):

            async def full() -> None:
                await self._pass(shopline, stokly, "schedule", None)

            # The first scheduled pass comes one interval after the start, as a schedule's would.
            try:
                await asyncio.wait_for(self.stopping.wait(), self.config.schedule_s)
            except TimeoutError:
                await self._every(self.config.schedule_s, full)

    async def orders(self) -> None:
        async with self._clients() as (shopline, stokly):

            async def sweep() -> None:
                await sync_orders(self.mapping, shopline=shopline, stokly=stokly, store=self.store)

            await self._every(self.config.orders_s, sweep)

    # -- the channels ---------------------------------------------------------------------------

    async def _checkout(self, http: httpx.AsyncClient, sku: str, buyer: int) -> bool:
        self.ledger.in_flight[sku] += 1
        start = self.now()
        try:
            response = await http.post(
                "/_sandbox/orders",
                json={
                    "lines": [{"sku": sku, "quantity": 1}],
                    "location_id": SHOPLINE_LOCATION[0],
                    "customer": {
                        "email": f"flash.buyer{buyer}@example.com",
                        "first_name": "Flash",
                        "last_name": f"Buyer {buyer}",
                    },
                    "paid": True,
                    "note": "flash sale",
                },
            )
        finally:
            self.ledger.in_flight[sku] -= 1
        if response.status_code == 422:
            self.refused += 1
            return False
        response.raise_for_status()
        self.ledger.shopline[sku] += 1
        self.checkouts.append(Checkout(sku, start, self.now()))
        self.ledger.check()
        return True

    async def buyer(self, n: int, http: httpx.AsyncClient, until: asyncio.Event) -> None:
        rng = random.Random(self.config.seed * 1000 + n)
        refused_at: dict[str, float] = {}
        skus = sorted(self.stock)
        while not until.is_set():
            now = self.now()
            open_ = [s for s in skus if now - refused_at.get(s, -1e9) >= self.config.retry_s]
            if not open_:
                wait = min(refused_at.values()) + self.config.retry_s - now
                await _pause(until, max(wait, 0.001))
                continue
            sku = rng.choice(open_)
            if not await self._checkout(http, sku, n):
                refused_at[sku] = self.now()
            await _pause(until, rng.uniform(0, self.config.think_s))

    async def till_(self) -> None:
        rng = random.Random(self.config.seed * 1000 + 999)
        skus = sorted(self.stock)
        async with self._stokly_http() as http:
            while not self.ledger.sold_out.is_set():
                left = [s for s in skus if self.ledger.left(s) > 0]
                if left:
                    await self._till_sale(http, rng.choice(left))
                await _pause(self.ledger.sold_out, self.config.till_s * rng.uniform(0.5, 1.5))

    async def _till_sale(self, http: httpx.AsyncClient, sku: str) -> None:
        """One unit off the shelf and through the till: a −1 stock movement at Leeds DC."""
        self.ledger.in_store[sku] += 1
        taken = self.now()
        response = await http.post(
            "/_sandbox/adjust",
            json={
                "location": STOKLY_LOCATION,
                "reference": "till sale",
                "items": [{"sku": sku, "quantity": -1}],
            },
        )
        response.raise_for_status()
        self.till.append(TillSale(sku, taken, self.now()))
        self.ledger.check()

    async def _full_pass_after(self, moment: float) -> None:
        """Until a full pass that started after ``moment`` has finished."""
        async with self.pass_done:
            await self.pass_done.wait_for(
                lambda: any(p.skus is None and p.start > moment and p.end for p in self.passes)
            )

    async def run(self) -> Outcome:
        started = time.monotonic()
        self.build()
        try:
            await self.prepare()
            sale = self._stepped() if self.config.stepped else self._free_running()
            await asyncio.wait_for(sale, self.config.max_s)
            return await self._outcome(started)
        finally:
            self.close()

    async def _free_running(self) -> None:
        self.sale_start = self.now()
        sync = [
            asyncio.create_task(self.event_path()),
            asyncio.create_task(self.schedule()),
            asyncio.create_task(self.orders()),
        ]
        tasks = list(sync)
        hammering = asyncio.Event()
        http = httpx.AsyncClient(transport=self.shopline_wire, base_url=SHOPLINE_BASE)
        try:
            buyers = [
                asyncio.create_task(self.buyer(n, http, hammering))
                for n in range(self.config.buyers)
            ]
            till = asyncio.create_task(self.till_())
            watched = [*sync, *buyers, till]
            tasks.extend([*buyers, till])
            await _until(self.ledger.sold_out.wait(), watched)
            sold_out = self.now()
            # Buyers keep at it until a full pass that knew the whole sale has finished.
            await _until(self._full_pass_after(sold_out), watched)
            hammering.set()
            await _gather([*buyers, till])
            self.stopping.set()
            await _gather(sync)
            await self._last_units(http)
        finally:
            self.stopping.set()
            hammering.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.aclose()

    async def _last_units(self, http: httpx.AsyncClient) -> None:
        """The last units SHOPLINE shows (by mistake) are sold: every SKU until refused."""
        for sku in sorted(self.stock):
            while await self._checkout(http, sku, 0):
                pass
        self.sale_end = self.now()

    async def _stepped(self) -> None:
        """The sale in steps, one thing at a time, so that its outcome does not depend on
        timing: each step every buyer checks out once, the till sells every ``till_every``
        steps, the orders sync and the event path run, and a full pass every ``full_every``
        steps. With ``inject``, a checkout of a level's SKU lands inside each pass, just before
        SHOPLINE gets its level write (or read)."""
        config = self.config
        self.sale_start = self.now()
        rng = random.Random(config.seed * 1000 + 1)
        skus = sorted(self.stock)
        refused: set[str] = set()
        http = httpx.AsyncClient(transport=self.shopline_wire, base_url=SHOPLINE_BASE)
        till_http = self._stokly_http()

        async def inside_pass(items: list[str]) -> None:
            for item in items:
                sku = self.sku_of.get(item)
                if sku is not None:
                    await self._checkout(http, sku, config.buyers)

        try:
            async with self._clients() as (shopline, stokly), self._clients() as orders_clients:
                feed = StockMovements(self.client, stokly, self.store, self.own_channel)
                self.shopline_wire.before_kind = config.inject
                steps = 0
                settled = False
                while not settled:
                    steps += 1
                    sold_out = self.ledger.sold_out.is_set()
                    for n in range(config.buyers):
                        open_ = [s for s in skus if s not in refused]
                        if open_:
                            sku = rng.choice(open_)
                            if not await self._checkout(http, sku, n):
                                refused.add(sku)
                    if not sold_out and steps % config.till_every == 0:
                        left = [s for s in skus if self.ledger.left(s) > 0]
                        if left:
                            await self._till_sale(till_http, rng.choice(left))
                    await sync_orders(
                        self.mapping,
                        shopline=orders_clients[0],
                        stokly=orders_clients[1],
                        store=self.store,
                    )
                    self.shopline_wire.before = inside_pass if config.inject else None
                    try:
                        batch = await feed.poll()
                        if batch is not None and await self._pass(
                            shopline, stokly, "event", batch.skus
                        ):
                            feed.done(batch)
                            refused.clear()  # buyers see the new levels
                        if steps % config.full_every == 0:
                            await self._pass(shopline, stokly, "schedule", None)
                            refused.clear()
                            # A full pass after every unit was sold ends the sale.
                            settled = sold_out
                    finally:
                        self.shopline_wire.before = None
            await self._last_units(http)
        finally:
            await http.aclose()
            await till_http.aclose()

    async def _outcome(self, started: float) -> Outcome:
        async with self._clients() as (shopline, stokly):
            await self._drain_orders(shopline, stokly)
            left = await self._shopline_levels(shopline)
        sellable = self._sellable()
        reflected = movement_latencies(self.till, self.passes, self.item_of)
        oversold, inside, caused_rows = attribute(
            self.stock, self.checkouts, self.till, reflected, self.config.window_s
        )
        latencies = [
            at - sale.end for sale, at in zip(self.till, reflected.values(), strict=True) if at
        ]
        phantoms = phantom_units(self.passes, self.till, self.sku_of)
        kinds = Counter(p.kind for p in self.passes)
        return Outcome(
            mode=self.mode,
            stock=dict(self.stock),
            shopline_sold=dict(self.ledger.shopline),
            in_store_sold=dict(self.ledger.in_store),
            oversold={s: oversold.get(s, 0) for s in self.stock},
            oversold_inside_window=inside,
            oversold_by_sync=len(caused_rows),
            caused=caused_rows,
            stokly_oversold={s: max(0, self.held_back[s] - v) for s, v in sellable.items()},
            latencies=latencies,
            not_reflected=sum(1 for at in reflected.values() if at is None),
            refused=self.refused,
            passes=dict(kinds),
            level_writes=sum(len(p.levels) for p in self.passes),
            seconds=time.monotonic() - started,
            sale_seconds=self.sale_end - self.sale_start,
            shopline_left=left,
            phantom_writes=len(phantoms),
            phantom_units=sum(row["excess"] for row in phantoms),
            phantoms=phantoms,
            pass_errors=self.pass_errors,
        )


async def _pause(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``event`` is set meanwhile (pacing, never readiness)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _until(awaitable: Awaitable[Any], watched: list[asyncio.Task[Any]]) -> None:
    """Await ``awaitable``; if one of ``watched`` fails first, raise its error instead."""
    waiting = asyncio.ensure_future(awaitable)
    pending = {waiting, *(task for task in watched if not task.done())}
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what a part of the sale raised
            if waiting in done:
                return
    finally:
        waiting.cancel()


async def _control(
    http: httpx.AsyncClient, path: str, bin_id: str | None, items: list[dict[str, Any]]
) -> None:
    body = {"location": STOKLY_LOCATION, "binId": bin_id, "reference": "flash sale", "items": items}
    (await http.post(path, json=body)).raise_for_status()


async def _gather(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks)


def _mapping(workdir: Path) -> Mapping:
    from stokline.config import load_mapping

    path = benchmark_mapping(
        workdir / "flash-sale.yaml", SHOPLINE_BASE, STOKLY_BASE, locations=(SHOPLINE_LOCATION,)
    )
    return load_mapping(path)


def run_flash_sale(
    mode: str, config: Config, workdir: Path, credentials: dict[str, str]
) -> Outcome:
    """One flash sale with ``mode`` ("set" or "difference"), in fresh sandboxes in ``workdir``.

    ``credentials`` are the demo's (.env.demo): the sandboxes are created with them, and the
    mapping resolves them from the environment, where they must be set too.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_Sale(mode, config, workdir, credentials).run())
