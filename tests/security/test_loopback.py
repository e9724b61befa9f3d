"""Every server stokline starts binds to loopback unless told otherwise.

Read from the command line itself: every `stokline` command that takes an address to bind
defaults to a loopback one, and `stokline up` starts each of its servers on loopback. No
long-lived service is started: `stokline up`'s children are recorded at the process seam (a
`Supervisor` whose `start` writes the command down instead of spawning it).
"""

from __future__ import annotations

import argparse
import inspect
import ipaddress
import re
import socket
from pathlib import Path

import pytest

from stokline.cli import build_parser
from stokline.sandbox.common import ServerThread
from stokline.stack import Child, DemoStack, StackConfig, StackError, Supervisor
from tests.flows.sandboxes import DEMO_MAPPING, ROOT, point_mapping_at

BIND_OPTIONS = ("--host", "--bind", "--address", "--listen")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def commands(
    parser: argparse.ArgumentParser, prefix: str = "stokline"
) -> dict[str, argparse.ArgumentParser]:
    """Every (sub-)command's parser, by its full name."""
    found = {prefix: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(commands(sub, f"{prefix} {name}"))
    return found


def bind_defaults() -> dict[str, object]:
    """``{"stokline sandbox --host": "127.0.0.1", ...}`` for every option that names an address."""
    defaults = {}
    for name, parser in commands(build_parser()).items():
        for action in parser._actions:
            for option in action.option_strings:
                if option in BIND_OPTIONS:
                    defaults[f"{name} {option}"] = action.default
    return defaults


def test_every_server_command_defaults_to_loopback() -> None:
    defaults = bind_defaults()
    # The servers known today; a new one (a sink, say) joins the check by having the option.
    assert {"stokline sandbox --host", "stokline receiver --host"} <= set(defaults)
    for option, default in defaults.items():
        assert isinstance(default, str) and is_loopback(default), (
            f"{option} defaults to {default!r}"
        )


def test_in_process_servers_default_to_loopback() -> None:
    assert is_loopback(inspect.signature(ServerThread).parameters["host"].default)


class RecordingSupervisor(Supervisor):
    """Writes down what `DemoStack` would start; spawns nothing."""

    started: list[tuple[str, list[str]]]

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        self.started.append((name, argv))
        child = Child(name, argv, self.log_dir / f"{name}.log")
        self.children.append(child)
        return child


def test_stokline_up_starts_every_server_on_loopback(tmp_path: Path) -> None:
    prefect, shopline, stokly, receiver, sink = free_ports(5)
    mapping = point_mapping_at(
        DEMO_MAPPING,
        tmp_path / "demo.yaml",
        f"http://127.0.0.1:{shopline}",
        f"http://127.0.0.1:{stokly}",
    )
    # The demo's alerts go to a local sink the stack serves too: on a free port as well.
    text = re.sub(r"http://127\.0\.0\.1:8804/", f"http://127.0.0.1:{sink}/", mapping.read_text())
    mapping.write_text(text)
    config = StackConfig(
        root=ROOT,
        mapping=mapping,
        state_dir=tmp_path / "state",
        prefect_port=prefect,
        receiver_port=receiver,
        timeout=0.3,
    )
    stack = DemoStack(config, say=lambda _line: None)
    recorder = RecordingSupervisor(stack.supervisor.state_dir, stack.supervisor.cwd, stack.env)
    recorder.started = []
    stack.supervisor = recorder
    with pytest.raises(StackError, match="did not become healthy"):  # nothing runs at all
        stack.up()

    started = dict(recorder.started)
    assert {"prefect-server", "sandbox", "receiver"} <= set(started)
    server = started["prefect-server"]
    assert server[server.index("--host") + 1] == "127.0.0.1"
    parser = build_parser()
    ours = {name: argv for name, argv in started.items() if "stokline" in argv}
    assert {"sandbox", "receiver"} <= set(ours)
    for name, argv in ours.items():
        args = parser.parse_args(argv[argv.index("stokline") + 1 :])
        host = getattr(args, "host", None)
        assert host is not None, f"{name} serves without a --host option"
        assert is_loopback(host), f"{name} would bind {host}"
    # Nothing the stack points its users or its children at leaves the machine.
    for url in (stack.endpoints.prefect, stack.endpoints.shopline, stack.endpoints.stokly):
        assert url.startswith("http://127.0.0.1:")
    assert stack.env["PREFECT_API_URL"].startswith("http://127.0.0.1:")
    assert "PREFECT_SERVER_API_HOST" not in stack.env or is_loopback(
        stack.env["PREFECT_SERVER_API_HOST"]
    )


def test_stokline_up_refuses_a_mapping_that_points_off_the_machine(tmp_path: Path) -> None:
    mapping = point_mapping_at(
        DEMO_MAPPING, tmp_path / "demo.yaml", "http://10.1.2.3:8801", "http://127.0.0.1:8802"
    )
    config = StackConfig(root=ROOT, mapping=mapping, state_dir=tmp_path / "state")
    with pytest.raises(StackError, match="loopback"):
        DemoStack(config, say=lambda _line: None)
