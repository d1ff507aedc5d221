"""The whole hot path on the BTCUSDT 2024-08-08 USDⓈ-M recording (94k frames: 6,551 depth diffs,
21,313 trades, 66,089 bookTickers).

    python benchmarks/bench_pipeline.py [--runs 3]

1. Online: the local exchange in a child process (its own core) sends the recording as fast as
   the collector takes it over a real websocket on loopback; the collector, unchanged, decodes,
   keeps the book (reading best bid/ask on every update, checking it against bookTicker),
   and stores trades, quotes and book snapshots in Parquet/DuckDB. Frames per second, CPU µs
   per frame of the collector's event-loop thread (the one core the hot path runs on) and of
   the whole process (plus the writer thread), rows per second into the store, peak memory.
2. Offline, the same frames in memory, to split the cost by stage: decode, book, store; the
   rest of the online cost is receiving (websockets + asyncio).
Medians over --runs runs, all in one invocation (the machines are noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer import config  # noqa: E402
from analyzer.collector import Collector  # noqa: E402
from analyzer.events import BookChange  # noqa: E402
from analyzer.feed.books import BookKeeper  # noqa: E402
from analyzer.store import Store  # noqa: E402
from analyzer.venues.binance import MARKETS, BinanceFeed  # noqa: E402

RECORDING = ROOT / "tests" / "fixtures" / "binance" / "usdm_2024" / "btcusdt_20240808.gz"
CHANNELS = ["depth", "trades", "bookTicker"]


def load() -> list[bytes]:
    with gzip.open(RECORDING, "rb") as f:
        return [line.rstrip(b"\n").split(b" ", 1)[1] for line in f]


class NullSink:
    def on_book(self, ev: object) -> None: ...
    on_trade = on_quote = on_ticker = on_liquidation = on_book

    def on_trade_gap(self, *a: object) -> None: ...
    def on_duplicate(self) -> None: ...


class StageSink(NullSink):
    def __init__(self, keeper: BookKeeper | None, store: Store | None) -> None:
        self.keeper, self.store = keeper, store

    def on_book(self, ev: BookChange) -> None:
        if self.keeper is not None:
            self.keeper.on_change(ev)

    def on_quote(self, ev: object) -> None:
        if self.store is not None:
            self.store.add(ev)
        if self.keeper is not None:
            self.keeper.on_venue_quote(ev)  # type: ignore[arg-type]

    def on_trade(self, ev: object) -> None:
        if self.store is not None:
            self.store.add(ev)


def offline(frames: list[bytes], with_book: bool, with_store: bool, tmp: Path) -> float:
    """Seconds of loop-thread CPU to push all frames through the chosen stages."""
    store = None
    if with_store:
        store = Store(tmp / "data", tmp / "data" / "a.duckdb", compact_every_s=None)
        store.open()
    sink = StageSink(None, store)
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], CHANNELS, sink,
                       options={"depth_speed": "0ms"})
    if with_book:
        add = store.add if store is not None else (lambda q: None)
        sink.keeper = BookKeeper("binance_usdm", ["BTCUSDT"], feed.rules, lambda s: None,
                                 lambda g: None, add)
        sink.keeper.start()
    decode = feed.decode
    t0 = time.thread_time()
    for f in frames:
        if f.startswith(b'{"lastUpdateId"'):
            if sink.keeper is not None:
                sink.keeper.on_snapshot(feed.decode_snapshot(f, "BTCUSDT", 0))
            continue
        decode(f, 1)
    spent = time.thread_time() - t0
    if store is not None:
        store.close()
    return spent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def depth_only_recording(tmp: Path) -> Path:
    """The recording with only its depth diffs (and snapshot): a stream of diffs alone."""
    out = tmp / "depth_only" / RECORDING.name
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(RECORDING, "rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
        for line in src:
            frame = line.split(b" ", 1)[1]
            if b"@depth" in frame[:40] or frame.startswith(b'{"lastUpdateId"'):
                dst.write(line)
    return out.parent


def online(tmp: Path, channels: list[str], raw_capture: bool,
           recording: Path = RECORDING.parent) -> dict[str, float]:
    port = free_port()
    exchange = subprocess.Popen(
        [sys.executable, "-m", "analyzer.exchange", "--replay", str(recording),
         "--speed", "0", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        base = f"127.0.0.1:{port}/binance_usdm"
        cfg = config.parse({
            "feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"],
                       "options": {"depth_speed": "0ms"},
                       "channels": channels, "ws_url": f"ws://{base}",
                       "rest_url": f"http://{base}"}],
            "store": {"data_dir": str(tmp / "data"), "database": str(tmp / "data" / "a.duckdb"),
                      "raw_capture": raw_capture},
            "metrics": {"port": 0},
            "log_level": "WARNING",
        })
        return asyncio.run(collect(cfg))
    finally:
        exchange.terminate()
        exchange.wait(5)


async def collect(cfg: config.Config) -> dict[str, float]:
    """The collector over a replay, measured over its data window only: from the first poll
    that sees frames (``n0`` of them by then, the newest at ``t0``; the loop thread's CPU
    then) to the last frame, so that neither the start-up (connect, listing, subscriptions,
    snapshots) nor the wait for the stream to go quiet count, for a short feed as for a long
    one. Polls every millisecond."""
    collector = Collector(cfg)
    await collector.start()
    runner = collector.runners[0]
    routes = list(runner.feed.routes.values())
    n0 = t0 = 0
    cpu0 = cpu_last = 0.0
    proc0 = time.process_time()
    last_n, quiet_since = -1, time.monotonic()
    while True:
        await asyncio.sleep(0.001)
        n = sum(r.frames for r in routes)
        if n and not t0:
            n0, t0 = n, max(r.last_ns for r in routes)
            cpu0 = cpu_last = time.thread_time()
        if n != last_n:
            last_n, quiet_since = n, time.monotonic()
            if t0:
                cpu_last = time.thread_time()
        elif n and time.monotonic() - quiet_since > 1.0:
            break
    last_ns = max(r.last_ns for r in routes)
    t_flush = time.perf_counter()
    await collector.stop()  # final flush: part of the cost of getting rows into the store
    flush_s = time.perf_counter() - t_flush
    proc = time.process_time() - proc0
    window = max(last_n - n0, 1)
    wall = max(last_ns - t0, 1) / 1e9
    rows = sum(collector.store.stats["rows_written"].values())
    return {
        "frames": last_n, "wall": wall, "fps": window / wall,
        "cpu_us": (cpu_last - cpu0) / window * 1e6,
        "proc_us": proc / last_n * 1e6, "rows": rows, "rows_per_s": rows / (wall + flush_s),
        "bbo": runner.books.stats.bbo_compared, "bbo_bad": runner.books.stats.bbo_mismatched,
        "gaps": runner.books.stats.gaps, "checksums": runner.books.stats.checksums_verified,
        "checksums_failed": runner.books.stats.checksums_failed,
        "in_sync": sum(sb.in_sync for sb in runner.books.books.values()),
        "books": len(runner.books.books),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    frames = load()
    depth_frames = [f for f in frames if b"@depth" in f[:40] or f.startswith(b'{"lastUpdate')]
    n = len(frames) - 1
    print(f"recording: {n:,} frames ({len(depth_frames) - 1:,} depth diffs); "
          f"{args.runs} runs, medians\n")

    stages: dict[str, list[float]] = {"decode": [], "decode+book": [], "decode+book+store": [],
                                      "depth only": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            stages["decode"].append(offline(frames, False, False, Path(d)))
            stages["decode+book"].append(offline(frames, True, False, Path(d)))
            stages["decode+book+store"].append(offline(frames, True, True, Path(d)))
            stages["depth only"].append(offline(depth_frames, True, False, Path(d)))
    med = {k: statistics.median(v) for k, v in stages.items()}
    decode_us = med["decode"] / n * 1e6
    book_us = (med["decode+book"] - med["decode"]) / n * 1e6
    store_us = (med["decode+book+store"] - med["decode+book"]) / n * 1e6

    runs: dict[str, list[dict[str, float]]] = {"all": [], "capture": [], "depth": []}
    with tempfile.TemporaryDirectory() as keep:
        depth_rec = depth_only_recording(Path(keep))
        for _ in range(args.runs):
            for key, channels, capture, rec in (
                ("all", CHANNELS, False, RECORDING.parent),
                ("capture", CHANNELS, True, RECORDING.parent),
                ("depth", ["depth"], False, depth_rec),
            ):
                with tempfile.TemporaryDirectory() as d:
                    runs[key].append(online(Path(d), channels, capture, rec))

    def m(key: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[key])

    total_us = m("all", "cpu_us")
    print("online, over a real websocket (exchange in another process):")
    print(f"  frames per second             {m('all', 'fps'):>10,.0f}   (target 100,000)")
    print(f"  depth diffs alone per second  {m('depth', 'fps'):>10,.0f}   (target 20,000)")
    print(f"  with raw capture on           {m('capture', 'fps'):>10,.0f}   frames/s")
    print(f"  loop-thread CPU per frame     {total_us:>10.2f} µs")
    print(f"  process CPU per frame         {m('all', 'proc_us'):>10.2f} µs  (incl. writer thread)")
    print(f"  rows into the store per second{m('all', 'rows_per_s'):>10,.0f}   "
          f"({m('all', 'rows'):,.0f} rows incl. the final flush)")
    print(f"  bookTickers checked / differed {m('all', 'bbo'):>9,.0f} / {m('all', 'bbo_bad'):.0f}")
    print("\nper frame by stage (µs, loop thread):")
    print(f"  receive (socket, frames, loop){total_us - decode_us - book_us - store_us:>10.2f}")
    print(f"  decode (msgspec)              {decode_us:>10.2f}")
    print(f"  book (diffs, BBO check)       {book_us:>10.2f}")
    print(f"  store (buffering)             {store_us:>10.2f}")
    print(f"  offline decode+book of depth  {n_per_s(len(depth_frames), med['depth only']):>10,.0f}"
          " diffs/s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (RSS, whole benchmark process) {rss:,.0f} MB")


def n_per_s(n: int, seconds: float) -> float:
    return n / seconds


if __name__ == "__main__":
    main()
