"""What one ledger pass did: the journals posted (or to post), those refused, each batch's outcome.

Rows are fit for a terminal and a Prefect table artifact; amounts are shown as decimal text, so a
table shows them to the penny. Journals name their orders by SHOPLINE name and id only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from stokline.sync.finance.ledger.translate import JournalDraft
from stokline.sync.report import SyncReport

__all__ = ["LedgerReport", "journal_row"]


@dataclass
class LedgerReport(SyncReport):
    """What one ledger pass did (or, dry, would do) for one client and period.

    ``journals`` are the journals posted (or that would be, or await approval) — each the whole
    group or, for an adjustment, only the difference; ``refused`` the journals refused whole
    (Stokly refused one, or an adjustment would not balance); ``batches`` one row per group
    with its outcome.

    ``set_aside`` lists the orders kept out of their group's journal because their money does
    not match their breakdown or cannot be translated (keys ``order``, ``shopline_id``,
    ``gateway``, ``day``, ``amount``, ``code``); the rest of each journal is posted.
    ``unimported`` lists the money of SHOPLINE orders that are not in Stokly yet (the orders
    sync has not imported them): one row per order, gateway and day, with keys ``order``
    (SHOPLINE name), ``shopline_id``, ``gateway``, ``day`` (ISO date) and ``amount`` (decimal
    text, refunds negative); ``unimported_total`` their sum; ``unimported_policy`` what was done
    with them: ``hold`` (kept out of the journals until the order is in Stokly) or
    ``suspense:<account>`` (posted to that suspense account instead of sales and tax).
    """

    start: date | None = None
    end: date | None = None
    orders_read: int = 0
    journals: list[JournalDraft] = field(default_factory=list)
    refused: list[JournalDraft] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    posted: int = 0
    adjustments: int = 0
    already_posted: int = 0
    recovered: int = 0
    not_approved: int = 0
    busy: int = 0
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    fetch_ok: bool = True
    set_aside: list[dict[str, Any]] = field(default_factory=list)
    unimported: list[dict[str, Any]] = field(default_factory=list)
    unimported_total: Decimal = Decimal(0)
    unimported_policy: str = "hold"

    @property
    def ok(self) -> bool:
        """False when SHOPLINE could not be read or a post had no clear answer: run it again."""
        return self.fetch_ok and not self.errors

    @property
    def period(self) -> str:
        if self.start is None or self.end is None:
            return ""
        return str(self.start) if self.start == self.end else f"{self.start}..{self.end}"

    @property
    def would_post(self) -> list[dict[str, Any]]:
        """Rows of the journals a real run would post (the CLI's plan of a dry run)."""
        return [journal_row(j) for j in self.journals] if self.dry_run else []

    @property
    def unimported_words(self) -> str:
        """What was done with the money of orders not in Stokly, in words."""
        if self.unimported_policy.startswith("suspense:"):
            account = self.unimported_policy.split(":", 1)[1]
            return f"posted to suspense account {account} until imported"
        return "held out of the journals until imported"

    def approval(self) -> dict[str, str]:
        """Batch key → content hash of every journal to post: what a person approves."""
        return {j.batch_key: j.content_hash for j in self.journals}

    def line_rows(self) -> list[dict[str, Any]]:
        """Every line of every journal to post, one row each (the journal artifact)."""
        return [row for journal in self.journals for row in journal.rows()]

    def totals(self) -> dict[str, Decimal]:
        """Debits of the journals to post, per currency."""
        out: dict[str, Decimal] = {}
        for journal in self.journals:
            out[journal.key.currency] = out.get(journal.key.currency, Decimal(0)) + journal.debits
        return out

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        money = ", ".join(f"{amount} {cur}" for cur, amount in sorted(self.totals().items()))
        return self._rows(
            [
                ("period", self.period),
                ("orders read", self.orders_read),
                (
                    "journals to post" if self.dry_run else "journals posted",
                    len(self.journals) if self.dry_run else self.posted,
                ),
                ("of which adjustments", self.adjustments),
                ("debits to post" if self.dry_run else "debits posted", money or "0"),
                ("already posted (skipped)", self.already_posted),
                ("journals refused whole", len(self.refused)),
                ("orders set aside (not balanced or untranslatable)", len(self.set_aside)),
                (
                    "money of orders not in Stokly",
                    f"{self.unimported_total} ({len(self.unimported)} order-day(s))",
                ),
                ("orders not in Stokly are", self.unimported_words),
                ("not approved / changed since approval", self.not_approved),
                ("recovered after an interrupted run", self.recovered),
                ("exceptions opened", self.exceptions_opened),
                ("exceptions resolved", self.exceptions_resolved),
            ]
        )


def journal_row(journal: JournalDraft) -> dict[str, Any]:
    return {
        "batch": journal.batch_key,
        "date": journal.key.day.isoformat(),
        "gateway": journal.key.gateway or "all",
        "currency": journal.key.currency,
        "debits": str(journal.debits),
        "credits": str(journal.credits),
        "lines": len(journal.lines),
        "orders": len(journal.orders),
        "hash": journal.content_hash[:12],
    }
