"""``python -m benchmarks.chaos``: run the reliability campaign and print its invariants.

``make chaos`` runs the full campaign against the whole stack (about 25 minutes); ``--reduced``
runs the in-process one that ``make test`` runs (about half a minute).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import RESULTS, ROOT
from stokline.envfile import load_env_file

DESCRIPTION = """\
The reliability campaign: the system under the hostile fault profile (10 % 5xx, 5 % 429, 2 %
timeouts, dropped connections, every webhook up to three times and out of order) while orders of
every shape SHOPLINE makes (discounts, free shipping, several VAT rates, phone-only buyers, omitted
keys, authorisations captured in parts) are placed, paid, captured, edited, cancelled and refunded
by line, amount or shipping before and after dispatch, and the warehouse ships and restocks; the
worker and the receiver killed with SIGKILL mid-batch and restarted. Then faults off, the syncs
settle, and these must hold: every paid order exactly once in Stokly, nothing refunded shipped
without an exception naming it, every sale order's total and payments to the penny, every
shipment exactly once in SHOPLINE, SHOPLINE stock equal to the sellable stock computed from
Stokly, no Stokly item shown beyond its sellable stock however many SHOPLINE variants sell it (an
override beside the item's own SKU, SKUs differing in case, one SKU on two products: the campaign
makes each), each finance batch posted once and balanced, no webhook event lost, every open
exception accounted for.

  python -m benchmarks.chaos              the full campaign against the whole stack (make chaos)
  python -m benchmarks.chaos --reduced    the in-process campaign of make test, in about 30 s

Prints what the campaign did and a table of the invariants, and writes it as JSON to
benchmarks/results/chaos.json (chaos-reduced.json). The full campaign keeps the stack's state
and logs under .stokline/chaos/. Exit status: 0 every invariant held, 1 one failed or the
campaign could not run, 2 a usage error.
"""


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--reduced", action="store_true", help="the in-process campaign of make test")
    p.add_argument(
        "--minutes",
        type=float,
        default=6.0,
        help="minutes of chaos, full campaign (default 6)",
    )
    p.add_argument("--kills", type=int, default=3, help="SIGKILLs of worker and receiver (3)")
    p.add_argument(
        "--settle-minutes",
        type=float,
        default=16.0,
        help="the longest the syncs may take to settle after the chaos (default 16; a killed "
        "run's inbox claims and order leases expire a minute after its last heartbeat)",
    )
    p.add_argument("--seed", type=int, default=8, help="seed of the traffic (default 8)")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS,
        metavar="DIR",
        help="where the JSON goes (default: benchmarks/results)",
    )
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.settle_minutes <= 0 or not 0 <= args.kills <= 20:
        p.error("--minutes and --settle-minutes must be positive, --kills between 0 and 20")
    return args


def say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} · {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # The clients log every retried request; under hostile faults that is thousands of lines.
    logging.basicConfig(level=logging.ERROR)
    load_env_file(ROOT / ".env.demo")
    try:
        if args.reduced:
            from benchmarks.chaos.reduced import credentials_from_env, run_reduced

            say("reduced campaign: sandboxes, receiver and syncs in this process")
            result, _ = run_reduced(credentials_from_env(), seed=args.seed)
        else:
            from benchmarks.chaos.full import run_full

            result = run_full(
                say=say,
                chaos_minutes=args.minutes,
                kills=args.kills,
                settle_minutes=args.settle_minutes,
                seed=args.seed,
            )
    except KeyboardInterrupt:
        say("interrupted: nothing was checked")
        return 1
    except Exception as exc:  # one line here, the traceback in a file: the campaign could not run
        trace = ROOT / ".stokline" / "chaos" / "traceback.txt"
        trace.parent.mkdir(parents=True, exist_ok=True)
        trace.write_text(traceback.format_exc())
        say(f"the campaign could not run: {type(exc).__name__}: {exc} (traceback: {trace})")
        return 1
    print(result.render(), flush=True)
    path = result.write(args.results_dir)
    say(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
