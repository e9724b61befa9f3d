"""SHOPLINE cursor pagination: ``limit``, ``page_info`` and the ``link`` response header.

A first request carries filters; every later page is requested with only ``page_info``,
``limit`` and ``fields`` (SHOPLINE ignores anything else then). The cursor is base64 JSON
``{"sinceId", "direction", "limit"}`` as documented, plus the first request's filters
(:data:`quirks.PAGE_INFO_QUERY_KEY`) so the next page keeps them. Link URLs are percent-encoded,
so a ``fields=id,email`` never puts a bare comma into the comma-separated ``link`` header.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from stokline.sandbox.common import MALFORMED_STATE_KEY, DocStore
from stokline.sandbox.shopline import quirks
from stokline.sandbox.shopline.state import ApiError

Matcher = Callable[[dict[str, Any]], bool]
Rows = list[tuple[int, dict[str, Any]]]


def parse_limit(raw: str | None, resource: str) -> int:
    """Validate ``limit``: default 50, 1..max (clamped above, see quirks)."""
    maximum = quirks.MAX_LIMIT_BY_RESOURCE.get(resource, quirks.MAX_LIMIT)
    if raw is None or raw == "":
        return min(quirks.DEFAULT_LIMIT, maximum)
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "limit must be an integer", {"limit": ["is not a number"]}) from None
    if value < 1:
        raise ApiError(422, "limit must be at least 1", {"limit": ["must be greater than 0"]})
    if value > maximum:
        if not quirks.CLAMP_LIMIT:
            raise ApiError(422, f"limit must be at most {maximum}", {"limit": ["is too large"]})
        value = maximum
    return value


def encode_page_info(info: dict[str, Any]) -> str:
    """Base64 of compact JSON, like SHOPLINE's ``eyJ...`` cursors."""
    return base64.b64encode(json.dumps(info, separators=(",", ":")).encode()).decode()


def decode_page_info(token: str) -> dict[str, Any]:
    """Decode a cursor (standard or URL-safe base64, padding optional); bad ones are 422."""
    text = token.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        info = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ApiError(422, "page_info is invalid", {"page_info": ["is invalid"]}) from None
    if not isinstance(info, dict) or info.get("direction") not in ("next", "previous"):
        raise ApiError(422, "page_info is invalid", {"page_info": ["is invalid"]})
    return info


def select_fields(doc: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Apply ``fields=a,b``: keep only those top-level keys."""
    if not fields:
        return doc
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    return {k: doc[k] for k in wanted if k in doc}


def _empty_page_fault(request: Request) -> bool:
    """Whether the fault middleware asked for this page to come back empty (and say it did)."""
    state = request.scope.get("state") or {}
    malformed = state.get(MALFORMED_STATE_KEY)
    if malformed is None or malformed.kind != "empty_page":
        return False
    state[f"{MALFORMED_STATE_KEY}_done"] = True
    return True


def _empty_page_nonce(request: Request) -> int:
    return request.scope["state"][MALFORMED_STATE_KEY].rng.getrandbits(32)


class Page:
    """One page of results and the ``link`` header that leads on."""

    def __init__(self, items: list[dict[str, Any]], link: str | None) -> None:
        self.items = items
        self.link = link


def paginate(
    request: Request,
    store: DocStore,
    *,
    kind: str,
    resource: str,
    first_filters: dict[str, Any],
    make_matcher: Callable[[dict[str, Any]], Matcher],
    candidates: Callable[[dict[str, Any]], Rows | None] | None = None,
    key_of: Callable[[dict[str, Any]], str] = lambda doc: str(doc["id"]),
) -> Page:
    """Return the page the request asks for.

    ``first_filters`` are the filters of a first request (ignored when ``page_info`` is sent);
    ``make_matcher(filters)`` builds the predicate; ``candidates(filters)`` may return a short
    pre-selected row list (e.g. ``ids=``) instead of scanning the whole kind. ``key_of`` gives a
    document's key in the store (its ``id`` unless the kind has none, like inventory levels). A ``descending``
    key in the filters reverses the order (``sort_condition=order_at:desc``).
    """
    query = request.query_params
    raw_limit = query.get("limit")
    fields = query.get("fields")
    since: str | None = None
    direction = "next"
    filters = first_filters
    if query.get("page_info"):
        info = decode_page_info(query["page_info"])
        since = str(info.get("sinceId")) if info.get("sinceId") is not None else None
        direction = info["direction"]
        filters = info.get(quirks.PAGE_INFO_QUERY_KEY) or {}
        if not raw_limit and info.get("limit") is not None:
            raw_limit = str(info["limit"])
    limit = parse_limit(raw_limit, resource)
    matcher = make_matcher(filters)
    descending = bool(filters.get("descending"))
    forward = (direction == "next") != descending

    cursor: int | None = None
    if since is not None:
        cursor = store.seq_of(kind, since)
        if cursor is None:
            raise ApiError(422, "page_info is invalid", {"page_info": ["refers to an unknown id"]})

    rows = candidates(filters) if candidates is not None else None
    found: Rows = []
    if rows is not None:
        ordered = rows if forward else list(reversed(rows))
        for seq, doc in ordered:
            if cursor is not None and (seq <= cursor if forward else seq >= cursor):
                continue
            if matcher(doc):
                found.append((seq, doc))
                if len(found) > limit:
                    break
    else:
        position = cursor
        chunk = max(limit * 2, 200)
        while len(found) <= limit:
            batch = store.scan(
                kind,
                after_seq=position if forward else None,
                before_seq=None if forward else position,
                descending=not forward,
                limit=chunk,
            )
            if not batch:
                break
            for seq, doc in batch:
                if matcher(doc):
                    found.append((seq, doc))
                    if len(found) > limit:
                        break
            position = batch[-1][0]
            if len(batch) < chunk:
                break

    has_more = len(found) > limit
    if found and direction == "next" and _empty_page_fault(request):
        # A malformed answer (fault injection): no records, yet a next link. It points back at
        # where this page started, so a client that follows it loses nothing.
        info = {"sinceId": since, "direction": "next", "limit": limit}
        info[quirks.PAGE_INFO_QUERY_KEY] = filters
        info["replay"] = _empty_page_nonce(request)
        params = {"limit": limit, "page_info": encode_page_info(info)}
        if fields:
            params["fields"] = fields
        base = f"{str(request.base_url).rstrip('/')}{request.url.path}"
        return Page([], f'<{base}?{urlencode(params)}>; rel="next"')
    found = found[:limit]
    if direction == "previous":
        found.reverse()
    items = [doc for _, doc in found]

    links = []
    base = f"{str(request.base_url).rstrip('/')}{request.url.path}"

    def link(doc: dict[str, Any], rel: str) -> str:
        info = {"sinceId": key_of(doc), "direction": rel, "limit": limit}
        info[quirks.PAGE_INFO_QUERY_KEY] = filters
        params = {"limit": limit, "page_info": encode_page_info(info)}
        if fields:
            params["fields"] = fields
        return f'<{base}?{urlencode(params)}>; rel="{rel}"'

    if items:
        more_after = has_more if direction == "next" else since is not None
        more_before = since is not None if direction == "next" else has_more
        if more_before:
            links.append(link(items[0], "previous"))
        if more_after:
            links.append(link(items[-1], "next"))
    return Page(items, ", ".join(links) if links else None)
