"""Benchmark of ``analyzer.analytics.basis`` / ``anomalies`` (live cost per tick, batch rows/s).

    python benchmarks/bench_basis.py [--hours 24] [--ticks 60]

Synthetic market: 2 exchanges x (spot, USDⓈ-M, COIN-M) = 6 venues, 2 bases, 5 instruments per
venue and base (spot: 5 quote currencies; USDⓈ-M: 2 perps + 3 quarterlies; COIN-M: 1 perp + 4
quarterlies) = 60 state rows per 1 s tick, 3 notionals of tradable VWAPs (180 rows). Prices
wiggle deterministically; about 1 % of book samples are out of sync.

Live: per tick, ``basis`` (with vwaps) + ``constant_maturity`` + ``cross_venue`` +
``series_from_basis`` + ``AnomalyState.update`` (the new tick's series only), median over
``--ticks`` ticks after a 30 min warm-up. Anomalies alone, per tick: ``AnomalyState.update`` vs
the older ``anomalies(history, since=now)`` over a trailing history frame (plus the concat and trim
of that frame the caller pays), 30 min and 60 min (two windows, what makes it equal batch).
Batch: the same functions over ``--hours`` of 1 s samples, rows/s of state rows and of series rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import polars as pl

from analyzer.analytics.anomalies import AnomalyState, anomalies, series_from_basis
from analyzer.analytics.basis import basis, constant_maturity, cross_venue

S = 10**9
DAY = 86_400 * S
T0 = 1_751_328_000 * S  # 2025-07-01 00:00 UTC
NOTIONALS = [10_000.0, 100_000.0, 1_000_000.0]
WINDOW = "30m"


def instruments() -> pl.DataFrame:
    rows: list[tuple] = []
    for ex in ("binance", "exb"):
        for base, px in (("BTC", 60_000.0), ("ETH", 3_000.0)):
            sp, um, cm = f"{ex}_spot", f"{ex}_usdm", f"{ex}_coinm"
            rows += [(ex, sp, f"{base}{q}", base, q, "spot", False, 1.0, None, px)
                     for q in ("USDT", "USDC", "FDUSD", "USD", "TUSD")]
            rows += [(ex, um, f"{base}{q}", base, q, "perpetual", False, 1.0, None, px)
                     for q in ("USDT", "USDC")]
            rows += [(ex, um, f"{base}USDT_Q{k}", base, "USDT", "future", False, 1.0, k * 90, px)
                     for k in (1, 2, 3)]
            rows.append((ex, cm, f"{base}USD_PERP", base, "USD", "perpetual", True, 100.0, None,
                         px))
            rows += [(ex, cm, f"{base}USD_Q{k}", base, "USD", "future", True, 100.0, k * 90, px)
                     for k in (1, 2, 3, 4)]
    return pl.DataFrame(rows, orient="row", schema={
        "exchange": pl.String, "venue": pl.String, "symbol": pl.String, "base": pl.String,
        "quote": pl.String, "market": pl.String, "inverse": pl.Boolean,
        "contract_size": pl.Float64, "_days": pl.Int64, "_px": pl.Float64,
    }).with_row_index("_i")


def market(start: int, n_ticks: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """State and vwaps for ``n_ticks`` 1 s ticks from ``start`` (vectorized, no Python loop)."""
    ts = pl.DataFrame({"ts": pl.int_range(start, start + n_ticks * S, S, eager=True)})
    sec = (pl.col("ts") - T0) // S
    i = pl.col("_i").cast(pl.Float64)
    spot = pl.col("_px") * (1 + 0.01 * (sec.cast(pl.Float64) * 1e-4).sin())
    carry = pl.when(pl.col("_days").is_null()).then(0.0002).otherwise(
        0.08 * pl.col("_days") / 365)
    mid = spot * (1 + carry + 1e-4 * (sec.cast(pl.Float64) * 0.37 + i).sin())
    state = ts.join(instruments(), how="cross").with_columns(
        expiry=pl.when(pl.col("_days").is_not_null()).then(T0 + pl.col("_days") * DAY),
        in_sync=((sec * 7 + pl.col("_i")) % 100) != 0,
        _m=mid,
    ).with_columns(
        bid=pl.col("_m") - 0.5, ask=pl.col("_m") + 0.5,
        mid=pl.when(pl.col("in_sync")).then(pl.col("_m")),
        quote_age_s=pl.lit(0.2),
        mark=pl.when(pl.col("market") != "spot").then(pl.col("_m") * (1 - 1e-5)),
        index=pl.when(pl.col("market") != "spot").then(spot),
        funding_rate=pl.when(pl.col("market") == "perpetual").then(0.0001 + 1e-5 * i.sin()),
        funding_interval_hours=pl.when(pl.col("market") == "perpetual")
        .then(pl.when(pl.col("exchange") == "binance").then(8.0).otherwise(1.0)),
        next_funding_time=pl.when(pl.col("market") == "perpetual").then(T0 + 8 * 3_600 * S),
        open_interest=pl.when(pl.col("market") != "spot").then(1_000.0 + i),
    )
    vw = state.select("ts", "venue", "symbol", "_m").join(
        pl.DataFrame({"notional_usd": NOTIONALS}), how="cross"
    ).with_columns(
        buy_vwap=pl.col("_m") * (1 + pl.col("notional_usd") * 1e-10),
        sell_vwap=pl.col("_m") * (1 - pl.col("notional_usd") * 1e-10),
    ).drop("_m")
    return state.drop("_i", "_days", "_px", "_m"), vw


def live_tick(state: pl.DataFrame, vw: pl.DataFrame, anomaly: AnomalyState) -> None:
    b = basis(state, vw, notionals=NOTIONALS)
    constant_maturity(b)
    cross_venue(b)
    anomaly.update(series_from_basis(b))


def ticks_from(start: int, n_ticks: int) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    state, vw = market(start, n_ticks)
    return [(state.filter(pl.col("ts") == t), vw.filter(pl.col("ts") == t))
            for t in range(start, start + n_ticks * S, S)]


def history(start: int, history_s: int) -> pl.DataFrame:
    hstate, hvw = market(start - history_s * S, history_s)
    return series_from_basis(basis(hstate, hvw, notionals=NOTIONALS))


def median_us(times: list[int]) -> float:
    return statistics.median(times) / 1e3


def bench_live(n_ticks: int) -> None:
    start = T0 + DAY
    anomaly = AnomalyState(WINDOW, k=4.0, min_samples=30)
    anomaly.update(history(start, 1_800))
    times = []
    for st, v in ticks_from(start, n_ticks):
        t0 = time.perf_counter_ns()
        live_tick(st, v, anomaly)
        times.append(time.perf_counter_ns() - t0)
    print(f"  basis+cm+cross_venue+series+AnomalyState.update: median {median_us(times):,.0f}"
          " µs/tick")


def bench_live_anomalies(n_ticks: int, history_s: int) -> None:
    """Anomalies alone, per tick: the state against the history-frame call."""
    start = T0 + DAY
    hist = history(start, history_s)
    new = [series_from_basis(basis(st, v, notionals=NOTIONALS))
           for st, v in ticks_from(start, n_ticks)]
    anomaly = AnomalyState(WINDOW, k=4.0, min_samples=30)
    t0 = time.perf_counter()
    anomaly.update(hist)
    warm = time.perf_counter() - t0
    state_t, frame_t = [], []
    for k, tick in enumerate(new):
        now = start + k * S
        t0 = time.perf_counter_ns()
        anomaly.update(tick)
        t1 = time.perf_counter_ns()
        series = pl.concat([hist, tick])
        anomalies(series, window=WINDOW, k=4.0, min_samples=30, since=now)
        hist = series.filter(pl.col("ts") > now - history_s * S)
        frame_t.append(time.perf_counter_ns() - t1)
        state_t.append(t1 - t0)
    print(f"  {new[0].height} series rows/tick, {history_s // 60} min history "
          f"({hist.height:,} rows): AnomalyState.update median {median_us(state_t):,.0f} µs"
          f" (max {max(state_t) / 1e3:,.0f}), anomalies(history, since) median "
          f"{median_us(frame_t):,.0f} µs; state warm-up from the history {warm:.2f} s")


def bench_state_180(n_ticks: int) -> None:
    """The target shape: 2 bases x 6 venues x 5 instruments x 3 metrics = 180 series, every one
    scored each tick, after a 30 min warm-up."""
    keys = pl.DataFrame(
        [(v, b, f"t{i}", m, f"{b}{i}") for v in ("v1", "v2", "v3", "v4", "v5", "v6")
         for b in ("BTC", "ETH") for i in range(5) for m in ("premium", "basis", "funding")],
        schema=["venue", "base", "tenor", "metric", "symbol"], orient="row")
    start = T0 + DAY
    n = 1_800 + n_ticks
    frame = pl.DataFrame({"ts": pl.int_range(start, start + n * S, S, eager=True)}).join(
        keys.with_row_index("_i"), how="cross").with_columns(
        value=0.05 + 1e-3 * ((pl.col("ts") // S).cast(pl.Float64) * 0.37
                             + pl.col("_i").cast(pl.Float64)).sin(),
        valid=pl.lit(True), reason=pl.lit(None, pl.String)).drop("_i")
    anomaly = AnomalyState(WINDOW, k=4.0, min_samples=30)
    anomaly.update(frame.filter(pl.col("ts") < start + 1_800 * S))
    ticks = [frame.filter(pl.col("ts") == start + k * S) for k in range(1_800, n)]
    times = []
    for tick in ticks:
        t0 = time.perf_counter_ns()
        anomaly.update(tick)
        times.append(time.perf_counter_ns() - t0)
    print(f"  180 series rows/tick, 30 min: AnomalyState.update median {median_us(times):,.0f} µs")


def bench_batch(hours: float) -> None:
    n = int(hours * 3_600)
    state, vw = market(T0 + DAY, n)
    rows = state.height
    print(f"batch: {n:,} ticks, {rows:,} state rows, {vw.height:,} vwap rows")
    t0 = time.perf_counter()
    b = basis(state, vw, notionals=NOTIONALS)
    t1 = time.perf_counter()
    constant_maturity(b)
    t2 = time.perf_counter()
    cross_venue(b)
    t3 = time.perf_counter()
    series = series_from_basis(b)
    t4 = time.perf_counter()
    anomalies(series, window=WINDOW, k=4.0, min_samples=30)
    t5 = time.perf_counter()
    for name, dt in (("basis (+3 tradable notionals)", t1 - t0), ("constant_maturity", t2 - t1),
                     ("cross_venue", t3 - t2), ("series_from_basis", t4 - t3),
                     (f"anomalies ({series.height:,} series rows)", t5 - t4), ("all", t5 - t0)):
        print(f"  {name:<40} {dt:7.2f} s  {rows / dt / 1e6:6.2f} M state rows/s")
    print(f"  anomalies: {series.height / (t5 - t4) / 1e6:.2f} M series rows/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--ticks", type=int, default=60)
    args = ap.parse_args()
    print(f"polars {pl.__version__}, python {sys.version.split()[0]}, "
          f"threads {pl.thread_pool_size()}")
    print("live: 2 bases x 6 venues x 5 instruments = 60 rows/tick, 3 notionals")
    bench_live(args.ticks)
    for hist in (1_800, 3_600):
        bench_live_anomalies(args.ticks, hist)
    bench_state_180(args.ticks)
    bench_batch(args.hours)


if __name__ == "__main__":
    main()
