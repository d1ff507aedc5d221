"""The portfolio watched live: the collector values the ``[portfolio] file`` against its own
state every ``[portfolio] refresh_seconds`` and exports the figures the Investor dashboard and
the alert rules read (``prometheus/rules.yml``: a liquidation near, hedge funding turned into a
cost, the portfolio outside its profile).

The market comes from the collector's memory, not the store: each book's top and its best
levels (in sync only), the merged tickers, the instruments, and the funding settlements seen
since start (``FeedRunner.funding_marks``): ``live_market``. A sharded collector's analytics
process has the shards' latest states instead (``analyzer.cluster.state``): ``state_market``
takes the same figures from their frames, a book's levels being its analysis window. A figure
that cannot be had (a stale price, a book out of sync, a shard's state too old) leaves its
gauge out and counts a refresh error with the reason, rather than exporting a guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from analyzer.analytics.funding import FUNDING_SCHEMA, realised_funding
from analyzer.analytics.state import INSTRUMENT_SCHEMA
from analyzer.portfolio.book import Portfolio, load
from analyzer.portfolio.errors import PortfolioError
from analyzer.portfolio.market import REALISED_SCHEMA, Book, Market
from analyzer.portfolio.profiles import overlay, place, profiles
from analyzer.portfolio.valuation import value

if TYPE_CHECKING:
    from analyzer.collector import FeedRunner

log = logging.getLogger(__name__)

PREFIX = "analyzer_"
BOOK_LEVELS = 200  # levels a side handed to the valuation (a hedge's slippage)
TICKERS = {"venue": pl.String, "symbol": pl.String, "mark": pl.Float64, "index": pl.Float64,
           "funding_rate": pl.Float64, "funding_hours": pl.Float64,
           "next_funding_time": pl.Int64, "ts_local": pl.Int64, "ts_exchange": pl.Int64}
MIDS = {"venue": pl.String, "symbol": pl.String, "mid": pl.Float64, "spread_bps": pl.Float64,
        "ts_local": pl.Int64}


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


def live_market(runners: Sequence[FeedRunner], now: int) -> Market:
    """The collector's state as a ``Market`` (module doc)."""
    inst, tick, mids, fund = [], [], [], []
    books: dict[tuple[str, str], Any] = {}
    for r in runners:
        inst += [tuple(getattr(i, c) for c in INSTRUMENT_SCHEMA)
                 for i in list(r.instruments.values())]
        tick += [(r.venue, t.symbol, t.mark_price, t.index_price, t.funding_rate,
                  t.funding_interval_hours, t.next_funding_time, t.ts_local, t.ts_exchange)
                 for t in list(r.tickers.values())]
        fund += [(t.ts_exchange, r.venue, t.symbol, t.funding_rate, t.funding_interval_hours,
                  t.next_funding_time) for t in list(r.funding_marks.values())]
        for sb in list(r.books.books.values()):
            top = sb.book.top() if sb.in_sync else None
            if top is None:
                continue
            mid = (top[0] + top[2]) / 2
            mids.append((r.venue, sb.symbol, mid, (top[2] - top[0]) / mid * 1e4, sb.last_ns))
            books[(r.venue, sb.symbol)] = sb

    def book(venue: str, symbol: str) -> Book | None:
        sb = books.get((venue, symbol))
        if sb is None:
            return None
        return Book(sb.book.bids(BOOK_LEVELS), sb.book.asks(BOOK_LEVELS), sb.last_ns)

    return Market(pl.DataFrame(inst, schema=INSTRUMENT_SCHEMA, orient="row"),
                  pl.DataFrame(tick, schema=TICKERS, orient="row"),
                  pl.DataFrame(mids, schema=MIDS, orient="row"), now,
                  realised_frame=_realised(pl.DataFrame(fund, schema=FUNDING_SCHEMA,
                                                        orient="row")),
                  books=book)


