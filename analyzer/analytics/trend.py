"""The trend regime of each instrument: candles built from the stored trades, the fast and slow
simple moving averages (SMA) of their closes, the regime, and the time of its last cross. A
moving-average overlay reads it (a spot holder hedges in a down regime and lifts the hedge in
an up one); ``regimes()`` is what the portfolio code calls.

Candles are aggregated in DuckDB SQL over the ``trades`` view (``CANDLES_SQL``); the rest is
Polars over those bars. The rules chosen, and why:

    bars      per (venue, symbol), ``interval_s`` long (1 min to 1 day, dividing a day), aligned
              to the epoch, hence to 00:00 UTC, on the venue's clock (``ts_exchange``): the bars
              venues draw themselves.
    trades    market executions only: insurance-fund and ADL executions are not prices the
              market traded at. Single and aggregated trades (``kind`` trade / aggTrade) are
              both kept: some venues tag either within one stream. (A feed switched between a
              trade and an aggregate stream counts volume twice where the two overlap; prices
              are unaffected.)
    OHLCV     open / close: the first / last trade by exchange time, trades of one millisecond
              ordered by trade id (numeric ids by value); high, low; volume: the sum of sizes
              in the venue's units (base units; contracts for inverse contracts); trades: count.
    closed    a bar counts once it is closed: its end is past the instrument's clock, the later
              of now and its newest stored trade (a venue sends an instrument's trades in time
              order, so a later trade means the bar is complete; and a simulated market running
              faster than the wall clock closes its bars on its own clock). The bar holding the
              clock is the forming bar: reported apart (``forming_close``), never averaged.
    gaps      a bar without trades carries the previous close (open = high = low = close,
              volume 0, trades 0), so that the averages run over time, not over trades. An
              instrument's series starts at its first bar with trades in the lookback.
    SMAs      the mean of the last ``fast`` / ``slow`` closes; NULL until that many closed bars.
    regime    ``up`` when fast > slow, ``down`` when fast < slow, ``none`` while the slow SMA
              has too few bars. A tie keeps the previous regime (``none`` if there was none);
              averages within 1e-9 of the slow one of each other are a tie (their rolling sums
              differ in the last bits where the closes are equal, as in a quiet market
              carrying its close).
    cross     a bar whose regime is ``up`` after ``down`` or ``down`` after ``up``; its open
              time is the last cross. The end of the warm-up (``none`` to a regime) is not one.
    lookback  the last ``lookback_bars`` bars of trades are read: a cross older than that is
              not seen (``last_cross_ns`` NULL), and the SMAs need ``slow`` of them.
    stale     the newest trade more than two intervals before now: the regime is of old data
              (``analyzer trend`` says so and exits 2; the gauges leave the instrument out).

Stored in the ``trend`` table (sql/schema.sql): live, one row per instrument every ``[trend]
refresh_seconds`` (``TrendState``: the state after the last closed bar); by ``analyzer
backfill``, one row per instrument and closed bar, at the bar's close (``history()``). Exported
as ``analyzer_trend_*`` gauges (gauges.py); the ``TrendRegimeFlip`` alert is in
prometheus/rules.yml.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from analyzer.store.research import frame
from analyzer.store.schema import TABLES, render

NS = 1_000_000_000
DAY_S = 86_400
TIE = 1e-9  # relative difference of the SMAs below which they are equal
STALE_INTERVALS = 2
LOOKBACK_BARS = 200
KEYS = ["venue", "symbol"]
REGIME_VALUE = {"up": 1.0, "down": -1.0, "none": 0.0}  # the gauge's values
_INTERVAL = re.compile(r"^(\d+)([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": DAY_S}

CANDLES_SQL = """
SELECT
    t.venue,
    t.symbol,
    i.base,
    t.ts_exchange // $interval_ns * $interval_ns AS bar_ts,
    arg_min(t.price, (t.ts_exchange, length(t.trade_id), t.trade_id)) AS open,
    max(t.price) AS high,
    min(t.price) AS low,
    arg_max(t.price, (t.ts_exchange, length(t.trade_id), t.trade_id)) AS close,
    sum(t.size) AS volume,
    count(*) AS trades,
    max(t.ts_exchange) AS last_trade_ns
FROM trades t
LEFT JOIN (SELECT DISTINCT venue, symbol, base FROM instruments) i USING (venue, symbol)
WHERE t.ts_exchange >= $start AND t.ts_exchange < $end
  AND coalesce(t.kind, 'trade') NOT IN ('insurance_fund', 'adl')
  AND ($base IS NULL OR i.base = $base)
