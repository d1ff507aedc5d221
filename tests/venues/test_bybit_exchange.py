"""Bybit end to end: the local exchange speaking Bybit v5 (a real recording replayed, or the
simulated market) -> real websockets and HTTP on loopback -> the collector, unchanged ->
Parquet/DuckDB. Books are checked level for level against an independent rebuild of the raw
frames (json module, plain Python) or against the model."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import simrun
import websockets
from harness import drained

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import LocalExchange, Replay, Simulation
from analyzer.exchange.emulator import emulators
from analyzer.exchange.recordings import Recording
from analyzer.feed.books import SYNCING
from analyzer.sim import Schedule
from analyzer.sim.scenarios import Disconnect
from analyzer.sim.spec import BTC, ETH, World
from analyzer.store.research import query
from analyzer.venues import VENUES
from analyzer.venues.bybit.emulate.specs import BYBIT_LINEAR, SIM_VENUES

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bybit"
OB500 = FIXTURES / "ob500_XRPUSDT_2024-12-01.ndjson"
DERIVATIVE_CHANNELS = ["depth", "trades", "bookTicker", "markPrice", "openInterest",
                       "liquidations"]


def rebuild(path: Path) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
    """The book the raw frames make: a snapshot replaces, a delta sets sizes (0 removes)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    u = 0
    for line in path.read_text().splitlines():
        m = json.loads(line)
        d = m["data"]
        if m["type"] == "snapshot":
            bids, asks = {}, {}
        else:
            assert d["u"] == u + 1  # the recording is contiguous
        for side, levels in ((bids, d["b"]), (asks, d["a"])):
            for p, q in levels:
                if float(q):
                    side[float(p)] = float(q)
                else:
                    side.pop(float(p), None)
        u = d["u"]
    return sorted(bids.items(), reverse=True), sorted(asks.items()), u


def collect(tmp_path: Path, ex: LocalExchange, feeds: list[dict[str, Any]]) -> Collector:
    for f in feeds:
        f |= {"ws_url": ex.ws_url(f["venue"]), "rest_url": ex.base_url(f["venue"])}
    db = tmp_path / "data" / "analyzer.duckdb"
    cfg = config.parse({
        "feeds": feeds,
        "store": {"data_dir": str(tmp_path / "data"), "database": str(db),
                  "flush_seconds": 0.3},
        "metrics": {"port": 0},
    })
    return Collector(cfg)


def sql(tmp_path: Path, text: str) -> list[tuple]:
    return query(tmp_path / "data" / "analyzer.duckdb", text).rows()


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def books_of(collector: Collector) -> list[Any]:
    return [sb for r in collector.runners for sb in r.books.books.values()]


# -- replay of the real recording -------------------------------------------------------------


def test_recordings_reader_picks_bybit_for_plain_frames() -> None:
    rec = Recording.open(OB500)
    assert rec.feed == "bybit_linear" and rec.symbols == {"XRPUSDT"}
    assert rec.frames == 50 and rec.first_ts == 1733011200691 * 1_000_000  # the frame's ts
    tardis = Recording.open(FIXTURES / "tardis_v5_samples.ndjson", market="bybit_linear")
    assert tardis.frames == 15  # every message has a topic, even the one laid out data-first
    assert b"liquidation.XRPUSD" in tardis.streams


