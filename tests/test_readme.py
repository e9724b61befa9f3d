"""The README's commands work as written, and its links lead somewhere.

The README is a newcomer's first contact: a command in it that fails, or a link that leads
nowhere, costs them more than any bug further in. So this test runs the README's commands.

The convention (also stated in the README's "Development" section):

- Commands are in fenced blocks marked ```sh, one command per line (a line ending in a backslash
  continues on the next). Output samples and listings go in ```text blocks, examples of files in
  ```yaml blocks; neither is run.
- A command must exit 0 unless its trailing comment names another status: ``# exit 1: why``
  (used where an example demonstrates a finding: unset variables, a payout variance).
- Commands that start long-lived services are skipped, by the small explicit list
  `LONG_LIVED`: every ``make`` target (they build the environment, start the demo, or run this
  very suite), ``stokline up``, ``sandbox``, ``receiver``, ``sink`` and ``simulate`` (which
  drives running sandboxes), ``tail -f``, and Prefect's server and worker.

Every other command runs, in the README's order (later commands see what earlier ones did, as
a reader's would), with bash, in a copy of the project in a temporary folder:

- its ``mappings/demo.yaml`` is the demo mapping with the two base URLs pointed at a SHOPLINE
  and a Stokly sandbox this test serves in-process on loopback (demo seed, rate limits off;
  `tests.flows.sandboxes`), so every command naming ``mappings/demo.yaml`` reaches them. The
  sandboxes also hold one paid order of a SKU Stokly does not know, so that the exceptions
  commands have an exception to act on;
- its ``.venv/bin`` is the bin folder of the interpreter running the tests;
- the state store is the copy's own ``.stokline/state.db``; ``PREFECT_API_URL`` names a loopback
  port where nothing listens, so ``stokline status`` reports from the state store, as it says
  it does when Prefect does not answer; the environment holds nothing else but PATH and HOME
  (the commands read the demo credentials from the copy's ``.env.demo``, as they do for a
  newcomer).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.flows.sandboxes import UNKNOWN_SKU, point_mapping_at, running_sandboxes

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

LONG_LIVED = (
    "make",
    "stokline up",
    "stokline sandbox",
    "stokline receiver",
    "stokline sink",
    "stokline simulate",
    "tail -f",
    "prefect server",
    "prefect worker",
)
"""Commands (after ``.venv/bin/``) that start a service and run until stopped: not run here."""

NOT_COPIED = (".git", ".venv", ".stokline", "__pycache__", ".pytest_cache", ".ruff_cache")
EXIT = re.compile(r"#\s*exit (\d+)\b")
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")


@dataclass(frozen=True)
class Command:
    line: int  # in the README, 1-based
    text: str
    expect: int

    @property
    def long_lived(self) -> bool:
        words = self.text.split()
        if words and words[0].startswith(".venv/bin/"):
            words[0] = words[0].removeprefix(".venv/bin/")
        normal = " ".join(words)
        return any(normal == p or normal.startswith(p + " ") for p in LONG_LIVED)


def commands(markdown: str) -> list[Command]:
    """The commands of the ```sh blocks of ``markdown``, in order."""
    found: list[Command] = []
    block: str | None = None
    pieces: list[str] = []
    start = 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            block = fence.group(1) if block is None else None
            continue
        if block != "sh" or not (line.strip() or pieces):
            continue
        if not pieces:
            start = number
        if line.rstrip().endswith("\\"):
            pieces.append(line.rstrip()[:-1].strip())
            continue
        text = " ".join([*pieces, line.strip()])
        pieces = []
        if text.startswith("#"):
            continue
        expect = EXIT.search(text)
        found.append(Command(start, text, int(expect.group(1)) if expect else 0))
    return found


def test_the_convention_is_read_as_documented() -> None:
    sample = "\n".join(
        [
            "```sh",
            ".venv/bin/stokline validate   # every file",
            ".venv/bin/stokline reconcile payouts \\",
            "  --mapping m.yaml   # exit 1: a variance",
            "# a comment line is not a command",
            ".venv/bin/stokline up",
            "make demo    # starts the stack",
            "```",
            "```text",
            "mappings/demo.yaml:8:3: not a command",
            "```",
            "```console",
            "$ not run either",
            "```",
        ]
    )
    found = commands(sample)
    assert [(c.line, c.expect, c.long_lived) for c in found] == [
        (2, 0, False),
        (3, 1, False),
        (6, 0, True),
        (7, 0, True),
    ]
    assert (
        found[1].text
        == ".venv/bin/stokline reconcile payouts --mapping m.yaml   # exit 1: a variance"
    )


