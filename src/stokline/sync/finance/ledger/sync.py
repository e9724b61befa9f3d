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

An order whose money does not balance to the minor unit, or cannot be translated, is set aside
alone: the rest of its group's journal is posted, and the group gets one exception per code naming
the orders. The money of orders not in Stokly yet (no sale order linked by the orders sync:
Stokly is the source of truth finance reconciles from) is, by ``syncs.finance.unimported``,
**held** out of the journals (default) or posted to ``accounts.suspense``; either way the group
gets a ``payout_variance`` exception for finance listing the orders and the amount, and the
report lists them (`LedgerReport.unimported`). Each run also looks back `CATCH_UP_DAYS` before
its period for groups with open exceptions, reads those days again and posts what they now add
— an order imported since, or whose money now adds up — as an adjustment of that day (with
suspense, the adjustment moves the money from suspense to sales and tax); then the exception
is resolved. A journal Stokly refuses is refused whole and is tried again the same way. If SHOPLINE cannot be read
completely, nothing at all is posted (a journal built from part of the money would be wrong).
A dry run reads SHOPLINE, Stokly and the store and writes nothing anywhere. With ``approved``
(batch key → content hash, from a dry run a person approved) only journals exactly as approved
are posted; one that changed since is reported and left for the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
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
    SetAside,
    build_journals,
    difference,
    lines_from_json,
    lines_to_json,
)
from stokline.sync.finance.read import (
    ORDER_LINK,
    Period,
    ShoplineMoney,
    read_shopline_money,
    with_refunds,
)
from stokline.sync.run import RunCost, SyncRun

