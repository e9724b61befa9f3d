"""No token, secret, Authorization header or signature in any exception text or repr."""

from __future__ import annotations

import hashlib
import hmac
import traceback

import httpx
import pytest
from pydantic import SecretStr

from stokline.connectors import ConnectorError, RetryPolicy, ShoplineClient
from stokline.connectors.errors import redact

from .conftest import (
    API,
    SHOPLINE_BASE,
    SHOPLINE_TOKEN,
    STOKLY_CLIENT_ID,
    STOKLY_SECRET,
    make_stokly,
)
from .fakes import FakeClock, StrictTransport

SIGNATURE = hmac.new(STOKLY_SECRET.encode(), STOKLY_CLIENT_ID.encode(), hashlib.sha256).hexdigest()
STOKLY_TOKEN = "eyJhbGciOiJIUzI1NiJ9.stokly-access-token.sig"
SECRETS = (SHOPLINE_TOKEN, STOKLY_SECRET, SIGNATURE, STOKLY_TOKEN)
LOCATIONS = f"{API}/locations/list.json"


def assert_clean(error: BaseException) -> None:
    texts = [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
        repr(vars(error)),
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret leaked into {text!r}"
        assert "Bearer e" not in text and "Bearer s" not in text


def shopline_failure(
    transport: StrictTransport, clock: FakeClock, **answer: object
) -> ConnectorError:
    client = ShoplineClient(
        SHOPLINE_BASE, SecretStr(SHOPLINE_TOKEN), transport=transport, clock=clock
    )
    transport.expect("GET", LOCATIONS, **answer)  # type: ignore[arg-type]
    with pytest.raises(ConnectorError) as info:
        clock.run(client.list_locations())
    return info.value


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 401, "body": {"errors": f"access token {SHOPLINE_TOKEN} is invalid"}},
        {"status": 403, "body": {"errors": {"Authorization": f"Bearer {SHOPLINE_TOKEN}"}}},
        {"status": 422, "body": {"code": "E1", "message": "echo", "errors": [SHOPLINE_TOKEN]}},
        # Not JSON at all: tried again on each of the default policy's 5 attempts.
        {"status": 200, "text": f"<html>token={SHOPLINE_TOKEN}</html>", "times": 5},
        {"raises": httpx.ConnectError(f"refused, Authorization: Bearer {SHOPLINE_TOKEN}")},
    ],
)
def test_shopline_errors_never_carry_the_token(
    transport: StrictTransport, clock: FakeClock, answer: dict[str, object]
) -> None:
    if "raises" in answer:
        # Connection errors are retried: script the whole budget (2 attempts).
        for _ in range(2):
            transport.expect("GET", LOCATIONS, raises=answer["raises"])  # type: ignore[arg-type]
        client = ShoplineClient(
            SHOPLINE_BASE,
            SecretStr(SHOPLINE_TOKEN),
            transport=transport,
            clock=clock,
            retry=RetryPolicy(max_attempts=2),
        )
        with pytest.raises(ConnectorError) as info:
            clock.run(client.list_locations())
        assert_clean(info.value)
        return
    assert_clean(shopline_failure(transport, clock, **answer))


def test_stokly_grant_failure_never_carries_secret_or_signature(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = make_stokly(transport, clock)
    transport.expect(
        "POST",
        "/v1/grant",
        status=401,
        body={"message": f"signature {SIGNATURE} does not match secret {STOKLY_SECRET}"},
    )
    with pytest.raises(ConnectorError) as info:
        clock.run(client.get_item("i1"))
    assert_clean(info.value)
    assert "does not match secret" in str(info.value)


def test_stokly_call_failure_never_carries_the_access_token(
    transport: StrictTransport, clock: FakeClock
) -> None:
    client = make_stokly(transport, clock)
    transport.expect(
        "POST",
        "/v1/grant",
        body={
            "data": {
                "authenticationResult": {
                    "accessToken": STOKLY_TOKEN,
                    "expiry": "2099-01-01T00:00:00Z",
                }
            }
        },
    )
    transport.expect(
        "GET", "/v0/items/i1", status=400, body={"message": f"bad request for {STOKLY_TOKEN}"}
    )
    with pytest.raises(ConnectorError) as info:
        clock.run(client.get_item("i1"))
    assert_clean(info.value)


def test_client_reprs_hide_credentials(transport: StrictTransport, clock: FakeClock) -> None:
    shopline = ShoplineClient(SHOPLINE_BASE, SecretStr(SHOPLINE_TOKEN), transport=transport)
    stokly = make_stokly(transport, clock)
    for text in (repr(shopline), repr(stokly), repr(vars(shopline)), repr(vars(stokly))):
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ('{"accessToken": "abc123"}', '{"accessToken": "***"}'),
        ("client_secret=xyz&x=1", "client_secret=***&x=1"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact_masks_unregistered_credential_shapes(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_leaves_ordinary_words_alone() -> None:
    assert redact("design=compact, sign-up page") == "design=compact, sign-up page"
    assert redact('{"signature": "abc"}') == '{"signature": "***"}'
