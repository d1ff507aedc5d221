"""Benchmark of ``analyzer.analytics.carry.candidates`` (live cost per tick, batch rows/s).

    python benchmarks/bench_carry.py [--ticks 120] [--batch-minutes 10]

Synthetic market of the target shape: 2 bases x 6 venues (2 exchanges x spot, USDⓈ-M, COIN-M)
x 4 instruments (spot: 4 quote currencies; USDⓈ-M: 2 perps + 2 quarterlies; COIN-M: 1 perp + 3
quarterlies) = 48 books per 1 s tick, 3 notionals. Every spot book is paired with every
derivative of its base on both exchanges: 8 spot legs x 16 derivatives x 3 notionals x 2 bases
= 768 candidates per tick. ``basis_df`` comes from ``basis`` over a synthetic market state;
summary, depth (5 bands) and slippage are synthetic frames in ``liquidity``'s layout (their own
cost is measured by ``bench_liquidity``); realised funding means and a few cross-venue anomaly
flags are passed too.

Live: ``candidates`` over one tick's frames, median over ``--ticks`` ticks, wall time and process
CPU time (every polars thread counted); the budget is 5 % of a core at 1 Hz (50 ms of CPU per
tick), judged on the CPU time. Batch: one call over ``--batch-minutes`` of ticks.
"""

from __future__ import annotations

import argparse
import statistics
import time

import polars as pl

from analyzer.analytics.basis import basis
from analyzer.analytics.carry import CarryConfig, FeeSchedule, VenueFees, candidates

S = 10**9
DAY = 86_400 * S
T0 = 1_751_328_000 * S  # 2025-07-01 00:00 UTC
NOTIONALS = (10_000.0, 100_000.0, 1_000_000.0)
BANDS = (10.0, 25.0, 50.0, 100.0, 200.0)
EXCHANGES = ("binance", "exb")


def instruments() -> pl.DataFrame:
    rows: list[tuple] = []
    for ex in EXCHANGES:
        for base, px in (("BTC", 60_000.0), ("ETH", 3_000.0)):
            sp, um, cm = f"{ex}_spot", f"{ex}_usdm", f"{ex}_coinm"
            rows += [(ex, sp, f"{base}{q}", base, q, "spot", False, 1.0, None, px)
                     for q in ("USDT", "USDC", "FDUSD", "USD")]
            rows += [(ex, um, f"{base}{q}", base, q, "perpetual", False, 1.0, None, px)
                     for q in ("USDT", "USDC")]
            rows += [(ex, um, f"{base}USDT_Q{k}", base, "USDT", "future", False, 1.0, k * 90,
                      px) for k in (1, 2)]
            rows.append((ex, cm, f"{base}USD_PERP", base, "USD", "perpetual", True, 100.0, None,
                         px))
            rows += [(ex, cm, f"{base}USD_Q{k}", base, "USD", "future", True, 100.0, k * 90, px)
                     for k in (1, 2, 3)]
    return pl.DataFrame(rows, orient="row", schema={
        "exchange": pl.String, "venue": pl.String, "symbol": pl.String, "base": pl.String,
        "quote": pl.String, "market": pl.String, "inverse": pl.Boolean,
        "contract_size": pl.Float64, "_days": pl.Int64, "_px": pl.Float64,
    }).with_row_index("_i")


