"""The local stack behind ``stokline up``: a supervisor of child processes, and the demo stack.

`Supervisor` is generic: each child runs in its own process group (so a Ctrl-C in the terminal
reaches only the supervisor, which then stops the children in order), logs to its own file under
``.stokline/logs/``, and is recorded in a pid file so that a run that was killed outright leaves
nothing a second run cannot clean up. Stopping snapshots every descendant first, because some
grandchildren (Prefect's flow-run processes) start sessions of their own and would survive a
signal to their parent's group.

`DemoStack` starts, for the mapping files it is given: a Prefect server, both sandboxes (the
first mapping's) with the storefront simulator, the webhook receiver subscribed to the SHOPLINE
sandbox, the work pool and each client's deployments (`stokline deploy`), and a worker — and
waits until each is healthy before it says so. Another mapping is served beside the first when
its connections are the same sandboxes and its secrets are set; otherwise it is skipped, with one
line saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from stokline.envfile import load_env_file
from stokline.ops.heartbeats import RUN_TAG, worker_env
from stokline.webhooks.subscriptions import ORDER_TOPICS

if TYPE_CHECKING:
    from stokline.config import Mapping

LOOPBACK = "127.0.0.1"
PID_FILE = "up.json"
STOPPED_MESSAGE = "Stopped with the local stack (Ctrl-C of stokline up)"
START_NOW = ("orders-inbox", "stock-events", "stock", "catalogue")
"""Flows whose deployment (``<flow>-<client>``) `DemoStack.start_now` runs at once: the watcher
that imports webhook deliveries, the event path that follows Stokly's change feed, the full
stock pass that settles every level, and the catalogue pass that links the variants (the event
path updates only linked ones)."""


def _ask(method: str, url: str, attempts: int = 5, **kwargs: object) -> httpx.Response:
    """One request, asked again after a 5xx answer or a transport error (0.5, 1, 2, 4 s apart)."""
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = httpx.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            if last:
                raise
        else:
            if response.status_code < 500 or last:
                return response
        time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


class StackError(Exception):
    """Something the user must act on, said in one or a few lines (no traceback)."""


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0; it is gone for every purpose that matters here.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _children_map() -> dict[int, list[int]]:
    """Parent pid → child pids, from /proc (empty where /proc does not exist)."""
    tree: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return tree
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        fields = stat.rpartition(")")[2].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pids: Iterable[int]) -> set[int]:
    """Every living descendant of ``pids`` (not the pids themselves)."""
    tree = _children_map()
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def port_taken(port: int, host: str = LOOPBACK) -> bool:
    """True when something already listens on ``host:port``.

    SO_REUSEADDR makes sockets of a just-stopped run (TIME_WAIT) count as free, as they are for
    the servers, which set it too.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class Child:
    """One supervised process and where its output goes."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def exited(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def tail(self, lines: int = 5) -> str:
        """The last lines of the child's log, to show next to a failure."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