__all__ = [
    "CATCH_UP_DAYS",
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
CATCH_UP_DAYS = 62
"""How far before a period a run looks for days with orders still set aside or not in Stokly,
to post them once they can be (older days are posted by a run of that day)."""
UNIMPORTED_CODE = "payout_variance"
"""The exception finance gets for money of orders not in Stokly yet."""
ACTIVE = ("open", "retrying")


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
        settings = self.mapping.syncs.finance
        assert settings is not None
        self.suspense = settings.accounts.suspense if settings.unimported == "suspense" else None
        self.waiting: set[str] = set()  # orders not in Stokly, of the money read last
        self.keep: dict[str, set[str]] = {}  # group → codes of exceptions still true
        self.report = LedgerReport(
            client=self.client,
            trigger=self.trigger,
            dry_run=self.dry,
            start=self.start,
            end=self.end,
            unimported_policy=settings.unimported_policy,
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
        return self._complete(money)

    def _unimported(self, money: ShoplineMoney) -> set[str]:
        """The orders of ``money`` that took money but are not in Stokly (no sale order linked
        by the orders sync): Stokly is the ledger's source of truth, so their money waits."""
        ids = list(money.transactions)
        return set(ids) - set(self.store.links.get_many(self.client, ORDER_LINK, ids))

    def _complete(self, money: ShoplineMoney) -> list[OrderMoney] | None:
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
        self.waiting = self._unimported(money)
        return [_order_money(money, order_id) for order_id in money.transactions]

    def _build(self, orders: list[OrderMoney], start: date, end: date) -> list[JournalDraft]:
        return build_journals(
            self.mapping, orders, start, end, unimported=self.waiting, suspense=self.suspense
        )

    # -- Stokly ---------------------------------------------------------------------------------

    async def _find(self, reference: str) -> Journal | None:
        async for journal in self.stokly.iter_journals(eq("reference", reference)):
            if journal.reference == reference:
                return journal
        return None

    # -- exceptions -----------------------------------------------------------------------------

    def _raise(
        self, journal: JournalDraft, code: str, message: str, payload: dict[str, Any]
    ) -> None:
        """One exception on the group's batch (refreshed, not repeated, while it lasts)."""
        team = self.mapping.operating_model.owner_of(code)
        self.report.add_exception(code, team, journal.base_key, message)
        if self.dry:
            return
        before = {
            r.code
            for r in self.store.exceptions.list(
                client=self.client, entity_kind=ENTITY, status=ACTIVE
            )
            if r.entity_id == journal.base_key
        }
        self.store.exceptions.raise_(
            self.client,
            code,
            ENTITY,
            journal.base_key,
            message,
            team=team,
            payload={
                "date": journal.key.day.isoformat(),
                "gateway": journal.key.gateway,
                "currency": journal.key.currency,
                **payload,
            },
        )
        if code not in before:
            self.report.exceptions_opened += 1

    def _refuse(self, journal: JournalDraft) -> None:
        self.report.refused.append(journal)
        for problem in journal.problems:
            self._raise(
                journal,
                problem.code,
                problem.message,
                {
                    "debits": str(journal.debits),
                    "credits": str(journal.credits),
                    "orders": list(journal.orders[:50]),
                },
            )

    def _orders_out(self, draft: JournalDraft) -> set[str]:
        """Raise the exceptions of the orders ``draft`` keeps out of (or in suspense on) its
        journal, one per code; list the orders not in Stokly on the report. Their codes."""
        codes: set[str] = set()
        by_code: dict[str, list[SetAside]] = {}
        for aside in draft.set_aside:
            by_code.setdefault(aside.code, []).append(aside)
            self.report.set_aside.append(
                {
                    "order": aside.label,
                    "shopline_id": aside.order_id,
                    "gateway": draft.key.gateway or "",
                    "day": draft.key.day.isoformat(),
                    "amount": str(aside.amount),
                    "code": aside.code,
                }
            )
        for code, asides in by_code.items():
            total = sum((a.amount for a in asides), Decimal(0))
            why = "; ".join(dict.fromkeys(a.message for a in asides[:10]))
            more = f" and {len(asides) - 10} more" if len(asides) > 10 else ""
            self._raise(
                draft,
                code,
                f"{len(asides)} order(s) of {draft.base_key} set aside, {total} "
                f"{draft.key.currency} (the rest of the journal goes on): {why}{more}",
                {
                    "orders": [a.label for a in asides[:50]],
                    "amount": str(total),
                    "set_aside": [
                        {"order": a.label, "shopline_id": a.order_id, "amount": str(a.amount)}
                        for a in asides[:50]
                    ],
                },
            )
            codes.add(code)
        if draft.unimported:
            rows = [u.row() for u in draft.unimported]
            self.report.unimported.extend(rows)
            total = sum((u.amount for u in draft.unimported), Decimal(0))
            self.report.unimported_total += total
            names = ", ".join(u.name for u in draft.unimported[:20])
            more = f" and {len(rows) - 20} more" if len(rows) > 20 else ""
            if self.suspense:
                what = (
                    f"posted to the suspense account {self.suspense}; moved to sales and tax by "
                    "an adjustment once they are in Stokly"
                )
            else:
                what = (
                    "held out of the journal; posted as an adjustment of this day by the first "
                    "run after they are in Stokly"
                )
            self._raise(
                draft,
                UNIMPORTED_CODE,
                f"{len(rows)} order(s) not in Stokly yet, {total} {draft.key.currency} on "
                f"{draft.base_key}, {what}: {names}{more}. Check the orders sync's exceptions "
                "for them.",
                {
                    "orders": [u.name for u in draft.unimported[:50]],
                    "amount": str(total),
                    "policy": self.report.unimported_policy,
                    "unimported": rows[:200],
                },
            )
            codes.add(UNIMPORTED_CODE)
        return codes

    def _settled(self, base: str, note: str, keep: set[str] | None = None) -> None:
        """Resolve the group's exceptions, but those of the codes in ``keep`` (still true)."""
        if self.dry:
            return
        if not keep:
            resolved = self.store.exceptions.resolve_entity(self.client, ENTITY, base, note)
            self.report.exceptions_resolved += len(resolved)
            return
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=ENTITY, status=ACTIVE
        ):
            if record.entity_id == base and record.code not in keep:
                self.store.exceptions.resolve(record.id, note)
                self.report.exceptions_resolved += 1

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
        self.keep[base] = self._orders_out(draft)
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
                self._settled(base, "posted", self.keep.get(base))
            elif draft.set_aside or draft.unimported:
                self._row(draft, "nothing to post: every order set aside or not in Stokly")
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
        self._settled(base, f"posted as journal {created.id}", self.keep.get(base))

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

    def _recorded(self, start: date, end: date) -> dict[str, list[LedgerBatch]]:
        """The batches recorded for the days ``start``..``end``, by group (base key)."""
        out: dict[str, list[LedgerBatch]] = {}
        day = start
        while day <= end:
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

    def _owed(self) -> dict[str, date]:
        """Groups of the days before the period (at most `CATCH_UP_DAYS`) with an open exception
        of the ledger: orders set aside or not in Stokly, a journal refused. Base key → day."""
        first = self.start - timedelta(days=CATCH_UP_DAYS)
        owed: dict[str, date] = {}
        for record in self.store.exceptions.list(
            client=self.client, entity_kind=ENTITY, status=ACTIVE
        ):
            payload = record.payload if isinstance(record.payload, dict) else {}
            try:
                day = date.fromisoformat(str(payload.get("date")))
            except ValueError:
                continue
            if first <= day < self.start:
                owed[record.entity_id] = day
        return owed

    async def _catch_up(self) -> None:
        """Post what the days before the period still owe, once it can be: an order now in
        Stokly, an order whose money now adds up. Those days are read again and only their
        groups with open exceptions are built again; what they add to what was posted is an
        adjustment of that day (`_group`), so nothing already posted is posted twice."""
        owed = self._owed()
        if not owed:
            return
        first, last = min(owed.values()), self.start - timedelta(days=1)
        try:
            money = await read_shopline_money(
                self.shopline, Period.of(self.mapping, first, last), refunds=True
            )
        except ConnectorError as exc:
            self.report.add_error(f"reading the days still owed ({first}..{last}) failed: {exc}")
            return
        unread = money.incomplete()
        if unread:
            self.report.add_error(
                f"the days still owed ({first}..{last}) wait: {len(unread)} order(s) could not "
                "be read"
            )
            return
        read = self.report.orders_read
        orders = self._complete(money)
        self.report.orders_read = read
        assert orders is not None
        recorded = self._recorded(first, last)
        for draft in self._build(orders, first, last):
            if draft.base_key in owed:
                await self._group(draft, recorded.get(draft.base_key, []))

    async def execute(self) -> LedgerReport:
        cost = RunCost(self.shopline, self.stokly)
        money = await self._read()
        if money is not None:
            drafts = self._build(money, self.start, self.end)
            recorded = self._recorded(self.start, self.end)
            by_base = {d.base_key: d for d in drafts}
            for base, batches in recorded.items():
                if base not in by_base and (draft := self._vanished(base, batches)) is not None:
                    by_base[base] = draft
            for base in sorted(by_base):
                await self._group(by_base[base], recorded.get(base, []))
            await self._catch_up()
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
