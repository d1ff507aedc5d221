"""End to end: real recordings -> the local exchange -> real websockets and HTTP on loopback ->
the collector, unchanged -> Parquet/DuckDB. Checked against independent readings of the same
recordings (tests/recordings.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from harness import drained
from prometheus_client import CollectorRegistry
from recordings import (
    FIXTURES,
    book_ticker_count,
    expected_bbo_comparisons,
    frames_of,
    trade_ids,
)

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import Faults, LocalExchange, Replay
from analyzer.metrics import CollectorMetrics
from analyzer.store.research import query

pytestmark = pytest.mark.slow

USDM_2024 = "usdm_2024/btcusdt_20240808.gz"
COINM_SYMBOLS = [
    "BTCUSD_211231", "ETHUSD_210924", "BCHUSD_210924", "LINKUSD_211231", "BCHUSD_PERP",
    "LINKUSD_PERP", "ETCUSD_PERP", "XRPUSD_PERP", "TRXUSD_PERP", "EOSUSD_PERP",
]


def usdm_feed(**kw: Any) -> dict[str, Any]:
    return {"venue": "binance_usdm", "symbols": ["BTCUSDT"], "options": {"depth_speed": "0ms"},
            "channels": ["depth", "trades", "bookTicker", "markPrice", "openInterest"], **kw}


def run_pipeline(
    tmp_path: Path,
    replays: list[Replay],
    feeds: list[dict[str, Any]],
    *,
    exchange: dict[str, Any] | None = None,
    during: Any = None,
) -> Collector:
    """Replay to the end through exchange and collector (one event loop), flush, return."""

    async def main() -> Collector:
        ex = LocalExchange(port=0, **(exchange or {}))
        for r in replays:
            ex.add_replay(r)
        await ex.start()
        for f in feeds:
            f.setdefault("ws_url", ex.ws_url(f["venue"]).removesuffix("/stream"))
            f.setdefault("rest_url", ex.base_url(f["venue"]))
            f.setdefault("open_interest_seconds", 1.0)
        cfg = config.parse({
            "feeds": feeds,
            "store": {"data_dir": str(tmp_path / "data"),
                      "database": str(tmp_path / "data" / "analyzer.duckdb"),
                      "flush_seconds": 0.5, "book_snapshot_seconds": 0.2},
            "metrics": {"port": 0},
        })
        collector = Collector(cfg)
        try:
            await collector.start()
            if during is not None:
                await during(ex, collector)
            await ex.wait_replays_done(timeout=120)
            await drained(collector)
        finally:
            await collector.stop()
            await ex.stop()
        return collector

    return asyncio.run(main())


def close_to(compared: int, expected: int) -> bool:
    """How many tickers can be compared depends on timing: tickers that arrive while the
    first snapshot is being fetched are held (bounded) and checked once the book is live, and
    the exchange serves the recorded snapshot only until its replay passes it."""
    return expected * 0.9 <= compared <= expected * 1.02


def sql(tmp_path: Path, text: str) -> list[tuple]:
    return query(tmp_path / "data" / "analyzer.duckdb", text).rows()


def metric(collector: Collector, name: str, **labels: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(CollectorMetrics(collector))
    return registry.get_sample_value(name, labels)


def test_usdm_replay_book_matches_venue_and_store_holds_everything(tmp_path: Path) -> None:
    frames = frames_of(USDM_2024)
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=0)], [usdm_feed()]
    )
    runner = collector.runners[0]
    stats = runner.books.stats
    expected = expected_bbo_comparisons(frames, spot=False)
    print(f"USDⓈ-M 2024: {stats.bbo_compared} bookTickers compared "
          f"(expected {expected}), {stats.bbo_mismatched} differed")
    assert stats.bbo_mismatched == 0
    assert close_to(stats.bbo_compared, expected)
    assert stats.gaps == 0 and runner.books.books["BTCUSDT"].in_sync

    ids = trade_ids(frames)
    stored = [r[0] for r in sql(tmp_path, "SELECT trade_id FROM trades ORDER BY ts_exchange, "
                                          "CAST(trade_id AS BIGINT)")]
    assert len(stored) == len(ids) == 21_313
    assert sorted(stored, key=int) == sorted(ids, key=int)
    [(venue_quotes,)] = sql(tmp_path, "SELECT count(*) FROM quotes WHERE source = 'venue'")
    assert venue_quotes == book_ticker_count(frames) == 66_089
    # the rebuilt book's top on every change; the last one is the book's final top
    [(book_quotes,)] = sql(tmp_path, "SELECT count(*) FROM quotes WHERE source = 'book'")
    assert book_quotes > 1000
    last = sql(tmp_path, "SELECT bid_price, bid_size, ask_price, ask_size FROM quotes "
                         "WHERE source = 'book' ORDER BY update_id DESC LIMIT 1")
    assert last == [runner.books.books["BTCUSDT"].book.top()]
    assert sql(tmp_path, "SELECT count(*) FROM gaps") == [(0,)]
    [(market, inverse, tick)] = sql(
        tmp_path, "SELECT market, inverse, tick_size FROM instruments WHERE symbol = 'BTCUSDT'")
    assert (market, inverse, tick) == ("perpetual", False, 0.1)
    # snapshots: the best level equals the book's top as last quoted at or before it
    rows = sql(tmp_path, """
        SELECT s.update_id, s.price, q.bid_price FROM book_snapshots s
        ASOF JOIN (SELECT * FROM quotes WHERE source = 'book') q
          ON s.update_id >= q.update_id
        WHERE s.side = 'bid' AND s.level = 0""")
    assert rows and all(price == bid for _, price, bid in rows)
    # each holds the book's analysis window: from the best level until the largest notional
    # (1M USD) is filled, then one level more; at least the 10 imbalance levels
    sides = sql(tmp_path, """
        SELECT sum(price * size) FILTER (WHERE level < deepest) AS filled,
               sum(price * size) FILTER (WHERE level < deepest - 1) AS short, deepest
        FROM (SELECT *, max(level) OVER (PARTITION BY venue, symbol, ts_local, side) AS deepest
              FROM book_snapshots)
        GROUP BY venue, symbol, ts_local, side, deepest""")
    assert sides and all(filled >= 1e6 and (short < 1e6 or deepest == 9)
                         for filled, short, deepest in sides)
    assert metric(collector, "analyzer_frames_total", venue="binance_usdm",
                  channel="depth") == 6_551
    assert metric(collector, "analyzer_decode_errors_total", venue="binance_usdm",
                  channel="depth") == 0
    assert metric(collector, "analyzer_bbo_checks_total", venue="binance_usdm",
                  result="mismatch") == 0


@pytest.mark.parametrize(
    ("folder", "venue", "symbols", "feed"),
    [
        ("spot_2024", "binance_spot", ["BTCUSDT"], {"channels": ["depth", "trades", "bookTicker"]}),
        ("usdm_2023", "binance_usdm", ["BTCUSDT"], {"options": {"depth_speed": "0ms"}}),
        ("coinm_2021", "binance_coinm", COINM_SYMBOLS,
         {"options": {"trade_stream": "aggTrade"}, "channels": ["depth", "trades", "bookTicker"]}),
    ],
)
def test_other_recordings_book_matches_venue(
    tmp_path: Path, folder: str, venue: str, symbols: list[str], feed: dict[str, Any]
) -> None:
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / folder, speed=0)],
        [{"venue": venue, "symbols": symbols, **feed}],
    )
    runner = collector.runners[0]
    stats = runner.books.stats
    print(f"{folder}: {stats.bbo_compared} bookTickers compared, {stats.bbo_mismatched} differed")
    assert stats.bbo_mismatched == 0 and stats.gaps == 0
    assert all(sb.in_sync for sb in runner.books.books.values())
    if folder != "coinm_2021":
        files = sorted(p.name for p in (FIXTURES / folder).iterdir())
        frames = frames_of(*(f"{folder}/{f}" for f in files))
        expected = expected_bbo_comparisons(frames, venue == "binance_spot")
        assert close_to(stats.bbo_compared, expected)
        ids = trade_ids(frames)
        stored = sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades")
        assert stored == [(len(ids), len(ids))]
    else:  # 100 ms diffs span many update ids: few bookTickers fall between two of them (and
        # fewer the later the snapshot comes: 13 to 20 seen, the fewer on a loaded machine)
        assert stats.bbo_compared >= 10
        assert sql(tmp_path, "SELECT count(DISTINCT symbol) FROM quotes") == [(10,)]


def test_dropped_connections_lose_no_trade(tmp_path: Path) -> None:
    """Close code 1011 and an abrupt drop mid-replay (the replay waits for the client to come
    back): each recorded trade is stored once, the book carries on."""
    frames = frames_of(USDM_2024)
    faults = Faults(close_at=[(30_000, 1011), (60_000, None)])
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=0, faults=faults)],
        [usdm_feed()],
    )
    runner = collector.runners[0]
    reasons = {}
    for c in runner.connections:
        reasons.update(c.stats.reconnects)
    assert reasons.get("1011") == 1 and reasons.get("abnormal") == 1
    ids = trade_ids(frames)
    [(n, distinct)] = sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades")
    assert n == distinct == len(ids)
    stored = {r[0] for r in sql(tmp_path, "SELECT trade_id FROM trades")}
    assert stored == set(ids)
    print(f"backfilled {runner.trades_backfilled} trades after {runner.trade_gaps} id gaps")
    assert runner.books.stats.bbo_mismatched == 0
    assert runner.books.books["BTCUSDT"].in_sync


def test_trades_missed_while_disconnected_are_backfilled(tmp_path: Path) -> None:
    """At 40x recorded pace the market runs on while the collector reconnects: the trades it
    missed are fetched over REST (historicalTrades?fromId=), the book is resynced, and the
    trades table still holds each recorded trade exactly once."""
    frames = frames_of(USDM_2024)
    faults = Faults(close_at=[(30_000, None)])
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=40, faults=faults)],
        [usdm_feed()],
    )
    runner = collector.runners[0]
    print(f"backfilled {runner.trades_backfilled} trades after {runner.trade_gaps} id gaps")
    assert runner.trade_gaps >= 1 and runner.trades_backfilled > 0
    ids = trade_ids(frames)
    [(n, distinct)] = sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades")
    assert n == distinct == len(ids)
    assert {r[0] for r in sql(tmp_path, "SELECT trade_id FROM trades")} == set(ids)
    assert sql(tmp_path, "SELECT reason FROM gaps") == [("gap",)]
    assert runner.books.books["BTCUSDT"].in_sync
    assert runner.books.stats.bbo_mismatched == 0


def test_a_dropped_diff_resyncs_that_symbol_alone(tmp_path: Path) -> None:
    faults = Faults(drop_depth=[("BTCUSD_211231", 200)])  # of 227: the book is synced by then
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "coinm_2021", speed=0, faults=faults)],
        [{"venue": "binance_coinm", "symbols": COINM_SYMBOLS,
          "options": {"trade_stream": "aggTrade"},
          "channels": ["depth", "trades", "bookTicker"]}],
    )
    runner = collector.runners[0]
    gaps = sql(tmp_path, "SELECT symbol, reason, action FROM gaps")
    assert gaps == [("BTCUSD_211231", "gap", "resync")]
    assert runner.books.stats.resyncs == 1
    assert all(sb.in_sync for sb in runner.books.books.values())
    assert metric(collector, "analyzer_book_gaps_total", venue="binance_coinm",
                  reason="gap") == 1
    assert metric(collector, "analyzer_book_resyncs_total", venue="binance_coinm") == 1
    assert runner.books.stats.bbo_mismatched == 0


def test_malformed_frames_are_counted_and_the_stream_goes_on(tmp_path: Path) -> None:
    frames = frames_of(USDM_2024)
    faults = Faults(malformed=[(1_000, "truncated"), (2_000, "nonjson"), (3_000, "badprice")])
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=0, faults=faults)],
        [usdm_feed()],
    )
    runner = collector.runners[0]
    assert sum(runner.decode_errors.values()) == 3
    assert runner.books.stats.gaps == 0 and runner.books.stats.bbo_mismatched == 0
    assert sql(tmp_path, "SELECT count(*) FROM trades") == [(len(trade_ids(frames)),)]


def reconnect_reasons(collector: Collector) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for c in collector.runners[0].connections:
        for k, v in c.stats.reconnects.items():
            reasons[k] = reasons.get(k, 0) + v
    return reasons


def test_silent_stall_is_detected_and_recovered(tmp_path: Path) -> None:
    """The open connection goes silent (the venue keeps answering pings): the watchdog
    reconnects after stall_seconds, the book is resynced and missed trades are fetched."""
    frames = frames_of(USDM_2024)
    faults = Faults(freeze_at=[(40_000, 3.0)])
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=0, faults=faults)],
        [usdm_feed(stall_seconds=1.0)],
    )
    assert reconnect_reasons(collector).get("stall", 0) >= 1
    ids = trade_ids(frames)
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades") == [
        (len(ids), len(ids))]
    runner = collector.runners[0]
    assert runner.books.stats.bbo_mismatched == 0
    assert runner.books.books["BTCUSDT"].in_sync


def test_rotation_before_the_age_limit_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Connections are replaced at their maximum age (Binance: 24 h; here 1 s at 100x pace):
    the new one receives before the old one closes, and the overlap is deduplicated."""
    frames = frames_of(USDM_2024)
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "usdm_2024", speed=100)],
        [usdm_feed(max_connection_age_seconds=1.0)],
    )
    assert reconnect_reasons(collector).get("rotation", 0) >= 2
    ids = trade_ids(frames)
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades") == [
        (len(ids), len(ids))]
    runner = collector.runners[0]
    assert runner.books.stats.gaps == 0 and runner.books.stats.bbo_mismatched == 0
    [(n, distinct)] = sql(tmp_path, "SELECT count(*), count(DISTINCT update_id) FROM quotes "
                                    "WHERE source = 'venue'")
    assert n == distinct == book_ticker_count(frames)