def market(start: int, n_ticks: int) -> dict[str, pl.DataFrame]:
    """The inputs of ``candidates`` for ``n_ticks`` 1 s ticks from ``start``."""
    ts = pl.DataFrame({"ts": pl.int_range(start, start + n_ticks * S, S, eager=True)})
    sec = ((pl.col("ts") - T0) // S).cast(pl.Float64)
    i = pl.col("_i").cast(pl.Float64)
    spot = pl.col("_px") * (1 + 0.01 * (sec * 1e-4).sin())
    carry = pl.when(pl.col("_days").is_null()).then(0.0002).otherwise(
        0.08 * pl.col("_days") / 365)
    mid = spot * (1 + carry + 1e-4 * (sec * 0.37 + i).sin())
    deriv = pl.col("market") != "spot"
    state = ts.join(instruments(), how="cross").with_columns(
        expiry=pl.when(pl.col("_days").is_not_null()).then(T0 + pl.col("_days") * DAY),
        in_sync=((sec.cast(pl.Int64) * 7 + pl.col("_i")) % 100) != 0,
        _m=mid,
    ).with_columns(
        bid=pl.col("_m") * (1 - 1e-5), ask=pl.col("_m") * (1 + 1e-5),
        mid=pl.when(pl.col("in_sync")).then(pl.col("_m")),
        quote_age_s=pl.lit(0.2),
        mark=pl.when(deriv).then(pl.col("_m") * (1 - 1e-5)),
        index=pl.when(deriv).then(spot),
        funding_rate=pl.when(pl.col("market") == "perpetual").then(0.0001 + 1e-5 * i.sin()),
        funding_interval_hours=pl.when(pl.col("market") == "perpetual").then(8.0),
        next_funding_time=pl.when(pl.col("market") == "perpetual").then(T0 + 8 * 3_600 * S),
        open_interest=pl.when(deriv).then(
            pl.when(pl.col("inverse")).then(2e6).otherwise(5_000.0) + i),
    )
    ok = pl.col("in_sync")
    summary = state.select(
        "ts", "venue", "symbol",
        mid=pl.when(ok).then("_m"), best_bid=pl.when(ok).then("bid"),
        best_ask=pl.when(ok).then("ask"), spread_bps=pl.when(ok).then(2.0 + (i * 0.3).sin()),
        status=pl.when(ok).then(pl.lit("ok")).otherwise(pl.lit("out_of_sync")),
        ts_book=pl.col("ts") - 150_000_000,
    )
    depth = state.select("ts", "venue", "symbol", "_i", "in_sync").join(
        pl.DataFrame({"band_bps": BANDS}), how="cross").with_columns(
        bid_usd=pl.when(ok).then(pl.col("band_bps") * 2e5 * (1.5 + (i * 0.7).sin())),
        ask_usd=pl.when(ok).then(pl.col("band_bps") * 2e5 * (1.5 + (i * 0.9).cos())),
    ).drop("_i", "in_sync")
    n = pl.col("notional_usd")
    slippage = state.select("ts", "venue", "symbol", "_m", "in_sync").join(
        pl.DataFrame({"notional_usd": NOTIONALS}), how="cross").with_columns(
        buy_vwap=pl.when(ok).then(pl.col("_m") * (1 + 1e-5 + n * 1e-11)),
        sell_vwap=pl.when(ok).then(pl.col("_m") * (1 - 1e-5 - n * 1e-11)),
    ).with_columns(
        buy_bps=(pl.col("buy_vwap") / pl.col("_m") - 1) * 1e4,
        sell_bps=(1 - pl.col("sell_vwap") / pl.col("_m")) * 1e4,
        buy_reason=pl.when(~ok).then(pl.lit("out_of_sync")),
        sell_reason=pl.when(~ok).then(pl.lit("out_of_sync")),
    ).drop("_m", "in_sync")
    vwaps = slippage.select("ts", "venue", "symbol", "notional_usd", "buy_vwap", "sell_vwap")
    st = state.drop("_i", "_days", "_px", "_m")
    b = basis(st, vwaps, notionals=list(NOTIONALS))
    spot_legs = st.filter(pl.col("market") == "spot").select(
        "ts", "exchange", "venue", "symbol", "base", "quote")
    anomalies = b.filter((pl.col("tenor") == "q1") & (pl.col("venue") == "exb_coinm")
                         & ((pl.col("ts") // S) % 10 == 0)).select(
        "ts", "venue", "base", "tenor", "symbol", metric=pl.lit("basis_spot_ann"),
        reason=pl.lit("cross_venue"))
    return {"basis_df": b, "slippage": slippage, "summary": summary, "depth": depth,
            "spot_legs": spot_legs, "anomalies": anomalies}


def options() -> dict:
    venues = {f"{ex}_{k}" for ex in EXCHANGES for k in ("spot", "usdm", "coinm")}
    base = FeeSchedule().venues
    fees = FeeSchedule(venues=base | {v: base[f"binance_{v.split('_')[1]}"] for v in venues
                                      if v not in base} | {"exb_spot": VenueFees(
                                          taker=0.001, maker=0.0008)})
    funding_mean = instruments().filter(pl.col("market") == "perpetual").select(
        "venue", "symbol", funding_ann_mean=0.05 + 0.01 * pl.col("_i").cast(pl.Float64).sin())
    return {"notionals": NOTIONALS, "fees": fees, "cfg": CarryConfig(),
            "funding_mean": funding_mean}


def bench_live(n_ticks: int) -> None:
    start = T0 + DAY
    frames = market(start, n_ticks)
    ticks = [{k: v.filter(pl.col("ts") == t) for k, v in frames.items()}
             for t in range(start, start + n_ticks * S, S)]
    opts = options()
    candidates(**ticks[0], **opts)  # warm-up
    times, cpu, rows = [], [], 0
    for tick in ticks:
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        out = candidates(**tick, **opts)
        times.append(time.perf_counter_ns() - t0)
        cpu.append(time.process_time_ns() - c0)  # all threads of the process
        rows = out.height
    med = statistics.median(times) / 1e6
    p90 = statistics.quantiles(times, n=10)[-1] / 1e6
    cpu_med = statistics.median(cpu) / 1e6
    print(f"live: {rows} candidates/tick (48 books, 3 notionals): median {med:.2f} ms/tick "
          f"wall (p90 {p90:.2f}), {cpu_med:.2f} ms CPU (all threads); at 1 Hz = "
          f"{cpu_med / 10:.2f} % of a core (budget 5 %)")
    gates = out.group_by("reject_gate").len().sort("reject_gate")
    print("  last tick, reject_gate counts:",
          ", ".join(f"{g}={n}" for g, n in gates.iter_rows()))


def bench_batch(minutes: float) -> None:
    n = int(minutes * 60)
    frames = market(T0 + DAY, n)
    opts = options()
    t0 = time.perf_counter()
    out = candidates(**frames, **opts)
    dt = time.perf_counter() - t0
    print(f"batch: {n:,} ticks -> {out.height:,} candidates in {dt:.2f} s "
          f"({out.height / dt / 1e6:.2f} M candidates/s, {dt / n * 1e3:.3f} ms per tick)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=120)
    ap.add_argument("--batch-minutes", type=float, default=10.0)
    args = ap.parse_args()
    print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads")
    bench_live(args.ticks)
    bench_batch(args.batch_minutes)


if __name__ == "__main__":
    main()
