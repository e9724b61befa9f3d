"""A real `stokline receiver` process on a free loopback port, for the tests that need one.

It serves the demo mappings' clients with the secrets given, stores into its own SQLite file, and
logs to a file; `ReceiverProcess` reads back its inbox and what the process holds (resident
memory, threads, open file descriptors) from /proc.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from stokline.store import Store

ROOT = Path(__file__).resolve().parents[2]
# The clients a receiver can serve here: each one's mapping file, and where it reads its secret.
CLIENTS = {
    "demo-outdoor": (ROOT / "mappings/demo.yaml", "SHOPLINE_APP_SECRET"),
    "peak-cycles": (ROOT / "mappings/peak-cycles.yaml", "PEAK_CYCLES_SHOPLINE_APP_SECRET"),
}


@dataclass
class ReceiverProcess:
    url: str
    port: int
    pid: int
    database: str
    log: Path

    def store(self) -> Store:
        return Store(self.database)

    def resident(self) -> int:
        """Its resident memory, in bytes."""
        pages = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")

    def threads(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(next(ln for ln in status.splitlines() if ln.startswith("Threads:")).split()[1])

    def open_files(self) -> int:
        """Its open file descriptors: sockets (the listener and each connection) and files."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.05)
    return False


@contextmanager
def receiver_process(
    work: Path, secrets: dict[str, str], *options: str
) -> Iterator[ReceiverProcess]:
    """`stokline receiver` for the clients of ``secrets`` (name → webhook secret), with
    ``options``; stopped on exit."""
    database = f"sqlite:///{work / 'state.db'}"
    env = {**os.environ, "STOKLINE_DATABASE_URL": database}
    env.pop("PREFECT_API_URL", None)  # nothing to signal
    argv = [sys.executable, "-m", "stokline", "receiver"]
    for client, secret in secrets.items():
        mapping, variable = CLIENTS[client]
        env[variable] = secret
        argv += ["--mapping", str(mapping)]
    log = work / "receiver.log"
    for _attempt in range(3):  # a free port can be taken between asking and binding
        port = _free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*argv, "--port", str(port), *options], env=env, cwd=work, stdout=out, stderr=out
            )
        url = f"http://127.0.0.1:{port}"
        if _healthy(process, url):
            break
        process.kill()
        process.wait(10)
    else:
        raise AssertionError(f"the receiver did not start:\n{log.read_text()}")
    try:
        yield ReceiverProcess(url, port, process.pid, database, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
