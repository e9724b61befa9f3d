"""A state store that cannot be opened, as the user meets it: the command a process, each broken
STOKLINE_DATABASE_URL said in one line on stderr (exit status 2), never a traceback, never the
URL's password, and nothing left behind in the working directory.

The read-only cases need a file the command truly cannot write. Root writes a chmod 444 file all
the same, so when the suite runs as root the command runs without the capabilities that let root
ignore file modes (CAP_DAC_OVERRIDE and friends, dropped from its bounding set before exec).
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stokline.store import Store
from tests.flows.sandboxes import demo_credentials

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "mappings" / "demo.yaml")
EXE = str(Path(sys.executable).with_name("stokline"))
PASSWORD = "s3cret-Pa55"
SETTING = "STOKLINE_DATABASE_URL"

# The commands that open the store to read it; each gets the same one line.
READERS = {
    "exceptions list": (["exceptions", "list"], "stokline exceptions"),
    "status": (["status", "--no-prefect", "--mapping", DEMO], "stokline status"),
    "run orders --dry-run": (["run", "orders", "--dry-run", "--mapping", DEMO], "stokline run"),
}
# Commands that write to it.
WRITERS = {
    "exceptions resolve": (["exceptions", "resolve", "1"], "stokline exceptions"),
    "run orders": (["run", "orders", "--mapping", DEMO], "stokline run"),
}

_PR_CAPBSET_DROP = 24
_FILE_CAPABILITIES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _without_file_capabilities() -> None:  # runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _FILE_CAPABILITIES:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            os._exit(97)


@pytest.fixture(scope="module")
def as_user() -> Callable[[], None] | None:
    """What makes a child process respect file modes: nothing, unless we are root."""
    if os.geteuid() != 0:
        return None
    return _without_file_capabilities


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """The command's working directory, empty: a bad URL must leave it so."""
    work = tmp_path / "cwd"
    work.mkdir()
    return work