GROUP BY ALL
ORDER BY t.venue, t.symbol, bar_ts
"""

RAW_SCHEMA = {"venue": pl.String, "symbol": pl.String, "base": pl.String, "bar_ts": pl.Int64,
              "open": pl.Float64, "high": pl.Float64, "low": pl.Float64, "close": pl.Float64,
              "volume": pl.Float64, "trades": pl.Int64, "last_trade_ns": pl.Int64}

# the columns of regimes(), in order (the trend table stores them under its ts_* names)
REGIME_COLUMNS = ["venue", "symbol", "base", "regime", "fast_ma", "slow_ma", "last_close",
                  "last_cross_ns", "bars", "newest_trade_ns", "bar_ts", "forming_close",
                  "forming_trades", "stale"]


class TrendError(ValueError):
    """A bad interval or moving-average length (one line)."""


def parse_interval(text: str) -> int:
    """``15m``, ``4h``, ``1d`` -> seconds: from 1 minute to 1 day, dividing a day evenly (so
    every bar starts at the same times each UTC day)."""
    m = _INTERVAL.match(text.strip().lower())
    seconds = int(m.group(1)) * _UNIT_S[m.group(2)] if m else 0
    if not 60 <= seconds <= DAY_S or DAY_S % seconds:
        raise TrendError(f"bad interval {text!r}: from 1m to 1d and dividing a day evenly, "
                         "e.g. 1m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d")
    return seconds


def interval_label(seconds: int) -> str:
    """14400 -> ``4h``, 5400 -> ``90m``: the ``interval`` label of the gauges."""
    for unit, n in (("d", DAY_S), ("h", 3600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def check_lengths(fast: int, slow: int, lookback_bars: int = LOOKBACK_BARS) -> None:
    """The SMA lengths: 1 <= fast < slow <= lookback_bars."""
    if fast < 1:
        raise TrendError(f"the fast SMA needs at least 1 bar, not {fast}")
    if fast >= slow:
        raise TrendError(f"the fast SMA ({fast} bars) must be shorter than the slow one "
                         f"({slow} bars)")
    if slow > lookback_bars:
        raise TrendError(f"the slow SMA ({slow} bars) is longer than the lookback "
                         f"({lookback_bars} bars)")


def segments_connection(segments_root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``trades`` and ``instruments`` views over a
    store's segments: the live refresh reads them without opening the store's DuckDB file (which
    the collector never holds), one thread, beside the collector's own."""
    con = duckdb.connect(config={"threads": 1})
    for table in ("trades", "instruments"):
        con.execute(render(TABLES[table].view_sql, segments_root))
    return con


def candles(con: duckdb.DuckDBPyConnection, interval_s: int, start_ns: int,
            end_ns: int = 2**63 - 1, base: str | None = None) -> pl.DataFrame:
    """The bars with trades of each instrument (of ``base``, or all) from the trades with
    exchange time in ``[start_ns, end_ns)``; the forming bar included. Columns: venue, symbol,
    base, bar_ts (open time, ns), open, high, low, close, volume, trades, last_trade_ns."""
    df = frame(con, CANDLES_SQL, {"interval_ns": interval_s * NS, "start": start_ns,
                                  "end": end_ns, "base": base})
    return df.cast(RAW_SCHEMA) if df.height else pl.DataFrame(schema=RAW_SCHEMA)


