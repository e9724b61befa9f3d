"""The request core shared by both clients: pacing, retries, error mapping, JSON decoding.

Every HTTP call of ``StoklyClient`` and ``ShoplineClient`` goes through :meth:`HttpCore.request`,
so the retry and pacing decisions live in exactly one place:

* **Pacing** — a :class:`LeakyBucketPacer` (GCRA, the "virtual scheduling" form of a leaky bucket)
  hands out send slots so that concurrent callers never overflow the API's bucket: steady state
  sees no 429 at all. Each attempt, retries included, takes a slot.
* **Transient failures** — 429 (``Retry-After`` honoured, and the whole pacer pauses so the other
  in-flight callers back off too), 500/502/503/504, timeouts and connection errors are retried
  with exponential backoff and jitter, bounded by :class:`RetryPolicy` (attempts *and* seconds).
* **Non-idempotent writes** (creates, stock deltas) are retried only when the request certainly
  did not reach the application: connection failures and 429. A timeout or a 5xx on a create
  may have created the record, and blindly sending it again would make a duplicate; the caller
  (the sync layer) resolves that with its search-before-create check instead.
* **Answers that are not JSON at all** on a success status — an HTML page (a proxy's, a
  maintenance page), a body cut off part-way, an empty body — are not the API's answer: a read
  is tried again like after a 5xx, and the last one becomes an
  :class:`~stokline.connectors.errors.UnreadableResponseError` (transient); a write is never
  resent (it may have been applied) and raises it at once.
* **Everything else** becomes a typed error at once (see :mod:`stokline.connectors.errors`):
  a body that is not JSON (``NaN``, nesting too deep to read, a ``Content-Encoding`` that lies),
  a value that cannot be sent (a lone surrogate in a query or a body) — never a bare
  ``RecursionError`` or ``UnicodeEncodeError``. Every error is masked with the credentials the
  client holds before it is raised.

* **Deadlines** — code that must end in bounded time (a stock pass) runs its requests under
  :func:`deadline`: past it no attempt is started, no retry is waited for and no rate-limit slot
  is waited for; such a request raises :class:`~stokline.connectors.errors.DeadlineError`
  without being sent. An attempt already sent runs to its answer or its timeout, so the code
  ends at most one request timeout after its deadline.

Time is read and slept through a :class:`Clock`, so tests run hours of pacing in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from .errors import (
    ConnectorError,
    DeadlineError,
    RateLimitedError,
    RequestEncodingError,
    ResponseFormatError,
    TransportError,
    UnreadableResponseError,
    error_class_for_status,
    redact,
)

__all__ = [
    "Clock",
    "Deadline",
    "HttpCore",
    "InvalidRecord",
    "LeakyBucketPacer",
    "OnInvalid",
    "RateLimit",
    "RetryPolicy",
    "SystemClock",
    "current_deadline",
    "deadline",
    "parse_model",
    "segment",
]

logger = logging.getLogger("stokline.connectors")

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
ErrorT = TypeVar("ErrorT", bound=ConnectorError)

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Failures that prove the request never reached the server: safe to repeat even for a create.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Clock(Protocol):
    """Where the connectors read time and sleep; tests substitute a fake."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, for intervals."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock), for comparing with API timestamps."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time` and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the event loop."""
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Deadline:
    """A moment (``at``, on ``clock``'s monotonic scale) after which no request is started.

    ``budget`` is the seconds it was given and ``what`` names whose budget it is, for messages
    ("the stock pass's time budget of 270 s ran out").
    """

    at: float
    budget: float
    clock: Clock
    what: str = "the time budget"

    def remaining(self) -> float:
        """Seconds left (negative once it has passed)."""
        return self.at - self.clock.monotonic()

    def passed(self) -> bool:
        """Whether no request may start any more."""
        return self.remaining() <= 0


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "stokline_deadline", default=None
)


def current_deadline() -> Deadline | None:
    """The deadline the running code's requests are under, if any."""
    return _DEADLINE.get()


