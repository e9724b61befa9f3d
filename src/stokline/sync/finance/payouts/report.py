"""What a payout reconciliation found: rows per (gateway, day, currency), variances, the orders
behind them, and how to show them (terminal rows, CSV, markdown for a Prefect artifact).

The figures are filled in by `stokline.sync.finance.payouts.reconcile`, which reads both systems; this module only
holds and renders them. Money is shown as text to the penny at least (never rounded away), and
orders are named by their SHOPLINE name and ids only: no customer data.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any

from stokline.sync.report import mask

__all__ = [
    "BALANCED",
    "COLUMNS",
    "NOT_POSTED",
    "VARIANCE",
    "GroupReconciliation",
    "LedgerFigures",
    "MoneyFlow",
    "OrderDifference",
    "PayoutReconciliation",
    "money_text",
]

ZERO = Decimal(0)
CENT = Decimal("0.01")
BALANCED, VARIANCE, NOT_POSTED = "balanced", "variance", "not posted"

COLUMNS = (
    "gateway",
    "day",
    "currency",
    "shopline_in",
    "shopline_out",
    "shopline_net",
    "stokly_in",
    "stokly_out",
    "stokly_net",
    "ledger_in",
    "ledger_out",
    "ledger_net",
    "ledger_fees",
    "variance_ledger",
    "variance_recorded",
    "status",
    "orders",
)
"""The columns of every row, in order (CSV, Prefect table and markdown alike)."""


def money_text(amount: Decimal | None) -> str:
    """Money as text, at least to the penny ("" for none), so tables and CSV show it exactly."""
    if amount is None:
        return ""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return str(amount)  # a currency with three decimals: shown as it is, never rounded
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class MoneyFlow:
    """Money in and out of a gateway."""

    inflow: Decimal = ZERO
    outflow: Decimal = ZERO

    def add(self, signed: Decimal) -> None:
        if signed >= 0:
            self.inflow += signed
        else:
            self.outflow -= signed

    @property
    def net(self) -> Decimal:
        return self.inflow - self.outflow

    @property
    def empty(self) -> bool:
        return not self.inflow and not self.outflow


@dataclass
class LedgerFigures(MoneyFlow):
    """What the posted journals of one row hold on the gateway's ledger account."""

    fees: Decimal = ZERO
    references: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class OrderDifference:
    """One order behind a variance: its SHOPLINE money on the row beside Stokly's record."""

    order: str
    shopline_id: str | None
    sale_order: str | None
    shopline: Decimal
    stokly: Decimal
    why: str

    @property
    def difference(self) -> Decimal:
        return self.shopline - self.stokly

    def row(self) -> dict[str, str]:
        return {
            "order": self.order,
            "shopline_id": self.shopline_id or "",
            "sale_order": self.sale_order or "",
            "shopline": money_text(self.shopline),
            "stokly": money_text(self.stokly),
            "difference": money_text(self.difference),
            "why": mask(self.why),
        }


