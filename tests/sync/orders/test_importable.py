"""Which orders the mapping imports, and which are cancelled: one answer for every sync."""

from __future__ import annotations

import pytest

from stokline.sync.orders.translate import (
    importable_statuses,
    is_cancelled,
    is_importable,
    refunded_before_import,
)


@pytest.mark.parametrize(
    ("import_when", "expected"),
    [
        (("paid",), ("paid", "partially_refunded")),
        (("paid", "partially_paid"), ("paid", "partially_paid", "partially_refunded")),
        (("authorized",), ("authorized",)),  # never paid, so never refunded in part
        (("paid", "paid"), ("paid", "partially_refunded")),
    ],
)
def test_importable_statuses(import_when: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert importable_statuses(import_when) == expected


def test_a_partly_refunded_order_is_importable_only_where_paid_ones_are() -> None:
    assert is_importable("partially_refunded", ["paid"])
    assert not is_importable("partially_refunded", ["authorized"])
    assert not is_importable("refunded", ["paid"]) and not is_importable(None, ["paid"])


def test_refunded_in_full_before_import() -> None:
    assert refunded_before_import("refunded", ("paid",))
    assert not refunded_before_import("refunded", ("authorized",))
    assert not refunded_before_import("partially_refunded", ("paid",))


def test_an_order_is_cancelled_by_its_status_or_its_cancellation_time() -> None:
    assert is_cancelled({"status": "cancelled"})
    assert is_cancelled({"status": "open", "cancelled_at": "2026-11-27T09:00:00+00:00"})
    assert not is_cancelled({"status": "open", "cancelled_at": None})
    assert not is_cancelled({})
