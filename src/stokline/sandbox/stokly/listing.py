"""Stokly list semantics: `page`/`size`/`sortField`/`sortDirection`/`filter` and the envelope."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

from stokline.sandbox.stokly.errors import ApiError
from stokline.sandbox.stokly.filters import FilterError, compile_filter, equality_terms, lookup

__all__ = ["MAX_PAGE_SIZE", "ListQuery", "Listing", "page_envelope"]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


@dataclass
class ListQuery:
    """The query parameters every Stokly list accepts [C]."""

    page: int = Query(0, ge=0, description="Page number, starting at 0.")
    size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Page size (1..1000).")
    sortDirection: str | None = Query(None, description="ASC (default) or DESC.")
    sortField: str | None = Query(None, description="Field to sort by.")
    filter: str | None = Query(
        None,
        description=(
            "Filter expression, e.g. `[sku]=*{A,B}&&[status]!={1}`. Operators: `==`, `!=`, `=*` "
            "(one of), `::` (contains), `>=`, `<=`; `&&`, `||`, parentheses; `{@null;}`, "
            "`{@string;…}`."
        ),
    )

    def equality_terms(self) -> dict[str, set[str]]:
        """Top-level equality terms of the filter, for index look-ups."""
        try:
            return equality_terms(self.filter)
        except FilterError as exc:
            raise ApiError(400, str(exc)) from exc


#: The parameter type of list handlers.
Listing = Annotated[ListQuery, Depends()]


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, bool | int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (1, json.dumps(value, sort_keys=True))


def page_envelope(rows: Iterable[dict[str, Any]], query: ListQuery) -> dict[str, Any]:
    """Filter, sort and page `rows` (already in read shape) into ``{metadata, data}``."""
    try:
        predicate = compile_filter(query.filter)
    except FilterError as exc:
        raise ApiError(400, str(exc)) from exc
    direction = (query.sortDirection or "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise ApiError(400, f"sortDirection must be ASC or DESC, not {query.sortDirection!r}")
    matched = [row for row in rows if predicate(row)]
    if query.sortField:
        field = query.sortField
        matched.sort(key=lambda row: _sort_key(lookup(row, field)), reverse=direction == "DESC")
    elif direction == "DESC":
        matched.reverse()
    start = query.page * query.size
    return {"metadata": {"count": len(matched)}, "data": matched[start : start + query.size]}
