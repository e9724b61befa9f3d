"""The receiver benchmark's baseline: an ASGI endpoint that reads the body and answers 200.

Served the way `stokline receiver` serves its app (``uvicorn.run``, loopback, log level warning),
so the difference between the two is the receiver's own work: the signature check, the inbox
write and the debounced signal. ``python -m benchmarks.echo_app --port 8899``.
"""

from __future__ import annotations

import argparse
from typing import Any

ANSWER = b'{"status":"stored"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    size = 0
    more = True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
