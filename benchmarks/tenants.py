"""Many clients' sandboxes in one process: a SHOPLINE store and a Stokly account per client.

The scale benchmark needs each client's data apart from the others' (its own store, its own
account: an order of one never reaches another), and a hundred pairs of sandbox processes would
spend the machine on themselves. So one process serves every pair, each under its own path:

    http://127.0.0.1:PORT/shopline/<client>/admin/openapi/...   its SHOPLINE store
    http://127.0.0.1:PORT/stokly/<client>/v0/...                its Stokly account

Each is the sandbox app `stokline sandbox` serves, built with the demo seed and its real rate
limits (4 requests/s per SHOPLINE token, 120 a minute per Stokly account), mounted under its
prefix: a client's mapping names those URLs as its base URLs. State is in memory.

    python -m benchmarks.tenants --clients bench-001,bench-002 --port 8900 --skus 40
"""

from __future__ import annotations

import argparse
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from benchmarks.common import demo_env


def shopline_prefix(client: str) -> str:
    return f"/shopline/{client}"


def stokly_prefix(client: str) -> str:
    return f"/stokly/{client}"


def build(clients: list[str], skus: int) -> Starlette:
    """The app serving every client's two sandboxes under their prefixes."""
    from stokline.sandbox.shopline.app import create_app as create_shopline
    from stokline.sandbox.stokly.app import create_app as create_stokly

    env = demo_env()
    routes = []
    for client in clients:
        shopline = create_shopline(
            access_token=env["SHOPLINE_ACCESS_TOKEN"],
            app_secret=env["SHOPLINE_APP_SECRET"],
            skus=skus,
        )
        stokly = create_stokly(
            account_key=client,
            client_id=env["STOKLY_CLIENT_ID"],
            client_secret=env["STOKLY_CLIENT_SECRET"],
            seed_skus=skus,
        )
        routes += [Mount(shopline_prefix(client), app=shopline)]
        routes += [Mount(stokly_prefix(client), app=stokly)]

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes.append(Route("/health", health))
    return Starlette(routes=routes)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tenants", description=__doc__)
    parser.add_argument("--clients", required=True, help="client names, comma-separated")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--skus", type=int, default=40)
    args = parser.parse_args(argv)
    clients = [c for c in args.clients.split(",") if c]
    app = build(clients, args.skus)
    print(f"serving {len(clients)} client(s) on 127.0.0.1:{args.port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