def test_replayed_ob500_book_equals_an_independent_rebuild(tmp_path: Path) -> None:
    bids, asks, last_u = rebuild(OB500)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_replay(Replay.from_path(OB500, speed=0))
        await ex.start()
        collector = collect(tmp_path, ex, [{"venue": "bybit_linear", "symbols": ["XRPUSDT"],
                                            "channels": ["depth"], "options": {"depth": 500}}])
        try:
            await collector.start()
            await ex.wait_replays_done(timeout=60)
            await drained(collector)
            assert ex.depth("bybit_linear", "XRPUSDT", 1000)["u"] == last_u
        finally:
            await collector.stop()
            await ex.stop()
        return collector

    collector = asyncio.run(main())
    runner = collector.runners[0]
    sb = runner.books.books["XRPUSDT"]
    got_bids, got_asks = sb.book.bids(10_000), sb.book.asks(10_000)
    print(f"ob500 XRPUSDT: {len(got_bids)} bids and {len(got_asks)} asks compared, "
          f"u {sb.last_id}, gaps {runner.books.stats.gaps}")
    assert [tuple(lv) for lv in got_bids] == bids and [tuple(lv) for lv in got_asks] == asks
    assert len(bids) >= 490 and len(asks) >= 490
    assert sb.in_sync and sb.last_id == last_u
    assert runner.books.stats.gaps == 0 and sum(runner.decode_errors.values()) == 0
    assert sql(tmp_path, "SELECT count(*) FROM gaps")[0][0] == 0
    # the listing was made up from the recording: its steps are the recorded decimals
    inst = runner.instruments["XRPUSDT"]
    assert (inst.market, inst.tick_size, inst.lot_size) == ("perpetual", 0.0001, 1.0)
    assert collector.runners[0].connections[0].stats.reconnects == {}


# -- the simulated market ---------------------------------------------------------------------


def sim_feeds(sim: Simulation, depth: int = 50) -> list[dict[str, Any]]:
    by: dict[str, list[str]] = {}
    for inst in sim.model.instruments():
        by.setdefault(inst.venue, []).append(inst.symbol)
    return [{"venue": v, "symbols": syms, "options": {"depth": depth},
             "channels": (["depth", "trades", "bookTicker"] if v == "bybit_spot"
                          else DERIVATIVE_CHANNELS)}
            for v, syms in by.items()]


def run_sim(tmp_path: Path, world: World, seconds: float, *, speed: float = 10,
            during: Any = None, feeds: Any = None, depth: int = 50) -> tuple[Collector,
                                                                           Simulation]:
    sim = Simulation(world, seed=5, speed=speed, wait_for=[v.feed for v in world.venues],
                     autostart=False)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        collector = collect(tmp_path, ex, feeds(sim) if feeds else sim_feeds(sim, depth))
        try:
            await collector.start()
            await until(lambda: all(sb.state != SYNCING for sb in books_of(collector)), 60,
                        "snapshots")
            sim.start()
            if during is not None:
                await during(ex, collector, sim)
            end = sim.start_ns + round(seconds * 1e9)
            await until(lambda: sim.model.now_ns >= end
                        and all(sb.in_sync for sb in books_of(collector)), 60, "in sync")
            sim.stop()
            await ex.wait_replays_done(timeout=60)
            await drained(collector)
        finally:
            await collector.stop()
            await ex.stop()
        return collector

    return asyncio.run(main()), sim


def assert_books_match_model(collector: Collector, sim: Simulation, depth: int) -> int:
    """Every book equals the model's best ``depth`` levels; returns the levels compared."""
    n = 0
    for runner in collector.runners:
        for symbol, sb in runner.books.books.items():
            snap = sim.model.snapshot(runner.venue, symbol)
            assert sb.in_sync, (runner.venue, symbol)
            assert [tuple(lv) for lv in sb.book.bids(10_000)] == snap.bids[:depth], symbol
            assert [tuple(lv) for lv in sb.book.asks(10_000)] == snap.asks[:depth], symbol
            n += 2 * depth
    return n