def stokline(
    args: list[str], cwd: Path, url: str, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "PYTHONPATH") if k in os.environ}
    env.update(demo_credentials())
    env[SETTING] = url
    done = subprocess.run(
        [EXE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
    )
    assert done.returncode != 97, "could not drop root's file capabilities for the command"
    return done


def assert_one_line(done: subprocess.CompletedProcess[str], prog: str, problem: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"{prog}: error: {SETTING}: {problem}"]
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def assert_left_empty(cwd: Path) -> None:
    assert sorted(p.name for p in cwd.iterdir()) == []


def populated(path: Path) -> Path:
    """A real state store at ``path``, holding exception 1."""
    with Store(f"sqlite:///{path}") as store:
        store.exceptions.raise_(
            "demo-outdoor", "unmapped_sku", "order", "1", "SKU X", team="ecommerce"
        )
    return path


@pytest.mark.parametrize("command", READERS)
def test_a_file_of_random_bytes_is_not_a_sqlite_database(
    command: str, tmp_path: Path, cwd: Path
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(8192))
    args, prog = READERS[command]
    done = stokline(args, cwd, f"sqlite:///{path}")
    assert_one_line(done, prog, f"the file {path} is not a SQLite database")
    assert_left_empty(cwd)


@pytest.mark.parametrize("command", WRITERS)
def test_a_read_only_file_is_refused_to_a_command_that_writes(
    command: str, tmp_path: Path, cwd: Path, as_user: Callable[[], None] | None
) -> None:
    path = populated(tmp_path / "state.db")
    path.chmod(0o444)
    args, prog = WRITERS[command]
    done = stokline(args, cwd, f"sqlite:///{path}", as_user)
    assert_one_line(
        done, prog, f"cannot write the SQLite file {path}: attempt to write a readonly database"
    )
    assert_left_empty(cwd)


def test_a_read_only_file_can_still_be_read(
    tmp_path: Path, cwd: Path, as_user: Callable[[], None] | None
) -> None:
    path = populated(tmp_path / "state.db")
    path.chmod(0o444)
    for command in ("exceptions list", "status"):
        args, _ = READERS[command]
        done = stokline(args, cwd, f"sqlite:///{path}", as_user)
        assert done.returncode == 0, done.stderr
    assert "unmapped_sku" in stokline(["exceptions", "list"], cwd, f"sqlite:///{path}").stdout


@pytest.mark.parametrize("command", READERS)
def test_a_file_in_a_read_only_folder(
    command: str, tmp_path: Path, cwd: Path, as_user: Callable[[], None] | None
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    path = populated(folder / "state.db")
    folder.chmod(0o555)
    try:
        args, prog = READERS[command]
        done = stokline(args, cwd, f"sqlite:///{path}", as_user)
    finally:
        folder.chmod(0o755)
    assert_one_line(
        done,
        prog,
        f"cannot write the SQLite file {path}: attempt to write a readonly database (its folder"
        f" {folder} is read-only, and SQLite writes its journal beside the file)",
    )
    assert_left_empty(cwd)


def test_a_new_file_in_a_read_only_folder(
    tmp_path: Path, cwd: Path, as_user: Callable[[], None] | None
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    path = folder / "state.db"
    try:
        done = stokline(["exceptions", "list"], cwd, f"sqlite:///{path}", as_user)
    finally:
        folder.chmod(0o755)
    assert_one_line(
        done,
        "stokline exceptions",
        f"cannot create the SQLite file {path}: its folder {folder} is read-only",
    )
    assert list(folder.iterdir()) == []
    assert_left_empty(cwd)


@pytest.mark.parametrize("command", READERS)
def test_postgresql_that_refuses_the_connection(command: str, cwd: Path) -> None:
    with socket.socket() as probe:  # port 1 on loopback: nothing listens there
        assert probe.connect_ex(("127.0.0.1", 1)) != 0
    args, prog = READERS[command]
    done = stokline(args, cwd, f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/x")
    assert_one_line(done, prog, "PostgreSQL at 127.0.0.1:1 refused the connection")
    assert_left_empty(cwd)


@pytest.mark.parametrize("command", READERS)
def test_an_unknown_scheme(command: str, cwd: Path) -> None:
    args, prog = READERS[command]
    done = stokline(args, cwd, f"mysql://u:{PASSWORD}@db.internal/x")
    assert_one_line(
        done, prog, "unknown database scheme 'mysql': use sqlite:/// or postgresql+psycopg://"
    )
    assert_left_empty(cwd)


@pytest.mark.parametrize("command", READERS)
def test_not_a_url_at_all(command: str, cwd: Path) -> None:
    args, prog = READERS[command]
    done = stokline(args, cwd, f"foo{PASSWORD}")
    assert_one_line(
        done,
        prog,
        "not a database URL: use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB",
    )
    assert_left_empty(cwd)


@pytest.mark.parametrize("command", READERS)
def test_a_sqlite_uri_creates_no_folder(command: str, tmp_path: Path, cwd: Path) -> None:
    missing = tmp_path / "nowhere" / "state.db"
    args, prog = READERS[command]
    done = stokline(args, cwd, f"sqlite:///file:{missing}?mode=ro&uri=true")
    assert_one_line(
        done,
        prog,
        f"cannot open the SQLite file {missing}: the folder {missing.parent} does not exist",
    )
    assert_left_empty(cwd)  # once a folder "file:" appeared here
    assert not missing.parent.exists()


def test_a_file_uri_without_uri_true_creates_no_folder(tmp_path: Path, cwd: Path) -> None:
    done = stokline(["exceptions", "list"], cwd, f"sqlite:///file:{tmp_path}/x/state.db")
    assert_one_line(
        done,
        "stokline exceptions",
        f"the SQLite path 'file:{tmp_path}/x/state.db' is a URI but the URL lacks ?uri=true: add"
        " it, or give the path alone (sqlite:///relative/path.db, sqlite:////absolute/path.db)",
    )
    assert_left_empty(cwd)


def test_the_receiver_refuses_to_start(cwd: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = stokline(
        ["receiver", "--mapping", DEMO, "--port", str(port)],
        cwd,
        f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/x",
    )
    assert_one_line(done, "stokline receiver", "PostgreSQL at 127.0.0.1:1 refused the connection")
    assert "receiver on" not in done.stdout
    assert_left_empty(cwd)
