"""Analytics over stored data: the live pipeline (``pipeline.evaluate``) applied to the stored
``book_snapshots`` (the analysis windows the collector used) and, as of each snapshot, the last
stored ticker, open interest and instrument definition. At a snapshot's instant this gives the
numbers the live tick gave, because it is the same function of the same rows.

Books that were out of sync at a snapshot have no stored levels, so batch reports nothing for
them where live reported their status; anomalies are scored on the snapshot grid (every
``book_snapshot_seconds``), so their history differs from the live 1 s grid.

The trend regime is recomputed from the stored trades (``trend_history``): one row per
instrument and closed bar of the range, at the bar's close, the state the live refresh would
have reported from then until the next bar closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from analyzer.analytics.anomalies import AnomalyState
from analyzer.analytics.levels import SIDE
from analyzer.analytics.pipeline import Results, evaluate
from analyzer.analytics.state import PAIR, TICKER_COLUMNS, as_of, latest_instruments
from analyzer.analytics.trend import history
from analyzer.config import Analytics as AnalyticsConfig
from analyzer.config import Carry, Trend
from analyzer.store.research import frame

LOOKBACK_NS = 3600 * 10**9  # how far before a range to look for the last ticker / OI


class BatchError(Exception):
    """The store cannot be read for a backfill (one line)."""


def snapshot_times(database: Path, start: int, end: int) -> list[int]:
    """The distinct snapshot instants in ``[start, end)``, ascending."""
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT ts_local FROM book_snapshots WHERE ts_local >= ? "
                           "AND ts_local < ? ORDER BY 1", [start, end]).fetchall()
    return [r[0] for r in rows]


def evaluate_range(con: duckdb.DuckDBPyConnection, cfg: AnalyticsConfig, carry: Carry,
                   start: int, end: int, anomaly_state: AnomalyState | None = None) -> Results:
    """Every metric at every snapshot instant in ``[start, end)``. ``anomaly_state`` carries
    the anomaly history from one range to the next (chunks of a backfill)."""
    snaps = frame(con, "SELECT venue, symbol, ts_exchange, ts_local, update_id, side, level, "
                  "price, size, ts_changed FROM book_snapshots WHERE ts_local >= ? AND "
                  "ts_local < ? "
                  "ORDER BY ts_local, venue, symbol, side DESC, level", [start, end])
    instruments = latest_instruments(frame(con, "SELECT * FROM instruments WHERE ts_local < ?",
                                           [end]))
    keys = snaps.select("ts_local", "venue", "symbol", "ts_changed", "ts_exchange",
                        "update_id").unique(
        subset=["ts_local", "venue", "symbol"], keep="first", maintain_order=True)
    usd = pl.DataFrame({"quote": list(cfg.quote_usd), "_usd": list(cfg.quote_usd.values())},
                       schema={"quote": pl.String, "_usd": pl.Float64})
    books = (
        keys.with_row_index("book")
        .join(instruments, on=["venue", "symbol"], how="inner")
        .join(usd, on="quote", how="left")
        .select(
            pl.col("book").cast(pl.UInt32), ts="ts_local", venue="venue", symbol="symbol",
            inverse="inverse", contract_size="contract_size",
            quote_usd=pl.when(pl.col("inverse")).then(1.0).otherwise(pl.col("_usd")),
            in_sync=pl.lit(True), update_id="update_id", ts_book="ts_changed",
            ts_exchange="ts_exchange",
        )
        .filter(pl.col("quote_usd").is_not_null())  # live skips these books too
        .sort("book")
    )
    levels = snaps.join(
        books.select("book", ts_local="ts", venue="venue", symbol="symbol"),
        on=["ts_local", "venue", "symbol"], how="inner",
    ).select("book", pl.col("side").cast(SIDE), "level", "price", "size").sort(
        "book", "side", "level")
    extra = frame(con, "SELECT venue, symbol, ts_local, band_bps, bid_extra, ask_extra, "
                  "bid_exact, ask_exact FROM "
                  "book_snapshot_bands WHERE ts_local >= ? AND ts_local < ?", [start, end]
                  ).join(books.select("book", ts_local="ts", venue="venue", symbol="symbol"),
                         on=["ts_local", "venue", "symbol"], how="inner"
                  ).select("book", "band_bps", "bid_extra", "ask_extra", "bid_exact",
                           "ask_exact")
    grid = books.select("ts", "venue", "symbol")
    # index-only tickers are keyed by their pair, base + quote (state.PAIR)
    pairs = (grid.join(instruments.select("venue", "symbol", _pair=PAIR), on=["venue", "symbol"])
             .select("ts", "venue", symbol="_pair").unique())
    grid_all = pl.concat([grid, pairs]).unique()
    tickers = as_of(frame(con, "SELECT * FROM derivative_tickers WHERE ts_local >= ? AND "
                          "ts_local <= ?", [start - LOOKBACK_NS, end]),
                    grid_all, TICKER_COLUMNS)
    oi = as_of(frame(con, "SELECT * FROM open_interest WHERE ts_local >= ? AND ts_local <= ?",
                     [start - LOOKBACK_NS, end]), grid, ["open_interest"])
    return evaluate(cfg, carry, levels, extra, books, tickers, oi, instruments,
                    anomaly_state=anomaly_state)


def backfill(database: Path, cfg: AnalyticsConfig, carry: Carry, start: int, end: int,
             chunk_snapshots: int = 600) -> Iterator[tuple[int, int, Results]]:
    """Evaluate ``[start, end)`` in chunks of about ``chunk_snapshots`` instants; yields
    (instants done, instants in all, results of the chunk)."""
    times = snapshot_times(database, start, end)
    state = AnomalyState(window=f"{round(cfg.anomaly_window_seconds)}s", k=cfg.anomaly_z,
                         min_samples=cfg.anomaly_min_samples)
    with duckdb.connect(str(database), read_only=True) as con:
        for i in range(0, len(times), chunk_snapshots):
            lo = times[i]
            hi = times[i + chunk_snapshots] if i + chunk_snapshots < len(times) else end
            yield (min(i + chunk_snapshots, len(times)), len(times),
                   evaluate_range(con, cfg, carry, lo, hi, state))


def trend_history(database: Path, cfg: Trend, start: int, end: int) -> pl.DataFrame:
    """The ``trend`` rows of the closed bars ending in ``[start, end)`` (``trend.history``),
    with ``source = 'backfill'``; none when ``[trend]`` is disabled."""
    if not cfg.enabled:
        return pl.DataFrame()
    with duckdb.connect(str(database), read_only=True) as con:
        rows = history(con, cfg.interval_s, cfg.fast, cfg.slow, start, end, cfg.lookback_bars)
    return rows.with_columns(source=pl.lit("backfill"))


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    pct = 100 * done // total if total else 100
    return f"[{'#' * filled}{'.' * (width - filled)}] {pct:3d}% {done}/{total} snapshots"


