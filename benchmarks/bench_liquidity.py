"""Benchmark of the book liquidity definition (``analyzer.analytics.liquidity``) and of the live
analysis window (``analyzer.analytics.levels``).

    python benchmarks/bench_liquidity.py [--books 500] [--ticks 7] [--batch-rows 5000000]

Live: one tick = ``window`` for every book + ``frame`` + one ``liquidity`` call over all of
them, with the collector's defaults (bands 10-200 bps, notionals 10k / 100k / 1M USD, so the
window covers 1M USD; max_levels 5,000; top_n 10). Two markets of ``--books`` books each:

- BTCUSDT density: clones of the real USDⓈ-M BTCUSDT book rebuilt from the recording (~5,000
  bids and ~4,600 asks, ~3,600 + 3,350 levels within ±200 bps: the densest book a collector
  holds), prices shifted a little per clone;
- simulated density: the books of ``analyzer.sim`` (its default world after a few simulated
  seconds: spot, USDⓈ-M and COIN-M books, the inverse ones with their contract sizes), cycled
  and shifted the same way.

Figures per book per tick, median of ``--ticks`` ticks: wall µs for the window (Python), the
Polars part (frame + liquidity) and the total, the CPU µs of the whole tick (all threads; what
"share of a core" means), and that CPU time at one tick per second as a share of one core.

Batch: ``liquidity`` over stored-like frames (Enum side, sorted as stored), best of
``--runs`` runs, for whole analysis windows of the real book (its ~100 window rows per
snapshot, with and without their band remainders ``extra``) and for top-20 snapshots.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import polars as pl
from bench_book import load

from analyzer.analytics.levels import Window, frame, window
from analyzer.analytics.liquidity import SIDE, liquidity
from analyzer.feed.book import OrderBook

BANDS = (10, 25, 50, 100, 200)
NOTIONALS = (10_000, 100_000, 1_000_000)
MAX_LEVELS = 5_000

Levels = list[tuple[float, float]]


def real_levels() -> tuple[Levels, Levels]:
    snap, diffs = load()
    book = OrderBook()
    book.apply_snapshot(snap.bids, snap.asks)
    for d in diffs:
        book.apply(d.b, d.a)
    return book.bids(10**9), book.asks(10**9)


def sim_books() -> list[tuple[Levels, Levels, bool, float]]:
    """(bids, asks, inverse, contract_size) of every book of the simulated default world."""
    from analyzer.sim import MarketModel, default_world

    model = MarketModel(default_world())
    model.advance(model.now_ns + 5 * 10**9)
    out = []
    for inst in model.instruments():
        snap = model.snapshot(inst.venue, inst.symbol)
        out.append((list(snap.bids), list(snap.asks), inst.inverse, inst.contract_size))
    return out


def books_frame(n: int, inverse: list[bool] | None = None,
                contract_size: list[float] | None = None, ts: int = 0) -> pl.DataFrame:
    return pl.DataFrame({
        "book": pl.int_range(n, eager=True, dtype=pl.UInt32),
        "inverse": inverse if inverse is not None else [False] * n,
        "contract_size": contract_size if contract_size is not None else [1.0] * n,
    }).with_columns(
        ts=pl.lit(ts, pl.Int64), venue=pl.lit("binance_usdm"), symbol=pl.lit("BTCUSDT"),
        quote_usd=pl.lit(1.0), in_sync=pl.lit(True),
    )


def live(name: str, shapes: list[tuple[Levels, Levels, bool, float]], n_books: int,
         ticks: int) -> None:
    books, inverse, sizes = [], [], []
    for i in range(n_books):
        bids, asks, inv, cs = shapes[i % len(shapes)]
        f = 1 + i * 1e-6  # a different price grid per clone, same shape
        b = OrderBook()
        b.apply_snapshot([(p * f, s) for p, s in bids], [(p * f, s) for p, s in asks])
        books.append(b)
        inverse.append(inv)
        sizes.append(cs)
    meta = books_frame(n_books, inverse, sizes)
    ids = list(range(n_books))
    cover = max(NOTIONALS)
    win, pol, tot, cpu, rows = [], [], [], [], 0
    for _ in range(ticks):
        c0 = time.process_time()
        t0 = time.perf_counter()
        wins: list[Window] = [
            window(b, BANDS, cover, inv, cs, MAX_LEVELS)
            for b, inv, cs in zip(books, inverse, sizes, strict=True)
        ]
        t1 = time.perf_counter()
        levels, extra = frame(ids, wins, BANDS)
        liquidity(levels, meta, BANDS, NOTIONALS, extra=extra)
        t2 = time.perf_counter()
        cpu.append(time.process_time() - c0)
        win.append(t1 - t0)
        pol.append(t2 - t1)
        tot.append(t2 - t0)
        rows = levels.height
    levels_per_side = statistics.mean(b.bid_count + b.ask_count for b in books) / 2
    med = statistics.median
    per = 1e6 / n_books
    print(f"  {name:<22}{levels_per_side:>8,.0f}{rows / n_books:>8,.0f}{med(win) * per:>9.1f}"
          f"{med(pol) * per:>9.1f}{med(tot) * per:>9.1f}{med(cpu) * per:>9.1f}"
          f"{med(cpu) * 100:>9.1f}%")


def batch(total_rows: int, runs: int) -> None:
    bids, asks = real_levels()
    book = OrderBook()
    book.apply_snapshot(bids, asks)
    w = window(book, BANDS, max(NOTIONALS), False, 1.0, MAX_LEVELS)
    print(f"batch: liquidity() over stored-like frames, best of {runs} runs")
    for name, nb, na, with_extra in (
        ("whole windows + extra", len(w[0]), len(w[2]), True),
        ("whole windows", len(w[0]), len(w[2]), False),
        ("top 20 a side", 20, 20, False),
    ):
        one = pl.DataFrame({
            "side": pl.Series(["bid"] * nb + ["ask"] * na, dtype=SIDE),
            "level": pl.Series([*range(nb), *range(na)], dtype=pl.Int16),
            "price": [p for p, _ in bids[:nb]] + [p for p, _ in asks[:na]],
            "size": [s for _, s in bids[:nb]] + [s for _, s in asks[:na]],
        })
        n = max(1, total_rows // one.height)
        levels = one.select(
            (pl.int_range(one.height * n, dtype=pl.UInt32) // one.height).alias("book"),
            pl.all().gather(pl.int_range(one.height * n) % one.height),
        )
        meta = books_frame(n)
        extra = None
        if with_extra:
            _, extra = frame(list(range(n)), [w] * n, BANDS)
        times, cpus = [], []
        for _ in range(runs):
            c0 = time.process_time()
            t0 = time.perf_counter()
            liquidity(levels, meta, BANDS, NOTIONALS, extra=extra)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        t = min(times)
        print(f"  {name:<24} {levels.height:>10,} rows, {n:>7,} books: {t * 1e3:7.0f} ms = "
              f"{levels.height / t / 1e6:5.1f} M rows/s (CPU {min(cpus) * 1e3:.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--books", type=int, default=500)
    ap.add_argument("--ticks", type=int, default=7)
    ap.add_argument("--batch-rows", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"Python {sys.version.split()[0]}, Polars {pl.__version__}, "
          f"{pl.thread_pool_size()} Polars threads")
    print(f"live: {args.books} books a tick, {args.ticks} ticks; µs per book per tick "
          "(median tick); core = CPU of a tick at 1 Hz")
    print(f"  {'books':<22}{'lv/side':>8}{'rows':>8}{'window':>9}{'polars':>9}{'total':>9}"
          f"{'cpu':>9}{'core':>10}")
    bids, asks = real_levels()
    live("BTCUSDT density", [(bids, asks, False, 1.0)], args.books, args.ticks)
    live("simulated density", sim_books(), args.books, args.ticks)
    batch(args.batch_rows, args.runs)


if __name__ == "__main__":
    main()
