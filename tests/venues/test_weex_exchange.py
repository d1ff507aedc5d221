"""WEEX end to end: the local exchange speaking the contract API V3
(``analyzer.venues.weex.emulate``) over real websockets and HTTP on loopback, the real
collector, real Parquet and DuckDB files.

The oracle is the real recording (tests/fixtures/weex/): a snapshot and its 60 changes chained
``U == previous u``, replayed to the collector, must leave the book an independent rebuild of
the raw frames makes; the simulated market is checked against the model's own trades.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import simrun
import websockets
from harness import drained

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import Faults, LocalExchange, Replay, Simulation
from analyzer.exchange.emulator import emulators
from analyzer.exchange.recordings import Recording
from analyzer.sim import Schedule, World
from analyzer.sim.scenarios import Disconnect
from analyzer.sim.spec import BTC, ETH, Rates
from analyzer.store.research import query
from analyzer.venues.weex.emulate import EMULATOR
from analyzer.venues.weex.emulate.sim import SIM_VENUES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "weex"
RECORDED = [FIXTURES / n for n in ("depth_snapshot.ndjson", "depth_deltas.ndjson",
                                   "ticker.ndjson", "trades_prefix.ndjson")]
FINAL_U = 16786246795
MARKET = EMULATOR.markets["weex_futures"]


def rebuild() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for path in RECORDED[:2]:
        for line in path.read_text().splitlines():
            m = json.loads(line)
            for side, levels in ((bids, m["b"]), (asks, m["a"])):
                for p, q in levels:
                    if float(q):
                        side[float(p)] = float(q)
                    else:
                        side.pop(float(p), None)
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def sql(db: Path, text: str) -> list[tuple]:
    return query(db, text).rows()


async def collect(tmp_path: Path, ex: LocalExchange, feeds: list[dict[str, Any]],
                  run: Callable[[Collector], Awaitable[None]]) -> Collector:
    for f in feeds:
        f.setdefault("ws_url", ex.ws_url(f["venue"]))
        f.setdefault("rest_url", ex.base_url(f["venue"]))
    cfg = config.parse({
        "feeds": feeds,
        "store": {"data_dir": str(tmp_path / "data"),
                  "database": str(tmp_path / "data" / "analyzer.duckdb"), "flush_seconds": 0.3},
        "metrics": {"port": 0},
    })
    collector = Collector(cfg)
    try:
        await collector.start()
        await run(collector)
        await drained(collector)
    finally:
        await collector.stop()
    return collector


def replay_run(tmp_path: Path, *, speed: float = 0.0, faults: Faults | None = None,
               files: list[Path] = RECORDED,
               symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> Collector:
    """The recording replayed (its files one after the other) and collected to the end."""

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_replay(Replay.from_path(files, "weex_futures", speed=speed, faults=faults))
        await ex.start()

        async def run(collector: Collector) -> None:
            await ex.wait_replays_done(timeout=60)

        try:
            feeds = [{"venue": "weex_futures", "symbols": list(symbols),
                      "channels": ["depth", "trades", "markPrice"], "options": {"depth": 15}}]
            return await collect(tmp_path, ex, feeds, run)
        finally:
            await ex.stop()

    return asyncio.run(main())


def test_registry_serves_weex() -> None:
    assert emulators()["weex"] is EMULATOR
    assert set(EMULATOR.markets) == {"weex_futures", "weex_spot"}


def test_recordings_reader_picks_weex_for_plain_frames() -> None:
    """Plain V3 frames (no local time): WEEX's by their events, timed by ``E``, each on the
    stream a client subscribes (made from the event, the symbol and the depth)."""
    rec = Recording.open([RECORDED[0], RECORDED[1], RECORDED[3]])
    assert rec.feed == "weex_futures" and rec.first_ts == 1788692246206 * 1_000_000
    assert rec.streams == {b"BTCUSDT@depth15": 61, b"BTCUSDT@trade": 2, b"ETHUSDT@trade": 2}


def test_replayed_recording_rebuilds_the_book_and_stores_each_trade_once(
        tmp_path: Path) -> None:
    """THE ORACLE: the real snapshot and 60 changes through the exchange and the collector:
    no gap, the book equals the independent rebuild level for level at u 16786246795; the
    recorded trade frames (62 trades, 11 repeats) stored as 51 trades, each once; the ticker's
    mark and index stored."""
    collector = replay_run(tmp_path)
    runner = collector.runners[0]
    sb = runner.books.books["BTCUSDT"]
    bids, asks = rebuild()
    assert sb.in_sync and sb.last_id == FINAL_U and sb.updates == 60
    assert sb.book.bids(100) == bids and sb.book.asks(100) == asks
    assert runner.books.stats.gaps == 0 and sum(runner.decode_errors.values()) == 0
    db = tmp_path / "data" / "analyzer.duckdb"
    rows = {s: (n, d) for s, n, d in sql(
        db, "SELECT symbol, count(*), count(DISTINCT trade_id) FROM trades GROUP BY ALL")}
    assert rows == {"BTCUSDT": (23, 23), "ETHUSDT": (28, 28)}
    assert runner.duplicate_frames >= 11
    assert sql(db, "SELECT ts_exchange, mark_price, index_price FROM derivative_tickers "
                   "WHERE funding_rate IS NULL") == [(1788692276431 * 1_000_000, 79984.1,
                                                      80019.68575)]
    assert sql(db, "SELECT count(*) FROM gaps") == [(0,)]
    # the listing made up from the recording: steps from the recorded decimals
    inst = runner.instruments["BTCUSDT"]
    assert (inst.tick_size, inst.lot_size, inst.market) == (0.1, 0.0001, "perpetual")


def test_dropped_change_is_a_gap_and_the_book_resubscribes_alone(tmp_path: Path) -> None:
    """The 10th change never goes out (the exchange's book still applies it): the next one's
    U is not the book's u, a ``gap`` row is stored, the book's stream alone is resubscribed on
    its connection, the exchange's snapshot brings it back, and the book ends equal to the
    rebuild."""
    # the book's files alone, at 20 times their pace (1.5 s)
    collector = replay_run(tmp_path, speed=20.0, files=RECORDED[:2], symbols=("BTCUSDT",),
                           faults=Faults(drop_depth=[("BTCUSDT", 10)]))
    runner = collector.runners[0]
    sb = runner.books.books["BTCUSDT"]
    s = runner.books.stats
    assert s.gaps == 1 and s.resyncs == 1 and s.snapshots_applied == 2
    bids, asks = rebuild()
    assert sb.in_sync and sb.last_id == FINAL_U
    assert sb.book.bids(100) == bids and sb.book.asks(100) == asks
    db = tmp_path / "data" / "analyzer.duckdb"
    assert sql(db, "SELECT symbol, reason FROM gaps") == [("BTCUSDT", "gap")]
    assert {k: v for c in runner.connections for k, v in c.stats.reconnects.items()} == {}


def weex_world() -> World:
    return World(assets=(BTC, ETH), venues=SIM_VENUES, rates=Rates()).validate()


def test_simulated_market_in_sync_trades_once_funding_and_open_interest(
        tmp_path: Path) -> None:
    """The simulated market: books in sync without a gap (the venue's 200-level window kept
    by the exchange), every trade released stored once although each trade frame repeats the
    one before, mark and index from the ticker stream, funding from premiumIndex (interval 8
    h from ``collectCycle`` 480), open interest in base units and USD."""
    run = simrun.run_sim(tmp_path, "", seconds=8, speed=8, exchanges=("weex",))
    runner = run.runner("weex_futures")
    s = runner.books.stats
    assert s.gaps == 0 and s.resyncs == 0 and s.snapshots_applied == 2
    assert sum(runner.decode_errors.values()) == 0 and runner.feed.rules.cases == {}
    produced, stored = run.produced_trades(), run.stored_trades()
    assert stored == produced and sum(stored.values()) > 50
    assert runner.duplicate_frames > 0  # the repeats were there, and dropped
    for sym, sb in runner.books.books.items():
        assert sb.in_sync and sb.book.bid_count == sb.book.ask_count == 200, sym
    rows = dict(run.sql("SELECT symbol, max(funding_interval_hours) FROM derivative_tickers "
                        "WHERE funding_rate IS NOT NULL GROUP BY ALL"))
    assert rows == {"BTCUSDT": 8.0, "ETHUSDT": 8.0}
    [(marks,)] = run.sql("SELECT count(*) FROM derivative_tickers WHERE index_price IS NOT "
                         "NULL AND funding_rate IS NULL")
    assert marks > 5
    model = run.sim.model
    [(oi, usd)] = run.sql("SELECT open_interest, value_usd FROM open_interest WHERE symbol = "
                          "'BTCUSDT' ORDER BY ts_local DESC LIMIT 1")
    assert oi == pytest.approx(model.open_interest("weex_futures", "BTCUSDT").open_interest,
                               rel=0.05)
    assert usd == pytest.approx(oi * 60_000, rel=0.1)


def test_disconnects_by_close_code_lose_no_trade(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections closed 5 times (1000, 1001, 1008, 1011, a TCP abort): each reconnect
    resubscribes, the new snapshots resync the books, and each trade subscription's
    ``tradeSnapshot`` (the latest 20) brings back the trades of the outage: stored once each,
    none lost. (The futures market alone: with the spot market in the same process the
    outages on a loaded machine outlast 20 trades, the REST backfill's case, tested in
    test_weex_spot.py.)"""
    monkeypatch.setattr(EMULATOR, "sim_venues", SIM_VENUES[:1])
    schedule = Schedule([Disconnect(at_s=2.0, spacing_s=6.0, feed="weex_futures")])
    run = simrun.run_sim(tmp_path, schedule, seconds=30, speed=6, exchanges=("weex",),
                         options={"weex_futures": {"healthy_seconds": 0.5}})
    runner = run.runner("weex_futures")
    print(f"weex disconnects: {run.reconnects('weex_futures')}, "
          f"{run.exchange.stats['feeds']['weex_futures']['closed_by_fault']} closed by faults, "
          f"cases {runner.feed.rules.cases}, trades {sum(run.stored_trades().values())}")
    assert run.reconnects("weex_futures") == {
        "1000": 1, "1001": 1, "1008": 1, "1011": 1, "abnormal": 1}
    assert sum(runner.decode_errors.values()) == 0
    assert "trades_beyond_snapshot" not in runner.feed.rules.cases
    assert run.stored_trades() == run.produced_trades()


def test_silent_stall_and_server_pings_answered(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The server pings every 0.1 s and closes a socket after 10 unanswered ones: a raw client
    that never answers is closed, the collector that answers each is not; then the market
    goes silent for 3 s (pings and their answers only, which are not data): a stall, and a
    reconnect."""
    monkeypatch.setattr(MARKET, "ping_seconds", 0.1)
    sim = Simulation(weex_world(), seed=2, speed=2.0)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()

        async def run(collector: Collector) -> None:
            conn = collector.runners[0].connections[0]
            await simrun.until(lambda: conn.stats.connected, 10, "connected")
            # a raw client that never answers is closed after 10 pings
            url = ex.ws_url("weex_futures") + "/v3/ws/public"
            async with websockets.connect(url, ping_interval=None) as ws:
                t0 = time.monotonic()
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await ws.recv()
                assert 0.9 < time.monotonic() - t0 < 3.0
            assert conn.stats.reconnects == {}
            ex.stall("weex_futures", 3.0)
            await simrun.until(lambda: conn.stats.reconnects.get("stall", 0) >= 1, 15,
                               "a stall")
            sim.stop()
            await ex.wait_replays_done(timeout=30)

        try:
            feeds = [{"venue": "weex_futures", "symbols": ["BTCUSDT"], "channels": ["depth"],
                      "stall_seconds": 1.5}]
            return await collect(tmp_path, ex, feeds, run)
        finally:
            await ex.stop()

    collector = asyncio.run(main())
    assert set(collector.runners[0].connections[0].stats.reconnects) == {"stall"}


def test_protocol_acks_refusals_ping_and_delisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The greeting; a snapshot before the ack; a refused stream among good ones; ``PING`` ->
    ``result``; a delisted symbol acked with one empty snapshot (U = u = 0); the sixth
    refusal closes the socket with 1007."""
    monkeypatch.setattr(MARKET, "delisted", {"ETHUSDT"})
    sim = Simulation(weex_world(), seed=1, speed=1.0)

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        try:
            url = ex.ws_url("weex_futures") + "/v3/ws/public"
            async with websockets.connect(url, ping_interval=None) as ws:
                hello = json.loads(await ws.recv())
                assert hello["event"] == "connected" and "cid" in hello

                async def reply(req: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                              dict[str, Any]]:
                    await ws.send(json.dumps(req))
                    data = []
                    while True:
                        m = json.loads(await ws.recv())
                        if "result" in m and m.get("id") == req["id"]:
                            return data, m
                        data.append(m)

                data, ack = await reply({"method": "SUBSCRIBE", "id": 1,
                                         "params": ["BTCUSDT@depth200", "nope@trade"]})
                assert ack == {"result": False, "id": 1,
                               "msg": "INVALID_ARGUMENT: invalid symbol : NOPE"}
                assert data[0]["e"] == "depthSnapshot" and len(data[0]["b"]) == 200
                _, pong = await reply({"method": "PING", "id": 7})
                assert pong == {"result": True, "id": 7}
                data, ack = await reply({"method": "SUBSCRIBE", "id": 2,
                                         "params": ["ETHUSDT@depth200"]})
                assert ack == {"result": True, "id": 2}
                dead = [d for d in data if d.get("s") == "ETHUSDT"]
                assert dead == [{"e": "depthSnapshot", "E": dead[0]["E"], "s": "ETHUSDT",
                                 "U": 0, "u": 0, "l": 200, "d": "SNAPSHOT", "b": [], "a": []}]
                for i in range(4):
                    _, bad = await reply({"method": "SUBSCRIBE", "id": 10 + i,
                                          "params": ["BTCUSDT@kline"]})
                    assert bad["result"] is False
                await ws.send(json.dumps({"method": "SUBSCRIBE", "id": 20,
                                          "params": ["BTCUSDT@depth5"]}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        finally:
            await ex.stop()

    asyncio.run(main())


def test_delisted_symbol_is_a_dead_stream_not_a_resubscribe_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector follows a symbol the venue has delisted: its book stream is acked with
    one empty snapshot, counted as a dead stream, and never asked again (no resync, no
    reconnect); the other symbol's book is in sync."""
    monkeypatch.setattr(MARKET, "delisted", {"ETHUSDT"})
    sim = Simulation(weex_world(), seed=3, speed=2.0)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()

        async def run(collector: Collector) -> None:
            books = collector.runners[0].books.books
            await simrun.until(lambda: books["BTCUSDT"].in_sync, 10, "BTCUSDT in sync")
            await asyncio.sleep(2.0)
            sim.stop()
            await ex.wait_replays_done(timeout=30)

        try:
            feeds = [{"venue": "weex_futures", "symbols": ["BTCUSDT", "ETHUSDT"],
                      "channels": ["depth"]}]
            return await collect(tmp_path, ex, feeds, run)
        finally:
            await ex.stop()

    collector = asyncio.run(main())
    runner = collector.runners[0]
    assert runner.feed.rules.cases == {"dead_stream": 1}
    assert not runner.books.books["ETHUSDT"].in_sync and runner.books.books["BTCUSDT"].in_sync
    assert runner.books.stats.resyncs == 0
    assert {k: v for c in runner.connections for k, v in c.stats.reconnects.items()} == {}
