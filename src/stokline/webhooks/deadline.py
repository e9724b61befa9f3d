"""The bound uvicorn lacks: the time one request may take to arrive, headers and body.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) and the size of a request's
headers (h11), but not the time a client takes to send its request. A connection that opens and
says nothing, sends half its headers, or declares more body than it sends would stay open for
good, its task waiting on a body that never comes; a few hundred of them exhaust the receiver's
file descriptors, and SHOPLINE's retries with them.

`request_deadline` gives uvicorn an HTTP/1.1 protocol (h11's, which uvicorn uses without
httptools) in which every request must have arrived whole — request line, headers and the body it
declared — within ``seconds`` of its first byte, or of the connection opening. Past the deadline
the client gets a 408 if nothing has been answered yet, the connection is closed either way, and
the app's read of the body ends as a disconnect, so nothing of the request is stored. The wait
between two requests on a kept-alive connection stays uvicorn's keep-alive timeout. A slow
client costs one timer and one connection until its deadline; it never holds up the event loop,
so other deliveries are acknowledged as usual meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("stokline.webhooks")

BODY_TIMEOUT = 10.0  # seconds; SHOPLINE's own deliveries are a few KiB, sent at once
MAX_BODY_TIMEOUT = 300.0  # a longer bound would let a few slow clients hold connections for minutes


def check_seconds(seconds: float) -> float:
    """``seconds`` as a bound, or ValueError saying why it cannot be one."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"must be a number of seconds, not {seconds!r}")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"must be a number of seconds above 0, not {seconds!r}")
    if seconds > MAX_BODY_TIMEOUT:
        raise ValueError(f"must be at most {MAX_BODY_TIMEOUT:g} seconds, not {seconds:g}")
    return float(seconds)


class RequestDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline on receiving each request (see the module)."""

    request_timeout: float = BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    # -- uvicorn's hooks ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never says anything is bounded too

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # the first byte of a request
            self._arm()
        super().data_received(data)
        # Still reading the headers (h11 IDLE) or the body (SEND_BODY): the deadline stands, even
        # for bytes h11 discards (blank lines), so a trickle of them cannot hold the connection.
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is in (DONE), or the connection is ending

    def on_response_complete(self) -> None:
        super().on_response_complete()
        state = self.conn.their_state
        if state is h11.SEND_BODY or (state is h11.IDLE and self.conn.trailing_data[0]):
            # Answered before the whole body came (a 413), or the next, pipelined request has
            # begun: still bounded, from the first byte it was armed for.
            if self._deadline is None:
                self._arm()
        elif state is h11.IDLE:
            self._disarm()  # waiting for another request: uvicorn's keep-alive timeout bounds that

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- the deadline ---------------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        reading_body = self.conn.their_state is h11.SEND_BODY and cycle is not None
        answered = reading_body and cycle.response_started
        if reading_body and not answered:
            # The app waits on the body: it now reads a disconnect, and anything it answers is
            # dropped (uvicorn sends nothing for a disconnected cycle).
            cycle.disconnected = True
            cycle.message_event.set()
        if not answered:
            self.transport.write(self._timeout_response())
        self.transport.close()
        peer = "{}:{}".format(*self.client) if self.client else "a client"
        log.info(
            "closed the connection from %s: its request did not arrive within %g s",
            peer,
            self.request_timeout,
        )

    def _timeout_response(self) -> bytes:
        body = json.dumps(
            {"error": f"request not received within {self.request_timeout:g} s"}
        ).encode()
        head = (
            "HTTP/1.1 408 Request Timeout\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        return head.encode("ascii") + body


def request_deadline(seconds: float = BODY_TIMEOUT) -> type[RequestDeadlineProtocol]:
    """The protocol class to give uvicorn (``http=``) for a bound of ``seconds`` per request."""
    bound = check_seconds(seconds)
    return type("RequestDeadlineProtocol", (RequestDeadlineProtocol,), {"request_timeout": bound})
