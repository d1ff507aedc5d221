"""The trend regime (analyzer/analytics/trend.py): candles from a real recorded trade stream
against an independent aggregation, the regime on a constructed price path (warm-up, a bar
without trades, a tie, the crossing bars), the live refresh against the one-shot computation,
the stored rows and gauges, and the command's one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from prometheus_client.core import Metric
from recordings import FIXTURES, read_recording

from analyzer import config
from analyzer.analytics import trend
from analyzer.analytics.gauges import _trend
from analyzer.cli import main
from analyzer.events import Instrument, Trade
from analyzer.store import Store
from analyzer.venues.binance import MARKETS, BinanceFeed

NS = 1_000_000_000
MIN = 60 * NS


class StoreSink:
    """A feed's Sink that stores the trades it is given, as the collector does."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.trades = 0

    def on_trade(self, ev: Trade) -> None:
        self.store.add(ev)
        self.trades += 1

    def on_book(self, ev: object) -> None:
        pass

    on_quote = on_ticker = on_liquidation = on_book

    def on_trade_gap(self, symbol: str, first: int, last: int) -> None:
        pass

    def on_duplicate(self) -> None:
        pass


def instrument(venue: str = "binance_usdm", symbol: str = "BTCUSDT", base: str = "BTC"
               ) -> Instrument:
    return Instrument(venue, symbol, venue.split("_")[0], "perpetual", base, "USDT", False,
                      1.0, 0.1, 0.001)


def new_store(data: Path) -> Store:
    store = Store(data, data / "analyzer.duckdb", compact_every_s=None, fsync=False)
    store.open()
    return store


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding every trade of the real USDⓈ-M BTCUSDT recording (2024-08-08
    23:54:15 to 23:59:59), decoded by the venue's feed into the store as the collector does."""
    data = tmp_path_factory.mktemp("recorded")
    store = new_store(data)
    store.add(instrument())
    sink = StoreSink(store)
    feed = BinanceFeed(MARKETS["binance_usdm"], ["BTCUSDT"], ["trades"], sink)
    for ts, frame in read_recording(FIXTURES / "usdm_2024" / "btcusdt_20240808.gz"):
        if b"@trade" in frame[:40]:
            feed.decode(frame, ts)
    store.close()
    assert sink.trades > 20_000
    return data


def independent_bars(con: duckdb.DuckDBPyConnection, every: str) -> pl.DataFrame:
    """The same bars by other means: every stored trade into Polars, ordered by exchange time
    then trade id as a number, ``group_by_dynamic`` windows on the epoch."""
    trades = con.sql("SELECT ts_exchange, trade_id, price, size FROM trades").pl()
    return (
        trades.with_columns(pl.from_epoch("ts_exchange", time_unit="ns").alias("t"),
                            pl.col("trade_id").cast(pl.Int64).alias("id"))
        .sort("t", "id")
        .group_by_dynamic("t", every=every, closed="left", label="left")
        .agg(open=pl.col("price").first(), high=pl.col("price").max(),
             low=pl.col("price").min(), close=pl.col("price").last(),
             volume=pl.col("size").sum(), trades=pl.len(),
             last_trade_ns=pl.col("ts_exchange").max())
        .with_columns(bar_ts=pl.col("t").dt.epoch("ns"))
        .drop("t")
    )


