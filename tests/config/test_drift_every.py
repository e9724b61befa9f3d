"""``syncs.stock.drift_every``: how often at most every SHOPLINE level is read again for drift.

A duration like the mapping's others, positive; a wrong one is one located problem.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stokline.config import check_text

MINIMAL = (Path(__file__).parent / "minimal.yaml").read_text(encoding="utf-8")
STOCK = "  stock: {every: 5m}"


def with_drift_every(value: str) -> str:
    assert MINIMAL.count(STOCK) == 1
    return MINIMAL.replace(STOCK, f"  stock: {{every: 5m, drift_every: {value}}}")


def test_the_default_is_one_hour() -> None:
    result = check_text(MINIMAL, "acme.yaml")
    assert result.mapping is not None and result.mapping.syncs.stock is not None
    assert result.mapping.syncs.stock.drift_every == timedelta(hours=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("1d", timedelta(days=1))],
)
def test_a_duration_is_read(value: str, expected: timedelta) -> None:
    result = check_text(with_drift_every(value), "acme.yaml")
    assert result.problems == []
    assert result.mapping is not None and result.mapping.syncs.stock is not None
    assert result.mapping.syncs.stock.drift_every == expected


@pytest.mark.parametrize("value", ["0m", "0s", "000h", "-1h", "1.5h", "an hour", "1 h", "1w"])
def test_anything_but_a_positive_duration_is_one_located_problem(value: str) -> None:
    result = check_text(with_drift_every(value), "acme.yaml")
    assert result.mapping is None
    [problem] = result.problems
    line = next(i for i, text in enumerate(MINIMAL.splitlines(), 1) if text == STOCK)
    assert (problem.file, problem.line) == ("acme.yaml", line)
    assert problem.pointer == "/syncs/stock/drift_every"
    assert "is not in the expected form" in problem.message
    assert "A positive number and a unit" in (problem.hint or "")
    assert problem.format().startswith(f"acme.yaml:{line}:")


def test_a_bare_number_is_a_type_problem_at_its_line() -> None:
    result = check_text(with_drift_every("60"), "acme.yaml")
    [problem] = result.problems
    assert problem.pointer == "/syncs/stock/drift_every"
    assert problem.message == "expected a string, got a number (60)"
