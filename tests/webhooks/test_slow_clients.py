"""Slow clients against a real `stokline receiver` process, over raw loopback sockets.

The receiver runs with ``--body-timeout 2``. Twenty connections misbehave at once — silent, half
their headers, a body 100 bytes short of what they declared, headers or body trickled a byte at a
time, a refused body trickled on, a second request stalled on a kept-alive connection — while
valid deliveries go in. Each slow connection must be closed within the bound (plus a margin for
a loaded machine, never before it), with a 408 when nothing had been answered yet, and nothing
of it stored; every valid delivery must be acknowledged in under a second and stored once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from stokline.cli import main
from stokline.store.tables import inbox
from stokline.webhooks.deadline import BODY_TIMEOUT, MAX_BODY_TIMEOUT
from tests.webhooks.process import ReceiverProcess, receiver_process

pytestmark = pytest.mark.slow

SECRET = "slow-clients-app-secret"
CLIENT = "demo-outdoor"
PATH = f"/webhooks/{CLIENT}"
BOUND = 2.0  # the receiver's --body-timeout here
MARGIN = 3.0  # how late a close may come on a loaded 2-core machine
SLOW_CLIENTS = 20
TRICKLE_EVERY = 0.1  # seconds between two bytes of a trickling client


def signature(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def rows(receiver: ReceiverProcess) -> list[tuple[str, bytes]]:
    with receiver.store() as store, store.engine.connect() as conn:
        found = conn.execute(select(inbox.c.webhook_id, inbox.c.body).order_by(inbox.c.id))
        return [(row.webhook_id, bytes(row.body)) for row in found]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    work = tmp_path_factory.mktemp("slow-clients")
    with receiver_process(work, {CLIENT: SECRET}, "--body-timeout", f"{BOUND}") as process:
        yield process
    assert SECRET not in process.log.read_text()


# ---------------------------------------------------------------------------------------------
# Slow clients: each one a thread with its own socket, recording when the receiver closed it
# ---------------------------------------------------------------------------------------------


@dataclass
class Slow:
    kind: str
    webhook_id: str
    started: float = 0.0  # just before it connected, or sent its second request
    closed: float | None = None
    received: bytes = b""
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def held(self) -> float | None:
        return None if self.closed is None else self.closed - self.started


def _headers(webhook_id: str, length: int, body: bytes) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Shopline-Topic: orders/paid\r\nX-Shopline-Webhook-Id: {webhook_id}\r\n"
        f"X-Shopline-Hmac-Sha256: {signature(body)}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _order(webhook_id: str) -> bytes:
    return json.dumps({"id": webhook_id, "name": "#SLOW", "financial_status": "paid"}).encode()


def _opening(slow: Slow) -> tuple[bytes, bytes]:
    """What a kind sends at once, and what it then trickles one byte at a time (b"": nothing)."""
    order = _order(slow.webhook_id)
    kind = slow.kind
    if kind == "silent":
        return b"", b""
    if kind == "half headers":
        return f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode(), b""
    if kind == "body 100 bytes short":
        # Signed over exactly what it sends: storing what arrived by the deadline would be a bug.
        return _headers(slow.webhook_id, len(order) + 100, order) + order, b""
    if kind == "trickled headers":
        return f"POST {PATH} HTTP/1.1\r\nX-Pad: ".encode(), b"a" * 1000
    if kind == "trickled body":
        return _headers(slow.webhook_id, len(order), order), order
    if kind == "refused, then trickled":
        return _headers(slow.webhook_id, 2 * 1024 * 1024, order), b"x" * 1000  # over --max-body
    raise AssertionError(kind)


def _run(slow: Slow, port: int, give_up: float) -> None:
    # ``started`` is taken before the receiver can start its clock (it counts from the connection
    # or the request's first byte), so a close after less than the bound is the receiver's doing.
    slow.started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if slow.kind == "kept alive, second request stalls":
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            slow.received = _one_response(sock)
            first, trickle = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode(), b""
            slow.started = time.monotonic()
        else:
            first, trickle = _opening(slow)
        sock.sendall(first)
        slow.ready.set()
        sock.settimeout(TRICKLE_EVERY)
        while time.monotonic() < give_up:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if trickle:
                    sock.sendall(trickle[:1])
                    trickle = trickle[1:]
                continue
            if not chunk:
                break
            slow.received += chunk
        else:
            return  # still open: the test fails on ``closed``
        slow.closed = time.monotonic()
    except OSError:  # reset, or refused while trickling: closed all the same
        slow.closed = time.monotonic()
    finally:
        slow.ready.set()
        sock.close()


def _one_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ).split(b":")[1]
    )
    while len(rest) < length:
        rest += sock.recv(4096)
    return data


KINDS = (
    "silent",
    "half headers",
    "body 100 bytes short",
    "trickled headers",
    "trickled body",
    "refused, then trickled",
    "kept alive, second request stalls",
)
TRICKLING = {"trickled headers", "trickled body", "refused, then trickled"}


def test_slow_clients_are_cut_off_at_the_bound_while_deliveries_are_acknowledged(
    receiver: ReceiverProcess,
) -> None:
    before = rows(receiver)
    slow = [Slow(KINDS[i % len(KINDS)], f"wh-slow-{i}") for i in range(SLOW_CLIENTS)]
    give_up = time.monotonic() + BOUND + MARGIN + 10  # before the fix they would never close
    threads = [
        threading.Thread(target=_run, args=(s, receiver.port, give_up), daemon=True) for s in slow
    ]
    for thread in threads:
        thread.start()
    for s in slow:
        assert s.ready.wait(10), f"{s.kind}: could not start"

    # Meanwhile: valid deliveries, each acknowledged in under a second, and a re-delivery.
    latencies, valid = [], []
    with httpx.Client(base_url=receiver.url, timeout=10) as http:
        for n in range(5):
            body = _order(f"wh-valid-{n}")
            valid.append((f"wh-valid-{n}", body))
            headers = {
                "X-Shopline-Hmac-Sha256": signature(body),
                "X-Shopline-Webhook-Id": f"wh-valid-{n}",
            }
            started = time.monotonic()
            response = http.post(PATH, content=body, headers=headers)
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200 and response.json() == {"status": "stored"}
        again = http.post(
            PATH,
            content=valid[0][1],
            headers={
                "X-Shopline-Hmac-Sha256": signature(valid[0][1]),
                "X-Shopline-Webhook-Id": "wh-valid-0",
            },
        )
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    still_open = sum(s.closed is None for s in slow)
    assert max(latencies) < 1.0, latencies
    assert still_open == SLOW_CLIENTS, (
        "the deliveries were not sent while every slow client held on"
    )

    for thread in threads:
        thread.join(timeout=max(0.0, give_up - time.monotonic()) + 5)
    for s in slow:
        assert s.held is not None, f"{s.kind}: still open after {BOUND + MARGIN + 10:g} s"
        assert BOUND <= s.held <= BOUND + MARGIN, f"{s.kind}: closed after {s.held:.2f} s"
        answers = s.received.split(b"HTTP/1.1 ")[1:]
        statuses = [answer[:3] for answer in answers]
        expected = {
            "refused, then trickled": [b"413"],
            "kept alive, second request stalls": [b"200", b"408"],
        }.get(s.kind, [b"408"])
        allowed = [expected]
        if s.kind in TRICKLING and expected[-1] == b"408":
            allowed.append(expected[:-1])  # a byte sent as it closed: its reset may beat the 408
        assert statuses in allowed, (s.kind, s.received)
    assert rows(receiver) == before + valid  # each valid delivery once, nothing of the slow ones


def test_a_client_that_leaves_mid_body_is_no_error(receiver: ReceiverProcess) -> None:
    before = rows(receiver)
    order = _order("wh-gone")
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(_headers("wh-gone", len(order) + 100, order) + order)
    with httpx.Client(base_url=receiver.url, timeout=10) as http:
        for _ in range(3):  # round trips after the close: the receiver has handled it by then
            assert http.get("/health").status_code == 200
    log = receiver.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    assert rows(receiver) == before


# ---------------------------------------------------------------------------------------------
# The option
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "301", "ten", ""])
def test_the_bound_must_be_positive_and_bounded(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["receiver", "--mapping", "mappings/demo.yaml", "--body-timeout", value])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--body-timeout" in err and "seconds" in err


def test_the_help_explains_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["receiver", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--body-timeout SECONDS" in text
    assert f"(default: {BODY_TIMEOUT:g}; above 0, at most {MAX_BODY_TIMEOUT:g})" in text
    assert "408" in text
