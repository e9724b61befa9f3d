"""The malformed-answer corpus (tests/corpus/api_responses.py) at the transport seam.

Each case scripts the strict fake transport and makes one client call: it must end in the named
`ConnectorError` subclass — never another exception — with a message that names the endpoint,
carries the expected fragments, stays short (an excerpt, never the whole body) and holds no
credential in its text, repr or traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from stokline import connectors
from stokline.connectors import ConnectorError, RetryPolicy, ShoplineClient, StoklyClient
from tests.corpus.api_responses import (
    ATTEMPTS,
    CASES,
    MAX_MESSAGE,
    SECRETS,
    SHOPLINE_TOKEN,
    STOKLY_CLIENT_ID,
    STOKLY_SECRET,
    SURROGATE,
    TAIL,
    Answer,
    ApiCase,
)

from .fakes import Expectation, FakeClock, StrictTransport

RETRY = RetryPolicy(max_attempts=ATTEMPTS, max_elapsed=600.0, backoff_base=0.5, jitter=0.0)


async def _collect(iterator: Any) -> list[Any]:
    return [x async for x in iterator]


CALLS: dict[str, Callable[[Any], Any]] = {
    "shopline.locations": lambda c: c.list_locations(),
    "shopline.orders": lambda c: _collect(c.iter_orders()),
    "stokly.items": lambda c: _collect(c.iter_items()),
    "stokly.items_by_bad_sku": lambda c: _collect(c.iter_items(skus=[SURROGATE])),
    "stokly.create_customer_bad_name": lambda c: c.create_customer(
        {"email": "a@example.com", "fullName": SURROGATE}
    ),
}


def _script(transport: StrictTransport, answer: Answer) -> None:
    def respond(_request: httpx.Request, a: Answer = answer) -> httpx.Response:
        if a.stream:  # decoded only when the client reads it
            return httpx.Response(
                a.status, headers=a.headers, stream=httpx.ByteStream(a.raw or b"")
            )
        return httpx.Response(a.status, headers=a.headers, content=a.raw or b"")

    for _ in range(answer.times):
        if answer.raw is not None:
            transport.expected.append(Expectation(answer.method, answer.path, respond))
        else:
            transport.expect(
                answer.method,
                answer.path,
                status=answer.status,
                body=answer.body,
                text=answer.text,
                headers={"content-type": "text/html"} | answer.headers
                if answer.text is not None
                else answer.headers,
            )


def _client(case: ApiCase, transport: StrictTransport, clock: FakeClock) -> Any:
    if case.call.startswith("shopline."):
        return ShoplineClient(
            "https://corpus.myshopline.com",
            SecretStr(SHOPLINE_TOKEN),
            transport=transport,
            clock=clock,
            retry=RETRY,
        )
    return StoklyClient(
        "https://api.stok.ly",
        account_key="corpus",
        client_id=STOKLY_CLIENT_ID,
        client_secret=SecretStr(STOKLY_SECRET),
        transport=transport,
        clock=clock,
        retry=RETRY,
    )


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = []
        if case.known_gap:
            marks.append(pytest.mark.xfail(strict=True, reason=f"known gap: {case.known_gap}"))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_each_malformed_answer_becomes_a_short_typed_error(case: ApiCase) -> None:
    transport, clock = StrictTransport(), FakeClock()
    for answer in case.answers:
        _script(transport, answer)
    client = _client(case, transport, clock)
    call = CALLS[case.call]
    if case.error is None:
        assert clock.run(call(client))
        transport.assert_done()
        return
    try:
        clock.run(call(client))
    except ConnectorError as exc:
        error: ConnectorError = exc
    except Exception as exc:  # the gap a known_gap names: anything but a ConnectorError
        pytest.fail(f"{type(exc).__name__} escaped instead of a ConnectorError: {exc!s:.200}")
    else:
        pytest.fail("the call succeeded")
    transport.assert_done()
    assert type(error).__name__ == case.error, repr(error)
    assert isinstance(error, getattr(connectors, case.error))
    message = str(error)
    for fragment in case.fragments:
        assert fragment in message, message
    assert len(message) <= MAX_MESSAGE, f"{len(message)} characters: {message[:200]}…"
    assert TAIL not in message
    texts = [message, repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_the_corpus_is_large_enough_and_names_are_unique() -> None:
    assert len(CASES) >= 12
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.call.split(".")[0] for c in CASES} == {"shopline", "stokly"}
