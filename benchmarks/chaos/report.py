"""A campaign's outcome: what it did to the system, and which invariants held, as a table and JSON.

The JSON goes to ``benchmarks/results/<name>.json`` (not committed) with the machine it ran on,
like the benchmarks' results. Nothing in it identifies a buyer: problems name orders by their
number and id, never by email or phone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.chaos.invariants import Invariant
from benchmarks.common import describe_machine, machine, table

__all__ = ["CampaignResult"]


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in counts.items())


@dataclass
class CampaignResult:
    """The invariants of one campaign, with what the campaign did to earn them."""

    name: str
    title: str
    invariants: list[Invariant]
    activity: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine)
    finished_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )

    @property
    def passed(self) -> bool:
        return all(inv.passed for inv in self.invariants)

    def render(self) -> str:
        head = [self.title, f"machine: {describe_machine(self.machine)}"]
        if self.parameters:
            head.append("parameters: " + _counts(self.parameters))
        if self.seconds:
            head.append("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items()))
        width = max((len(key) for key in self.activity), default=0)
        done = "what the campaign did:\n" + "\n".join(
            "  " + key.replace("_", " ").ljust(width) + "  " + _text(value)
            for key, value in self.activity.items()
        )
        rows = []
        for inv in self.invariants:
            rows.append(["PASS" if inv.passed else "FAIL", inv.title, _counts(inv.counts)])
        held = table(["result", "invariant", "counts"], rows)
        details = []
        for inv in self.invariants:
            for problem in inv.problems:
                details.append(f"  FAIL {inv.key}: {problem}")
            if inv.failures > len(inv.problems):
                details.append(f"  FAIL {inv.key}: … and {inv.failures - len(inv.problems)} more")
            details.extend(f"  {inv.key}: {note}" for note in inv.notes)
        verdict = (
            "every invariant held"
            if self.passed
            else f"{sum(not i.passed for i in self.invariants)} invariant(s) FAILED"
        )
        parts = ["\n".join(head), done, held]
        if details:
            parts.append("\n".join(details))
        if self.notes:
            parts.append("notes:\n" + "\n".join(f"  - {n}" for n in self.notes))
        parts.append(f"{self.title}: {verdict}")
        return "\n\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.name,
            "title": self.title,
            "passed": self.passed,
            "finished_at": self.finished_at,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "machine": self.machine,
            "parameters": self.parameters,
            "activity": self.activity,
            "invariants": [inv.as_dict() for inv in self.invariants],
            "notes": self.notes,
        }

    def write(self, results_dir: Path) -> Path:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{self.name}.json"
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        return path


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return _counts(value) or "—"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value) or "—"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
