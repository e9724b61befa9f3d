"""Test doubles at the transport seam: a virtual clock and a strict scripted transport."""

from __future__ import annotations

import asyncio
import heapq
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class FakeClock:
    """Virtual time: ``sleep`` parks the caller until :meth:`run` jumps the clock to it.

    :meth:`run` drives a coroutine and, whenever every task is parked on this clock, advances
    time to the earliest wake-up. Hours of pacing and backoff take milliseconds, and concurrent
    sleepers wake in the order real time would wake them.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.start = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    @property
    def elapsed(self) -> float:
        return self.now - self.start

    def advance(self, seconds: float) -> None:
        """Move time forward outside of any sleep (e.g. to age a token)."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, self._seq, future))
        self._seq += 1
        await future

    def run(self, awaitable: Awaitable[T]) -> T:
        """``asyncio.run`` with virtual time."""

        async def drive() -> T:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(awaitable)
            idle_rounds = 0
            while not task.done():
                await asyncio.sleep(0)
                # CPython's ready queue: nothing runnable means every task waits on something.
                if getattr(loop, "_ready", None):
                    idle_rounds = 0
                    continue
                idle_rounds += 1
                if idle_rounds < 3:
                    continue
                idle_rounds = 0
                if not self._sleepers:
                    continue
                wake_at = self._sleepers[0][0]
                self.now = max(self.now, wake_at)
                while self._sleepers and self._sleepers[0][0] <= self.now:
                    _, _, future = heapq.heappop(self._sleepers)
                    if not future.done():
                        future.set_result(None)
            return task.result()

        return asyncio.run(drive())


Responder = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


@dataclass
class Expectation:
    """One request the test expects, in order, and what to answer."""

    method: str
    path: str
    answer: Responder
    params: Mapping[str, str] | None = None
    exact_params: bool = False
    json_body: Any = None


class StrictTransport(httpx.MockTransport):
    """A scripted ``MockTransport``: requests must come in the expected order, all of them.

    An unexpected or mismatching request raises ``AssertionError`` inside the client call; an
    expected request that never came fails :meth:`assert_done` (called by the fixture).
    """

    def __init__(self) -> None:
        super().__init__(self._handle)
        self.expected: deque[Expectation] = deque()
        self.requests: list[httpx.Request] = []

    def expect(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        body: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        raises: BaseException | None = None,
        params: Mapping[str, str] | None = None,
        exact_params: bool = False,
        json_body: Any = None,
        times: int = 1,
    ) -> StrictTransport:
        """Expect ``method path`` (``times`` times) and answer with JSON ``body`` or ``text``."""
        for _ in range(times):
            answer: Responder
            if raises is not None:
                answer = raises
            else:
                content = text.encode() if text is not None else json.dumps(body).encode()
                answer = httpx.Response(
                    status,
                    content=content if (body is not None or text is not None) else b"",
                    headers={
                        "content-type": "text/html" if text is not None else "application/json",
                        **(headers or {}),
                    },
                )
            self.expected.append(Expectation(method, path, answer, params, exact_params, json_body))
        return self

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.expected:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        exp = self.expected.popleft()
        seen = f"{request.method} {request.url.path}"
        assert (request.method, request.url.path) == (exp.method, exp.path), (
            f"expected {exp.method} {exp.path}, got {seen}"
        )
        if exp.params is not None:
            actual = dict(request.url.params)
            if exp.exact_params:
                assert actual == dict(exp.params), f"{seen}: params {actual} != {exp.params}"
            else:
                for key, value in exp.params.items():
                    assert actual.get(key) == value, f"{seen}: {key}={actual.get(key)!r}"
        if exp.json_body is not None:
            assert json.loads(request.content) == exp.json_body, f"{seen}: body differs"
        if isinstance(exp.answer, BaseException):
            raise exp.answer
        if callable(exp.answer):
            return exp.answer(request)
        # A fresh Response per request: httpx binds a response to its request.
        return httpx.Response(
            exp.answer.status_code, content=exp.answer.content, headers=exp.answer.headers
        )

    def assert_done(self) -> None:
        """Every expected request came."""
        missing = [f"{e.method} {e.path}" for e in self.expected]
        assert not missing, f"expected requests never came: {missing}"


def link(base: str, page_info: str, rel: str = "next") -> str:
    """A SHOPLINE ``link`` header value."""
    return f'<{base}?limit=100&page_info={page_info}>; rel="{rel}"'
