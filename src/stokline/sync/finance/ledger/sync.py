"""Batched ledger posting: a period's SHOPLINE money into balanced Stokly journals, each once.

One pass takes the orders that moved money in the period (``updated_at`` since its start,
created before its end), their transactions and — where money went back on the period's days —
their refunds, as `stokline.sync.finance.read` reads them (the same read the payments sync and the
payout reconciliation use; the finance flow reads it once and passes it in as ``money``), and
builds one journal per group (`stokline.sync.finance.ledger.translate`). Then, per group:

1. The batches already recorded for the group are read from the store. A batch left ``posting``
   (a run that crashed between Stokly's answer and recording it, or before posting at all) is
   looked up in Stokly by its reference: found, it is recorded as posted with the lines Stokly
   has; not found, its key is free to post again.
2. What the group adds to what was posted is computed: nothing → "already posted" (a rerun posts
   nothing and says so); the whole journal when nothing was posted; otherwise an **adjustment**
   batch ``<key>:adjN`` holding only the difference (a late refund, a payment that arrived after
   the day was posted). A posted batch is never rewritten. The same way, a ledger account
   changed in the mapping moves the amounts to the new account, and a group posted before that
   has no money now (``group_by`` changed) is reversed.
3. The batch is claimed in the store (``posting``), posted with the batch key as the Stokly
   ``reference`` — which Stokly keeps unique [I], so a second post of the same key is a 409 and
   never a second journal — and recorded ``posted`` with the journal id, plus an audit row.

A journal that does not balance to the minor unit, or whose money cannot be translated, is refused
whole: nothing of it is posted and it becomes an exception for finance. If SHOPLINE cannot be read
completely, nothing at all is posted (a journal built from part of the money would be wrong).
A dry run reads SHOPLINE, Stokly and the store and writes nothing anywhere. With ``approved``
(batch key → content hash, from a dry run a person approved) only journals exactly as approved
are posted; one that changed since is reported and left for the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stokline.config import Mapping as ClientMapping
from stokline.connectors import ApiError, ConnectorError, ShoplineClient, StoklyClient, is_transient
from stokline.connectors.stokly.filters import eq
from stokline.connectors.stokly.invented import Journal
from stokline.store import Store
from stokline.store.records import LedgerBatch
from stokline.sync.finance.ledger.report import LedgerReport, journal_row
from stokline.sync.finance.ledger.translate import (
    GroupKey,
    JournalDraft,
    JournalLine,
    OrderMoney,
    Problem,
    build_journals,
    difference,
    lines_from_json,
    lines_to_json,
)
from stokline.sync.finance.read import Period, ShoplineMoney, read_shopline_money, with_refunds
from stokline.sync.run import RunCost, SyncRun

__all__ = [
    "MAX_PERIOD_DAYS",
    "LedgerError",
    "LedgerReport",
    "PeriodError",
    "default_period",
    "post_ledger",
    "resolve_period",
]

ACTOR = "stokline.sync.ledger"
ENTITY = "ledger_batch"
MAX_PERIOD_DAYS = 366


class LedgerError(ValueError):
    """Why a ledger pass cannot start at all, said in one line."""


class PeriodError(LedgerError):
    """A period that cannot be posted (backwards, in the future, too long)."""


def _today(mapping: ClientMapping, now: datetime | None) -> date:
    return (now or datetime.now(UTC)).astimezone(mapping.client.tz).date()


def default_period(mapping: ClientMapping, now: datetime | None = None) -> tuple[date, date]:
    """Yesterday in the client's timezone, as (start, end)."""
    yesterday = _today(mapping, now) - timedelta(days=1)
    return yesterday, yesterday


def resolve_period(
    mapping: ClientMapping,
    start: date | None,
    end: date | None,
    now: datetime | None = None,
) -> tuple[date, date]:
    """The period to post: yesterday when neither end is given; one day when only one is.

    Days are the client's (``client.timezone``). Raises `PeriodError` for a period that ends
    before it starts, ends after today, or spans more than `MAX_PERIOD_DAYS` days.
    """
    if start is None and end is None:
        return default_period(mapping, now)
    start = start or end
    end = end or start
    assert start is not None and end is not None
    if start > end:
        raise PeriodError(f"the period starts on {start}, after it ends on {end}")
    today = _today(mapping, now)
    if end > today:
        raise PeriodError(
            f"the period ends on {end}, after today ({today} in {mapping.client.timezone})"
        )
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodError(
            f"the period {start}..{end} spans {(end - start).days + 1} days; post at most "
            f"{MAX_PERIOD_DAYS} at a time"
        )
    return start, end


