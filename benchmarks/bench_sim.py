"""Benchmark of the simulated market ``analyzer.sim.MarketModel`` (one core, pure Python).

Run: ``python benchmarks/bench_sim.py [--seconds 60] [--runs 3]``. For each mode the model of
the default world (listed first) runs ``--seconds`` of simulated time, asked for one simulated
second at a time as an exchange would; a figure is the median of ``--runs`` runs, each on a
fresh model after a 2 s warm-up. Reported: events produced per wall-clock second, events per
simulated second and per instrument, and the real-time factor (simulated seconds per wall
second). Modes: ``fast`` (``MarketModel(fast=True)``: 1 s steps, lighter changes, same event
mix) is the throughput figure; ``default`` is the realistic rates (0.1 s steps, ~80 order-book
updates per instrument per second); ``fast, 2 s steps`` shows what bigger steps buy.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable

from analyzer.sim import MarketModel, Rates, default_world
from analyzer.sim.clock import NS

KINDS = ("BookChange", "Quote", "Trade", "DerivativeTicker", "OpenInterest", "Liquidation")


def measure(make: Callable[[], MarketModel], seconds: int, runs: int) -> tuple[float, Counter, int]:
    """(median wall seconds, event counts of the last run, instruments)."""
    walls = []
    counts: Counter = Counter()
    n = 0
    for _ in range(runs):
        model = make()
        n = len(model.instruments())
        t = model.now_ns
        model.advance(t + 2 * NS)  # warm-up: listings, first recentring
        gc.collect()
        counts = Counter()
        t0 = time.perf_counter()
        for s in range(3, seconds + 3):
            for e in model.advance(t + s * NS):
                counts[type(e).__name__] += 1
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), counts, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=60, help="simulated seconds per run")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    world = default_world()
    probe = MarketModel(world)
    per_venue = Counter(i.venue for i in probe.instruments())
    print(f"Default world: {len(world.assets)} assets x {len(world.venues)} venues, "
          f"{len(probe.instruments())} instruments; Python {sys.version.split()[0]}")
    for v in world.venues:
        syms = [i.symbol for i in probe.instruments() if i.venue == v.feed]
        print(f"  {v.feed:<14} {per_venue[v.feed]:>2}  {' '.join(syms)}")
    print()

    modes = [
        ("fast", lambda: MarketModel(world, seed=1, fast=True)),
        ("default", lambda: MarketModel(world, seed=1)),
        ("fast, 2 s steps",
         lambda: MarketModel(default_world(Rates.fast(step_s=2.0)), seed=1)),
    ]
    header = (f"{'mode':<16} {'events/s':>10} {'x real time':>12} {'events/sim s':>13}  "
              + "  ".join(f"{k[:10]:>10}" for k in KINDS))
    print(f"{args.seconds} simulated seconds a run, median of {args.runs} runs; "
          "per-kind columns: events per instrument per simulated second")
    print(header)
    print("-" * len(header))
    for name, make in modes:
        wall, counts, n = measure(make, args.seconds, args.runs)
        total = sum(counts.values())
        per_kind = "  ".join(f"{counts[k] / n / args.seconds:>10.2f}" for k in KINDS)
        print(f"{name:<16} {total / wall:>10,.0f} {args.seconds / wall:>11,.0f}x "
              f"{total / args.seconds:>13,.0f}  {per_kind}")


if __name__ == "__main__":
    main()