@contextlib.contextmanager
def deadline(
    seconds: float, *, clock: Clock | None = None, what: str = "the time budget"
) -> Iterator[Deadline]:
    """Run the block's requests (of any client, in this task and the tasks it starts) under a
    deadline ``seconds`` from now on ``clock`` (default: the real one).

    Past it, a request's next attempt, its next retry or its wait for a rate-limit slot is not
    begun: it raises :class:`~stokline.connectors.errors.DeadlineError` instead, unsent. A
    request already on the wire is left to its answer or its timeout, so the block's requests
    all end within one request timeout after the deadline. Nested, the earlier deadline holds.
    """
    clock = clock or SystemClock()
    mine = Deadline(clock.monotonic() + max(0.0, seconds), seconds, clock, what)
    outer = _DEADLINE.get()
    if outer is not None and outer.remaining() < mine.remaining():
        mine = outer
    token = _DEADLINE.set(mine)
    try:
        yield mine
    finally:
        _DEADLINE.reset(token)


@dataclass(frozen=True)
class RetryPolicy:
    """How long transient failures are retried.

    A request is tried at most ``max_attempts`` times and never past ``max_elapsed`` seconds after
    its first attempt (a ``Retry-After`` that would cross that line ends the retries at once).
    Backoff before retry *n* is ``min(backoff_max, backoff_base * 2**(n-1))`` stretched by up to
    ``jitter`` (a fraction) so that concurrent callers do not retry in lock step.
    """

    max_attempts: int = 5
    max_elapsed: float = 120.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.max_elapsed < 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("RetryPolicy durations must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter is a fraction between 0 and 1")

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return base * (1 + self.jitter * rand())


@dataclass(frozen=True)
class RateLimit:
    """An API's limit: ``per_second`` requests a second on average, ``burst`` at once.

    As a leaky bucket (the default) the API drains ``per_second`` requests per second and holds
    ``burst``. With ``rolling`` it counts requests in a window of ``burst ÷ per_second`` seconds
    instead (120 a minute: ``RateLimit(2.0, 120, rolling=True)``): a whole window's requests may
    go at once, and no window ever holds more than ``burst``.

    ``headroom`` slots of the burst are left unused by the client, to absorb network jitter (two
    requests sent 250 ms apart can arrive 50 ms apart) and requests made by other processes.
    """

    per_second: float
    burst: int
    headroom: int = 0
    rolling: bool = False

    def __post_init__(self) -> None:
        if self.per_second <= 0:
            raise ValueError("RateLimit.per_second must be positive")
        if self.burst < 1 or not 0 <= self.headroom < self.burst:
            raise ValueError("RateLimit needs burst >= 1 and 0 <= headroom < burst")


KEEPALIVE_EXPIRY_S = 4.0
"""An idle connection is not used again after this long. Servers close idle connections after a
few seconds (uvicorn, behind many APIs, after 5); reusing one the server is closing that very
moment fails with a read error. httpx's default, 5 s, is the same figure, so a request sent
after a 5 s backoff could meet that race and fail its retry."""


