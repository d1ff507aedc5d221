"""Benchmark of the whole live analytics tick on the simulated market's books.

Run: ``python benchmarks/bench_analytics.py [--seconds 20] [--ticks 30]``.

Collects the default simulated world (2 assets x 3 Binance markets, 14 books) through the real
collector for a few seconds, so that its books, tickers and open interest are real state, then
stops the market and times, on that state, what the collector does every second:
``LiveAnalytics.windows`` (cutting every book's analysis window) and ``pipeline.evaluate``
(liquidity, basis, funding, curve, cross-venue figures, anomalies, carry candidates), the
candidates' lifecycle step, and the per-tick total. Medians over ``--ticks`` ticks, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer import config  # noqa: E402
from analyzer.analytics.anomalies import AnomalyState  # noqa: E402
from analyzer.analytics.pipeline import evaluate  # noqa: E402
from analyzer.collector import Collector  # noqa: E402
from analyzer.exchange import LocalExchange, Simulation  # noqa: E402

FEEDS = ("binance_spot", "binance_usdm", "binance_coinm")


async def collect(data: Path, seconds: float) -> Collector:
    sim = Simulation(seed=1, schedule="calm_contango", speed=1.0, wait_for=FEEDS)
    ex = LocalExchange(port=0, rest_weight_limit=1_000_000)
    ex.add_simulation(sim)
    await ex.start()
    by: dict[str, list[str]] = {}
    for inst in sim.model.instruments():
        by.setdefault(inst.venue, []).append(inst.symbol)
    futures = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]
    feeds = [{"venue": v, "symbols": by[v], "ws_url": ex.ws_url(v), "rest_url": ex.base_url(v),
              "open_interest_seconds": 1.0,
              "channels": futures if v != "binance_spot" else futures[:3]} for v in FEEDS]
    cfg = config.parse({"feeds": feeds, "metrics": {"port": 0},
                        "store": {"data_dir": str(data), "database": str(data / "a.duckdb")}})
    collector = Collector(cfg)
    await collector.start()
    await asyncio.sleep(seconds)
    await collector.stop()
    await ex.stop()
    return collector


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20.0, help="collection before timing")
    p.add_argument("--ticks", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        collector = asyncio.run(collect(Path(tmp), args.seconds))
    a = collector.analytics
    cfg, carry = a.cfg, a.carry
    state = AnomalyState(window=f"{round(cfg.anomaly_window_seconds)}s", k=cfg.anomaly_z,
                         min_samples=cfg.anomaly_min_samples)
    win, ev, life, total = [], [], [], []
    now = time.time_ns()
    rows = books = 0
    for i in range(args.ticks):
        ts = now + i * 1_000_000_000
        t0 = time.perf_counter()
        levels, extra, frame = a.windows(ts)
        t1 = time.perf_counter()
        r = evaluate(cfg, carry, levels, extra, frame, a._tickers(ts), a._open_interest(ts),
                     a._instruments(), anomaly_state=state, funding_mean=a._funding_mean(ts))
        t2 = time.perf_counter()
        a.lifecycle.update(r.candidates, ts)
        t3 = time.perf_counter()
        win.append(t1 - t0)
        ev.append(t2 - t1)
        life.append(t3 - t2)
        total.append(t3 - t0)
        rows, books = levels.height, frame.height
    med = statistics.median
    print(f"live analytics tick, {books} books ({rows} window levels), "
          f"{r.candidates.height} carry candidates; medians of {args.ticks} ticks")
    print(f"  windows of every book   {med(win) * 1e3:8.2f} ms  "
          f"({med(win) / books * 1e6:.0f} µs a book)")
    print(f"  pipeline.evaluate       {med(ev) * 1e3:8.2f} ms")
    print(f"  opportunity lifecycle   {med(life) * 1e3:8.2f} ms")
    print(f"  whole tick              {med(total) * 1e3:8.2f} ms  "
          f"= {med(total) * 100:.1f} % of one core at 1 Hz")


if __name__ == "__main__":
    main()
