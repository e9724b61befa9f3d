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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from stokline.store import Store
    from stokline.webhooks import create_app, endpoints_for, prefect_signal

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
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
