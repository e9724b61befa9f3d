"""Every error the connectors raise, in one hierarchy.

::

    ConnectorError                   anything that went wrong talking to Stokly or SHOPLINE
    ├── TransportError               no usable HTTP answer: timeouts, refused or dropped
    │                                connections — after the retry budget was spent
    ├── DeadlineError                not sent: the caller's deadline (a pass's time budget)
    │                                had passed, or would have before a rate-limit slot
    ├── ApiError                     the API answered with an error status
    │   │                            (.service .status .method .path .trace_id .api_message)
    │   ├── AuthError                401 / 403: missing, bad or expired credentials, no scope
    │   ├── NotFoundError            404
    │   ├── ValidationError          400 / 422: the API rejected the request body or query
    │   │   └── RequestEncodingError the request could not be built from its values (a lone
    │   │                            surrogate, a NaN amount): nothing was sent; fails alike
    │   ├── RateLimitedError         429 that outlived the retry budget (.retry_after)
    │   └── ServerError              5xx that outlived the retry budget
    ├── PaginationLoopError          the API handed out a page cursor it had handed out before,
    │                                or page after page of nothing that still leads on
    └── ResponseFormatError          a success status with a body we cannot use: missing or
        │                            wrongly typed fields, JSON that is not an object
        └── UnreadableResponseError  a success status with a body that is not JSON at all: an
                                     HTML page (a proxy's, a maintenance page), JSON cut off
                                     part-way, an empty body — retried like a 5xx for reads

Callers decide retry-ability with :func:`is_transient` (e.g. as a Prefect ``retry_condition_fn``)
instead of matching classes themselves, so the one retry decision stays in this package.

No message or repr ever carries a credential: every text that reaches an exception goes through
:func:`redact`, which removes bearer tokens, ``Authorization`` headers and any secret value the
client registered (access tokens, client secrets and ids, request signatures); the clients then
call :meth:`ConnectorError.masking` on every error they raise, so no attribute (a trace id a
server echoed, a field path) carries one either. Messages stay short: an API's own explanation is
cut to ``MAX_API_MESSAGE`` characters and a whole message to ``MAX_MESSAGE``, never a whole body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Self

__all__ = [
    "ApiError",
    "AuthError",
    "ConnectorError",
    "DeadlineError",
    "NotFoundError",
    "PaginationLoopError",
    "RateLimitedError",
    "RequestEncodingError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "UnreadableResponseError",
    "ValidationError",
    "error_class_for_status",
    "is_transient",
    "redact",
    "shorten",
]

_MASK = "***"
MAX_API_MESSAGE = 300
"""Longest API explanation an error quotes (a server may send kilobytes of it)."""
MAX_TRACE_ID = 100
MAX_MESSAGE = 600
"""Longest message any connector error carries."""
# Generic shapes of credentials, masked even when the client did not register the value.
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)[^\"',;\n]+"),
    re.compile(
        r"(?i)(\b\"?(?:access_?token|client_?secret|signature|sign)\"?\s*[:=]\s*\"?)"
        r"[^\s\"',;&}]+"
    ),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with credentials masked.

    Masks every registered secret value (longest first, so a secret that contains another is
    masked whole) and the generic credential shapes (bearer tokens, ``Authorization`` headers,
    ``accessToken``/``client_secret``/``signature`` pairs).
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        # Very short values would mask ordinary words; real credentials are long.
        if len(secret) >= 4:
            text = text.replace(secret, _MASK)
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _MASK, text)
    return text


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConnectorError(Exception):
    """Base class of every error raised by ``stokline.connectors``."""

    def __init__(self, message: str, *, service: str = "") -> None:
        self.service = service
        # Masked before it is cut, so a cut never leaves half a credential for redact to miss
        # (callers mask the secret values they hold before they build the message, too).
        self.message = shorten(redact(message), MAX_MESSAGE)
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def masking(self, secrets: Iterable[str]) -> Self:
        """Mask ``secrets`` in everything this error carries (message and attributes); returns it.

        The clients call it on every error they raise, with the credentials they hold: a server
        can echo one anywhere (in its error body, a trace-id header, a page cursor).
        """
        values = tuple(secrets)
        for name, value in vars(self).items():
            if isinstance(value, str):
                setattr(self, name, redact(value, values))
        self.args = tuple(redact(a, values) if isinstance(a, str) else a for a in self.args)
        return self


class TransportError(ConnectorError):
    """No HTTP answer (timeout, connection refused or reset) after the retry budget."""

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        method: str = "",
        path: str = "",
        attempts: int = 1,
    ) -> None:
        self.method = method
        self.path = path
        self.attempts = attempts
        super().__init__(message, service=service)


class DeadlineError(ConnectorError):
    """A request not sent because the deadline it runs under had passed (or its rate-limit slot
    would have come after it): see :func:`stokline.connectors.deadline`.

    Nothing of it reached the API on this attempt (``attempts`` made before it were answered, or
    lost, like any other). Not transient in :func:`is_transient`'s sense: the caller ran out of
    its own time, and trying again at once would only spend more of it; its next pass does it.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        method: str = "",
        path: str = "",
        attempts: int = 0,
        budget: float = 0.0,
    ) -> None:
        self.method = method
        self.path = path
        self.attempts = attempts
        self.budget = budget
        super().__init__(message, service=service)


