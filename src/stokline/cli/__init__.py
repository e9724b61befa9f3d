"""The `stokline` command.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` (a function taking the parsed arguments and returning
the exit code). Exit codes: 0 success, 1 the work found problems, 2 a usage or configuration
error (a state store that cannot be opened as configured among them). The steps commands share
(`options`, `_mappings`, `session`) say what went wrong and raise `Exit`, which `main` turns into
the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

# Sub-command modules, in the order `stokline --help` lists them (a module may add several).
_COMMANDS = (
    "validate",
    "plan",
    "run",
    "reconcile",
    "audit",
    "sandbox",
    "receiver",
    "up",
    "deploy",
    "webhooks",
    "worker",
    "exceptions",
    "runbook",
    "status",
    "automations",
    "sink",
)  # sandbox adds simulate

DESCRIPTION = """\
stokline connects Stokly (inventory, items, fulfilment, ledger) with SHOPLINE (storefront,
orders, payments). Each client is described by one YAML mapping file under mappings/.
"""

EPILOG = """\
examples:
  stokline validate                      check every mappings/*.yaml
  stokline validate mappings/demo.yaml --format json
  stokline plan                          validate and print the plan of every client

Run `stokline COMMAND --help` for the options of one command.
"""


class Exit(Exception):
    """End the command with ``status``; what went wrong has been said already."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors name the command and exit 2 without a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stokline",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from stokline import __version__

    parser.add_argument("--version", action="version", version=f"stokline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMANDS:
        importlib.import_module(f"stokline.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except Exit as done:
        return done.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _is_store_error(exc):  # the state store's setting, said by the store in one line
            print(f"stokline {args.command}: error: {exc}", file=sys.stderr)
            return 2
        # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("STOKLINE_DEBUG"):
            traceback.print_exc()
        print(
            f"stokline: internal error: {type(exc).__name__}; run with STOKLINE_DEBUG=1 for details",
            file=sys.stderr,
        )
        return 70


def _is_store_error(exc: Exception) -> bool:
    from stokline.store.errors import StoreError  # here: most commands never load the store

    return isinstance(exc, StoreError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
