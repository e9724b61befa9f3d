"""``ShoplineClient``: the SHOPLINE Admin REST API, one async method per endpoint the syncs use.

**Why async.** SHOPLINE allows 4 requests a second (leaky bucket, burst 40) and a real round trip
takes 200–400 ms, so a sequential client spends its time waiting: it manages 2.5–5 calls a second
on a good day, stalls on every slow response and never uses the burst. Stock pushes cost one call
per changed level, so that is the difference between a 5-minute sync finishing or not. With
``httpx.AsyncClient`` a sync ``asyncio.gather``-s its writes, the shared
:class:`~stokline.connectors.LeakyBucketPacer` — not latency — sets the pace, and ``max_concurrency``
bounds the connections in flight. Threads could do the same, at a thread per in-flight call and
with the same pacer; async keeps it in one thread and makes cancellation and timeouts cheap.

**Lifecycle.** Use one client per event loop (``async with ShoplineClient(...) as shopline:``):
the connection pool and the concurrency semaphore belong to the loop that first used them. Code
that runs several loops at once (threads) shares one pacer per store by passing ``pacer=``, so the
rate limit holds across them.

Pagination follows the ``link`` header's ``rel="next"`` only. The next page is requested from our
own base URL with ``page_info``, ``limit`` and ``fields`` (the only parameters SHOPLINE honours
with a cursor), never from the link's absolute URL: that keeps the bearer token on the configured
host. A ``page_info`` seen twice raises :class:`~stokline.connectors.errors.PaginationLoopError`,
and so do :data:`MAX_EMPTY_PAGES` pages in a row without records that still lead on (one such page
is followed: a server may hand out an empty page and the rest after it).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from .._http import (
    ClientBase,
    Clock,
    HttpCore,
    LeakyBucketPacer,
    OnInvalid,
    RateLimit,
    RetryPolicy,
    SystemClock,
    segment,
)
from ..errors import PaginationLoopError, ResponseFormatError
from .models import (
    Customer,
    Fulfillment,
    FulfillmentLineItem,
    InventoryLevel,
    Location,
    Order,
    Product,
    Refund,
    TrackingInfo,
    Transaction,
    Variant,
    Webhook,
)

__all__ = ["DEFAULT_API_VERSION", "SHOPLINE_RATE_LIMIT", "ShoplineClient"]

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

DEFAULT_API_VERSION = "v20251201"
"""The API version of SHOPLINE's official Go SDK; mapping files choose their own."""

SHOPLINE_RATE_LIMIT = RateLimit(per_second=4.0, burst=40, headroom=4)
"""SHOPLINE's documented bucket (4/s, burst 40), with 4 slots kept back for jitter."""

MAX_LIMIT = 1000
MAX_ORDER_LIMIT = 100
MAX_CUSTOMER_LIMIT = 250
MAX_ORDER_IDS = 100
MAX_TRACKING_ENTRIES = 10
MAX_LEVEL_ITEM_IDS = 50
"""``inventory_levels.json`` requires ``inventory_item_ids``, at most 50 a request (documented)."""
MAX_LEVEL_LOCATION_IDS = 10
"""... and takes at most 10 ``location_ids``: there is no way to list a location's levels."""
LEVEL_READS_IN_FLIGHT = 4
"""Level requests in flight at once: at 4/s with a 200–400 ms round trip, two keep the pace;
more only open connections (each costs the pool work on every request)."""

MAX_EMPTY_PAGES = 5
"""Pages in a row without records that still carry a next link, before paging stops with an
error: a server handing out fresh cursors to nothing would otherwise be followed for ever."""

_LINK_PART = re.compile(r'^\s*<([^>]*)>\s*;\s*rel="?([A-Za-z]+)"?\s*$')
_VERSION = re.compile(r"^v\d{8}$")


