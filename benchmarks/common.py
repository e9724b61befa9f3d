"""What every benchmark shares: sizes, the machine, figures with targets, results, child processes.

A benchmark is a set of `Figure`s — a measured value, the same quantity for its baseline where
there is one, their ratio, and the target it is judged against — collected in a `Result` that
prints a table and writes ``benchmarks/results/<name>.json`` with the machine it ran on. Absolute
figures depend on the machine; the ratios to a baseline measured in the same run mostly do not.

Heavy work runs in child processes (sandboxes, the receiver, a sync pass whose memory is
measured): `Child` starts one in its own process group and stops exactly that group.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from stokline.envfile import load_env_file

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = ("full", "quick", "smoke")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: its size and where its JSON goes."""
    p = argparse.ArgumentParser(
        prog=f"python -m benchmarks.bench_{name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="size",
        action="store_const",
        const="quick",
        help="a reduced size that finishes in a minute or two (figures are indicative)",
    )
    size.add_argument(
        "--smoke",
        dest="size",
        action="store_const",
        const="smoke",
        help="a tiny size that only proves the benchmark still runs (figures meaningless)",
    )
    p.set_defaults(size="full")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS,
        metavar="DIR",
        help="where the JSON result goes (default: benchmarks/results)",
    )
    return p


def sized(size: str, full: Any, quick: Any, smoke: Any) -> Any:
    """The value of a parameter for the run's size."""
    return {"full": full, "quick": quick, "smoke": smoke}[size]


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0:
            return out.stdout.strip() or None
    return None


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, memory, Python, OS, and the load when we started."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "cpu": _cpu_model(),
        "memory_gb": _memory_gb(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "load_average_at_start": load,
        "commit": _commit(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    load = info.get("load_average_at_start")
    loaded = f", load {load[0]:.2f} at start" if load else ""
    return (
        f"{info['cores_usable']} of {info['cores']} cores, {info['cpu']}, "
        f"{info['memory_gb']} GB, {info['python']}, {info['os']}{loaded}"
    )


# ---------------------------------------------------------------------------------------------
# Figures and results
# ---------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity, its baseline and the target it is judged against.

    ``goal`` says how ``value`` (or ``ratio`` when ``judge_ratio``) meets ``target``: "max"
    (at most), "min" (at least), "below" (strictly less), "equal". A figure without a target is
    reported for information.
    """

    key: str
    label: str
    value: float | int | None
    unit: str = ""
    baseline: float | int | None = None
    target: float | None = None
    goal: str | None = None
    judge_ratio: bool = False
    note: str = ""
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline

    @property
    def judged(self) -> float | int | None:
        return self.ratio if self.judge_ratio else self.value

    @property
    def met(self) -> bool | None:
        value, target = self.judged, self.target
        if target is None or self.goal is None:
            return None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return {
            "max": value <= target,
            "min": value >= target,
            "below": value < target,
            "equal": value == target,
        }[self.goal]

    def target_text(self) -> str:
        if self.target is None or self.goal is None:
            return ""
        sign = {"max": "≤", "min": "≥", "below": "<", "equal": "="}[self.goal]
        unit = "×" if self.judge_ratio or self.unit == "×" else f" {self.unit}" if self.unit else ""
        return f"{sign} {fmt(self.target)}{unit}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        data["target_text"] = self.target_text()
        return data


def fmt(value: Any) -> str:
    """A number as people read it: thousands separated, a few significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


@dataclass
class Result:
    """A benchmark's figures, parameters and notes; printed as a table and written as JSON."""

    name: str
    title: str
    size: str
    parameters: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine)
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def rows(self) -> list[list[str]]:
        rows = []
        for f in self.figures:
            unit = "" if not f.unit else f.unit if f.unit == "×" else f" {f.unit}"
            rows.append(
                [
                    f.label,
                    fmt(f.value) + unit if f.value is not None else "—",
                    fmt(f.baseline) + unit if f.baseline is not None else "",
                    f"{fmt(f.ratio)}×" if f.ratio is not None else "",
                    f.target_text(),
                    verdict(f.met),
                ]
            )
        return rows

    def render(self) -> str:
        head = [
            f"{self.title} — {self.size} size",
            f"machine: {describe_machine(self.machine)}",
        ]
        if self.parameters:
            head.append(
                "parameters: " + ", ".join(f"{k}={fmt(v)}" for k, v in self.parameters.items())
            )
        body = table(["figure", "value", "baseline", "ratio", "target", "result"], self.rows())
        notes = "".join(f"\n  - {n}" for n in self.notes)
        return "\n".join(head) + "\n\n" + body + ("\n\nnotes:" + notes if notes else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "title": self.title,
            "size": self.size,
            "started_at": self.started_at,
            "seconds": round(time.monotonic() - self.started, 1),
            "machine": self.machine,
            "parameters": self.parameters,
            "figures": [f.as_dict() for f in self.figures],
            "notes": self.notes,
            "details": self.details,
        }

    def finish(self, results_dir: Path) -> Path:
        """Print the table and write the JSON; returns the file written."""
        print("\n" + self.render(), flush=True)
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{self.name}.json"
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        print(f"\nwritten: {_shown(path)}", flush=True)
        return path


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROOT))
    return str(path)


