"""Stock: a delta-only pass over 20,000 SKUs × 3 locations with 1 % of the levels changed.

Both sandboxes are seeded with the demo catalogue at 20,000 SKUs; the SHOPLINE store gets a
third location (7004) and the mapping feeds each of 7001, 7002, 7004 from one Stokly location
with no buffer, so one Stokly level changed is one SHOPLINE level changed. Then:

1. baseline — a naive pass (same reads, same arithmetic, every level set absolutely; limits
   lifted), which also brings SHOPLINE in line with Stokly;
2. stokline's first pass over that store: it finds every level already right and records them;
3. 1 % of the levels get a goods receipt in Stokly, then stokline's pass runs with both clients
   and both sandboxes at the APIs' real limits (SHOPLINE 4 requests/s, burst 40) as every full
   pass ran before the rotating drift read: reading every SHOPLINE level (its drift cursor
   forgotten) — the same-run baseline of the SHOPLINE reads and of the wall-time ratio;
4. another 1 % change, then stokline's pass at the real limits as it runs on the demo's
   5-minute schedule: SHOPLINE levels read only for the items whose target changed and for the
   drift slice of a pass 5 minutes after the last (``--last-pass-ago 300``);
5. another 1 % change, then a pass with the limits lifted: time and peak memory (each pass runs
   in a process of its own: ``benchmarks/stock_pass.py``);
6. a quiet pass that must write nothing: proof that the delta passes left nothing behind;
7. a goods receipt during a full pass: another 1 % change the event path does not see (it starts
   at the feed's end after it), then, at the real limits, a full pass as in 4. while the event
   path runs beside it in a process of its own (``benchmarks/stock_events_loop.py``, as
   ``flows/stock_events.py`` runs it) and the warehouse receives goods of other SKUs every 6–10 s.
   Latency: from the receipt to SHOPLINE's ``inventory_levels/update`` webhook announcing the
   new level (p50/p95, target p95 ≤ 15 s). Baseline, computed: the same receipts had each event
   batch waited for the whole full pass, as under the per-client lock the passes used to take.

stokline's passes write by difference (``inventory_levels/adjust.json``, from the level read in
the same pass); writes ÷ levels changed must be 1.00, and every write of a pass over levels that
all exist in SHOPLINE an adjust. The target of the pass at the real limits is a wall time of at
most 1.10 × the bound of its writes (writes ÷ 4 requests/s).

The naive pass at the real limit is not run (it would take hours): its rate-limit bound is
computed from the requests it made with the limit lifted.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench_latency import LevelListener, Sample, Sides
from benchmarks.common import (
    Child,
    Figure,
    Result,
    demo_env,
    parser,
    percentile,
    run_json,
    say,
    sized,
)
from benchmarks.sandboxes import (
    SHOPLINE_REAL_LIMIT,
    THREE_LOCATIONS,
    Sandboxes,
    benchmark_mapping,
    seed,
    serve,
    synced_entries,
)
from stokline.connectors.stokly import STOKLY_RATE_LIMIT

RECEIVED = 100  # units per goods-receipt line: enough to change any level, whatever it was
RATE = SHOPLINE_REAL_LIMIT["rate_per_s"]
BURST = SHOPLINE_REAL_LIMIT["burst"]
SCHEDULE_S = 300  # the demo mapping's stock schedule: a pass 5 minutes after the last
WALL_BOUND = 1.10  # wall time ÷ (writes ÷ 4 requests/s), at most
REFILL_S = BURST / RATE + 1  # SHOPLINE's burst refilled after the last pass at the real limit
STOKLY_RATE = STOKLY_RATE_LIMIT.per_second  # the Stokly client's own pace (Stokly: 120/min)
STOKLY_BURST = STOKLY_RATE_LIMIT.burst - STOKLY_RATE_LIMIT.headroom  # at once, in any minute


def one_pass(
    mapping: Path, state_db: str, *, mode: str, limits: str, what: str, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    say(f"{what} …")
    out = run_json(
        [
            sys.executable,
            "-m",
            "benchmarks.stock_pass",
            "--mapping",
            str(mapping),
            "--state-db",
            state_db,
            "--mode",
            mode,
            "--limits",
            limits,
            *extra,
        ],
        env=demo_env(),
        timeout=4 * 3600,
        what=what,
    )
    shop, kinds = out["shopline"], out["level_writes"]
    say(
        f"{what}: {out['seconds']:.1f} s, SHOPLINE {shop['reads']} reads"
        f" ({out['level_reads']} of levels) + {shop['writes']} writes"
        f" ({kinds['adjust']} adjust, {kinds['set']} set; {shop['rate_limited_429']} × 429),"
        f" peak RSS {out['peak_rss_mb']} MB"
    )
    return out


def change_levels(
    sandboxes: Sandboxes, pairs: list[tuple[str, str]], reference: str
) -> dict[str, int]:
    """A goods receipt of `RECEIVED` units for each (Stokly SKU, Stokly location)."""
    by_location: dict[str, list[tuple[str, int]]] = {}
    for sku, location in pairs:
        by_location.setdefault(location, []).append((sku, RECEIVED))
    for location, lines in by_location.items():
        sandboxes.goods_receipt(location, lines, reference)
    return {location: len(lines) for location, lines in by_location.items()}


RECEIPT_EVERY_S = (6.0, 10.0)
EVENT_TARGET_S = 15.0  # goods receipt → SHOPLINE, p95, during a full pass
GIVE_UP_S = 120.0


def events_during_a_pass(
    result: Result,
    sandboxes: Sandboxes,
    mapping: Path,
    state_db: str,
    changes: list[tuple[str, str]],
    pool: list[str],
) -> None:
    """Phase 7 (see the module docstring): goods receipts while a full pass writes."""
    env = demo_env()
    api_version = yaml.safe_load(mapping.read_text())["connections"]["shopline"]["api_version"]
    sides = Sides(
        sandboxes.shopline_url, sandboxes.stokly_url, env["SHOPLINE_ACCESS_TOKEN"], api_version
    )
    shown = asyncio.run(sides.levels(pool))  # SKU → (inventory item, level at 7001)
    receipts = [(sku, *shown[sku]) for sku in pool if sku in shown]
    listener = LevelListener()
    sides.subscribe(listener.url)
    change_levels(sandboxes, changes, "benchmark receipt D")
    with tempfile.TemporaryDirectory(prefix="stokline-bench-events-") as tmp:
        ready, stop, log = Path(tmp, "ready"), Path(tmp, "stop"), Path(tmp, "events.log")
        out = Path(tmp, "events.json")
        argv = [sys.executable, "-m", "benchmarks.stock_events_loop", "--mapping", str(mapping)]
        argv += ["--state-db", state_db, "--ready", str(ready), "--stop", str(stop)]
        argv += ["--out", str(out)]
        events = Child("stock event path", argv, log, env=env)
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                if events.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the event path did not start\n{events.tail()}")
                time.sleep(0.1)
            sandboxes.real_limits()
            time.sleep(REFILL_S)
            samples, passed = receipts_during_a_pass(sides, listener, mapping, state_db, receipts)
            stop.write_text("stop\n")
            events.proc.wait(120)
            if not out.exists():
                raise RuntimeError(f"the event path failed\n{events.tail()}")
            totals = json.loads(out.read_text())
        finally:
            events.stop()
            sandboxes.lift_limits()
            listener.stop()
    during = [s for s in samples if s.started <= passed["ended"]]
    seconds = [s.seconds for s in during if s.seconds is not None]
    # Under the former per-client lock an event batch waited for the whole full pass, then took
    # its own time: the time left of the pass when the receipt came, plus the latency it had.
    waited = [
        max(0.0, passed["ended"] - s.started) + s.seconds for s in during if s.seconds is not None
    ]
    lost = len(during) - len(seconds)
    note = (
        f"{len(during)} receipts while a full pass ran ({passed['out']['seconds']:.0f} s, "
        f"{passed['out']['shopline']['writes']} writes); the event path pushed"
        f" {totals['pushed']} levels in {totals['batches']} batches, {totals['unfinished']}"
        " unfinished"
    )
    if lost:
        note += f"; {lost} not seen within {GIVE_UP_S:.0f} s"
    for p, target in ((50, None), (95, EVENT_TARGET_S)):
        result.add(
            Figure(
                f"event_during_pass_p{p}",
                f"goods receipt → SHOPLINE during a full pass, p{p}",
                round(percentile(seconds, p), 1) if seconds else None,
                "s",
                baseline=round(percentile(waited, p), 1) if waited else None,
                target=target,
                goal="max" if target else None,
                note=note if p == 95 else "baseline: waiting for the whole full pass (computed)",
            )
        )


def receipts_during_a_pass(
    sides: Sides,
    listener: LevelListener,
    mapping: Path,
    state_db: str,
    receipts: list[tuple[str, str, int]],
) -> tuple[list[Sample], dict[str, Any]]:
    """A full pass in a thread; a goods receipt every 6–10 s while it runs; then their arrival."""
    passed: dict[str, Any] = {}

    def full_pass() -> None:
        passed["started"] = time.monotonic()
        try:
            passed["out"] = one_pass(
                mapping,
                state_db,
                mode="delta",
                limits="real",
                what="full pass at the real limits, the event path beside it",
                extra=("--last-pass-ago", str(SCHEDULE_S)),
            )
        finally:
            passed["ended"] = time.monotonic()

    rng = random.Random(7)
    runner = threading.Thread(target=full_pass, name="full stock pass")
    runner.start()
    samples: list[Sample] = []
    next_at = time.monotonic() + rng.uniform(*RECEIPT_EVERY_S)
    while runner.is_alive() and len(samples) < len(receipts):
        if time.monotonic() >= next_at:
            samples.append(sides.receive(*receipts[len(samples)]))
            next_at += rng.uniform(*RECEIPT_EVERY_S)
        time.sleep(0.05)
    runner.join()
    if "out" not in passed:
        raise RuntimeError("the full pass beside the event path failed")
    while any(s.done is None and time.monotonic() - s.started < GIVE_UP_S for s in samples):
        for s in samples:
            if s.done is None:
                s.done = listener.first_after(s.started, s.key, "7001", s.above)
        time.sleep(0.1)
    return samples, passed


def main(argv: list[str] | None = None) -> int:
    args = parser("stock", __doc__ or "").parse_args(argv)
    skus = sized(args.size, 20_000, 2_000, 120)
    fraction = 0.01
    result = Result(
        "stock",
        "Stock: delta-only pass, 1 % of levels changed",
        args.size,
        parameters={"skus": skus, "shopline_locations": len(THREE_LOCATIONS), "changed": "1 %"},
    )
    with tempfile.TemporaryDirectory(prefix="stokline-bench-stock-") as tmp:
        work = Path(tmp)
        say(f"seeding both sandboxes with {skus:,} SKUs …")
        seed(work / "sandbox", skus, extra_locations=True)
        sandboxes = serve(work / "sandbox", skus, work / "sandbox.log")
        try:
            mapping = benchmark_mapping(
                work / "stock-bench.yaml",
                sandboxes.shopline_url,
                sandboxes.stokly_url,
                locations=THREE_LOCATIONS,
            )
            state_db = f"sqlite:///{work / 'state.db'}"
            measure(result, sandboxes, mapping, state_db, skus, fraction)
        finally:
            sandboxes.stop()
    result.finish(args.results_dir)
    return 0


def measure(
    result: Result,
    sandboxes: Sandboxes,
    mapping: Path,
    state_db: str,
    skus: int,
    fraction: float,
) -> None:
    naive = one_pass(
        mapping, state_db, mode="naive", limits="lifted", what="baseline: every level pushed"
    )
    settle = one_pass(mapping, state_db, mode="delta", limits="lifted", what="first pass (settle)")
    levels = settle["report"]["levels_computed"]
    changed = max(1, round(levels * fraction))

    rng = random.Random(20_000)
    candidates = [(e.sku, stokly) for e in synced_entries(skus) for _, _, stokly in THREE_LOCATIONS]
    picked = rng.sample(candidates, min(4 * changed, len(candidates)))
    set_a, set_b = picked[:changed], picked[changed : 2 * changed]
    set_c, set_d = picked[2 * changed : 3 * changed], picked[3 * changed : 4 * changed]

    sandboxes.real_limits()
    try:
        change_levels(sandboxes, set_c, "benchmark receipt C")
        time.sleep(REFILL_S)
        before = one_pass(
            mapping,
            state_db,
            mode="delta",
            limits="real",
            what="baseline at the real rate limits: every SHOPLINE level read",
            extra=("--drift", "all"),
        )
        change_levels(sandboxes, set_a, "benchmark receipt A")
        time.sleep(REFILL_S)  # SHOPLINE's bucket full again, as a pass 5 minutes later finds it
        real = one_pass(
            mapping,
            state_db,
            mode="delta",
            limits="real",
            what="pass at the real rate limits: changed levels and the drift slice read",
            extra=("--last-pass-ago", str(SCHEDULE_S)),
        )
    finally:
        sandboxes.lift_limits()
    change_levels(sandboxes, set_b, "benchmark receipt B")
    lifted = one_pass(
        mapping, state_db, mode="delta", limits="lifted", what="pass with the limits lifted"
    )
    quiet = one_pass(mapping, state_db, mode="delta", limits="lifted", what="quiet pass")
    received = {sku for sku, _ in set_d}
    pool = [e.sku for e in synced_entries(skus) if e.sku not in received]
    events_during_a_pass(
        result, sandboxes, mapping, state_db, set_d, rng.sample(pool, min(60, len(pool)))
    )

    # -- figures --------------------------------------------------------------------------------
    result.parameters.update(levels=levels, levels_changed=changed)
    naive_writes = naive["shopline"]["writes"]
    real_writes = real["shopline"]["writes"]
    lifted_writes = lifted["shopline"]["writes"]
    result.add(
        Figure(
            "writes_real",
            "writes, pass at the real limit",
            real_writes,
            "writes",
            baseline=naive_writes,
            target=changed,
            goal="equal",
            note="target: equal to the levels changed",
        )
    )
    result.add(
        Figure(
            "writes_lifted",
            "writes, pass with limits lifted",
            lifted_writes,
            "writes",
            baseline=naive_writes,
            target=changed,
            goal="equal",
        )
    )

    for name, run in (("real", real), ("lifted", lifted)):
        result.add(
            Figure(
                f"writes_per_changed_{name}",
                f"writes ÷ levels changed, pass {'at the real limit' if name == 'real' else 'lifted'}",
                round(run["shopline"]["writes"] / changed, 2),
                "×",
                target=1.00,
                goal="equal",
                note=(
                    f"{run['level_writes']['adjust']} adjusts by difference,"
                    f" {run['level_writes']['set']} sets (levels not read)"
                ),
            )
        )
        if run["level_writes"]["adjust"] != run["shopline"]["writes"]:
            result.notes.append(
                f"the pass {name} wrote {run['shopline']['writes']} levels, of which only"
                f" {run['level_writes']['adjust']} by difference"
            )

    seconds = real["seconds"]
    write_bound = real_writes / RATE
    requests = real["shopline"]["requests"]
    all_bound = max(0.0, (requests - BURST) / RATE)
    naive_bound = max(0.0, (naive["shopline"]["requests"] - BURST) / RATE)
    before_writes = before["shopline"]["writes"]
    before_ratio = round(before["seconds"] / (before_writes / RATE), 2) if before_writes else None
    result.add(
        Figure(
            "seconds_real",
            "wall time at 4 requests/s",
            round(seconds, 1),
            "s",
            baseline=round(naive_bound, 1),
            note="baseline: its rate-limit bound, computed (running it would take that long)",
        )
    )
    result.add(
        Figure(
            "real_vs_write_bound",
            "wall time ÷ bound of its writes",
            round(seconds / write_bound, 2) if write_bound else None,
            "×",
            baseline=before_ratio,
            target=WALL_BOUND,
            goal="max",
            note=(
                f"bound = {real_writes} writes ÷ {RATE:g}/s = {write_bound:.1f} s;"
                f" baseline: the same pass reading every level, {before['seconds']:.1f} s for"
                f" {before_writes} writes"
            ),
        )
    )
    result.add(
        Figure(
            "level_reads_real",
            "SHOPLINE level reads (requests), pass at the real limit",
            real["level_reads"],
            "requests",
            baseline=before["level_reads"],
            note=(
                f"{real['report']['changed_items_read']} items read because their target"
                f" changed, {real['report']['drift_items_read']} for the drift slice of a pass"
                f" {SCHEDULE_S // 60} min after the last; baseline: every level read"
                f" ({before['report']['drift_items_read']} items)"
            ),
        )
    )
    result.add(
        Figure(
            "shopline_reads_real",
            "SHOPLINE reads (requests), pass at the real limit",
            real["shopline"]["reads"],
            "requests",
            baseline=before["shopline"]["reads"],
        )
    )
    result.add(
        Figure(
            "writes_per_changed_baseline",
            "writes ÷ levels changed, baseline reading every level",
            round(before_writes / changed, 2),
            "×",
            target=1.00,
            goal="equal",
        )
    )
    result.add(
        Figure(
            "real_vs_request_bound",
            "wall time ÷ bound of all its SHOPLINE requests",
            round(seconds / all_bound, 2) if all_bound else None,
            "×",
            note=(
                f"bound = ({requests} requests − burst {BURST}) ÷ {RATE:g}/s = {all_bound:.1f} s;"
                f" {real['shopline']['reads']} of them reads"
            ),
        )
    )
    first, last = real["shopline"]["first_write_s"], real["shopline"]["last_write_s"]
    if first is not None and last is not None and real_writes > 1:
        phase = last - first
        result.add(
            Figure(
                "write_phase_vs_bound",
                "write phase ÷ bound of its writes",
                round(phase / ((real_writes - 1) / RATE), 2),
                "×",
                note=f"write phase {phase:.1f} s, from the first write to the last",
            )
        )
        # Before the first write the pass must have all of Stokly: its reads at Stokly's
        # client-side pace (a minute's requests at once, then 2 requests/s) are a floor
        # SHOPLINE's reads no longer hide.
        stokly_reads = real["stokly"]["requests"]
        floor = max(0.0, (stokly_reads - STOKLY_BURST) / STOKLY_RATE)
        result.add(
            Figure(
                "first_write_real",
                "time to the first write, pass at the real limit",
                round(first, 1),
                "s",
                baseline=before["shopline"]["first_write_s"],
                note=(
                    f"{stokly_reads} Stokly requests (a minute's first {STOKLY_BURST} go at once,"
                    f" then {STOKLY_RATE:g}/s): at least {floor:.1f} s; baseline: every level read"
                ),
            )
        )
    result.add(
        Figure(
            "rate_limited",
            "429 answers at the real limit",
            real["shopline"]["rate_limited_429"],
            "",
        )
    )
    result.add(
        Figure(
            "seconds_lifted",
            "whole pass, limits lifted",
            round(lifted["seconds"], 2),
            "s",
            baseline=round(naive["seconds"], 2),
            target=15,
            goal="below",
        )
    )
    result.add(
        Figure(
            "peak_rss_lifted",
            "peak memory of the pass (RSS)",
            lifted["peak_rss_mb"],
            "MB",
            baseline=naive["peak_rss_mb"],
            target=300,
            goal="below",
            note=f"RSS before the pass (interpreter and imports): {lifted['rss_before_pass_mb']} MB",
        )
    )
    result.add(
        Figure(
            "quiet_writes",
            "writes, quiet pass afterwards",
            quiet["shopline"]["writes"],
            "writes",
            target=0,
            goal="equal",
        )
    )
    result.add(
        Figure(
            "settle_writes",
            "writes, first pass over a SHOPLINE already right",
            settle["shopline"]["writes"],
            "writes",
        )
    )
    reported = (real["report"]["pushed"], lifted["report"]["pushed"])
    if reported != (real_writes, lifted_writes):
        result.notes.append(
            f"the sync reported {reported} pushes where the wire saw {(real_writes, lifted_writes)}"
        )
    say(
        f"wall time ÷ bound of its writes: {seconds / write_bound:.2f}× (bound ≤ {WALL_BOUND}×;"
        f" reading every level, the same run: {before_ratio}×); SHOPLINE level reads:"
        f" {real['level_reads']} requests (every level: {before['level_reads']})"
        if write_bound
        else "no writes at the real limit"
    )
    result.notes += [
        "memory is the peak resident set size (getrusage ru_maxrss) of the process that ran the"
        " pass, interpreter and imports included",
        "the baseline pushes every level every pass with the same client; its time at the real"
        " limit is its leaky-bucket bound, not a run",
        f"reads of the pass at the real limit: SHOPLINE {real['shopline']['reads']},"
        f" Stokly {real['stokly']['reads']}; they come before any write can be decided",
    ]
    result.details = {
        "naive": naive,
        "settle": settle,
        "before": before,
        "real": real,
        "lifted": lifted,
        "quiet": quiet,
    }


if __name__ == "__main__":
    raise SystemExit(main())
