"""`stokline up` for real, on free ports in a copy of the project: healthy, orders flowing, and
nothing left behind after Ctrl-C (about 30 s: the one test here that starts a Prefect server)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stokline.ops.automations import CRASHED_RUN_GUARD
from stokline.ops.heartbeats import HEARTBEAT_ENV, HEARTBEAT_EVENT, HEARTBEAT_SECONDS
from stokline.stack import descendants, port_taken
from tests.flows.sandboxes import DEMO_MAPPING, ROOT, point_mapping_at
from tests.stack.test_supervisor import alive

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("stokline"))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def environ(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` started with, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.partition("=") for item in raw.decode(errors="replace").split("\0") if item)
    return {key: value for key, _, value in pairs}


def test_up_starts_everything_orders_flow_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    prefect, shopline, stokly, receiver, sink = free_ports(5)
    project = tmp_path / "project"
    (project / "mappings").mkdir(parents=True)
    shutil.copytree(ROOT / "flows", project / "flows")
    shutil.copy(ROOT / "prefect.yaml", project)
    shutil.copy(ROOT / ".env.demo", project)
    point_mapping_at(
        DEMO_MAPPING,
        project / "mappings" / "demo.yaml",
        f"http://127.0.0.1:{shopline}",
        f"http://127.0.0.1:{stokly}",
    )
    demo = project / "mappings" / "demo.yaml"
    demo.write_text(demo.read_text().replace("127.0.0.1:8804", f"127.0.0.1:{sink}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STOKLINE_"))}
    up = subprocess.Popen(
        [
            EXE,
            "up",
            "--prefect-port",
            str(prefect),
            "--receiver-port",
            str(receiver),
            "--storefront-rate",
            "30",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    family: set[int] = set()
    try:
        assert up.stdout is not None
        lines: list[str] = []
        for line in up.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops everything") or up.poll() is not None:
                break
        output = "".join(lines)
        assert "stokline is up" in output, output
        assert f"Prefect UI         http://127.0.0.1:{prefect}" in output
        assert f"webhook receiver   http://127.0.0.1:{receiver}/docs" in output
        # The alert sink serves the mapping's loopback webhook; the alerts are automations.
        assert "alerts applied as Prefect automations" in output
        assert "alerts             tail -f .stokline/alerts.log" in output
        assert httpx.get(f"http://127.0.0.1:{sink}/health", timeout=5).json()["ok"]

        # The storefront places orders; the inbox watcher imports the webhooks' deliveries.
        stokly_state = f"http://127.0.0.1:{stokly}/_sandbox/state"
        seeded = httpx.get(stokly_state, timeout=5).json()["data"]["counts"]["saleorder"]
        deadline = time.monotonic() + 60
        imported = 0
        while time.monotonic() < deadline and not imported:
            family |= descendants([up.pid])
            counts = httpx.get(stokly_state, timeout=5).json()["data"]["counts"]
            imported = counts["saleorder"] - seeded
            time.sleep(1)
        assert imported > 0, "no order reached Stokly within a minute"
        family |= descendants([up.pid])
        assert len(family) >= 5  # server, sandbox, receiver, worker, a flow run or more

        # The worker and so its flow runs send heartbeats; the automation that watches them is
        # applied with the alerts, and flow runs' heartbeats reach the server.
        children = json.loads((project / ".stokline" / "up.json").read_text())["children"]
        (worker,) = [c["pid"] for c in children if c["name"] == "worker"]
        envs = [e for e in map(environ, (worker, *descendants([worker]))) if e is not None]
        assert len(envs) >= 2  # the worker and a flow run at least
        assert {e.get(HEARTBEAT_ENV) for e in envs} == {str(HEARTBEAT_SECONDS)}
        api = f"http://127.0.0.1:{prefect}/api"
        found = httpx.post(f"{api}/automations/filter", json={}, timeout=10).json()
        assert CRASHED_RUN_GUARD in {a["name"] for a in found}
        beats = httpx.post(
            f"{api}/events/filter",
            json={"filter": {"event": {"name": [HEARTBEAT_EVENT]}}, "limit": 5},
            timeout=10,
        ).json()["events"]
        assert beats and beats[0]["resource"]["prefect.resource.id"].startswith("prefect.flow-run.")

        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
        assert up.returncode == 0, rest
        assert "stopped: no process of the stack is left" in rest
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    left = [pid for pid in family if alive(pid)]
    assert not left, f"left behind: {left}"
    for port in (prefect, shopline, stokly, receiver, sink):
        assert not port_taken(port)
    assert not (project / ".stokline" / "up.json").exists()
