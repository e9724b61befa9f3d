"""``StoklyClient``: the Stokly API, one async method per endpoint the syncs use.

Async for the same reason as the SHOPLINE client (see :mod:`stokline.connectors.shopline.client`):
the rate limit, not the round trip, should bound a batch. Stokly clients are observed to keep to
120 requests a minute and to pause when ``x-ratelimit-remaining`` drops to 3 or less; both are
done here (:data:`STOKLY_RATE_LIMIT` and ``low_quota_pause``).

Lists use ``page``/``size`` (pages from 0, size up to 1000: the maximum by default) inside the
``{"metadata":{"count"},"data":[...]}`` envelope; paging stops at a short page, an empty page or
``count``, and a page identical to one already seen raises
:class:`~stokline.connectors.errors.PaginationLoopError` (a server ignoring ``page`` would
otherwise feed the same records forever). An empty page while ``count`` says records remain is
asked for again (:data:`MAX_EMPTY_ANSWERS` times in all) and then raises the same error: stopping
there would hand the caller a short list as if it were the whole one.

Reads for many ids are sent as one ``=*{a,b,…}`` filter per batch (``id_batch_size``), never one
call per id. Invented [I] endpoints come from :class:`~.invented.InventedContracts`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from .auth import AccessToken, StoklyTokenAuth, grant_signature
from .filters import Filter, and_, eq, one_of
from .invented import InventedContracts
from .models import (
    Bin,
    Channel,
    Created,
    Customer,
    InventoryRecord,
    Invoice,
    Item,
    Listing,
    Location,
    SaleOrder,
    SaleOrderItem,
)

__all__ = ["STOKLY_RATE_LIMIT", "StoklyClient"]

ModelT = TypeVar("ModelT", bound=BaseModel)

STOKLY_RATE_LIMIT = RateLimit(per_second=2.0, burst=120, headroom=10, rolling=True)
"""120 requests a minute, as Stokly's own integrations self-throttle, counted over any minute: a
minute's requests may go at once (the reads of a full stock pass do), never more in any minute.
Ten are left for other callers of the account, well above the 3 at which the client pauses
(``low_quota``)."""

MAX_PAGE_SIZE = 1000
MAX_ADJUSTMENT_LINES = 500
MAX_EMPTY_ANSWERS = 3
"""Times a page may come back empty while the answer says more records (or events) follow."""


def stokly_error_message(response: httpx.Response) -> str | None:
    """Stokly's error bodies are ``{"message": …}`` (sometimes with more keys)."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(data, dict):
        for key in ("message", "error", "errors"):
            if data.get(key):
                return str(data[key])
    return None


def _batches(values: Iterable[Any], size: int) -> list[list[Any]]:
    unique = list(dict.fromkeys(values))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def _combine(*filters: Filter | None) -> Filter | None:
    present = [f for f in filters if f is not None]
    return and_(*present) if present else None


