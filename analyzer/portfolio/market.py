"""What the investor commands read of the market, from the store: instruments, the latest mark,
index and funding of each derivative, spot mids, realised funding, the latest book of a symbol,
open interest. One read-only DuckDB connection; every figure keeps its age (local receive time
against this reader's clock), so a command can refuse data that is too old and say how old.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import polars as pl

from analyzer.analytics.funding import mean_realised, realised_funding
from analyzer.portfolio.book import STABLES
from analyzer.portfolio.errors import PortfolioError
from analyzer.store.research import frame

NS = 10**9

INSTRUMENTS_SQL = """
SELECT venue, symbol, exchange, market, base, quote, inverse, contract_size, tick_size,
       lot_size, expiry, coalesce(contract_value, 1.0) AS contract_value
FROM instruments
QUALIFY row_number() OVER (PARTITION BY venue, symbol ORDER BY ts_local DESC) = 1
"""

# the newest of each field (venues send mark, index and funding apart)
TICKERS_SQL = """
SELECT venue, symbol,
       arg_max(mark_price, ts_local) FILTER (WHERE mark_price IS NOT NULL) AS mark,
       arg_max(index_price, ts_local) FILTER (WHERE index_price IS NOT NULL) AS index,
       arg_max(funding_rate, ts_local) FILTER (WHERE funding_rate IS NOT NULL) AS funding_rate,
       arg_max(funding_interval_hours, ts_local)
           FILTER (WHERE funding_interval_hours IS NOT NULL) AS funding_hours,
       arg_max(next_funding_time, ts_local)
           FILTER (WHERE next_funding_time IS NOT NULL) AS next_funding_time,
       max(ts_local) AS ts_local, max(ts_exchange) AS ts_exchange
FROM derivative_tickers GROUP BY venue, symbol
"""

MIDS_SQL = """
SELECT venue, symbol, (bid_price + ask_price) / 2 AS mid,
       (ask_price - bid_price) / ((bid_price + ask_price) / 2) * 1e4 AS spread_bps, ts_local
FROM quotes
QUALIFY row_number() OVER (PARTITION BY venue, symbol ORDER BY ts_local DESC) = 1
"""

FUNDING_HISTORY_SQL = """
SELECT ts_exchange AS ts, venue, symbol, funding_rate, funding_interval_hours, next_funding_time
FROM derivative_tickers
WHERE funding_rate IS NOT NULL
  AND ts_local >= (SELECT max(ts_local) FROM derivative_tickers) - ?
