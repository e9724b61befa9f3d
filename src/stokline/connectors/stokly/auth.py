"""Stokly app authentication: ``POST /v1/grant`` and an ``httpx.Auth`` flow that keeps it fresh.

The grant body carries ``signature`` = lowercase hex HMAC-SHA256 of the client id, keyed with the
client secret. The token is cached and replaced ``refresh_margin`` seconds before its ``expiry``;
if a request still meets a 401 whose message is ``jwt expired`` (clock skew, a server-side
revocation), the flow fetches a new token and repeats the request **once** — a second 401 is
the caller's :class:`~stokline.connectors.errors.AuthError`, not a loop.

Concurrent requests share one grant: the first one to find the token stale fetches it under a
lock, the others wait and reuse it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from .._http import Clock

__all__ = ["AccessToken", "StoklyTokenAuth", "grant_signature", "is_jwt_expired"]


def grant_signature(client_id: str, client_secret: SecretStr) -> str:
    """Lowercase hex HMAC-SHA256 of ``client_id`` keyed with ``client_secret``."""
    key = client_secret.get_secret_value().encode()
    return hmac.new(key, client_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AccessToken:
    """A bearer token, when it was obtained and when it expires (epoch seconds)."""

    value: SecretStr
    obtained_at: float
    expires_at: float

    def refresh_at(self, margin: float) -> float:
        """When to replace it: ``margin`` early, but never before half its lifetime."""
        lifetime = max(0.0, self.expires_at - self.obtained_at)
        return self.expires_at - min(margin, lifetime / 2)


def is_jwt_expired(response: httpx.Response) -> bool:
    """True for Stokly's stale-token answer: 401 with ``message`` "jwt expired"."""
    if response.status_code != 401:
        return False
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        return False
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and "jwt expired" in message.lower()


class StoklyTokenAuth(httpx.Auth):
    """Bearer auth that grants, caches and refreshes Stokly tokens (async clients only).

    The one resend after "jwt expired" happens inside the paced attempt that met the 401; it is
    rare (once per token at most) and therefore not paced separately.
    """

    def __init__(
        self,
        grant: Callable[[], Awaitable[AccessToken]],
        clock: Clock,
        *,
        refresh_margin: float = 60.0,
    ) -> None:
        self._grant = grant
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.grants = 0

    @property
    def token(self) -> AccessToken | None:
        """The cached token, if any."""
        return self._token

    def __repr__(self) -> str:
        return f"StoklyTokenAuth(grants={self.grants})"

    def sync_auth_flow(self, request: httpx.Request) -> object:
        """Not supported: the Stokly client is async."""
        raise RuntimeError("StoklyTokenAuth works with httpx.AsyncClient only")

    async def _fresh(self, stale: AccessToken | None = None) -> AccessToken:
        async with self._lock:
            token = self._token
            usable = token is not None and self._clock.time() < token.refresh_at(
                self._refresh_margin
            )
            # Another task may have replaced the stale token while we waited for the lock.
            if usable and token is not stale:
                return token  # type: ignore[return-value]
            self.grants += 1
            self._token = await self._grant()
            return self._token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with the cached token; on "jwt expired" grant again and resend once."""
        token = await self._fresh()
        request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
        response = yield request
        # Only a 401's body matters here; reading it is our job, as this flow is hand-written.
        if response.status_code == 401:
            await response.aread()
        if is_jwt_expired(response):
            token = await self._fresh(stale=token)
            request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
            yield request
