"""Payout reconciliation: SHOPLINE's money beside Stokly's, per gateway, day and currency.

SHOPLINE has no payout or settlement endpoint, so the reconciliation works from its transactions.
For each (gateway, day in the client's timezone, currency) of a period it sets three figures side
by side, each as money in, money out and net:

* **SHOPLINE** — the successful ``sale``/``capture`` (in) and ``refund`` (out) transactions of the
  day, read by `stokline.sync.finance.read` as the payments sync reads them (and as the journals do);
* **Stokly recorded** — the payment records [I] on the channel's Stokly sale orders paid that day
  (kind ``payment`` in, kind ``refund`` out), as `stokline.sync.finance.payments.sync` writes them, each
  carrying the gateway's transaction id;
* **Stokly ledger** — the journals stokline posted to Stokly [I] (reference ``client:…``, see
  `stokline.sync.finance.ledger.translate`) dated that day, adjustment batches included: on the gateway's
  ledger account, its receipts lines in and refunds lines out (told apart by their descriptions,
  `stokline.sync.finance.ledger.translate.parse_gateway_line`). Fee lines are shown beside, not compared
  (SHOPLINE's transactions carry no fee to compare them to).

**The ledger is the journals.** They are what finance's books show, so the ledger variance —
SHOPLINE net − ledger net — is the headline. A journal is a sum, though, with no order in it; the
orders behind a variance come from the payment records, which do name their orders: every order
whose SHOPLINE money on that row differs from what Stokly recorded for it (missing, a different
amount, recorded only in Stokly, or never imported at all) is listed. A row is a variance when
either comparison differs, so a wrong record shows even where totals happen to agree, and a
journal that misses money that came after it was posted names those orders ("awaits an
adjustment batch"). A row with money but no journal is ``not posted``. A mapping without a
finance sync expects no journals: its recorded payments are then the only comparison.

Read-only: nothing is written to either system or the store. Customer data never appears: orders
are named by their SHOPLINE name and ids only. SHOPLINE's money is the finance run's one read when
it is passed in (``money``); the rows and their rendering are in `stokline.sync.finance.payouts.report`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from stokline.config import Mapping
from stokline.connectors import ConnectorError, ShoplineClient, StoklyClient
from stokline.connectors.stokly.filters import and_, eq, gte, lte, one_of
from stokline.store import Store
from stokline.sync.finance.ledger.translate import FEES, RECEIPTS, REFUNDS, parse_gateway_line
from stokline.sync.finance.payments.translate import Movement, Period
from stokline.sync.finance.payouts.report import (
    COLUMNS,
    GroupReconciliation,
    LedgerFigures,
    OrderDifference,
    PayoutReconciliation,
    money_text,
)
from stokline.sync.finance.read import ORDER_LINK, ShoplineMoney, read_shopline_money
from stokline.sync.report import mask
from stokline.sync.run import RunCost, SyncContext

__all__ = [
    "COLUMNS",
    "GroupReconciliation",
    "OrderDifference",
    "PayoutReconciliation",
    "reconcile_payouts",
]

ZERO = Decimal(0)

# -- reading --------------------------------------------------------------------------------------


class _Ref(NamedTuple):
    """How an order is named in a variance: no customer data, only ids."""

    name: str
    shopline_id: str | None
    sale_order: str | None


@dataclass(eq=False, repr=False)
class _Reader(SyncContext):
    """One reconciliation: reads SHOPLINE, Stokly's records and ledger, and the store's links."""

    period: Period
    progress: Callable[[int, int], None] | None
    shared: ShoplineMoney | None = None

    def __post_init__(self) -> None:
        mapping = self.mapping
        self.channel = mapping.connections.stokly.channel_id
        finance = mapping.syncs.finance
        self.result = PayoutReconciliation(
            client=self.client,
            start=self.period.start,
            end=self.period.end,
            timezone=mapping.client.timezone,
            ledger_expected=finance is not None and finance.enabled,
        )
        self.groups: dict[tuple[str, date, str], GroupReconciliation] = {}
        # row → order key → [SHOPLINE signed, Stokly recorded signed]
        self.contributions: dict[tuple[str, date, str], dict[str, list[Decimal]]] = defaultdict(
            lambda: defaultdict(lambda: [ZERO, ZERO])
        )
        self.orders: dict[str, _Ref] = {}  # order key → how to name it
        self.moves: dict[tuple[str, date, str], list[Movement]] = defaultdict(list)

    def _group(self, gateway: str, day: date, currency: str) -> GroupReconciliation:
        key = (gateway, day, currency)
        if key not in self.groups:
            self.groups[key] = GroupReconciliation(
                gateway, day, currency, self.result.ledger_expected
            )
        return self.groups[key]

    # -- SHOPLINE -----------------------------------------------------------------------------

    def _shopline(self, money: ShoplineMoney) -> dict[tuple[str, str], str]:
        """Add SHOPLINE's movements; return (kind, gateway transaction id) → order id."""
        links = self.store.links.get_many(self.client, ORDER_LINK, list(money.movements))
        tied: dict[tuple[str, str], str] = {}
        for order_id, moves in money.movements.items():
            order = money.orders[order_id]
            link = links.get(order_id)
            self.orders[order_id] = _Ref(
                order.name or order_id, order_id, link.stokly_id if link else None
            )
            for m in moves:
                if m.day not in self.period:  # a widened read holds other days too
                    continue
                key = (m.gateway, m.day, m.currency)
                self._group(*key).shopline.add(m.signed)
                self.contributions[key][order_id][0] += m.signed
                self.moves[key].append(m)
                tied[(m.kind, m.gateway_transaction_id)] = order_id
        return tied

    # -- Stokly's records -----------------------------------------------------------------------

    async def _recorded(self, tied: dict[tuple[str, str], str], money: ShoplineMoney) -> None:
        """Add Stokly's payment records of the period, each to the SHOPLINE order it is for.

        A record is tied to its order by its gateway transaction id; one SHOPLINE does not show
        on these days is tied through its sale order: the store's link, else the sale order's
        own ``sourceReferenceId`` in Stokly.
        """
        first, after = self.period.bounds()
        wanted = and_(eq("sourceId", self.channel), gte("paidAt", first), lte("paidAt", after))
        kept = []
        async for payment in self.stokly.iter_payments(filter=wanted):
            if payment.paidAt is None or payment.kind not in ("payment", "refund"):
                continue
            day = self.period.day_of(payment.paidAt)
            if day in self.period:
                kept.append((payment, day))
        untied = {p.saleOrderId for p, _ in kept if (p.kind, p.transactionId) not in tied}
        owners = await self._owners_of(untied, money)
        for payment, day in kept:
            signed = payment.amount if payment.kind == "payment" else -payment.amount
            gateway = (payment.gateway or "").strip() or self._gateway_of(payment.method)
            key = (gateway, day, payment.currency or self.mapping.client.currency)
            self._group(*key).recorded.add(signed)
            order_key = tied.get((payment.kind, payment.transactionId))
            if order_key is None:
                order_key = owners[payment.saleOrderId]
            self.contributions[key][order_key][1] += signed

    async def _owners_of(self, sale_orders: set[str], money: ShoplineMoney) -> dict[str, str]:
        """Sale order id → the key of the SHOPLINE order it was imported from."""
        owners: dict[str, str] = {}
        for sale_order in sorted(sale_orders):
            link = self.store.links.by_stokly(self.client, ORDER_LINK, sale_order)
            if link is not None:
                owners[sale_order] = link.shopline_id
        unknown = sorted(sale_orders - set(owners))
        for first in range(0, len(unknown), 100):
            batch = unknown[first : first + 100]
            async for sale in self.stokly.iter_sale_orders(filter=one_of("saleOrderId", batch)):
                if sale.sourceId == self.channel and sale.sourceReferenceId:
                    owners[sale.saleOrderId] = sale.sourceReferenceId
        for sale_order in sale_orders:
            order_id = owners.setdefault(sale_order, f"stokly:{sale_order}")
            if order_id.startswith("stokly:"):
                self.orders.setdefault(order_id, _Ref(f"sale order {sale_order}", None, sale_order))
                continue
            known = money.orders.get(order_id)
            name = known.name if known is not None and known.name else f"order {order_id}"
            previous = self.orders.get(order_id)
            self.orders[order_id] = _Ref(previous.name if previous else name, order_id, sale_order)
        return owners

    async def _find_sale_orders(self) -> None:
        """Sale orders of the SHOPLINE orders behind a difference that the store has no link for
        (a store that is new or elsewhere): looked up in Stokly by the channel's order id."""
        wanted = {
            order_key
            for rows in self.contributions.values()
            for order_key, (shop, stok) in rows.items()
            if shop != stok
            and not order_key.startswith("stokly:")
            and (ref := self.orders.get(order_key)) is not None
            and ref.sale_order is None
        }
        if not wanted:
            return
        found = await self.stokly.find_sale_orders_by_source(self.channel, sorted(wanted))
        for sale in found:
            order_id = sale.sourceReferenceId
            ref = self.orders.get(order_id or "")
            if ref is not None and sale.stage != "removed":
                self.orders[ref.shopline_id or ""] = ref._replace(sale_order=sale.saleOrderId)

    def _gateway_of(self, method: int | None) -> str:
        names = [g.gateway for g in self.mapping.payments.gateways if g.stokly_method == method]
        return names[0] if len(names) == 1 else f"method {method}"

    # -- Stokly's ledger ------------------------------------------------------------------------

    async def _ledger(self) -> None:
        gateways_of: dict[str, list[str]] = defaultdict(list)
        for g in self.mapping.payments.gateways:
            gateways_of[g.ledger_account].append(g.gateway)
        prefix = f"{self.client}:"
        dated = and_(
            gte("date", self.period.start.isoformat()), lte("date", self.period.end.isoformat())
        )
        async for journal in self.stokly.iter_journals(filter=dated):
            if not journal.reference.startswith(prefix):
                continue  # not stokline's: payouts, manual entries
            try:
                day = date.fromisoformat(journal.date[:10])
            except ValueError:
                continue
            if day not in self.period:
                continue
            for line in journal.lines:
                names = gateways_of.get(line.account)
                if not names:
                    continue
                parsed = parse_gateway_line(line.description or "")
                if parsed is not None:
                    what, gateway = parsed
                else:
                    what = "other"
                    gateway = names[0] if len(names) == 1 else f"account {line.account}"
                group = self._group(gateway, day, journal.currency)
                if group.ledger is None:
                    group.ledger = LedgerFigures()
                ledger = group.ledger
                net = line.debit - line.credit
                # An adjustment batch may put a line on the other side: it corrects, not adds.
                if what == RECEIPTS:
                    ledger.inflow += net
                elif what == REFUNDS:
                    ledger.outflow -= net
                elif what == FEES:
                    ledger.fees -= net
                else:
                    ledger.add(net)
                ledger.references.add(journal.reference)

    # -- verdicts -----------------------------------------------------------------------------

    def _explain(self, key: tuple[str, date, str], group: GroupReconciliation) -> None:
        for order_key, (shop, stok) in self.contributions.get(key, {}).items():
            if shop == stok:
                continue
            name, shopline_id, sale_order = self.orders.get(order_key, _Ref(order_key, None, None))
            if not stok:
                why = "not recorded in Stokly" if sale_order else "order not imported into Stokly"
            elif not shop:
                why = "recorded in Stokly, but SHOPLINE shows no such money on this row"
            else:
                why = "recorded in Stokly with another amount"
            group.orders.append(OrderDifference(name, shopline_id, sale_order, shop, stok, why))
        group.orders.sort(key=lambda o: o.order)
        if group.ledger_expected and group.ledger is None:
            if not group.shopline.empty:
                group.notes.append(
                    f"no journal posted for this row: post the finance batch for {group.day}"
                )
            return
        if group.variance_ledger and not group.orders and group.ledger is not None:
            late = self._late(key, group, group.ledger)
            for order_id, amount in late.items():
                name, shopline_id, sale_order = self.orders[order_id]
                group.orders.append(
                    OrderDifference(
                        name,
                        shopline_id,
                        sale_order,
                        amount,
                        ZERO,
                        "not in the ledger yet: the money came after the journal was posted;"
                        " the next finance run posts it as an adjustment batch",
                    )
                )
            if not late:
                refs = ", ".join(sorted(group.ledger.references))
                group.notes.append(
                    f"the posted journal(s) {refs} differ from SHOPLINE's money by"
                    f" {money_text(group.variance_ledger)} and no order explains it:"
                    " check the journal"
                )

    def _late(
        self, key: tuple[str, date, str], group: GroupReconciliation, ledger: LedgerFigures
    ) -> dict[str, Decimal]:
        """Orders whose money the ledger lacks because it came after the journal was posted.

        Money missing from a journal that was right when posted is the newest money of its
        kind: the newest payments (or refunds) of the row are taken until they add up to what
        the ledger lacks. Nothing is named unless they add up exactly.
        """
        late: dict[str, Decimal] = defaultdict(lambda: ZERO)
        gaps = (
            ("payment", group.shopline.inflow - ledger.inflow),
            ("refund", group.shopline.outflow - ledger.outflow),
        )
        for kind, gap in gaps:
            if gap < 0:
                return {}
            if not gap:
                continue
            newest = sorted(
                (m for m in self.moves.get(key, []) if m.kind == kind and m.at is not None),
                key=lambda m: m.at or datetime.min,
                reverse=True,
            )
            total, picked = ZERO, []
            for movement in newest:
                total += movement.amount
                picked.append(movement)
                if total >= gap:
                    break
            if total != gap:
                return {}
            for movement in picked:
                late[movement.order_id] += movement.signed
        return dict(sorted(late.items()))

    async def run(self) -> PayoutReconciliation:
        cost = RunCost(self.shopline, self.stokly)
        try:
            money = self.shared
            if money is None:
                money = await read_shopline_money(
                    self.shopline, self.period, progress=self.progress
                )
        except ConnectorError as exc:
            self.result.errors.append(mask(f"reading SHOPLINE's orders failed: {exc}"))
            return cost.charge(self.result)
        for order_id, why in money.incomplete().items():
            known = money.orders.get(order_id)
            name = (known.name if known is not None else None) or order_id
            self.result.errors.append(mask(f"the money of {name} could not be read: {why}"))
        tied = self._shopline(money)
        try:
            await self._recorded(tied, money)
            await self._find_sale_orders()
        except ConnectorError as exc:
            self.result.errors.append(mask(f"reading Stokly's payment records failed: {exc}"))
        if self.result.ledger_expected:
            try:
                await self._ledger()
            except ConnectorError as exc:
                self.result.errors.append(mask(f"reading Stokly's journals failed: {exc}"))
        for key, group in self.groups.items():
            self._explain(key, group)
        self.result.groups = sorted(self.groups.values(), key=lambda g: g.key)
        return cost.charge(self.result)


async def reconcile_payouts(
    mapping: Mapping,
    *,
    shopline: ShoplineClient,
    stokly: StoklyClient,
    store: Store,
    start: date,
    end: date,
    progress: Callable[[int, int], None] | None = None,
    money: ShoplineMoney | None = None,
) -> PayoutReconciliation:
    """SHOPLINE's transactions and refunds beside Stokly's records and ledger, ``start``..``end``.

    Read-only. Reads that fail are listed in ``errors`` (``ok`` is False then) and the rest is
    still compared. ``progress(done, total)`` follows the reading of SHOPLINE's transactions.
    ``money`` is SHOPLINE's money of the same period already read (`read_shopline_money`, the
    finance run's one read): SHOPLINE is then not read at all. Raises ``ValueError`` for a
    period that ends before it starts, or that ``money`` was not read for.
    """
    period = Period.of(mapping, start, end)
    if money is not None:
        money.check(period)
    reader = _Reader(
        mapping, shopline, stokly, store, period=period, progress=progress, shared=money
    )
    return await reader.run()
