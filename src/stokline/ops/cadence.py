"""How often a sync's schedule fires: the period that lag and "overdue" are measured against.

An interval is its own period and a daily ``at`` time is a day. A cron expression may fire
unevenly (``*/10 9-17 * * 1-5`` waits a weekend), so its period is the longest gap between two
consecutive firings: a sync is only late when it has missed more than that. The fields are read
by the same strict rules `stokline.config.schedules.check_cron` validates them with.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from stokline.config.schedules import Schedule

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_BOUNDS = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    (0, 7, {d: i for i, d in enumerate(_DAYS)}),
)
# Spans searched for firings, shortest first: most schedules are found in the first.
_SPANS = (8, 63, 400)


def _value(text: str, names: dict[str, int]) -> int:
    return int(text) if text.isdigit() else names[text.lower()]


def _field(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            first = _value(start, names)
            last = _value(end, names) if dash else (high if step else first)
        values.update(range(first, last + 1, int(step) if step else 1))
    return values


class Cron:
    """A five-field cron expression (already validated), evaluated in local wall-clock time."""

    def __init__(self, expression: str) -> None:
        text = _MACROS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        minutes, hours, days, months, weekdays = (
            _field(part, *bounds) for part, bounds in zip(parts, _BOUNDS, strict=True)
        )
        self.minutes = sorted(minutes)
        self.hours = sorted(hours)
        self.days = days
        self.months = months
        self.weekdays = {d % 7 for d in weekdays}  # 7 is Sunday too
        # Vixie cron: when both day fields are restricted, either one matching is enough.
        self.either_day = parts[2] != "*" and parts[4] != "*"
        self.any_day = parts[2] == "*"
        self.any_weekday = parts[4] == "*"

    def _runs_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.either_day:
            return dom or dow
        return (self.any_day or dom) and (self.any_weekday or dow)

    def firings(self, start: datetime, days: int) -> list[datetime]:
        """Every firing on the ``days`` calendar days from ``start``'s date (naive local times)."""
        found: list[datetime] = []
        for offset in range(days):
            day = start.date() + timedelta(days=offset)
            if self._runs_on(day):
                found += [
                    datetime(day.year, day.month, day.day, h, m)
                    for h in self.hours
                    for m in self.minutes
                ]
        return found

    def longest_gap(self, start: datetime) -> timedelta:
        """The longest wait between two consecutive firings, seen from ``start`` onwards."""
        for span in _SPANS:
            times = self.firings(start, span)
            if len(times) >= 3 or (len(times) == 2 and span == _SPANS[-1]):
                return max(b - a for a, b in itertools.pairwise(times))
        return timedelta(days=366)  # fires once a year at most (e.g. 29 February)


def period(schedule: Schedule, timezone: str, now: datetime | None = None) -> timedelta | None:
    """The time between runs of ``schedule``: its interval, a day, or a cron's longest gap.

    None when the sync has no schedule (it runs on demand only).
    """
    if schedule.every is not None:
        return schedule.every
    if schedule.at:
        return timedelta(days=1)
    if schedule.cron:
        local = (now or datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone))
        return Cron(schedule.cron).longest_gap(local.replace(tzinfo=None))
    return None