def test_simulated_bybit_markets_end_to_end(tmp_path: Path) -> None:
    world = World(assets=(BTC, ETH), venues=SIM_VENUES)
    collector, sim = run_sim(tmp_path, world, seconds=30, speed=10)
    levels = assert_books_match_model(collector, sim, 50)
    produced = {(v, s): len(r.tape.rows) for v in ("bybit_spot", "bybit_linear", "bybit_inverse")
                for s, r in sim.feeds[v].routes.items()}
    rows = sql(tmp_path, "SELECT venue, symbol, count(*), count(DISTINCT trade_id) FROM trades "
                         "GROUP BY ALL")
    stored = {(v, s): n for v, s, n, _ in rows}
    assert all(n == d for _, _, n, d in rows)  # each trade once
    assert stored == {k: n for k, n in produced.items() if n}
    print(f"bybit sim: {levels} book levels compared, {sum(stored.values())} trades stored "
          f"once of {sum(produced.values())}, gaps "
          f"{sum(r.books.stats.gaps for r in collector.runners)}")
    assert all(r.books.stats.gaps == 0 for r in collector.runners)
    assert all(sum(r.decode_errors.values()) == 0 for r in collector.runners)
    # tickers: funding of perpetuals with their interval and next time; dated: none
    tk = {(v, s): (rate, nxt, hours) for v, s, rate, nxt, hours in sql(
        tmp_path, "SELECT venue, symbol, last(funding_rate ORDER BY ts_exchange), "
                  "last(next_funding_time ORDER BY ts_exchange), "
                  "last(funding_interval_hours ORDER BY ts_exchange) "
                  "FROM derivative_tickers GROUP BY ALL")}
    model = sim.model
    for (v, s), (rate, nxt, hours) in tk.items():
        inst = model.find(v, s)
        assert inst is not None
        if inst.market == "perpetual":
            want = model.ticker(v, s)
            assert hours == want.funding_interval_hours
            assert nxt == want.next_funding_time and rate == pytest.approx(want.funding_rate,
                                                                           abs=1e-8)
        else:
            assert rate is None and nxt is None
    assert tk[("bybit_linear", "ETHUSDT")][2] == 4.0 and tk[("bybit_inverse", "BTCUSD")][2] == 8
    assert len(tk) == 8
    # open interest: one side, in contracts and in USD, as the model has it
    oi = {(v, s): (n, usd) for v, s, n, usd in sql(
        tmp_path, "SELECT venue, symbol, last(open_interest ORDER BY ts_exchange), "
                  "last(value_usd ORDER BY ts_exchange) FROM open_interest GROUP BY ALL")}
    assert len(oi) == 8
    for (v, s), (n, usd) in oi.items():
        want_oi = model.open_interest(v, s)
        assert n == pytest.approx(want_oi.open_interest, rel=0.05)
        if v == "bybit_inverse":
            assert usd == n  # 1 USD a contract
        else:
            assert usd == pytest.approx(n * model.ticker(v, s).mark_price, rel=0.01)
    # the listing: inverse contracts of 1 USD, dated contracts with their expiry
    insts = {(v, s): (inv, size, exp) for v, s, inv, size, exp in sql(
        tmp_path, "SELECT venue, symbol, inverse, contract_size, expiry FROM instruments")}
    assert insts[("bybit_inverse", "BTCUSDH26")] == (True, 1.0, model.find(
        "bybit_inverse", "BTCUSDH26").expiry)
    assert insts[("bybit_inverse", "ETHUSD")] == (True, 1.0, None)
    assert insts[("bybit_linear", "BTCUSDT-27MAR26")][2] == 1774598400 * 10**9
    assert insts[("bybit_spot", "BTCUSDT")] == (False, 1.0, None)


