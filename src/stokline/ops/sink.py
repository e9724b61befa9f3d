"""The demo's alert channel: a loopback HTTP endpoint that appends each notification to a file.

Prefect's CallWebhook action POSTs the alert there; the sink writes it as one JSON line —
``received_at`` first, then the alert's own fields (or ``body`` when it is not a JSON object) — so
``tail -f .stokline/alerts.log`` shows alerts as they fire. Any path is accepted (``/alerts`` is
the demo's); ``GET /health`` answers for health checks. Standard library only: it starts in a
blink and needs nothing the demo does not have.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8804
DEFAULT_LOG = Path(".stokline") / "alerts.log"
MAX_BODY = 1_000_000


def notification_line(body: bytes, received_at: datetime | None = None) -> str:
    """The log line of one notification (no newline inside, whatever the body holds)."""
    at = (received_at or datetime.now(UTC)).isoformat(timespec="seconds")
    text = body.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    record: dict[str, Any] = {"received_at": at}
    if isinstance(parsed, dict):
        record.update({k: v for k, v in parsed.items() if k != "received_at"})
    else:
        record["body"] = parsed if parsed is not None else text
    return json.dumps(record, ensure_ascii=False)


class AlertSink(ThreadingHTTPServer):
    """An HTTP server appending each POST body to ``log_path`` as one line."""

    daemon_threads = True

    def __init__(self, host: str, port: int, log_path: Path) -> None:
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.received = 0
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, body: bytes) -> str:
        line = notification_line(body)
        with self.lock, self.log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
            self.received += 1
        return line


class _Handler(BaseHTTPRequestHandler):
    server: AlertSink
    server_version = "stokline-sink"

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._answer(200, {"ok": True, "received": self.server.received})
        else:
            self._answer(404, {"error": "POST notifications to any path; GET /health"})

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._answer(413, {"error": f"a notification is at most {MAX_BODY} bytes"})
            return
        body = self.rfile.read(length)
        line = self.server.record(body)
        print(line, flush=True)
        self._answer(200, {"ok": True})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # each notification is printed once, as its line; no access log besides


@contextmanager
def running_sink(log_path: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[AlertSink]:
    """A sink served on a background thread (port 0: any free port), stopped on exit."""
    sink = AlertSink(host, port, log_path)
    thread = threading.Thread(target=sink.serve_forever, name="alert-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()
        thread.join(5)
