"""The demo's alert sink: what Prefect's CallWebhook posts becomes one line in the log."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from stokline.ops.sink import notification_line, running_sink

EXE = str(Path(sys.executable).with_name("stokline"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_call_webhook_post_is_logged_as_one_json_line(tmp_path: Path) -> None:
    log = tmp_path / "alerts" / "alerts.log"
    # What CallWebhook sends: the rendered payload as the raw body, with the block's headers.
    body = json.dumps(
        {"alert": "fulfilment_stale", "client": "demo-outdoor", "summary": "two\nlines"}
    )
    with running_sink(log) as sink:
        assert httpx.get(f"{sink.url}/health").json() == {"ok": True, "received": 0}
        response = httpx.post(
            f"{sink.url}/alerts", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        httpx.post(f"{sink.url}/elsewhere", content=b"plain text, not JSON")
        assert httpx.get(f"{sink.url}/health").json()["received"] == 2
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert next(iter(first)) == "received_at"
    assert first["alert"] == "fulfilment_stale" and first["summary"] == "two\nlines"
    assert second["body"] == "plain text, not JSON"


def test_a_body_cannot_forge_the_time_or_break_the_line() -> None:
    line = notification_line(b'{"received_at": "forged", "x": 1}')
    assert "forged" not in line and json.loads(line)["x"] == 1
    assert "\n" not in notification_line(b"a\nb\r\nc")
    assert json.loads(notification_line(b"[1, 2]"))["body"] == [1, 2]


def test_the_command_serves_until_sigterm_and_refuses_a_taken_port(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "alerts.log"
    sink = subprocess.Popen(
        [EXE, "sink", "--port", str(port), "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sink.stdout is not None
        assert f"alert sink on http://127.0.0.1:{port}/alerts" in sink.stdout.readline()
        httpx.post(f"http://127.0.0.1:{port}/alerts", json={"alert": "oversell_risk"})
        taken = subprocess.run(
            [EXE, "sink", "--port", str(port), "--log", str(log)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert taken.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr
        sink.send_signal(signal.SIGTERM)
        rest, _ = sink.communicate(timeout=20)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    assert sink.returncode == 0
    assert "stopped after 1 notification(s)" in rest
    assert json.loads(log.read_text())["alert"] == "oversell_risk"


def test_ctrl_c_stops_the_command_even_when_started_as_a_background_job(tmp_path: Path) -> None:
    # A non-interactive shell starts a background job with SIGINT ignored; Ctrl-C (or a
    # supervisor's SIGINT) must still stop the sink.
    def as_a_background_job() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    port = free_port()
    sink = subprocess.Popen(
        [EXE, "sink", "--port", str(port), "--log", str(tmp_path / "alerts.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_a_background_job,
    )
    try:
        assert sink.stdout is not None
        assert "alert sink on" in sink.stdout.readline()  # serving: the handlers are in place
        sink.send_signal(signal.SIGINT)
        rest, _ = sink.communicate(timeout=20)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    assert sink.returncode == 0 and "stopped after 0 notification(s)" in rest