def _order_money(money: ShoplineMoney, order_id: str) -> OrderMoney:
    """One order's money as the journal builder takes it (SHOPLINE's records as plain dicts)."""
    return OrderMoney(
        money.orders[order_id].model_dump(),
        [t.model_dump() for t in money.transactions[order_id]],
        [r.model_dump() for r in money.refunds.get(order_id, [])],
    )


def _totals(journal: JournalDraft) -> dict[str, Any]:
    """What the store keeps of a batch: its group, its lines and hash, the orders behind it."""
    return {
        "base": journal.base_key,
        "date": journal.key.day.isoformat(),
        "gateway": journal.key.gateway,
        "currency": journal.key.currency,
        "hash": journal.content_hash,
        "debits": str(journal.debits),
        "lines": lines_to_json(journal.lines),
        "orders": list(journal.orders[:500]),
    }


def _journal_lines(journal: Journal) -> list[JournalLine]:
    return lines_from_json(line.model_dump() for line in journal.lines)


def _base_of(batch: LedgerBatch) -> str:
    totals = batch.totals if isinstance(batch.totals, dict) else {}
    return str(totals.get("base") or batch.batch_key.split(":adj", 1)[0])


# ---------------------------------------------------------------------------------------------
# The pass
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class _Run(SyncRun):
    """One posting run of the ledger; `post_ledger` is its public face."""

    start: date
    end: date
    approved: Mapping[str, str] | None
    approval_note: str | None
    shared: ShoplineMoney | None = None

    def __post_init__(self) -> None:
        self.period = Period.of(self.mapping, self.start, self.end)
        self.report = LedgerReport(
            client=self.client,
            trigger=self.trigger,
            dry_run=self.dry,
            start=self.start,
            end=self.end,
        )

    # -- reading SHOPLINE -----------------------------------------------------------------------

    def _unreadable(self, why: str) -> None:
        self.report.fetch_ok = False
        self.report.add_error(f"reading SHOPLINE's money failed, nothing was posted: {why}")

    async def _read(self) -> list[OrderMoney] | None:
        """Every order's money, or None when any of it could not be read (then nothing is
        posted: a journal built from part of the money would be wrong)."""
        try:
            if self.shared is None:
                money = await read_shopline_money(
                    self.shopline, self.period, refunds=True, progress=self.progress
                )
            else:  # read once for the finance run; only refunds it lacks are read here
                money = await with_refunds(self.shopline, self.shared, progress=self.progress)
        except ConnectorError as exc:
            self._unreadable(str(exc))
            return None
        # A journal built without one order's money would be wrong: nothing is posted until all
        # of it reads (a malformed order is also one exception of the payments sync's).
        unread = money.incomplete()
        if unread:
            order_id, why = sorted(unread.items())[0]
            known = money.orders.get(order_id)
            name = (known.name if known is not None else None) or order_id
            more = f" (and {len(unread) - 1} more order(s))" if len(unread) > 1 else ""
            self._unreadable(f"{name} {why}{more}")
            return None
        self.report.orders_read = len(money.transactions)
        return [_order_money(money, order_id) for order_id in money.transactions]

    # -- Stokly ---------------------------------------------------------------------------------

    async def _find(self, reference: str) -> Journal | None:
        async for journal in self.stokly.iter_journals(eq("reference", reference)):
            if journal.reference == reference:
                return journal
        return None

    # -- exceptions -----------------------------------------------------------------------------

    def _refuse(self, journal: JournalDraft) -> None:
        self.report.refused.append(journal)
        model = self.mapping.operating_model
        for problem in journal.problems:
            team = model.owner_of(problem.code)
            self.report.add_exception(problem.code, team, journal.base_key, problem.message)
            if self.dry:
                continue
            before = {
                r.code
                for r in self.store.exceptions.list(
                    client=self.client, entity_kind=ENTITY, status=("open", "retrying")
                )
                if r.entity_id == journal.base_key
            }
            self.store.exceptions.raise_(
                self.client,
                problem.code,
                ENTITY,
                journal.base_key,
                problem.message,
                team=team,
                payload={
                    "date": journal.key.day.isoformat(),
                    "gateway": journal.key.gateway,
                    "currency": journal.key.currency,
                    "debits": str(journal.debits),
                    "credits": str(journal.credits),
                    "orders": list(journal.orders[:50]),
                },
            )
            if problem.code not in before:
                self.report.exceptions_opened += 1

    def _settled(self, base: str, note: str) -> None:
        if self.dry:
            return
        resolved = self.store.exceptions.resolve_entity(self.client, ENTITY, base, note)
        self.report.exceptions_resolved += len(resolved)

    # -- one group ------------------------------------------------------------------------------

    def _row(self, journal: JournalDraft, outcome: str, journal_id: str | None = None) -> None:
        self.report.batches.append(
            {**journal_row(journal), "outcome": outcome, "journal": journal_id or ""}
        )

    async def _posted_lines(
        self, batches: list[LedgerBatch]
    ) -> tuple[list[JournalLine], list[str], str | None]:
        """A group's lines already in the ledger, their journal ids, and a claimed key that never
        reached the ledger (free to post again)."""
        lines: list[JournalLine] = []
        ids: list[str] = []
        free: str | None = None
        for batch in batches:
            totals = batch.totals if isinstance(batch.totals, dict) else {}
            if batch.status == "posted":
                lines += lines_from_json(totals.get("lines") or [])
                ids.append(batch.journal_id or "?")
                continue
            found = await self._find(batch.batch_key)
            if found is None:
                free = batch.batch_key
                continue
            posted = _journal_lines(found)
            lines += posted
            ids.append(found.journalId)
            self.report.recovered += 1
            if not self.dry:
                self.store.batches.mark_posted(
                    self.client,
                    batch.batch_key,
                    found.journalId,
                    {**totals, "lines": lines_to_json(posted)},
                )
        return lines, ids, free

    async def _group(self, draft: JournalDraft, batches: list[LedgerBatch]) -> None:
        base = draft.base_key
        try:
            posted, ids, free = await self._posted_lines(batches)
        except ConnectorError as exc:
            self.report.add_error(f"{base}: looking the journal up in Stokly failed: {exc}")
            self._row(draft, "not finished: Stokly lookup failed")
            return
        if draft.refused:
            self._refuse(draft)
            self._row(draft, "refused: " + ", ".join(dict.fromkeys(p.code for p in draft.problems)))
            return
        if free is not None:
            target = free
        elif batches:
            target = f"{base}:adj{len(batches)}"
        else:
            target = base
        journal = difference(draft, posted, batch=target)
        if journal.empty:
            # Nothing new. Said only where something was posted (not for a claim that never
            # reached Stokly of money that has gone since).
            if ids:
                self.report.already_posted += 1
                self._row(draft, "already posted", ", ".join(ids))
                self._settled(base, "posted")
            return
        if not journal.balanced:  # both sides balance, so neither can their difference
            message = (
                f"the adjustment {target} does not balance: {journal.debits} != {journal.credits}"
            )
            self._refuse(replace(journal, problems=(Problem("ledger_imbalance", message),)))
            self._row(journal, "refused: ledger_imbalance")
            return
        adjustment = target != base
        if self.approved is not None and self.approved.get(target) != journal.content_hash:
            self.report.not_approved += 1
            why = "changed since it was approved" if target in self.approved else "not approved"
            self._row(journal, f"not posted: {why}")
            return
        self.report.journals.append(journal)
        if self.dry:
            self.report.adjustments += adjustment
            self._row(journal, "would post adjustment" if adjustment else "would post")
            return
        await self._post(journal, base, claimed=free is not None, adjustment=adjustment)

    async def _post(
        self, journal: JournalDraft, base: str, *, claimed: bool, adjustment: bool
    ) -> None:
        key = journal.batch_key
        totals = _totals(journal)
        if not claimed and not self.store.batches.claim(self.client, key, totals):
            self.report.journals.remove(journal)
            self.report.busy += 1
            self._row(journal, "skipped: another run is posting it")
            return
        try:
            created = await self.stokly.create_journal(journal.payload())
        except ApiError as exc:
            if exc.status == 409:
                await self._found_after_conflict(journal, totals)
                return
            self.report.journals.remove(journal)
            if is_transient(exc):
                self.report.add_error(f"posting {key} failed for now: {exc}")
                self._row(journal, "not finished: Stokly unavailable (retried next run)")
                return
            message = f"Stokly refused journal {key}: {exc.api_message or exc}"
            code = "ledger_imbalance" if exc.status == 422 else "api_rejected"
            self._refuse(replace(journal, problems=(Problem(code, message),)))
            self._row(journal, f"refused by Stokly (HTTP {exc.status})")
            return
        except ConnectorError as exc:
            # No clear answer: the journal may exist. The next run looks it up by reference.
            self.report.journals.remove(journal)
            self.report.add_error(f"posting {key} had no clear answer: {exc}")
            self._row(journal, "not finished: no answer from Stokly (checked next run)")
            return
        self.store.batches.mark_posted(self.client, key, created.id, totals)
        self.store.audit.record(
            self.client,
            ACTOR,
            "stokly",
            "post_adjustment" if adjustment else "post_journal",
            key,
            created.id,
            {
                "date": journal.key.day.isoformat(),
                "gateway": journal.key.gateway,
                "currency": journal.key.currency,
                "debits": str(journal.debits),
                "lines": len(journal.lines),
                "hash": journal.content_hash,
                "trigger": self.trigger,
                "approved": self.approved is not None,
                "approval_note": self.approval_note,
            },
        )
        self.report.posted += 1
        self.report.adjustments += adjustment
        self._row(journal, "adjustment posted" if adjustment else "posted", created.id)
        self._settled(base, f"posted as journal {created.id}")

    async def _found_after_conflict(self, journal: JournalDraft, totals: dict[str, Any]) -> None:
        key = journal.batch_key
        self.report.journals.remove(journal)
        try:
            found = await self._find(key)
        except ConnectorError as exc:
            found = None
            self.report.add_error(f"{key}: Stokly has it (409) but looking it up failed: {exc}")
        if found is None:
            self.report.add_error(f"{key}: Stokly answered 409 but no journal has this reference")
            self._row(journal, "not finished: conflict in Stokly")
            return
        self.store.batches.mark_posted(
            self.client,
            key,
            found.journalId,
            {**totals, "lines": lines_to_json(_journal_lines(found))},
        )
        self.report.recovered += 1
        self._row(journal, "already in Stokly (recorded now)", found.journalId)

    # -- the run --------------------------------------------------------------------------------

    def _recorded(self) -> dict[str, list[LedgerBatch]]:
        """The batches recorded for the period's days, by group (base key)."""
        out: dict[str, list[LedgerBatch]] = {}
        day = self.start
        while day <= self.end:
            for batch in self.store.batches.list(self.client, f"{self.client}:{day.isoformat()}:"):
                out.setdefault(_base_of(batch), []).append(batch)
            day += timedelta(days=1)
        return out

    def _vanished(self, base: str, batches: list[LedgerBatch]) -> JournalDraft | None:
        """An empty journal for a group posted before that has no money now (it is reversed)."""
        totals = next((b.totals for b in batches if isinstance(b.totals, dict)), None)
        if not totals or not totals.get("date") or not totals.get("currency"):
            return None
        key = GroupKey(
            date.fromisoformat(totals["date"]), totals.get("gateway"), str(totals["currency"])
        )
        return JournalDraft(self.client, key, base, ())

    async def execute(self) -> LedgerReport:
        cost = RunCost(self.shopline, self.stokly)
        money = await self._read()
        if money is not None:
            drafts = build_journals(self.mapping, money, self.start, self.end)
            recorded = self._recorded()
            by_base = {d.base_key: d for d in drafts}
            for base, batches in recorded.items():
                if base not in by_base and (draft := self._vanished(base, batches)) is not None:
                    by_base[base] = draft
            for base in sorted(by_base):
                await self._group(by_base[base], recorded.get(base, []))
        return cost.charge(self.report)


