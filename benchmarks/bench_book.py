"""Benchmark of ``analyzer.feed.book.OrderBook`` (where the README's book figures come from).

Run: ``python benchmarks/bench_book.py``. Every figure is the median of several runs, each run
timing many back-to-back calls with ``time.perf_counter_ns`` (so a figure includes the Python call
overhead a caller pays). The read benchmarks use the real USDⓈ-M BTCUSDT book rebuilt from the
recording, trimmed or padded with far-away asks (through ``apply``) to exactly 5,000 levels a
side: that keeps the real level density near the mid, which is what ``depth`` and ``walk`` cost
depends on (~4,150 levels within ±100 bps). The apply benchmark replays every in-sequence diff of
the recording, decoded up front with msgspec, so only the book is timed.
"""

from __future__ import annotations

import gzip
import statistics
import sys
import time
from collections.abc import Callable
from itertools import pairwise, repeat
from pathlib import Path

import msgspec

from analyzer.feed.book import OrderBook

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "tests/fixtures/binance/usdm_2024/btcusdt_20240808.gz"
LEVELS = 5_000
RUNS = 7


class _Line(msgspec.Struct):
    stream: str = ""
    data: msgspec.Raw = msgspec.Raw()
    # the one bare REST snapshot line
    lastUpdateId: int = -1
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []


class _Depth(msgspec.Struct):
    U: int  # first update id in the diff
    u: int  # last update id in the diff
    pu: int  # previous diff's u
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]


def load() -> tuple[_Line, list[_Depth]]:
    """The snapshot and the diffs that continue it (stale ones dropped, sequence checked)."""
    line_dec = msgspec.json.Decoder(_Line, strict=False)  # strict=False: "61800.20" -> float
    depth_dec = msgspec.json.Decoder(_Depth, strict=False)
    snap = None
    diffs = []
    with gzip.open(RECORDING, "rb") as f:
        for raw in f:
            line = line_dec.decode(raw.split(b" ", 1)[1])
            if line.lastUpdateId >= 0:
                snap = line
            elif line.stream.endswith("@depth@0ms"):
                diffs.append(depth_dec.decode(line.data))
    assert snap is not None
    kept = [d for d in diffs if d.u >= snap.lastUpdateId]
    assert kept[0].U <= snap.lastUpdateId <= kept[0].u
    assert all(b.pu == a.u for a, b in pairwise(kept))
    return snap, kept


def median_ns(fn: Callable[[], object], reps: int) -> float:
    """Median over RUNS of the mean time of one call in a run of ``reps`` calls."""
    runs = []
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        for _ in repeat(None, reps):
            fn()
        runs.append((time.perf_counter_ns() - t0) / reps)
    return statistics.median(runs)


def big_book(snap: _Line, diffs: list[_Depth]) -> OrderBook:
    """The book at the end of the replay, brought to exactly LEVELS a side through apply()
    (so its internal layout is the one a live book has, not a freshly built one)."""
    book = OrderBook()
    book.apply_snapshot(snap.bids, snap.asks)
    for d in diffs:
        book.apply(d.b, d.a)
    extra_bids = [(p, 0.0) for p, _ in book.bids(10**9)[LEVELS:]]
    far = book.asks(10**9)[-1][0]
    more_asks = [(far + 10.0 * (i + 1), 0.5) for i in range(LEVELS - book.ask_count)]
    book.apply(extra_bids, more_asks)
    assert book.bid_count == book.ask_count == LEVELS
    return book


def main() -> None:
    snap, diffs = load()
    book = big_book(snap, diffs)
    mid = book.mid()
    assert mid is not None
    rows: list[tuple[str, str]] = []

    def row(name: str, ns: float, note: str = "") -> None:
        text = f"{ns / 1000:8.3f} µs" if ns >= 1000 else f"{ns:8.0f} ns"
        rows.append((name, f"{text}  {note}".rstrip()))

    row("top()", median_ns(book.top, 200_000))
    row("best_bid()", median_ns(book.best_bid, 200_000))
    row("mid()", median_ns(book.mid, 200_000))
    for bps in (10, 25, 100, 200):
        lo, hi = mid * (1 - bps / 1e4), mid * (1 + bps / 1e4)
        n = len([p for p, _ in book.bids(LEVELS) if p >= lo])
        n += len([p for p, _ in book.asks(LEVELS) if p <= hi])
        row(f"depth({bps})", median_ns(lambda b=bps: book.depth(b), 2_000), f"{n} levels in band")
    for usd in (10_000, 100_000, 1_000_000):
        ns = median_ns(lambda u=usd: book.walk("buy", u), 20_000)
        row(f"walk(buy, {usd:,} USD)", ns, f"slippage {book.slippage_bps('buy', usd):.2f} bps")
    row("imbalance(10)", median_ns(lambda: book.imbalance(10), 100_000))
    row("bids(20)", median_ns(lambda: book.bids(20), 100_000))

    # apply(): the whole in-sequence replay, one timing per run
    levels = [len(d.b) + len(d.a) for d in diffs]
    runs = []
    replay = OrderBook()
    for _ in range(RUNS):
        replay.apply_snapshot(snap.bids, snap.asks)
        apply = replay.apply
        t0 = time.perf_counter_ns()
        for d in diffs:
            apply(d.b, d.a)
        runs.append((time.perf_counter_ns() - t0) / len(diffs))
    per_diff = statistics.median(runs)
    row(
        "apply(diff), replay mean",
        per_diff,
        f"{1e9 / per_diff:,.0f} diffs/s over {len(diffs)} diffs "
        f"({statistics.median(levels):.0f} levels median, {max(levels)} max)",
    )
    row("apply, per level", per_diff * len(diffs) / sum(levels))
    # each diff timed on its own (adds ~0.1 µs of timer overhead): the typical diff
    single: list[list[int]] = [[] for _ in diffs]
    for _ in range(RUNS):
        replay.apply_snapshot(snap.bids, snap.asks)
        for d, times in zip(diffs, single, strict=True):
            t0 = time.perf_counter_ns()
            apply(d.b, d.a)
            times.append(time.perf_counter_ns() - t0)
    typical = [statistics.median(t) for t, n in zip(single, levels, strict=True) if 30 <= n <= 38]
    row("apply(diff), 30-38 levels", statistics.median(typical), f"median of {len(typical)} diffs")

    print(f"OrderBook, {LEVELS:,} levels a side, mid {mid:,.2f}; Python {sys.version.split()[0]}")
    width = max(len(n) for n, _ in rows)
    for name, text in rows:
        print(f"  {name:<{width}}  {text}")


if __name__ == "__main__":
    main()
