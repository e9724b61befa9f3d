"""`stokline up` for real, on free ports in a copy of the project: healthy, orders flowing, and
nothing left behind after Ctrl-C (about 30 s: the one test here that starts a Prefect server)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
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


EXTRAS: list[subprocess.Popen[str]] = []
"""Processes a test started beside the stack (the second client's sandboxes), stopped at its end."""


def _deployments_of(api: str, client: str) -> dict[str, dict]:
    found = httpx.post(
        f"{api}/deployments/filter",
        json={"deployments": {"tags": {"all_": [f"client:{client}"]}}},
        timeout=10,
    ).json()
    return {d["name"]: d for d in found}


def _runs_of(api: str, deployments: dict[str, dict]) -> list[dict]:
    ids = [d["id"] for d in deployments.values()]
    return httpx.post(
        f"{api}/flow_runs/filter",
        json={"flow_runs": {"deployment_id": {"any_": ids}}, "limit": 200},
        timeout=10,
    ).json()


def add_client_while_running(project: Path, env: dict[str, str], api: str, receiver: int) -> None:
    """Copy the demo mapping as acme-outdoor on its own sandboxes, `stokline deploy` it, and
    check its runs start within a minute while the demo client's deployments stay as they were."""
    shopline, stokly = free_ports(2)
    sandbox = subprocess.Popen(
        [EXE, "sandbox", "--seed", "demo", "--shopline-port", str(shopline),
         "--stokly-port", str(stokly), "--data-dir", str(project / "acme-sandbox"),
         "--storefront-rate", "0"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    EXTRAS.append(sandbox)
    demo = project / "mappings" / "demo.yaml"
    acme = project / "mappings" / "acme-outdoor.yaml"
    text = demo.read_text().replace("name: demo-outdoor", "name: acme-outdoor")
    text = re.sub(r"http://127\.0\.0\.1:\d+(?=\n)", "BASE", text, count=2)
    text = text.replace("BASE", f"http://127.0.0.1:{stokly}", 1)
    text = text.replace("BASE", f"http://127.0.0.1:{shopline}", 1)
    acme.write_text(text)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{stokly}/_sandbox/state", timeout=2).is_success:
                break
        except httpx.HTTPError:
            time.sleep(0.25)

    demo_before = _deployments_of(api, "demo-outdoor")
    assert len(demo_before) == 9
    runs_before = {(r["id"], r["expected_start_time"]) for r in _runs_of(api, demo_before)}
    started = time.monotonic()
    deployed = subprocess.run(
        [EXE, "deploy", "mappings/acme-outdoor.yaml", "--receiver", f"http://127.0.0.1:{receiver}"],
        cwd=project,
        env={**env, "PREFECT_API_URL": api},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "acme-outdoor: 9 created" in deployed.stdout
    assert "/webhooks/acme-outdoor" in deployed.stdout  # the receiver serves it already
    assert "demo-outdoor" not in deployed.stdout

    acme_deployments = _deployments_of(api, "acme-outdoor")
    assert len(acme_deployments) == 9
    going: list[str] = []
    while time.monotonic() - started < 60 and not going:
        runs = _runs_of(api, acme_deployments)
        going = [r["name"] for r in runs if r["state_type"] in ("RUNNING", "COMPLETED")]
        time.sleep(1)
    assert going, "no run of the new client started within a minute"

    demo_after = _deployments_of(api, "demo-outdoor")
    for name, before in demo_before.items():
        after = demo_after[name]
        for field in ("schedules", "paused", "parameters", "description", "tags"):
            assert after[field] == before[field], (name, field)
    runs_after = {(r["id"], r["expected_start_time"]) for r in _runs_of(api, demo_after)}
    assert runs_before <= runs_after  # no run of the demo client was removed or moved


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
    extras = EXTRAS
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
        assert len(family) >= 5  # server, sandbox, receiver, sink, worker

        # The worker and so its flow runs send heartbeats; the automation that watches them is
        # applied with the alerts, and flow runs' heartbeats reach the server.
        children = json.loads((project / ".stokline" / "up.json").read_text())["children"]
        (worker,) = [c["pid"] for c in children if c["name"] == "worker"]
        # The worker runs the flow runs in threads of its own: no process per run.
        assert not descendants([worker])
        envs = [e for e in map(environ, (worker,)) if e is not None]
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

        # A second client is one file and one command, while the stack runs: its runs start at
        # once, and not one schedule or run of the demo client moves.
        add_client_while_running(project, env, api, receiver)

        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=90)
        assert up.returncode == 0, rest
        assert "stopped: no process of the stack is left" in rest
        assert "flow run(s) still going marked Cancelled" in rest
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for extra in extras:
            extra.kill()
            extra.wait()
    left = [pid for pid in family if alive(pid)]
    assert not left, f"left behind: {left}"
    # Ctrl-C left no run Running (or Pending) in Prefect, so the next start finds none to call
    # Crashed: the watchers, always running, were marked Cancelled.
    with sqlite3.connect(project / ".stokline" / "prefect" / "prefect.db") as db:
        states = db.execute("SELECT name, state_type FROM flow_run").fetchall()
    going = [name for name, state in states if state in ("RUNNING", "PENDING", "CANCELLING")]
    assert not going, going
    assert sum(state == "CANCELLED" for _, state in states) >= 2, states
    for port in (prefect, shopline, stokly, receiver, sink):
        assert not port_taken(port)
    assert not (project / ".stokline" / "up.json").exists()
