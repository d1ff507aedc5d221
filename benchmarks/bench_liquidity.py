"""Benchmark of the book liquidity definition (``analyzer.analytics.liquidity``) and of the live
analysis window (``analyzer.analytics.levels``).

    python benchmarks/bench_liquidity.py [--books 500] [--ticks 7] [--batch-rows 5000000]

Live: one tick = ``window`` for every book + ``frame`` + one ``liquidity`` call over all of
them, with the collector's defaults (bands 10-200 bps, notionals 10k / 100k / 1M USD, so the
window covers 1M USD; max_levels 5,000; top_n 10). Between two ticks every book takes one
second of its market's real traffic (not timed), so each tick finds the books changed and out
of the CPU caches, as a live one does. Three markets of ``--books`` books each:

- BTCUSDT density: clones of the real USDⓈ-M BTCUSDT book rebuilt from the recording (~5,000
  bids and ~4,600 asks, ~3,600 + 3,350 levels within ±200 bps: the densest book a collector
  holds), prices shifted a little per clone; between ticks, the recording's next 19 diffs (its
  mean rate: 6,547 diffs in 345 s);
- simulated density: the books of ``analyzer.sim`` (its default world after a few simulated
  seconds: spot, USDⓈ-M and COIN-M books, the inverse ones with their contract sizes), cycled
  and shifted the same way; between ticks, one simulated second of each book's diffs;
- BTCUSDT, 500 a side: the first market with each book cut to its best 500 levels a side after
  every second of traffic, as the deepest streams of Bybit (``orderbook.500``) and OKX
  (``books``, 400) keep them.

Figures per book per tick, median of ``--ticks`` ticks: wall µs for the window (Python), the
Polars part (frame + liquidity) and the total, the CPU µs of the whole tick (all threads; what
"share of a core" means), and that CPU time at one tick per second as a share of one core. Last,
the time of one full garbage collection with these books in memory (a pause the whole process
takes every so often: what the order book's untracked levels keep short).

Batch: ``liquidity`` over stored-like frames (Enum side, sorted as stored), best of
``--runs`` runs, for whole analysis windows of the real book (its ~100 window rows per
snapshot, with and without their band remainders ``extra``) and for top-20 snapshots.
"""

from __future__ import annotations

import argparse
import gc
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
Diff = tuple[Levels, Levels]
# (bids, asks, inverse, contract_size) of a book and, per tick, the diffs it takes before it
Shape = tuple[Levels, Levels, bool, float, list[list[Diff]]]
DIFFS_A_SECOND = 19


def real_levels(skip: int = 0) -> tuple[Levels, Levels, list[Diff]]:
    """The real BTCUSDT book after all its diffs but the last ``skip``, and those."""
    snap, diffs = load()
    book = OrderBook()
    book.apply_snapshot(snap.bids, snap.asks)
    cut = len(diffs) - skip
    for d in diffs[:cut]:
        book.apply(d.b, d.a)
    return book.bids(10**9), book.asks(10**9), [(d.b, d.a) for d in diffs[cut:]]


def real_shape(ticks: int) -> Shape:
    bids, asks, rest = real_levels(ticks * DIFFS_A_SECOND)
    per_tick = [rest[t * DIFFS_A_SECOND:(t + 1) * DIFFS_A_SECOND] for t in range(ticks)]
    return bids, asks, False, 1.0, per_tick


def sim_shapes(ticks: int) -> list[Shape]:
    """Every book of the simulated default world, and one simulated second of its diffs per
    tick."""
    from analyzer.events import BookChange
    from analyzer.sim import MarketModel, default_world

    model = MarketModel(default_world())
    model.advance(model.now_ns + 5 * 10**9)
    insts = model.instruments()
    index = {(i.venue, i.symbol): n for n, i in enumerate(insts)}
    out: list[Shape] = []
    for inst in insts:
        snap = model.snapshot(inst.venue, inst.symbol)
        out.append((list(snap.bids), list(snap.asks), inst.inverse, inst.contract_size, []))
    for _ in range(ticks):
        for shape in out:
            shape[4].append([])
        for ev in model.advance(model.now_ns + 10**9):
            if isinstance(ev, BookChange) and not ev.is_snapshot:
                out[index[ev.venue, ev.symbol]][4][-1].append((ev.bids, ev.asks))
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


def scaled(levels: Levels, f: float) -> Levels:
    return [(p * f, s) for p, s in levels]


def trim(book: OrderBook, cap: int) -> None:
    """Drop the levels beyond the best ``cap`` of each side, as a venue's depth-capped stream
    does."""
    book.apply([(p, 0.0) for p, _ in book.bids(book.bid_count)[cap:]],
               [(p, 0.0) for p, _ in book.asks(book.ask_count)[cap:]])


def live(name: str, shapes: list[Shape], n_books: int, ticks: int, cap: int = 0) -> None:
    books, inverse, sizes = [], [], []
    for i in range(n_books):
        bids, asks, inv, cs, _ = shapes[i % len(shapes)]
        f = 1 + i * 1e-6  # a different price grid per clone, same shape
        b = OrderBook()
        b.apply_snapshot(scaled(bids[:cap or None], f), scaled(asks[:cap or None], f))
        books.append(b)
        inverse.append(inv)
        sizes.append(cs)
    meta = books_frame(n_books, inverse, sizes)
    ids = list(range(n_books))
    cover = max(NOTIONALS)
    win, pol, tot, cpu, rows, diffs = [], [], [], [], 0, 0
    for t in range(ticks):
        for i, b in enumerate(books):  # a second of traffic, not timed
            f = 1 + i * 1e-6
            for bids, asks in shapes[i % len(shapes)][4][t]:
                b.apply(scaled(bids, f), scaled(asks, f))
                diffs += 1
            if cap:
                trim(b, cap)
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
    t0 = time.perf_counter()
    gc.collect()
    full_gc = time.perf_counter() - t0
    med = statistics.median
    per = 1e6 / n_books
    print(f"  {name:<22}{levels_per_side:>8,.0f}{rows / n_books:>8,.0f}"
          f"{diffs / n_books / ticks:>8.1f}{med(win) * per:>9.1f}"
          f"{med(pol) * per:>9.1f}{med(tot) * per:>9.1f}{med(cpu) * per:>9.1f}"
          f"{med(cpu) * 100:>9.1f}%{full_gc * 1e3:>9.0f}")


def batch(total_rows: int, runs: int) -> None:
    bids, asks, _ = real_levels()
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
    print(f"  {'books':<22}{'lv/side':>8}{'rows':>8}{'diffs/s':>8}{'window':>9}{'polars':>9}"
          f"{'total':>9}{'cpu':>9}{'core':>10}{'gc ms':>9}")
    live("BTCUSDT density", [real_shape(args.ticks)], args.books, args.ticks)
    live("simulated density", sim_shapes(args.ticks), args.books, args.ticks)
    live("BTCUSDT, 500 a side", [real_shape(args.ticks)], args.books, args.ticks, cap=500)
    batch(args.batch_rows, args.runs)


if __name__ == "__main__":
    main()