def test_a_dropped_delta_is_a_gap_and_a_resync_of_that_symbol_alone(tmp_path: Path) -> None:
    world = World(assets=(BTC, ETH),
                  venues=(msgspec.structs.replace(BYBIT_LINEAR, quarterlies=0),))

    async def drop(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        await asyncio.sleep(0.5)
        ex.drop_next_depth("bybit_linear", "BTCUSDT")
        runner = collector.runners[0]
        await until(lambda: runner.books.stats.gaps >= 1, 30, "the gap")

    collector, sim = run_sim(tmp_path, world, seconds=15, speed=10, during=drop)
    runner = collector.runners[0]
    gaps = sql(tmp_path, "SELECT symbol, reason, action FROM gaps")
    print(f"bybit drop: gaps {gaps}, resyncs {runner.books.stats.resyncs}")
    assert gaps == [("BTCUSDT", "gap", "resync")]
    assert runner.connections[0].stats.reconnects == {}  # resubscribed on the same connection
    assert_books_match_model(collector, sim, 50)


@pytest.mark.parametrize("channels", [["depth", "trades"], DERIVATIVE_CHANNELS])
def test_reconnects_lose_no_trade_recent_trades_fill_the_holes(
    tmp_path: Path, channels: list[str],
) -> None:
    """The linear feed's connections closed 5 times (1000, 1001, 1008, 1011, a TCP abort), 10
    market seconds apart: after each reconnect the collector asks recent-trade for every
    symbol, and every trade the simulation released is stored exactly once (the stream's and
    the REST copies of a trade share its execId). With 2 channels the 4 symbols' 8 topics go in
    one subscribe request; with every channel, 20 topics take two requests 0.2 s apart, and
    the first one's trades arrive before the second is sent: the backfill starts from the
    last trade seen when the connection opened, not from those."""
    schedule = Schedule([Disconnect(at_s=5.0, spacing_s=10.0, feed="bybit_linear")])
    run = simrun.run_sim(tmp_path, schedule, seconds=70, speed=10, exchanges=("bybit",),
                         options={"bybit_linear": {"healthy_seconds": 0.5,
                                                   "channels": channels}})
    linear = run.runner("bybit_linear")
    produced, stored = run.produced_trades(), run.stored_trades()
    print(f"bybit disconnects ({len(channels)} channels): reconnects "
          f"{run.reconnects('bybit_linear')}, trades produced {sum(produced.values())}, stored "
          f"{sum(stored.values())}, backfilled {linear.trades_backfilled}, gaps "
          f"{linear.trade_gaps}")
    assert run.reconnects("bybit_linear") == {
        "1000": 1, "1001": 1, "1008": 1, "1011": 1, "abnormal": 1}
    assert run.exchange.stats["feeds"]["bybit_linear"]["closed_by_fault"] == 5
    assert all(sum(r.decode_errors.values()) == 0 for r in run.collector.runners)
    for venue in ("bybit_spot", "bybit_inverse"):
        assert run.reconnects(venue) == {} and run.runner(venue).trades_backfilled == 0
    assert linear.trades_backfilled > 0 and linear.trade_gaps == 0
    assert stored == produced  # (stored_trades checks that each is stored once)


def test_replay_answers_recent_trade_with_the_trades_released() -> None:
    """The replay keeps the recorded publicTrade frames released so far and answers
    recent-trade with them, newest first, at most ``limit``; decoded, they are the stream's."""
    from analyzer.venues.bybit.emulate.state import BybitReplay

    replay = BybitReplay("inverse", None)
    frame = next(line for line in (FIXTURES / "tardis_v5_samples.ndjson").read_bytes()
                 .splitlines() if line.startswith(b'{"topic":"publicTrade.BTCUSD"'))
    handler, symbol, depth = replay.classify(b"publicTrade.BTCUSD")
    assert handler is not None and symbol == "BTCUSD" and not depth
    handler(symbol, frame)
    feed_cls = VENUES["bybit_inverse"][1]
    stream = feed_cls(VENUES["bybit_inverse"][0], ["BTCUSD"], ["trades"], _Trades())
    stream.decode(frame, 1)

    class _Clock:
        def now_ms(self) -> int:
            return 1680673824000

    params = {"category": "inverse", "symbol": "BTCUSD", "limit": "1000"}
    body = replay.rest(_Clock(), "recent-trade", params)  # type: ignore[arg-type]
    items = json.loads(body)["result"]["list"]
    assert [i["execId"] for i in items] == [
        "cb558b74-cf72-5157-b53b-93944db336ad", "912e56de-9ed6-5f4f-9421-f0ff5a42d84a",
        "0cbf2330-952d-5d03-a462-4bf826c867af"]  # newest first
    assert stream.decode_trades(body, "BTCUSD", 1) == stream.sink.trades
    two = replay.rest(_Clock(), "recent-trade", params | {"limit": "2"})  # type: ignore[arg-type]
    assert len(json.loads(two)["result"]["list"]) == 2
    other = replay.rest(_Clock(), "recent-trade", params | {"symbol": "ETHUSD"})  # type: ignore[arg-type]
    assert json.loads(other)["result"]["list"] == []


class _Trades:
    """A sink keeping trades only."""

    def __init__(self) -> None:
        self.trades: list[Any] = []

    def on_trade(self, ev: Any) -> None:
        self.trades.append(ev)


# -- the heartbeat ----------------------------------------------------------------------------


def test_heartbeat_keeps_the_connection_and_pongs_are_not_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The venue cuts a connection that sends nothing for its idle limit (here 1 s): a raw
    client that never pings is cut; the collector pinging every 0.3 s stays connected past
    it, and while the market sends nothing its pongs do not count as data (a stall)."""
    emulated = emulators()["bybit"].markets["bybit_linear"]
    monkeypatch.setattr(emulated, "idle_timeout_s", 1.0)
    market, feed_cls = VENUES["bybit_linear"]
    monkeypatch.setitem(VENUES, "bybit_linear",
                        (dataclasses.replace(market, heartbeat_seconds=0.3), feed_cls))
    world = World(assets=(BTC,), venues=(msgspec.structs.replace(BYBIT_LINEAR, quarterlies=0),))

    def feeds(sim: Simulation) -> list[dict[str, Any]]:
        return [{"venue": "bybit_linear", "symbols": ["BTCUSDT"], "channels": ["depth"],
                 "stall_seconds": 2.0}]

    async def during(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        url = ex.ws_url("bybit_linear") + "/v5/public/linear"
        async with websockets.connect(url) as ws:  # never pings
            await ws.send(json.dumps({"op": "ping", "req_id": "7"}))
            pong = json.loads(await ws.recv())
            assert pong["op"] == "ping" and pong["ret_msg"] == "pong" and pong["success"]
            assert pong["req_id"] == "7"
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await ws.recv()
            assert 0.8 < time.monotonic() - t0 < 3
        await asyncio.sleep(2.5)  # past the idle limit twice over
        conn = collector.runners[0].connections[0]
        assert conn.stats.reconnects == {}
        ex.stall("bybit_linear", 4.0)  # nothing but pongs for 4 s
        await until(lambda: conn.stats.reconnects.get("stall", 0) >= 1, 15, "a stall")

    collector, _ = run_sim(tmp_path, world, seconds=3, speed=5, during=during, feeds=feeds)
    assert set(collector.runners[0].connections[0].stats.reconnects) == {"stall"}


def test_subscribe_protocol_acks_and_refusals() -> None:
    world = World(assets=(BTC,), venues=(msgspec.structs.replace(BYBIT_LINEAR, quarterlies=0),))

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(Simulation(world, seed=1, speed=1))
        await ex.start()
        try:
            async with websockets.connect(ex.ws_url("bybit_linear") + "/v5/public/linear") as ws:
                async def ask(req: dict[str, Any]) -> dict[str, Any]:
                    await ws.send(json.dumps(req))
                    while True:
                        m = json.loads(await ws.recv())
                        if "op" in m:
                            return m

                ok = await ask({"op": "subscribe", "args": ["tickers.BTCUSDT"], "req_id": "1"})
                assert ok["success"] and ok["ret_msg"] == "" and ok["req_id"] == "1"
                assert set(ok) == {"success", "ret_msg", "conn_id", "req_id", "op"}
                bad = await ask({"op": "subscribe", "args": ["orderbook.50.NOPEUSDT"]})
                assert not bad["success"] and "NOPEUSDT" in bad["ret_msg"]
                many = await ask({"op": "subscribe",
                                  "args": [f"publicTrade.X{i}" for i in range(11)]})
                assert many["ret_msg"] == "args size >10"
                again = await ask({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
                assert not again["success"]
                off = await ask({"op": "unsubscribe", "args": ["tickers.BTCUSDT"]})
                assert off["success"] and off["op"] == "unsubscribe"
        finally:
            await ex.stop()

    asyncio.run(main())
