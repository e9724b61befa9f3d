"""How often a schedule fires: the period lag and the overdue alert are measured against."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stokline.config.schedules import Schedule
from stokline.ops.cadence import Cron, period

# A Wednesday.
NOW = datetime(2025, 3, 12, 10, 0)
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Schedule(every=timedelta(minutes=2)), timedelta(minutes=2)),
        (Schedule(at="02:00"), timedelta(days=1)),
        (Schedule(cron="*/10 * * * *"), timedelta(minutes=10)),
        (Schedule(cron="0 */6 * * *"), timedelta(hours=6)),
        # Weekdays only: the longest wait is the weekend, Friday 03:30 to Monday 03:30.
        (Schedule(cron="30 3 * * 1-5"), timedelta(days=3)),
        (Schedule(cron="*/10 9-17 * * mon-fri"), timedelta(days=2, hours=15, minutes=10)),
        (Schedule(cron="@hourly"), timedelta(hours=1)),
        (Schedule(cron="@weekly"), timedelta(days=7)),
        (Schedule(cron="0 0 1 * *"), timedelta(days=31)),
        # Yearly: one firing in the span searched, so the period is taken as a leap year.
        (Schedule(cron="0 0 1 1 *"), timedelta(days=366)),
        (Schedule(), None),
    ],
    ids=lambda v: str(v),
)
def test_period(schedule: Schedule, expected: timedelta | None) -> None:
    assert period(schedule, "Europe/London", NOW.replace(tzinfo=LONDON)) == expected


def test_either_day_field_matches_when_both_are_restricted() -> None:
    # Vixie cron: "the 1st, or any Monday".
    cron = Cron("0 12 1 * 1")
    days = {t.date().isoformat() for t in cron.firings(datetime(2025, 3, 1), 10)}
    assert days == {"2025-03-01", "2025-03-03", "2025-03-10"}


def test_sunday_is_0_and_7() -> None:
    assert Cron("0 0 * * 7").firings(NOW, 7) == Cron("0 0 * * 0").firings(NOW, 7)
    assert [t.weekday() for t in Cron("0 0 * * sun").firings(NOW, 7)] == [6]
