"""The portfolio watched live: the collector values the ``[portfolio] file`` against its own
state every ``[portfolio] refresh_seconds`` and exports the figures the Investor dashboard and
the alert rules read (``prometheus/rules.yml``: a liquidation near, hedge funding turned into a
cost, the portfolio outside its profile).

The market comes from the collector's memory, not the store: each book's top and its best
levels (in sync only), the merged tickers, the instruments, and the funding settlements seen
since start (``FeedRunner.funding_marks``). A figure that cannot be had (a stale price, a book
out of sync) leaves its gauge out and counts a refresh error with the reason, rather than
exporting a guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from analyzer.analytics.funding import realised_funding
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
INSTRUMENTS = {"venue": pl.String, "symbol": pl.String, "exchange": pl.String,
               "market": pl.String, "base": pl.String, "quote": pl.String,
               "inverse": pl.Boolean, "contract_size": pl.Float64, "tick_size": pl.Float64,
               "lot_size": pl.Float64, "expiry": pl.Int64, "contract_value": pl.Float64}
TICKERS = {"venue": pl.String, "symbol": pl.String, "mark": pl.Float64, "index": pl.Float64,
           "funding_rate": pl.Float64, "funding_hours": pl.Float64,
           "next_funding_time": pl.Int64, "ts_local": pl.Int64, "ts_exchange": pl.Int64}
MIDS = {"venue": pl.String, "symbol": pl.String, "mid": pl.Float64, "spread_bps": pl.Float64,
        "ts_local": pl.Int64}
FUNDING = {"ts": pl.Int64, "venue": pl.String, "symbol": pl.String, "funding_rate": pl.Float64,
           "funding_interval_hours": pl.Float64, "next_funding_time": pl.Int64}


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


def live_market(runners: Sequence[FeedRunner], now: int) -> Market:
    """The collector's state as a ``Market`` (module doc)."""
    inst, tick, mids, fund = [], [], [], []
    books: dict[tuple[str, str], Any] = {}
    for r in runners:
        inst += [(i.venue, i.symbol, i.exchange, i.market, i.base, i.quote, i.inverse,
                  i.contract_size, i.tick_size, i.lot_size, i.expiry, i.contract_value)
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
    realised = realised_funding(pl.DataFrame(fund, schema=FUNDING, orient="row")) \
        if fund else pl.DataFrame(schema=REALISED_SCHEMA)

    def book(venue: str, symbol: str) -> Book | None:
        sb = books.get((venue, symbol))
        if sb is None:
            return None
        return Book(sb.book.bids(BOOK_LEVELS), sb.book.asks(BOOK_LEVELS), sb.last_ns)

    return Market(pl.DataFrame(inst, schema=INSTRUMENTS, orient="row"),
                  pl.DataFrame(tick, schema=TICKERS, orient="row"),
                  pl.DataFrame(mids, schema=MIDS, orient="row"), now,
                  realised_frame=realised, books=book)


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


__all__ = ["PortfolioWatch", "live_market"]
