"""`stokline receiver`: serve the SHOPLINE webhook receiver for the given clients."""

from __future__ import annotations

import argparse
import os
import sys

from stokline.cli import options
from stokline.cli._mappings import mapping_files, print_problems
from stokline.config import MappingInvalid, SecretUnavailable, load_mapping

HELP = """\
Receive SHOPLINE webhooks for one or more clients at http://HOST:PORT/webhooks/<client>.
Each delivery's signature is checked with the client's webhook secret (from its mapping file);
valid deliveries are stored in the state store's inbox and acknowledged at once. When
PREFECT_API_URL is set, new deliveries also emit the Prefect event stokline.webhook.received,
which starts the client's orders flow. OpenAPI docs at /docs.

Slow clients are cut off: a request's headers and body must arrive within --body-timeout seconds
of its first byte (10 by default). A client still sending then gets 408 and its connection is
closed, and nothing of its request is stored; meanwhile other deliveries are answered as usual.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "receiver",
        help="receive SHOPLINE webhooks into the inbox",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_mappings(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    parser.add_argument("--port", type=int, default=8803, help="port (default: 8803)")
    parser.add_argument(
        "--max-body",
        type=int,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest delivery accepted (default: 1 MiB)",
    )
    parser.add_argument(
        "--body-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="time a request's headers and body may take to arrive, from its first byte; a "
        "slower client gets 408, its connection closed, nothing stored (default: 10; above 0, "
        "at most 300)",
    )
    parser.set_defaults(handler=run)


def _seconds(text: str) -> float:
    # Imported here, not above: the receiver's modules load only when the option is given.
    from stokline.webhooks.deadline import check_seconds

    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    try:
        return check_seconds(seconds)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from stokline.store import Store
    from stokline.webhooks import create_app, endpoints_for, prefect_signal
    from stokline.webhooks.deadline import BODY_TIMEOUT, request_deadline

    paths = mapping_files("stokline receiver", args.mapping)
    try:
        endpoints = endpoints_for([load_mapping(p) for p in paths])
    except MappingInvalid as exc:
        print_problems(exc.problems, sys.stdout)
        return 1
    except SecretUnavailable as exc:
        print(f"stokline receiver: error: {exc}", file=sys.stderr)
        return 1
    signal = prefect_signal if os.environ.get("PREFECT_API_URL") else None
    app = create_app(endpoints, Store(), signal=signal, max_body_bytes=args.max_body)
    print(
        f"receiver on http://{args.host}:{args.port}/webhooks/<client> for {', '.join(sorted(endpoints))}"
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        http=request_deadline(args.body_timeout or BODY_TIMEOUT),
    )
    return 0
