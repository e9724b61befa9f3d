"""httpx clients for Stokly and SHOPLINE: auth, pagination, pacing, retries, typed models.

The clients know nothing of mapping files or Prefect: they take plain values (base URL, API
version, credentials as ``pydantic.SecretStr``, rate and retry settings, timeouts, and an optional
``transport`` for tests) and return typed models. Both are async (see
:mod:`stokline.connectors.shopline.client` for why)::

    async with ShoplineClient(url, SecretStr(token), api_version="v20251201") as shopline:
        async for order in shopline.iter_orders(updated_at_min=since):
            ...

Errors are drawn in :mod:`stokline.connectors.errors`; retries, pacing and deadlines (a time
budget for a batch of requests: :func:`deadline`) live in :mod:`stokline.connectors._http`.
"""

from ._http import (
    Clock,
    Deadline,
    InvalidRecord,
    LeakyBucketPacer,
    OnInvalid,
    RateLimit,
    RetryPolicy,
    SystemClock,
    current_deadline,
    deadline,
)
from .errors import (
    ApiError,
    AuthError,
    ConnectorError,
    DeadlineError,
    NotFoundError,
    PaginationLoopError,
    RateLimitedError,
    RequestEncodingError,
    ResponseFormatError,
    ServerError,
    TransportError,
    UnreadableResponseError,
    ValidationError,
    is_transient,
)
from .shopline import ShoplineClient
from .stokly import StoklyClient

__all__ = [
    "ApiError",
    "AuthError",
    "Clock",
    "ConnectorError",
    "Deadline",
    "DeadlineError",
    "InvalidRecord",
    "LeakyBucketPacer",
    "NotFoundError",
    "OnInvalid",
    "PaginationLoopError",
    "RateLimit",
    "RateLimitedError",
    "RequestEncodingError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "ShoplineClient",
    "StoklyClient",
    "SystemClock",
    "TransportError",
    "UnreadableResponseError",
    "ValidationError",
    "current_deadline",
    "deadline",
    "is_transient",
]