class LeakyBucketPacer:
    """Client-side leaky bucket (GCRA): grants send slots no faster than the API drains them.

    For a ``rolling`` limit it grants a slot when fewer than ``burst − headroom`` slots were
    granted in the window before it: a slot may be reserved ahead, so the window is kept as the
    times of the last ``burst − headroom`` slots, the oldest of which says when the next may go.

    The slot is reserved synchronously (no ``await`` between reading and updating the state) and
    under a thread lock, so one pacer can be shared by every client of the same API credentials
    in a process — asyncio tasks and threads (e.g. Prefect's thread pool, each thread with its own
    event loop) alike: pass it as ``pacer=`` to the clients. :meth:`pause_until` holds every
    caller back, e.g. for a 429's ``Retry-After`` or a low remaining-quota header.
    """

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._interval = 1.0 / limit.per_second
        self._tolerance = (limit.burst - limit.headroom - 1) * self._interval
        self._tat = -math.inf  # theoretical arrival time of the next request
        self._paused_until = -math.inf
        self._lock = threading.Lock()
        self._window = limit.burst / limit.per_second
        self._recent: deque[float] | None = (
            deque(maxlen=limit.burst - limit.headroom) if limit.rolling else None
        )

    def _reserve(self, not_after: float | None = None) -> float | None:
        """Book the next slot; return how long to wait for it (None: it would come after
        ``not_after``, and nothing is booked)."""
        with self._lock:
            now = self._clock.monotonic()
            start = max(now, self._paused_until)
            if self._recent is not None:
                if len(self._recent) == self._recent.maxlen:
                    start = max(start, self._recent[0] + self._window)
                if not_after is not None and start > not_after:
                    return None
                self._recent.append(start)
                return start - now
            tat = max(self._tat, start)
            send_at = max(start, tat - self._tolerance)
            if not_after is not None and send_at > not_after:
                return None
            self._tat = tat + self._interval
            return send_at - now

    async def acquire(self, not_after: float | None = None) -> bool:
        """Wait for a send slot; True once it is granted.

        With ``not_after`` (a moment on the clock's monotonic scale), False at once when the
        slot would come after it (a long ``Retry-After`` pause, a long queue): nothing is booked
        and nothing waited for.
        """
        while True:
            wait = self._reserve(not_after)
            if wait is None:
                return False
            if wait > 0:
                await self._clock.sleep(wait)
            # A pause announced while we slept voids the slot: reserve again after it.
            with self._lock:
                if self._clock.monotonic() >= self._paused_until:
                    return True

    def pause_until(self, monotonic_deadline: float) -> None:
        """Grant no slot before ``monotonic_deadline``; the bucket restarts empty-ish after it."""
        with self._lock:
            if monotonic_deadline > self._paused_until:
                self._paused_until = monotonic_deadline
                self._tat = max(self._tat, monotonic_deadline)

    def pause_for(self, seconds: float) -> None:
        """Grant no slot for the next ``seconds``."""
        self.pause_until(self._clock.monotonic() + seconds)


