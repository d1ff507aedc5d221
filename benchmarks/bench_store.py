"""Storage benchmark: prints the figures quoted for analyzer.store.

    python benchmarks/bench_store.py [--rows 1000000]

Measures: the cost of Store.add() on the caller's thread (trades, quotes), end-to-end rows per
second (add -> flush -> visible in a read-only DuckDB query), the writer's flush duration for
50k rows, compaction, and RawCapture.write() per frame (frames of a real Binance recording).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from analyzer.events import Quote, Trade
from analyzer.store import Store, research
from analyzer.store.capture import RawCapture, iter_capture

T0 = 1_723_161_255_030_314_667
FIXTURE = (
    Path(__file__).resolve().parents[1] / "tests/fixtures/binance/usdm_2024/btcusdt_20240808.gz"
)


def trades(n: int, offset: int = 0) -> list[Trade]:
    syms = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
    return [
        Trade(
            "binance_usdm",
            syms[i % 4],
            T0 + i * 1000,
            T0 + i * 1000 + 5,
            str(offset + i),
            60000.0 + (i % 100) * 0.1,
            0.001 * (i % 7 + 1),
            "buy" if i % 3 else "sell",
        )
        for i in range(n)
    ]


def quotes(n: int) -> list[Quote]:
    return [
        Quote(
            "binance_usdm",
            "BTCUSDT",
            T0 + i * 1000,
            T0 + i * 1000 + 5,
            60000.0,
            1.5,
            60000.1,
            2.5,
            5_000_000_000 + i,
        )
        for i in range(n)
    ]


def add_cost_us(tmp: Path, events: list, *, flush_rows: int) -> float:
    """Mean µs per add() over ``events`` (best of 3 runs, fresh store each run)."""
    best = float("inf")
    for run in range(3):
        d = tmp / f"add-{flush_rows}-{type(events[0]).__name__}-{run}"
        with Store(
            d / "data", d / "a.duckdb", flush_rows=flush_rows, compact_every_s=None
        ) as store:
            add = store.add
            gc.collect()
            t = time.perf_counter_ns()
            for e in events:
                add(e)
            dt = time.perf_counter_ns() - t
        best = min(best, dt / len(events) / 1000)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.rows
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        tr, qu = trades(n), quotes(n)
        print(f"rows per run: {n:,}  (python {sys.version.split()[0]})")

        # 1. add(): buffering only, and with the writer flushing every 50k rows meanwhile
        #    (the writer thread's conversion competes for the GIL, which add() then feels).
        print(
            f"add() trade, buffer only:           {add_cost_us(tmp, tr, flush_rows=10**9):.3f} µs"
        )
        print(
            f"add() quote, buffer only:           {add_cost_us(tmp, qu, flush_rows=10**9):.3f} µs"
        )
        print(
            f"add() trade, flushing every 50k:    {add_cost_us(tmp, tr, flush_rows=50_000):.3f} µs"
        )
        print(
            f"add() quote, flushing every 50k:    {add_cost_us(tmp, qu, flush_rows=50_000):.3f} µs"
        )

        # 2. End to end: add -> flush -> visible to a read-only reader.
        d = tmp / "e2e"
        for label, events in (("trades", tr), ("quotes", qu)):
            with Store(d / label / "data", d / label / "a.duckdb", compact_every_s=None) as store:
                t = time.perf_counter()
                for e in events:
                    store.add(e)
                store.flush()
                con = research.connect(store.db_path)
                (count,) = con.execute(f"SELECT count(*) FROM {label}").fetchone()
                con.close()
                dt = time.perf_counter() - t
                assert count == n, count
                segs = store.stats["segments_written"][label]
                flush_s = store.stats["flush_seconds_total"] / max(1, store.stats["flushes"])
                print(
                    f"end to end {label}: {n / dt:,.0f} rows/s ({dt:.2f} s, {segs} segments; "
                    f"mean flush of 50k rows {flush_s * 1e3:.1f} ms)"
                )

        # 3. Flush duration for 50k rows (convert + dedup + write, on the writer thread).
        for label, events in (("trades", trades(50_000, offset=10**8)), ("quotes", quotes(50_000))):
            durs = []
            for run in range(5):
                d = tmp / f"flush-{label}-{run}"
                with Store(
                    d / "data", d / "a.duckdb", flush_rows=10**9, compact_every_s=None
                ) as store:
                    for e in events:
                        store.add(e)
                    store.flush()
                    durs.append(store.stats["last_flush_seconds"])
            print(
                f"flush 50k {label}: median {statistics.median(durs) * 1e3:.1f} ms "
                f"(min {min(durs) * 1e3:.1f})"
            )

        # 4. Read and compaction over many small segments.
        d = tmp / "compact"
        with Store(d / "data", d / "a.duckdb", flush_rows=10_000, compact_every_s=None) as store:
            for e in tr[:500_000]:
                store.add(e)
            store.flush()
            segs = store.stats["segments_written"]["trades"]
            t = time.perf_counter()
            research.query(store.db_path, "SELECT * FROM trades_1m")
            q1 = time.perf_counter() - t
            t = time.perf_counter()
            res = store.compact(older_than_s=0)
            c = time.perf_counter() - t
            t = time.perf_counter()
            research.query(store.db_path, "SELECT * FROM trades_1m")
            q2 = time.perf_counter() - t
        print(
            f"trades_1m over 500k trades: {q1 * 1e3:.0f} ms in {segs} segments, "
            f"{q2 * 1e3:.0f} ms after compaction ({res.files_merged} files -> 1 in {c:.2f} s)"
        )

        # 5. Raw capture, frames of a real recording. (a) the caller's cost per write(),
        #    size-triggered hand-offs only (flush_seconds is ts-based, and a replay at full
        #    speed would cross a "second" every ~300 frames); (b) the compressor's sustained
        #    throughput; (c) a replay at full speed with defaults, where zlib is the bound
        #    and write() blocks (backpressure) rather than drop.
        frames = list(iter_capture(FIXTURE))
        total = sum(len(f) + 21 for _, f in frames)
        caller, wall_total, replay = float("inf"), float("inf"), float("inf")
        for run in range(3):
            cap = RawCapture(tmp / f"cap{run}", "binance_usdm", flush_seconds=1e9)
            write = cap.write
            t, c = time.perf_counter(), time.thread_time()
            for ts, f in frames:
                write(ts, f)
            caller = min(caller, (time.thread_time() - c) / len(frames) * 1e6)
            cap.close()
            wall_total = min(wall_total, time.perf_counter() - t)
            cap = RawCapture(tmp / f"capd{run}", "binance_usdm")
            write = cap.write
            t = time.perf_counter()
            for ts, f in frames:
                write(ts, f)
            replay = min(replay, (time.perf_counter() - t) / len(frames) * 1e6)
            cap.close()
        out = sum(p.stat().st_size for p in (tmp / "cap0").rglob("*.gz"))
        print(
            f"capture write(): {caller:.3f} µs of caller CPU per frame ({len(frames):,} frames,"
            f" {total / len(frames):.0f} B lines, gzip {total / out:.1f}x)"
        )
        print(
            f"capture sustained: {total / wall_total / 1e6:.0f} MB/s = "
            f"{len(frames) / wall_total:,.0f} frames/s (level 6); full-speed replay with "
            f"defaults: {replay:.2f} µs per write() (compressor-bound, blocking)"
        )


if __name__ == "__main__":
    main()
