"""MEXC end to end: the local exchange speaking MEXC's contract protocol (the simulated market,
or the real frames replayed) -> real websockets and HTTP on loopback -> the collector,
unchanged -> Parquet/DuckDB. Books are compared with the venue's book (the emulator's, by
version) and the model; trades counted against those released."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
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
from analyzer.venues.mexc.emulate.specs import MEXC_FUTURES

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mexc"
FEED = "mexc_futures"
CHANNELS = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]
WORLD = World(assets=(BTC, ETH), venues=(MEXC_FUTURES,))


def sql(tmp_path: Path, text: str) -> list[tuple]:
    return query(tmp_path / "data" / "analyzer.duckdb", text).rows()


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


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


def subscriptions(ex: LocalExchange) -> int:
    return ex.stats["feeds"][FEED]["subscriptions"]


def books_of(collector: Collector) -> list[Any]:
    return [sb for r in collector.runners for sb in r.books.books.values()]


def run_sim(tmp_path: Path, seconds: float, *, speed: float = 10, during: Any = None,
            channels: list[str] = CHANNELS, world: World = WORLD,
            schedule: Schedule | None = None, **feed: Any
            ) -> tuple[Collector, Simulation, LocalExchange]:
    sim = Simulation(world, seed=5, speed=speed, wait_for=[FEED], autostart=False,
                     schedule=schedule or Schedule([]))

    async def main() -> tuple[Collector, LocalExchange]:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        symbols = [i.symbol for i in sim.model.instruments()]
        collector = collect(tmp_path, ex, [{"venue": FEED, "symbols": symbols,
                                            "channels": channels, **feed}])
        try:
            await collector.start()
            await until(lambda: all(sb.state != SYNCING for sb in books_of(collector)), 60,
                        "snapshots")
            # one subscription a message, paced: every stream subscribed before the clock
            streams = len(collector.runners[0].feed.streams)
            await until(lambda: subscriptions(ex) == streams, 30, "subscriptions")
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
        return collector, ex

    collector, ex = asyncio.run(main())
    return collector, sim, ex


def assert_books_match_the_venue(collector: Collector, ex: LocalExchange) -> int:
    """Every book equals the venue's book at its version, level for level and exactly (whole
    contracts divided back into base units are the model's floats), down to 500 levels a side
    (inside the 1000-level snapshot's horizon), and the model's; returns the levels compared."""
    n = 0
    model = ex.feed(FEED).sim_market.model
    for sb in books_of(collector):
        venue = ex.depth(FEED, sb.symbol, 500)
        assert sb.in_sync and sb.last_id == venue["version"], sb.symbol
        assert sb.book.bids(500) == venue["bids"] and sb.book.asks(500) == venue["asks"]
        snap = model.snapshot(FEED, sb.symbol)
        assert sb.book.bids(500) == snap.bids[:500] and sb.book.asks(500) == snap.asks[:500]
        n += len(venue["bids"]) + len(venue["asks"])
    return n


def test_simulated_mexc_market_end_to_end(tmp_path: Path) -> None:
    collector, sim, ex = run_sim(tmp_path, seconds=20, speed=10)
    runner = collector.runners[0]
    levels = assert_books_match_the_venue(collector, ex)
    produced = {s: len(r.tape.rows) for s, r in sim.feeds[FEED].routes.items()}
    rows = sql(tmp_path, "SELECT symbol, count(*), count(DISTINCT trade_id), sum(size) "
                         "FROM trades GROUP BY ALL")
    assert all(n == d for _, n, d, _ in rows)  # each trade once
    assert {s: n for s, n, _, _ in rows} == {s: n for s, n in produced.items() if n}
    for s, _, _, size in rows:
        want = sum(q for _, q, _, _ in sim.feeds[FEED].routes[s].tape.rows)
        assert size == pytest.approx(want, rel=1e-9)
    print(f"mexc sim: {levels} book levels compared, {sum(produced.values())} trades stored "
          f"once, gaps {runner.books.stats.gaps}, cases {runner.feed.rules.cases}")
    assert runner.books.stats.gaps == 0 and sum(runner.decode_errors.values()) == 0
    assert runner.feed.rules.cases == {"version_skip": 0, "version_repeat": 0, "bridge_skip": 0}
    assert runner.venue_errors == 0
    # tickers: funding with its interval (collectCycle) and next settlement, mark and index
    model = sim.model
    tk = {s: (mark, rate, nxt, hours) for s, mark, rate, nxt, hours in sql(
        tmp_path, "SELECT symbol, last(mark_price ORDER BY ts_exchange), "
                  "last(funding_rate ORDER BY ts_exchange), "
                  "last(next_funding_time ORDER BY ts_exchange), "
                  "last(funding_interval_hours ORDER BY ts_exchange) "
                  "FROM derivative_tickers GROUP BY ALL")}
    assert sorted(tk) == ["BTC_USDT", "ETH_USDT"]
    for s, (mark, rate, nxt, hours) in tk.items():
        want = model.ticker(FEED, s)
        assert hours == want.funding_interval_hours and nxt == want.next_funding_time
        assert rate == pytest.approx(want.funding_rate, abs=1e-6)
        assert mark == pytest.approx(want.mark_price, rel=1e-3)
    assert tk["ETH_USDT"][3] == 4.0 and tk["BTC_USDT"][3] == 8.0
    # open interest: contracts -> base units, valued at the mark
    oi = {s: (n, usd) for s, n, usd in sql(
        tmp_path, "SELECT symbol, last(open_interest ORDER BY ts_exchange), "
                  "last(value_usd ORDER BY ts_exchange) FROM open_interest GROUP BY ALL")}
    for s, (n, usd) in oi.items():
        assert n == pytest.approx(model.open_interest(FEED, s).open_interest, rel=0.05)
        assert usd == pytest.approx(n * model.ticker(FEED, s).mark_price, rel=0.01)
    assert len(oi) == 2
    quotes = sql(tmp_path, "SELECT count(*) FROM quotes WHERE source = 'venue'")[0][0]
    assert quotes > 0
    insts = {s: (size, value) for s, size, value in sql(
        tmp_path, "SELECT symbol, contract_size, contract_value FROM instruments")}
    assert insts == {"BTC_USDT": (1.0, 0.0001), "ETH_USDT": (1.0, 0.001)}


def test_a_dropped_push_is_mended_from_depth_commits(tmp_path: Path) -> None:
    """A push kept off the wire: the next version skips one, a gap; the book asks for the
    latest depth commits (the venue keeps the version the client lost), applies those after its
    last version and the pushes buffered meanwhile, and is live again without a snapshot (a
    ``gap`` row with action ``fill``)."""
    async def drop(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        await asyncio.sleep(0.3)
        ex.drop_next_depth(FEED, "BTC_USDT")
        runner = collector.runners[0]
        await until(lambda: runner.books.stats.gaps >= 1, 30, "the gap")

    collector, _, ex = run_sim(tmp_path, seconds=8, speed=10, during=drop,
                               channels=["depth"])
    runner = collector.runners[0]
    gaps = sql(tmp_path, "SELECT symbol, reason, action FROM gaps")
    stats = runner.books.stats
    print(f"mexc drop: gaps {gaps}, fills {stats.gap_fills}, resyncs {stats.resyncs}, "
          f"cases {runner.feed.rules.cases}")
    assert gaps == [("BTC_USDT", "gap", "fill")]
    assert stats.gap_fills == 1 and stats.gap_fills_failed == 0 and stats.resyncs == 0
    assert stats.snapshots_applied == 2  # the first two: none after the gap
    assert runner.feed.rules.cases["version_skip"] == 1
    assert_books_match_the_venue(collector, ex)


def test_reconnects_lose_no_trade_recent_deals_fill_the_holes(tmp_path: Path) -> None:
    """The feed's connections closed 3 times (1000, 1011, a TCP abort): after each
    reconnect the collector asks each contract's recent deals, and every deal the simulation
    released is stored exactly once (the stream's and the REST copies of a deal get the same
    id, made of its time, side, price and size); every book resyncs and ends in sync."""
    # (at 5 market seconds a wall second, an outage's deals stay within the 100 of a
    # contract/deals answer)
    schedule = Schedule([Disconnect(at_s=3.0, spacing_s=7.0, feed=FEED,
                                    codes=(1000, 1011, None))])
    collector, sim, ex = run_sim(tmp_path, seconds=26, speed=5, schedule=schedule,
                                 channels=["depth", "trades"], healthy_seconds=0.5)
    runner = collector.runners[0]
    reconnects: dict[str, int] = {}
    for c in runner.connections:
        for k, v in c.stats.reconnects.items():
            reconnects[k] = reconnects.get(k, 0) + v
    produced = {s: len(r.tape.rows) for s, r in sim.feeds[FEED].routes.items()}
    rows = sql(tmp_path, "SELECT symbol, count(*), count(DISTINCT trade_id) FROM trades "
                         "GROUP BY ALL")
    print(f"mexc disconnects: {reconnects}, trades produced {sum(produced.values())}, "
          f"backfilled {runner.trades_backfilled}")
    assert reconnects == {"1000": 1, "1011": 1, "abnormal": 1}
    assert ex.stats["feeds"][FEED]["closed_by_fault"] == 3
    assert all(n == d for _, n, d in rows)
    assert {s: n for s, n, _ in rows} == {s: n for s, n in produced.items() if n}
    assert runner.trades_backfilled > 0 and sum(runner.decode_errors.values()) == 0
    assert_books_match_the_venue(collector, ex)


def test_heartbeat_keeps_the_connection_and_a_stall_is_survived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The venue closes a connection that sent no ping for its idle limit (here 1 s; 60 s
    live) with 1003: a raw client that never pings is closed; the collector pinging every
    0.3 s stays connected past it, its pongs are not data, and a stall (nothing but pongs for
    2 s) is detected and survived by a reconnect, after which the book is in sync again."""
    emulated = emulators()["mexc"].markets[FEED]
    monkeypatch.setattr(emulated, "idle_timeout_s", 1.0)
    market, feed_cls = VENUES[FEED]
    monkeypatch.setitem(VENUES, FEED, (dataclasses.replace(market, heartbeat_seconds=0.3),
                                       feed_cls))
    world = World(assets=(BTC,), venues=(MEXC_FUTURES,))

    async def during(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        async with websockets.connect(ex.ws_url(FEED) + "/edge") as ws:  # never pings again
            await ws.send(json.dumps({"method": "ping"}))
            pong = json.loads(await ws.recv())
            assert pong["channel"] == "pong" and isinstance(pong["data"], int)
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert 0.8 < time.monotonic() - t0 < 3
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
        await asyncio.sleep(1.5)  # past the idle limit
        conn = collector.runners[0].connections[0]
        assert conn.stats.reconnects == {}
        ex.stall(FEED, 2.0)
        await until(lambda: conn.stats.reconnects.get("stall", 0) >= 1, 15, "a stall")

    collector, _, ex = run_sim(tmp_path, seconds=3, speed=5, during=during, world=world,
                               channels=["depth"], stall_seconds=1.0)
    assert set(collector.runners[0].connections[0].stats.reconnects) == {"stall"}
    assert_books_match_the_venue(collector, ex)


def test_subscribe_protocol_acks_refusals_and_ping() -> None:
    world = World(assets=(BTC,), venues=(MEXC_FUTURES,))

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(Simulation(world, seed=1, speed=1))
        await ex.start()
        try:
            async with websockets.connect(ex.ws_url(FEED) + "/edge") as ws:
                async def ask(req: dict[str, Any]) -> dict[str, Any]:
                    await ws.send(json.dumps(req))
                    while True:
                        m = json.loads(await ws.recv())
                        if not m["channel"].startswith("push."):
                            return m

                ok = await ask({"method": "sub.deal", "param": {"symbol": "BTC_USDT"}})
                assert (ok["channel"], ok["data"]) == ("rs.sub.deal", "success")
                bad = await ask({"method": "sub.depth", "param": {"symbol": "NOPE_USDT"}})
                assert bad["channel"] == "rs.error" and "exist" in bad["data"]
                odd = await ask({"method": "sub.nothing", "param": {"symbol": "BTC_USDT"}})
                assert odd["channel"] == "rs.error"
                pong = await ask({"method": "ping"})
                assert pong["channel"] == "pong"
                off = await ask({"method": "unsub.deal", "param": {"symbol": "BTC_USDT"}})
                assert off["channel"] == "rs.unsub.deal"
                # what the collector makes of them
                feed = VENUES[FEED][1](VENUES[FEED][0], ["BTC_USDT"], ["trades"], None)
                assert feed.control(json.dumps(ok).encode()) == "ack"
                assert feed.control(json.dumps(pong).encode()) == "pong"
                with pytest.raises(Exception, match="exist"):
                    feed.decode(json.dumps(bad).encode(), 1)
        finally:
            await ex.stop()

    asyncio.run(main())


# -- replay of the real frames ------------------------------------------------------------------


def test_replay_of_the_recorded_frames(tmp_path: Path) -> None:
    """The real BTC_USDT frames (2021-2025, tests/fixtures/mexc/frames.ndjson) replayed: deals
    (both layouts), the ticker (mark, index, funding rate, open interest) and the top of book
    stored as decoded; the two recorded depth pushes are years apart, so their versions never
    follow: the book is never served (its bridge skips are counted)."""
    rec = Recording.open(FIXTURES / "frames.ndjson")
    assert rec.feed == FEED and rec.symbols == {"BTC_USDT"} and rec.frames == 6
    assert set(rec.streams) == {b"depth:BTC_USDT", b"deal:BTC_USDT", b"depth.full:BTC_USDT",
                                b"ticker:BTC_USDT"}

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_replay(Replay(rec, speed=0))
        await ex.start()
        ex.stall(FEED, 1.0)  # the replay waits while the streams are subscribed one by one
        collector = collect(tmp_path, ex, [{"venue": FEED, "symbols": ["BTC_USDT"],
                                            "channels": CHANNELS}])
        try:
            await collector.start()
            await ex.wait_replays_done(timeout=30)
            await drained(collector)
        finally:
            await collector.stop()
            await ex.stop()
        return collector

    collector = asyncio.run(main())
    runner = collector.runners[0]
    cs = 0.0001  # the made-up listing's BTC_USDT contract size (MEXC's)
    trades = sql(tmp_path, "SELECT trade_id, ts_exchange, price, size, side FROM trades "
                           "ORDER BY ts_exchange")
    assert [(t[0], t[2], t[4]) for t in trades] == [
        ("1646999591755-2-39766.5-32.0", 39766.5, "sell"),
        ("1763645012047-2-91847.4-49.0", 91847.4, "sell")]
    assert [t[3] for t in trades] == pytest.approx([32 * cs, 49 * cs])
    [(mark, index, rate)] = sql(tmp_path, "SELECT mark_price, index_price, funding_rate FROM "
                                          "derivative_tickers WHERE mark_price IS NOT NULL")
    assert (mark, index, rate) == (29911.1, 29926.9, 0.000072)
    [(oi, usd)] = sql(tmp_path, "SELECT open_interest, value_usd FROM open_interest")
    assert oi == pytest.approx(12357864 * cs) and usd == pytest.approx(oi * 29911.1)
    [(bid, ask)] = sql(tmp_path, "SELECT bid_price, ask_price FROM quotes "
                                 "WHERE source = 'venue'")
    assert (bid, ask) == (31708.0, 31708.5)
    sb = runner.books.books["BTC_USDT"]
    assert not sb.in_sync and runner.feed.rules.cases["bridge_skip"] >= 1
    assert sum(runner.decode_errors.values()) == 0 and runner.venue_errors == 0
