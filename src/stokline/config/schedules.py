"""Durations (``5m``) and schedules (``every``, ``cron``, ``at``) of mapping files.

The cron check is a small, strict reading of the five standard fields (the form Prefect's cron
schedules accept, plus its @daily-style shortcuts), so a schedule that would not parse is found
when the file is validated, without importing Prefect into the validator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^([0-9]+)([smhd])$")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``5m``, ``2h``, ``1d`` → timedelta. ValueError on anything else."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 90s, 5m, 2h or 1d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def describe_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds} seconds"


_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)


def _cron_value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None:
        raise ValueError(f"{field} {text!r} is not a number")
    if not low <= value <= high:
        raise ValueError(f"{field} {value} is out of range {low}-{high}")
    return value


def check_cron(expression: str) -> None:
    """ValueError (saying which field and why) unless ``expression`` is a valid cron schedule."""
    text = expression.strip()
    if text.lower() in _MACROS:
        return
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday), not {len(parts)}"
        )
    for part, (field, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"{field} step {step!r} must be a positive number")
            if base == "*":
                continue
            start, dash, end = base.partition("-")
            first = _cron_value(start, low, high, names, field)
            if dash:
                last = _cron_value(end, low, high, names, field)
                if last < first:
                    raise ValueError(f"{field} range {base} runs backwards")


@dataclass(frozen=True)
class Schedule:
    """When a sync runs: exactly one of an interval, a cron expression or a daily time."""

    every: timedelta | None = None
    cron: str | None = None
    at: str | None = None

    def as_cron(self) -> str | None:
        """The daily ``at`` time as cron; the cron expression itself; None for intervals."""
        if self.at:
            hour, minute = self.at.split(":")
            return f"{int(minute)} {int(hour)} * * *"
        return self.cron

    def describe(self, timezone: str) -> str:
        if self.every is not None:
            return f"every {describe_duration(self.every)}"
        if self.at:
            return f"daily at {self.at} ({timezone})"
        return f"cron {self.cron} ({timezone})"