"""

BOOK_SQL = """
WITH last AS (SELECT max(ts_local) AS ts FROM book_snapshots WHERE venue = ? AND symbol = ?)
SELECT side, level, price, size, b.ts_local FROM book_snapshots b, last
WHERE venue = ? AND symbol = ? AND b.ts_local = last.ts ORDER BY side, level
"""

REALISED_SCHEMA = {"venue": pl.String, "symbol": pl.String, "settle_ts": pl.Int64,
                   "rate": pl.Float64, "interval_hours": pl.Float64, "rate_ann": pl.Float64,
                   "published_ts": pl.Int64}


@dataclass(slots=True)
class Book:
    """One stored book: levels best first (price, size in the instrument's units)."""

    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    ts_local: int


@dataclass
class Market:
    """The latest view of the market; ``now`` in ns (this reader's clock). ``read`` takes it
    from a store; the live analytics build one from the collector's own state (``books``: a
    function giving a symbol's book, ``realised_frame``: its funding settlements)."""

    instruments: pl.DataFrame
    tickers: pl.DataFrame
    mids: pl.DataFrame
    now: int = field(default_factory=time.time_ns)
    con: duckdb.DuckDBPyConnection | None = None
    realised_frame: pl.DataFrame | None = None
    books: Callable[[str, str], Book | None] | None = None
    _books: dict[tuple[str, str], Book | None] = field(default_factory=dict)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, now: int | None = None) -> Market:
        try:
            return cls(con.sql(INSTRUMENTS_SQL).pl(), con.sql(TICKERS_SQL).pl(),
                       con.sql(MIDS_SQL).pl(), now or time.time_ns(), con)
        except duckdb.Error as exc:
            raise PortfolioError(f"cannot read the store: {exc}".replace("\n", " ")) from None

    def store(self) -> duckdb.DuckDBPyConnection:
        """The store's connection (history: settlements' marks, open interest, resyncs)."""
        if self.con is None:
            raise PortfolioError("this needs the store's history (analyzer check, funding "
                                 "since opening): read the market from the store")
        return self.con

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    # -- instruments --

    def instrument(self, venue: str, symbol: str) -> dict:
        rows = self.instruments.filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol))
        if rows.is_empty():
            raise PortfolioError(f"unknown instrument {venue}:{symbol} (not in the store's "
                                 "instruments: is it collected?)")
        return rows.row(0, named=True)

    def bases(self) -> set[str]:
        return set(self.instruments.get_column("base").to_list())

    def hedges(self, base: str) -> pl.DataFrame:
        """Every perpetual and dated future of ``base`` (linear and inverse) that has not
        expired, with its latest ticker."""
        inst = self.instruments.filter(
            (pl.col("base") == base) & (pl.col("market") != "spot")
            & (pl.col("expiry").is_null() | (pl.col("expiry") > self.data_now())))
        return inst.join(self.tickers, on=["venue", "symbol"], how="left")

    # -- prices --

    def data_now(self) -> int:
        """The newest exchange time in the tickers (the market's clock: a simulation's or a
        replay's may be far from this reader's)."""
        ts = self.tickers.get_column("ts_exchange").max() if self.tickers.height else None
        return int(ts) if ts is not None else self.now  # type: ignore[arg-type]

    def ticker(self, venue: str, symbol: str) -> dict | None:
        rows = self.tickers.filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol))
        return rows.row(0, named=True) if rows.height else None

    def mark(self, venue: str, symbol: str, max_age_s: float) -> float:
        """The latest mark (else the book's mid) of a derivative; PortfolioError if none or
        older than ``max_age_s``."""
        t = self.ticker(venue, symbol)
        if t is not None and t["mark"] is not None:
            self._fresh(f"{venue}:{symbol} mark", t["ts_local"], max_age_s)
            return float(t["mark"])
        return self.mid(venue, symbol, max_age_s)

    def mid(self, venue: str, symbol: str, max_age_s: float) -> float:
        rows = self.mids.filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol))
        if rows.is_empty():
            raise PortfolioError(f"no price for {venue}:{symbol} in the store")
        row = rows.row(0, named=True)
        self._fresh(f"{venue}:{symbol} quote", row["ts_local"], max_age_s)
        return float(row["mid"])

    def spot_price(self, asset: str, max_age_s: float, venue: str | None = None) -> float:
        """``asset`` in USD: 1 for a USD stablecoin; else the median of the fresh mids of its
        spot books quoted in a USD stablecoin (on ``venue`` when given and collected), else the
        median index of its derivatives. PortfolioError naming the asset when none is fresh."""
        if asset in STABLES:
            return 1.0
        spot = self.instruments.filter((pl.col("base") == asset) & (pl.col("market") == "spot")
                                       & pl.col("quote").is_in(list(STABLES)))
        mids = spot.join(self.mids, on=["venue", "symbol"]).filter(
            pl.col("ts_local") >= self.now - int(max_age_s * NS))
        if venue is not None and venue in mids.get_column("venue").to_list():
            mids = mids.filter(pl.col("venue") == venue)
        if mids.height:
            return float(mids.get_column("mid").median())  # type: ignore[arg-type]
        idx = self.hedges(asset).filter(pl.col("index").is_not_null()
                                        & (pl.col("ts_local") >= self.now - int(max_age_s * NS)))
        if idx.height:
            return float(idx.get_column("index").median())  # type: ignore[arg-type]
        if asset not in self.bases():
            raise PortfolioError(f"unknown asset {asset}: the store has "
                                 f"{', '.join(sorted(self.bases())) or 'no instruments'}")
        newest = spot.join(self.mids, on=["venue", "symbol"]).get_column("ts_local").max()
        age = "never priced" if newest is None else f"last priced {self._age(newest)} ago"
        raise PortfolioError(f"stale data: {asset} {age} (limit {max_age_s:g} s; "
                             "--max-age to accept older)")

    # -- funding --

    def realised(self) -> pl.DataFrame:
        """The funding settlements of the last 8 days (``realised_funding``)."""
        if self.realised_frame is None:
            hist = (frame(self.con, FUNDING_HISTORY_SQL, [8 * 86_400 * NS])
                    if self.con is not None else pl.DataFrame())
            self.realised_frame = realised_funding(hist) if hist.height else pl.DataFrame(
                schema=REALISED_SCHEMA)
        return self.realised_frame

    def funding_7d(self) -> pl.DataFrame:
        """venue, symbol, funding_ann_mean (interval-weighted, last 7 days of settlements)."""
        r = self.realised()
        if r.is_empty():
            return pl.DataFrame(schema={"venue": pl.String, "symbol": pl.String,
                                        "funding_ann_mean": pl.Float64})
        return mean_realised(r, "7d").select("venue", "symbol", "funding_ann_mean")

    # -- books and open interest --

    def book(self, venue: str, symbol: str) -> Book | None:
        key = (venue, symbol)
        if key not in self._books and self.books is not None:
            self._books[key] = self.books(venue, symbol)
        elif key not in self._books and self.con is None:
            self._books[key] = None
        elif key not in self._books:
            df = frame(self.con, BOOK_SQL, [venue, symbol, venue, symbol])
            if df.is_empty():
                self._books[key] = None
            else:
                bids = df.filter(pl.col("side") == "bid").sort("level")
                asks = df.filter(pl.col("side") == "ask").sort("level")
                self._books[key] = Book(list(zip(bids["price"], bids["size"], strict=True)),
                                        list(zip(asks["price"], asks["size"], strict=True)),
                                        int(df["ts_local"][0]))
        return self._books[key]

    # -- ages --

    def _age(self, ts_local: int) -> str:
        s = (self.now - ts_local) / NS
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"

    def _fresh(self, what: str, ts_local: int | None, max_age_s: float) -> None:
        if ts_local is None or self.now - ts_local > max_age_s * NS:
            age = "never" if ts_local is None else self._age(ts_local)
            raise PortfolioError(f"stale data: {what} is {age} old (limit {max_age_s:g} s; "
                                 "--max-age to accept older)")


def walk(levels: list[tuple[float, float]], quantity: float) -> tuple[float, float] | None:
    """(VWAP, filled) of taking ``quantity`` from levels best first; None if the stored levels
    do not hold it."""
    left, cost = quantity, 0.0
    for price, size in levels:
        take = min(left, size)
        cost += take * price
        left -= take
        if left <= quantity * 1e-12:
            return cost / quantity, quantity
    return None


__all__ = ["Book", "Market", "walk"]
