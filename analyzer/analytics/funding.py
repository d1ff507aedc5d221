"""Realised funding from a ticker history, predicted-vs-realised, and open-interest changes.

A ticker history is the stream of ``DerivativeTicker`` rows as a frame: (ts, venue, symbol,
funding_rate, funding_interval_hours, next_funding_time), ts and next_funding_time in ns. The
rate is per funding interval (not annualised) and is a *prediction* of the rate that will be
settled at ``next_funding_time``; positive funding: longs pay shorts. Annualised = rate * (24 / h)
* 365 with the interval h read from the data, never assumed.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analyzer.analytics.basis import duration_ns

# a ticker history's frame (module doc); live, the funding marks (the last ticker of each
# funding period) that the collector keeps
FUNDING_SCHEMA = {"ts": pl.Int64, "venue": pl.String, "symbol": pl.String,
                  "funding_rate": pl.Float64, "funding_interval_hours": pl.Float64,
                  "next_funding_time": pl.Int64}
HOURS_PER_YEAR = 24.0 * 365.0
_NS_PER_HOUR = 3_600 * 10**9


def realised_funding(tickers: pl.DataFrame) -> pl.DataFrame:
    """One row per funding settlement that the history shows to have passed.

    The settled rate of the event at time T is the last rate published (``ts <= T``) by a ticker
    whose ``next_funding_time == T``; the event counts as settled once the history of that
    (venue, symbol) holds any row with ``ts >= T``. ``interval_hours`` is the interval published
    with that rate, or, when the venue gave none, the gap since the previous settlement in the
    history (measured, not assumed; null for the first).

    Columns: ``venue, symbol, settle_ts, rate, interval_hours, rate_ann, published_ts``.
    """
    keys = ["venue", "symbol"]
    last_seen = tickers.group_by(keys).agg(_last=pl.col("ts").max())
    pts = tickers.filter(
        pl.col("funding_rate").is_not_null()
        & pl.col("next_funding_time").is_not_null()
        & (pl.col("ts") <= pl.col("next_funding_time"))
    )
    events = (
        pts.sort("ts")
        .group_by([*keys, "next_funding_time"])
        .agg(
            rate=pl.col("funding_rate").last(),
            _iv=pl.col("funding_interval_hours").last(),
            published_ts=pl.col("ts").last(),
        )
        .rename({"next_funding_time": "settle_ts"})
        .join(last_seen, on=keys)
        .filter(pl.col("_last") >= pl.col("settle_ts"))
        .sort([*keys, "settle_ts"])
    )
    gap = (pl.col("settle_ts") - pl.col("settle_ts").shift(1)).over(keys) / _NS_PER_HOUR
    return events.with_columns(
        interval_hours=pl.coalesce(pl.col("_iv").cast(pl.Float64), gap.cast(pl.Float64))
    ).with_columns(
        rate_ann=pl.col("rate") * (24.0 / pl.col("interval_hours")) * 365.0
    ).select(*keys, "settle_ts", "rate", "interval_hours", "rate_ann", "published_ts")


def predicted_vs_realised(
    tickers: pl.DataFrame, horizons: Sequence[str | int] = ("1h",)
) -> pl.DataFrame:
    """Prediction error of the published rate ``horizon`` before each settlement.

    ``predicted`` is the last rate published at or before ``settle_ts - horizon`` for that same
    settlement (as-of backward within rows whose ``next_funding_time == settle_ts``); null when the
    settlement's interval had not started yet (horizon longer than the interval). ``error =
    rate - predicted`` (per interval). Long format, one row per settlement and horizon:
    ``venue, symbol, settle_ts, horizon, predicted, predicted_ts, rate, error``.
    """
    keys = ["venue", "symbol", "settle_ts"]
    realised = realised_funding(tickers)
    preds = tickers.filter(pl.col("funding_rate").is_not_null()).select(
        "venue", "symbol", "ts", settle_ts="next_funding_time", predicted="funding_rate",
        predicted_ts="ts",
    ).sort("ts")
    frames = []
    for h in horizons:
        left = realised.select(
            *keys, "rate", horizon=pl.lit(str(h)), _t=pl.col("settle_ts") - duration_ns(h)
        ).sort("_t")
        frames.append(
            left.join_asof(preds, left_on="_t", right_on="ts", by=keys, strategy="backward",
                           check_sortedness=False)
        )
    out = pl.concat(frames) if frames else realised.head(0)
    return out.select(
        *keys, "horizon", "predicted", "predicted_ts", "rate",
        error=pl.col("rate") - pl.col("predicted"),
    ).sort([*keys, "horizon"])


def mean_realised(
    realised: pl.DataFrame, window: str | int = "7d", now: int | None = None
) -> pl.DataFrame:
    """Annualised mean realised funding per (venue, symbol) over settlements with ``settle_ts`` in
    ``(now - window, now]`` (``now`` defaults to the latest settlement in the frame).

    Interval-weighted: ``sum(rate) / sum(interval_hours) * 8760``, i.e. what a position held
    through those settlements earned per year; with mixed 1 h and 8 h intervals a plain mean of
    per-event annualised rates would overweight the short intervals. Columns: ``venue, symbol,
    n_settlements, rate_sum, hours, funding_ann_mean``.
    """
    end = now if now is not None else realised.get_column("settle_ts").max()
    start = end - duration_ns(window)  # type: ignore[operator]
    return (
        realised.filter((pl.col("settle_ts") > start) & (pl.col("settle_ts") <= end))
        .group_by("venue", "symbol")
        .agg(
            n_settlements=pl.len(),
            rate_sum=pl.col("rate").sum(),
            hours=pl.col("interval_hours").sum(),
        )
        .with_columns(funding_ann_mean=pl.col("rate_sum") / pl.col("hours") * HOURS_PER_YEAR)
        .sort("venue", "symbol")
    )


def oi_change(
    oi_history: pl.DataFrame,
    horizons: Sequence[str | int] = ("1h", "24h"),
    *,
    tolerance: str | int | None = "5m",
) -> pl.DataFrame:
    """Open-interest change over each horizon, per row of ``oi_history``.

    Input: ``ts, venue, symbol, open_interest`` (contracts) and optionally ``oi_usd``. For each
    horizon h (label as given, e.g. ``1h``) the reference is the last sample of the same
    (venue, symbol) at or before ``ts - h`` (as-of backward), accepted only if it is at most
    ``tolerance`` older than ``ts - h`` (a hole in the history gives null, not a longer change).
    Adds ``oi_chg_{h}`` (contracts), ``oi_chg_pct_{h}`` (percent of the reference, contracts) and,
    when ``oi_usd`` is given, ``oi_usd_chg_{h}`` (USD; includes the price effect on linear OI).
    Sorted by (venue, symbol, ts). Live: pass the trailing history, read the last row per key.
    """
    keys = ["venue", "symbol"]
    has_usd = "oi_usd" in oi_history.columns
    out = oi_history.sort([*keys, "ts"])
    tol = duration_ns(tolerance) if tolerance is not None else None
    right = out.select(
        *keys, "ts", _oi="open_interest", **({"_usd": pl.col("oi_usd")} if has_usd else {})
    ).sort("ts")
    for h in horizons:
        left = out.with_columns(_t=pl.col("ts") - duration_ns(h)).sort("_t")
        j = left.join_asof(
            right.rename({"ts": "_ref_ts"}), left_on="_t", right_on="_ref_ts", by=keys,
            strategy="backward", tolerance=tol, check_sortedness=False, coalesce=False,
        )
        new = [
            (pl.col("open_interest") - pl.col("_oi")).alias(f"oi_chg_{h}"),
            ((pl.col("open_interest") / pl.col("_oi") - 1.0) * 100.0).alias(f"oi_chg_pct_{h}"),
        ]
        if has_usd:
            new.append((pl.col("oi_usd") - pl.col("_usd")).alias(f"oi_usd_chg_{h}"))
        out = j.with_columns(new).drop("_t", "_ref_ts", "_oi", "_usd", strict=False).sort(
            [*keys, "ts"]
        )
    return out