def closed_port() -> int:
    """A loopback port nothing listens on (free when asked; nothing here starts on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the project whose demo mapping points at sandboxes served for this test."""
    work = tmp_path_factory.mktemp("readme")
    copy = work / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    (copy / ".venv").mkdir()
    (copy / ".venv" / "bin").symlink_to(Path(sys.executable).parent, target_is_directory=True)
    assert (copy / ".venv" / "bin" / "stokline").exists(), "stokline is not installed beside python"
    with running_sandboxes(work, skus=20) as sandboxes:
        point_mapping_at(
            ROOT / "mappings" / "demo.yaml",
            copy / "mappings" / "demo.yaml",
            sandboxes.shopline.url,
            sandboxes.stokly.url,
        )
        sandboxes.place_order(UNKNOWN_SKU, email="readme-reader@example.com")
        yield copy


@pytest.mark.slow
def test_every_command_of_the_readme_works_as_written(project: Path) -> None:
    found = commands(README.read_text(encoding="utf-8"))
    runnable = [c for c in found if not c.long_lived]
    skipped = [c for c in found if c.long_lived]
    assert len(runnable) >= 20, f"only {len(runnable)} runnable commands found in ```sh blocks"
    assert skipped, "the quick start's `make demo` should be found (and skipped)"
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env.update(
        PREFECT_API_URL=f"http://127.0.0.1:{closed_port()}/api",
        PREFECT_HOME=str(project.parent / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    failures = []
    for command in runnable:
        done = subprocess.run(
            ["bash", "-c", command.text],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != command.expect:
            output = (done.stdout[-1200:] + "\n" + done.stderr[-1200:]).strip()
            failures.append(
                f"README.md:{command.line}: exit {done.returncode}, expected {command.expect}:"
                f" {command.text}\n{output}"
            )
    assert not failures, f"{len(failures)} of {len(runnable)} commands failed:\n\n" + "\n\n".join(
        failures
    )


def test_the_commands_not_run_are_still_valid_command_lines() -> None:
    # What is skipped is not run, but it must still be a command that exists as written:
    # `make` targets of the Makefile, `stokline` arguments its parser accepts.
    from stokline.cli import build_parser

    skipped = [c for c in commands(README.read_text(encoding="utf-8")) if c.long_lived]
    targets = set(re.findall(r"(?m)^([\w.-]+):", (ROOT / "Makefile").read_text(encoding="utf-8")))
    checked = 0
    for command in skipped:
        argv = shlex.split(command.text, comments=True)
        tool = argv[0].removeprefix(".venv/bin/")
        if tool == "make":
            assert set(argv[1:]) <= targets, f"README.md:{command.line}: no such make target"
        elif tool == "stokline":
            try:
                build_parser().parse_args(argv[1:])
            except SystemExit as refused:
                pytest.fail(
                    f"README.md:{command.line}: {command.text!r} is refused ({refused.code})"
                )
        else:
            continue
        checked += 1
    assert checked >= 3, [c.text for c in skipped]


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lowercase, punctuation dropped, spaces → '-'."""
    found = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_relative_link_of_the_readme_resolves() -> None:
    markdown = README.read_text(encoding="utf-8")
    targets = LINK.findall(markdown)
    assert targets, "no links found"
    headings = anchors(markdown)
    broken = []
    for target in targets:
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        if not path:
            if fragment not in headings:
                broken.append(f"{target}: no heading with that anchor")
        elif not (ROOT / path).exists():
            broken.append(f"{target}: no such file")
    assert not broken, "\n".join(broken)


def test_the_screenshots_are_committed_pngs_of_a_reasonable_size() -> None:
    images = [t for t in LINK.findall(README.read_text(encoding="utf-8")) if t.endswith(".png")]
    assert images, "the README shows no screenshots"
    for image in images:
        data = (ROOT / image).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{image} is not a PNG"
        assert len(data) < 400_000, f"{image} is {len(data)} bytes; crop or resize it"