class _ShoplineAuth(httpx.Auth):
    """Adds SHOPLINE's request headers: bearer token, and ``appkey`` + ms ``timestamp`` if set."""

    def __init__(self, token: SecretStr, app_key: str | None, clock: Clock) -> None:
        self._token = token
        self._app_key = app_key
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the headers; a static token needs no second round."""
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        if self._app_key:
            request.headers["appkey"] = self._app_key
            request.headers["timestamp"] = str(int(self._clock.time() * 1000))
        yield request

    def __repr__(self) -> str:
        return "_ShoplineAuth(token=SecretStr('**********'))"


def shopline_error_message(response: httpx.Response) -> str | None:
    """Flatten SHOPLINE error bodies: ``{"errors": ...}`` or ``{"code", "message", "errors"}``."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    parts = []
    if data.get("message"):
        parts.append(str(data["message"]))
    if data.get("errors"):
        parts.append(_flatten(data["errors"]))
    text = "; ".join(p for p in parts if p)
    if data.get("code") not in (None, "", 200, "200"):
        text = f"[{data['code']}] {text}".strip()
    return text or None


def _flatten(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_flatten(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "; ".join(_flatten(item) for item in value)
    return str(value)


def parse_next_link(header: str | None) -> str | None:
    """The URL of ``rel="next"`` in a ``link`` header, or None on the last page."""
    if not header:
        return None
    for part in header.split(","):
        match = _LINK_PART.match(part)
        if match and match.group(2).lower() == "next":
            return match.group(1)
    return None


def _batches(ids: Iterable[str | int], size: int) -> list[list[str]]:
    """Unique ids (first occurrence wins, order kept) cut into batches of ``size``."""
    unique = list(dict.fromkeys(str(i) for i in ids))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


async def _in_order(jobs: Iterable[Callable[[], Awaitable[T]]], window: int) -> AsyncIterator[T]:
    """Run ``jobs`` with up to ``window`` in flight, yielding their results in job order.

    The first failure (in job order) is raised; whatever is still running is cancelled, also
    when the caller stops early.
    """
    pending = iter(jobs)
    running: deque[asyncio.Task[T]] = deque()

    def launch() -> None:
        job = next(pending, None)
        if job is not None:
            running.append(asyncio.ensure_future(job()))

    try:
        for _ in range(window):
            launch()
        while running:
            result = await running.popleft()
            launch()
            yield result
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def _iso(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("SHOPLINE time filters need a timezone-aware datetime")
        return value.isoformat()
    return value


class ShoplineClient(ClientBase):
    """Async client of one SHOPLINE store's Admin REST API.

    ``base_url`` is the store (``https://{handle}.myshopline.com``) or a sandbox;
    ``access_token`` the custom app's token. Everything else has production defaults:
    ``rate_limit`` (or a shared ``pacer``), ``retry``, ``timeout`` (seconds or ``httpx.Timeout``),
    ``max_concurrency`` (requests in flight), ``id_batch_size`` (ids per filtered read),
    ``app_key`` (adds SHOPLINE's ``appkey``/``timestamp`` headers), and ``transport``/``clock``
    for tests.
    """

    service = "SHOPLINE"

    def __init__(
        self,
        base_url: str,
        access_token: SecretStr,
        *,
        api_version: str = DEFAULT_API_VERSION,
        app_key: str | None = None,
        rate_limit: RateLimit = SHOPLINE_RATE_LIMIT,
        pacer: LeakyBucketPacer | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_concurrency: int = 8,
        id_batch_size: int = 50,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(access_token, SecretStr):
            raise TypeError("access_token must be a pydantic.SecretStr")
        if not _VERSION.match(api_version):
            raise ValueError(f"api_version must look like v20251201, got {api_version!r}")
        if not 1 <= id_batch_size <= MAX_ORDER_IDS:
            raise ValueError(f"id_batch_size must be between 1 and {MAX_ORDER_IDS}")
        clock = clock or SystemClock()
        self.api_version = api_version
        self._id_batch_size = id_batch_size
        self._max_concurrency = max_concurrency
        self._core = HttpCore(
            service=self.service,
            base_url=f"{base_url.rstrip('/')}/admin/openapi/{api_version}/",
            headers={"Accept": "application/json"},
            retry=retry or RetryPolicy(),
            pacer=pacer or LeakyBucketPacer(rate_limit, clock),
            clock=clock,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            max_concurrency=max_concurrency,
            decimals="string",
            success=lambda status: status == 200,
            error_message=shopline_error_message,
            trace_headers=("traceId", "x-trace-id"),
            secrets=lambda: (access_token.get_secret_value(),),
            auth=_ShoplineAuth(access_token, app_key, clock),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ShoplineClient(base_url={str(self._core.base_url)!r})"

    # -- plumbing -----------------------------------------------------------------------------

    async def _one(
        self,
        method: str,
        path: str,
        key: str,
        model: type[ModelT],
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> ModelT:
        data, response = await self._core.request_json(
            method, path, params=params, json_body=json_body, idempotent=idempotent
        )
        record = self._core.field(data, key, dict, response)
        return self._core.model(model, record, response, where=key)

    async def _list(
        self, path: str, key: str, model: type[ModelT], params: Mapping[str, Any] | None = None
    ) -> list[ModelT]:
        data, response = await self._core.request_json("GET", path, params=params)
        records = self._core.field(data, key, list, response)
        return [
            self._core.model(model, r, response, where=f"{key}[{i}]") for i, r in enumerate(records)
        ]

    async def _paginate(
        self,
        path: str,
        key: str,
        model: type[ModelT],
        params: Mapping[str, Any],
        *,
        limit: int | None,
        fields: str | None = None,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[ModelT]:
        fields = self._check_fields(fields)
        query: dict[str, Any] = {**params, "limit": limit, "fields": fields}
        seen: set[str] = set()
        empty_in_a_row = 0
        while True:
            data, response = await self._core.request_json("GET", path, params=query)
            records = self._core.field(data, key, list, response)
            for record in self._core.each(model, records, response, key, on_invalid):
                yield record
            next_url = parse_next_link(response.headers.get("link"))
            if next_url is None:
                return
            empty_in_a_row = 0 if records else empty_in_a_row + 1
            if empty_in_a_row >= MAX_EMPTY_PAGES:
                raise self._core.masked(
                    PaginationLoopError(
                        f"{self.service} GET {response.request.url.path}: {empty_in_a_row} pages"
                        " in a row came back empty, each with a next link; stopping instead of"
                        " following them",
                        service=self.service,
                    )
                )
            page_info = parse_qs(urlsplit(next_url).query).get("page_info", [""])[0]
            if not page_info:
                shown = self._core.redact(next_url)[:200]
                raise self._core.masked(
                    ResponseFormatError(
                        f'the link header\'s rel="next" URL carries no page_info: {shown!r}',
                        service=self.service,
                        endpoint=self._core.endpoint_of(response),
                        field="link",
                    )
                )
            if page_info in seen:
                shown = self._core.redact(page_info)[:40]
                raise self._core.masked(
                    PaginationLoopError(
                        f"{self.service} GET {response.request.url.path}: page_info {shown!r}"
                        f" came back after {len(seen) + 1} pages; stopping instead of looping",
                        service=self.service,
                    )
                )
            seen.add(page_info)
            query = {"page_info": page_info, "limit": limit, "fields": fields}

    @staticmethod
    def _check_fields(fields: str | None) -> str | None:
        # Records are validated, and every model needs its id: a field list without it would
        # turn every record into a ResponseFormatError.
        if fields is not None and "id" not in {f.strip() for f in fields.split(",")}:
            raise ValueError(f"fields must include 'id', got {fields!r}")
        return fields

    @staticmethod
    def _check_limit(limit: int, maximum: int) -> int:
        if not 1 <= limit <= maximum:
            raise ValueError(f"limit must be between 1 and {maximum}, got {limit}")
        return limit

    # -- products and variants ----------------------------------------------------------------

    def iter_products(
        self,
        *,
        ids: Sequence[str] | None = None,
        updated_at_min: datetime | str | None = None,
        status: str | None = None,
        fields: str | None = None,
        limit: int = MAX_LIMIT,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[Product]:
        """All products (``GET products/products.json``), ``limit`` per page (max 1000).

        ``on_invalid`` receives each malformed product instead of its page failing (see
        :class:`~stokline.connectors._http.InvalidRecord`).
        """
        params = {
            "ids": ",".join(ids) if ids else None,
            "updated_at_min": _iso(updated_at_min),
            "status": status,
        }
        return self._paginate(
            "products/products.json",
            "products",
            Product,
            params,
            limit=self._check_limit(limit, MAX_LIMIT),
            fields=fields,
            on_invalid=on_invalid,
        )

    async def get_product(self, product_id: str) -> Product:
        """One product with its variants (``GET products/{id}.json``)."""
        return await self._one("GET", f"products/{segment(product_id)}.json", "product", Product)

    async def create_product(self, product: Mapping[str, Any]) -> Product:
        """Create a product with its variants (``POST products/products.json``).

        Not idempotent: a timeout is reported, never silently resent (a second product would
        carry the same SKUs).
        """
        return await self._one(
            "POST",
            "products/products.json",
            "product",
            Product,
            json_body={"product": dict(product)},
        )

    async def update_product(self, product_id: str, changes: Mapping[str, Any]) -> Product:
        """Change a product's own fields (``PUT products/{id}.json``); returns the product."""
        body = {"product": {**changes, "id": product_id}}
        return await self._one(
            "PUT", f"products/{segment(product_id)}.json", "product", Product, json_body=body
        )

    async def get_variant(self, variant_id: str) -> Variant:
        """One variant (``GET products/variants/{id}.json``)."""
        return await self._one(
            "GET", f"products/variants/{segment(variant_id)}.json", "variant", Variant
        )

    async def update_variant(self, variant_id: str, changes: Mapping[str, Any]) -> Variant:
        """Change a variant's fields (``PUT products/variants/{id}.json``); returns the variant."""
        body = {"variant": {**changes, "id": variant_id}}
        return await self._one(
            "PUT",
            f"products/variants/{segment(variant_id)}.json",
            "variant",
            Variant,
            json_body=body,
        )

    # -- inventory and locations --------------------------------------------------------------

    async def iter_inventory_levels(
        self,
        inventory_item_ids: Iterable[str],
        location_ids: Iterable[str] | None = None,
        *,
        limit: int = MAX_LIMIT,
    ) -> AsyncIterator[InventoryLevel]:
        """Levels of many inventory items (``GET inventory_levels.json``).

        SHOPLINE answers for at most 50 inventory items (``id_batch_size``, if smaller) and 10
        locations a request, so a large read is many requests: they are sent concurrently (up to
        4, or ``max_concurrency`` if lower, at once) and the levels come back in the order of the
        ids. A failed request fails the read and stops the others.
        """
        limit = self._check_limit(limit, MAX_LIMIT)
        locations: list[str | None] = [
            ",".join(batch) for batch in _batches(location_ids or (), MAX_LEVEL_LOCATION_IDS)
        ] or [None]
        size = min(self._id_batch_size, MAX_LEVEL_ITEM_IDS)

        async def one(items: list[str], where: str | None) -> list[InventoryLevel]:
            params = {"inventory_item_ids": ",".join(items), "location_ids": where}
            return [
                level
                async for level in self._paginate(
                    "inventory_levels.json", "inventory_levels", InventoryLevel, params, limit=limit
                )
            ]

        requests = (
            functools.partial(one, batch, where)
            for batch in _batches(inventory_item_ids, size)
            for where in locations
        )
        window = min(self._max_concurrency, LEVEL_READS_IN_FLIGHT)
        async with aclosing(_in_order(requests, window)) as batches:
            async for levels in batches:
                for level in levels:
                    yield level

    async def set_inventory_level(
        self, inventory_item_id: str, location_id: str, available: int
    ) -> InventoryLevel:
        """Set the absolute available quantity (``POST inventory_levels/set.json``).

        Absolute, so repeating it is harmless: retried like a read on timeouts and 5xx.
        """
        body = {
            "inventory_item_id": inventory_item_id,
            "location_id": location_id,
            "available": int(available),
        }
        return await self._one(
            "POST",
            "inventory_levels/set.json",
            "inventory_level",
            InventoryLevel,
            json_body=body,
            idempotent=True,
        )

    async def adjust_inventory_level(
        self, inventory_item_id: str, location_id: str, available_adjustment: int
    ) -> InventoryLevel:
        """Add a signed delta (``POST inventory_levels/adjust.json``); never blindly repeated."""
        body = {
            "inventory_item_id": inventory_item_id,
            "location_id": location_id,
            "available_adjustment": int(available_adjustment),
        }
        return await self._one(
            "POST",
            "inventory_levels/adjust.json",
            "inventory_level",
            InventoryLevel,
            json_body=body,
        )

    async def connect_inventory_level(
        self, inventory_item_id: str, location_id: str
    ) -> InventoryLevel:
        """Stock an inventory item at a location (``POST inventory_levels/connect.json``)."""
        body = {"inventory_item_id": inventory_item_id, "location_id": location_id}
        return await self._one(
            "POST",
            "inventory_levels/connect.json",
            "inventory_level",
            InventoryLevel,
            json_body=body,
            idempotent=True,
        )

    async def list_locations(self) -> list[Location]:
        """Every location of the store (``GET locations/list.json``)."""
        return await self._list("locations/list.json", "locations", Location)

    # -- orders -------------------------------------------------------------------------------

    @staticmethod
    def _order_filters(
        *,
        updated_at_min: datetime | str | None,
        updated_at_max: datetime | str | None,
        created_at_min: datetime | str | None,
        created_at_max: datetime | str | None,
        status: str | None,
        financial_status: str | None,
        fulfillment_status: str | None,
    ) -> dict[str, Any]:
        return {
            "updated_at_min": _iso(updated_at_min),
            "updated_at_max": _iso(updated_at_max),
            "created_at_min": _iso(created_at_min),
            "created_at_max": _iso(created_at_max),
            "status": status,
            "financial_status": financial_status,
            "fulfillment_status": fulfillment_status,
        }

    async def iter_orders(
        self,
        *,
        ids: Iterable[str] | None = None,
        updated_at_min: datetime | str | None = None,
        updated_at_max: datetime | str | None = None,
        created_at_min: datetime | str | None = None,
        created_at_max: datetime | str | None = None,
        status: str | None = "any",
        financial_status: str | None = None,
        fulfillment_status: str | None = None,
        fields: str | None = None,
        limit: int = MAX_ORDER_LIMIT,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[Order]:
        """Orders matching the filters (``GET orders.json``), 100 per page.

        ``status`` defaults to ``"any"`` (SHOPLINE's own default hides cancelled orders, which a
        sweep must see). ``ids`` are sent 100 per request — SHOPLINE's maximum — and are also
        the only way to read single orders (there is no single-order GET). ``on_invalid``
        receives each malformed order instead of its page failing (see
        :class:`~stokline.connectors._http.InvalidRecord`).
        """
        params = self._order_filters(
            updated_at_min=updated_at_min,
            updated_at_max=updated_at_max,
            created_at_min=created_at_min,
            created_at_max=created_at_max,
            status=status,
            financial_status=financial_status,
            fulfillment_status=fulfillment_status,
        )
        limit = self._check_limit(limit, MAX_ORDER_LIMIT)
        batches: list[list[str] | None] = (
            list(_batches(ids, MAX_ORDER_IDS)) if ids is not None else [None]
        )
        for batch in batches:
            query = {**params, "ids": ",".join(batch) if batch else None}
            async for order in self._paginate(
                "orders.json",
                "orders",
                Order,
                query,
                limit=limit,
                fields=fields,
                on_invalid=on_invalid,
            ):
                yield order

    async def get_order(self, order_id: str) -> Order | None:
        """One order by id via ``GET orders.json?ids=`` (None when it does not exist)."""
        async with aclosing(self.iter_orders(ids=[order_id])) as orders:
            async for order in orders:
                return order
        return None

    async def count_orders(
        self,
        *,
        updated_at_min: datetime | str | None = None,
        updated_at_max: datetime | str | None = None,
        created_at_min: datetime | str | None = None,
        created_at_max: datetime | str | None = None,
        status: str | None = "any",
        financial_status: str | None = None,
        fulfillment_status: str | None = None,
    ) -> int:
        """How many orders match (``GET orders/count.json``)."""
        params = self._order_filters(
            updated_at_min=updated_at_min,
            updated_at_max=updated_at_max,
            created_at_min=created_at_min,
            created_at_max=created_at_max,
            status=status,
            financial_status=financial_status,
            fulfillment_status=fulfillment_status,
        )
        data, response = await self._core.request_json("GET", "orders/count.json", params=params)
        count = self._core.field(data, "count", int, response)
        if isinstance(count, bool) or count < 0:
            shown = self._core.redact(repr(count))[:40]
            raise self._core.masked(
                ResponseFormatError(
                    f"field 'count' should be a non-negative integer, got {shown}",
                    service=self.service,
                    endpoint=self._core.endpoint_of(response),
                    field="count",
                )
            )
        return count

    async def update_order(self, order_id: str, changes: Mapping[str, Any]) -> Order:
        """Change editable order fields such as ``tags`` or ``note`` (``PUT orders/{id}.json``)."""
        body = {"order": {**changes, "id": order_id}}
        return await self._one(
            "PUT", f"orders/{segment(order_id)}.json", "order", Order, json_body=body
        )

    async def cancel_order(self, order_id: str, cancel_reason: str | None = None) -> Order:
        """Cancel an order (``POST orders/{id}/cancel.json``)."""
        body = {"cancel_reason": cancel_reason} if cancel_reason else {}
        return await self._one(
            "POST", f"orders/{segment(order_id)}/cancel.json", "order", Order, json_body=body
        )

    async def list_transactions(self, order_id: str) -> list[Transaction]:
        """Payment and refund transactions of an order (``GET orders/{id}/transactions.json``)."""
        return await self._list(
            f"orders/{segment(order_id)}/transactions.json", "transactions", Transaction
        )

    async def list_refunds(self, order_id: str) -> list[Refund]:
        """Refunds of an order (``GET orders/{id}/refunds.json``)."""
        return await self._list(f"orders/{segment(order_id)}/refunds.json", "refunds", Refund)

    async def create_refund(self, order_id: str, refund: Mapping[str, Any]) -> Refund:
        """Refund an order (``POST order/refund.json`` — singular "order", as SHOPLINE spells it).

        ``refund`` holds ``note``, ``notify``, ``refund_line_items``, ``shipping`` and
        ``transactions``.
        """
        body = {**refund, "order_id": order_id}
        data, response = await self._core.request_json("POST", "order/refund.json", json_body=body)
        # SHOPLINE's SDK reads the created refund from "data"; "refund" is accepted too.
        key = (
            "refund"
            if isinstance(data, dict) and "data" not in data and "refund" in data
            else "data"
        )
        record = self._core.field(data, key, dict, response)
        return self._core.model(Refund, record, response, where=key)

    # -- fulfilments --------------------------------------------------------------------------

    async def list_fulfillments(self, order_id: str) -> list[Fulfillment]:
        """Fulfilments of an order (``GET orders/{id}/fulfillments.json``)."""
        return await self._list(
            f"orders/{segment(order_id)}/fulfillments.json", "fulfillments", Fulfillment
        )

    @staticmethod
    def _tracking(entries: Sequence[TrackingInfo | Mapping[str, Any]]) -> list[dict[str, Any]]:
        if len(entries) > MAX_TRACKING_ENTRIES:
            raise ValueError(
                f"SHOPLINE takes at most {MAX_TRACKING_ENTRIES} tracking entries,"
                f" got {len(entries)}"
            )
        return [
            TrackingInfo.model_validate(entry).model_dump(exclude_none=True) for entry in entries
        ]

    async def create_fulfillment(
        self,
        order_id: str,
        line_items: Sequence[FulfillmentLineItem | Mapping[str, Any]],
        tracking_info_list: Sequence[TrackingInfo | Mapping[str, Any]] = (),
        *,
        notify_customer: bool = False,
    ) -> Fulfillment:
        """Fulfil order lines with tracking (``POST orders/{id}/fulfillments.json``).

        Line ids are sent as integers: SHOPLINE's fulfilment-create reads ``line_items[].id`` as
        a number (a documented quirk), unlike everywhere else.
        """
        lines = []
        for entry in line_items:
            item = FulfillmentLineItem.model_validate(entry)
            if not item.id.isdigit():
                raise ValueError(f"SHOPLINE line item ids are numeric, got {item.id!r}")
            lines.append({"id": int(item.id), "quantity": item.quantity})
        body = {
            "fulfillment": {
                "line_items": lines,
                "notify_customer": notify_customer,
                "tracking_info_list": self._tracking(tracking_info_list),
            }
        }
        return await self._one(
            "POST",
            f"orders/{segment(order_id)}/fulfillments.json",
            "fulfillment",
            Fulfillment,
            json_body=body,
        )

    async def update_fulfillment_tracking(
        self,
        order_id: str,
        fulfillment_id: str,
        tracking_info_list: Sequence[TrackingInfo | Mapping[str, Any]],
        *,
        notify_customer: bool = False,
    ) -> Fulfillment:
        """Replace a fulfilment's whole tracking list (``POST …/update_tracking.json``)."""
        body = {
            "fulfillment": {
                "notify_customer": notify_customer,
                "tracking_info_list": self._tracking(tracking_info_list),
            }
        }
        return await self._one(
            "POST",
            f"orders/{segment(order_id)}/fulfillments/{segment(fulfillment_id)}/update_tracking.json",
            "fulfillment",
            Fulfillment,
            json_body=body,
            idempotent=True,
        )

    async def cancel_fulfillment(self, order_id: str, fulfillment_id: str) -> Fulfillment:
        """Cancel a fulfilment (``POST orders/{id}/fulfillments/{fid}/cancel.json``)."""
        return await self._one(
            "POST",
            f"orders/{segment(order_id)}/fulfillments/{segment(fulfillment_id)}/cancel.json",
            "fulfillment",
            Fulfillment,
            json_body={},
        )

    # -- customers ----------------------------------------------------------------------------

    def iter_customers(
        self,
        *,
        updated_at_min: datetime | str | None = None,
        fields: str | None = None,
        limit: int = MAX_CUSTOMER_LIMIT,
    ) -> AsyncIterator[Customer]:
        """All customers (``GET v2/customers.json``), 250 per page."""
        return self._paginate(
            "v2/customers.json",
            "customers",
            Customer,
            {"updated_at_min": _iso(updated_at_min)},
            limit=self._check_limit(limit, MAX_CUSTOMER_LIMIT),
            fields=fields,
        )

    async def get_customer(self, customer_id: str) -> Customer:
        """One customer (``GET customers/v2/{id}.json``)."""
        return await self._one(
            "GET", f"customers/v2/{segment(customer_id)}.json", "customer", Customer
        )

    def search_customers(
        self, query: str, *, limit: int = MAX_CUSTOMER_LIMIT
    ) -> AsyncIterator[Customer]:
        """Fuzzy search over phone, e-mail, name, address (``GET customers/v2/search.json``)."""
        return self._paginate(
            "customers/v2/search.json",
            "customers",
            Customer,
            {"query_param": query},
            limit=self._check_limit(limit, MAX_CUSTOMER_LIMIT),
        )

    async def create_customer(self, customer: Mapping[str, Any]) -> Customer:
        """Create a customer (``POST customers.json``)."""
        return await self._one(
            "POST", "customers.json", "customer", Customer, json_body={"customer": dict(customer)}
        )

    # -- webhooks -----------------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        """Webhook subscriptions of this app (``GET webhooks.json``)."""
        return await self._list("webhooks.json", "webhooks", Webhook)

    async def create_webhook(
        self, address: str, topic: str, *, api_version: str | None = None
    ) -> Webhook:
        """Subscribe ``address`` to one ``topic`` (``POST webhooks.json``)."""
        body = {
            "webhook": {
                "address": address,
                "topic": topic,
                "api_version": api_version or self.api_version,
            }
        }
        return await self._one("POST", "webhooks.json", "webhook", Webhook, json_body=body)

    async def update_webhook(
        self, webhook_id: int | str, *, address: str | None = None, api_version: str | None = None
    ) -> Webhook:
        """Change a subscription's address or API version (``PUT webhooks/{id}.json``)."""
        fields = {k: v for k, v in (("address", address), ("api_version", api_version)) if v}
        return await self._one(
            "PUT",
            f"webhooks/{segment(str(webhook_id))}.json",
            "webhook",
            Webhook,
            json_body={"webhook": fields},
            idempotent=True,
        )

    async def delete_webhook(self, webhook_id: int | str) -> None:
        """End one subscription (``DELETE webhooks/{id}.json``); SHOPLINE answers ``{}``."""
        await self._core.request_json(
            "DELETE", f"webhooks/{segment(str(webhook_id))}.json", idempotent=True
        )
