"""`stokline sink`: the local alert channel — notifications POSTed to it land in a file."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

HELP = """\
Serve a webhook endpoint on loopback that appends every notification it receives to a file,
one JSON line each (received_at first, then the alert's fields: alert, client, title, summary,
event, details ...). The demo mapping's alerts point at it (http://127.0.0.1:8804/alerts), and
`stokline up` starts it; watch alerts arrive with:

  tail -f .stokline/alerts.log

Any path accepts a POST; GET /health answers for health checks. Ctrl-C (or SIGTERM) stops it.
Exit status: 0 after a stop, 1 when the port is taken, 2 a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sink",
        help="serve a local webhook that writes each alert it receives to .stokline/alerts.log",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback)")
    parser.add_argument("--port", type=int, default=8804, help="default: 8804")
    parser.add_argument(
        "--log",
        default=".stokline/alerts.log",
        metavar="FILE",
        help="where notifications are appended (default: .stokline/alerts.log)",
    )
    parser.set_defaults(handler=run)


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from stokline.ops.sink import AlertSink

    try:
        sink = AlertSink(args.host, args.port, Path(args.log))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(
            f"stokline sink: error: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    signal.signal(signal.SIGTERM, _stop)
    # Started in the background by a non-interactive shell, a process inherits SIGINT ignored:
    # Ctrl-C (or a supervisor's SIGINT) must stop it all the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Inside the try: a Ctrl-C right after the line is printed stops it cleanly too.
        print(f"alert sink on {sink.url}/alerts, writing to {args.log}", flush=True)
        sink.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sink.server_close()
    print(f"alert sink stopped after {sink.received} notification(s)", flush=True)
    return 0
