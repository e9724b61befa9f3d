"""An httpx transport that records every request a client sends: what, when, and the answer.

Handed to `stokline.sync.clients.open_clients` as the transport, it counts at the wire — reads, writes,
429s, token grants — independently of the sync's own report, so a benchmark can check the report
against what really went out, and time the write phase of a pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Sent:
    """One request: method, the last segment of its path, status, start and end (monotonic)."""

    method: str
    endpoint: str
    status: int
    start: float
    end: float


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport; ``sent`` lists every request in order of completion."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.monotonic()
        response = await self._inner.handle_async_request(request)
        endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        self.sent.append(
            Sent(request.method, endpoint, response.status_code, start, time.monotonic())
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def summary(self, origin: float) -> dict[str, Any]:
        """Counts by kind, and the span of the non-GET requests relative to ``origin``."""
        reads = sum(1 for s in self.sent if s.method == "GET")
        writes = [s for s in self.sent if s.method != "GET" and s.status != 429]
        return {
            "requests": len(self.sent),
            "reads": reads,
            "writes": len(writes),
            "rate_limited_429": sum(1 for s in self.sent if s.status == 429),
            "errors": sum(1 for s in self.sent if s.status >= 400 and s.status != 429),
            "first_write_s": round(min(s.start for s in writes) - origin, 3) if writes else None,
            "last_write_s": round(max(s.end for s in writes) - origin, 3) if writes else None,
        }
