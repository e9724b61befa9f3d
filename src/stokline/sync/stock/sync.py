"""The stock sync: sellable stock per SHOPLINE location from Stokly, pushing only what changed.

One pass reads both sides in batches (`stokline.sync.stock.read`) — SHOPLINE's products once
(for variants, SKUs and inventory item ids), Stokly's items, locations, inventory records and
allocations, and SHOPLINE's paid open orders that have no order link yet (sold in SHOPLINE,
unknown to Stokly) — derives every desired level with `stokline.sync.stock.translate.plan_levels`,
reads SHOPLINE's current levels of the inventory items it needs, and writes a level only when

1. it differs from the value last pushed (``store.levels``) and from what SHOPLINE shows, or
2. (``check_drift``) SHOPLINE shows something other than what was last pushed: someone changed
   it in the admin; it is set back, audited and counted as drift.

A full pass reads the levels of 1. (every inventory item whose target changed, after its plan)
and a rotating slice of the others for 2. (`stokline.sync.stock.drift`: while Stokly is still
being read, sized so that every level is read at least once per ``syncs.stock.drift_every``);
a level it did not read is neither pushed nor taken for one SHOPLINE lacks. Its reconciliation
covers the levels it read. The first pass, or one after a lost cursor, reads every level.

A write is an ``adjust`` by the target minus the level the pass read (DESIGN.md, "Stock
arithmetic"): a full pass may write minutes after it read, and a checkout SHOPLINE took in
between must stay taken, not be overwritten by an absolute set. Only a level the pass could not
read (the item is not stocked at the location yet) is ``set``. The target is recorded as pushed,
so a quiet catalogue costs no writes; the sale reaches the target through Stokly (or as a paid
order not yet imported) on a later pass, where SHOPLINE already shows it.

A level SHOPLINE already shows is recorded as pushed without a write. Every successful write is
recorded at once, a failed one never, and the value last pushed for it is forgotten: an adjust
whose answer was lost may have been applied, and the client never resends it, so the next pass
reads the level afresh and writes only the difference still missing (none if it landed). A 429
storm or a crash loses nothing, and nothing is adjusted twice. SHOPLINE's level is never taken as
truth: it is only the base of the difference.

``skus`` (Stokly SKUs, e.g. from `stokline.sync.stock.events.changes_since`) limits a pass to those items: the event
path. It reads the SHOPLINE levels of just those items after its plan, right before writing, so
its differences are taken from a read as fresh as the full pass's (never from the value last
pushed). Nothing here ever writes to Stokly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stokline.config import Mapping
from stokline.connectors import (
    ApiError,
    ConnectorError,
    DeadlineError,
    ShoplineClient,
    StoklyClient,
    deadline,
    is_transient,
)
from stokline.store import Store
from stokline.store.exceptions import ACTIVE
from stokline.store.heartbeat import Heartbeat
from stokline.sync.run import RunCost, SyncRun
from stokline.sync.stock.budget import WHAT, out_of_time, pass_budget
from stokline.sync.stock.claims import CLAIM_SIZE, WAIT, Claims
from stokline.sync.stock.drift import CURSOR_NAME, CURSOR_SYNC, DriftRotation
from stokline.sync.stock.read import read_plan
from stokline.sync.stock.reconcile import compare_levels
from stokline.sync.stock.report import StockReport
from stokline.sync.stock.translate import DesiredLevel, VariantRef, shown_on

__all__ = ["StockReport", "sync_stock"]

log = logging.getLogger("stokline.sync.stock")

ACTOR = "stokline.sync.stock"
VARIANT = "variant"
# An exception about a Stokly SKU several SHOPLINE variants resolve to (the catalogue sync's
# "stokly_sku" collisions are Stokly SKUs that collide with each other: another thing).
SHARED = "stokly_sku_shared"
_SKU_CODES = frozenset({"unknown_shopline_sku", "sku_collision"})
DRIFT_EVERY = timedelta(hours=1)  # the mapping's default, for a mapping without a stock sync
MAX_ROWS = 200  # rows of a kind kept in a report: enough to act on, small enough to render
MAX_ERRORS = 20


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False, repr=False)
class _Run(SyncRun):
    """One pass of the stock sync; `sync_stock` is its public face."""

    only: set[str] | None  # Stokly SKUs the pass is limited to (the event path); None: all
    check_drift: bool
    locations: dict[str, str] | None = None
    clock: Callable[[], datetime] = _utcnow  # when the pass starts: it sizes the drift slice

    def __post_init__(self) -> None:
        self.only = set(self.only) if self.only is not None else None
        self.written: set[tuple[str, str]] = set()
        self.unsettled: list[tuple[str, str]] = []  # writes that failed: pushed value forgotten
        self.not_sent = 0  # writes left unsent when the time budget ran out (`.budget`)
        self.last: dict[tuple[str, str], int] = {}  # the value last pushed, as the pass began
        settings = self.mapping.syncs.stock
        self.batch_size = settings.batch_size if settings is not None else 250
        self.drift_every = settings.drift_every if settings is not None else DRIFT_EVERY
        # The next scheduled pass comes at most this much later: the drift rotation reads ahead.
        self.lead = (settings.every if settings is not None else None) or timedelta(0)
        self.report = StockReport(client=self.client, trigger=self.trigger, dry_run=self.dry)
        # Leases on the SKUs it writes: the event path and a full pass never write one level
        # at once, and an event never waits for a whole full pass (`stokline.sync.stock.claims`).
        kind = "full" if self.only is None else "event"
        self.claims = None if self.dry else Claims(self.mapping, self.store, kind)

    def _error(self, message: str) -> None:
        if len(self.report.errors) < MAX_ERRORS:
            self.report.errors.append(message)

    # -- exceptions -----------------------------------------------------------------------------

    def _unknown(self, variant: VariantRef, message: str, code: str) -> None:
        # The matcher speaks of order lines (unmapped_sku); for a variant it is a SKU SHOPLINE
        # sells that Stokly does not know.
        code = "sku_collision" if code == "sku_collision" else "unknown_shopline_sku"
        team = self.mapping.operating_model.owner_of(code)
        entity = f"variant {variant.sku} ({variant.variant_id})"
        if self.dry:
            self.report.add_exception(code, team, entity, message)
            return
        record = self.store.exceptions.raise_(
            self.client,
            code,
            VARIANT,
            variant.variant_id,
            message,
            team=team,
            payload={"sku": variant.sku, "inventory_item_id": variant.inventory_item_id},
        )
        self.report.add_exception(code, team, entity, message, record.status)

    def _resolve_matched(self, matched: set[str]) -> None:
        """Close the SKU exceptions of variants that match a Stokly item now (fixed at source)."""
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=VARIANT, status=ACTIVE
        ):
            if record.code in _SKU_CODES and record.entity_id in matched:
                sku = (
                    (record.payload or {}).get("sku") if isinstance(record.payload, dict) else None
                )
                entity = f"variant {sku} ({record.entity_id})"
                note = "the variant's SKU matches a Stokly item now"
                self.report.add_exception(record.code, record.team, entity, note, "resolved")
                if not self.dry:
                    self.store.exceptions.resolve(record.id, note)

    def _shared(self, stokly_sku: str, variants: list[VariantRef]) -> None:
        """One exception for a Stokly item that several SHOPLINE variants resolve to."""
        code = "sku_collision"
        team = self.mapping.operating_model.owner_of(code)
        names = ", ".join(f"{v.sku} ({v.variant_id})" for v in variants)
        shown = variants[0]
        # Why that variant (the mapping's skus.show_stock_on, or the default rule, or the default
        # because the variant the mapping names is not among them) and how to choose another.
        choice = shown_on(stokly_sku, variants, self.mapping.skus)
        message = (
            f"Stokly item {stokly_sku} is sold by {len(variants)} SHOPLINE variants: {names}; its"
            f" sellable stock is shown on {shown.sku} ({shown.variant_id}) only ({choice.why}),"
            f" the others are set to 0 until one variant is left; {choice.advice}"
        )
        entity = f"Stokly item {stokly_sku}"
        if self.dry:
            self.report.add_exception(code, team, entity, message)
            return
        record = self.store.exceptions.raise_(
            self.client,
            code,
            SHARED,
            stokly_sku,
            message,
            team=team,
            payload={
                "sku": stokly_sku,
                "variants": [{"id": v.variant_id, "sku": v.sku} for v in variants],
                "shown_on": shown.variant_id,
            },
        )
        self.report.add_exception(code, team, entity, message, record.status)

    def _resolve_shared(self, shared: set[str]) -> None:
        """Close the shared-item exceptions of Stokly items one variant sells again."""
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=SHARED, status=ACTIVE
        ):
            if record.code == "sku_collision" and record.entity_id not in shared:
                note = "one SHOPLINE variant sells the Stokly item now"
                entity = f"Stokly item {record.entity_id}"
                self.report.add_exception(record.code, record.team, entity, note, "resolved")
                if not self.dry:
                    self.store.exceptions.resolve(record.id, note)

    # -- writing --------------------------------------------------------------------------------

    async def _push(self, level: DesiredLevel, shown: int | None, drift: int | None) -> None:
        """Write one level: by difference from ``shown``, the level the pass read just before.

        An adjust keeps whatever SHOPLINE sold between that read and this write; only a level
        the pass could not read (not stocked at the location yet) is set absolutely.
        """
        try:
            if shown is None:
                await self.shopline.set_inventory_level(
                    level.inventory_item_id, level.location_id, level.available
                )
            else:
                await self.shopline.adjust_inventory_level(
                    level.inventory_item_id, level.location_id, level.available - shown
                )
        except DeadlineError:
            # Not sent: the pass's time budget ran out. Left like a failed write (the next pass
            # reads the level afresh and pushes it), and said once for all such levels.
            self.report.failed += 1
            self.unsettled.append(level.key)
            self.not_sent += 1
            return
        except ConnectorError as exc:
            self.report.failed += 1
            # Whatever was last pushed is no longer known to be what SHOPLINE shows (an adjust
            # may have landed without its answer): the next pass compares a fresh read with the
            # target instead, and never adjusts twice by the same difference.
            self.unsettled.append(level.key)
            verb = "setting" if shown is None else "adjusting"
            if not isinstance(exc, ApiError):
                # No refusal: an answer that could not be read (the write may well have been
                # applied) or no answer at all. The next pass reads SHOPLINE's level back.
                self._error(
                    f"{verb} {level.shopline_sku} at {level.location_id} had no clear answer"
                    f" (the next pass reads the level back): {exc}"
                )
                return
            self._error(f"{verb} {level.shopline_sku} at {level.location_id}: {exc}")
            if not is_transient(exc):
                team = self.mapping.operating_model.owner_of("api_rejected")
                self.store.exceptions.raise_(
                    self.client,
                    "api_rejected",
                    "inventory_level",
                    f"{level.inventory_item_id}:{level.location_id}",
                    f"SHOPLINE refused level {level.available} for {level.shopline_sku} at"
                    f" location {level.location_id}: {exc}",
                    team=team,
                    payload={"sku": level.shopline_sku, "location_id": level.location_id},
                )
            return
        # The target is what was pushed, whatever SHOPLINE sold meanwhile: its sales reach
        # Stokly (and the target) through the orders sync, so a quiet catalogue stays quiet.
        self.store.levels.record(
            self.client, [(level.inventory_item_id, level.location_id, level.available)]
        )
        self.written.add(level.key)
        self.report.pushed += 1
        if shown is None:
            self.report.pushed_absolute += 1
        if drift is not None:
            self.report.drift_corrected += 1
            self.store.audit.record(
                self.client,
                ACTOR,
                "shopline",
                "correct_stock_drift",
                f"{level.inventory_item_id}:{level.location_id}",
                level.variant_id,
                {"sku": level.shopline_sku, "found": drift, "set": level.available},
            )

    # -- the pass -------------------------------------------------------------------------------

    async def execute(self) -> StockReport:
        cost = RunCost(self.shopline, self.stokly)
        if self.claims is None:
            self.last = self.store.levels.all(self.client)
            await self._execute()
            return cost.charge(self.report)
        if self.only is not None and not await self.claims.hold_all(self.only):
            self._error(
                f"another stock pass kept writing {len(self.only)} of these SKU(s) for over"
                f" {WAIT:g} s; the batch is tried again"
            )
            return cost.charge(self.report)
        try:
            with Heartbeat(self.claims.renew, name=self.claims.holder):
                # Taken before anything is read: a level another pass records after this, this
                # pass leaves to it (its figures and its read are newer).
                self.last = self.claims.start()
                await self._execute()
        finally:
            self.claims.release()
        return cost.charge(self.report)

    async def _execute(self) -> None:
        drift = None
        if self.only is None:
            stored = self.store.cursors.get(self.client, CURSOR_SYNC, CURSOR_NAME)
            drift = DriftRotation(stored, self.drift_every, self.clock(), self.lead)
        read = await read_plan(
            self.mapping,
            shopline=self.shopline,
            stokly=self.stokly,
            store=self.store,
            skus=self.only,
            locations=self.locations,
            shown=True,
            drift=drift,
        )
        for problem in read.problems:
            self._error(problem)
        plan = read.plan
        for variant, problem in plan.unmatched:
            message = problem.message
            if variant.variant_id in plan.zeroed:
                message += (
                    "; it was sold from Stokly's stock before, so its SHOPLINE level is set to 0"
                    " until it matches a Stokly item again"
                )
            self._unknown(variant, message, problem.code)
        for stokly_sku, variants in plan.shared.items():
            self._shared(stokly_sku, variants)
        if self.only is None:
            matched = {lv.variant_id for lv in plan.levels if lv.variant_id not in plan.zeroed}
            self._resolve_matched(matched)
            self._resolve_shared(set(plan.shared))
        synced_count = sum(1 for loc in self.mapping.locations if loc.stock.sync)
        self.report.skipped_excluded = len(plan.excluded) * synced_count
        self.report.levels_computed = len(plan.levels)
        current = read.shown or {}
        self.report.levels_read = len(current)
        self.report.drift_items_read = read.drift_read
        self.report.changed_items_read = read.changed_read
        await self._apply(plan.levels, current)
        if read.recheck and not self.dry:
            # A sale between their read and the second read of orders may be taken off twice:
            # the next pass reads these again and gives back what is one too few.
            self.store.levels.forget(self.client, read.recheck)
        if read.drift_cursor is not None and self.check_drift and not self.dry:
            # The slice was read and its drift set right (or, where a write failed, forgotten:
            # read again next pass as changed): the next pass goes on from there.
            self.store.cursors.set(self.client, CURSOR_SYNC, read.drift_cursor, CURSOR_NAME)
        # What the pass read, beside what it set right: the rows `stokline reconcile stock`
        # would have printed just before it, for the levels this pass read.
        compared = [level for level in plan.levels if level.key in current]
        self.report.reconciliation = compare_levels(
            self.client,
            compared,
            current,
            corrected=self.written,
            unmatched=len(plan.unmatched),
            excluded=len(plan.excluded),
            not_read=len(plan.levels) - len(compared),
        )

    async def _apply(
        self, levels: list[DesiredLevel], current: dict[tuple[str, str], int | None]
    ) -> None:
        last = self.last
        todo: list[tuple[DesiredLevel, int | None, int | None]] = []  # level, shown, drift
        settled: list[tuple[str, str, int]] = []
        for level in levels:
            read = level.key in current  # not read: unknown, never "SHOPLINE has no level"
            shown = current.get(level.key)
            pushed = last.get(level.key)
            at_risk = shown is not None and shown > level.available
            if at_risk and len(self.report.oversell_risk) < MAX_ROWS:
                self.report.oversell_risk.append(self._row(level, shown))
            if level.available != pushed:
                self.report.levels_changed += 1
                if not read:
                    # Every level whose target changed is read; should one not be, it waits
                    # for a pass that reads it rather than be set blind.
                    self._error(
                        f"{level.shopline_sku} at {level.location_id} was not read; the next"
                        " pass pushes it"
                    )
                elif shown == level.available:
                    settled.append((level.inventory_item_id, level.location_id, level.available))
                else:
                    todo.append((level, shown, None))
            elif self.only is not None and read and shown == level.available:
                # Right already; recorded all the same, so a full pass that read it before
                # this pass leaves it alone rather than write its older figure.
                settled.append((level.inventory_item_id, level.location_id, level.available))
            elif self.check_drift and read and shown is not None and shown != pushed:
                log.info(
                    "drift: %s at %s shows %s, set %s",
                    level.shopline_sku,
                    level.location_id,
                    shown,
                    pushed,
                )
                todo.append((level, shown, shown))
        if self.dry:
            self.report.would_push = [self._row(lv, shown) for lv, shown, _ in todo]
            return
        self.store.levels.record(self.client, settled)
        if self.only is not None or self.claims is None:
            # The event path holds its SKUs for the whole pass: it writes in plain batches.
            chunks = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
            in_flight = 1
        else:
            chunks = self._claim_chunks(todo)
            # Two claims at once: the next is taken while the last writes of one are answered,
            # and an event waits for at most those levels (see `stokline.sync.stock.claims`).
            in_flight = 2
        slots = asyncio.Semaphore(in_flight)
        done = 0

        async def write(chunk: list[tuple[DesiredLevel, int | None, int | None]]) -> None:
            nonlocal done
            async with slots:
                mine = chunk
                if self.only is None and self.claims is not None:
                    ours, others = self.claims.claim([level for level, _, _ in chunk])
                    self.report.left_to_others += len(others)
                    keep = {id(level) for level in ours}
                    mine = [entry for entry in chunk if id(entry[0]) in keep]
                try:
                    await asyncio.gather(
                        *(self._push(level, shown, drift) for level, shown, drift in mine)
                    )
                finally:
                    if self.unsettled:
                        self.store.levels.forget(self.client, self.unsettled)
                        self.unsettled.clear()
                    if self.only is None and self.claims is not None:
                        self.claims.give_back(level for level, _, _ in chunk)
                done += len(chunk)
                if self.progress is not None:
                    self.progress(done, len(todo))

        tasks = [asyncio.ensure_future(write(chunk)) for chunk in chunks]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _claim_chunks(
        self, todo: list[tuple[DesiredLevel, int | None, int | None]]
    ) -> list[list[tuple[DesiredLevel, int | None, int | None]]]:
        """``todo`` in claims of about `CLAIM_SIZE` levels, a SKU's levels always in one."""
        assert self.claims is not None
        by_sku: dict[str, list[tuple[DesiredLevel, int | None, int | None]]] = {}
        for entry in todo:
            by_sku.setdefault(self.claims.key(entry[0]), []).append(entry)
        chunks: list[list[tuple[DesiredLevel, int | None, int | None]]] = [[]]
        for group in by_sku.values():
            if chunks[-1] and len(chunks[-1]) + len(group) > CLAIM_SIZE:
                chunks.append([])
            chunks[-1].extend(group)
        return [chunk for chunk in chunks if chunk]

    @staticmethod
    def _row(level: DesiredLevel, shown: int | None) -> dict[str, Any]:
        return {
            "sku": level.shopline_sku,
            "stokly_sku": level.stokly_sku,
            "inventory_item_id": level.inventory_item_id,
            "location": level.location_id,
            "shopline": shown,
            "sellable": level.available,
        }


