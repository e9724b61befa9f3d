"""Building blocks shared by the SHOPLINE and Stokly models.

Models are tolerant of fields we do not use (APIs add fields all the time: ``extra="allow"``
keeps them reachable through ``model_extra``) and strict about the fields we depend on: an id
that arrives as a number, or money that arrives as a float, is a format error, not a guess.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["ApiModel", "Money"]


# Digits before the decimal point a real amount or quantity never exceeds; beyond it a value is
# garbage (1E+999999) that would overflow the arithmetic of the syncs, not money.
MAX_INTEGER_DIGITS = 15


def _no_float(value: Any) -> Any:
    # Bodies are decoded with parse_float=Decimal, so a float here means a caller built the
    # model by hand from floats — exactly the rounding bug Decimal is here to prevent.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string or number, never a binary float")
    if isinstance(value, bool):
        raise ValueError("money must be a number, not a boolean")
    return value


def _in_range(value: Decimal) -> Decimal:
    # Finite is checked before this runs (allow_inf_nan=False): "NaN", "Infinity" are refused.
    if value and value.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(f"amount out of range: more than {MAX_INTEGER_DIGITS} digits")
    return value


Money = Annotated[
    Decimal, BeforeValidator(_no_float), Field(allow_inf_nan=False), AfterValidator(_in_range)
]
"""A money amount or quantity: SHOPLINE sends strings such as ``"8.00"``, Stokly JSON numbers.

Always a finite Decimal of sane size: NaN, Infinity (as strings, or bare in a body) and absurd
exponents are a format error of the answer, never a value a sync computes with.
"""


class ApiModel(BaseModel):
    """Base of every API model: unknown fields are kept, known ones are validated."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
