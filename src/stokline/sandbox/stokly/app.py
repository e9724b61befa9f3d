"""The Stokly sandbox application: auth, rate limit, faults and the routers put together."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from stokline.sandbox.common import DocStore, Faults, LeakyBucket, install_faults
from stokline.sandbox.stokly.errors import (
    ApiError,
    error_response,
    fault_response,
    install_error_handlers,
)
from stokline.sandbox.stokly.state import StoklyState, iso, utcnow

__all__ = ["RATE_PER_MINUTE", "Authorized", "SandboxContext", "create_app", "require_token"]

#: Stokly clients self-throttle to 120 requests a minute [C]; the sandbox enforces the same.
RATE_PER_MINUTE = 120

_UNLIMITED_PREFIXES = ("/_sandbox/", "/docs", "/openapi.json", "/redoc")


class CountingBucket(LeakyBucket):
    """A `LeakyBucket` that also says how many requests it would still admit right now.

    `x-ratelimit-remaining` needs that figure and `common.LeakyBucket` does not expose it.
    """

    def remaining(self) -> int:
        with self._lock:
            if self.rate_per_s is None:
                return self.capacity
            self._leak()
            return max(0, int(self.capacity - self._level))


@dataclass
class SandboxContext:
    """Everything a request handler needs, stored on ``app.state.sandbox``."""

    state: StoklyState
    account_key: str
    client_id: str
    client_secret: str
    token_ttl_s: int
    bucket: CountingBucket
    faults: Faults
    rate_per_minute: int | None
    data_dir: Path | None = None
    clock: Callable[[], datetime] = utcnow

    @property
    def store(self) -> DocStore:
        return self.state.store

    def close(self) -> None:
        """Close the state's database (after the server has stopped)."""
        self.state.store.close()

    def configure_rate(self, rate_per_minute: int | None) -> None:
        """Change the enforced rate (None switches limiting off)."""
        self.rate_per_minute = rate_per_minute
        if rate_per_minute is None:
            # Unlimited still reports a full nominal window, so clients that pause when only a
            # few requests remain never pause.
            self.bucket.configure(None, RATE_PER_MINUTE)
        else:
            self.bucket.configure(rate_per_minute / 60.0, rate_per_minute)
        self.bucket.reset()

    # -- tokens ----------------------------------------------------------------------------

    def issue_token(self) -> tuple[str, str]:
        """A new bearer token and its ISO expiry; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        expires = self.clock() + timedelta(seconds=self.token_ttl_s)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.state.lock:
            self.state.tokens.add(
                digest,
                {
                    "tokenHash": digest,
                    "expiresAt": expires.timestamp(),
                    "issuedAt": self.state.now(),
                },
            )
        return token, iso(expires)

    def check_token(self, token: str) -> None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        record = self.state.tokens.get(digest)
        if record is None:
            raise ApiError(401, "Unauthorized: invalid access token")
        if record["expiresAt"] <= self.clock().timestamp():
            raise ApiError(401, "jwt expired")

    def expire_tokens(self) -> int:
        """Make every issued token stale (clients must grant again)."""
        with self.state.lock, self.store.transaction():
            stamp = self.clock().timestamp() - 1
            tokens = list(self.state.tokens)
            for record in tokens:
                self.state.tokens.save(record["tokenHash"], {**record, "expiresAt": stamp})
        return len(tokens)


def context(request: Request) -> SandboxContext:
    """The sandbox context of the app serving `request`."""
    return request.app.state.sandbox


_bearer = HTTPBearer(auto_error=False, description="The accessToken from POST /v1/grant.")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> SandboxContext:
    """Dependency of every authenticated route: a valid, unexpired bearer token."""
    ctx = context(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "Unauthorized: missing bearer token")
    ctx.check_token(credentials.credentials)
    return ctx


#: The parameter type of authenticated handlers: the sandbox context, once the token checks out.
Authorized = Annotated[SandboxContext, Depends(require_token)]


# -- grant ---------------------------------------------------------------------------------------


class GrantRequest(BaseModel):
    """Body of `POST /v1/grant` [C]."""

    accountkey: str = Field(description="The Stokly account key.")
    clientId: str = Field(description="The app's client id.")
    signature: str = Field(
        description="Lowercase hex HMAC-SHA256 of clientId keyed with the client secret."
    )


def _grant_route(app: FastAPI) -> None:
    @app.post("/v1/grant", tags=["auth"], summary="Exchange app credentials for a bearer token")
    def grant(body: GrantRequest, request: Request) -> dict[str, Any]:
        ctx = context(request)
        expected = hmac.new(
            ctx.client_secret.encode(), body.clientId.encode(), hashlib.sha256
        ).hexdigest()
        known_client = hmac.compare_digest(body.clientId, ctx.client_id)
        good_signature = hmac.compare_digest(body.signature.lower(), expected)
        if body.accountkey != ctx.account_key or not known_client or not good_signature:
            raise ApiError(401, "Unauthorized: invalid account key, client id or signature")
        token, expiry = ctx.issue_token()
        return {"data": {"authenticationResult": {"accessToken": token, "expiry": expiry}}}


# -- rate limit ----------------------------------------------------------------------------------


def _install_rate_limit(app: FastAPI) -> None:
    @app.middleware("http")
    async def rate_limit(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith(_UNLIMITED_PREFIXES):
            return await call_next(request)
        ctx: SandboxContext = request.app.state.sandbox
        wait = ctx.bucket.take()
        if wait > 0:
            return error_response(
                429, "Rate limit exceeded: too many requests, retry later", retry_after=wait
            )
        response = await call_next(request)
        response.headers["x-ratelimit-remaining"] = str(ctx.bucket.remaining())
        return response


# -- factory -------------------------------------------------------------------------------------


def create_app(
    *,
    data_dir: Path | None = None,
    account_key: str,
    client_id: str,
    client_secret: str,
    token_ttl_s: int = 3600,
    rate_per_minute: int | None = RATE_PER_MINUTE,
    faults: str = "none",
    clock: Callable[[], datetime] | None = None,
    seed_skus: int | None = None,
) -> FastAPI:
    """Build a Stokly sandbox.

    State lives in ``data_dir/stokly.sqlite3`` (in memory when `data_dir` is None), so a new app
    on the same directory continues where the last stopped. `rate_per_minute` is enforced as a
    leaky bucket of that capacity draining at that rate (None disables it). `faults` names a
    profile of :class:`~stokline.sandbox.common.Faults`. With `seed_skus`, an empty account is
    seeded with the demo client (see :func:`~stokline.sandbox.stokly.seed.seed_demo`).
    """
    from stokline.sandbox.stokly import control, invented, routes_catalogue, routes_orders
    from stokline.sandbox.stokly.seed import seed_demo

    store = DocStore(data_dir / "stokly.sqlite3" if data_dir is not None else None)
    if seed_skus is not None and store.count("item") == 0:
        seed_demo(store, skus=seed_skus)
    the_clock = clock or utcnow
    state = StoklyState(store, clock=the_clock)
    ctx = SandboxContext(
        state=state,
        account_key=account_key,
        client_id=client_id,
        client_secret=client_secret,
        token_ttl_s=token_ttl_s,
        bucket=CountingBucket(None, 1),
        faults=Faults.profile(faults),
        rate_per_minute=rate_per_minute,
        data_dir=data_dir,
        clock=the_clock,
    )
    ctx.configure_rate(rate_per_minute)

    app = FastAPI(
        title="Stokly sandbox",
        version="1.0",
        description=(
            "A local emulator of the Stokly API for stokline's demo, rehearsals and tests. "
            "Paths marked [I] are invented contracts (see `stokline.sandbox.stokly.invented`); "
            "`/_sandbox/` is the control API and is neither authenticated nor rate limited."
        ),
    )
    app.state.sandbox = ctx
    install_error_handlers(app)
    _grant_route(app)
    app.include_router(routes_catalogue.router)
    app.include_router(routes_orders.router)
    app.include_router(invented.router)
    app.include_router(control.router)
    _install_rate_limit(app)
    install_faults(app, lambda: app.state.sandbox.faults, fault_response)
    return app
