"""docs/production.md: every `stokline` command it shows is one the command-line parser accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from stokline.cli import build_parser

from .test_runbook import commands_in, registered

DOC = Path(__file__).resolve().parents[2] / "docs" / "production.md"


def test_every_stokline_command_of_the_production_guide_parses():
    text = DOC.read_text(encoding="utf-8")
    commands = commands_in(text)
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        # Placeholders such as <client> name a file a reader substitutes; the flags must parse.
        argv = shlex.split(command.replace("<client>", "example"), comments=True)[1:]
        assert registered(argv), f"not a stokline command: {command}"
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"docs/production.md: does not parse: {command} (exit {exc.code})")
        assert getattr(args, "handler", None) is not None, command


def test_the_guide_names_the_real_services_and_the_settings_it_relies_on():
    text = DOC.read_text(encoding="utf-8")
    for needle in (
        "https://api.stok.ly",
        "https://{handle}.myshopline.com",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://",
        "STOKLINE_DATABASE_URL=postgresql+psycopg://",
        "{prefect_secret:",
        "--type process",
        "--type docker",
        "--type kubernetes",
        "--host 127.0.0.1",
    ):
        assert needle in text, needle