def segment(value: str | int) -> str:
    """``value`` as one URL path segment: ids never smuggle ``/``, ``?`` or ``..`` into a path."""
    text = str(value)
    if not text or text in (".", ".."):
        raise ValueError(f"invalid id for a URL path: {text!r}")
    try:
        return quote(text, safe="")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"invalid id for a URL path: {text[:40]!r} is not valid Unicode ({exc.reason})"
        ) from None


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now_epoch
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def encode_json(body: Any, *, decimals: Literal["string", "number"]) -> bytes:
    """Serialise a request body; ``Decimal`` becomes a string (SHOPLINE) or an exact number.

    A Decimal is sent as a JSON number only when the float's shortest repr gives back the very
    same decimal value, so money never silently changes on the way out.
    """

    def default(value: Any) -> Any:
        """Serialise the types ``json`` does not know."""
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"the amount {value} is not a number JSON can carry")
            if decimals == "string":
                return str(value)
            if value == value.to_integral_value():
                return int(value)
            as_float = float(value)
            if Decimal(repr(as_float)) != value:
                raise ValueError(f"{value} cannot be sent as an exact JSON number")
            return as_float
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, pydantic.SecretStr):
            raise TypeError("refusing to serialise a secret into a request body")
        if isinstance(value, pydantic.BaseModel):
            return value.model_dump(mode="python", by_alias=True, exclude_none=True)
        raise TypeError(f"cannot serialise {type(value).__name__} to JSON")

    text = json.dumps(
        body, default=default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    return text.encode()


def _loc_text(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


def describe_validation_error(exc: pydantic.ValidationError, where: str = "") -> tuple[str, str]:
    """One readable line (and the first field) from a pydantic error — never the input values."""
    problems = []
    first_field = ""
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:3]:
        loc = _loc_text(err["loc"])
        if where:
            loc = f"{where}.{loc}" if not loc.startswith("[") else f"{where}{loc}"
        first_field = first_field or loc
        problems.append(f"field {loc}: {err['msg']}")
    if exc.error_count() > 3:
        problems.append(f"and {exc.error_count() - 3} more")
    return "; ".join(problems), first_field


def parse_model(
    model: type[ModelT], data: Any, *, service: str, endpoint: str, where: str = ""
) -> ModelT:
    """Validate ``data`` as ``model``; a mismatch is a :class:`ResponseFormatError`."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        message, first_field = describe_validation_error(exc, where)
        raise ResponseFormatError(
            f"unexpected response: {message}",
            service=service,
            endpoint=endpoint,
            field=first_field,
        ) from None
    except RecursionError:
        raise ResponseFormatError(
            f"unexpected response: {where or 'the record'} is nested too deeply to read",
            service=service,
            endpoint=endpoint,
            field=where or None,
        ) from None


@dataclass(frozen=True)
class InvalidRecord:
    """One record of a list answer that does not fit its model, skipped at the caller's request.

    By default one malformed record fails its whole page (a :class:`ResponseFormatError`). A sync
    that can set one record aside — an order that becomes an exception while the rest of the
    batch goes on — passes ``on_invalid=`` to the iterator instead: each such record is handed
    over as this and skipped, and the pages go on. ``record_id`` is the record's id (its model's
    first field: ``id``, ``itemId``, ``shipmentId``) when readable; ``raw`` the record as sent, for
    a caller that can still tell what it concerns; ``error`` what it would have raised.
    """

    index: int
    record_id: str | None
    raw: Any
    error: ResponseFormatError


OnInvalid = Callable[[InvalidRecord], None]


@dataclass
class _Attempt:
    """Book-keeping of one logical request across its attempts."""

    method: str
    path: str
    started: float
    idempotent: bool
    number: int = 0

    @property
    def endpoint(self) -> str:
        """``"METHOD /path"``, as errors and logs name it."""
        return f"{self.method} {self.path}"


class HttpCore:
    """One paced, retrying ``httpx.AsyncClient`` for one API.

    ``error_message`` turns an error response into the API's explanation; ``trace_headers`` name
    the headers that carry a request id; ``on_response`` sees every response (e.g. to read
    remaining-quota headers); ``success`` says which statuses are a success for this API.
    """

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        retry: RetryPolicy,
        pacer: LeakyBucketPacer,
        clock: Clock,
        timeout: httpx.Timeout,
        max_concurrency: int,
        decimals: Literal["string", "number"],
        success: Callable[[int], bool],
        error_message: Callable[[httpx.Response], str | None],
        trace_headers: tuple[str, ...] = (),
        secrets: Callable[[], Iterable[str]] = tuple,
        auth: httpx.Auth | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.service = service
        self.retry = retry
        self.pacer = pacer
        self.clock = clock
        self._decimals = decimals
        self._success = success
        self._error_message = error_message
        self._trace_headers = trace_headers
        self._secrets = secrets
        self._on_response = on_response
        self._rand = rand
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers),
            auth=auth,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_concurrency + 2,
                max_keepalive_connections=max_concurrency,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            follow_redirects=False,
        )

    @property
    def base_url(self) -> httpx.URL:
        """The base URL every request path is joined to."""
        return self._client.base_url

    @property
    def timeout(self) -> float:
        """The longest one attempt waits for its answer, in seconds (the read timeout)."""
        read = self._client.timeout.read
        return float(read) if read is not None else math.inf

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def redact(self, text: str) -> str:
        """Mask this client's registered secrets (and generic credential shapes) in ``text``."""
        return redact(text, self._secrets())

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        authenticated: bool = True,
        use_slot: bool = True,
    ) -> httpx.Response:
        """Send one logical request (several attempts if transient failures occur).

        Returns the successful response (body read). ``authenticated=False`` skips the client's
        ``httpx.Auth`` (token grants); ``use_slot=False`` bypasses the concurrency limit, which a
        token grant needs because it runs *inside* requests that already hold slots.
        """
        response, _ = await self._send(
            method,
            path,
            params=params,
            json_body=json_body,
            idempotent=idempotent,
            authenticated=authenticated,
            use_slot=use_slot,
            decode=False,
        )
        return response

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        idempotent: bool | None,
        authenticated: bool,
        use_slot: bool,
        decode: bool,
    ) -> tuple[httpx.Response, dict[str, Any] | None]:
        """:meth:`request`; with ``decode``, also the JSON object of the body, whose being no
        JSON at all is retried like a 5xx (reads only) before it is raised."""
        method = method.upper()
        url_path = self._client.base_url.path + path.lstrip("/")
        attempt = _Attempt(
            method=method,
            path=url_path,
            started=self.clock.monotonic(),
            idempotent=method in _IDEMPOTENT_METHODS if idempotent is None else idempotent,
        )
        content = None
        headers = {}
        if json_body is not None:
            try:
                content = encode_json(json_body, decimals=self._decimals)
            except (UnicodeEncodeError, ValueError) as exc:
                reason = _encoding_reason(exc, "a value in the request body")
                raise self._unsent(attempt, reason) from None
            headers["Content-Type"] = "application/json; charset=utf-8"
        clean_params = _clean_params(params)
        if (reason := _unencodable(clean_params)) is not None:
            raise self._unsent(attempt, reason)
        limit = _DEADLINE.get()
        while True:
            attempt.number += 1
            self._check_deadline(attempt, limit)
            try:
                async with self._slots if use_slot else contextlib.nullcontext():
                    # Pace inside the slot, so the request leaves the moment its slot is granted
                    # instead of queueing behind busy connections and going out in a bunch.
                    if not await self.pacer.acquire(None if limit is None else limit.at):
                        self._check_deadline(attempt, limit, slot=True)
                    # The slot may come as the deadline passes (a pause announced meanwhile).
                    self._check_deadline(attempt, limit)
                    request = self._client.build_request(
                        method, path, params=clean_params, content=content, headers=headers
                    )
                    response = await self._client.send(
                        request,
                        auth=httpx.USE_CLIENT_DEFAULT if authenticated else None,
                        stream=True,
                    )
                    # Read here rather than inside send(), so a body that cannot be decoded is
                    # reported with the Content-Encoding that promised otherwise.
                    try:
                        await response.aread()
                    except httpx.DecodingError as exc:
                        raise self._undecodable(attempt, exc, response) from None
                    finally:
                        await response.aclose()
            except httpx.DecodingError as exc:  # a body read by the auth flow (a 401's)
                raise self._undecodable(attempt, exc, None) from None
            except httpx.TransportError as exc:
                retryable = attempt.idempotent or isinstance(exc, _NOT_SENT_ERRORS)
                kind = type(exc).__name__
                delay = self.retry.backoff(attempt.number, self._rand)
                if retryable and self._may_retry(attempt, delay):
                    self._log_retry(attempt, kind, delay)
                    await self.clock.sleep(delay)
                    continue
                reason = "" if retryable else " (not retried: the request may have been applied)"
                raise TransportError(
                    self.redact(
                        f"{self.service} {attempt.endpoint}: {kind}: {exc or 'no details'}"
                        f" after {attempt.number} attempt(s){reason}"
                    ),
                    service=self.service,
                    method=method,
                    path=url_path,
                    attempts=attempt.number,
                ).masking(self._secrets()) from None  # the httpx error's text is in the message
            if self._on_response is not None:
                self._on_response(response)
            status = response.status_code
            if self._success(status):
                if not decode:
                    return response, None
                try:
                    return response, self.decode_object(response, attempts=attempt.number)
                except UnreadableResponseError as exc:
                    delay = self.retry.backoff(attempt.number, self._rand)
                    if not attempt.idempotent or not self._may_retry(attempt, delay):
                        raise
                    self._log_retry(attempt, exc.reason, delay, self._trace_id(response))
                    await self.clock.sleep(delay)
                    continue
            if await self._retry_status(attempt, response):
                continue
            raise self._api_error(attempt, response)

    def _check_deadline(
        self, attempt: _Attempt, limit: Deadline | None, *, slot: bool = False
    ) -> None:
        """Raise `DeadlineError` instead of starting ``attempt`` past ``limit`` (``slot``: its
        rate-limit slot would come after it)."""
        if limit is None or (not slot and not limit.passed()):
            return
        made = attempt.number - 1
        why = "its rate-limit slot would come later" if slot else "it had passed"
        before = f" after {made} attempt(s)" if made else ""
        raise DeadlineError(
            self.redact(
                f"{self.service} {attempt.endpoint}: not sent{before}: {limit.what} of"
                f" {limit.budget:g} s ran out ({why})"
            ),
            service=self.service,
            method=attempt.method,
            path=attempt.path,
            attempts=made,
            budget=limit.budget,
        ).masking(self._secrets())

    def _unsent(self, attempt: _Attempt, reason: str) -> RequestEncodingError:
        return RequestEncodingError(
            service=self.service, method=attempt.method, path=attempt.path, reason=reason
        ).masking(self._secrets())

    def _undecodable(
        self, attempt: _Attempt, exc: httpx.DecodingError, response: httpx.Response | None
    ) -> ResponseFormatError:
        encoding = response.headers.get("content-encoding") if response is not None else None
        claim = f"Content-Encoding {encoding!r}" if encoding else "its Content-Encoding"
        status = f" with HTTP {response.status_code}" if response is not None else ""
        return self.masked(
            ResponseFormatError(
                self.redact(f"the body{status} cannot be decoded as {claim} says: {exc}"),
                service=self.service,
                endpoint=attempt.endpoint,
            )
        )

    def masked(self, error: ErrorT) -> ErrorT:
        """``error`` with every credential this client holds masked in all it carries."""
        return error.masking(self._secrets())

    async def _retry_status(self, attempt: _Attempt, response: httpx.Response) -> bool:
        """Sleep and return True when this error status should be tried again."""
        status = response.status_code
        if status not in self.retry.retry_statuses:
            return False
        if not attempt.idempotent and status != 429:
            return False
        delay = self.retry.backoff(attempt.number, self._rand)
        if status == 429:
            hinted = parse_retry_after(response.headers.get("retry-after"), self.clock.time())
            if hinted is not None:
                delay = hinted
            # Everyone sharing this bucket waits, not just this caller.
            self.pacer.pause_for(delay)
        if not self._may_retry(attempt, delay):
            return False
        self._log_retry(attempt, f"HTTP {status}", delay, self._trace_id(response))
        await self.clock.sleep(delay)
        return True

    def _may_retry(self, attempt: _Attempt, delay: float) -> bool:
        if attempt.number >= self.retry.max_attempts:
            return False
        limit = _DEADLINE.get()
        if limit is not None and limit.remaining() <= delay:
            return False  # the retry would start past the deadline: the last answer stands
        spent = self.clock.monotonic() - attempt.started
        return spent + delay <= self.retry.max_elapsed

    def _log_retry(
        self, attempt: _Attempt, reason: str, delay: float, trace_id: str | None = None
    ) -> None:
        logger.warning(
            "%s %s: %s (trace id %s), attempt %d, retrying in %.2fs",
            self.service,
            attempt.endpoint,
            reason,
            trace_id or "-",
            attempt.number,
            delay,
        )

    def _trace_id(self, response: httpx.Response) -> str | None:
        """The response's request id, masked: a hostile server may echo a credential there."""
        for name in self._trace_headers:
            if value := response.headers.get(name):
                return self.redact(value)[:100]
        return None

    def _api_error(self, attempt: _Attempt, response: httpx.Response) -> Exception:
        status = response.status_code
        if 200 <= status < 300:
            return self.masked(
                ResponseFormatError(
                    f"unexpected success status {status} (this API answers 200)",
                    service=self.service,
                    endpoint=attempt.endpoint,
                )
            )
        try:
            api_message = self._error_message(response)
        except Exception:  # an unreadable error body must not hide the status
            api_message = None
        if api_message is None:
            api_message = _describe_body(response)
        kwargs: dict[str, Any] = {
            "service": self.service,
            "status": status,
            "method": attempt.method,
            "path": attempt.path,
            "trace_id": self._trace_id(response),
            "api_message": self.redact(api_message) if api_message else None,
            "attempts": attempt.number,
        }
        cls = error_class_for_status(status)
        if cls is RateLimitedError:
            kwargs["retry_after"] = parse_retry_after(
                response.headers.get("retry-after"), self.clock.time()
            )
        return cls(**kwargs).masking(self._secrets())

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        authenticated: bool = True,
        use_slot: bool = True,
    ) -> tuple[dict[str, Any], httpx.Response]:
        """:meth:`request`, then decode a JSON object body (Decimal for fractional numbers).

        A body that is not JSON at all (:class:`UnreadableResponseError`) is retried like a 5xx
        when the request may be repeated.
        """
        response, data = await self._send(
            method,
            path,
            params=params,
            json_body=json_body,
            idempotent=idempotent,
            authenticated=authenticated,
            use_slot=use_slot,
            decode=True,
        )
        assert data is not None
        return data, response

    def endpoint_of(self, response: httpx.Response) -> str:
        """``"METHOD /path"`` of the request behind ``response``."""
        return f"{response.request.method} {response.request.url.path}"

    def decode_object(self, response: httpx.Response, *, attempts: int = 1) -> dict[str, Any]:
        """The JSON object in ``response``'s body, or a :class:`ResponseFormatError`.

        A body that is no JSON at all — empty, an HTML page, JSON cut off part-way, other text —
        is an :class:`UnreadableResponseError` (``attempts``: the tries it took).
        """
        endpoint = self.endpoint_of(response)
        body = response.content
        status = response.status_code

        def unreadable(reason: str, message: str) -> UnreadableResponseError:
            return self.masked(
                UnreadableResponseError(
                    message,
                    service=self.service,
                    endpoint=endpoint,
                    attempts=attempts,
                    reason=reason,
                )
            )

        if not body.strip():
            raise unreadable(
                "an empty body", f"empty body with HTTP {status}, expected a JSON object"
            )
        content_type = response.headers.get("content-type", "no content type")
        try:
            data = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
        except _NotJsonNumber as exc:
            # JSON has no NaN or Infinity; Python's json reads them, and a NaN amount would
            # reach the syncs as a float that Decimal arithmetic refuses halfway through a run.
            raise self.masked(
                ResponseFormatError(
                    f"expected a JSON object, got {content_type} with {exc.constant}, which is"
                    " not a JSON number (an amount that is not a number)",
                    service=self.service,
                    endpoint=endpoint,
                )
            ) from None
        except RecursionError:
            raise self.masked(
                ResponseFormatError(
                    f"expected a JSON object, got {content_type} nested too deeply to read",
                    service=self.service,
                    endpoint=endpoint,
                )
            ) from None
        except ValueError:
            if (page := _html_page(response)) is not None:
                raise unreadable(
                    "an HTML page", f"the answer is {page}, not JSON, with HTTP {status}"
                ) from None
            if _cut_off(body):
                raise unreadable(
                    "JSON cut off",
                    f"the JSON body is cut off after {len(body)} bytes (HTTP {status})",
                ) from None
            excerpt = self.redact(_body_excerpt(response))
            raise unreadable(
                "not JSON", f"expected a JSON object, got {content_type}: {excerpt!r}"
            ) from None
        if not isinstance(data, dict):
            raise self.masked(
                ResponseFormatError(
                    f"expected a JSON object, got {_json_kind(type(data))}",
                    service=self.service,
                    endpoint=endpoint,
                )
            )
        return data

    def field(
        self,
        data: Mapping[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        response: httpx.Response,
        *,
        where: str = "",
    ) -> Any:
        """``data[key]``, which must be a ``kind``; otherwise a :class:`ResponseFormatError`.

        ``where`` is the JSON location of ``data`` itself, for the message (``metadata``).
        """
        name = f"{where}.{key}" if where else key
        if key not in data:
            present = self.redact(", ".join(sorted(data)[:20]) or "nothing")
            raise self.masked(
                ResponseFormatError(
                    f"field {name!r} is missing (present: {present})",
                    service=self.service,
                    endpoint=self.endpoint_of(response),
                    field=name,
                )
            )
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int subclass in Python, but never a count or an id in JSON.
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if not isinstance(value, kinds) or wrong_bool:
            raise self.masked(
                ResponseFormatError(
                    f"field {name!r} should be {' or '.join(_json_kind(k) for k in kinds)},"
                    f" got {_json_kind(type(value))}",
                    service=self.service,
                    endpoint=self.endpoint_of(response),
                    field=name,
                )
            )
        return value

    def each(
        self,
        model: type[ModelT],
        rows: list[Any],
        response: httpx.Response,
        key: str,
        on_invalid: OnInvalid | None = None,
    ) -> Iterator[ModelT]:
        """The ``rows`` of a page (``key`` names them in errors) as ``model``s.

        A row that does not fit raises, unless ``on_invalid`` is given: then it is handed to it
        as an :class:`InvalidRecord` and skipped.
        """
        id_field = next(iter(model.model_fields), "id")
        for i, row in enumerate(rows):
            try:
                record = self.model(model, row, response, where=f"{key}[{i}]")
            except ResponseFormatError as exc:
                if on_invalid is None:
                    raise
                on_invalid(InvalidRecord(i, _record_id(row, id_field), row, exc))
                continue
            yield record

    def model(
        self, model: type[ModelT], data: Any, response: httpx.Response, where: str = ""
    ) -> ModelT:
        """Validate ``data`` (part of ``response``) as ``model``."""
        try:
            return parse_model(
                model, data, service=self.service, endpoint=self.endpoint_of(response), where=where
            )
        except ConnectorError as exc:
            raise self.masked(exc) from None


def _json_kind(kind: type) -> str:
    return {
        dict: "a JSON object",
        list: "a JSON array",
        str: "a string",
        int: "an integer",
        bool: "a boolean",
        Decimal: "a number",
        float: "a number",
        type(None): "null",
    }.get(kind, kind.__name__)


def _record_id(row: Any, field: str) -> str | None:
    value = row.get(field) if isinstance(row, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


class _NotJsonNumber(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotJsonNumber(constant)


def _encoding_reason(exc: Exception, what: str) -> str:
    if isinstance(exc, UnicodeEncodeError):
        return (
            f"{what} cannot be encoded as UTF-8 ({exc.reason}: character {exc.start});"
            " it is not valid Unicode text"
        )
    return f"{what} cannot be encoded: {exc}"


def _unencodable(params: Mapping[str, Any] | None) -> str | None:
    """Why a query value cannot be sent (httpx would raise a bare UnicodeEncodeError), or None."""
    for key, value in (params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            try:
                str(item).encode("utf-8")
            except UnicodeEncodeError as exc:
                return _encoding_reason(exc, f"the query value of {key!r}")
    return None


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(rb"<(script|style)\b.*?</\1\s*>", re.I | re.S)


def _html_page(response: httpx.Response) -> str | None:
    """``an HTML page ("its title")`` when the body is one, else None.

    The title (or first heading, or else the start of its text) says which page it is — a
    load balancer's, a maintenance page, a login page — in a few words, without its markup.
    """
    head = response.content[:2048].lstrip().lower()
    content_type = response.headers.get("content-type", "").lower()
    looks_like_html = head.startswith((b"<!doctype html", b"<html"))
    if not head or ("html" not in content_type and not looks_like_html):
        return None
    page = response.content[:65536]
    match = _TITLE.search(page)
    raw = (match.group(1) or match.group(2) or b"") if match else _HIDDEN.sub(b" ", page)
    text = " ".join(_TAG.sub(" ", raw.decode("utf-8", errors="replace")).split())
    if len(text) > 80:
        text = text[:79] + "…"
    return f'an HTML page ("{text}")' if text else "an HTML page"


def _cut_off(body: bytes) -> bool:
    """Whether ``body`` is JSON that ends while an object, an array or a string is still open."""
    text = body.strip()
    if not text.startswith((b"{", b"[")):
        return False
    depth = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
            if depth < 0:
                return False
    return in_string or depth > 0


def _describe_body(response: httpx.Response) -> str:
    """An error body in a few words: an HTML page by its title, anything else as an excerpt."""
    return _html_page(response) or _body_excerpt(response)


def _body_excerpt(response: httpx.Response, limit: int = 120) -> str:
    text = response.content[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    return text[:limit] + ("…" if len(text) > limit else "")


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop None values and render booleans the way both APIs read them."""
    if not params:
        return None
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, datetime):
            value = value.isoformat()
        clean[key] = value
    return clean


class ClientBase:
    """What both API clients share around their `HttpCore`: async context use and closing."""

    _core: HttpCore

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._core.aclose()

    @property
    def pacer(self) -> LeakyBucketPacer:
        """The client's pacer, shared by every call of this client (and of others given it)."""
        return self._core.pacer

    @property
    def clock(self) -> Clock:
        """Where the client reads time and sleeps: a :func:`deadline` for it reads the same."""
        return self._core.clock

    @property
    def timeout(self) -> float:
        """The longest the client waits for one answer, in seconds (its read timeout)."""
        return self._core.timeout