async def sync_stock(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    dry_run: bool = False,
    trigger: str = "schedule",
    skus: set[str] | None = None,
    check_drift: bool = True,
    progress: Callable[[int, int], None] | None = None,
    locations: dict[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> StockReport:
    """One stock pass for ``mapping``'s client; returns what it did.

    ``skus`` (Stokly SKUs) limits the pass to those items, as the event path does; ``None`` is
    the full pass. ``check_drift`` also corrects levels changed in SHOPLINE since our last push.
    Failed pushes are counted in ``report.failed`` (``report.ok`` is False) and left for the next
    pass; unknown SHOPLINE SKUs become exceptions. A dry run reads everything and writes nothing,
    listing the levels it would push in ``report.would_push``. ``locations`` is Stokly's location
    index (name → id) when the caller has it already, e.g. from a cache. ``report.reconciliation``
    compares what the pass read with what it should be, and which of those it set right.

    A full pass reads SHOPLINE's levels of the items whose target changed and a rotating drift
    slice (`stokline.sync.stock.drift`); ``clock`` (default: the real one, in UTC) is when the
    pass starts, which sizes the slice. The rotation's cursor moves on only after a pass that
    checks drift and writes (not a dry run) has finished.

    A pass ends within ``syncs.stock.every`` (5 minutes when unset), however SHOPLINE or Stokly
    misbehave: it starts no request once that interval less one request timeout (30 s) has
    passed (`stokline.sync.stock.budget`; the time is the clients' clock). What it did not push
    then is left for the next pass, and ``report.errors`` starts with one line saying so:
    "... time budget of 270 s ran out: N level(s) not pushed; the next pass pushes them".
    """
    run = _Run(
        mapping,
        shopline,
        stokly,
        store,
        dry_run,
        trigger,
        progress,
        skus,
        check_drift,
        locations,
        clock or _utcnow,
    )
    # A pass ends within its schedule's interval whatever the APIs do (see
    # `stokline.sync.stock.budget`): past its budget it starts no request.
    budget = pass_budget(mapping, shopline, stokly)
    with deadline(budget, clock=shopline.clock, what=WHAT):
        try:
            report = await run.execute()
        except DeadlineError as exc:  # still reading: nothing can be pushed without the read
            reading = f"{exc.method} {exc.path}"
            run.report.errors.insert(0, out_of_time(budget, run.not_sent, reading))
            run.report.out_of_time = True
            return run.report
    if run.not_sent:
        report.errors.insert(0, out_of_time(budget, run.not_sent))
        report.out_of_time = True
    return report
