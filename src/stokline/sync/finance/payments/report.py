"""What one payments run did, in numbers and rows fit for a terminal and a Prefect artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from stokline.sync.finance.payments.translate import cents
from stokline.sync.report import SyncReport

__all__ = ["MAX_ROWS", "PaymentsReport"]

MAX_ROWS = 500  # rows of written records kept in a report: enough to act on, small enough to render


@dataclass
class PaymentsReport(SyncReport):
    """The outcome of one payments run (dry or real) for one client and period.

    ``payments_recorded`` counts Stokly payments written for SHOPLINE payments;
    ``refunds_recorded`` credit notes written for SHOPLINE refunds and ``refund_payments_recorded``
    the refund money written with them; ``already_recorded`` records Stokly had (linked before, or
    found there and linked now); ``waiting_for_import`` orders with money whose sale order does not
    exist yet (kept pending: recorded once the orders sync imports them); ``not_in_stokly`` orders
    with money that the orders sync will not import (the reconciliation shows their money);
    ``deferred`` orders held back by a transient failure (kept pending); ``written`` (live) or
    ``would_write`` (dry run) one row per record.
    """

    start: date | None = None
    end: date | None = None
    orders_seen: int = 0
    payments_recorded: int = 0
    refunds_recorded: int = 0
    refund_payments_recorded: int = 0
    already_recorded: int = 0
    waiting_for_import: int = 0
    not_in_stokly: int = 0
    deferred: int = 0
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    written: list[dict[str, Any]] = field(default_factory=list)
    would_write: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when something transient held money back: the next run records it."""
        return not self.deferred and not self.errors

    def add_record(
        self,
        order: str,
        record: str,
        gateway: str,
        reference: str,
        amount: Decimal,
        currency: str,
        day: date | None,
    ) -> None:
        """One row of ``written`` (or ``would_write`` in a dry run), up to `MAX_ROWS` of them."""
        target = self.would_write if self.dry_run else self.written
        if len(target) < MAX_ROWS:
            target.append(
                {
                    "order": order,
                    "record": record,
                    "gateway": gateway,
                    "reference": reference,
                    "amount": str(cents(amount)),
                    "currency": currency,
                    "day": day.isoformat() if day else "",
                }
            )

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per figure: ``{"metric", "value"}``."""
        dry = self.dry_run
        period = str(self.start) if self.start == self.end else f"{self.start} to {self.end}"
        return self._rows(
            [
                ("period", period),
                ("orders with money", self.orders_seen),
                (
                    "would record" if dry else "payments recorded",
                    len(self.would_write) if dry else self.payments_recorded,
                ),
                *(
                    []
                    if dry
                    else [
                        ("refunds recorded (credit notes)", self.refunds_recorded),
                        ("refund payments recorded", self.refund_payments_recorded),
                    ]
                ),
                ("records already in Stokly", self.already_recorded),
                ("waiting for the order's import", self.waiting_for_import),
                ("orders Stokly will not import", self.not_in_stokly),
                ("deferred to the next run", self.deferred),
                ("exceptions opened", self.exceptions_opened),
                ("exceptions resolved", self.exceptions_resolved),
            ]
        )
