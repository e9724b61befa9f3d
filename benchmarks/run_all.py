"""Run every benchmark (`make bench`, `make bench-quick`) and print one summary of the targets.

Each benchmark runs as its own process and prints its own table; this then reads their JSON
files and prints every figure that has a target: the value, its baseline, the target, met or
missed. A missed target is a finding, not an error: the exit status is 1 only when a benchmark
could not run. The summary is also written to ``summary.json`` beside the others.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS,
    ROOT,
    describe_machine,
    fmt,
    machine,
    table,
    verdict,
)

BENCHMARKS = ("mapping", "receiver", "stock", "orders", "latency", "flash_sale", "scale", "audit")


def run_one(name: str, size: str, results: Path) -> tuple[bool, float]:
    (results / f"{name}.json").unlink(missing_ok=True)
    argv = [sys.executable, "-m", f"benchmarks.bench_{name}", "--results-dir", str(results)]
    if size != "full":
        argv.append(f"--{size}")
    print(f"\n=== {name} ({size}) ===", flush=True)
    started = time.monotonic()
    status = subprocess.run(argv, cwd=ROOT, check=False).returncode
    return status == 0 and (results / f"{name}.json").exists(), time.monotonic() - started


def summary_rows(results: Path, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        path = results / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for f in data["figures"]:
            if not f.get("target_text"):
                continue
            unit = "" if not f["unit"] else f["unit"] if f["unit"] == "×" else f" {f['unit']}"
            rows.append(
                {
                    "benchmark": name,
                    "figure": f["label"],
                    "value": "—" if f["value"] is None else fmt(f["value"]) + unit,
                    "baseline": "" if f["baseline"] is None else fmt(f["baseline"]) + unit,
                    "target": f["target_text"],
                    "result": verdict(f["met"]),
                    "met": f["met"],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick")
    size.add_argument("--smoke", dest="size", action="store_const", const="smoke")
    p.set_defaults(size="full")
    p.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run (default: all: {','.join(BENCHMARKS)})",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS, metavar="DIR")
    p.add_argument(
        "--summary-only",
        action="store_true",
        help="run nothing: print the summary of the results already in --results-dir",
    )
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    ran: dict[str, tuple[bool, float]] = {}
    for name in [] if args.summary_only else names:
        ran[name] = run_one(name, args.size, args.results_dir)
    rows = summary_rows(args.results_dir, names)
    found = [
        json.loads(path.read_text())
        for n in names
        if (path := args.results_dir / f"{n}.json").exists()
    ]
    # The machine as the first benchmark saw it (its load at start included).
    info = found[0]["machine"] if found else machine()
    sizes = sorted({data["size"] for data in found})
    print(f"\n=== summary ({', '.join(sizes) or args.size} size) ===")
    print(f"machine: {describe_machine(info)}\n")
    columns = ("benchmark", "figure", "value", "baseline", "target", "result")
    print(table(columns, [[r[c] for c in columns] for r in rows]))
    failed = [n for n, (ok, _) in ran.items() if not ok]
    for name in failed:
        print(f"\n{name}: did not finish; its output is above")
    missed = sum(1 for r in rows if r["met"] is False)
    print(f"\n{len(rows) - missed} of {len(rows)} targets met; full figures in {args.results_dir}/")
    summary = {
        "size": args.size,
        "machine": info,
        "benchmarks": {n: {"ok": ok, "seconds": round(s, 1)} for n, (ok, s) in ran.items()},
        "targets": rows,
    }
    if not args.summary_only:
        (args.results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
