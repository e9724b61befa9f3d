"""Assembly of the SHOPLINE sandbox: state, webhooks, auth, rate limit, faults, error bodies.

Request path, outermost first: ``traceId`` header → fault injection (not on ``/_sandbox/`` or
the docs) → bearer auth and the per-token leaky bucket (``/admin/`` only) → routes.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from stokline.sandbox.common import DocStore, Faults, LeakyBucket, install_faults
from stokline.sandbox.shopline import quirks
from stokline.sandbox.shopline.state import ApiError, ShoplineState
from stokline.sandbox.shopline.webhooks import WebhookDispatcher

DB_FILE = "shopline.sqlite3"

log = logging.getLogger(__name__)


def error_body(status: int, message: str, errors: Any = None) -> dict[str, Any]:
    """The ``{"code","message","errors"}`` body SHOPLINE's SDKs decode (``code`` a string)."""
    return {
        "code": quirks.ERROR_CODES.get(status, str(status)),
        "message": message,
        "errors": errors if errors is not None else message,
    }


def error_response(status: int, retry_after: float | None = None) -> Response:
    """An error in SHOPLINE's shape; 429 is the bare documented body plus ``Retry-After``."""
    if status == 429:
        wait = max(quirks.RETRY_AFTER_MIN_S, math.ceil(retry_after or 0))
        return JSONResponse(
            {"errors": quirks.TOO_MANY_REQUESTS},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    if status == 401:
        return JSONResponse({"errors": quirks.UNAUTHORIZED_MESSAGE}, status_code=401)
    phrase = {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, "Error")
    return JSONResponse(error_body(status, phrase), status_code=status)


class ShoplineSandbox:
    """Everything one sandboxed store needs at runtime; reachable as ``app.state.shopline``."""

    def __init__(
        self,
        store: DocStore,
        *,
        access_token: str,
        app_secret: str,
        rate_per_s: float | None,
        burst: int,
        faults: str,
        handle: str,
        webhook_retry_scale: float,
        webhook_signature: str,
    ) -> None:
        self.store = store
        self.access_token = access_token
        self.faults = Faults.profile(faults)
        self._rate = (rate_per_s, burst)
        self._buckets: dict[str, LeakyBucket] = {}
        self._buckets_lock = threading.Lock()
        self.state = ShoplineState(store, handle=handle, emit=self._emit)
        self.webhooks = WebhookDispatcher(
            store,
            app_secret=app_secret,
            shop_domain=self.state.shop_domain,
            shop_id=self.state.store_id,
            merchant_id=self.state.merchant_id,
            faults_getter=lambda: self.faults,
            retry_scale=webhook_retry_scale,
            signature_encoding=webhook_signature,
        )
        self.webhooks.configure(signature_encoding=webhook_signature)

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.webhooks.emit(topic, payload)

    # -- rate limit ---------------------------------------------------------------------

    def bucket(self, token: str) -> LeakyBucket:
        """The leaky bucket of one access token (SHOPLINE limits per app per store)."""
        with self._buckets_lock:
            bucket = self._buckets.get(token)
            if bucket is None:
                bucket = self._buckets[token] = LeakyBucket(*self._rate)
            return bucket

    def configure_rate_limit(self, rate_per_s: float | None, burst: int) -> None:
        """Change the limit for every token at runtime."""
        with self._buckets_lock:
            self._rate = (rate_per_s, burst)
            for bucket in self._buckets.values():
                bucket.configure(rate_per_s, burst)

    def rate_limit(self) -> dict[str, Any]:
        """The current limit."""
        return {"rate_per_s": self._rate[0], "burst": self._rate[1]}

    # -- faults -------------------------------------------------------------------------

    def set_faults(self, profile: str | None = None, **changes: Any) -> Faults:
        """Switch profile and/or change single fields; ValueError on unknown names."""
        faults = Faults.profile(profile) if profile else self.faults
        if changes:
            faults.update(**changes)
        self.faults = faults
        return faults

    # -- lifecycle ----------------------------------------------------------------------

    def reset(self, *, seed: bool = True, skus: int = 300, seed_value: int = 7) -> None:
        """Wipe the store (and pending deliveries); optionally seed the demo data again."""
        from stokline.sandbox.shopline.seed import seed_demo

        self.webhooks.clear()
        self.store.clear()
        with self._buckets_lock:
            for bucket in self._buckets.values():
                bucket.reset()
        if seed:
            seed_demo(self.store, skus=skus, seed=seed_value, handle=self.state.handle)
        else:
            # Remember the wipe, so the next start does not seed the store again.
            self.store.set_meta("seeded", "reset-empty")

    def close(self) -> None:
        """Stop webhook delivery and close the database."""
        self.webhooks.close()
        self.store.close()


class _AdminGate:
    """Bearer auth then the per-token leaky bucket, for ``/admin/`` paths only."""

    def __init__(self, app: Any, sandbox: ShoplineSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/admin/"):
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            expected = self.sandbox.access_token
            if not token or not hmac.compare_digest(token.encode(), expected.encode()):
                await error_response(401)(scope, receive, send)
                return
            wait = self.sandbox.bucket(token).take()
            if wait > 0:
                await error_response(429, wait)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _TraceId:
    """Give every response a ``traceId`` header, as SHOPLINE does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = uuid.uuid4().hex.encode()

        async def send_with_trace(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"traceId", trace_id)]
            await send(message)

        await self.app(scope, receive, send_with_trace)


def create_app(
    *,
    data_dir: Path | None = None,
    access_token: str,
    app_secret: str,
    rate_per_s: float | None = 4.0,
    burst: int = 40,
    faults: str = "none",
    handle: str = "demo-outdoor",
    seed: bool = True,
    skus: int = 300,
    webhook_retry_scale: float = 1.0,
    webhook_signature: str = "hex",
) -> FastAPI:
    """Build the SHOPLINE sandbox app (docs at ``/docs``).

    State lives in ``data_dir/shopline.sqlite3`` (memory when None) and survives restarts; a new
    store is seeded with the demo data unless ``seed=False``. ``webhook_retry_scale`` multiplies
    SHOPLINE's retry delays (tests use a small factor). Call ``app.state.shopline.close()`` to
    stop webhook delivery when the app is discarded.
    """
    from stokline.sandbox.shopline import control, routes
    from stokline.sandbox.shopline.seed import seed_demo

    if not access_token or not app_secret:
        raise ValueError("access_token and app_secret are required")
    store = DocStore(data_dir / DB_FILE if data_dir is not None else None)
    fresh = store.get_meta("seeded") is None and store.count("location") == 0
    if seed and fresh:
        seed_demo(store, skus=skus, handle=handle)
    sandbox = ShoplineSandbox(
        store,
        access_token=access_token,
        app_secret=app_secret,
        rate_per_s=rate_per_s,
        burst=burst,
        faults=faults,
        handle=handle,
        webhook_retry_scale=webhook_retry_scale,
        webhook_signature=webhook_signature,
    )
    app = FastAPI(
        title="SHOPLINE sandbox",
        version=quirks.DEFAULT_API_VERSION,
        description=(
            "A local emulator of the SHOPLINE Admin REST API for stokline: bearer auth, "
            "leaky-bucket rate limit, cursor pagination in the `link` header, SHOPLINE error "
            "bodies, signed webhooks with retries, fault injection. Call it at "
            "`/admin/openapi/{version}/...json`; drive it through `/_sandbox/`."
        ),
    )
    app.state.shopline = sandbox

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message, exc.errors), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body(422, "request is invalid", jsonable_encoder(errors)), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(TypeError)
    @app.exception_handler(ValueError)
    @app.exception_handler(AttributeError)
    @app.exception_handler(KeyError)
    async def _malformed(request: Request, exc: Exception) -> JSONResponse:
        # Bodies are loosely typed JSON: a list where an object belongs ends up here. A 5xx
        # would make clients retry a request that can never succeed, so answer 422 (and log,
        # in case it is a sandbox bug rather than a bad request).
        log.warning("malformed request to %s: %r", request.url.path, exc, exc_info=exc)
        return JSONResponse(error_body(422, "request is invalid"), status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(500, "Internal Server Error"), status_code=500)

    app.include_router(routes.router)
    app.include_router(control.router)
    app.add_middleware(_AdminGate, sandbox=sandbox)
    install_faults(app, lambda: sandbox.faults, error_response)
    app.add_middleware(_TraceId)
    sandbox.webhooks.start()
    return app
