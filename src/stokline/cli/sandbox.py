"""`stokline sandbox` and `stokline simulate`: the local SHOPLINE and Stokly, and what happens in them."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import httpx

from stokline.envfile import load_env_file

SANDBOX_HELP = """\
Serve local emulators of the SHOPLINE Admin REST API and the Stokly API, for the demo, for
rehearsing a client's mapping, and for tests. State persists under --data-dir across restarts.
Credentials come from the environment, else from .env.demo (the demo client's fixed values).

  SHOPLINE  http://HOST:8801/admin/openapi/v20251201/...   docs at /docs, control at /_sandbox/
  Stokly    http://HOST:8802/v1/grant, /v0/..., /v2/...     docs at /docs, control at /_sandbox/

Optionally a simulated storefront places and pays orders (--storefront-rate) and a simulated
warehouse receives goods and dispatches orders (--warehouse-rate). Stop with Ctrl-C.
"""

SIMULATE_HELP = """\
Drive running sandboxes: place storefront orders, run the warehouse, or inject faults.
  stokline simulate storefront --rate 12 --count 20
  stokline simulate warehouse --rate 30 --count 10
  stokline simulate faults hostile          (none | flaky | hostile | malformed)
"""

PROFILES = ("none", "flaky", "hostile", "malformed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="serve local SHOPLINE and Stokly emulators",
        description=SANDBOX_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--seed",
        choices=("demo", "none"),
        default="demo",
        help="seed an empty sandbox with the demo client (default) or nothing",
    )
    p.add_argument(
        "--skus",
        type=int,
        default=300,
        help="SKUs in the demo seed (default 300; e.g. 20000 for benchmarks)",
    )
    p.add_argument(
        "--faults", choices=PROFILES, default="none", help="fault profile at start (default none)"
    )
    p.add_argument(
        "--data-dir",
        default=".stokline/sandbox",
        help="where state is kept (default .stokline/sandbox)",
    )
    p.add_argument("--reset", action="store_true", help="wipe --data-dir first")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--shopline-port", type=int, default=8801)
    p.add_argument("--stokly-port", type=int, default=8802)
    p.add_argument(
        "--no-rate-limit", action="store_true", help="lift both APIs' rate limits (benchmarks)"
    )
    p.add_argument(
        "--storefront-rate",
        type=float,
        default=0.0,
        metavar="PER_MINUTE",
        help="orders placed per minute (default 0: none)",
    )
    p.add_argument(
        "--warehouse-rate",
        type=float,
        default=0.0,
        metavar="PER_MINUTE",
        help="warehouse actions per minute (default 0: none)",
    )
    p.set_defaults(handler=run_sandbox)

    s = sub.add_parser(
        "simulate",
        help="drive running sandboxes: storefront, warehouse, faults",
        description=SIMULATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = s.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, default_rate in (("storefront", 6.0), ("warehouse", 6.0)):
        a = actions.add_parser(name, help=f"run the simulated {name}")
        a.add_argument(
            "--rate",
            type=float,
            default=default_rate,
            metavar="PER_MINUTE",
            help=f"actions per minute (default {default_rate:g})",
        )
        a.add_argument(
            "--count", type=int, default=None, help="stop after this many (default: until Ctrl-C)"
        )
        a.add_argument("--url", default=None, help="sandbox base URL (default the local one)")
        a.set_defaults(handler=run_simulation)
    f = actions.add_parser("faults", help="switch the fault profile of running sandboxes")
    f.add_argument("profile", choices=PROFILES)
    f.add_argument("--api", choices=("both", "shopline", "stokly"), default="both")
    f.add_argument("--shopline-url", default="http://127.0.0.1:8801")
    f.add_argument("--stokly-url", default="http://127.0.0.1:8802")
    f.set_defaults(handler=run_faults)


def _credential(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(
            f"stokline sandbox: error: {name} is not set (and .env.demo does not set it)"
        )
    return value


def _stop_on_ctrl_c() -> dict[int, object]:
    """Make SIGINT raise KeyboardInterrupt whatever the process inherited; return the previous
    handlers, for `_restore`.

    A process started in the background by a non-interactive shell (``stokline sandbox &`` in a
    script, a CI job, ``make test`` run from one) inherits SIGINT ignored, and Python leaves it
    ignored: Ctrl-C, or a supervisor's SIGINT, would then never stop it. `stokline up` does the
    same.
    """
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return previous


def _restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        if handler is not None:
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run_sandbox(args: argparse.Namespace) -> int:
    previous = _stop_on_ctrl_c()
    try:
        return _serve(args)
    finally:
        _restore(previous)


def _serve(args: argparse.Namespace) -> int:
    from stokline.sandbox.common import ServerThread
    from stokline.sandbox.shopline import create_app as create_shopline
    from stokline.sandbox.shopline import run_storefront
    from stokline.sandbox.stokly import create_app as create_stokly
    from stokline.sandbox.stokly.warehouse import run_warehouse

    if args.skus < 8:
        print("stokline sandbox: error: --skus must be at least 8", file=sys.stderr)
        return 2
    load_env_file(".env.demo")
    data = Path(args.data_dir)
    if args.reset and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    seed = args.seed == "demo"
    shopline_app = create_shopline(
        data_dir=data,
        access_token=_credential("SHOPLINE_ACCESS_TOKEN"),
        app_secret=_credential("SHOPLINE_APP_SECRET"),
        rate_per_s=None if args.no_rate_limit else 4.0,
        faults=args.faults,
        seed=seed,
        skus=args.skus,
    )
    stokly_app = create_stokly(
        data_dir=data,
        account_key=os.environ.get("STOKLY_ACCOUNT_KEY", "demo-outdoor"),
        client_id=_credential("STOKLY_CLIENT_ID"),
        client_secret=_credential("STOKLY_CLIENT_SECRET"),
        rate_per_minute=None if args.no_rate_limit else 120,
        faults=args.faults,
        seed_skus=args.skus if seed else None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a service manager's stop, like Ctrl-C
    servers = [
        ServerThread(shopline_app, host=args.host, port=args.shopline_port),
        ServerThread(stokly_app, host=args.host, port=args.stokly_port),
    ]
    try:
        for server in servers:
            server.start()
        shop, stok = servers
        print(
            f"SHOPLINE sandbox  {shop.url}/admin/openapi/v20251201/   docs {shop.url}/docs",
            flush=True,
        )
        print(f"Stokly sandbox    {stok.url}   docs {stok.url}/docs", flush=True)
        print(f"state in {data}/ — faults: {args.faults} — Ctrl-C stops", flush=True)
        workers = []
        if args.storefront_rate > 0:
            workers.append(
                threading.Thread(
                    target=run_storefront,
                    args=(shop.url,),
                    kwargs={"orders_per_minute": args.storefront_rate, "stop": stop},
                    daemon=True,
                )
            )
        if args.warehouse_rate > 0:
            workers.append(
                threading.Thread(
                    target=run_warehouse,
                    args=(stok.url,),
                    kwargs={
                        "actions_per_minute": args.warehouse_rate,
                        "stop": stop,
                        "report": lambda line: print(f"warehouse: {line}", flush=True),
                    },
                    daemon=True,
                )
            )
        for worker in workers:
            worker.start()
        stop.wait()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    except OSError as exc:
        print(f"stokline sandbox: error: cannot serve: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        for server in servers:
            server.stop()
        shopline_app.state.shopline.close()
        stokly_app.state.sandbox.close()
    return 0


def run_simulation(args: argparse.Namespace) -> int:
    from stokline.sandbox.shopline import run_storefront
    from stokline.sandbox.stokly.warehouse import run_warehouse

    stop = threading.Event()
    previous = _stop_on_ctrl_c()
    try:
        if args.action == "storefront":
            url = args.url or "http://127.0.0.1:8801"
            placed = run_storefront(url, orders_per_minute=args.rate, count=args.count, stop=stop)
            print(f"placed {placed} order(s)")
        else:
            url = args.url or "http://127.0.0.1:8802"
            done = run_warehouse(
                url, actions_per_minute=args.rate, count=args.count, stop=stop, report=print
            )
            print(f"{done} warehouse action(s)")
    except KeyboardInterrupt:
        stop.set()
    except httpx.HTTPError as exc:
        print(
            f"stokline simulate: error: cannot reach the sandbox at {url}: {type(exc).__name__}",
            file=sys.stderr,
        )
        return 1
    finally:
        _restore(previous)
    return 0


def run_faults(args: argparse.Namespace) -> int:
    targets = []
    if args.api in ("both", "shopline"):
        targets.append(("SHOPLINE", args.shopline_url))
    if args.api in ("both", "stokly"):
        targets.append(("Stokly", args.stokly_url))
    for name, url in targets:
        try:
            response = httpx.put(
                f"{url}/_sandbox/faults", json={"profile": args.profile}, timeout=10
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            print(
                f"stokline simulate: error: {name} sandbox at {url}: {type(exc).__name__}",
                file=sys.stderr,
            )
            return 1
        print(f"{name} sandbox: faults {args.profile}")
    return 0
