"""The supervisor behind `stokline up`, with small child processes instead of the real stack."""

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

import pytest

from stokline.stack import (
    DemoStack,
    StackConfig,
    StackError,
    Supervisor,
    descendants,
    port_taken,
)
from tests.flows.sandboxes import DEMO_MAPPING, ROOT, point_mapping_at

PY = sys.executable
# A child that starts a grandchild in a session of its own (as Prefect's flow-run processes do).
ESCAPER = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
    "start_new_session=True); time.sleep(60)"
)
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] != "Z"


def wait_for_children(pid: int, count: int) -> set[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = descendants([pid])
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never started {count} child(ren)")


@pytest.fixture
def supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(tmp_path / "state", tmp_path, dict(os.environ), stop_timeout=2.0)


def test_stop_leaves_no_child_nor_grandchild_in_another_session(supervisor: Supervisor) -> None:
    child = supervisor.start("escaper", [PY, "-c", ESCAPER])
    grandchildren = wait_for_children(child.pid, 1)
    supervisor.stop()
    assert not alive(child.pid)
    assert not any(alive(pid) for pid in grandchildren)
    assert not supervisor.pid_file.exists()


def test_a_child_that_ignores_sigterm_is_killed(supervisor: Supervisor) -> None:
    child = supervisor.start("stubborn", [PY, "-c", STUBBORN])
    time.sleep(0.3)  # let it install its handler
    started = time.monotonic()
    supervisor.stop()
    assert not alive(child.pid)
    assert time.monotonic() - started < supervisor.stop_timeout + 3


def test_each_child_runs_in_its_own_process_group_and_logs_to_its_file(
    supervisor: Supervisor,
) -> None:
    child = supervisor.start("echo", [PY, "-c", "print('hello from the child')"])
    assert child.proc is not None
    child.proc.wait(10)
    assert child.log == supervisor.log_dir / "echo.log"
    assert "hello from the child" in child.log.read_text()
    sleeper = supervisor.start("sleeper", [PY, "-c", "import time; time.sleep(60)"])
    try:
        assert os.getpgid(sleeper.pid) == sleeper.pid != os.getpgid(0)
    finally:
        supervisor.stop()


def test_a_child_that_dies_before_it_is_healthy_is_named_with_its_log(
    supervisor: Supervisor,
) -> None:
    child = supervisor.start("broken", [PY, "-c", "import sys; print('no config'); sys.exit(3)"])
    with pytest.raises(StackError) as caught:
        supervisor.wait_until(child, lambda: False, "the broken part", timeout=10)
    message = str(caught.value)
    assert "the broken part exited (status 3)" in message
    assert str(child.log) in message
    assert "no config" in message
    supervisor.stop()


def test_a_part_that_never_becomes_healthy_times_out_with_its_log(
    supervisor: Supervisor,
) -> None:
    child = supervisor.start("slow", [PY, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StackError, match=r"slow part did not become healthy within 1 s"):
            supervisor.wait_until(child, lambda: False, "slow part", timeout=1)
    finally:
        supervisor.stop()


def test_leftovers_of_a_killed_run_are_stopped_and_a_live_run_is_refused(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    argv = [PY, "-c", "import time; time.sleep(60)"]
    leftover = subprocess.Popen(argv, start_new_session=True)
    owner = subprocess.Popen([*argv, "# a running stokline up"], start_new_session=True)
    try:
        time.sleep(0.2)
        supervisor.state_dir.mkdir(parents=True)
        record = {
            "supervisor": owner.pid,
            "supervisor_argv": [*argv, "# a running stokline up"],
            "children": [{"name": "sandbox", "pid": leftover.pid, "argv": argv}],
        }
        supervisor.pid_file.write_text(json.dumps(record))
        with pytest.raises(StackError, match=f"already running \\(pid {owner.pid}\\)"):
            supervisor.clean_previous()
        assert leftover.poll() is None  # a live run's children are not ours to stop

        owner.kill()
        owner.wait()
        notes = supervisor.clean_previous()
        assert notes == [f"stopped sandbox (pid {leftover.pid}) left by an earlier run"]
        assert leftover.wait(10) == -signal.SIGTERM
        assert not supervisor.pid_file.exists()
    finally:
        for proc in (leftover, owner):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_pid_reused_by_another_program_is_left_alone(supervisor: Supervisor) -> None:
    stranger = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        supervisor.state_dir.mkdir(parents=True)
        record = {"children": [{"name": "worker", "pid": stranger.pid, "argv": ["prefect"]}]}
        supervisor.pid_file.write_text(json.dumps(record))
        assert supervisor.clean_previous() == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_taken(port)
        mapping = point_mapping_at(
            DEMO_MAPPING, tmp_path / "demo.yaml", f"http://127.0.0.1:{port}", "http://127.0.0.1:1"
        )
        stack = DemoStack(
            StackConfig(root=tmp_path, mapping=mapping, state_dir=tmp_path / ".stokline"),
            say=lambda _line: None,
        )
        with pytest.raises(StackError) as caught:
            stack.check_ports()
    assert f"{port} (SHOPLINE sandbox)" in str(caught.value)
    assert not port_taken(port)


def test_the_sandboxes_must_be_on_loopback(tmp_path: Path) -> None:
    mapping = point_mapping_at(
        DEMO_MAPPING, tmp_path / "demo.yaml", "https://demo.myshopline.com", "http://127.0.0.1:1"
    )
    with pytest.raises(StackError, match=r"connections\.shopline base_url is https://demo"):
        DemoStack(StackConfig(root=tmp_path, mapping=mapping, state_dir=tmp_path / "s"))


def test_up_help_says_what_starts_where_and_how_it_stops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stokline.cli import main

    with pytest.raises(SystemExit) as done:
        main(["up", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "http://127.0.0.1:4200",
        "storefront simulator",
        "orders/paid",
        "stokline deploy",
        "every mappings/*.yaml",
        "skipped with one line saying why",
        "STATE_DIR/logs/",
        "Ctrl-C stops them all",
        "starts cleanly",
    ):
        assert expected in text


def test_up_serves_every_mapping_on_its_sandboxes_and_says_why_it_skips_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, stok = "http://127.0.0.1:1", "http://127.0.0.1:2"
    shutil.copy(ROOT / ".env.demo", tmp_path)  # the demo's secrets, as in the project root
    demo = point_mapping_at(DEMO_MAPPING, tmp_path / "demo.yaml", shop, stok)
    text = demo.read_text()
    acme = tmp_path / "acme.yaml"
    acme.write_text(text.replace("name: demo-outdoor", "name: acme-outdoor"))
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(
        text.replace("name: demo-outdoor", "name: elsewhere").replace(stok, "http://127.0.0.1:3")
    )
    unset = tmp_path / "unset.yaml"
    unset.write_text(
        text.replace("name: demo-outdoor", "name: unset").replace(
            "{env: SHOPLINE_APP_SECRET}", "{env: UNSET_APP_SECRET}"
        )
    )
    twin = tmp_path / "twin.yaml"
    twin.write_text(text)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("every: 2m", "every: soon"))
    monkeypatch.delenv("UNSET_APP_SECRET", raising=False)
    config = StackConfig(
        root=tmp_path,
        mapping=demo,
        state_dir=tmp_path / "s",
        clients=(demo, acme, elsewhere, unset, twin, broken),
    )
    stack = DemoStack(config, say=lambda _line: None)
    assert stack.client_names == ["demo-outdoor", "acme-outdoor"]
    skipped = "\n".join(stack.skipped)
    assert f"not serving {elsewhere}: its connections are not this stack's sandboxes" in skipped
    assert f"not serving {unset}: environment variable UNSET_APP_SECRET not set" in skipped
    assert f"not serving {twin}: client demo-outdoor is already served" in skipped
    assert f"not serving {broken}: it is not valid (" in skipped
    assert len(stack.skipped) == 4
    assert "client(s) demo-outdoor, acme-outdoor" in stack.banner(1)
    assert f"not serving {unset}" in stack.banner(1)


def test_alerts_to_a_loopback_webhook_bring_the_alert_sink(tmp_path: Path) -> None:
    mapping = point_mapping_at(
        DEMO_MAPPING, tmp_path / "demo.yaml", "http://127.0.0.1:1", "http://127.0.0.1:2"
    )
    config = StackConfig(root=tmp_path, mapping=mapping, state_dir=tmp_path / ".stokline")
    stack = DemoStack(config, say=lambda _line: None)
    assert stack.ports[8804] == "alert sink"
    assert stack.endpoints.sink == "http://127.0.0.1:8804"
    assert f"tail -f {tmp_path / '.stokline' / 'alerts.log'}" in stack.banner(1)
    # Alerts through a Prefect block only: no sink to serve.
    text = mapping.read_text().replace(
        'webhook: {url: "http://127.0.0.1:8804/alerts"}', "prefect_block: slack-webhook/ops"
    )
    mapping.write_text(text)
    stack = DemoStack(config, say=lambda _line: None)
    assert stack.endpoints.sink is None and 8804 not in stack.ports
    assert "tail -f" not in stack.banner(1)


def test_a_busy_prefect_server_is_asked_again() -> None:
    """`stokline up` starts its first runs through Prefect's API; a 503 from a server busy
    writing is asked again instead of ending the stack."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from stokline.stack import _ask

    answers = [503, 503, 201]
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.send_response(answers[len(seen) - 1] if len(seen) <= len(answers) else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/deployments/x/create_flow_run"
        assert _ask("POST", url, json={}).status_code == 201
        assert len(seen) == 3
        seen.clear()
        answers[:] = [503] * 9
        assert _ask("POST", url, attempts=2, json={}).status_code == 503
        assert len(seen) == 2
    finally:
        server.shutdown()