def state_market(instruments: pl.DataFrame, tickers: pl.DataFrame, levels: pl.DataFrame,
                 books: pl.DataFrame, marks: pl.DataFrame, now: int) -> Market:
    """The shards' latest states as a ``Market`` (``analyzer.cluster.analytics``), from the
    frames of ``analyzer.analytics.live``: ``instruments`` (INSTRUMENT_SCHEMA), ``tickers``
    (TICKER_SCHEMA), the books' analysis windows (``levels``, and ``books`` with their sync
    status: a stale shard's books out of sync, hence without mid or levels here) and the
    funding marks (FUNDING_SCHEMA). What ``live_market`` takes from the runners, but for a
    book's levels: its window, not ``BOOK_LEVELS`` of the live book."""
    ok = books.filter("in_sync").select("book", "venue", "symbol", "ts_book")
    best = levels.filter(pl.col("level") == 0)
    bid = pl.col("price")
    ask = pl.col("price_ask")
    mid = (bid + ask) / 2
    tops = (ok.join(best.filter(pl.col("side") == "bid"), on="book")
            .join(best.filter(pl.col("side") == "ask").select("book", "price"), on="book",
                  suffix="_ask"))  # (both sides: a one-sided book has no mid, as live)
    mids = tops.select("venue", "symbol", mid=mid, spread_bps=(ask - bid) / mid * 1e4,
                       ts_local="ts_book")
    ids = {(v, s): (b, ts) for b, v, s, ts in tops.select("book", "venue", "symbol", "ts_book")
           .iter_rows()}

    def book(venue: str, symbol: str) -> Book | None:
        # A hedge's slippage walks these levels: the window, the exact levels until the largest
        # analysed notional ([analytics] / [carry] notionals_usd), at most [analytics]
        # max_levels a side. A hedge it cannot fill is "beyond the stored levels", as on a thin
        # book (``hedge._row``, ``check._slippage``), never a price from a cut book.
        got = ids.get((venue, symbol))
        if got is None:
            return None
        rows = levels.filter(pl.col("book") == got[0])

        def side(name: str) -> list[tuple[float, float]]:
            r = rows.filter(pl.col("side") == name).sort("level")
            return list(zip(r["price"].to_list(), r["size"].to_list(), strict=True))

        return Book(side("bid"), side("ask"), got[1])

    tick = tickers.rename({"mark_price": "mark", "index_price": "index",
                           "funding_interval_hours": "funding_hours"}).select(list(TICKERS))
    return Market(instruments.select(list(INSTRUMENT_SCHEMA)), tick, mids, now,
                  realised_frame=_realised(marks), books=book)


def _realised(marks: pl.DataFrame) -> pl.DataFrame:
    """The settlements of the funding marks (FUNDING_SCHEMA rows): ``realised_funding``."""
    return realised_funding(marks) if marks.height else pl.DataFrame(schema=REALISED_SCHEMA)