@dataclass
class Supervisor:
    """Starts children in their own process groups and stops all of them, whatever happens.

    ``state_dir`` holds ``logs/`` and the pid file. Children are stopped in reverse order of
    start: SIGTERM to each group, a second SIGTERM after a while (a busy Prefect worker may need
    it), SIGKILL at the end — and the same for every descendant seen before the first signal.
    """

    state_dir: Path
    cwd: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    stop_timeout: float = 10.0

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / PID_FILE

    def clean_previous(self) -> list[str]:
        """Refuse to run twice; stop what a killed earlier run left behind. Returns what it did."""
        notes: list[str] = []
        try:
            previous = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return notes
        owner = int(previous.get("supervisor", 0))
        ours = owner and owner != os.getpid() and _alive(owner)
        if ours and _cmdline(owner) == previous.get("supervisor_argv"):
            raise StackError(
                f"stokline up is already running (pid {owner}); stop it with Ctrl-C in its "
                f"terminal or `kill {owner}`"
            )
        for child in previous.get("children", []):
            pid = int(child.get("pid", 0))
            # Only a process that still runs the very command we started is ours to stop.
            if pid and _alive(pid) and _cmdline(pid) == child.get("argv"):
                _signal_group(pid, signal.SIGTERM)
                notes.append(f"stopped {child.get('name')} (pid {pid}) left by an earlier run")
        deadline = time.monotonic() + self.stop_timeout
        for child in previous.get("children", []):
            pid = int(child.get("pid", 0))
            while pid and _alive(pid) and _cmdline(pid) == child.get("argv"):
                if time.monotonic() > deadline:
                    _signal_group(pid, signal.SIGKILL)
                    break
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return notes

    def _record(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "supervisor": os.getpid(),
            "supervisor_argv": _cmdline(os.getpid()),
            "children": [
                {"name": c.name, "pid": c.pid, "argv": _cmdline(c.pid) or c.argv}
                for c in self.children
                if c.proc is not None
            ],
        }
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.pid_file)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        """Start ``argv`` in a new session with its output in ``logs/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(name, argv, self.log_dir / f"{name}.log")
        with child.log.open("ab") as log:
            log.write(f"--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: {' '.join(argv)}\n".encode())
            log.flush()
            child.proc = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children.append(child)
        self._record()
        return child

    def run(self, name: str, argv: list[str], timeout: float) -> None:
        """Run a short command to completion (as a child, so Ctrl-C also stops it)."""
        child = self.start(name, argv)
        assert child.proc is not None
        try:
            status = child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(
                f"{name} did not finish within {timeout:.0f} s; its log: {child.log}\n{child.tail()}"
            ) from None
        if status != 0:
            raise StackError(
                f"{name} failed (exit status {status}); its log: {child.log}\n{child.tail()}"
            )
        self.children.remove(child)
        self._record()

    def wait_until(self, child: Child, healthy: Callable[[], bool], what: str, timeout: float):
        """Poll ``healthy`` until it holds; fail naming the child and its log when it never does."""
        deadline = time.monotonic() + timeout
        while True:
            status = child.exited()
            if status is not None:
                raise StackError(
                    f"{what} exited (status {status}) before it was healthy; its log: "
                    f"{child.log}\n{child.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
                if healthy():
                    return
            if time.monotonic() > deadline:
                raise StackError(
                    f"{what} did not become healthy within {timeout:.0f} s; its log: "
                    f"{child.log}\n{child.tail()}"
                )
            time.sleep(0.25)

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.exited() is not None), None)

    def kill(self, name: str) -> Child:
        """SIGKILL the child ``name`` with its process group and every descendant (its flow runs,
        for a worker), as a crash of its machine would, and forget it once none of them is left;
        returns it, so that
        ``start(child.name, child.argv)`` starts the same command again. For rehearsals
        (``make chaos``); a child not running raises KeyError."""
        child = next((c for c in self.children if c.name == name and c.proc), None)
        if child is None:
            raise KeyError(f"no child {name!r} is running")
        family = descendants([child.pid])
        _signal_group(child.pid, signal.SIGKILL)
        for pid in family:
            _signal_pid(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(10)  # type: ignore[union-attr]
        # SIGKILL is delivered, not done: wait (briefly) until no descendant is left either.
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.children.remove(child)
        self._record()
        return child

    def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop every child (or those ``names``) and every descendant of them; returns when none
        is left. The pid file goes once no child is left."""
        chosen = None if names is None else set(names)
        running = [
            c
            for c in reversed(self.children)
            if c.proc is not None and (chosen is None or c.name in chosen)
        ]
        pids = [c.pid for c in running]
        family = descendants(pids)
        for child in running:
            if child.exited() is None:
                _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        nudged = False
        while time.monotonic() < deadline:
            for child in running:
                child.exited()  # reap
            left = [p for p in (*pids, *family) if _alive(p)]
            if not left:
                break
            if not nudged and time.monotonic() > deadline - self.stop_timeout / 2:
                for pid in left:
                    _signal_pid(pid, signal.SIGTERM)
                nudged = True
            time.sleep(0.1)
        for child in running:
            if child.exited() is None:
                _signal_group(child.pid, signal.SIGKILL)
        for pid in family | descendants(pids):
            _signal_pid(pid, signal.SIGKILL)
        for child in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(5)  # type: ignore[union-attr]
            self.children.remove(child)
        if self.children:
            self._record()
        else:
            self.pid_file.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# The demo stack
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfig:
    """What `stokline up` starts; the sandbox ports come from the mapping's base URLs."""

    root: Path
    mapping: Path
    state_dir: Path
    prefect_port: int = 4200
    receiver_port: int = 8803
    storefront_rate: float = 6.0
    warehouse_rate: float = 0.0
    pool: str = "stokline"
    timeout: float = 120.0
    clients: tuple[Path, ...] = ()
    """Other clients' mapping files, served beside ``mapping`` when their connections are this
    stack's sandboxes and their secrets are set (each one not served is said in one line)."""