class StoklyClient(InventedContracts, ClientBase):
    """Async client of one Stokly account.

    ``base_url`` is ``https://api.stok.ly`` (or a sandbox); ``account_key``, ``client_id`` and
    ``client_secret`` are the app's credentials for ``POST /v1/grant``. The rest has production
    defaults: ``rate_limit`` (or a shared ``pacer``), ``low_quota``/``low_quota_pause`` (pause when
    ``x-ratelimit-remaining`` falls to that), ``retry``, ``timeout``, ``max_concurrency``,
    ``id_batch_size`` (ids per ``=*{}`` filter), ``page_size``, ``refresh_margin`` (seconds before
    ``expiry`` to replace the token), and ``transport``/``clock`` for tests.
    """

    service = "Stokly"

    def __init__(
        self,
        base_url: str,
        *,
        account_key: str,
        client_id: str,
        client_secret: SecretStr,
        rate_limit: RateLimit = STOKLY_RATE_LIMIT,
        pacer: LeakyBucketPacer | None = None,
        low_quota: int = 3,
        low_quota_pause: float = 60.0,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_concurrency: int = 4,
        id_batch_size: int = 100,
        page_size: int = MAX_PAGE_SIZE,
        refresh_margin: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(client_secret, SecretStr):
            raise TypeError("client_secret must be a pydantic.SecretStr")
        if not 1 <= id_batch_size <= MAX_PAGE_SIZE:
            raise ValueError(f"id_batch_size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self._page_size = page_size
        clock = clock or SystemClock()
        self.account_key = account_key
        # Paired with the secret in every grant (a server echoing the request shows both), so
        # held and masked like one: it costs nothing and a client id helps an attacker.
        self._client_id = SecretStr(client_id)
        self._client_secret = client_secret
        # Derived from the secret and as good as one: kept masked like it.
        self._signature = SecretStr(grant_signature(client_id, client_secret))
        self._id_batch_size = id_batch_size
        self._low_quota = low_quota
        self._low_quota_pause = low_quota_pause
        self._auth = StoklyTokenAuth(self._grant, clock, refresh_margin=refresh_margin)
        self._core = HttpCore(
            service=self.service,
            base_url=base_url.rstrip("/") + "/",
            headers={"Accept": "application/json"},
            retry=retry or RetryPolicy(),
            pacer=pacer or LeakyBucketPacer(rate_limit, clock),
            clock=clock,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            max_concurrency=max_concurrency,
            decimals="number",
            success=lambda status: 200 <= status < 300,
            error_message=stokly_error_message,
            trace_headers=("x-request-id", "x-amzn-requestid", "x-amz-cf-id"),
            secrets=self._secret_values,
            auth=self._auth,
            on_response=self._watch_quota,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"StoklyClient(base_url={str(self._core.base_url)!r})"

    @property
    def client_id(self) -> str:
        """The app's client id (masked in every error, like the secret it is paired with)."""
        return self._client_id.get_secret_value()

    @property
    def auth(self) -> StoklyTokenAuth:
        """The token cache (``grants`` counts the grants made)."""
        return self._auth

    # -- auth and quota -----------------------------------------------------------------------

    def _secret_values(self) -> tuple[str, ...]:
        token = self._auth.token
        values = [
            self._client_secret.get_secret_value(),
            self._signature.get_secret_value(),
            self._client_id.get_secret_value(),
        ]
        if token is not None:
            values.append(token.value.get_secret_value())
        return tuple(values)

    async def _grant(self) -> AccessToken:
        body = {
            "accountkey": self.account_key,
            "clientId": self.client_id,
            "signature": self._signature.get_secret_value(),
        }
        obtained_at = self._core.clock.time()
        data, response = await self._core.request_json(
            "POST",
            "/v1/grant",
            json_body=body,
            idempotent=True,
            authenticated=False,
            use_slot=False,
        )
        outer = self._core.field(data, "data", dict, response)
        result = self._core.field(outer, "authenticationResult", dict, response, where="data")
        where = "data.authenticationResult"
        token = self._core.field(result, "accessToken", str, response, where=where)
        expiry_text = self._core.field(result, "expiry", str, response, where=where)
        try:
            expiry = datetime.fromisoformat(expiry_text)
        except ValueError:
            shown = self._core.redact(expiry_text)[:40]
            raise self._core.masked(
                ResponseFormatError(
                    f"field '{where}.expiry' is not an ISO-8601 time: {shown!r}",
                    service=self.service,
                    endpoint=self._core.endpoint_of(response),
                    field=f"{where}.expiry",
                )
            ) from None
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        return AccessToken(SecretStr(token), obtained_at, expiry.timestamp())

    def _watch_quota(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is None:
            return
        try:
            left = int(float(remaining))
        except ValueError:
            return
        # A 429 carries its own Retry-After, which the core honours; this is the early brake.
        if left <= self._low_quota and response.status_code != 429:
            self._core.pacer.pause_for(self._low_quota_pause)

    # -- plumbing -----------------------------------------------------------------------------

    async def _get(self, path: str, model: type[ModelT]) -> ModelT:
        data, response = await self._core.request_json("GET", path)
        record = self._core.field(data, "data", dict, response)
        return self._core.model(model, record, response, where="data")

    async def _create(self, path: str, body: Any, *, idempotent: bool = False) -> Created:
        data, response = await self._core.request_json(
            "POST", path, json_body=body, idempotent=idempotent
        )
        record = self._core.field(data, "data", dict, response)
        return self._core.model(Created, record, response, where="data")

    async def _paginate(
        self,
        path: str,
        model: type[ModelT],
        *,
        filter: Filter | None = None,
        size: int | None = None,
        params: Mapping[str, Any] | None = None,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[ModelT]:
        size = size or self._page_size
        seen: set[str] = set()
        page = 0
        delivered = 0
        empty_answers = 0
        while True:
            query = {
                **(params or {}),
                "page": page,
                "size": size,
                "filter": str(filter) if filter is not None else None,
            }
            data, response = await self._core.request_json("GET", path, params=query)
            rows = self._core.field(data, "data", list, response)
            metadata = self._core.field(data, "metadata", dict, response)
            count = self._core.field(metadata, "count", int, response, where="metadata")
            if not rows and delivered < count:
                # Records remain by the answer's own count, yet none came: ask again, then stop
                # with an error rather than hand back a short list as if it were all.
                empty_answers += 1
                if empty_answers >= MAX_EMPTY_ANSWERS:
                    raise self._core.masked(
                        PaginationLoopError(
                            f"{self.service} GET {response.request.url.path}: page {page} came"
                            f" back empty {empty_answers} times though metadata.count says"
                            f" {count} records and {delivered} were read; stopping instead of"
                            " reading a short list",
                            service=self.service,
                        )
                    )
                await self._core.clock.sleep(self._core.retry.backoff(empty_answers))
                continue
            empty_answers = 0
            if rows:
                fingerprint = hashlib.sha256(
                    json.dumps(rows, sort_keys=True, default=str).encode()
                ).hexdigest()
                if fingerprint in seen:
                    raise self._core.masked(
                        PaginationLoopError(
                            f"{self.service} GET {response.request.url.path}: page {page} repeats"
                            " an earlier page; the server seems to ignore 'page', stopping",
                            service=self.service,
                        )
                    )
                seen.add(fingerprint)
            for record in self._core.each(model, rows, response, "data", on_invalid):
                yield record
            delivered += len(rows)
            if len(rows) < size or delivered >= count:
                return
            page += 1

    async def _iter_by_ids(
        self,
        path: str,
        model: type[ModelT],
        field: str,
        ids: Iterable[str] | None,
        base: Filter | None,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[ModelT]:
        if ids is None:
            async for record in self._paginate(path, model, filter=base, on_invalid=on_invalid):
                yield record
            return
        for batch in _batches(ids, self._id_batch_size):
            async for record in self._paginate(
                path, model, filter=_combine(one_of(field, batch), base), on_invalid=on_invalid
            ):
                yield record

    # -- items, locations, stock --------------------------------------------------------------

    def iter_items(
        self,
        *,
        skus: Iterable[str] | None = None,
        filter: Filter | None = None,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[Item]:
        """Items (``GET /v0/items``), optionally only ``skus`` (one ``=*{}`` call per batch).

        ``on_invalid`` receives each malformed item instead of its page failing.
        """
        return self._iter_by_ids("/v0/items", Item, "sku", skus, filter, on_invalid)

    async def get_item(self, item_id: str) -> Item:
        """One item (``GET /v0/items/{id}``)."""
        return await self._get(f"/v0/items/{segment(item_id)}", Item)

    def iter_locations(self, filter: Filter | None = None) -> AsyncIterator[Location]:
        """Locations (``GET /v0/locations``)."""
        return self._paginate("/v0/locations", Location, filter=filter)

    def iter_bins(self, location_id: str, filter: Filter | None = None) -> AsyncIterator[Bin]:
        """Bins of a location (``GET /v0/locations/{id}/bins``); default bin: ``eq("default", 1)``."""
        return self._paginate(f"/v0/locations/{segment(location_id)}/bins", Bin, filter=filter)

    async def iter_inventory_records(
        self,
        *,
        item_ids: Iterable[str] | None = None,
        location_ids: Iterable[str] | None = None,
        filter: Filter | None = None,
        on_invalid: OnInvalid | None = None,
    ) -> AsyncIterator[InventoryRecord]:
        """Stock per item × location × bin (``GET /v1/inventory-records``), ids batched.

        ``on_invalid`` receives each malformed record instead of its page failing.
        """
        locations = list(dict.fromkeys(location_ids)) if location_ids is not None else None
        if locations is not None and not locations:
            return
        base = _combine(one_of("locationId", locations) if locations else None, filter)
        async for record in self._iter_by_ids(
            "/v1/inventory-records", InventoryRecord, "itemId", item_ids, base, on_invalid
        ):
            yield record

    async def create_adjustment(
        self,
        location_id: str,
        lines: Sequence[tuple[str, int] | Mapping[str, Any]],
        *,
        reason: str,
        bin_id: str | None = None,
    ) -> list[Created]:
        """Change stock by signed deltas (``POST /v1/adjustments``), 500 lines per call.

        Deltas are not idempotent: a timeout is reported, never silently resent.
        """
        items = []
        for line in lines:
            if isinstance(line, Mapping):
                items.append({"itemId": str(line["itemId"]), "quantity": line["quantity"]})
            else:
                item_id, quantity = line
                items.append({"itemId": str(item_id), "quantity": quantity})
        created = []
        for start in range(0, len(items), MAX_ADJUSTMENT_LINES):
            body = {
                "locationId": location_id,
                "binId": bin_id,
                "reason": reason,
                "items": items[start : start + MAX_ADJUSTMENT_LINES],
            }
            if bin_id is None:
                del body["binId"]
            created.append(await self._create("/v1/adjustments", body))
        return created

    # -- channels and listings ----------------------------------------------------------------

    def iter_channels(self, filter: Filter | None = None) -> AsyncIterator[Channel]:
        """Sales channels (``GET /v0/channels``); SHOPLINE channels: ``eq("type", 7)``."""
        return self._paginate("/v0/channels", Channel, filter=filter)

    def iter_listings(
        self, channel_id: str, filter: Filter | None = None
    ) -> AsyncIterator[Listing]:
        """Listings of a channel (``GET /v0/channels/{id}/listings``)."""
        return self._paginate(
            f"/v0/channels/{segment(channel_id)}/listings", Listing, filter=filter
        )

    # -- customers ----------------------------------------------------------------------------

    def iter_customers(self, filter: Filter | None = None) -> AsyncIterator[Customer]:
        """Customers (``GET /v0/customers``)."""
        return self._paginate("/v0/customers", Customer, filter=filter)

    async def find_customers_by_email(self, emails: Iterable[str]) -> list[Customer]:
        """Customers whose e-mail is one of ``emails`` (one call per batch)."""
        return [
            c async for c in self._iter_by_ids("/v0/customers", Customer, "email", emails, None)
        ]

    async def find_customers_by_phone(self, phones: Iterable[str]) -> list[Customer]:
        """Customers whose phone is one of ``phones`` (one call per batch)."""
        return [
            c async for c in self._iter_by_ids("/v0/customers", Customer, "phone", phones, None)
        ]

    async def create_customer(self, customer: Mapping[str, Any]) -> Created:
        """Create a customer (``POST /v0/customers``)."""
        return await self._create("/v0/customers", dict(customer))

    # -- sale orders --------------------------------------------------------------------------

    async def create_sale_order(self, sale_order: Mapping[str, Any]) -> Created:
        """Create a sale order (``POST /v2/saleorders``).

        There is no idempotency key: search with :meth:`find_sale_orders_by_source` first. A
        timeout here is reported, never resent, because the order may exist.
        """
        return await self._create("/v2/saleorders", dict(sale_order))

    def iter_sale_orders(self, filter: Filter | None = None) -> AsyncIterator[SaleOrder]:
        """Sale orders (``GET /v2/saleorders``)."""
        return self._paginate("/v2/saleorders", SaleOrder, filter=filter)

    async def find_sale_orders_by_source(
        self, channel_id: str, source_reference_ids: Iterable[str]
    ) -> list[SaleOrder]:
        """Sale orders of ``channel_id`` whose ``sourceReferenceId`` is one of the ids.

        One call per batch: ``[sourceId]=={channel}&&[sourceReferenceId]=*{a,b,c}``.
        """
        found = []
        for batch in _batches((str(i) for i in source_reference_ids), self._id_batch_size):
            expression = and_(eq("sourceId", channel_id), one_of("sourceReferenceId", batch))
            found.extend(
                [o async for o in self._paginate("/v2/saleorders", SaleOrder, filter=expression)]
            )
        return found

    async def get_sale_order(self, sale_order_id: str) -> SaleOrder:
        """One sale order (``GET /v2/saleorders/{id}``)."""
        return await self._get(f"/v2/saleorders/{segment(sale_order_id)}", SaleOrder)

    async def get_sale_order_items(self, sale_order_id: str) -> list[SaleOrderItem]:
        """The lines of a sale order (``GET /v2/saleorders/{id}/items``)."""
        path = f"/v2/saleorders/{segment(sale_order_id)}/items"
        return [line async for line in self._paginate(path, SaleOrderItem)]

    async def patch_sale_order(self, sale_order_id: str, changes: Mapping[str, Any]) -> Created:
        """Change fields such as ``tags`` (``PATCH /v2/saleorders/{id}``)."""
        data, response = await self._core.request_json(
            "PATCH",
            f"/v2/saleorders/{segment(sale_order_id)}",
            json_body=dict(changes),
            idempotent=True,
        )
        record = self._core.field(data, "data", dict, response)
        return self._core.model(Created, record, response, where="data")

    async def collect_items(
        self,
        sale_order_id: str,
        location_id: str,
        lines: Sequence[tuple[str, int] | Mapping[str, Any]],
    ) -> Created:
        """Fulfil lines from a location (``POST /v2/saleorders/{id}/collect-items``, 202)."""
        items = [
            {"lineId": str(line["lineId"]), "quantity": line["quantity"]}
            if isinstance(line, Mapping)
            else {"lineId": str(line[0]), "quantity": line[1]}
            for line in lines
        ]
        body = {"locationId": location_id, "items": items}
        return await self._create(f"/v2/saleorders/{segment(sale_order_id)}/collect-items", body)

    # -- invoices -----------------------------------------------------------------------------

    async def create_invoice(
        self, sale_order_id: str, invoices: Sequence[Mapping[str, Any]]
    ) -> Created:
        """Invoice a sale order (``POST /v2/saleorders/{id}/invoices``); ``ids`` lists them all."""
        body = {"invoices": [dict(invoice) for invoice in invoices]}
        return await self._create(f"/v2/saleorders/{segment(sale_order_id)}/invoices", body)

    def iter_invoices(self, filter: Filter | None = None) -> AsyncIterator[Invoice]:
        """Invoices (``GET /v0/invoices``)."""
        return self._paginate("/v0/invoices", Invoice, filter=filter)
