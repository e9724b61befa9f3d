"""What one sync run did, in numbers and rows fit for a terminal and a Prefect table artifact.

`SyncReport` holds what every sync reports (who, why, dry or live, exceptions, errors, cost);
each sync's report adds its own figures. Rows never carry a customer's email or phone: `mask`
hides any that slip into a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SyncReport", "mask", "spreadsheet_cell"]

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+\d[\d ()-]{6,18}(\d{2})")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def mask(text: str) -> str:
    """``text`` with email addresses and international phone numbers masked."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: f"+***{m.group(1)}", text)


@dataclass
class SyncReport:
    """The part of every sync's report that is the same: the run, its exceptions, its cost."""

    client: str
    trigger: str
    dry_run: bool
    exceptions: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    api_calls: int = 0
    seconds: float = 0.0

    def add_exception(
        self, code: str, team: str, entity: str, message: str, status: str = "open"
    ) -> None:
        self.exceptions.append(
            {
                "code": code,
                "team": team,
                "entity": entity,
                "status": status,
                "message": mask(message),
            }
        )

    def add_error(self, message: str) -> None:
        self.errors.append(mask(message))

    def _rows(self, figures: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        """The sync's ``figures`` between the run's identity and its cost, one row each."""
        rows: list[tuple[str, Any]] = [
            ("client", self.client),
            ("trigger", self.trigger),
            ("mode", "dry run (nothing written)" if self.dry_run else "live"),
            *figures,
            ("API calls", self.api_calls),
            ("seconds", round(self.seconds, 2)),
        ]
        return [{"metric": name, "value": value} for name, value in rows]