@dataclass
class Endpoints:
    """The addresses the stack serves, for health checks and for the user."""

    prefect: str
    shopline: str
    stokly: str
    receiver: str
    api_version: str
    client: str
    sink: str | None = None  # the local alert sink, when the mapping's alerts post to loopback

    @property
    def prefect_api(self) -> str:
        return f"{self.prefect}/api"


def _loopback_port(url: str | None, what: str, mapping: Path) -> int:
    parts = urlsplit(url or "")
    if parts.hostname not in (LOOPBACK, "localhost") or not parts.port:
        raise StackError(
            f"{mapping}: {what} base_url is {url or 'not set'}; stokline up serves the sandboxes "
            f"on loopback, so the mapping must point at http://{LOOPBACK}:PORT"
        )
    return parts.port


def python_tool(module: str) -> list[str]:
    """Run a tool of this environment as ``python -m``, so PATH never picks another install."""
    return [sys.executable, "-m", module]


class DemoStack:
    """The whole local demo, started in dependency order and stopped as one."""

    def __init__(self, config: StackConfig, say: Callable[[str], None] = print) -> None:
        from stokline.config import load_mapping

        self.config = config
        self.say = say
        self.mapping = load_mapping(config.mapping)
        conns = self.mapping.connections
        shop_port = _loopback_port(conns.shopline.base_url, "connections.shopline", config.mapping)
        stok_port = _loopback_port(conns.stokly.base_url, "connections.stokly", config.mapping)
        self.endpoints = Endpoints(
            prefect=f"http://{LOOPBACK}:{config.prefect_port}",
            shopline=f"http://{LOOPBACK}:{shop_port}",
            stokly=f"http://{LOOPBACK}:{stok_port}",
            receiver=f"http://{LOOPBACK}:{config.receiver_port}",
            api_version=conns.shopline.api_version,
            client=self.mapping.client.name,
        )
        env = dict(os.environ)
        load_env_file(config.root / ".env.demo", environ=env)
        env.update(
            PREFECT_HOME=str((config.state_dir / "prefect").resolve()),
            PREFECT_API_URL=self.endpoints.prefect_api,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_API_URL=self.endpoints.prefect_api,
            PYTHONUNBUFFERED="1",
            # The receiver fills the inbox the flow runs drain: one state store for all of them.
            STOKLINE_DATABASE_URL=env.get("STOKLINE_DATABASE_URL")
            or f"sqlite:///{(config.state_dir / 'state.db').resolve()}",
            # prefect.yaml's pull step works in {{ $PWD }}: the project root, wherever we were run.
            PWD=str(config.root.resolve()),
            # The worker's flow runs send heartbeats, by which a killed one is marked Crashed
            # (stokline.ops.heartbeats); in every child's environment, so that a worker started
            # again with the same command (`make chaos`) has it too.
            **worker_env(),
        )
        self.env = env
        self.served: list[tuple[Path, Mapping]] = [(config.mapping, self.mapping)]
        self.skipped: list[str] = []
        for path in config.clients:
            if path.resolve() == config.mapping.resolve():
                continue
            found = self._servable(path, shop_port, stok_port)
            if isinstance(found, str):
                self.skipped.append(f"not serving {path}: {found}")
            else:
                self.served.append((path, found))
        self.supervisor = Supervisor(config.state_dir, config.root, env)
        self.ports = {
            config.prefect_port: "Prefect server",
            shop_port: "SHOPLINE sandbox",
            stok_port: "Stokly sandbox",
            config.receiver_port: "webhook receiver",
        }
        # Alerts posted to a loopback webhook go to the alert sink this stack serves.
        self.alerts = self.mapping.operating_model.alerts
        webhook = self.alerts.notify.webhook if self.alerts else None
        sink = urlsplit(webhook.url) if webhook else None
        self.sink_port = sink.port if sink and sink.hostname in (LOOPBACK, "localhost") else None
        if self.sink_port:
            self.endpoints.sink = f"http://{LOOPBACK}:{self.sink_port}"
            self.ports[self.sink_port] = "alert sink"

    def _servable(self, path: Path, shop_port: int, stok_port: int) -> Mapping | str:
        """The mapping at ``path`` if this stack can serve it, else why not, in a few words."""
        from stokline.config import MappingInvalid, load_mapping

        try:
            mapping = load_mapping(path)
        except MappingInvalid as exc:
            first = exc.problems[0].format() if exc.problems else "it does not load"
            return f"it is not valid ({first}); `stokline validate {path}` lists every problem"
        if mapping.client.name in {m.client.name for _, m in self.served}:
            return f"client {mapping.client.name} is already served by another file"
        conns = mapping.connections
        ports = []
        for url in (conns.shopline.base_url, conns.stokly.base_url):
            parts = urlsplit(url or "")
            ports.append(parts.port if parts.hostname in (LOOPBACK, "localhost") else None)
        if ports != [shop_port, stok_port]:
            return (
                "its connections are not this stack's sandboxes "
                f"(http://{LOOPBACK}:{shop_port} and http://{LOOPBACK}:{stok_port})"
            )
        secrets = (
            conns.shopline.access_token,
            conns.shopline.webhook_secret,
            conns.stokly.client_id,
            conns.stokly.client_secret,
        )
        # Environment variables as the stack's processes will see them (.env.demo included);
        # a Prefect Secret block can only be read once the server runs: its runs will say.
        unset = [
            ref.describe()
            for ref in secrets
            if ref is not None and ref.env is not None and not self.env.get(ref.env)
        ]
        if unset:
            return f"{', '.join(unset)} not set"
        return mapping

    @property
    def client_names(self) -> list[str]:
        return [mapping.client.name for _, mapping in self.served]

    # -- health checks ---------------------------------------------------------------------

    def _ok(self, url: str) -> bool:
        return httpx.get(url, timeout=2).status_code == 200

    def _worker_online(self, since: datetime) -> bool:
        response = httpx.post(
            f"{self.endpoints.prefect_api}/work_pools/{self.config.pool}/workers/filter",
            json={},
            timeout=2,
        )
        if response.status_code != 200:
            return False
        for worker in response.json():
            beat = worker.get("last_heartbeat_time")
            if beat and datetime.fromisoformat(beat.replace("Z", "+00:00")) >= since:
                return True
        return False

    # -- steps ---------------------------------------------------------------------------------

    def check_ports(self) -> None:
        if len(self.ports) < 4 + bool(self.sink_port):
            raise StackError(
                "the Prefect server, both sandboxes and the receiver need four different ports"
            )
        taken = [f"{port} ({what})" for port, what in self.ports.items() if port_taken(port)]
        if taken:
            raise StackError(
                f"port(s) already taken on {LOOPBACK}: {', '.join(taken)}; another program (or "
                "another `stokline up`/`stokline sandbox`) is using them: stop it, or choose "
                "other ports (--prefect-port, --receiver-port, the mapping's base URLs)"
            )

    def subscribe_webhooks(self) -> int:
        """Subscribe the receiver to the order topics for every client served; returns how many
        subscriptions were new (idempotent)."""
        return sum(self._subscribe(mapping) for _, mapping in self.served)

    def _subscribe(self, mapping: Mapping) -> int:
        from stokline.webhooks.subscriptions import shopline_for, subscribe

        client = mapping.client.name
        address = f"{self.endpoints.receiver}/webhooks/{client}"

        async def made() -> int:
            async with shopline_for(mapping) as shopline:
                return (await subscribe(shopline, client, address)).count("create")

        try:
            return asyncio.run(made())
        except Exception as exc:  # the connectors' errors name no secret
            raise StackError(
                f"cannot subscribe {address} to the SHOPLINE sandbox's order webhooks: {exc}"
            ) from None

    def start_now(self) -> tuple[list[str], list[str]]:
        """Start one run now of each `START_NOW` deployment of each client served that exists;
        returns the names started and, for those that could not be, why.

        A schedule's first run comes one interval after `prefect deploy`: without this the stock
        event path would not follow Stokly's change feed for the first 10 minutes of the demo.
        It is a head start, not a condition of the stack: a Prefect server busy migrating or
        writing (a 503, a timeout) is asked again a few times, then the schedule takes over.
        """
        started, missed = [], []
        api = self.endpoints.prefect_api
        pairs = [(flow, f"{flow}-{client}") for client in self.client_names for flow in START_NOW]
        for flow, name in pairs:
            try:
                found = _ask("GET", f"{api}/deployments/name/{flow}/{name}")
                if found.status_code == 404:
                    continue
                found.raise_for_status()
                deployment = found.json()["id"]
                _ask(
                    "POST", f"{api}/deployments/{deployment}/create_flow_run", json={}
                ).raise_for_status()
            except httpx.HTTPError as exc:
                missed.append(f"{name} ({type(exc).__name__}; its schedule starts it)")
                continue
            started.append(name)
        return started, missed

    def up(self) -> None:
        """Start everything and return once all of it is healthy; raise StackError otherwise."""
        cfg, ep, sup = self.config, self.endpoints, self.supervisor
        for note in sup.clean_previous():
            self.say(note)
        for line in self.skipped:
            self.say(line)
        self.check_ports()
        timeout = cfg.timeout
        files = [str(path) for path, _ in self.served]
        # The receiver serves the folders of the files: a client whose mapping is added there
        # later is served from its first delivery, with no restart.
        folders = sorted({str(path.parent) for path, _ in self.served})

        server = sup.start(
            "prefect-server",
            [
                *python_tool("prefect"),
                "server",
                "start",
                "--host",
                LOOPBACK,
                "--port",
                str(cfg.prefect_port),
            ],
        )
        sandbox = sup.start(
            "sandbox",
            [
                *python_tool("stokline"),
                "sandbox",
                "--seed",
                "demo",
                "--data-dir",
                str(cfg.state_dir / "sandbox"),
                "--shopline-port",
                str(urlsplit(ep.shopline).port),
                "--stokly-port",
                str(urlsplit(ep.stokly).port),
                "--storefront-rate",
                f"{cfg.storefront_rate:g}",
                "--warehouse-rate",
                f"{cfg.warehouse_rate:g}",
            ],
        )
        receiver = sup.start(
            "receiver",
            [
                *python_tool("stokline"),
                "receiver",
                *[arg for folder in folders for arg in ("--mapping", folder)],
                "--port",
                str(cfg.receiver_port),
            ],
        )
        if self.sink_port:
            sink = sup.start(
                "sink",
                [
                    *python_tool("stokline"),
                    "sink",
                    "--port",
                    str(self.sink_port),
                    "--log",
                    str(cfg.state_dir / "alerts.log"),
                ],
            )
            sup.wait_until(sink, lambda: self._ok(f"{ep.sink}/health"), "alert sink", timeout)
        self.say("starting: Prefect server, sandboxes, webhook receiver …")
        sup.wait_until(
            sandbox, lambda: self._ok(f"{ep.shopline}/_sandbox/health"), "SHOPLINE sandbox", timeout
        )
        sup.wait_until(
            sandbox, lambda: self._ok(f"{ep.stokly}/_sandbox/state"), "Stokly sandbox", timeout
        )
        sup.wait_until(receiver, lambda: self._ok(f"{ep.receiver}/health"), "receiver", timeout)
        added = self.subscribe_webhooks()
        self.say(
            f"sandboxes and receiver up; webhooks: {added} new subscription(s) of "
            f"{len(ORDER_TOPICS)} order topics"
        )
        sup.wait_until(
            server, lambda: self._ok(f"{ep.prefect_api}/health"), "Prefect server", timeout
        )
        self.say(f"Prefect server up; deploying {', '.join(self.client_names)} …")
        # The work pool, each client's deployments from its mapping, and its alerts (with the
        # workspace automation that marks Crashed a run whose heartbeats stopped).
        sup.run(
            "deploy",
            [
                *python_tool("stokline"),
                "deploy",
                *files,
                "--no-start",
                "--prefect-url",
                ep.prefect_api,
            ],
            timeout,
        )
        restarted = self.restart_overdue_windows()
        if restarted:
            self.say(f"overdue alerts count from now: {restarted} window(s) started afresh")
        since = datetime.now(UTC)
        # One process runs every client's flow runs, each in a thread (stokline.ops.worker).
        worker = sup.start("worker", [*python_tool("stokline"), "worker", "--pool", cfg.pool])
        sup.wait_until(
            worker, lambda: self._worker_online(since), f"worker of pool {cfg.pool}", timeout
        )
        started, missed = self.start_now()
        if started:
            self.say(f"started now, not one interval from now: {', '.join(started)}")
        if missed:
            self.say(f"could not start at once: {', '.join(missed)}")
        self.say(
            "alerts applied as Prefect automations"
            if self.alerts
            else "no alerts in the mapping; the crashed-run automation applied"
        )

    def restart_overdue_windows(self) -> int:
        """Start the clients' `sync_overdue` windows now (stokline.ops.automations): the time the
        stack was stopped is not a sync that failed to run. Returns how many; a server that does
        not answer is said, not fatal (the alerts then count from their last window)."""
        import asyncio

        from stokline.ops.automations import restart_overdue_windows
        from stokline.ops.prefect_api import prefect_client

        async def restart() -> int:
            count = 0
            async with prefect_client(self.endpoints.prefect_api) as client:
                for _, mapping in self.served:
                    count += len(await restart_overdue_windows(mapping, client))
            return count

        try:
            return asyncio.run(restart())
        except Exception as exc:  # the stack runs on without it
            self.say(f"could not start the overdue alerts' windows afresh: {type(exc).__name__}")
            return 0

    def down(self) -> None:
        """Stop the stack, leaving no flow run Running in Prefect: the runs still going are
        marked Cancelled before the worker and its flow-run processes are stopped (so that
        neither a process stopped mid-run nor the heartbeat automation calls them Crashed, and
        no `sync_failed` alert follows the next start), and once more after, for a run the
        worker started meanwhile; then the rest stops."""
        sup = self.supervisor
        if any(c.name == "worker" for c in sup.children):
            first = self.settle_runs()
            sup.stop(["worker"])
            later = self.settle_runs()
            if first is not None and later is not None and first + later:
                self.say(f"{first + later} flow run(s) still going marked Cancelled")
        sup.stop()

    def settle_runs(self) -> int | None:
        """Mark Cancelled every Running, Pending or Cancelling run of a stokline deployment;
        returns how many, or None when the Prefect server did not answer (nothing to do then:
        the next start's server finds them and the heartbeat automation settles them)."""
        api = self.endpoints.prefect_api
        query = {
            "flow_runs": {
                "tags": {"all_": [RUN_TAG]},
                "state": {"type": {"any_": ["RUNNING", "PENDING", "CANCELLING"]}},
            },
            "limit": 200,
        }
        state = {"type": "CANCELLED", "name": "Cancelled", "message": STOPPED_MESSAGE}
        try:
            found = httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10)
            found.raise_for_status()
            runs = found.json()
            for run in runs:
                httpx.post(
                    f"{api}/flow_runs/{run['id']}/set_state",
                    json={"state": state, "force": True},
                    timeout=10,
                ).raise_for_status()
        except (httpx.HTTPError, ValueError):
            return None
        return len(runs)

    def banner(self, seconds: float) -> str:
        ep, logs = self.endpoints, self.supervisor.log_dir
        return "\n".join(
            [
                f"stokline is up ({seconds:.0f} s) for client(s) {', '.join(self.client_names)}:",
                f"  Prefect UI         {ep.prefect}",
                f"  SHOPLINE sandbox   {ep.shopline}/docs",
                f"  Stokly sandbox     {ep.stokly}/docs",
                f"  webhook receiver   {ep.receiver}/docs",
                *(
                    [f"  alerts             tail -f {self.config.state_dir / 'alerts.log'}"]
                    if ep.sink
                    else []
                ),
                f"  logs               {logs}/",
                *(f"  {line}" for line in self.skipped),
                "",
                "What to look at:",
                f"  - Prefect UI → Deployments: orders-inbox-{ep.client} imports webhook "
                f"deliveries within seconds; orders-{ep.client} sweeps on its schedule;",
                "    Flow Runs: orders-<client>-<trigger>; a run's Artifacts tab: summary and "
                "exceptions.",
                f"  - stock-events-{ep.client} pushes Stokly's stock movements to SHOPLINE within "
                "seconds;",
                f"    try `stokline simulate warehouse --url {ep.stokly}` (goods in, counts);",
                f"    stock-{ep.client} settles every level every 5 minutes; "
                "`stokline reconcile stock` compares.",
                f"  - the storefront places {self.config.storefront_rate:g} order(s) a minute; "
                f"{ep.stokly}/_sandbox/state counts sale orders in Stokly.",
                "  - `stokline exceptions list` shows what could not be imported and why.",
                f"  - Prefect UI → Artifacts: status-{ep.client} is the dashboard, refreshed every "
                "2 minutes;",
                "    `stokline status` prints the same; Automations lists the alerts.",
                "",
                "Ctrl-C stops everything.",
            ]
        )
