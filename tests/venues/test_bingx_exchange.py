"""BingX end to end: the local exchange speaking BingX swap (gzip binary frames, the server's
``Ping``) -> real websockets and HTTP on loopback -> the collector, unchanged -> Parquet/DuckDB.
Books are compared level for level with the model's (BingX sends no checksum)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import websockets
from harness import drained

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import Faults, LocalExchange, Replay, Simulation
from analyzer.exchange.emulator import emulators
from analyzer.feed.books import SYNCING
from analyzer.sim.spec import BTC, ETH, World
from analyzer.store.research import query
from analyzer.venues.bingx.emulate import EMULATOR, gzip_frame
from analyzer.venues.bingx.emulate.specs import SIM_VENUES

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bingx"
CHANNELS = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]


def collect(tmp_path: Path, ex: LocalExchange, feeds: list[dict[str, Any]]) -> Collector:
    for f in feeds:
        f |= {"ws_url": ex.ws_url(f["venue"]), "rest_url": ex.base_url(f["venue"]),
              "open_interest_seconds": 1.0}
    cfg = config.parse({
        "feeds": feeds,
        "store": {"data_dir": str(tmp_path / "data"),
                  "database": str(tmp_path / "data" / "analyzer.duckdb"), "flush_seconds": 0.3},
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


def world() -> World:
    return World(assets=(BTC, ETH), venues=SIM_VENUES)


def run_sim(tmp_path: Path, seconds: float, *, during: Any = None, speed: float = 10,
            options: dict[str, Any] | None = None) -> tuple[Collector, Simulation]:
    sim = Simulation(world(), seed=5, speed=speed, wait_for=["bingx_swap"], autostart=False)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        symbols = [i.symbol for i in sim.model.instruments()]
        collector = collect(tmp_path, ex, [{"venue": "bingx_swap", "symbols": symbols,
                                            "channels": CHANNELS, **(options or {})}])
        try:
            await collector.start()
            # every topic subscribed (one a request, paced) and every book synced
            await until(lambda: len(ex.feed("bingx_swap").subs) == 4 * len(symbols)
                        and all(sb.state != SYNCING for sb in books_of(collector)), 60,
                        "subscriptions and snapshots")
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


def assert_books_match_model(collector: Collector, sim: Simulation, depth: int = 100) -> None:
    for runner in collector.runners:
        for symbol, sb in runner.books.books.items():
            snap = sim.model.snapshot(runner.venue, symbol)
            assert sb.in_sync, symbol
            assert [tuple(lv) for lv in sb.book.bids(depth)] == snap.bids[:depth], symbol
            assert [tuple(lv) for lv in sb.book.asks(depth)] == snap.asks[:depth], symbol


def assert_no_decode_errors(runner: Any) -> None:
    assert runner.decode_errors == {}, list(runner.bad_frames)


def assert_trades_once(tmp_path: Path, sim: Simulation) -> int:
    rows = sql(tmp_path, "SELECT symbol, count(*), count(DISTINCT trade_id), sum(size) "
                         "FROM trades GROUP BY ALL")
    produced = {s: (len(r.tape.rows), r.tape.volume)
                for s, r in sim.feeds["bingx_swap"].routes.items()}
    assert {s: n for s, n, _, _ in rows} == {s: n for s, (n, _) in produced.items() if n}
    for s, n, distinct, size in rows:
        assert n == distinct
        assert size == pytest.approx(produced[s][1], rel=1e-9)
    return sum(n for _, n, _, _ in rows)


def test_registry_serves_bingx() -> None:
    assert emulators()["bingx"] is EMULATOR
    assert set(EMULATOR.markets) == {"bingx_swap", "bingx_spot"}


def test_simulated_market_books_in_sync_trades_once_oi_in_coins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated swap market over gzip frames: both books equal the model's best 100
    levels (each id skip the exchange makes, at BingX's probed rate, is a gap and a resync
    under the default strict rule, and nothing else is), every trade stored once with the
    tape's volume, open interest in coins from the USDT value and the mark, the collector
    answered the server's Pings."""
    monkeypatch.setattr(EMULATOR.markets["bingx_swap"], "ping_s", 0.3)  # 5 s live
    pongs0 = EMULATOR.markets["bingx_swap"].pongs
    collector, sim = run_sim(tmp_path, 12)
    runner = collector.runners[0]
    assert_books_match_model(collector, sim)
    n = assert_trades_once(tmp_path, sim)
    cases = runner.feed.rules.cases
    print(f"bingx sim: {n} trades once, book rule cases {cases}, "
          f"pongs {EMULATOR.markets['bingx_swap'].pongs - pongs0}")
    assert runner.books.stats.gaps == cases["id_skip"] and cases["id_jump"] == 0
    assert_no_decode_errors(runner)
    assert EMULATOR.markets["bingx_swap"].pongs > pongs0
    assert runner.connections[0].stats.reconnects == {}
    [(oi, usd, _sym)] = sql(tmp_path, "SELECT last(open_interest ORDER BY ts_local), "
                                     "last(value_usd ORDER BY ts_local), symbol FROM "
                                     "open_interest WHERE symbol = 'BTC-USDT' GROUP BY ALL")
    truth = sim.model.open_interest("bingx_swap", "BTC-USDT").open_interest
    assert oi == pytest.approx(truth, rel=0.02) and usd == pytest.approx(oi * 60_000, rel=0.2)


