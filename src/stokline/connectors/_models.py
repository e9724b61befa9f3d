"""Building blocks shared by the SHOPLINE and Stokly models.

Models are tolerant of fields we do not use (APIs add fields all the time: ``extra="allow"``
keeps them reachable through ``model_extra``) and strict about the fields we depend on: an id
that arrives as a number, or money that arrives as a float, is a format error, not a guess.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["ApiModel", "Money"]


def _no_float(value: Any) -> Any:
    # Bodies are decoded with parse_float=Decimal, so a float here means a caller built the
    # model by hand from floats — exactly the rounding bug Decimal is here to prevent.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string or number, never a binary float")
    if isinstance(value, bool):
        raise ValueError("money must be a number, not a boolean")
    return value


Money = Annotated[Decimal, BeforeValidator(_no_float)]
"""A money amount: SHOPLINE sends strings such as ``"8.00"``, Stokly JSON numbers."""


class ApiModel(BaseModel):
    """Base of every API model: unknown fields are kept, known ones are validated."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
