"""Prometheus families of the latest analytics tick, built at scrape time from its frames.

Labels stay bounded: venue and symbol come from the configuration (globs expand to the venue's
listing), tenor is ``perp`` / ``q1`` / ``q2`` / ``q3`` rather than an expiry date, bands and
notionals are the configured few. Values are fractions unless the name says bps or usd; NULLs
(a book that cannot fill a notional, an invalid leg) are left out rather than exported as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import polars as pl
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from analyzer.analytics.opportunities import pair_label
from analyzer.analytics.trend import REGIME_VALUE

if TYPE_CHECKING:
    from analyzer.analytics.live import LiveAnalytics

PREFIX = "analyzer_"


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


def _num(x: float) -> str:
    """A band or notional as a label: 10, 25, 100000 (no trailing .0)."""
    return f"{x:g}" if x < 1e6 else f"{x:.0f}"


def _rows(df: pl.DataFrame, *cols: str) -> Iterable[tuple]:
    return df.select(cols).iter_rows()


def families(a: LiveAnalytics) -> Iterator[Metric]:
    ticks = CounterMetricFamily(PREFIX + "analytics_ticks", "Analytics evaluations run",
                                labels=[])
    ticks.add_metric([], a.ticks)
    errors = CounterMetricFamily(PREFIX + "analytics_errors", "Analytics ticks that failed",
                                 labels=[])
    errors.add_metric([], a.errors)
    tick_s = _gauge("analytics_tick_seconds", "Duration of the last analytics tick", [])
    tick_s.add_metric([], a.last_tick_seconds)
    anomalies = CounterMetricFamily(
        PREFIX + "anomalies", "Samples flagged as anomalies (not opportunities), by check",
        labels=["venue", "base", "tenor", "metric", "reason"])
    for labels, n in list(a.anomalies_total.items()):
        anomalies.add_metric(list(labels), n)
    suppressed = CounterMetricFamily(
        PREFIX + "anomalies_suppressed",
        "Samples not scored because a leg was stale, out of sync or missing", labels=["reason"])
    for reason, n in list(a.suppressed_total.items()):
        suppressed.add_metric([reason], n)
    yield from (ticks, errors, tick_s, anomalies, suppressed)
    r = a.latest
    if r is not None:
        yield from _liquidity(r.summary, r.depth, r.slippage)
        yield from _basis(r.basis, r.tradable, r.curve, r.cross)
        yield from _carry(a, r.candidates)
    if a.trend is not None and a.trend.latest is not None:
        yield from _trend(a.trend.latest, a.trend.label)
    if a.portfolio is not None:
        yield from a.portfolio.families()


def _trend(df: pl.DataFrame, interval: str) -> Iterator[Metric]:
    """The last trend refresh (``trend.regimes()`` rows); instruments whose newest trade is more
    than two bars old are left out (their regime is of old data)."""
    regime = _gauge("trend_regime", "Moving-average trend regime over the closed bars: 1 up "
                    "(fast SMA above slow), -1 down, 0 none (too few bars yet)",
                    ["venue", "symbol", "base", "interval"])
    ma = _gauge("trend_ma", "Simple moving average of the closes of the last fast / slow "
                "closed bars", ["venue", "symbol", "base", "interval", "ma"])
    cross = _gauge("trend_last_cross_timestamp_seconds", "Open time of the bar at which the "
                   "regime last flipped between up and down (within the lookback)",
                   ["venue", "symbol", "base", "interval"])
    for venue, symbol, base, r, fast, slow, crossed, stale in _rows(
            df, "venue", "symbol", "base", "regime", "fast_ma", "slow_ma", "last_cross_ns",
            "stale"):
        if stale or base is None:
            continue
        labels = [venue, symbol, base, interval]
        regime.add_metric(labels, REGIME_VALUE[r])
        for name, v in (("fast", fast), ("slow", slow)):
            if v is not None:
                ma.add_metric([*labels, name], v)
        if crossed is not None:
            cross.add_metric(labels, crossed / 1e9)
    yield from (regime, ma, cross)


def _carry(a: LiveAnalytics, cand: pl.DataFrame) -> Iterator[Metric]:
    lc = a.lifecycle
    best = _gauge("carry_best_net_annualized", "Best net annualised carry among the candidates "
                  "whose legs are fresh and in sync (any other gate)", ["base", "tenor"])
    gates = _gauge("carry_candidates", "Candidates at the last tick by the first gate that "
                   "rejected them (none: every gate passed)", ["base", "gate"])
    bases: set[str] = set()
    if cand.height:
        bases = set(cand["base"].unique())
        fresh = cand.filter(pl.col("g_freshness") & pl.col("net_ann").is_not_null())
        for base, tenor, v in fresh.group_by("base", "tenor").agg(
                pl.col("net_ann").max()).iter_rows():
            best.add_metric([base, tenor], v)
        for base, gate, n in cand.group_by("base", pl.col("reject_gate").cast(pl.String)
                                           .fill_null("none")).len().iter_rows():
            gates.add_metric([base, gate], n)
    opened = CounterMetricFamily(PREFIX + "opportunities_opened", "Opportunities opened",
                                 labels=["base"])
    for base, n in list(lc.opened_total.items()):
        opened.add_metric([base], n)
    closed = CounterMetricFamily(PREFIX + "opportunities_closed", "Opportunities closed, by "
                                 "reason", labels=["reason"])
    for reason, n in list(lc.closed_total.items()):
        closed.add_metric([reason], n)
    rows = lc.open_rows()
    count = _gauge("opportunities_open", "Open carry opportunities", ["base"])
    for base in sorted(bases | {r["base"] for r in rows}):
        count.add_metric([base], sum(r["base"] == base for r in rows))
    keys = ["base", "tenor", "pair", "spot_venue", "spot_symbol", "venue", "symbol",
            "notional_usd"]
    net = _gauge("opportunity_net_annualized", "Net annualised carry of an open opportunity "
                 "(every gate passed, persistently)", keys)
    for row in rows:
        if row["net_ann"] is not None:
            net.add_metric([row["base"], row["tenor"], pair_label(row), row["spot_venue"],
                            row["spot_symbol"], row["venue"], row["symbol"],
                            _num(row["notional_usd"])], row["net_ann"])
    sent = CounterMetricFamily(PREFIX + "notifications", "Webhook / command notifications "
                               "of opportunities", labels=["result"])
    sent.add_metric(["sent"], a.notifier.sent)
    sent.add_metric(["failed"], a.notifier.failed)
    yield from (best, gates, opened, closed, count, net, sent)


def _liquidity(summary: pl.DataFrame, depth: pl.DataFrame, slip: pl.DataFrame
               ) -> Iterator[Metric]:
    micro = _gauge("microprice", "Size-weighted mid of the best levels", ["venue", "symbol"])
    imb = _gauge("book_imbalance", "(bid size - ask size) / (bid size + ask size) over the top "
                 "levels", ["venue", "symbol"])
    for venue, symbol, m, i in _rows(summary, "venue", "symbol", "microprice", "imbalance"):
        if m is not None:
            micro.add_metric([venue, symbol], m)
            imb.add_metric([venue, symbol], i)
    dep = _gauge("book_depth_usd", "USD resting within band_bps of the mid, per side",
                 ["venue", "symbol", "band_bps", "side"])
    exact = _gauge("book_depth_exact", "1 if book_depth_usd is exact, 0 if a lower bound (the "
                   "band reaches past a depth-limited snapshot)",
                   ["venue", "symbol", "band_bps", "side"])
    for venue, symbol, band, bid, ask, b_ok, a_ok in _rows(
            depth, "venue", "symbol", "band_bps", "bid_usd", "ask_usd", "bid_exact", "ask_exact"):
        for side, v, ok in (("bid", bid, b_ok), ("ask", ask, a_ok)):
            if v is not None:
                dep.add_metric([venue, symbol, _num(band), side], v)
                if ok is not None:
                    exact.add_metric([venue, symbol, _num(band), side], float(ok))
    sl = _gauge("slippage_bps", "Distance of a market order's VWAP from the mid, for a USD "
                "notional (buy walks the asks)", ["venue", "symbol", "notional_usd", "side"])
    for venue, symbol, n, buy, sell in _rows(slip, "venue", "symbol", "notional_usd", "buy_bps",
                                             "sell_bps"):
        for side, v in (("buy", buy), ("sell", sell)):
            if v is not None:
                sl.add_metric([venue, symbol, _num(n), side], v)
    yield from (micro, imb, dep, exact, sl)


def _basis(b: pl.DataFrame, tradable: pl.DataFrame, curve: pl.DataFrame, cross: pl.DataFrame
           ) -> Iterator[Metric]:
    keys = ["venue", "base", "tenor"]
    ann = _gauge("basis_annualized", "Dated-future basis (F - ref) / ref, simple annualised by "
                 "the exact time to expiry", [*keys, "reference"])
    raw = _gauge("basis", "Dated-future basis (F - ref) / ref, not annualised",
                 [*keys, "reference"])
    valid = _gauge("basis_valid", "1 if both legs were in sync and fresh", keys)
    dte = _gauge("days_to_expiry", "Days to the contract's expiry", keys)
    prem = _gauge("perp_premium", "Perpetual (mid, else mark) minus reference, over reference",
                  ["venue", "base", "reference"])
    fund = _gauge("funding_rate", "Funding rate per interval (positive: longs pay)",
                  ["venue", "base"])
    fund_ann = _gauge("funding_rate_annualized", "Funding annualised by the instrument's own "
                      "interval: rate * 24 / hours * 365", ["venue", "base"])
    interval = _gauge("funding_interval_hours", "Funding interval", ["venue", "base"])
    oi = _gauge("open_interest_usd", "Open interest in USD", keys)
    cols = ("venue", "base", "tenor", "market", "basis_spot", "basis_index", "basis_spot_ann",
            "basis_index_ann", "valid", "dte_days", "premium", "funding_rate", "funding_ann",
            "funding_interval_hours", "oi_usd")
    for (venue, base, tenor, market, bs, bi, bs_ann, bi_ann, ok, days, p, f, f_ann, h,
         oi_usd) in _rows(b, *cols):
        labels = [venue, base, tenor]
        valid.add_metric(labels, 1.0 if ok else 0.0)
        if oi_usd is not None:
            oi.add_metric(labels, oi_usd)
        if market == "future":
            dte.add_metric(labels, days)
            for ref, v, v_ann in (("spot", bs, bs_ann), ("index", bi, bi_ann)):
                if ok and v is not None:
                    raw.add_metric([*labels, ref], v)
                    ann.add_metric([*labels, ref], v_ann)
            continue
        if p is not None:
            prem.add_metric([venue, base, "index"], p)
        if ok and bs is not None:  # a perpetual's basis against spot is its premium
            prem.add_metric([venue, base, "spot"], bs)
        if f is not None:
            fund.add_metric([venue, base], f)
        if f_ann is not None:
            fund_ann.add_metric([venue, base], f_ann)
            interval.add_metric([venue, base], h)
    trad = _gauge("tradable_basis_annualized", "Cash-and-carry gross: sell the future at its "
                  "bid VWAP, buy spot at its ask VWAP, for a USD notional; annualised",
                  [*keys, "notional_usd"])
    for venue, base, tenor, n, v in _rows(tradable, "venue", "base", "tenor", "notional_usd",
                                          "tradable_ann"):
        if v is not None:
            trad.add_metric([venue, base, tenor, _num(n)], v)
    cm = _gauge("constant_maturity_basis_annualized", "Annualised basis interpolated in time "
                "to expiry between the bracketing quarterlies", ["venue", "base", "days"])
    for venue, base, days, v in _rows(curve, "venue", "base", "days", "basis_ann"):
        if v is not None:
            cm.add_metric([venue, base, str(days)], v)
    disp = _gauge("basis_dispersion_annualized", "Across venues: max - min (range) and std of "
                  "the annualised basis", ["base", "tenor", "stat"])
    oiw = _gauge("funding_oi_weighted_annualized", "Open-interest-weighted funding across "
                 "venues, annualised", ["base"])
    agg = _gauge("open_interest_aggregated_usd", "Open interest summed across venues, USD",
                 ["base", "tenor"])
    for base, tenor, rng, std, f, o in _rows(cross, "base", "tenor", "basis_ann_range",
                                             "basis_ann_std", "funding_ann_oiw", "oi_usd"):
        if rng is not None:
            disp.add_metric([base, tenor, "range"], rng)
        if std is not None:
            disp.add_metric([base, tenor, "std"], std)
        if f is not None and tenor == "perp":
            oiw.add_metric([base], f)
        if o is not None:
            agg.add_metric([base, tenor], o)
    yield from (ann, raw, valid, dte, prem, fund, fund_ann, interval, oi, trad, cm, disp, oiw,
                agg)