async def post_ledger(
    mapping: ClientMapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    start: date | None = None,
    end: date | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    trigger: str = "manual",
    approved: Mapping[str, str] | None = None,
    approval_note: str | None = None,
    money: ShoplineMoney | None = None,
) -> LedgerReport:
    """Post the balanced journals of ``start``..``end`` (default: yesterday) for the mapping's client.

    Idempotent per batch key: a rerun posts nothing new and reports "already posted"; money that
    arrived after a batch was posted goes into an adjustment batch. Refused journals become
    exceptions, never errors. Transient failures and unclear answers are in ``report.errors``
    (``report.ok`` False): the next run finishes the work without posting anything twice.
    ``approved`` (batch key → content hash) restricts posting to journals exactly as approved.
    ``money`` is SHOPLINE's money of the same period already read (`read_shopline_money`; the
    finance flow's preview and post share one read): without it, it is read here. Refunds it
    lacks are read here; ``money`` itself is never changed. Raises `PeriodError` for a period
    that cannot be posted, ``ValueError`` when ``money`` was read for another period.
    """
    if mapping.syncs.finance is None:
        raise LedgerError(f"{mapping.client.name}: the mapping has no syncs.finance section")
    first, last = resolve_period(mapping, start, end)
    if money is not None:
        money.check(Period.of(mapping, first, last))
    run = _Run(
        mapping,
        shopline,
        stokly,
        store,
        dry_run,
        trigger,
        progress,
        first,
        last,
        approved,
        approval_note,
        money,
    )
    return await run.execute()