def test_dropped_updates_are_a_gap_and_a_resubscription(tmp_path: Path) -> None:
    """30 BTC-USDT updates kept off the wire: the next id is not the last + 1 (a gap): a
    ``gap`` row, the book alone resubscribes on its connection, the fresh ``action: all``
    snapshot brings it back level for level."""

    async def drop(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        await asyncio.sleep(0.5)
        ex.drop_next_depth("bingx_swap", "BTC-USDT", 30)
        await until(lambda: collector.runners[0].books.stats.gaps >= 1, 30, "the gap")

    collector, sim = run_sim(tmp_path, 8, during=drop)
    runner = collector.runners[0]
    gaps = sql(tmp_path, "SELECT symbol, reason, action FROM gaps")
    print(f"bingx drop: gaps {gaps}, cases {runner.feed.rules.cases}")
    assert ("BTC-USDT", "gap", "resync") in gaps and set(gaps) <= {
        ("BTC-USDT", "gap", "resync"), ("ETH-USDT", "gap", "resync")}  # (and any skips')
    cases = runner.feed.rules.cases
    assert runner.books.stats.gaps == len(gaps) == cases["id_skip"] + cases["id_jump"]
    assert runner.books.stats.snapshots_applied == 2 + len(gaps)  # the first ones, resyncs
    assert runner.connections[0].stats.reconnects == {}
    assert_books_match_model(collector, sim)


def test_corrupt_gzip_frames_counted_stream_goes_on(tmp_path: Path) -> None:
    """The exchange sends a truncated gzip frame and a corrupt one on the trade stream (as
    they are: ``encode`` leaves gzip alone), and the replay-style fault ``truncated`` cuts a
    wire frame: each is a counted decode error; the books and trades go on unharmed."""

    async def corrupt(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        await asyncio.sleep(0.3)
        good = gzip_frame(b'{"code":0,"dataType":"BTC-USDT@trade","data":[]}')
        sent = ex.inject("bingx_swap", "BTC-USDT@trade", good[:-9])  # truncated
        sent += ex.inject("bingx_swap", "BTC-USDT@trade", good[:12] + b"\xff" * 20)  # corrupt
        assert sent == 2
        await until(lambda: sum(collector.runners[0].decode_errors.values()) >= 2, 10, "errs")

    collector, sim = run_sim(tmp_path, 6, during=corrupt)
    runner = collector.runners[0]
    print(f"bingx corrupt gzip: {runner.decode_errors}, {list(runner.bad_frames)[:2]}")
    assert runner.decode_errors.pop("other") == 2
    assert_no_decode_errors(runner)
    assert next(why for _, why, _ in runner.bad_frames).startswith("does not inflate")
    assert runner.books.stats.gaps == runner.feed.rules.cases["id_skip"]  # (skips only)
    assert_books_match_model(collector, sim)
    assert_trades_once(tmp_path, sim)


def test_disconnects_and_a_stall_survived_trades_once(tmp_path: Path) -> None:
    """Connections closed by the exchange with 1001 and 1011, then a silent stall longer than
    the collector's stall limit: it reconnects each time, resubscribes, gets fresh snapshots,
    backfills recent trades over REST (ids from time, side, price, size and rank, so the
    stream's and REST's copies of a trade are one row), and every trade is stored once."""

    async def faults(ex: LocalExchange, collector: Collector, sim: Simulation) -> None:
        runner = collector.runners[0]
        for code in (1001, 1011):
            await asyncio.sleep(0.8)
            ex.close_clients("bingx_swap", code)
            await until(lambda: runner.connections[0].stats.connected
                        and all(sb.in_sync for sb in books_of(collector)), 20, "back")
        await asyncio.sleep(0.5)
        ex.stall("bingx_swap", 2.5)
        await until(lambda: "stall" in runner.connections[0].stats.reconnects, 20, "stall")

    collector, sim = run_sim(tmp_path, 10, during=faults,
                             options={"stall_seconds": 1.0, "healthy_seconds": 0.3})
    runner = collector.runners[0]
    reconnects = runner.connections[0].stats.reconnects
    print(f"bingx faults: reconnects {reconnects}, backfilled {runner.trades_backfilled}")
    assert reconnects.get("1001") == 1 and reconnects.get("1011") == 1
    assert reconnects.get("stall", 0) >= 1
    assert_books_match_model(collector, sim)
    assert_trades_once(tmp_path, sim)


def test_replay_of_the_real_frames(tmp_path: Path) -> None:
    """The real JKorf frames (trades with 11 same-millisecond fills, bookTicker, markPrice)
    and an incrDepth sequence made from the real depth20 frame (ids skipping, asks worst
    first), replayed as gzip frames: the book rebuilt as the frames say (a skip is a gap, and
    the resubscription's snapshot the replay's book), the 23 trades stored
    once (the repeated frame adds none), a truncated gzip frame counted."""

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        # a second's pause before the first frame: every subscription is in place; the 6th
        # frame (a trade frame) also goes out cut in half, a truncated gzip frame
        faults = Faults(stall_at=[(0, 1.0)], malformed=[(5, "truncated")])
        ex.add_replay(Replay.from_path(FIXTURES / "replay.ndjson", "bingx_swap", speed=0,
                                       faults=faults))
        await ex.start()
        collector = collect(tmp_path, ex, [{"venue": "bingx_swap", "symbols": ["ETH-USDT"],
                                            "channels": ["depth", "trades", "bookTicker",
                                                         "markPrice"]}])
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
    sb = runner.books.books["ETH-USDT"]
    assert sb.in_sync and sb.last_id == 1005
    assert sb.book.bids(3) == [(2990.64, 14.13), (2990.61, 2.0), (2990.55, 2.41)]
    assert sb.book.asks(2) == [(2990.9, 1.0), (2990.91, 1.12)]
    # the skips are gaps (the docs' rule): the resubscription's snapshot is the replay's book
    cases = runner.feed.rules.cases
    assert cases["id_skip"] >= 1 and cases["id_jump"] == cases["id_back"] == 0
    assert runner.books.stats.gaps == cases["id_skip"]
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT trade_id) FROM trades") == [(23, 23)]
    # the truncated gzip frame (and a premiumIndex polled before the recorded mark was
    # released: the replay has none to answer with yet)
    assert runner.decode_errors["other"] == 1 and set(runner.decode_errors) <= {"other",
                                                                                 "markPrice"}
    assert runner.feed.duplicate_trades == 23  # the repeated frame
    [(mark,)] = sql(tmp_path, "SELECT max(mark_price) FROM derivative_tickers")
    assert mark == 2999.63


def test_protocol_gzip_acks_errors_snapshot_and_ping() -> None:
    """Every server frame is gzip binary: the ack, then the ``action: all`` snapshot of an
    incrDepth subscription; 80015 for a lower-case symbol; the server's Ping, answered Pong."""
    sim = Simulation(world(), seed=2, speed=1.0)
    market = EMULATOR.markets["bingx_swap"]

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        old, market.ping_s = market.ping_s, 0.3
        try:
            ws = await websockets.connect(ex.ws_url("bingx_swap") + "/swap-market",
                                          ping_interval=None)
            await ws.send(json.dumps({"id": "a", "reqType": "sub",
                                      "dataType": "BTC-USDT@incrDepth"}))
            raw = await ws.recv()
            assert isinstance(raw, bytes) and raw[:2] == b"\x1f\x8b"
            assert json.loads(gzip.decompress(raw)) == {"id": "a", "code": 0, "msg": "",
                                                        "dataType": "", "data": None}
            snap = json.loads(gzip.decompress(await ws.recv()))
            assert snap["data"]["action"] == "all" and len(snap["data"]["bids"]) == 1000
            await ws.send(json.dumps({"id": "b", "reqType": "sub",
                                      "dataType": "btc-usdt@incrDepth"}))
            pongs = market.pongs
            seen_ping = refused = False
            while not (seen_ping and refused):
                msg = gzip.decompress(await asyncio.wait_for(ws.recv(), 5))
                if msg == b"Ping":
                    seen_ping = True
                    await ws.send("Pong")
                elif msg.startswith(b'{"id":"b"'):
                    assert msgspec.json.decode(msg)["code"] == 80015
                    refused = True
            await until(lambda: market.pongs > pongs, 5, "pong")
            await ws.close()
        finally:
            market.ping_s = old
            await ex.stop()

    asyncio.run(main())
