"""Stokly-shaped errors: every failure is JSON ``{"message": ...}`` with a REST status."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "error_response", "install_error_handlers"]

_DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class ApiError(Exception):
    """Raised by handlers and domain code; rendered as ``{"message": ..., **extra}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_response(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A JSON error response in Stokly's shape; 429s carry ``Retry-After`` in whole seconds."""
    body: dict[str, Any] = {"message": message or _DEFAULT_MESSAGES.get(status, "Error")}
    if extra:
        body.update(extra)
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 429:
        headers["x-ratelimit-remaining"] = "0"
    return JSONResponse(body, status_code=status, headers=headers)


def fault_response(status: int, retry_after: float | None) -> JSONResponse:
    """The `install_faults` error builder: injected failures look like real Stokly ones."""
    if status == 429:
        wait = retry_after if retry_after is not None else 1.0
        return error_response(429, "Rate limit exceeded, slow down", retry_after=wait)
    return error_response(status)


def _describe_validation(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "Validation failed: " + "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :func:`error_response`, so no HTML or FastAPI shape leaks."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, extra=exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else None
        if message in ("Not Found", "Method Not Allowed"):
            message = None
        return error_response(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback; the client sees Stokly's shape, not a stack.
        return error_response(500)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _describe_validation(exc))
