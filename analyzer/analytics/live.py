"""The analytics of the running collector. Every ``[analytics] interval_seconds`` it cuts the
analysis window of every book, runs ``pipeline.evaluate`` (liquidity, basis, funding, curve,
cross-venue figures, anomalies, carry candidates), steps the opportunity lifecycle, writes the
results to the store (``source = 'live'``) and keeps the latest frames for the Prometheus
exporter (``gauges.py``).

The windows of a tick are also what ``book_snapshots`` / ``book_snapshot_bands`` store (every
``[store] book_snapshot_seconds``), so ``analyzer backfill`` recomputes these numbers from the
store (``batch.py``).

Every ``[trend] refresh_seconds`` a tick also starts the trend refresh (``trend.TrendState``:
candles from the stored trades, moving averages, regime) in a worker thread of its own, not
awaited by the ticks: its rows go to the ``trend`` table and its frame to the gauges when it
ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from analyzer.analytics.anomalies import AnomalyState
from analyzer.analytics.funding import FUNDING_SCHEMA, mean_realised, realised_funding
from analyzer.analytics.levels import frame, window
from analyzer.analytics.opportunities import Lifecycle, Notifier, events_frame
from analyzer.analytics.pipeline import Results, candidate_rows, evaluate
from analyzer.analytics.state import INSTRUMENT_SCHEMA
from analyzer.analytics.trend import TrendState, segments_connection
from analyzer.portfolio.live import PortfolioWatch, live_market

if TYPE_CHECKING:
    from analyzer.collector import FeedRunner
    from analyzer.config import Analytics, Config
    from analyzer.portfolio.market import Market
    from analyzer.store import Store

log = logging.getLogger(__name__)

BOOK_SCHEMA = {"book": pl.UInt32, "ts": pl.Int64, "venue": pl.String, "symbol": pl.String,
               "inverse": pl.Boolean, "contract_size": pl.Float64, "quote_usd": pl.Float64,
               "in_sync": pl.Boolean, "update_id": pl.Int64, "ts_book": pl.Int64,
               "ts_exchange": pl.Int64}
# ``ts``: the tick; ``ts_local`` / ``ts_exchange``: the symbol's latest ticker's (its age, for
# the portfolio's freshness check)
TICKER_SCHEMA = {"ts": pl.Int64, "venue": pl.String, "symbol": pl.String,
                 "mark_price": pl.Float64, "index_price": pl.Float64, "funding_rate": pl.Float64,
                 "funding_interval_hours": pl.Float64, "next_funding_time": pl.Int64,
                 "ts_local": pl.Int64, "ts_exchange": pl.Int64}
OI_SCHEMA = {"ts": pl.Int64, "venue": pl.String, "symbol": pl.String,
             "open_interest": pl.Float64}
FUNDING_WINDOW = "7d"
FUNDING_KEEP_NS = 8 * 86_400 * 1_000_000_000
NS = 1_000_000_000
NOTIFY_WAIT_S = 5.0  # at stop, for the "collector stopped" notifications


class LiveAnalytics:
    """Runs on the collector's event loop; ``tick(now)`` costs a few ms for dozens of books
    (``benchmarks/bench_analytics.py``)."""

    def __init__(self, cfg: Config, runners: list[FeedRunner], store: Store) -> None:
        a, c = cfg.analytics, cfg.carry
        self.cfg = a
        self.carry = c
        self.runners = runners
        self.store = store
        self.snapshot_ns = round(cfg.store.book_snapshot_seconds * NS)
        self.next_snapshot_ns = 0
        self.half_tick_ns = round(a.interval_seconds * NS / 2)
        self.cover = max([*a.notionals_usd, *c.notionals_usd])
        self.anomaly_state = AnomalyState(
            window=f"{round(a.anomaly_window_seconds)}s", k=a.anomaly_z,
            min_samples=a.anomaly_min_samples)
        g = c.gates
        self.lifecycle = Lifecycle(
            persistence_window_s=g.persistence_window_s,
            persistence_fraction=g.persistence_fraction, exit_ann=g.exit_ann,
            close_grace_s=c.close_grace_seconds, update_every_s=c.update_seconds)
        self.notifier = Notifier(cfg.alerts.webhook_url, cfg.alerts.command,
                                 cfg.alerts.dashboard_url)
        self.candidates_ns = round(c.candidates_seconds * NS)
        self.next_candidates_ns = 0
        self.latest: Results | None = None
        t = cfg.trend
        self.trend = (TrendState(t.interval_s, t.fast, t.slow, t.lookback_bars)
                      if t.enabled else None)
        self.trend_ns = round(t.refresh_seconds * NS)
        self.next_trend_ns = 0
        self._trend_task: asyncio.Task[None] | None = None
        w = cfg.portfolio
        self.portfolio = PortfolioWatch(w.file, w.max_age_seconds) if w.file else None
        self.portfolio_ns = round(w.refresh_seconds * NS)
        self.next_portfolio_ns = 0
        self.anomalies_total: Counter[tuple[str, ...]] = Counter()  # flag labels -> count
        self.suppressed_total: Counter[str] = Counter()  # reason -> count
        self.ticks = 0
        self.errors = 0
        self.last_tick_seconds = 0.0
        self.tick_seconds_total = 0.0

    async def tick(self, now: int) -> None:
        """Cut the windows and read the inputs on the event loop (the books must not change
        under them), compute in a worker thread (Polars releases the GIL: frames keep flowing
        meanwhile), publish on the loop."""
        t0 = time.perf_counter()
        try:
            levels, extra, books = self.windows(now)
            snapshot = now >= self.next_snapshot_ns
            if snapshot:
                # half a tick of slack: ticks come every interval, give or take loop jitter
                self.next_snapshot_ns = now + self.snapshot_ns - self.half_tick_ns
            if self.cfg.enabled:
                results = await asyncio.to_thread(
                    evaluate, self.cfg, self.carry, levels, extra, books, self._tickers(now),
                    self._open_interest(now), self._instruments(),
                    anomaly_state=self.anomaly_state, funding_mean=self._funding_mean(now))
                self._publish(results, now)
            # stored with (after) the tick's results: a snapshot always has its live rows
            if snapshot:
                snap, bands = snapshot_rows(levels, extra, books)
                self.store.add_rows("book_snapshots", snap.to_arrow())
                self.store.add_rows("book_snapshot_bands", bands.to_arrow())
        except Exception:  # a bug in one tick must not stop collection
            self.errors += 1
            log.exception("analytics tick failed")
        if (self.trend is not None and now >= self.next_trend_ns
                and (self._trend_task is None or self._trend_task.done())):
            self.next_trend_ns = now + self.trend_ns - self.half_tick_ns
            self._trend_task = asyncio.create_task(self._refresh_trend(now), name="trend")
        if self.portfolio is not None and now >= self.next_portfolio_ns:
            self.next_portfolio_ns = now + self.portfolio_ns - self.half_tick_ns
            self._refresh_portfolio(now)
        dt = time.perf_counter() - t0
        self.ticks += 1
        self.last_tick_seconds = dt
        self.tick_seconds_total += dt

    async def _refresh_trend(self, now: int) -> None:
        """One trend refresh (``trend.TrendState.refresh``) off the event loop; its rows are
        stored on the loop. A failure is logged and counted as a failed tick; the next refresh
        retries."""
        assert self.trend is not None
        try:
            rows = await asyncio.to_thread(self._trend_rows, now)
            if rows.height:
                self.store.add_rows("trend", rows.with_columns(source=pl.lit("live")).to_arrow())
        except Exception:
            self.errors += 1
            log.exception("trend refresh failed")

    def _trend_rows(self, now: int) -> pl.DataFrame:
        assert self.trend is not None
        for attempt in range(3):  # compaction may delete a segment while DuckDB lists them
            with segments_connection(self.store.segments_root) as con:
                try:
                    return self.trend.refresh(con, now)
                except duckdb.IOException as exc:
                    if attempt == 2 or "No such file" not in str(exc):
                        raise
        raise AssertionError("unreachable")

    def _refresh_portfolio(self, now: int) -> None:
        """Value the watched portfolio against ``_market(now)``, on the loop (the books must
        not change under it; a few positions cost well under a millisecond each), with the
        trend regime of its assets when they agree."""
        assert self.portfolio is not None
        try:
            regime = None
            latest = self.trend.latest if self.trend is not None else None
            if latest is not None and latest.height:
                assets = {h.asset.upper() for h in self.portfolio.portfolio.spot}
                found = set(latest.filter(pl.col("base").is_in(list(assets))
                                          & ~pl.col("stale"))["regime"].to_list())
                regime = found.pop() if len(found) == 1 else None
            self.portfolio.refresh(self._market(now), regime)
        except Exception:  # a bug must not stop the ticks
            self.errors += 1
            log.exception("portfolio refresh failed")

    def _market(self, now: int) -> Market:
        """The market the portfolio is valued against: the collector's memory."""
        return live_market(self.runners, now)

    def _publish(self, results: Results, now: int) -> None:
        for table, rows in results.tables().items():
            if rows.height:
                self.store.add_rows(table, rows.with_columns(source=pl.lit("live")).to_arrow())
        self._count_anomalies(results)
        self._carry(results.candidates, now)
        self.latest = results

    def _count_anomalies(self, results: Results) -> None:
        for row in results.anomalies.iter_rows(named=True):
            self.anomalies_total[(row["venue"], row["base"], row["tenor"], row["metric"],
                                  row["reason"])] += 1
            log.info("anomaly: %s %s %s %s = %.6g (%s, z = %.1f)", row["venue"], row["base"],
                     row["tenor"], row["metric"], row["value"], row["reason"], row["z"])
        for reason, n in results.suppressed.group_by("reason").agg(
                pl.col("suppressed").sum()).iter_rows():
            self.suppressed_total[reason] += n

    def _carry(self, cand: pl.DataFrame, now: int) -> None:
        if cand.height and now >= self.next_candidates_ns:
            self.next_candidates_ns = now + self.candidates_ns - self.half_tick_ns
            rows = candidate_rows(cand).with_columns(source=pl.lit("live"))
            self.store.add_rows("carry_candidates", rows.to_arrow())
        # also without candidates: an open opportunity no longer evaluated closes as "gone"
        self._emit(self.lifecycle.update(cand, now))

    def close(self, now: int) -> None:
        """Close every open opportunity with reason ``collector stopped`` and store the events;
        ``Collector.stop()`` calls it after the tick task has ended and before the store
        closes. Waits up to ``NOTIFY_WAIT_S`` for their notifications. Idempotent. A trend
        refresh under way is cancelled (its rows are not stored)."""
        if self._trend_task is not None:
            self._trend_task.cancel()
        thread = self._emit(self.lifecycle.close_all(now))
        if thread is not None:
            thread.join(NOTIFY_WAIT_S)

    def _emit(self, events: list[dict[str, Any]]) -> threading.Thread | None:
        if not events:
            return None
        self.store.add_rows("opportunities", events_frame(events).with_columns(
            source=pl.lit("live")).to_arrow())
        for e in events:
            if e["event"] != "update":
                log.warning("carry opportunity %s: %s %s net %.2f%% a year (%s)",
                            e["event"], e["pair"], e["notional_usd"],
                            100 * (e["net_ann"] or 0), e["reason"] or "all gates passed")
        return self.notifier.notify(events)

    # -- inputs, from the collector's state --

    def windows(self, now: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Every book's analysis window as the ``levels`` and ``extra`` frames of
        ``liquidity``, and the ``books`` frame."""
        return book_windows(self.runners, self.cfg, self.cover, now)

    def _tickers(self, now: int) -> pl.DataFrame:
        return tickers_frame(self.runners, now)

    def _funding_mean(self, now: int) -> pl.DataFrame | None:
        """Interval-weighted realised funding over the last 7 days, from the tickers received
        since start (``funding.realised_funding`` over the last ticker of each funding period,
        which is all it reads of a history)."""
        rows = []
        for r in self.runners:
            marks = r.funding_marks
            for key in [k for k, t in list(marks.items()) if t.ts_local < now - FUNDING_KEEP_NS]:
                del marks[key]
            rows += [(t.ts_exchange, r.venue, t.symbol, t.funding_rate, t.funding_interval_hours,
                      t.next_funding_time) for t in list(marks.values())]
        return funding_mean(rows)

    def _open_interest(self, now: int) -> pl.DataFrame:
        return open_interest_frame(self.runners, now)

    def _instruments(self) -> pl.DataFrame:
        return instruments_frame(self.runners)


# -- the inputs of a tick, from runners' state (also what a shard sends: analyzer/cluster) --

def book_windows(runners: list[FeedRunner], a: Analytics, cover: float, now: int
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Every book's analysis window as the ``levels`` and ``extra`` frames of ``liquidity``,
    and the ``books`` frame; ``cover``: the largest notional (USD) a window must fill."""
    usd = a.quote_usd
    none: list[float | None] = [None] * len(a.bands_bps)
    ids: list[int] = []
    wins = []
    rows: dict[str, list[Any]] = {k: [] for k in BOOK_SCHEMA}
    for r in runners:
        for sb in list(r.books.books.values()):
            inst = r.instruments.get(sb.symbol)
            if inst is None:
                continue
            rate = 1.0 if inst.inverse else usd.get(inst.quote)
            if sb.in_sync and rate is not None:
                wins.append(window(sb.book, a.bands_bps, cover if inst.inverse else cover / rate,
                                   inst.inverse, inst.contract_size, a.max_levels,
                                   top_n=a.imbalance_levels, horizon=sb.horizon))
            else:
                wins.append(([], [], [], [], none, none, none, none))
            book = len(ids)
            ids.append(book)
            for k, v in (("book", book), ("ts", now), ("venue", r.venue),
                         ("symbol", sb.symbol), ("inverse", inst.inverse),
                         ("contract_size", inst.contract_size), ("quote_usd", rate),
                         ("in_sync", sb.in_sync), ("update_id", sb.last_id),
                         ("ts_book", sb.last_ns), ("ts_exchange", sb.last_exchange_ns)):
                rows[k].append(v)
    levels, extra = frame(ids, wins, a.bands_bps)
    return levels, extra, pl.DataFrame(rows, schema=BOOK_SCHEMA)


def tickers_frame(runners: list[FeedRunner], now: int) -> pl.DataFrame:
    rows = [(now, r.venue, t.symbol, t.mark_price, t.index_price, t.funding_rate,
             t.funding_interval_hours, t.next_funding_time, t.ts_local, t.ts_exchange)
            for r in runners for t in list(r.tickers.values())]
    return pl.DataFrame(rows, schema=TICKER_SCHEMA, orient="row")


def open_interest_frame(runners: list[FeedRunner], now: int) -> pl.DataFrame:
    rows = [(now, r.venue, o.symbol, o.open_interest)
            for r in runners for o in list(r.open_interest.values())]
    return pl.DataFrame(rows, schema=OI_SCHEMA, orient="row")


def instruments_frame(runners: list[FeedRunner]) -> pl.DataFrame:
    rows = [tuple(getattr(i, c) for c in INSTRUMENT_SCHEMA)
            for r in runners for i in list(r.instruments.values())]
    return pl.DataFrame(rows, schema=INSTRUMENT_SCHEMA, orient="row")


def funding_mean(rows: list[tuple]) -> pl.DataFrame | None:
    """Realised funding over ``FUNDING_WINDOW`` from funding marks (rows of
    ``FUNDING_SCHEMA``: the last ticker of each funding period); None without any."""
    if not rows:
        return None
    realised = realised_funding(pl.DataFrame(rows, schema=FUNDING_SCHEMA, orient="row"))
    return mean_realised(realised, FUNDING_WINDOW) if realised.height else None


def snapshot_rows(levels: pl.DataFrame, extra: pl.DataFrame, books: pl.DataFrame
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The windows of the in-sync books in the layout of the ``book_snapshots`` and
    ``book_snapshot_bands`` tables: ``ts_local`` the tick, ``ts_exchange`` / ``ts_changed``
    the venue / local time of the book's last change, ``update_id`` its last id."""
    ids = books.filter("in_sync").select(
        "book", "venue", "symbol", "ts_exchange", ts_local="ts", update_id="update_id",
        ts_changed="ts_book")
    snap = levels.join(ids, on="book", how="inner").select(
        "venue", "symbol", "ts_exchange", "ts_local", "update_id",
        pl.col("side").cast(pl.String), "level", "price", "size", "ts_changed")
    bands = extra.join(ids, on="book", how="inner").select(
        "venue", "symbol", "ts_local", "band_bps", "bid_extra", "ask_extra", "bid_exact",
        "ask_exact")
    return snap, bands
