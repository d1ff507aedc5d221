"""Soak: the simulated market at a steady frame rate across every venue, a fault every minute,
for an hour (``--minutes``); then the verdict.

Run: ``python benchmarks/soak.py [--minutes 60] [--frames-per-second 20000] [--fault-every 60]``
(CI runs ``--minutes 5`` through tests/test_soak.py). Prints its figures and exits 1 if a
criterion fails:

- memory flat: the collector's resident memory at the end within 10 % of its level once warm
  (the median of the samples of the run's second tenth);
- every trade exactly once: per (venue, symbol) the stored trade ids are unique and
  contiguous (Binance trade and aggregate-trade ids rise by exactly 1);
- every gap recorded: each fault aimed at a book left a row in ``gaps``;
- every book back in sync within 5 s of its fault: each out-of-sync episode, less the fault's
  own duration (a stalled feed cannot be in sync while it sends nothing), lasts at most 5 s.

The local exchange runs in a child process (its own core); the collector runs here, as
``analyzer collect`` would, with its store and raw capture on. The faults cycle through the
venues: a sequence gap, a crossed book, a stale feed (8 s), a close of the feed's connections
(1011) and malformed frames. ``--speed`` sets the market pace; by default it
is chosen from a short calibration run to reach ``--frames-per-second``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.collector import Collector  # noqa: E402
from analyzer.config import Config  # noqa: E402
from analyzer.demo import listed_symbols, sim_config  # noqa: E402
from analyzer.store.research import query  # noqa: E402
from analyzer.venues import VENUES  # noqa: E402

VENUE_IDS = sorted(VENUES)
FAULTS = ("sequence_gap", "crossed_book", "stale_feed", "close", "malformed")
RECOVERY_S = 5.0
MEMORY_TOLERANCE = 0.10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Fault:
    name: str
    venue: str
    at_wall_s: float  # seconds after the market started
    lasts_s: float  # wall seconds the fault itself keeps a book out of sync


def schedule(minutes: float, every_s: float, speed: float, feeds: list[str]
             ) -> tuple[str, list[Fault]]:
    items, faults = ["calm_contango"], []
    stale_s = 8.0  # past stream_stall_min_seconds (5 s): a silence the collector must act on
    stale_market_s = stale_s * speed
    n = int(minutes * 60 // every_s)
    for k in range(1, n):
        name = FAULTS[(k - 1) % len(FAULTS)]
        venue = feeds[(k - 1) % len(feeds)]  # every pair in turn
        at_market = k * every_s * speed
        if name == "stale_feed":
            items.append(f"stale_feed@{at_market:g}s+{stale_market_s:g}s/{venue}")
            faults.append(Fault(name, venue, k * every_s, stale_s))
        else:
            items.append(f"{name}@{at_market:g}s/{venue}")
            faults.append(Fault(name, venue, k * every_s, 0.0))
    return ",".join(items), faults


def start_exchange(port: int, speed: float, scenario: str, seed: int,
                   venues: list[str] | None = None) -> subprocess.Popen:
    only = ["--venues", ",".join(venues)] if venues else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer.exchange", "--simulate", "--port", str(port),
         "--speed", f"{speed:g}", "--scenario", scenario, "--seed", str(seed), *only],
        stdout=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the local exchange did not start")


@dataclass
class Samples:
    t0: float = 0.0  # monotonic time the collector started
    rss: list[tuple[float, float]] = field(default_factory=list)  # (s, MB)
    frames: list[tuple[float, int]] = field(default_factory=list)  # (s, frames so far)
    # (venue, symbol) -> [start, end] wall seconds of each out-of-sync episode
    episodes: dict[tuple[str, str], list[list[float]]] = field(default_factory=dict)


async def collect(cfg: Config, seconds: float, samples: Samples) -> Collector:
    collector = Collector(cfg)
    await collector.start()
    t0 = samples.t0 = time.monotonic()
    next_rss = 0.0
    try:
        while (now := time.monotonic() - t0) < seconds:
            await asyncio.sleep(0.25)
            for r in collector.runners:
                for sb in r.books.books.values():
                    key = (r.venue, sb.symbol)
                    eps = samples.episodes.setdefault(key, [])
                    if not sb.in_sync:
                        if eps and eps[-1][1] < 0:
                            continue
                        eps.append([now, -1.0])
                    elif eps and eps[-1][1] < 0:
                        eps[-1][1] = now
            if now >= next_rss:
                next_rss = now + 5.0
                samples.rss.append((now, rss_mb()))
                samples.frames.append((now, sum(
                    rt.frames for r in collector.runners for rt in r.feed.routes.values())))
    finally:
        await collector.stop()
    return collector


def calibrate(port_speed: float, seed: int, tmp: Path, venues: list[str] | None) -> float:
    """Frames per second the collector receives at ``port_speed`` (a 12 s calm run)."""
    port = free_port()
    ex = start_exchange(port, port_speed, "calm_contango", seed, venues)
    try:
        cfg = sim_config(port, str(tmp / "calib"), 0, listed_symbols(port))
        s = Samples()
        asyncio.run(collect(cfg, 12.0, s))
    finally:
        ex.terminate()
        ex.wait(10)
    (t1, f1), (t2, f2) = s.frames[1], s.frames[-1]
    return (f2 - f1) / (t2 - t1)


def verdict(collector: Collector, samples: Samples, faults: list[Fault], market_t0: float,
            minutes: float) -> tuple[list[str], bool]:
    lines, ok = [], True
    db = Path(collector.cfg.store.database)
    # throughput
    (ta, fa), (tb, fb) = samples.frames[1], samples.frames[-1]
    lines.append(f"frames/s        {(fb - fa) / (tb - ta):,.0f} (mean over {tb - ta:.0f} s)")
    # memory
    warm = [mb for t, mb in samples.rss if minutes * 6 <= t <= minutes * 12] or [
        samples.rss[len(samples.rss) // 5][1]]
    base, end, peak = statistics.median(warm), samples.rss[-1][1], max(m for _, m in samples.rss)
    growth = end / base - 1
    ok_mem = abs(growth) <= MEMORY_TOLERANCE
    ok &= ok_mem
    lines.append(f"memory          {base:.0f} MB once warm, {end:.0f} MB at the end "
                 f"({growth:+.1%}), peak {peak:.0f} MB  {'ok' if ok_mem else 'FAIL'}")
    # trades: each once everywhere; where ids rise by one (the venue's trades are backfilled
    # by id), contiguous; elsewhere no hole the recent-trades backfill could not reach
    consecutive = {r.venue for r in collector.runners if r.feed.trades_path("X", 1) is not None}
    rows = query(db, "SELECT venue, symbol, count(*), count(DISTINCT trade_id), "
                     "max(TRY_CAST(trade_id AS BIGINT)) - min(TRY_CAST(trade_id AS BIGINT)) + 1 "
                     "FROM trades GROUP BY ALL ORDER BY ALL").rows()
    total = sum(r[2] for r in rows)
    bad = [r for r in rows if r[2] != r[3] or (r[0] in consecutive and r[2] != r[4])]
    holes = {r.venue: r.trade_gaps for r in collector.runners
             if r.venue not in consecutive and r.trade_gaps}
    ok &= not bad and not holes and total > 0
    lines.append(f"trades          {total:,} in {len(rows)} instruments: each once, ids "
                 "contiguous where they rise by one, no backfill hole elsewhere  "
                 + ("ok" if not bad and not holes else f"FAIL {bad} {holes}"))
    # gaps
    gaps = dict(query(db, "SELECT reason, count(*) FROM gaps GROUP BY ALL").rows())
    want = {"sequence_gap": "gap", "crossed_book": "crossed", "stale_feed": "stale"}
    n_want = {reason: sum(f.name == name for f in faults) for name, reason in want.items()}
    missing = {r: n for r, n in n_want.items() if gaps.get(r, 0) < n}
    ok &= not missing
    lines.append(f"gaps recorded   {dict(sorted(gaps.items()))} for "
                 f"{dict(sorted(n_want.items()))} faults  "
                 + ("ok" if not missing else f"FAIL missing {missing}"))
    # recovery
    worst = 0.0
    unmatched = 0
    kinds: dict[str, list[float]] = {}
    for (venue, _), eps in samples.episodes.items():
        for start, stop in eps:
            if stop < 0:
                stop = samples.frames[-1][0]
            market_start = start - market_t0  # seconds of market run when it began
            fault = max((f for f in faults if f.venue == venue
                         and f.at_wall_s - 1 <= market_start), key=lambda f: f.at_wall_s,
                        default=None)
            if fault is None or market_start > fault.at_wall_s + fault.lasts_s + 20:
                unmatched += 1
                fault = None
            past = stop - start - (fault.lasts_s if fault else 0.0)
            kinds.setdefault(fault.name if fault else "none", []).append(stop - start)
            worst = max(worst, past)
    ok_sync = worst <= RECOVERY_S
    ok &= ok_sync
    n_eps = sum(len(e) for e in samples.episodes.values())
    lines.append(f"back in sync    {n_eps} out-of-sync episodes, the longest {worst:.1f} s past "
                 f"its fault (limit {RECOVERY_S:g} s); {unmatched} not near a fault  "
                 + ("ok" if ok_sync else "FAIL"))
    for name, spans in sorted(kinds.items()):
        lines.append(f"  after {name:<13} {len(spans)} episodes, "
                     f"{min(spans):.2f}-{max(spans):.2f} s out of sync")
    return lines, ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--frames-per-second", type=float, default=20_000.0)
    p.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    p.add_argument("--speed", type=float, help="market pace (default: calibrated)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", help="default: a temporary directory")
    p.add_argument("--venues", type=lambda t: [v for v in t.split(",") if v],
                   help="simulate these venues only, e.g. binance (default: every venue)")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(args.data_dir or tmp_name)
        speed = args.speed
        if speed is None:
            at_10 = calibrate(10.0, args.seed, tmp, args.venues)
            speed = round(10.0 * args.frames_per_second / at_10, 1)
            print(f"calibration     {at_10:,.0f} frames/s at speed 10: running at speed {speed}")
        feeds = [f for f in VENUE_IDS
                 if not args.venues or VENUES[f][0].exchange in args.venues]
        scenario, faults = schedule(args.minutes, args.fault_every, speed, feeds)
        port = free_port()
        print(f"soak            {args.minutes:g} min, {len(faults)} faults "
              f"({', '.join(FAULTS)} in turn over {', '.join(feeds)}), pid {os.getpid()}",
              flush=True)
        ex_started = time.monotonic()
        ex = start_exchange(port, speed, scenario, args.seed, args.venues)
        try:
            cfg = sim_config(port, str(tmp / "data"), 0, listed_symbols(port))
            samples = Samples()
            collector = asyncio.run(collect(cfg, args.minutes * 60, samples))
            # the simulated clock started with the exchange, before the collector
            market_t0 = ex_started - samples.t0
        finally:
            ex.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                ex.wait(10)
        lines, ok = verdict(collector, samples, faults, market_t0, args.minutes)
    print("\n".join(lines))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
