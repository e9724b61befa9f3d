"""The Stokly filter builder: rendering, escaping and validation, from tables."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from stokline.connectors.stokly import filters as f


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (f.eq("sku", "ACME-1"), "[sku]=={ACME-1}"),
        (f.ne("status", 1), "[status]!={1}"),
        (f.one_of("sku", ["A", "B", "C"]), "[sku]=*{A,B,C}"),
        (f.one_of("sku", ["A", "B", "A"]), "[sku]=*{A,B}"),
        (f.contains("email", "example.com"), "[email]::{example.com}"),
        (f.gte("issueDate", date(2025, 5, 28)), "[issueDate]>={2025-05-28}"),
        (
            f.lte("updatedAt", datetime(2025, 5, 28, 11, 46, tzinfo=UTC)),
            "[updatedAt]<={2025-05-28T11:46:00+00:00}",
        ),
        (f.eq("salePrice.amount", Decimal("9.99")), "[salePrice.amount]=={9.99}"),
        (f.eq("isSold", True), "[isSold]=={true}"),
        (f.is_null("deletedAt"), "[deletedAt]=={@null;}"),
        (f.not_null("deletedAt"), "[deletedAt]!={@null;}"),
        # escaping: braces, commas and backslashes inside values
        (f.eq("name", "Tent {2P}"), "[name]=={Tent {2P\\}}"),
        (f.one_of("sku", ["A,B", "C"]), "[sku]=*{A\\,B,C}"),
        (f.eq("note", "back\\slash"), "[note]=={back\\\\slash}"),
        # values the server would misread as typed literals or trim
        (f.eq("handle", "@null;"), "[handle]=={@string;@null;}"),
        (f.eq("name", " padded "), "[name]=={@string; padded }"),
        (f.eq("name", ""), "[name]=={@string;}"),
        # combinations
        (
            f.and_(f.eq("sourceId", "c1"), f.one_of("sourceReferenceId", ["1", "2"])),
            "[sourceId]=={c1}&&[sourceReferenceId]=*{1,2}",
        ),
        (f.or_(f.eq("a", 1), f.eq("b", 2)), "[a]=={1}||[b]=={2}"),
        (
            f.and_(f.eq("a", 1), f.or_(f.eq("b", 2), f.eq("c", 3))),
            "[a]=={1}&&([b]=={2}||[c]=={3})",
        ),
        (
            f.or_(f.and_(f.eq("a", 1), f.eq("b", 2)), f.eq("c", 3)),
            "([a]=={1}&&[b]=={2})||[c]=={3}",
        ),
        (f.eq("a", 1) & f.eq("b", 2) | f.eq("c", 3), "([a]=={1}&&[b]=={2})||[c]=={3}"),
        (f.and_(f.eq("a", 1)), "[a]=={1}"),
    ],
)
def test_rendering(built: f.Filter, expected: str) -> None:
    assert str(built) == expected


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: f.eq("sku]||[x", "A"), ValueError, "invalid Stokly filter field"),
        (lambda: f.eq("", "A"), ValueError, "invalid Stokly filter field"),
        (lambda: f.eq("a b", "A"), ValueError, "invalid Stokly filter field"),
        (lambda: f.one_of("sku", []), ValueError, "at least one value"),
        (lambda: f.and_(), ValueError, "at least one filter"),
        (lambda: f.eq("sku", "line\nbreak"), ValueError, "control characters"),
        (lambda: f.eq("n", float("nan")), ValueError, "non-finite"),
        (lambda: f.eq("n", Decimal("Infinity")), ValueError, "non-finite"),
        (lambda: f.eq("n", object()), TypeError, "cannot use a object"),
        (lambda: f.contains("n", ""), ValueError, "non-empty"),
        (lambda: f.and_(f.eq("a", 1), "[b]=={2}"), TypeError, "Filter operands"),
    ],
)
def test_invalid_filters_are_refused(make, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_filters_are_values() -> None:
    assert f.eq("a", 1) == f.eq("a", 1)
    assert len({f.eq("a", 1), f.eq("a", 1), f.eq("a", 2)}) == 2
    assert repr(f.eq("a", 1)) == "Filter('[a]=={1}')"