class ApiError(ConnectorError):
    """The API answered with an error status.

    ``path`` is the URL path without the query string (queries may carry customer e-mails);
    ``trace_id`` is the API's request id (SHOPLINE's ``traceId`` header) to quote to support;
    ``api_message`` is the API's own explanation, already flattened to one string.
    """

    def __init__(
        self,
        *,
        service: str,
        status: int,
        method: str,
        path: str,
        trace_id: str | None = None,
        api_message: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.trace_id = shorten(redact(trace_id), MAX_TRACE_ID) if trace_id else trace_id
        self.api_message = (
            shorten(redact(api_message), MAX_API_MESSAGE) if api_message else api_message
        )
        self.attempts = attempts
        parts = [f"{service} {method} {path} -> HTTP {status}"]
        if self.api_message:
            parts.append(f": {self.api_message}")
        if self.trace_id:
            parts.append(f" (trace id {self.trace_id})")
        if attempts > 1:
            parts.append(f" after {attempts} attempts")
        super().__init__("".join(parts), service=service)


class AuthError(ApiError):
    """401/403: credentials missing, wrong, expired, or lacking the scope."""


class NotFoundError(ApiError):
    """404: the resource does not exist (or is not visible to these credentials)."""


class ValidationError(ApiError):
    """400/422: the API rejected the request; ``api_message`` says why."""


class RequestEncodingError(ValidationError):
    """The request could not be built from the values given, so nothing was sent.

    A value that cannot be encoded (a lone surrogate in a SKU, which is valid in Python and in
    JSON text but not in UTF-8; a NaN amount; a Decimal that has no exact JSON number) fails the
    same way every time, like a 400: a :class:`ValidationError`, never transient. ``status`` is 0
    (no HTTP exchange happened); ``api_message`` says which value and why.
    """

    def __init__(self, *, service: str, method: str, path: str, reason: str) -> None:
        self.status = 0
        self.method = method
        self.path = path
        self.trace_id = None
        self.api_message = shorten(redact(reason), MAX_API_MESSAGE)
        self.attempts = 0
        ConnectorError.__init__(
            self, f"{service} {method} {path}: not sent: {self.api_message}", service=service
        )


class RateLimitedError(ApiError):
    """429 that persisted through the retry budget. ``retry_after`` is the last hint, if any."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)  # type: ignore[arg-type]


class ServerError(ApiError):
    """5xx that persisted through the retry budget."""


class PaginationLoopError(ConnectorError):
    """A page cursor (or a whole page) came back a second time, or pages came back empty while
    the answer said more follow: following them would never end, or stopping would lose records."""


class ResponseFormatError(ConnectorError):
    """A success status with a body we cannot use.

    ``endpoint`` is ``"METHOD /path"``; ``field`` the JSON location of the problem, when it is one
    field (``orders[3].id``).
    """

    def __init__(
        self, message: str, *, service: str = "", endpoint: str = "", field: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.field = field
        prefix = f"{service} {endpoint}: " if endpoint else ""
        super().__init__(prefix + message, service=service)


class UnreadableResponseError(ResponseFormatError):
    """A success status whose body is not JSON at all: not the API's answer.

    An HTML page (a load balancer's, a CDN's, a maintenance page) served with 200, a JSON body
    cut off part-way (a connection dropped behind a proxy), an empty body. Nothing in it can be
    trusted, and the next attempt usually gets the real answer: the clients retry reads on it
    like a 5xx, and it is transient (:func:`is_transient`). On a write that was not retried it
    means *no clear answer*: the write may have been applied, as after a timeout.
    ``attempts`` counts the tries made; ``reason`` says what came in a few words (``an HTML
    page``, ``JSON cut off``), for logs.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        endpoint: str = "",
        field: str | None = None,
        attempts: int = 1,
        reason: str = "an unreadable body",
    ) -> None:
        self.attempts = attempts
        self.reason = reason
        suffix = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(message + suffix, service=service, endpoint=endpoint, field=field)


_STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_class_for_status(status: int) -> type[ApiError]:
    """The :class:`ApiError` subclass that stands for an HTTP error status."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return ServerError
    return ApiError


def is_transient(error: BaseException) -> bool:
    """True when trying the same step again later may succeed (rate limits, 5xx, network, an
    answer that was not JSON at all).

    Meant for coarse retries above the client (a Prefect task's ``retry_condition_fn``); the
    client already spent its own retry budget on the same error.
    """
    return isinstance(
        error, TransportError | RateLimitedError | ServerError | UnreadableResponseError
    )
