"""Funding a position has earned or paid since it was opened, from the settlements the store
shows (``analytics.funding.realised_funding``: the last rate a venue published for each
settlement that has passed).

At each settlement ``T`` in ``(opened, until]`` a position pays ``s * rate * value(T)``, ``s``
+1 long, -1 short (positive funding: longs pay shorts), where ``value(T)`` is the position's USD
value at the mark of ``T`` (the last stored mark at or before ``T``): ``coins * mark`` for
linear contracts, the face value ``Q`` for inverse ones (their funding is paid in coins on
``Q / mark``: ``Q`` USD at the mark).
"""

from __future__ import annotations

import polars as pl

from analyzer.portfolio.market import Market
from analyzer.store.research import frame

MARKS_SQL = """
SELECT ts_exchange AS ts, mark_price FROM derivative_tickers
WHERE venue = ? AND symbol = ? AND mark_price IS NOT NULL AND ts_exchange <= ?
ORDER BY ts_exchange
"""


def accrued(market: Market, venue: str, symbol: str, side: int, size: float, *,
            inverse: bool, contract_size: float = 1.0, opened: int,
            until: int | None = None) -> pl.DataFrame:
    """One row per settlement of ``(opened, until]``: settle_ts, rate, mark, value_usd,
    funding_usd (received positive). ``size``: coins (linear) or contracts (inverse)."""
    end = until if until is not None else market.data_now()
    settled = market.realised().filter(
        (pl.col("venue") == venue) & (pl.col("symbol") == symbol)
        & (pl.col("settle_ts") > opened) & (pl.col("settle_ts") <= end)
    ).select("settle_ts", "rate").sort("settle_ts")
    marks = frame(market.store(), MARKS_SQL, [venue, symbol, end])
    out = settled.join_asof(marks, left_on="settle_ts", right_on="ts", strategy="backward")
    value = (pl.lit(size * contract_size) if inverse else pl.col("mark_price") * size)
    return out.select(
        "settle_ts", "rate", mark="mark_price", value_usd=value,
        funding_usd=-side * pl.col("rate") * value,
    )


__all__ = ["accrued"]
