"""The market state that ``basis`` reads, assembled by one function for the live path and for
batch, so that both compute the same numbers from the same inputs.

Inputs, each keyed by (``ts``, ``venue``, ``symbol``) on the evaluation grid:

- ``books``: the liquidity summary of each book at ``ts`` (``liquidity.liquidity``) with the
  book's ``ts_book`` (local time of its last applied change, for freshness) and ``ts_market``
  (venue time of that change: the instant its prices are as of, for the time to expiry);
- ``tickers``: the latest derivative ticker of each symbol as of ``ts`` (mark, index, funding),
  including index-only tickers keyed by a pair (base and quote, ``BTCUSD``), which serve every
  contract of that pair;
- ``oi``: the latest open interest of each symbol as of ``ts``;
- ``instruments``: the latest definition of each (venue, symbol).

Live, "latest as of ts" is what the collector holds in memory at the tick; in batch it is an
as-of (backward) join of the stored rows on the grid (:func:`as_of`), by local receipt time.
"""

from __future__ import annotations

import msgspec
import polars as pl

from analyzer.events import DerivativeTicker

INSTRUMENT_COLUMNS = ("venue", "symbol", "exchange", "market", "base", "quote", "inverse",
                      "contract_size", "expiry")
# The live instruments frame (a tick's, a shard's state's): those columns and the increments and
# contract value that the portfolio's valuation reads (analyzer.portfolio.live).
INSTRUMENT_SCHEMA = {"venue": pl.String, "symbol": pl.String, "exchange": pl.String,
                     "market": pl.String, "base": pl.String, "quote": pl.String,
                     "inverse": pl.Boolean, "contract_size": pl.Float64,
                     "tick_size": pl.Float64, "lot_size": pl.Float64, "expiry": pl.Int64,
                     "contract_value": pl.Float64}
TICKER_COLUMNS = ("mark_price", "index_price", "funding_rate", "funding_interval_hours",
                  "next_funding_time")
KEYS = ["ts", "venue", "symbol"]

def latest_ticker(prev: DerivativeTicker | None, ev: DerivativeTicker) -> DerivativeTicker:
    """A symbol's latest ticker, field by field: ``ev`` with the fields it does not carry
    (None) taken from ``prev`` (venues send mark, index and funding in separate messages)."""
    if prev is None:
        return ev
    missing = {f: getattr(prev, f) for f in TICKER_COLUMNS if getattr(ev, f) is None}
    return msgspec.structs.replace(ev, **missing) if missing else ev


# Venues that publish one index for every contract of a pair key its ticker by the pair, the
# contracts' base and quote (``BTCUSD``); a contract's own index, where it has one, comes first.
PAIR = pl.col("base") + pl.col("quote")


def market_state(books: pl.DataFrame, tickers: pl.DataFrame, oi: pl.DataFrame,
                 instruments: pl.DataFrame) -> pl.DataFrame:
    """One row per book and ``ts``, in the column layout of ``analyzer.analytics.basis``. ``mid``,
    ``bid`` and ``ask`` are null unless the book is in sync (status ``ok``); the index is the
    symbol's own ticker's, else its pair's; ``quote_age_s`` is ``ts`` minus the local time of
    the book's last change (local clock on both sides: venue clocks skew, and a simulated
    venue's runs faster)."""
    pair_index = (
        tickers.filter(pl.col("index_price").is_not_null())
        .select("ts", "venue", pl.col("symbol").alias("_pair"),
                pl.col("index_price").alias("_pair_index"))
    )
    ok = pl.col("status") == "ok"
    state = (
        books.select("ts", "venue", "symbol", "best_bid", "best_ask", "mid", "status", "ts_book",
                     "ts_market")
        .join(instruments.select(INSTRUMENT_COLUMNS), on=["venue", "symbol"], how="inner")
        .join(tickers.select(*KEYS, *TICKER_COLUMNS), on=KEYS, how="left")
        .with_columns(_pair=PAIR)
        .join(pair_index, on=["ts", "venue", "_pair"], how="left")
        .join(oi.select(*KEYS, "open_interest"), on=KEYS, how="left")
    )
    return state.select(
        "ts", "exchange", "venue", "symbol", "base", "quote", "market", "inverse",
        "contract_size", "expiry", "ts_market",
        bid=pl.when(ok).then("best_bid"),
        ask=pl.when(ok).then("best_ask"),
        mid=pl.when(ok).then("mid"),
        in_sync=ok,
        quote_age_s=(pl.col("ts") - pl.col("ts_book")) / 1e9,
        mark=pl.col("mark_price"),
        index=pl.coalesce("index_price", "_pair_index"),
        funding_rate=pl.col("funding_rate"),
        funding_interval_hours=pl.col("funding_interval_hours"),
        next_funding_time=pl.col("next_funding_time"),
        open_interest=pl.col("open_interest"),
    )


def as_of(rows: pl.DataFrame, grid: pl.DataFrame, columns: tuple[str, ...] | list[str]
          ) -> pl.DataFrame:
    """For each (ts, venue, symbol) of ``grid``, each of ``columns`` as of the last row of
    ``rows`` (keyed by ``ts_local``, venue, symbol) received at or before ``ts`` that carries
    it (venues send mark, index and funding in separate messages: a mark-only ticker leaves
    the funding as it was, as ``latest_ticker`` does live); null when none."""
    right = (rows.select(pl.col("ts_local").alias("ts"), "venue", "symbol", *columns).sort("ts")
             .with_columns(pl.col(*columns).forward_fill().over("venue", "symbol")))
    # sorted by ts overall, hence within every (venue, symbol) group, which polars cannot check
    return grid.select(KEYS).sort("ts").join_asof(right, on="ts", by=["venue", "symbol"],
                                                   strategy="backward", check_sortedness=False)


def latest_instruments(instruments: pl.DataFrame) -> pl.DataFrame:
    """The last definition loaded of each (venue, symbol)."""
    return (instruments.sort("ts_local")
            .unique(subset=["venue", "symbol"], keep="last", maintain_order=True)
            .select(INSTRUMENT_COLUMNS))
