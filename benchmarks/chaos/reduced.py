"""The reduced campaign: traffic, syncs, crashes and receiver restarts, in this process, in seconds.

No Prefect server and no worker: the use cases of `stokline.sync` are called in rounds, side by
side, the way the deployments would call them over the same stretch of time (`passes`), while the
storefront, the merchant and the warehouse act (`Traffic`). Under the ``hostile`` profile, a pass
is killed in the middle of a write each round until every kind of pass was killed once, and the
receiver is stopped and started again while webhooks are in flight. Then faults are switched off
and every pass runs, round after round, until two rounds in a row write nothing; then the
snapshot is taken for the invariants (`benchmarks.chaos.invariants`).

`make test` runs it (tests/chaos/); ``python -m benchmarks.chaos --reduced`` prints its table.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.chaos.invariants import Snapshot, check
from benchmarks.chaos.observe import read_through_stokline, take_snapshot
from benchmarks.chaos.report import CampaignResult
from benchmarks.chaos.traffic import Traffic
from benchmarks.chaos.world import (
    COMPRESSED_FAULTS,
    CrashingTransport,
    World,
    campaign_clients,
    temporary_world,
)
from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.store import Store
from stokline.sync.catalogue.sync import sync_catalogue
from stokline.sync.finance.ledger.sync import post_ledger
from stokline.sync.finance.payments.sync import sync_payments
from stokline.sync.fulfilment.sync import sync_fulfilment
from stokline.sync.orders.sync import sync_orders
from stokline.sync.stock.events import StockMovements
from stokline.sync.stock.sync import sync_stock

__all__ = ["PassLog", "ReducedCampaign", "passes", "run_reduced"]

RECEIVER_DOWN_S = 1.0
"""How long the receiver stays down when it is restarted mid-round (deliveries fail meanwhile)."""

CRASH_POINTS = {
    "orders": "/v2/saleorders",  # the sale order is created; its link is not recorded
    "fulfilment": "/fulfillments.json",  # SHOPLINE has the fulfillment; the store does not
    "finance": "/v0/journals",  # the journal is posted; the batch is left "posting"
    "stock": "/inventory_levels/adjust.json",  # the level is adjusted; the pushed value not kept
    "payments": "/payments",  # Stokly has the payment record; the store does not know
}
"""Where each kind of pass is killed: right after its main write went through."""


Pass = Callable[[ShoplineClient, StoklyClient], Awaitable[bool]]


@dataclass
class PassLog:
    """What the passes of a campaign did: runs, unfinished runs (report not ok), crashes."""

    runs: Counter[str] = field(default_factory=Counter)
    unfinished: Counter[str] = field(default_factory=Counter)
    crashed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: Counter[str] = field(default_factory=Counter)


def passes(
    mapping: Mapping, store: Store, round_no: int, *, every: bool = False
) -> dict[str, Pass]:
    """The passes of one round, as the deployments would run them over that stretch of time:
    orders (webhook-triggered), the stock event path and fulfilment every round, payments every
    other round, the full stock pass and the finance journals every third, the catalogue every
    sixth; ``every`` runs them all. The two stock passes run side by side, as the flows do: the
    sync keeps them apart SKU by SKU."""
    today = datetime.now(mapping.client.tz).date()

    async def orders(shop: ShoplineClient, stok: StoklyClient) -> bool:
        report = await sync_orders(
            mapping, shopline=shop, stokly=stok, store=store, trigger="webhook"
        )
        return report.ok

    async def stock_events(shop: ShoplineClient, stok: StoklyClient) -> bool:
        # As flows/stock_events.py does for each poll that found movements.
        feed = StockMovements(
            mapping.client.name, stok, store, own_channel=mapping.connections.stokly.channel_id
        )
        batch = await feed.poll()
        if batch is None:
            return True
        report = await sync_stock(
            mapping,
            shopline=shop,
            stokly=stok,
            store=store,
            trigger="event",
            skus=set(batch.skus),
            check_drift=False,
        )
        if report.ok:
            feed.done(batch)
        return report.ok

    async def stock(shop: ShoplineClient, stok: StoklyClient) -> bool:
        return (await sync_stock(mapping, shopline=shop, stokly=stok, store=store)).ok

    async def fulfilment(shop: ShoplineClient, stok: StoklyClient) -> bool:
        return (await sync_fulfilment(mapping, shopline=shop, stokly=stok, store=store)).ok

    async def payments(shop: ShoplineClient, stok: StoklyClient) -> bool:
        report = await sync_payments(
            mapping, shopline=shop, stokly=stok, store=store, start=today, end=today
        )
        return report.ok

    async def finance(shop: ShoplineClient, stok: StoklyClient) -> bool:
        # As flows/finance.py does under `approval: required`: build the journals, approve
        # exactly those, post only them (one that changed meanwhile waits for the next run).
        period = {"start": today, "end": today}
        preview = await post_ledger(
            mapping, shopline=shop, stokly=stok, store=store, dry_run=True, **period
        )
        report = await post_ledger(
            mapping,
            shopline=shop,
            stokly=stok,
            store=store,
            approved=preview.approval(),
            approval_note="approved by the chaos campaign",
            **period,
        )
        return report.ok

    async def catalogue(shop: ShoplineClient, stok: StoklyClient) -> bool:
        return (await sync_catalogue(mapping, shopline=shop, stokly=stok, store=store)).ok

    schedule: list[tuple[str, Pass, int]] = [
        ("orders", orders, 1),
        ("stock-events", stock_events, 1),
        ("fulfilment", fulfilment, 1),
        ("payments", payments, 2),
        ("stock", stock, 3),
        ("finance", finance, 3),
        ("catalogue", catalogue, 6),
    ]
    return {name: run for name, run, period in schedule if every or round_no % period == 0}


class ReducedCampaign:
    """Traffic, syncs, crashes mid-write and receiver restarts in rounds under hostile faults;
    then faults off and quiet rounds until nothing is left to do; then the snapshot."""

    def __init__(
        self,
        world: World,
        *,
        rounds: int = 6,
        steps_per_round: int = 8,
        crashes: int = 5,
        receiver_restarts: int = 3,
        seed: int = 8,
    ) -> None:
        self.world = world
        self.rounds = rounds
        self.steps = steps_per_round
        targets = list(CRASH_POINTS)
        self.crash_plan = deque(targets[i % len(targets)] for i in range(crashes))
        self.restarts_left = receiver_restarts
        self.restarts = 0
        self.traffic = Traffic(
            world.shopline.url, world.stokly.url, catalogue_skus=world.skus, seed=seed
        )
        self.log = PassLog()
        self.baseline = [o["id"] for o in world.shopline_docs.list("order")]
        self.first_day = datetime.now(world.mapping.client.tz).date()
        self.settle_rounds = 0
        self.settled = False
        self.seconds: dict[str, float] = {}

    async def _run_pass(self, name: str, run: Pass, crash_at: str | None) -> bool:
        """One pass with clients of its own, as each flow task opens its own; killed right after
        its first successful write to a path containing ``crash_at``, when given."""
        crash = CrashingTransport()
        started = time.monotonic()
        async with campaign_clients(self.world.mapping, crash) as (shop, stok):
            task = asyncio.ensure_future(run(shop, stok))
            if crash_at is not None:
                crash.arm(task, crash_at)
            try:
                ok = await task
            except asyncio.CancelledError:
                if not crash.fired:
                    raise
                self.log.crashed.append(f"{name} (after {crash.fired[0].split()[0]} …{crash_at})")
                return False
            except Exception as exc:  # a pass that raises is a finding: kept for the report
                self.log.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                ok = False
        self.log.runs[name] += 1
        self.log.seconds[name] += time.monotonic() - started
        if not ok:
            self.log.unfinished[name] += 1
        return ok

    async def _round(
        self, round_no: int, *, crash: str | None = None, every: bool = False, bounce: bool = False
    ) -> bool:
        """The round's passes side by side (and the traffic, while faults are on)."""
        world = self.world
        todo = passes(world.mapping, world.store, round_no, every=every)
        if crash is not None and crash not in todo:
            todo[crash] = passes(world.mapping, world.store, round_no, every=True)[crash]
        jobs: list[Awaitable[Any]] = [
            self._run_pass(name, run, CRASH_POINTS[name] if name == crash else None)
            for name, run in todo.items()
        ]
        if not every:
            jobs.append(asyncio.to_thread(self._traffic))
        if bounce:
            jobs.append(asyncio.to_thread(self.world.bounce_receiver, RECEIVER_DOWN_S))
        crashed_before = len(self.log.crashed)
        results = await asyncio.gather(*jobs)
        if crash is not None and len(self.log.crashed) > crashed_before:
            self.crash_plan.popleft()
        return all(r is not False for r in results)

    def _traffic(self) -> None:
        for _ in range(self.steps):
            self.traffic.step()

    async def chaos(self) -> None:
        """Hostile faults and traffic; a pass killed mid-write each round until the plan is done;
        the receiver stopped for a round now and then."""
        started = time.monotonic()
        self.world.faults("hostile", **COMPRESSED_FAULTS)
        restart_every = max(1, self.rounds // max(1, self.restarts_left))
        round_no = 0
        while round_no < self.rounds or (self.crash_plan and round_no < 3 * self.rounds):
            crash = self.crash_plan[0] if self.crash_plan else None
            bounce = self.restarts_left > 0 and round_no % restart_every == restart_every - 1
            await self._round(round_no, crash=crash, bounce=bounce)
            if bounce:
                self.restarts_left -= 1
                self.restarts += 1
            round_no += 1
        self.seconds["chaos"] = time.monotonic() - started

    async def settle(self, max_rounds: int = 10) -> bool:
        """Faults off; every pass, round after round, until the deliveries are in and two rounds
        in a row finish without writing anything."""
        started = time.monotonic()
        self.world.start_receiver()
        self.world.faults("none")
        quiet = 0
        for round_no in range(max_rounds):
            deadline = time.monotonic() + 20
            while not self.world.deliveries_settled() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            before = self.world.writes()
            finished = await self._round(round_no, every=True)
            self.settle_rounds += 1
            quiet = quiet + 1 if finished and self.world.writes() == before else 0
            if quiet >= 2 and self.world.deliveries_settled():
                break
        self.settled = quiet >= 2
        self.seconds["settle"] = time.monotonic() - started
        return self.settled

    async def observe(self) -> Snapshot:
        """The end state, as the invariants read it."""
        world = self.world
        today = datetime.now(world.mapping.client.tz).date()
        async with campaign_clients(world.mapping) as (shop, stok):
            stock, unposted = await read_through_stokline(
                world.mapping, world.store, shop, stok, (self.first_day, today)
            )
        return take_snapshot(
            world.mapping,
            shopline_docs=world.shopline_docs,
            stokly_docs=world.stokly_docs,
            store=world.store,
            baseline_orders=self.baseline,
            stock=stock,
            unposted=unposted,
        )

    async def run(self) -> Snapshot:
        await self.chaos()
        await self.settle()
        return await self.observe()

    def close(self) -> None:
        self.traffic.close()


def credentials_from_env() -> dict[str, str]:
    """The sandbox credentials the demo mapping names (``.env.demo`` puts them in the env)."""
    names = ("SHOPLINE_ACCESS_TOKEN", "SHOPLINE_APP_SECRET", "STOKLY_CLIENT_ID")
    return {name: os.environ[name] for name in (*names, "STOKLY_CLIENT_SECRET")}


def activity(campaign: ReducedCampaign) -> dict[str, Any]:
    """What the reduced campaign did to the system, for its report."""
    log = campaign.log
    return {
        **campaign.traffic.summary(),
        "passes_run": sum(log.runs.values()),
        "passes_cut_short_by_faults": sum(log.unfinished.values()),
        "passes_killed_mid_write": log.crashed,
        "receiver_restarts": campaign.restarts,
        "pass_errors": log.errors,
        "settle_rounds": campaign.settle_rounds,
        "settled": campaign.settled,
    }


def run_reduced(
    credentials: dict[str, str], *, skus: int = 40, seed: int = 8, **options: Any
) -> tuple[CampaignResult, Snapshot]:
    """The whole reduced campaign in a temporary world; its result and the final snapshot."""
    with temporary_world(skus, credentials) as world:
        campaign = ReducedCampaign(world, seed=seed, **options)
        try:
            snapshot = asyncio.run(campaign.run())
        finally:
            campaign.close()
        result = CampaignResult(
            name="chaos-reduced",
            title="Reliability campaign (reduced, in-process)",
            invariants=check(snapshot),
            activity=activity(campaign),
            parameters={
                "skus": skus,
                "rounds": campaign.rounds,
                "steps_per_round": campaign.steps,
                "seed": seed,
                "faults": "hostile, time-compressed",
            },
            seconds=dict(campaign.seconds),
            notes=[
                "faults: the hostile profile's 10 % 5xx, 2 % timeouts and dropped connections; "
                "429s at 5 % one at a time (the profile's bursts of four make ~17 %); "
                "Retry-After, timeouts and backoff shortened; webhooks up to 3 copies, "
                "out of order, retried on SHOPLINE's schedule × 0.01",
                "a kill cancels the pass right after its write reached the sandbox, before it "
                "read the answer; the receiver is stopped for 1 s while webhooks are in flight",
            ],
        )
    return result, snapshot