def same(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert_frame_equal(got, expected, check_dtypes=False, rel_tol=1e-12)


@pytest.mark.parametrize("interval_s", [60, 300])
def test_candles_of_a_recorded_stream_match_an_independent_aggregation(
        recorded: Path, interval_s: int) -> None:
    cols = ["bar_ts", "open", "high", "low", "close", "volume", "trades", "last_trade_ns"]
    with duckdb.connect(str(recorded / "analyzer.duckdb"), read_only=True) as con:
        expected = independent_bars(con, f"{interval_s}s").select(cols)
        newest = con.execute("SELECT max(ts_exchange) FROM trades").fetchall()[0][0]
        raw = trend.candles(con, interval_s, 0, base="BTC")
    assert raw.height == expected.height >= 2
    same(raw.select(cols), expected)
    # as of the newest trade its bar is forming: apart, and not among the closed ones
    closed, forming = trend.bars(raw, interval_s, newest)
    same(forming.select(cols), expected.tail(1))
    same(closed.select(cols), expected.head(-1))
    # an hour later every bar has closed; the bars without trades carry the last close
    iv = interval_s * NS
    closed, forming = trend.bars(raw, interval_s, newest + 3600 * NS)
    assert forming.is_empty()
    same(closed.head(expected.height).select(cols), expected)
    empty = closed.tail(-expected.height)
    assert empty.height == (newest + 3600 * NS) // iv - newest // iv - 1
    last_close = expected["close"][-1]
    assert empty.select("open", "high", "low", "close").unique().rows() == [(last_close,) * 4]
    assert empty["volume"].sum() == 0 and empty["trades"].sum() == 0


# -- a constructed price path ----------------------------------------------------------------

T0 = 1_767_225_600 * NS  # 2026-01-01 00:00 UTC, a bar boundary
FAST, SLOW = 2, 4
# closes per 1-minute bar (None: no trade in that bar), and the regime and cross each gives:
#   bar 3: both SMAs 10, a tie at the end of the warm-up: still none
#   bar 4: up (the warm-up ends: not a cross); bar 6: no trade, carries 12
#   bar 7: fast 10.5 < slow 11.25: down, a cross; bar 9: fast = slow = 10.5, a tie: stays down
#   bar 10: fast 13 > slow 11: up, a cross
CLOSES = [10.0, 10.0, 10.0, 10.0, 12.0, 12.0, None, 9.0, 9.0, 12.0, 14.0, 14.0]
REGIMES = ["none"] * 4 + ["up"] * 3 + ["down"] * 3 + ["up"] * 2
CROSSES = [7, 10]


def path_trades(t0: int = T0, closes: list[float | None] = CLOSES) -> list[Trade]:
    """Per bar with a close: a first trade 1 % above it, a low one, and the close last; the
    close and a trade 1 % below it share a millisecond (the id decides: 10 after 9); an
    insurance-fund execution at an absurd price that must not count."""
    out = []
    for i, c in enumerate(closes):
        if c is None:
            continue
        t = t0 + i * MIN
        for dt, tid, price in ((5, 1, c * 1.01), (20, 2, c * 0.98), (50, 9, c * 0.99),
                               (50, 10, c)):
            out.append(Trade("binance_usdm", "BTCUSDT", t + dt * NS, t + dt * NS,
                             f"{i}{tid:03d}" if tid < 10 else f"{i}{tid:04d}", price, 1.0,
                             "buy"))
        out.append(Trade("binance_usdm", "BTCUSDT", t + 30 * NS, t + 30 * NS, f"{i}if",
                         c * 5, 1.0, "sell", "insurance_fund"))
    return out


@pytest.fixture
def path_store(tmp_path: Path) -> Path:
    store = new_store(tmp_path / "data")
    store.add(instrument())
    for tr in path_trades():
        store.add(tr)
    store.close()
    return tmp_path / "data"


def test_regime_flips_exactly_at_the_crossing_bar(path_store: Path) -> None:
    end = T0 + len(CLOSES) * MIN
    with duckdb.connect(str(path_store / "analyzer.duckdb"), read_only=True) as con:
        raw = trend.candles(con, 60, 0)
        closed, forming = trend.bars(raw, 60, end)
        ind = trend.indicators(closed, FAST, SLOW)
        summary = trend.regimes(con, "BTC", 60, FAST, SLOW, end)
        rows = trend.history(con, 60, FAST, SLOW, T0, end + MIN)
    assert forming.is_empty()
    assert ind["bar_ts"].to_list() == [T0 + i * MIN for i in range(len(CLOSES))]
    # the bar without trades carries the previous close; the insurance fund is not a price
    assert ind.row(6, named=True).items() >= {"open": 12.0, "high": 12.0, "low": 12.0,
                                           "close": 12.0, "volume": 0.0, "trades": 0}.items()
    assert ind["high"].max() == pytest.approx(14.0 * 1.01)
    assert ind["trades"].to_list() == [0 if c is None else 4 for c in CLOSES]
    # the close is the last trade: the millisecond shared by ids 9 and 10 goes to 10
    filled = [c if c is not None else 12.0 for c in CLOSES]
    assert ind["close"].to_list() == filled
    # warm-up: the fast SMA from its 2nd bar, the slow one from its 4th; none until then
    assert ind["fast_ma"].is_null().to_list() == [True] + [False] * 11
    assert ind["slow_ma"].is_null().to_list() == [True] * 3 + [False] * 9
    assert ind["slow_ma"].to_list()[3:] == pytest.approx(
        [sum(filled[i - 3:i + 1]) / 4 for i in range(3, len(filled))])
    assert ind["regime"].to_list() == REGIMES
    assert [i for i, c in enumerate(ind["cross"].to_list()) if c] == CROSSES
    assert ind["last_cross_ns"].to_list() == (
        [None] * 7 + [T0 + 7 * MIN] * 3 + [T0 + 10 * MIN] * 2)
    # the summary: the state after the last closed bar
    (s,) = summary.to_dicts()
    assert s.items() >= {"venue": "binance_usdm", "symbol": "BTCUSDT", "base": "BTC",
                         "regime": "up", "last_close": 14.0, "last_cross_ns": T0 + 10 * MIN,
                         "bars": 12, "bar_ts": T0 + 11 * MIN, "forming_close": None,
                         "stale": False}.items()
    assert (s["fast_ma"], s["slow_ma"]) == pytest.approx((14.0, 12.25))
    # backfill: one row per closed bar, at its close, the state as of then
    assert rows["ts"].to_list() == [T0 + (i + 1) * MIN for i in range(len(CLOSES))]
    assert rows["regime"].to_list() == REGIMES
    assert [*rows.columns, "source"] == [c for c, _ in trend.TABLES["trend"].columns]


def test_only_closed_bars_count_the_forming_one_is_apart(tmp_path: Path) -> None:
    """As of the middle of bar 7 (its close so far 9, the cross to come), the regime is still
    the one of bar 6: up, no cross yet; the forming bar is reported apart."""
    store = new_store(tmp_path / "data")
    store.add(instrument())
    for tr in path_trades(closes=CLOSES[:8]):
        store.add(tr)
    store.close()
    now = T0 + 7 * MIN + 55 * NS
    with duckdb.connect(str(tmp_path / "data" / "analyzer.duckdb"), read_only=True) as con:
        (s,) = trend.regimes(con, None, 60, FAST, SLOW, now).to_dicts()
    assert s.items() >= {"regime": "up", "last_cross_ns": None, "bars": 7, "last_close": 12.0,
                         "bar_ts": T0 + 6 * MIN, "forming_close": 9.0,
                         "forming_trades": 4}.items()
    assert (s["fast_ma"], s["slow_ma"]) == pytest.approx((12.0, 11.5))


def test_a_tie_keeps_the_previous_regime_and_float_noise_is_a_tie() -> None:
    """A rise, then one close carried for many bars (a quiet market): once both windows are
    flat the SMAs are equal, but their rolling sums differ in the last bits (here fast - slow
    is -1.4e-14 every few bars): a tie all the same, and the up regime holds."""
    closes = [100 + i * 0.1 for i in range(30)] + [0.1 * 3 + 102.9] * 60
    closed = pl.DataFrame({"venue": "v", "symbol": "s", "bar_ts": range(len(closes)),
                           "close": closes})
    ind = trend.indicators(closed, 10, 30)
    assert (ind["fast_ma"] - ind["slow_ma"]).tail(30).min() < 0  # the noise is there
    assert ind["regime"].to_list() == ["none"] * 29 + ["up"] * 61
    assert not ind["cross"].any()


def test_the_live_refresh_reads_new_trades_only_and_agrees_with_regimes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = new_store(data)
    store.add(instrument())
    store.add(instrument("binance_spot", "BTCUSDT"))
    trades = path_trades()
    spot = [Trade("binance_spot", t.symbol, t.ts_exchange, t.ts_local, t.trade_id,
                  t.price * 1.001, t.size, t.side, t.kind) for t in trades]
    state = trend.TrendState(60, FAST, SLOW, lookback_bars=50)
    cut = T0 + 6 * MIN
    for tr in [*trades, *spot]:
        if tr.ts_exchange < cut:
            store.add(tr)
    store.flush()
    with trend.segments_connection(store.segments_root) as con:
        first = state.refresh(con, cut + 10 * NS)
    assert first["regime"].to_list() == ["up", "up"] and first["ts"].unique().to_list() == [
        cut + 10 * NS]
    for tr in [*trades, *spot]:
        if tr.ts_exchange >= cut:
            store.add(tr)
    store.flush()
    now = T0 + len(CLOSES) * MIN + 5 * NS
    with trend.segments_connection(store.segments_root) as con:
        rows = state.refresh(con, now)
        fresh = trend.regimes(con, None, 60, FAST, SLOW, now, lookback_bars=50)
    store.close()
    assert state.latest is not None
    assert state.latest.equals(fresh)
    assert rows["regime"].to_list() == ["up", "up"]
    assert rows["last_cross_ts"].to_list() == [T0 + 10 * MIN] * 2
    assert [*rows.columns, "source"] == [c for c, _ in trend.TABLES["trend"].columns]
    # the gauges: regime 1, both SMAs, the cross in seconds
    samples = {(m.name, tuple(sorted(s.labels.items()))): s.value
               for m in _metrics(state.latest) for s in m.samples}
    labels = (("base", "BTC"), ("interval", "1m"), ("symbol", "BTCUSDT"),
              ("venue", "binance_usdm"))
    assert samples[("analyzer_trend_regime", labels)] == 1.0
    assert samples[("analyzer_trend_last_cross_timestamp_seconds", labels)] == (
        T0 + 10 * MIN) / NS
    assert samples[("analyzer_trend_ma", tuple(sorted((*labels, ("ma", "slow")))))] == (
        pytest.approx(12.25))


def _metrics(df: pl.DataFrame) -> list[Metric]:
    return list(_trend(df, "1m"))


def test_stale_instruments_are_not_exported() -> None:
    df = pl.DataFrame({"venue": ["a", "b"], "symbol": ["X", "X"], "base": ["BTC", "BTC"],
                       "regime": ["up", "down"], "fast_ma": [2.0, 1.0], "slow_ma": [1.0, 2.0],
                       "last_cross_ns": [None, None], "stale": [False, True]})
    [regime, ma, cross] = _metrics(df)
    assert [(s.labels["venue"], s.value) for s in regime.samples] == [("a", 1.0)]
    assert len(ma.samples) == 2 and not cross.samples


# -- configuration and command ---------------------------------------------------------------


@pytest.mark.parametrize(("section", "message"), [
    ({"interval": "7h"}, "config error at trend.interval: bad interval '7h'"),
    ({"interval": "30s"}, "config error at trend.interval: bad interval '30s'"),
    ({"fast": 30, "slow": 10}, "config error at trend.fast: the fast SMA (30 bars) must be "
                               "shorter than the slow one (10 bars)"),
    ({"slow": 500}, "config error at trend.lookback_bars: the slow SMA (500 bars) is longer"),
    ({"refresh_seconds": 0}, "config error at trend.refresh_seconds: Expected `float` > 0.0"),
    ({"fast": "ten"}, "config error at trend.fast: Expected `int`, got `str`"),
])
def test_config_errors_are_one_line(section: dict, message: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        config.parse({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"]}],
                      "trend": section})
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_config_defaults() -> None:
    t = config.parse({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"]}]}).trend
    assert (t.interval_s, t.fast, t.slow, t.refresh_seconds, t.enabled) == (
        4 * 3600, 10, 30, 60.0, True)
    assert [trend.parse_interval(x) for x in ("1m", "15m", "4h", "1d", "90m")] == [
        60, 900, 14400, 86400, 5400]
    assert [trend.interval_label(s) for s in (60, 900, 14400, 86400, 5400)] == [
        "1m", "15m", "4h", "1d", "90m"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["trend", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def live_store(data: Path, age_s: float) -> int:
    """The path's trades on 1-minute bars ending ``age_s`` before now; returns that end."""
    end = (time.time_ns() - round(age_s * NS)) // MIN * MIN
    t0 = end - len(CLOSES) * MIN
    store = new_store(data)
    store.add(instrument())
    store.add(instrument("binance_usdm", "ETHUSDT", "ETH"))
    for tr in path_trades(t0):
        store.add(tr)
    store.close()
    return t0


def test_cli_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = live_store(tmp_path / "data", age_s=0)
    d = str(tmp_path / "data")
    code, out, err = cli(capsys, "--asset", "btc", "--interval", "1m", "--fast", "2", "--slow",
                         "4", "--data-dir", d)
    assert code == 0, err
    assert out.startswith("Trend of BTC: 1m bars")
    assert "binance_usdm  BTCUSDT  up" in out
    code, out, err = cli(capsys, "--asset", "BTC", "--interval", "1m", "--fast", "2", "--slow",
                         "4", "--data-dir", d, "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row.items() >= {"venue": "binance_usdm", "symbol": "BTCUSDT", "regime": "up",
                           "interval": "1m", "fast": 2, "slow": 4,
                           "last_cross_ns": t0 + 10 * MIN, "stale": False}.items()
    assert row["bars"] in (len(CLOSES), len(CLOSES) + 1)  # a minute may turn meanwhile


@pytest.mark.parametrize(("argv", "message"), [
    (["--asset", "DOGE"], "analyzer: unknown asset DOGE: no instrument of it in "),
    (["--asset", "ETH", "--interval", "1m"], "analyzer: stale data: no ETH trade in the last "
                                             "200 bars of 1m"),
    (["--asset", "BTC", "--interval", "1m"], "analyzer: stale data: the newest BTC trade is "
                                             "2h "),
    (["--asset", "BTC", "--interval", "7h"], "analyzer trend: error: argument --interval: "
                                             "bad interval '7h'"),
    (["--asset", "BTC", "--fast", "30", "--slow", "10"], "analyzer: the fast SMA (30 bars) "
                                                         "must be shorter than the slow one"),
])
def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             argv: list[str], message: str) -> None:
    live_store(tmp_path / "data", age_s=2 * 3600)  # its newest trade 2 h old
    code, out, err = cli(capsys, *argv, "--data-dir", str(tmp_path / "data"))
    assert code == 2 and not out
    assert err.startswith(message) and err.count("\n") == 1, err


def test_cli_config_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[feeds]]\nvenue = "binance_usdm"\nsymbols = ["BTCUSDT"]\n'
                   '[trend]\ninterval = "5h"\n')
    code, out, err = cli(capsys, "--asset", "BTC", "-c", str(cfg))
    assert code == 2 and not out
    assert err.startswith("analyzer: config error at trend.interval: bad interval '5h'")
    assert err.count("\n") == 1


def test_no_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--asset", "BTC", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and err.startswith("analyzer: no database at ") and err.count("\n") == 1


def test_backfill_stores_a_row_per_closed_bar(path_store: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``analyzer backfill`` over trades alone (no book snapshots): the trend rows of every bar
    closing in the range, ``source = 'backfill'``, with the regimes of the path."""
    cfg = path_store / "c.toml"
    cfg.write_text(f'[[feeds]]\nvenue = "binance_usdm"\nsymbols = ["BTCUSDT"]\n'
                   f'[store]\ndata_dir = "{path_store}"\n'
                   f'database = "{path_store / "analyzer.duckdb"}"\n'
                   f'[trend]\ninterval = "1m"\nfast = {FAST}\nslow = {SLOW}\n')
    code = main(["backfill", "-c", str(cfg), "--from", "2026-01-01T00:00Z", "--to",
                 "2026-01-01T00:12:01Z", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "12 trend rows" in out
    with duckdb.connect(str(path_store / "analyzer.duckdb"), read_only=True) as con:
        rows = con.sql("SELECT regime, source, time FROM trend ORDER BY ts").pl()
    assert rows["regime"].to_list() == REGIMES
    assert set(rows["source"]) == {"backfill"}
    assert str(rows["time"][0]) == "2026-01-01 00:01:00"