@dataclass
class GroupReconciliation:
    """One (gateway, day, currency): the three figures, the verdict and the orders behind it."""

    gateway: str
    day: date
    currency: str
    ledger_expected: bool
    shopline: MoneyFlow = field(default_factory=MoneyFlow)
    recorded: MoneyFlow = field(default_factory=MoneyFlow)
    ledger: LedgerFigures | None = None
    orders: list[OrderDifference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[date, str, str]:
        return (self.day, self.gateway, self.currency)

    @property
    def ledger_net(self) -> Decimal:
        return self.ledger.net if self.ledger is not None else ZERO

    @property
    def variance_ledger(self) -> Decimal | None:
        """SHOPLINE net − ledger net (None when the mapping posts no journals)."""
        return self.shopline.net - self.ledger_net if self.ledger_expected else None

    @property
    def variance_recorded(self) -> Decimal:
        """SHOPLINE net − Stokly recorded net."""
        return self.shopline.net - self.recorded.net

    @property
    def status(self) -> str:
        if self.ledger_expected and self.ledger is None:
            return NOT_POSTED
        if self.variance_recorded or self.variance_ledger or self.orders:
            return VARIANCE
        return BALANCED

    @property
    def is_variance(self) -> bool:
        return self.status != BALANCED

    def row(self) -> dict[str, str]:
        ledger = self.ledger
        return {
            "gateway": self.gateway,
            "day": self.day.isoformat(),
            "currency": self.currency,
            "shopline_in": money_text(self.shopline.inflow),
            "shopline_out": money_text(self.shopline.outflow),
            "shopline_net": money_text(self.shopline.net),
            "stokly_in": money_text(self.recorded.inflow),
            "stokly_out": money_text(self.recorded.outflow),
            "stokly_net": money_text(self.recorded.net),
            "ledger_in": money_text(ledger.inflow) if ledger else "",
            "ledger_out": money_text(ledger.outflow) if ledger else "",
            "ledger_net": money_text(ledger.net) if ledger else "",
            "ledger_fees": money_text(ledger.fees) if ledger and ledger.fees else "",
            "variance_ledger": money_text(self.variance_ledger),
            "variance_recorded": money_text(self.variance_recorded),
            "status": self.status,
            "orders": " ".join(o.order for o in self.orders),
        }

    def variance(self) -> dict[str, Any]:
        """The row as a variance: its figures, the orders behind it and what to look at."""
        return {
            "gateway": self.gateway,
            "day": self.day.isoformat(),
            "currency": self.currency,
            "status": self.status,
            "shopline_net": money_text(self.shopline.net),
            "stokly_net": money_text(self.recorded.net),
            "ledger_net": money_text(self.ledger.net) if self.ledger else "",
            "variance_ledger": money_text(self.variance_ledger),
            "variance_recorded": money_text(self.variance_recorded),
            "orders": [o.row() for o in self.orders],
            "notes": [mask(n) for n in self.notes],
        }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@dataclass
class PayoutReconciliation:
    """The reconciliation of one client's period: rows, variances, and how to show them."""

    client: str
    start: date
    end: date
    timezone: str
    ledger_expected: bool
    groups: list[GroupReconciliation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    api_calls: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> list[dict[str, str]]:
        """One row per (gateway, day, currency), in `COLUMNS` order, money as text."""
        return [g.row() for g in self.groups]

    @property
    def variances(self) -> list[dict[str, Any]]:
        """The rows that do not reconcile, each with the orders behind it."""
        return [g.variance() for g in self.groups if g.is_variance]

    @property
    def ok(self) -> bool:
        """True when everything reconciles and everything could be read."""
        return not self.errors and not any(g.is_variance for g in self.groups)

    @property
    def period(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start} to {self.end}"

    def headline(self) -> str:
        """One sentence: what was compared and what came out."""
        if self.errors and not self.groups:
            return f"{self.client} {self.period}: the reconciliation could not run"
        variances = sum(1 for g in self.groups if g.is_variance)
        orders = {o.order for g in self.groups for o in g.orders}
        if not self.groups:
            verdict = "no money moved"
        elif not variances:
            verdict = f"{len(self.groups)} row(s), all balanced"
        else:
            verdict = (
                f"{variances} of {len(self.groups)} row(s) do not reconcile"
                f" ({len(orders)} order(s) behind them)"
            )
        unread = " — incomplete: some reads failed" if self.errors else ""
        return f"{self.client} {self.period} ({self.timezone} days): {verdict}{unread}"

    def summary_rows(self) -> list[dict[str, Any]]:
        """Compact rows for a terminal: the nets side by side, the verdict, the orders."""
        out = []
        for g in self.groups:
            row = g.row()
            out.append(
                {
                    "gateway": row["gateway"],
                    "day": row["day"],
                    "currency": row["currency"],
                    "SHOPLINE in": row["shopline_in"],
                    "SHOPLINE out": row["shopline_out"],
                    "SHOPLINE net": row["shopline_net"],
                    "Stokly recorded": row["stokly_net"],
                    **({"Stokly ledger": row["ledger_net"]} if self.ledger_expected else {}),
                    "status": row["status"],
                    "orders": len(g.orders) or "",
                }
            )
        return out

    def to_csv(self, stream: IO[str]) -> None:
        """The rows as CSV with a header (`COLUMNS`); ``orders`` names the orders behind a row."""
        writer = csv.DictWriter(stream, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        for group in self.groups:
            row = group.row()
            row["orders"] = "; ".join(f"{o.order}: {mask(o.why)}" for o in group.orders)
            writer.writerow(row)

    def markdown(self) -> str:
        """The reconciliation as markdown, for a Prefect artifact: table, then each variance."""
        out = [
            f"# Payout reconciliation — {self.client}, {self.period}",
            "",
            self.headline() + ".",
            "",
            "SHOPLINE: successful sale, capture and refund transactions. Stokly recorded: the"
            " payment records on the sale orders (by gateway transaction id)."
            + (
                " Stokly ledger: the journals stokline posted, on each gateway's ledger account"
                " (receipts in, refunds out)."
                if self.ledger_expected
                else " No finance sync is configured, so no journals are expected."
            ),
            "",
        ]
        for error in self.errors:
            out.append(f"> **Not read:** {_cell(mask(error))}")
        if self.errors:
            out.append("")
        if self.groups:
            head = [
                "gateway",
                "day",
                "currency",
                "SHOPLINE in",
                "SHOPLINE out",
                "SHOPLINE net",
                "Stokly recorded net",
                *(["Stokly ledger net", "ledger variance"] if self.ledger_expected else []),
                "recorded variance",
                "status",
            ]
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            for g in self.groups:
                r = g.row()
                cells = [
                    r["gateway"],
                    r["day"],
                    r["currency"],
                    r["shopline_in"],
                    r["shopline_out"],
                    r["shopline_net"],
                    r["stokly_net"],
                    *(
                        [r["ledger_net"] or "—", r["variance_ledger"]]
                        if self.ledger_expected
                        else []
                    ),
                    r["variance_recorded"],
                    f"**{r['status']}**" if g.is_variance else r["status"],
                ]
                out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            out.append("")
        variances = [g for g in self.groups if g.is_variance]
        if variances:
            out += [f"## Variances ({len(variances)})", ""]
        for g in variances:
            out.append(f"### {g.gateway} · {g.day} · {g.currency} — {g.status}")
            out.append("")
            for note in g.notes:
                out.append(f"- {_cell(mask(note))}")
            if g.notes:
                out.append("")
            if g.orders:
                out.append(
                    "| order | SHOPLINE id | Stokly sale order | SHOPLINE | Stokly | difference"
                    " | why |"
                )
                out.append("|---|---|---|---|---|---|---|")
                for o in g.orders:
                    r = o.row()
                    cells = [
                        r[k]
                        for k in (
                            "order",
                            "shopline_id",
                            "sale_order",
                            "shopline",
                            "stokly",
                            "difference",
                            "why",
                        )
                    ]
                    out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
                out.append("")
        return "\n".join(out).rstrip() + "\n"