def test_rest_429_is_honoured(tmp_path: Path) -> None:
    """A venue that answers 429 with Retry-After: the queue waits and every book still syncs."""
    collector = run_pipeline(
        tmp_path, [Replay.from_path(FIXTURES / "coinm_2021", speed=0)],
        [{"venue": "binance_coinm", "symbols": COINM_SYMBOLS,
          "options": {"trade_stream": "aggTrade"},
          "channels": ["depth", "trades", "bookTicker"], "rest_weight_per_minute": 100_000}],
        exchange={"rest_weight_limit": 100, "rest_window_s": 1.0},
    )
    runner = collector.runners[0]
    assert runner.rest.stats.throttled >= 1
    assert runner.rest.stats.by_status.get("429", 0) >= 1
    assert all(sb.in_sync for sb in runner.books.books.values())


def test_raw_capture_replays_to_the_same_data(tmp_path: Path) -> None:
    """What the collector captured is a recording the local exchange replays: collecting the
    capture gives the same trades and a book that agrees with the venue again."""
    first = tmp_path / "first"
    run_pipeline(first, [Replay.from_path(FIXTURES / "spot_2024", speed=0)],
                 [{"venue": "binance_spot", "symbols": ["BTCUSDT"],
                   "channels": ["depth", "trades", "bookTicker"]}])
    captured = first / "data" / "raw" / "binance_spot"
    assert any(captured.glob("binance_spot-*.gz"))
    second = tmp_path / "second"
    collector = run_pipeline(second, [Replay.from_path(captured, speed=0)],
                             [{"venue": "binance_spot", "symbols": ["BTCUSDT"],
                               "channels": ["depth", "trades", "bookTicker"]}])
    stats = collector.runners[0].books.stats
    assert stats.bbo_compared > 400 and stats.bbo_mismatched == 0 and stats.gaps == 0
    q = "SELECT trade_id, price, size, side, ts_exchange FROM trades ORDER BY trade_id"
    assert sql(second, q) == sql(first, q)
    assert len(sql(second, q)) == len(trade_ids(frames_of("spot_2024/btcusdt_20240808.gz")))
