"""`stokline receiver`: serve the SHOPLINE webhook receiver for the given clients."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from stokline.cli import options
from stokline.cli._mappings import DEFAULT_DIR, mapping_files

if TYPE_CHECKING:
    from stokline.webhooks import Clients

HELP = """\
Receive SHOPLINE webhooks for one or more clients at http://HOST:PORT/webhooks/<client>.
Each delivery's signature is checked with the client's webhook secret (from its mapping file);
valid deliveries are stored in the state store's inbox and acknowledged at once. When
PREFECT_API_URL is set, new deliveries also emit the Prefect event stokline.webhook.received,
which starts the client's orders flow. OpenAPI docs at /docs.

Clients come from the mapping files given (--mapping FILE, a folder or a quoted glob such as
'mappings/*.yaml'; default: the folder mappings/). Each is served on its own: a client whose
mapping does not validate or whose webhook secret is unset answers 503 with the reason, and the
others are served; /health lists both. Mappings are read again without a restart: a delivery for
an unknown or unserved client (or with a wrong signature) first looks for new and changed files
(at most once a second), and SIGHUP loads every file and secret again (kill -HUP PID). A removed
mapping's client answers 404 after that. A secret in the environment needs a restart to change.

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
    from stokline.webhooks import Clients, create_app, prefect_signal
    from stokline.webhooks.deadline import BODY_TIMEOUT, request_deadline

    mapping_files("stokline receiver", args.mapping)  # a usage error if they name no file
    clients = Clients(args.mapping or [str(DEFAULT_DIR)])
    if not clients.files():
        print("stokline receiver: error: no mapping file matches", file=sys.stderr)
        return 2
    store = Store()
    served = clients.reload()
    for client, reason in sorted(served.not_served.items()):
        print(f"stokline receiver: client {client} is not served: {reason}", file=sys.stderr)
    for line in served.ignored:
        print(f"stokline receiver: ignored: {line}", file=sys.stderr)
    _reload_on_hangup(clients)
    signal = prefect_signal if os.environ.get("PREFECT_API_URL") else None
    app = create_app(clients, store, signal=signal, max_body_bytes=args.max_body)
    print(
        f"receiver on http://{args.host}:{args.port}/webhooks/<client> for "
        f"{', '.join(sorted(served.served)) or 'no client yet'} (pid {os.getpid()}; "
        "SIGHUP reloads the mappings)"
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        http=request_deadline(args.body_timeout or BODY_TIMEOUT),
    )
    return 0


def _reload_on_hangup(clients: Clients) -> None:
    """SIGHUP loads every mapping again, in a thread: a signal handler must not block the loop."""
    import signal
    import threading

    def reload(_signum: int, _frame: object) -> None:
        threading.Thread(target=clients.reload, name="reload-mappings", daemon=True).start()

    signal.signal(signal.SIGHUP, reload)
