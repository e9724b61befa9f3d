"""`stokline runbook`: the operating model of every example client, and commands that really run.

The runbook is for people who copy its commands into a terminal, so every `stokline ...` line in
it is parsed by the real command-line parser. Commands that other parts of stokline add later
(a sync or a reconciliation not yet registered) are checked as soon as they exist.
"""

from __future__ import annotations

import argparse
import re
import shlex
from datetime import timedelta
from pathlib import Path

import pytest

from stokline.cli import build_parser, main
from stokline.config import load_mapping
from stokline.config.schedules import Schedule
from stokline.ops.operating_model import TEAM_TITLES, describe_schedule
from stokline.ops.runbook import render_runbook
from stokline.store import REASONS

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = sorted((ROOT / "mappings").glob("*.yaml"))


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def commands_in(text: str) -> list[str]:
    """Every `stokline` command line of a Markdown text: in code blocks and in inline code."""
    found: list[str] = []
    in_block = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block = not in_block
        elif in_block and stripped.startswith("stokline "):
            found.append(stripped)
    found += re.findall(r"(?<!`)`(stokline [^`]+)`", text)
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def registered(argv: list[str]) -> bool:
    """Whether the (sub-)commands named at the start of ``argv`` exist in `stokline` today."""
    parser = build_parser()
    for word in argv:
        choices = _subcommands(parser)
        if not choices:
            return True
        if word not in choices:
            return False
        parser = choices[word]
    return True


@pytest.mark.parametrize("path", MAPPINGS, ids=[p.stem for p in MAPPINGS])
def test_every_example_mapping_gets_a_runbook_whose_commands_parse(path, in_root, capsys):
    source = str(path.relative_to(ROOT))
    assert main(["runbook", source]) == 0
    text = capsys.readouterr().out
    mapping = load_mapping(source)

    assert text.startswith(f"# {mapping.client.title} — ")
    # Every reason code the store can raise, each with the team this mapping gives it.
    for code in REASONS:
        team = TEAM_TITLES[mapping.operating_model.owner_of(code)]
        row = next(line for line in text.splitlines() if line.startswith(f"| `{code}` |"))
        assert f"| {team} | {REASONS[code].severity} |" in row
    owners = {mapping.operating_model.owner_of(code) for code in REASONS}
    for team in owners:
        assert f"exceptions list --client {mapping.client.name} --team {team}" in text
    # The plain-words tables: every location, shipping method and gateway of the mapping.
    for location in mapping.locations:
        assert f"`{location.shopline_location}`" in text
        assert all(name in text for name in location.stokly_locations)
    assert all(m.shopline_title in text for m in mapping.shipping.methods)
    assert all(f"`{g.gateway}`" in text for g in mapping.payments.gateways)
    assert mapping.operating_model.escalation.email in text

    commands = commands_in(text)
    expected = {"exceptions", "run", "reconcile", "status", "validate", "plan", "automations"}
    assert {shlex.split(c)[1] for c in commands} >= expected
    parser = build_parser()
    checked = 0
    for command in commands:
        argv = shlex.split(command, comments=True)[1:]
        if not registered(argv):
            continue  # e.g. a reconciliation another module has not registered yet
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"the runbook's command does not parse: {command} (exit {exc.code})")
        assert getattr(args, "handler", None) is not None, command
        if "--mapping" in argv:
            assert argv[argv.index("--mapping") + 1] == source
        checked += 1
    assert checked >= 15


def test_output_file_holds_the_same_runbook(tmp_path, in_root, capsys):
    target = tmp_path / "demo-runbook.md"
    assert main(["runbook", "mappings/demo.yaml", "-o", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(target) in captured.err
    assert main(["runbook", "mappings/demo.yaml"]) == 0
    assert target.read_text(encoding="utf-8") == capsys.readouterr().out


def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path, in_root, capsys):
    assert (
        main(["runbook", "mappings/demo.yaml", "-o", str(tmp_path / "no" / "such" / "x.md")]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("stokline runbook: error: cannot write") and "\n" not in err


def test_an_invalid_mapping_prints_its_problems_on_stderr_and_exits_1(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    text = (ROOT / "mappings/demo.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("  currency: GBP", "  curency: GBP"), encoding="utf-8")
    assert main(["runbook", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{broken}:11:3: /client/curency: unknown key 'curency'" in captured.err
    assert main(["runbook", str(tmp_path / "missing.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_a_missing_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["runbook"])
    assert exc.value.code == 2


def test_mapping_text_is_shown_never_run_as_a_template_and_cannot_break_a_table(tmp_path):
    text = (ROOT / "mappings/demo.yaml").read_text(encoding="utf-8")
    hostile = "{{ 7 * 7 }} | {% raw %}<b>x</b>"
    edited = text.replace("name: Online store (UK)", f'name: "{hostile}"')
    edited = edited.replace("shopline_title: DPD Next Day", "shopline_title: DPD | Next Day")
    path = tmp_path / "hostile.yaml"
    path.write_text(edited, encoding="utf-8")
    runbook = render_runbook(load_mapping(path))

    [row] = [line for line in runbook.splitlines() if "7 \\* 7" in line]
    assert "49" not in row and "<b>" not in row
    assert "\\{\\{" not in row and "{{ 7 \\* 7 }} \\| {% raw %}\\<b\\>x\\</b\\>" in row
    assert "DPD \\| Next Day" in runbook
    # Every table row keeps its header's number of cells (pipes inside values are escaped).
    for block in re.split(r"\n\n", runbook):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            cells = {len(re.findall(r"(?<!\\)\|", line)) for line in rows}
            assert len(cells) == 1, block


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (Schedule(every=timedelta(minutes=2)), "every 2 minutes"),
        (Schedule(at="02:00"), "daily at 02:00 (Europe/London time)"),
        (Schedule(cron="*/10 * * * *"), "every 10 minutes (Europe/London time)"),
        (Schedule(cron="30 3 * * 1-5"), "on weekdays at 03:30 (Europe/London time)"),
        (Schedule(cron="15 * * * *"), "every hour at 15 minutes past (Europe/London time)"),
        (Schedule(cron="0 6 1 * *"), "on the schedule `0 6 1 * *` (Europe/London time)"),
    ],
)
def test_schedules_are_said_in_words(schedule, words):
    assert describe_schedule(schedule, "Europe/London") == words


def test_alerts_name_a_prefect_block_never_a_webhook_address_and_may_be_absent(tmp_path):
    demo = render_runbook(load_mapping(ROOT / "mappings/demo.yaml"))
    assert "a webhook (its address is in the mapping file)" in demo
    assert "127.0.0.1:8804" not in demo  # the demo's alert address stays in the mapping
    peak = render_runbook(load_mapping(ROOT / "mappings/peak-cycles.yaml"))
    assert "the Prefect notification block `slack-webhook/peak-cycles-ops`" in peak
    assert "again only after 1 hour" in peak and "for 4 of its scheduled runs" in peak

    # The demo without its alerts (the last block of its operating model, with its comment).
    lines = (ROOT / "mappings/demo.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line.startswith("  alerts:"))
    while lines[cut - 1].lstrip().startswith("#"):
        cut -= 1
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("".join(lines[:cut]), encoding="utf-8")
    runbook = render_runbook(load_mapping(quiet))
    assert "No alerts are configured in the mapping" in runbook
    assert "stokline automations apply --mapping" in runbook
