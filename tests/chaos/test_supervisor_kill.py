"""`Supervisor.kill`, which the full campaign uses to crash the worker and the receiver: SIGKILL to
the child, its group and every descendant — even one in a session of its own, as Prefect's
flow-run processes are — and the same command started again under the same name."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from stokline.stack import Supervisor, descendants

# A child that starts a grandchild in a session of its own and ignores SIGTERM: only SIGKILL,
# sent to the grandchild too, leaves nothing behind.
ESCAPER = (
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
    "start_new_session=True); time.sleep(60)"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] != "Z"


def grandchildren_of(pid: int) -> set[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if found := descendants([pid]):
            return found
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never started its child")


@pytest.fixture
def supervisor(tmp_path: Path):
    sup = Supervisor(tmp_path / "state", tmp_path, dict(os.environ), stop_timeout=2.0)
    yield sup
    sup.stop()


def test_kill_leaves_nothing_of_the_child_and_restart_runs_it_again(
    supervisor: Supervisor,
) -> None:
    other = supervisor.start("bystander", [sys.executable, "-c", "import time; time.sleep(60)"])
    child = supervisor.start("worker", [sys.executable, "-c", ESCAPER])
    family = grandchildren_of(child.pid)
    dead = supervisor.kill("worker")
    assert dead is child
    assert not alive(child.pid)
    assert not any(alive(pid) for pid in family)
    assert [c.name for c in supervisor.children] == ["bystander"] and alive(other.pid)
    again = supervisor.start(dead.name, dead.argv)
    assert again.pid != child.pid and alive(again.pid)
    assert "worker" in supervisor.pid_file.read_text()


def test_kill_of_a_child_that_is_not_running_says_so(supervisor: Supervisor) -> None:
    with pytest.raises(KeyError, match="no child 'receiver' is running"):
        supervisor.kill("receiver")
