"""The system audit at 20,000 SKUs, read at both APIs' real limits.

Both sandboxes are seeded with the demo client at 20,000 SKUs (the demo's orders of the last
30 days, customers and gaps included) and served at their real limits: SHOPLINE's leaky bucket
(4 requests/s, burst 40) and Stokly's 120 requests a minute. `stokline audit` runs once in a
process of its own, as a consultant runs it, writing the JSON report. Figures: wall time, API
requests per system, and the bound those requests set at the limits (SHOPLINE's requests ÷ 4/s
beyond its burst, Stokly's ÷ 2/s beyond its burst): the audit's wall time over the larger of the
two bounds says how much of it is anything but waiting for the APIs. Baseline, measured in the
same run: the same audit with the sandboxes' limits lifted (the clients still pace themselves as
they always do, so it differs only by the refusals the real limits cause).

Target: within the API limits at 20,000 SKUs. The clients pace themselves and resend a request
a sandbox refuses (429), which counts as one more request; so the requests made at the real
limits beyond those made with the limits lifted (same data, same reads) are the refusals met:
target 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, Result, demo_env, parser, say, sized
from benchmarks.sandboxes import SHOPLINE_REAL_LIMIT, benchmark_mapping, seed, serve
from stokline.connectors.stokly import STOKLY_RATE_LIMIT

SHOPLINE_RATE = SHOPLINE_REAL_LIMIT["rate_per_s"]
SHOPLINE_BURST = SHOPLINE_REAL_LIMIT["burst"]
STOKLY_RATE = STOKLY_RATE_LIMIT.per_second
STOKLY_BURST = STOKLY_RATE_LIMIT.burst - STOKLY_RATE_LIMIT.headroom


def audit(mapping: Path, out: Path, env: dict[str, str], what: str) -> tuple[float, dict]:
    say(f"{what} …")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stokline", "audit", "--mapping", str(mapping), "-o", str(out),
         "--format", "json"],
        env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"stokline audit failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(next(out.glob("audit-*.json")).read_text())
    say(f"{what}: {seconds:.1f} s, requests {report['requests']}")
    return seconds, report


def main(argv: list[str] | None = None) -> int:
    args = parser("audit", __doc__ or "").parse_args(argv)
    skus = sized(args.size, 20_000, 2_000, 120)
    result = Result("audit", "System audit at the APIs' real limits", args.size,
                    parameters={"skus": skus, "days": 30})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="stokline-bench-audit-") as tmp:
        work = Path(tmp)
        say(f"seeding both sandboxes with {skus:,} SKUs …")
        seed(work / "sandbox", skus)
        sandboxes = serve(work / "sandbox", skus, work / "sandbox.log")
        try:
            mapping = benchmark_mapping(
                work / "audit-bench.yaml", sandboxes.shopline_url, sandboxes.stokly_url
            )
            env = demo_env(STOKLINE_DATABASE_URL=f"sqlite:///{work / 'state.db'}")
            lifted_s, lifted = audit(mapping, work / "lifted", env, "baseline: limits lifted")
            sandboxes.real_limits()
            try:
                real_s, report = audit(mapping, work / "real", env, "audit at the real limits")
            finally:
                sandboxes.lift_limits()
        finally:
            sandboxes.stop()
    shopline, stokly = report["requests"]["SHOPLINE"], report["requests"]["Stokly"]
    bound = max(
        max(0, shopline - SHOPLINE_BURST) / SHOPLINE_RATE,
        max(0, stokly - STOKLY_BURST) / STOKLY_RATE,
    )
    result.add(Figure("seconds", "audit wall time at the real limits", round(real_s, 1), "s"))
    result.add(
        Figure("lifted", "same audit, sandboxes' limits lifted (baseline)", round(lifted_s, 1), "s")
    )
    result.add(Figure("shopline_requests", "SHOPLINE requests", shopline, ""))
    result.add(Figure("stokly_requests", "Stokly requests", stokly, ""))
    result.add(Figure("bound", "the slower API's bound for those requests", round(bound, 1), "s"))
    result.add(
        Figure("ratio", "wall time ÷ that bound", round(real_s / bound, 2) if bound else None, "×")
    )
    result.add(
        Figure(
            "refused",
            "requests resent at the real limits (refused, 429)",
            sum(report["requests"].values()) - sum(lifted["requests"].values()),
            "",
            target=0,
            goal="equal",
        )
    )
    result.add(Figure("findings", "findings", len(report["findings"]), ""))
    result.notes.append("read: " + ", ".join(f"{k} {v}" for k, v in report["read"].items()))
    result.finish(args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
