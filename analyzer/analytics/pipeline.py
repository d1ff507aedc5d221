"""The one pipeline from book windows, tickers and open interest to every metric: liquidity,
basis and funding, the constant-maturity curve, cross-venue figures, anomalies and carry
candidates. The live tick (``live.py``) and the backfill (``batch.py``) both call ``evaluate``;
they differ only in where the inputs come from.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analyzer.analytics import anomalies as anomaly_mod
from analyzer.analytics.basis import basis, constant_maturity, cross_venue, notional_label
from analyzer.analytics.carry import candidates
from analyzer.analytics.liquidity import liquidity
from analyzer.analytics.state import market_state
from analyzer.config import Analytics, Carry

SERIES_METRICS = ("basis_spot_ann", "premium", "funding_ann")

# the candidate columns stored in carry_candidates (sql/schema.sql)
CANDIDATE_COLUMNS = (
    "ts", "base", "notional_usd", "spot_venue", "spot_symbol", "venue", "symbol", "market",
    "tenor", "dte_days", "same_exchange", "spot_buy_vwap", "deriv_sell_vwap", "gross", "fees",
    "exit_slippage", "financing", "funding_ann_used", "funding_source", "net_ann", "net_usd",
    "spot_slippage_bps", "deriv_slippage_bps", "spot_depth_usd", "deriv_depth_usd", "oi_usd",
    "g_freshness", "g_expiry", "g_liquidity", "g_open_interest", "g_outlier", "g_economics",
    "passes_all", "reject_gate", "reject_detail",
)


def candidate_rows(cand: pl.DataFrame) -> pl.DataFrame:
    """Candidates in the layout of the ``carry_candidates`` table."""
    return cand.select(CANDIDATE_COLUMNS).with_columns(pl.col("reject_gate").cast(pl.String))


@dataclass(slots=True)
class Results:
    """The frames of one evaluation (a live tick, or a backfill chunk of many instants)."""

    ts: int
    summary: pl.DataFrame
    depth: pl.DataFrame
    slippage: pl.DataFrame
    basis: pl.DataFrame
    tradable: pl.DataFrame
    curve: pl.DataFrame
    cross: pl.DataFrame
    anomalies: pl.DataFrame
    suppressed: pl.DataFrame
    candidates: pl.DataFrame

    def tables(self) -> dict[str, pl.DataFrame]:
        """Store table -> rows (the candidates are sampled apart: ``carry_candidates``)."""
        return {"liquidity": self.summary, "depth": self.depth, "slippage": self.slippage,
                "basis": self.basis, "tradable_basis": self.tradable,
                "basis_curve": self.curve, "cross_venue": self.cross,
                "anomalies": self.anomalies}


def tradable_long(basis_df: pl.DataFrame, notionals: list[float]) -> pl.DataFrame:
    """basis's wide ``tradable_<N>`` / ``tradable_ann_<N>`` columns as rows per notional."""
    parts = [
        basis_df.select("ts", "venue", "symbol", "base", "tenor",
                        notional_usd=pl.lit(float(n)),
                        tradable=pl.col(f"tradable_{notional_label(n)}"),
                        tradable_ann=pl.col(f"tradable_ann_{notional_label(n)}"))
        for n in notionals
    ]
    return pl.concat(parts)


def evaluate(analytics: Analytics, carry: Carry, levels: pl.DataFrame, extra: pl.DataFrame,
             books: pl.DataFrame, tickers: pl.DataFrame, oi: pl.DataFrame,
             instruments: pl.DataFrame, *,
             anomaly_state: anomaly_mod.AnomalyState | None = None,
             funding_mean: pl.DataFrame | None = None) -> Results:
    """Every metric for the books of ``books`` (one instant or many). ``anomaly_state``: the
    live caller's trailing state (scores this tick's samples); None scores every sample of the
    frames against the others (batch). ``funding_mean``: realised funding for the perpetual
    carry (``funding.mean_realised``); None: the current rate."""
    notionals = sorted({float(n) for n in (*analytics.notionals_usd, *carry.notionals_usd)})
    summary, depth, slip = liquidity(levels, books, analytics.bands_bps, notionals,
                                     analytics.imbalance_levels, extra=extra)
    summary = summary.join(books.select("book", "ts_book", ts_market="ts_exchange"),
                           on="book", how="left")
    state = market_state(summary, tickers, oi, instruments)
    vwaps = slip.select("ts", "venue", "symbol", "notional_usd", "buy_vwap", "sell_vwap")
    b = basis(state, vwaps, notionals=notionals, max_age_s=analytics.max_quote_age_seconds)
    series = anomaly_mod.series_from_basis(b, SERIES_METRICS)
    if anomaly_state is not None:
        flags, suppressed = anomaly_state.update(series)
    else:
        flags, suppressed = anomaly_mod.anomalies(
            series, window=f"{round(analytics.anomaly_window_seconds)}s", k=analytics.anomaly_z,
            min_samples=analytics.anomaly_min_samples)
    summary = summary.drop("book", "ts_market")
    cand = pl.DataFrame()
    if carry.enabled and b.height:
        spot_legs = summary.join(instruments.filter(pl.col("market") == "spot"),
                                 on=["venue", "symbol"]).select(
            "ts", "venue", "symbol", "base", "quote", "exchange")
        cand = candidates(b, slip, summary, depth, spot_legs=spot_legs,
                          notionals=carry.notionals_usd, fees=carry.fee_schedule(),
                          cfg=carry.gates, funding_mean=funding_mean, anomalies=flags)
    return Results(
        int(books["ts"].max() or 0) if books.height else 0,
        summary.drop("ts_book"), depth.drop("book"), slip.drop("book"),
        b.drop([c for c in b.columns if c.startswith("tradable")] + ["inverse"]),
        tradable_long(b, notionals), constant_maturity(b), cross_venue(b), flags, suppressed,
        cand,
    )
