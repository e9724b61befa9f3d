"""What the audit calls a near match: SKUs a person would call the same, and only those."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stokline.audit.sections import near_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME-TENT-2P-GREEN", "acme_tent_2p_green"),  # case and separators
        ("ACME-FLASK-07", "ACME-FLASK-7"),  # a leading zero
        ("ACME FLASK 007", "acme.flask.7"),
        ("TENT2-05", "TENT2-5"),  # a number after a separator after a digit
        (" TARP-3X3 ", "tarp3x3"),
    ],
)
def test_spellings_of_one_sku_meet(a: str, b: str) -> None:
    assert near_key(a) == near_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ACME-FLASK-70", "ACME-FLASK-7"),  # a trailing zero is a different number
        ("ACME-FLASK-10", "ACME-FLASK-1"),
        ("ACME-101", "ACME-11"),  # a zero inside a number is not a leading zero
        ("TENT-2005", "TENT-25"),
        ("TENT-2P", "TENT-3P"),
        ("ACME-TENT", "ACME-TENTS"),
    ],
)
def test_different_skus_stay_apart(a: str, b: str) -> None:
    assert near_key(a) != near_key(b)


@given(st.text(alphabet="ABCxyz0123456789-_ ./", min_size=1, max_size=20))
def test_the_key_ignores_case_and_which_separator(sku: str) -> None:
    key = near_key(sku)
    assert near_key(sku.upper().replace("-", "_")) == key == near_key(sku.lower())
    assert not any(c in key for c in "-_ ./")