def bars(raw: pl.DataFrame, interval_s: int, now_ns: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(closed bars, forming bars) from ``candles()``: the closed ones of each instrument on a
    complete grid from its first bar to the one before its clock (bars without trades carry the
    previous close); the forming one where it has trades. Both keep the candle columns; the
    closed ones gain ``newest_trade_ns``, the newest trade up to the bar."""
    iv = interval_s * NS
    clock = raw.group_by(KEYS).agg(
        pl.col("base").first(), first_bar=pl.col("bar_ts").min(),
        newest=pl.col("last_trade_ns").max(),
    ).with_columns(forming_ts=pl.max_horizontal(pl.lit(now_ns), "newest") // iv * iv)
    forming = raw.join(clock.select(*KEYS, "forming_ts"), on=KEYS).filter(
        pl.col("bar_ts") == pl.col("forming_ts")).drop("forming_ts")
    grid = clock.filter(pl.col("first_bar") < pl.col("forming_ts")).select(
        *KEYS, "base", bar_ts=pl.int_ranges("first_bar", "forming_ts", iv)).explode("bar_ts")
    close = pl.col("close").forward_fill().over(KEYS)
    closed = (
        grid.join(raw.drop("base"), on=[*KEYS, "bar_ts"], how="left")
        .sort(*KEYS, "bar_ts")
        .with_columns(close=close)
        .with_columns(
            pl.col("open", "high", "low").fill_null(pl.col("close")),
            pl.col("volume").fill_null(0.0), pl.col("trades").fill_null(0),
            newest_trade_ns=pl.col("last_trade_ns").forward_fill().over(KEYS),
        )
    )
    return closed, forming


def indicators(closed: pl.DataFrame, fast: int, slow: int) -> pl.DataFrame:
    """The closed bars with ``fast_ma``, ``slow_ma``, ``regime`` (up | down | none), ``cross``
    (the regime flipped between up and down at this bar), ``last_cross_ns`` (as of the bar)
    and ``bars`` (closed bars so far)."""
    diff = pl.col("fast_ma") - pl.col("slow_ma")
    tol = TIE * pl.col("slow_ma").abs()
    sign = (pl.when(pl.col("slow_ma").is_null()).then(0)
            .when(diff > tol).then(1).when(diff < -tol).then(-1)
            .otherwise(None))  # a tie: the previous regime, below
    prev = pl.col("_sign").shift(1).over(KEYS)
    cross = ((pl.col("_sign") != prev) & (pl.col("_sign") != 0) & (prev != 0)).fill_null(False)
    return (
        closed.sort(*KEYS, "bar_ts")
        .with_columns(fast_ma=pl.col("close").rolling_mean(fast).over(KEYS),
                      slow_ma=pl.col("close").rolling_mean(slow).over(KEYS))
        .with_columns(_sign=sign.forward_fill().over(KEYS).fill_null(0))
        .with_columns(cross=cross, bars=pl.int_range(1, pl.len() + 1).over(KEYS))
        .with_columns(
            regime=pl.col("_sign").replace_strict({1: "up", -1: "down", 0: "none"},
                                                  return_dtype=pl.String),
            last_cross_ns=pl.when("cross").then("bar_ts").forward_fill().over(KEYS),
        )
        .drop("_sign")
    )


def summarize(raw: pl.DataFrame, interval_s: int, fast: int, slow: int,
              now_ns: int) -> pl.DataFrame:
    """One row per instrument with trades in ``raw`` (``candles()``): the state after its last
    closed bar, its forming bar and whether its data are stale. Columns: ``REGIME_COLUMNS``."""
    closed, forming = bars(raw, interval_s, now_ns)
    ind = indicators(closed, fast, slow)
    last = ind.group_by(KEYS).agg(pl.all().sort_by("bar_ts").last())
    instruments = raw.group_by(KEYS).agg(pl.col("base").first(),
                                         newest_trade_ns=pl.col("last_trade_ns").max())
    out = (
        instruments
        .join(last.select(*KEYS, "regime", "fast_ma", "slow_ma", "last_cross_ns", "bars",
                          "bar_ts", last_close="close"), on=KEYS, how="left")
        .join(forming.select(*KEYS, forming_close="close", forming_trades="trades"),
              on=KEYS, how="left")
        .with_columns(
            pl.col("regime").fill_null("none"), pl.col("bars").fill_null(0),
            stale=(now_ns - pl.col("newest_trade_ns")) > STALE_INTERVALS * interval_s * NS,
        )
    )
    return out.select(REGIME_COLUMNS).sort(KEYS)


def lookback_start(now_ns: int, interval_s: int, lookback_bars: int) -> int:
    """Open time of the first bar read: ``lookback_bars`` bars before the one holding now."""
    iv = interval_s * NS
    return (now_ns // iv - lookback_bars) * iv


def regimes(con: duckdb.DuckDBPyConnection, base: str | None, interval_s: int, fast: int,
            slow: int, now_ns: int, *, lookback_bars: int = LOOKBACK_BARS) -> pl.DataFrame:
    """The trend regime of every instrument of ``base`` (every instrument: None) with trades in
    the last ``lookback_bars`` bars before ``now_ns``, from the ``trades`` and ``instruments``
    views of ``con`` (the store's DuckDB file read-only, or ``segments_connection()``).

    One row per instrument (venue, symbol), sorted: ``base``; ``regime`` up | down | none;
    ``fast_ma`` / ``slow_ma`` (SMAs of the closes of the last ``fast`` / ``slow`` closed bars,
    NULL while too few); ``last_close`` (of the last closed bar, ``bar_ts`` its open time, ns);
    ``last_cross_ns`` (open time of the bar where the regime last flipped between up and down,
    NULL if not within the lookback); ``bars`` (closed bars used); ``newest_trade_ns``
    (exchange time); ``forming_close`` / ``forming_trades`` (the bar still forming, not used;
    NULL without trades yet); ``stale`` (newest trade more than two intervals before now).
    ``now_ns`` is the present (``time.time_ns()``), not an as-of time: later trades are read
    too (a simulated market running ahead of the wall clock closes its bars on its own clock;
    ``history()`` gives the past). Raises TrendError on an interval or lengths that
    ``parse_interval`` / ``check_lengths`` reject.
    """
    if not 60 <= interval_s <= DAY_S or DAY_S % interval_s:
        raise TrendError(f"bad interval {interval_s} s: from 60 s to a day, dividing a day")
    check_lengths(fast, slow, lookback_bars)
    raw = candles(con, interval_s, lookback_start(now_ns, interval_s, lookback_bars),
                  base=base)
    return summarize(raw, interval_s, fast, slow, now_ns)


def history(con: duckdb.DuckDBPyConnection, interval_s: int, fast: int, slow: int,
            start_ns: int, end_ns: int, lookback_bars: int = LOOKBACK_BARS) -> pl.DataFrame:
    """The state after each closed bar whose close lies in ``[start_ns, end_ns)``, per
    instrument, in the layout of the ``trend`` table with ``ts`` = the bar's close (what
    ``analyzer backfill`` stores). Trades from ``lookback_bars`` bars before ``start_ns``
    warm the averages up; trades at or after ``end_ns`` are not read."""
    check_lengths(fast, slow, lookback_bars)
    iv = interval_s * NS
    raw = candles(con, interval_s, lookback_start(start_ns, interval_s, lookback_bars),
                  end_ns)
    closed, _ = bars(raw, interval_s, end_ns)
    ind = indicators(closed, fast, slow).with_columns(ts=pl.col("bar_ts") + iv).filter(
        pl.col("ts") >= start_ns, pl.col("ts") < end_ns)
    return stored_rows(ind.rename({"close": "last_close"}), interval_s, fast, slow)


def stored_rows(df: pl.DataFrame, interval_s: int, fast: int, slow: int,
                ts: int | None = None) -> pl.DataFrame:
    """``regimes()`` rows (with ``ts``, or at ``ts``) in the layout of the ``trend`` table."""
    if ts is not None:
        df = df.with_columns(ts=pl.lit(ts, pl.Int64))
    return df.select(
        "ts", "venue", "symbol", "base", interval_s=pl.lit(interval_s, pl.Int32),
        fast=pl.lit(fast, pl.Int32), slow=pl.lit(slow, pl.Int32), bar_ts="bar_ts",
        last_close="last_close", fast_ma="fast_ma", slow_ma="slow_ma", regime="regime",
        last_cross_ts="last_cross_ns", bars=pl.col("bars").cast(pl.Int32),
        newest_trade_ts="newest_trade_ns")


class TrendState:
    """The live refresh (``LiveAnalytics``): keeps the bars it aggregated, so that each refresh
    reads only the trades from the bar before the one forming at the previous refresh (wall
    clock), a bar or two of trades rather than the lookback. A trade stored more than a bar
    late (a REST backfill after a long disconnect) is therefore left out until the collector
    restarts (``analyzer backfill`` recomputes the stored rows)."""

    def __init__(self, interval_s: int, fast: int, slow: int,
                 lookback_bars: int = LOOKBACK_BARS) -> None:
        check_lengths(fast, slow, lookback_bars)
        self.interval_s = interval_s
        self.fast = fast
        self.slow = slow
        self.lookback_bars = lookback_bars
        self.label = interval_label(interval_s)
        self.raw: pl.DataFrame | None = None
        self.resume_ns = 0  # the next refresh reads trades from here
        self.latest: pl.DataFrame | None = None  # the last refresh's regimes()

    def refresh(self, con: duckdb.DuckDBPyConnection, now_ns: int) -> pl.DataFrame:
        """``regimes()`` of every instrument as of ``now_ns``, in the layout of the ``trend``
        table (``ts`` = now_ns); ``latest`` keeps the ``regimes()`` frame for the gauges."""
        iv = self.interval_s * NS
        floor = lookback_start(now_ns, self.interval_s, self.lookback_bars)
        since = floor if self.raw is None else max(floor, self.resume_ns)
        fresh = candles(con, self.interval_s, since)
        kept = (self.raw.filter(pl.col("bar_ts") >= floor, pl.col("bar_ts") < since)
                if self.raw is not None else pl.DataFrame(schema=RAW_SCHEMA))
        self.raw = pl.concat([kept, fresh])
        self.resume_ns = (now_ns // iv - 1) * iv
        self.latest = summarize(self.raw, self.interval_s, self.fast, self.slow, now_ns)
        return stored_rows(self.latest, self.interval_s, self.fast, self.slow, ts=now_ns)


# -- analyzer trend ---------------------------------------------------------------------------


def _age(seconds: float) -> str:
    """12.3 -> ``12s``, 90 -> ``1m 30s``, 3725 -> ``1h 2m``: the two largest units."""
    s = max(0, round(seconds))
    parts: list[str] = []
    for n, unit in ((DAY_S, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if s >= n or parts or unit == "s":
            v, s = divmod(s, n)
            parts.append(f"{v}{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _interval_arg(text: str) -> int:
    try:
        return parse_interval(text)
    except TrendError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--asset", required=True, help="base asset, e.g. BTC")
    p.add_argument("--interval", type=_interval_arg, default=None,
                   help="bar length, 1m..1d dividing a day (default: [trend] interval, 4h)")
    p.add_argument("--fast", type=int, default=None,
                   help="fast SMA length in bars (default: [trend] fast, 10)")
    p.add_argument("--slow", type=int, default=None,
                   help="slow SMA length in bars (default: [trend] slow, 30)")
    p.add_argument("--json", action="store_true", help="a JSON array of objects")
    p.add_argument("--config", "-c", help="TOML config (its store and [trend] settings)")
    p.add_argument("--data-dir", default="data", help="data directory (default: data)")


def cmd_trend(args: argparse.Namespace) -> int:
    """``analyzer trend``: the regime of every instrument of an asset, from the store."""
    from analyzer import config as config_mod
    from analyzer.analytics.commands import CommandError, _connect
    from analyzer.formats import format_json, format_table

    if args.config:
        cfg = config_mod.load(args.config)
        database, trend = Path(cfg.store.database), cfg.trend
    else:
        database, trend = Path(args.data_dir) / "analyzer.duckdb", config_mod.Trend()
    interval_s = args.interval or trend.interval_s
    fast = trend.fast if args.fast is None else args.fast
    slow = trend.slow if args.slow is None else args.slow
    lookback = max(trend.lookback_bars, slow)
    try:
        check_lengths(fast, slow, lookback)
    except TrendError as exc:
        raise CommandError(str(exc)) from None
    asset = args.asset.upper()
    label = interval_label(interval_s)
    now = time.time_ns()
    with _connect(database) as con:
        try:
            known = frame(con, "SELECT DISTINCT base FROM instruments WHERE base IS NOT NULL "
                          "ORDER BY 1", [])["base"].to_list()
            if asset not in known:
                raise CommandError(f"unknown asset {asset}: no instrument of it in {database} "
                                   f"(known: {', '.join(known) or 'none yet'})")
            df = regimes(con, asset, interval_s, fast, slow, now, lookback_bars=lookback)
        except duckdb.Error as exc:
            raise CommandError(str(exc).replace("\n", " ")) from None
    if not df.height:
        raise CommandError(f"stale data: no {asset} trade in the last {lookback} bars of "
                           f"{label} (since {_iso(lookback_start(now, interval_s, lookback))})")
    newest = int(df["newest_trade_ns"].max())
    if now - newest > STALE_INTERVALS * interval_s * NS:
        raise CommandError(f"stale data: the newest {asset} trade is {_age((now - newest) / NS)} "
                           f"old ({_iso(newest)}), more than {STALE_INTERVALS} bars of {label}; "
                           "is the collector running?")
    out = df.with_columns(
        interval=pl.lit(label), fast=pl.lit(fast), slow=pl.lit(slow),
        age_s=((now - pl.col("newest_trade_ns")) / NS).round(1),
        last_cross=pl.col("last_cross_ns").map_elements(_iso, return_dtype=pl.String),
        last_bar=pl.col("bar_ts").map_elements(_iso, return_dtype=pl.String),
    )
    if args.json:
        sys.stdout.write(format_json(out.select(
            "venue", "symbol", "base", "interval", "fast", "slow", "regime", "last_close",
            "fast_ma", "slow_ma", "last_cross", "last_cross_ns", "last_bar", "bars",
            "newest_trade_ns", "age_s", "stale", "forming_close", "forming_trades")))
        return 0
    table = out.select(
        "venue", "symbol", "regime", "last_close", "fast_ma", "slow_ma", "last_cross", "bars",
        "last_bar", "forming_close",
        data=pl.when("stale").then(pl.lit("stale ") + pl.col("age_s").map_elements(
            _age, return_dtype=pl.String) + " old").otherwise(pl.lit("ok")))
    print(f"Trend of {asset}: {label} bars (closed only; the forming bar apart), SMA {fast} / "
          f"{slow} of the closes, as of {_iso(now)}\n")
    sys.stdout.write(format_table(table))
    return 0
