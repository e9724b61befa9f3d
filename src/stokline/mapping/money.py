"""Money arithmetic of journals: amounts in a currency's minor unit, and splits that add up.

The rounding rule. Amounts are SHOPLINE's decimal strings, used as they are, so sums are exact.
Only splitting one amount into parts needs rounding — an order paid by several transactions (its
breakdown is shared between them in proportion to their amounts) and a refunded line's tax
shared between several tax classes or over part of a line's quantity. A split rounds each part
*down* to the currency's minor unit and hands the units left over, one each, to the parts with
the largest remainders (the earlier part on a tie): the parts always add up to the whole exactly,
and the result depends only on the input. When an order's breakdown is split between
transactions, each transaction's share is then evened out to its amount on its largest part,
the last transaction taking what remains of every part, so that every part still totals exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

__all__ = ["ZERO", "allocate", "minor_unit", "money", "split_shares"]

ZERO = Decimal(0)

# ISO 4217 currencies whose minor unit is not the cent.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: 0.01 for most, 1 for JPY, 0.001 for BHD."""
    return Decimal(1).scaleb(-_EXPONENTS.get(currency.upper(), 2))


def money(value: Any) -> Decimal:
    """A SHOPLINE money value ("8.00", Decimal, int) as Decimal; absent is zero."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, float):
        value = str(value)  # only ever a literal from a hand-written fixture
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount of money") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount of money")
    return amount


# -- the rounding rule ------------------------------------------------------------------------


def allocate(amount: Decimal, weights: Sequence[Decimal], unit: Decimal) -> list[Decimal]:
    """``amount`` split in proportion to ``weights``, in whole ``unit``\\ s, adding up exactly.

    Each part is rounded down (towards zero) to the unit; the units left over go one each to the
    parts with the largest remainders, the earlier part first on a tie. Weights that sum to zero
    give everything to the first part.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if amount < 0:
        return [-part for part in allocate(-amount, weights, unit)]
    total = sum(weights, ZERO)
    if total == 0:
        return [amount, *([ZERO] * (len(weights) - 1))]
    exact = [amount * w / total for w in weights]
    parts = [e.quantize(unit, rounding=ROUND_DOWN) for e in exact]
    left = int(((amount - sum(parts, ZERO)) / unit).to_integral_value())
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += unit
    return parts


def split_shares(
    parts: Sequence[Decimal], targets: Sequence[Decimal], unit: Decimal
) -> list[list[Decimal]]:
    """Share ``parts`` (one order's breakdown) between ``targets`` (its transactions' amounts).

    Returns one row per target. Every column adds up to its part exactly; every row but the last
    adds up to its target exactly (evened out on its largest part), and so does the last one
    whenever the parts add up to the targets.
    """
    if len(targets) == 1:
        return [list(parts)]
    columns = [allocate(part, targets, unit) for part in parts]
    rows = [[columns[k][j] for k in range(len(parts))] for j in range(len(targets))]
    if not parts:
        return rows
    for j in range(len(targets) - 1):
        gap = targets[j] - sum(rows[j], ZERO)
        if gap:
            k = max(range(len(parts)), key=lambda i: (abs(rows[j][i]), -i))
            rows[j][k] += gap
            rows[-1][k] -= gap
    return rows