def say(message: str) -> None:
    """Progress, on stderr so that a table on stdout stays clean."""
    print(f"· {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ---------------------------------------------------------------------------------------------
# Memory of this process
# ---------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (getrusage ru_maxrss), in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """Resident set size now (Linux /proc), in MB."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


# ---------------------------------------------------------------------------------------------
# Environment, ports and child processes
# ---------------------------------------------------------------------------------------------


def demo_env(**extra: str) -> dict[str, str]:
    """This process's environment plus the demo credentials (.env.demo) and ``extra``."""
    env = dict(os.environ)
    load_env_file(ROOT / ".env.demo", environ=env)
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1", **extra)
    return env


def stokly_token(base_url: str, account: str) -> str:
    """A Stokly access token for ``account`` with the demo credentials, as the merchant's own
    tools would get one (``POST /v1/grant``, the client id signed with the secret)."""
    import hashlib
    import hmac

    import httpx

    env = demo_env()
    client_id = env["STOKLY_CLIENT_ID"]
    signature = hmac.new(
        env["STOKLY_CLIENT_SECRET"].encode(), client_id.encode(), hashlib.sha256
    ).hexdigest()
    response = httpx.post(
        f"{base_url}/v1/grant",
        json={"accountkey": account, "clientId": client_id, "signature": signature},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["data"]["authenticationResult"]["accessToken"]


def use_demo_credentials() -> None:
    """Put the demo credentials into this process's environment (mappings resolve them)."""
    load_env_file(ROOT / ".env.demo")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, timeout: float, child: Child | None = None):
    """Poll ``check`` until it holds; RuntimeError naming ``what`` (and the child's log) if not."""
    deadline = time.monotonic() + timeout
    while True:
        if child is not None and child.proc.poll() is not None:
            raise RuntimeError(
                f"{what}: the process exited ({child.proc.returncode})\n{child.tail()}"
            )
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
            if check():
                return
        if time.monotonic() > deadline:
            tail = f"\n{child.tail()}" if child is not None else ""
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s{tail}")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


class Child:
    """A process this benchmark started, in its own process group, with its output in a log."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd or ROOT,
                env=env or demo_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Signal this child's process group; SIGKILL the group if it outlives ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_json(argv: list[str], *, env: dict[str, str], timeout: float, what: str) -> dict[str, Any]:
    """Run a child that prints one JSON object as its last stdout line; return that object.

    The child's stderr (its progress) passes through. A failure raises RuntimeError with the
    child's last output.
    """
    proc = subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(lines[-10:])
        raise RuntimeError(f"{what} failed (exit status {proc.returncode})\n{tail}")
    return json.loads(lines[-1])
