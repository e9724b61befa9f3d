"""`stokline worker`: run the flow runs of many clients in one process (stokline.ops.worker)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

HELP = """\
Take the flow runs of the work pool (default: stokline) and run each in a thread of this
process, with the flows loaded once: a client's watchers cost a thread each rather than a
process, and a scheduled run costs no process start (about 1.3 s of CPU each with Prefect's
process worker). Run one per machine, from the project root (where prefect.yaml is): it takes
only runs of deployments deployed from this folder, and leaves others to other workers.

The flows are loaded once: restart the worker after updating the project's code (mapping
files are read by every run, so an edited mapping needs no restart).

Several workers (these, or `prefect worker start --pool stokline`) can serve one pool: the
Prefect server gives each run to one of them, within each deployment's concurrency limit.
Heartbeats are sent for every run (the crash automation expects them), and the worker shows as
online under the pool in the Prefect UI.

What it gives up against a process per run: isolation. A run that crashes the interpreter or
exhausts memory stops the others too (they are then marked Crashed); a run can be cancelled,
not killed. SIGTERM or Ctrl-C marks every run it holds Cancelled, then stops.

It talks to PREFECT_API_URL; the clients' secrets come from its environment (or Secret blocks),
the state store from STOKLINE_DATABASE_URL, one connection pool for all its runs.
Started before the first `stokline deploy`, it waits for the pool and says so.
Exit status: 0 after SIGTERM or Ctrl-C, 1 when the Prefect API does not answer.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "worker",
        help="run many clients' flow runs in one process (instead of a process per run)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pool", default="stokline", help="the work pool (default: stokline)")
    parser.add_argument(
        "--limit",
        type=int,
        default=400,
        metavar="RUNS",
        help="the most flow runs held at once (default: 400)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="pause between two looks at the pool (default: 1)",
    )
    parser.add_argument("--name", help="the worker's name in Prefect (default: host and pid)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stokline.ops.worker import prepare_environment

    if args.limit < 1 or args.poll_seconds <= 0:
        print(
            "stokline worker: error: --limit and --poll-seconds must be positive", file=sys.stderr
        )
        return 2
    prepare_environment()  # before Prefect reads its settings

    from stokline.ops.prefect_api import api_url, unreachable
    from stokline.ops.worker import InProcessWorker
    from stokline.store import share_engines

    url = api_url(None)
    problem = unreachable(url)
    if problem:
        print(f"stokline worker: error: {problem}; set PREFECT_API_URL", file=sys.stderr)
        return 1
    share_engines()
    worker = InProcessWorker(
        pool=args.pool,
        root=Path.cwd(),
        name=args.name,
        limit=args.limit,
        poll_seconds=args.poll_seconds,
        say=lambda line: print(line, flush=True),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await worker.serve(
            stop,
            ready=lambda: print(
                f"worker {worker.name} serving pool {args.pool} from {worker.root}", flush=True
            ),
        )

    asyncio.run(main())
    stats = worker.stats
    unrecorded = f", {stats.unrecorded} without this worker recorded" if stats.unrecorded else ""
    print(
        f"stopped: {stats.taken} run(s) taken, {stats.finished} ended, {stats.cancelled} "
        f"cancelled{unrecorded}",
        flush=True,
    )
    return 0
