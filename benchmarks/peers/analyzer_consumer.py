"""The analyzer's collector, unchanged, as the consumer ``bench_peers.py`` compares with the peers
(run in the project's environment; argument: the bench's JSON spec).

It stores everything (trades, quotes, book snapshots into Parquet/DuckDB), keeps the books and,
where bookTicker is subscribed, checks each book against it (as ``bench_pipeline.py``). Frames
and the last frame's time are the collector's own per-stream counters; the first frame is seen
by polling them every millisecond while none has arrived (the replay holds its first frame
1.5 s, so the wait costs nothing measured). CPU is the whole process's (the Parquet writer
thread included) over the span the peers are measured on, from the first frame to the last one
handled; the final flush at stop (the rows still buffered written to Parquet) is reported
apart, since the peers keep theirs in memory.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from meter import report, spec

from analyzer import config
from analyzer.collector import Collector


async def main() -> None:
    s = spec()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.parse({
            "feeds": [{"venue": s["feed"], "symbols": [s["symbol"]], "channels": s["channels"],
                       "options": s.get("analyzer_options", {}),
                       "ws_url": s["ws"], "rest_url": s["rest"]}],
            "store": {"data_dir": f"{tmp}/data", "database": f"{tmp}/data/a.duckdb",
                      "raw_capture": False},
            "metrics": {"port": 0},
            "analytics": {"enabled": False},
            "log_level": "ERROR",
        })
        collector = Collector(cfg)
        await collector.start()
        runner = collector.runners[0]
        routes = list(runner.feed.routes.values())
        deadline = time.monotonic() + s["timeout_s"]
        while not any(r.frames for r in routes):
            await asyncio.sleep(0.001)
            if time.monotonic() > deadline:
                raise TimeoutError("no frame")
        cpu0 = time.process_time()
        first_ns = min(r.last_ns for r in routes if r.last_ns)
        last_n, changed, cpu_end = -1, time.monotonic(), cpu0
        while True:
            await asyncio.sleep(0.02)
            n = sum(r.frames for r in routes)
            if n != last_n:
                last_n, changed, cpu_end = n, time.monotonic(), time.process_time()
            elif time.monotonic() - changed > s["quiet_s"]:
                break
        last_ns = max(r.last_ns for r in routes)
        stats = runner.books.stats
        top = {}
        for sym, sb in runner.books.books.items():
            bids, asks = sb.book.bids(1), sb.book.asks(1)
            if bids and asks:
                top[sym] = [float(bids[0][0]), float(asks[0][0])]
        in_sync = sum(sb.in_sync for sb in runner.books.books.values())
        flush0 = time.process_time()
        await collector.stop()  # the final flush, reported apart
        flush = time.process_time() - flush0
        rows = sum(collector.store.stats["rows_written"].values())
    report({"frames": last_n, "wall_s": (last_ns - first_ns) / 1e9, "cpu_s": cpu_end - cpu0,
            "flush_cpu_s": flush, "top": top,
            "rows": rows, "bbo": stats.bbo_compared, "bbo_bad": stats.bbo_mismatched,
            "gaps": stats.gaps, "checksums": stats.checksums_verified,
            "checksums_failed": stats.checksums_failed, "in_sync": in_sync,
            "overrides": [f"ws_url = {s['ws']}, rest_url = {s['rest']} (its config keys)"]})


if __name__ == "__main__":
    asyncio.run(main())
