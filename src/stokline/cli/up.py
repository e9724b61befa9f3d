"""`stokline up`: the whole local demo in one command, stopped by one Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

HELP = """\
Start the local demo stack and keep it running until Ctrl-C (or SIGTERM):

  Prefect server     http://127.0.0.1:4200 (UI and API), SQLite under STATE_DIR/prefect
  SHOPLINE sandbox   the mapping's SHOPLINE base URL (demo: 127.0.0.1:8801), demo seed, with the
                     storefront simulator placing orders (--storefront-rate per minute)
  Stokly sandbox     the mapping's Stokly base URL (demo: 127.0.0.1:8802), demo seed
  webhook receiver   http://127.0.0.1:8803, serving the mapping files' folders (a client added
                     there later is served without a restart), subscribed to the SHOPLINE
                     sandbox's orders/create, orders/paid, orders/updated and orders/cancelled
                     webhooks for each client; it stores each delivery in the inbox, where the
                     orders inbox watcher (orders-inbox-<client>, started at once) imports it
                     within seconds
  deployments        `stokline deploy` of every client served: the work pool `stokline` (type
                     process), each client's deployments derived from its mapping, its alerts
                     as Prefect automations; and `stokline worker`, which runs every
                     client's flow runs in threads of one process
  alert sink         on the first mapping's loopback webhook URL (demo: 127.0.0.1:8804), which
                     appends each notification to STATE_DIR/alerts.log

Clients: every --mapping given, else every mappings/*.yaml (mappings/demo.yaml first). The
sandboxes are the first mapping's (its base URLs must be loopback); another mapping is served
beside it when its connections are the same sandboxes and its secrets are set, and is otherwise
skipped with one line saying why (mappings/peak-cycles.yaml, a production example, is).

It waits until every part answers its health check, then prints the URLs. A part that does not
come up is named, with its log under STATE_DIR/logs/. Everything binds to 127.0.0.1. Each part
runs in its own process group; Ctrl-C stops them all, flow runs included, and a second
`stokline up` starts cleanly (what a killed run left behind is stopped first). Sandbox state
persists in STATE_DIR/sandbox, Prefect's in STATE_DIR/prefect, the state store (inbox, links,
exceptions) in STATE_DIR/state.db unless STOKLINE_DATABASE_URL says otherwise; `make clean`
forgets all of it.

Run it from the project root (where prefect.yaml is). Credentials not in the environment are
read from .env.demo. Exit status: 0 after Ctrl-C, 1 when the stack could not start or a part died.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "up",
        help="start the local demo stack: Prefect, sandboxes, receiver, deployments, worker",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mapping",
        action="append",
        default=[],
        metavar="FILE",
        help="a client to serve; repeat for several, the first names the sandboxes "
        "(default: every mappings/*.yaml, mappings/demo.yaml first)",
    )
    parser.add_argument("--prefect-port", type=int, default=4200, help="default: 4200")
    parser.add_argument("--receiver-port", type=int, default=8803, help="default: 8803")
    parser.add_argument(
        "--storefront-rate",
        type=float,
        default=6.0,
        metavar="PER_MINUTE",
        help="orders the simulated storefront places per minute (default: 6; 0 for none)",
    )
    parser.add_argument(
        "--warehouse-rate",
        type=float,
        default=0.0,
        metavar="PER_MINUTE",
        help="simulated warehouse actions per minute (default: 0)",
    )
    parser.add_argument(
        "--state-dir",
        default=".stokline",
        metavar="DIR",
        help="where state, logs and the pid file live (default: .stokline)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long each part may take to become healthy (default: 120)",
    )
    parser.set_defaults(handler=run)


def _clients(given: list[str]) -> list[Path] | str:
    """The mapping files to serve, the sandboxes' first; or what is wrong with ``given``."""
    from stokline.cli._mappings import DEFAULT_DIR, UsageError, mapping_paths

    try:
        paths = mapping_paths(given)
    except UsageError as exc:
        return str(exc)
    if not given:
        demo = DEFAULT_DIR / "demo.yaml"
        paths.sort(key=lambda p: p != demo)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        return f"no such mapping file: {', '.join(missing)}"
    return paths


class _Stop(Exception):
    """SIGTERM, turned into the same orderly stop as Ctrl-C."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Stop


def run(args: argparse.Namespace) -> int:
    import httpx

    from stokline.config import MappingInvalid, SecretUnavailable
    from stokline.envfile import load_env_file
    from stokline.stack import DemoStack, StackConfig, StackError

    root = Path.cwd()
    if not (root / "prefect.yaml").is_file():
        print(
            "stokline up: error: no prefect.yaml here; run it from the project root",
            file=sys.stderr,
        )
        return 2
    load_env_file(root / ".env.demo")
    paths = _clients(args.mapping)
    if isinstance(paths, str):
        print(f"stokline up: error: {paths}", file=sys.stderr)
        return 2
    config = StackConfig(
        root=root,
        mapping=paths[0],
        clients=tuple(paths[1:]),
        state_dir=Path(args.state_dir),
        prefect_port=args.prefect_port,
        receiver_port=args.receiver_port,
        storefront_rate=args.storefront_rate,
        warehouse_rate=args.warehouse_rate,
        timeout=args.timeout,
    )

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        stack = DemoStack(config, say=say)
    except MappingInvalid as exc:
        print("\n".join(p.format() for p in exc.problems), file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"stokline up: error: {exc}", file=sys.stderr)
        return 1

    # Started in the background by a non-interactive shell, SIGINT arrives ignored: Ctrl-C (or a
    # supervisor's SIGINT) must stop the stack all the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.monotonic()
    status = 0
    try:
        stack.up()
        say(stack.banner(time.monotonic() - started))
        while True:
            dead = stack.supervisor.first_exited()
            if dead is not None:
                print(
                    f"stokline up: error: {dead.name} stopped (exit status {dead.exited()}); "
                    f"its log: {dead.log}\n{dead.tail()}",
                    file=sys.stderr,
                )
                status = 1
                break
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        say("\nstopping …")
    except (StackError, SecretUnavailable) as exc:
        print(f"stokline up: error: {exc}", file=sys.stderr)
        status = 1
    except httpx.HTTPError as exc:
        print(f"stokline up: error: a part stopped answering: {exc!r}", file=sys.stderr)
        status = 1
    finally:
        # A second Ctrl-C while stopping must not leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.down()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    say("stopped: no process of the stack is left")
    return status