class PortfolioWatch:
    """The latest valuation of one portfolio file, and its gauges."""

    def __init__(self, path: str | Path, max_age_s: float) -> None:
        self.path = Path(path)
        self.portfolio: Portfolio = load(self.path)  # PortfolioError: a bad file stops start-up
        profiles(self.portfolio)  # (its profile and ranges checked at start too)
        self.max_age_s = max_age_s
        self.latest: dict[str, Any] | None = None
        self.refreshed_ns = 0
        self.errors: dict[str, int] = {}
        self.last_error = ""

    def refresh(self, market: Market, regime: str | None = None) -> None:
        """Value the portfolio; on a PortfolioError keep nothing stale: the gauges go."""
        try:
            v = value(self.portfolio, market, self.max_age_s)
        except PortfolioError as exc:
            reason = str(exc).split(":")[0][:40]
            self.errors[reason] = self.errors.get(reason, 0) + 1
            if str(exc) != self.last_error:
                log.warning("portfolio %s: %s", self.path.name, exc)
            self.last_error = str(exc)
            self.latest = None
            return
        table = profiles(self.portfolio)
        totals = v.totals()
        self.latest = {
            "legs": v.legs, "assets": v.by_asset(), "totals": totals,
            "place": place(totals, table, self.portfolio.profile),
            "overlay": overlay(totals, table[self.portfolio.profile], regime),
        }
        self.last_error = ""
        self.refreshed_ns = time.time_ns()

    def families(self) -> Iterator[Metric]:
        errors = _counter("portfolio_refresh_errors", (
            "Portfolio valuations that could not be made, by reason (stale data, an instrument "
            "not collected)"), ["reason"])
        for reason, n in self.errors.items():
            errors.add_metric([reason], n)
        yield errors
        last = _gauge("portfolio_last_refresh_timestamp_seconds",
                      "When the portfolio was last valued", [])
        if self.refreshed_ns:
            last.add_metric([], self.refreshed_ns / 1e9)
        yield last
        if self.latest is None:
            return
        pos = ["venue", "symbol", "side"]
        liq = _gauge("portfolio_liquidation_distance", (
            "Distance of a position's liquidation price from its mark, a fraction (positive: "
            "above the mark); none: no liquidation price"), pos)
        ratio = _gauge("portfolio_margin_ratio", (
            "Maintenance margin / equity of a position (1: liquidation)"), pos)
        fund = _gauge("portfolio_funding_usd_per_day", (
            "Funding a position receives a day (negative: it pays), at the current and the "
            "7-day realised rate"), [*pos, "rate"])
        ann = _gauge("portfolio_funding_annualized", (
            "Funding a position receives a year at the current rate, a fraction of its notional "
            "(negative: a cost)"), pos)
        for leg in self.latest["legs"]:
            labels = [leg.pos.venue, leg.pos.symbol, leg.pos.side]
            if leg.liq_distance is not None:
                liq.add_metric(labels, leg.liq_distance)
            if leg.margin_ratio is not None:
                ratio.add_metric(labels, leg.margin_ratio)
            if leg.funding_day_usd is not None:
                fund.add_metric([*labels, "current"], leg.funding_day_usd)
                ann.add_metric(labels, leg.funding_day_usd * 365 / abs(leg.notional_usd))
            if leg.funding_day_usd_7d is not None:
                fund.add_metric([*labels, "7d"], leg.funding_day_usd_7d)
        yield from (liq, ratio, fund, ann)
        t = self.latest["totals"]
        totals = _gauge("portfolio_value_usd", "The portfolio's totals in USD", ["kind"])
        for kind in ("equity_usd", "spot_value_usd", "futures_notional_usd",
                     "net_exposure_usd"):
            totals.add_metric([kind.removesuffix("_usd")], t[kind])
        yield totals
        expo = _gauge("portfolio_net_exposure_usd", (
            "Spot value plus the futures' exposure, per asset"), ["asset"])
        for a in self.latest["assets"]:
            expo.add_metric([a["asset"]], a["net_exposure_usd"])
        yield expo
        p = self.latest["place"]
        inside = _gauge("portfolio_inside_profile", (
            "1 while the portfolio is inside its chosen allocation profile"), ["profile"])
        inside.add_metric([p["profile"]], float(p["inside"]))
        shares = _gauge("portfolio_allocation", (
            "spot_share (spot / equity) and net_futures (futures exposure / spot: -1 fully "
            "hedged)"), ["profile", "kind"])
        for kind in ("spot_share", "net_futures"):
            if t[kind] is not None:
                shares.add_metric([p["profile"], kind], t[kind])
        gap = _gauge("portfolio_profile_move_usd", (
            "Futures exposure or spot (USD) to add to come inside the profile (negative: short "
            "more, sell spot)"), ["profile", "kind"])
        gap.add_metric([p["profile"], "futures"], p["futures_usd"])
        gap.add_metric([p["profile"], "spot"], p["spot_usd"])
        yield from (inside, shares, gap)
        ov = self.latest["overlay"]
        if ov is not None:
            o = _gauge("portfolio_overlay_move_usd", (
                "Futures exposure (USD) the trend overlay prescribes to add (negative: open "
                "more hedge)"), ["profile", "regime"])
            o.add_metric([p["profile"], ov["regime"]], ov["futures_usd"])
            yield o


__all__ = ["PortfolioWatch", "live_market", "state_market"]
