"""What an audit finds: findings with their count, examples, impact and owner, ranked.

A `Finding` is one gap between the two systems (or between them and the mapping): how many
records it concerns, a few examples, what it costs the business if nothing is done, and the team
that owns it (the mapping's ``operating_model.owners`` for the exception it would become). Its
``weight`` orders the report: what loses money or oversells first, tidying last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["SECTIONS", "WEIGHTS", "AuditReport", "Finding", "Inventory"]

SECTIONS = {
    "catalogue": "Catalogue: SKUs in both systems",
    "coverage": "What the orders use, and what the mapping covers",
    "customers": "Customers",
    "stock": "Stock levels",
    "orders": "Orders in both systems",
    "finance": "Payments and the ledger",
}
"""Each section's heading, in the order the report lists them."""

WEIGHTS = {
    "oversell": 100,  # SHOPLINE sells what Stokly does not have: cancelled orders, refunds
    "lost_order": 90,  # a paid order that would never reach the warehouse
    "stranded_order": 80,  # an order that would stop at an exception until a person acts
    "no_tracking": 70,  # a shipped order whose customer has no tracking
    "ledger": 60,  # money that would not reconcile
    "customer": 40,  # duplicate or wrongly merged customers
    "unsold": 30,  # stock SHOPLINE does not offer, or items nobody can buy
    "tidy": 10,  # no effect on an order; worth knowing
}
"""How much a kind of impact weighs in the ranking (times the count, dampened)."""


@dataclass
class Finding:
    """One gap: ``key`` names it for tools (``catalogue.unmatched_variant``), ``title`` for people."""

    section: str
    key: str
    title: str
    count: int
    impact: str  # what happens if nothing is done, in plain words
    kind: str  # one of WEIGHTS
    team: str | None = None
    examples: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # every record, for the CSVs
    todo: str = ""  # what to do about it

    @property
    def weight(self) -> float:
        # A finding of many records outranks one of few of the same kind, but never a kind above.
        return WEIGHTS[self.kind] + min(self.count, 1000) / 1000 * 9

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "weight": round(self.weight, 2)}


@dataclass
class Inventory:
    """One value seen in the orders (a shipping title, a gateway …), how many orders use it and
    what the mapping makes of it (``mapped_to``; None: not mapped)."""

    kind: str
    value: str
    orders: int
    mapped_to: str | None
    by_default: bool = False  # mapped only by the section's default (on_unmapped: default)


@dataclass
class AuditReport:
    """Everything one audit found for one client, ranked; the figures of what it read."""

    client: str
    since: datetime
    until: datetime
    findings: list[Finding] = field(default_factory=list)
    inventory: list[Inventory] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)  # what was read: variants, orders …
    requests: dict[str, int] = field(default_factory=dict)  # API requests per system
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    data: Any = field(default=None, repr=False, compare=False)  # the AuditData read, for a draft

    def ranked(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (-f.weight, f.section, f.key))

    def in_section(self, section: str) -> list[Finding]:
        return [f for f in self.ranked() if f.section == section]

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "findings": [f.to_json() for f in self.ranked()],
            "inventory": [asdict(i) for i in self.inventory],
            "read": self.read,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }
