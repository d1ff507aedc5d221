"""MEXC spot end to end: the local exchange speaking MEXC spot's protocol (protobuf pushes in
binary frames, JSON answers in text frames) -> real websockets and HTTP on loopback -> the
collector, unchanged -> Parquet/DuckDB; then the collector's raw capture of it replayed."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import simrun
import websockets
from harness import drained

from analyzer import config
from analyzer.collector import Collector
from analyzer.exchange import LocalExchange, Replay, Simulation
from analyzer.exchange.recordings import Recording
from analyzer.sim import Schedule, World
from analyzer.sim.scenarios import Disconnect, Malformed, SequenceGap, StaleFeed
from analyzer.sim.spec import BTC, Rates
from analyzer.store.research import query
from analyzer.venues import VENUES
from analyzer.venues.mexc.emulate import EMULATOR
from analyzer.venues.mexc.emulate.specs import MEXC_SPOT

pytestmark = pytest.mark.slow

FEED = "mexc_spot"
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"
DEALS = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"


@pytest.fixture
def spot_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated MEXC world of the spot market alone (short runs, no contract load)."""
    monkeypatch.setattr(EMULATOR, "sim_venues", (MEXC_SPOT,))


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *a: self.events.extend(a if name.startswith("on_") else ())


def a_feed() -> Any:
    market, cls = VENUES[FEED]
    return cls(market, ["BTCUSDT"], ["depth", "trades", "bookTicker"], Sink())


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_exchange_serves_spot_protocol() -> None:
    """Socket ``/ws``: text acks naming the channel, binary protobuf pushes the collector
    decodes, ``PING`` -> ``PONG``, the refusal of a retired JSON channel and of a stream past
    30; REST: the listing, a snapshot bridging the pushes, an unknown symbol's 400."""
    world = World(assets=(BTC,), venues=(MEXC_SPOT,), rates=Rates()).validate()
    sim = Simulation(world, seed=1, speed=1.0)
    f = a_feed()

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        try:
            async with websockets.connect(ex.ws_url(FEED) + "/ws", ping_interval=None) as ws:
                for msg in f.subscribe_messages([DEPTH, DEALS]):
                    await ws.send(msg)
                acks, pushes = [], []
                while len(acks) < 2 or len(pushes) < 3:
                    m = await asyncio.wait_for(ws.recv(), 5)
                    (acks if isinstance(m, str) else pushes).append(m)
                assert [json.loads(a) for a in acks] == [{"id": 1, "code": 0, "msg": DEPTH},
                                                         {"id": 2, "code": 0, "msg": DEALS}]
                assert all(f.control(a.encode()) == "ack" for a in acks)
                routes = {f.decode(p, 1).channel for p in pushes}
                assert routes <= {"depth", "trades"} and "depth" in routes
                await ws.send(json.dumps({"method": "PING"}))
                await ws.send(json.dumps({"method": "SUBSCRIPTION", "id": 9,
                                          "params": ["spot@public.deals.v3.api@BTCUSDT"]}))
                await ws.send(json.dumps({"method": "SUBSCRIPTION", "id": 10, "params": [
                    f"spot@public.aggre.bookTicker.v3.api.pb@10ms@{s}" for s in
                    ["BTCUSDT"] * 28 + ["BTCUSDT", "ETHUSDT"]]}))
                answers = []
                while len(answers) < 3:
                    m = await asyncio.wait_for(ws.recv(), 5)
                    if isinstance(m, str):
                        answers.append(json.loads(m))
                pong, blocked, full = answers
                assert pong == {"id": 0, "code": 0, "msg": "PONG"}
                assert f.control(json.dumps(pong).encode()) == "pong"
                assert blocked["id"] == 9 and blocked["msg"].startswith(
                    "Not Subscribed successfully! [spot@public.deals.v3.api@BTCUSDT]")
                assert "Blocked" in full["msg"] and "ETHUSDT" in full["msg"]  # the 31st
                with pytest.raises(Exception, match="Blocked"):
                    f.decode(json.dumps(blocked).encode(), 1)
            base = ex.base_url(FEED)
            status, body = await asyncio.to_thread(get, base + "/api/v3/exchangeInfo")
            assert status == 200 and list(f.decode_instruments([body], 1)) == ["BTCUSDT"]
            before = sim.model.snapshot(FEED, "BTCUSDT").last_id
            status, body = await asyncio.to_thread(get, base + "/api/v3/depth?symbol=BTCUSDT")
            after = sim.model.snapshot(FEED, "BTCUSDT").last_id  # (the market moves on)
            snap = f.decode_snapshot(body, "BTCUSDT", 1)
            assert status == 200 and len(snap.bids) == len(snap.asks) == 100
            assert before <= snap.last_id <= after
            status, body = await asyncio.to_thread(get, base + "/api/v3/depth?symbol=NOPEUSDT")
            assert status == 400 and json.loads(body)["code"] == -1121
        finally:
            await ex.stop()

    asyncio.run(main())


def test_simulated_spot_in_sync_every_trade_once_and_its_capture_replays(
    tmp_path: Path, spot_only: None,
) -> None:
    """The simulated BTCUSDT and ETHUSDT: the listing; both books in sync with the model, no
    gap, each bridged by a push starting right after its snapshot; the venue's quotes compared
    with the books by version without a mismatch; every trade stored once. Then the raw
    capture of that run (binary frames as ``~<base64>``) replayed to a second collector: the
    same trades, by the same ids, and books in sync with the replayed venue's."""
    run = simrun.run_sim(tmp_path / "sim", "", seconds=6, speed=8, exchanges=("mexc",),
                         store={"raw_capture": True})
    runner = run.runner(FEED)
    s = runner.books.stats
    assert s.gaps == 0 and s.resyncs == 0 and s.snapshots_applied == 2
    assert s.bbo_compared > 20 and s.bbo_mismatched == 0
    assert runner.feed.rules.cases == {"version_skip": 0, "version_repeat": 0, "bridge_skip": 0,
                                       "bridge_next": 2, "version_overlap": 0}
    assert sum(runner.decode_errors.values()) == 0 and runner.venue_errors == 0
    produced, stored = run.produced_trades(), run.stored_trades()
    assert stored == produced and sum(stored.values()) > 30
    for sym, sb in runner.books.books.items():
        snap = run.sim.model.snapshot(FEED, sym)
        assert sb.in_sync and sb.last_id == snap.last_id, sym
        assert [tuple(lv) for lv in sb.book.bids(500)] == snap.bids[:500], sym
        assert [tuple(lv) for lv in sb.book.asks(500)] == snap.asks[:500], sym
    inst = runner.instruments["BTCUSDT"]
    assert (inst.market, inst.base, inst.quote, inst.tick_size) == ("spot", "BTC", "USDT", 0.01)
    # the capture, replayed at its recorded pace
    capture = tmp_path / "sim" / "data" / "raw" / FEED
    rec = Recording.open(capture, market=FEED)
    assert rec.symbols == {"BTCUSDT", "ETHUSDT"} and rec.snapshots == 2
    assert all(s.startswith(b"spot@public.aggre.") for s in rec.streams)
    out = tmp_path / "replay"

    async def replay() -> tuple[Collector, LocalExchange]:
        ex = LocalExchange(port=0)
        ex.add_replay(Replay(rec, speed=1))
        await ex.start()
        ex.stall(FEED, 1.0)  # the replay waits while the streams are subscribed one by one
        cfg = config.parse({
            "feeds": [{"venue": FEED, "symbols": ["BTCUSDT", "ETHUSDT"],
                       "channels": ["depth", "trades", "bookTicker"],
                       "ws_url": ex.ws_url(FEED), "rest_url": ex.base_url(FEED)}],
            "store": {"data_dir": str(out), "database": str(out / "a.duckdb"),
                      "flush_seconds": 0.3},
            "metrics": {"port": 0},
        })
        collector = Collector(cfg)
        try:
            await collector.start()
            await ex.wait_replays_done(timeout=60)
            await drained(collector)
        finally:
            await collector.stop()
            await ex.stop()
        return collector, ex

    collector, ex = asyncio.run(replay())
    replayed = collector.runners[0]
    stats = ex.stats["feeds"][FEED]
    assert stats["frames_read"] == rec.frames and stats["decode_errors"] == 0
    assert stats["recorded_chain_breaks"] == 0
    assert sum(replayed.decode_errors.values()) == 0
    trades = sorted(query(out / "a.duckdb", "SELECT trade_id FROM trades").rows())
    assert trades == sorted(run.sql("SELECT trade_id FROM trades"))
    for sym, sb in replayed.books.books.items():
        venue = ex.depth(FEED, sym, 500)
        assert sb.in_sync and sb.last_id == venue["lastUpdateId"], sym
        assert [tuple(lv) for lv in sb.book.bids(500)] == venue["bids"], sym


def test_gap_malformed_frames_disconnects_and_a_stall_are_survived(
    tmp_path: Path, spot_only: None,
) -> None:
    """A dropped depth push: a ``gap`` row (a version skip) and that book resynced from a new
    snapshot alone; three malformed frames (truncated, not protobuf, a bad price) counted and
    skipped; the connection closed twice (1000, a TCP abort) and a silent stall: each survived
    by a reconnect, the recent trades fill the holes, every trade is stored exactly once and
    every book ends in sync with the model."""
    schedule = Schedule([
        SequenceGap(at_s=1.5, feed=FEED, contract="spot", asset="BTC"),
        Malformed(at_s=3.0, feed=FEED, count=3, spacing_s=0.5),
        Disconnect(at_s=5.5, spacing_s=3.0, feed=FEED, codes=(1000, None)),
        # 1.5 s of wall time, from 0.9 s after the abort: a loaded machine's reconnect is up by
        # then (a connection opened during the stall is not frozen)
        StaleFeed(at_s=14.0, feed=FEED, duration_s=9.0),
    ])
    run = simrun.run_sim(tmp_path, schedule, seconds=25, speed=6, exchanges=("mexc",),
                         options={FEED: {"healthy_seconds": 0.5, "stall_seconds": 0.5}})
    runner = run.runner(FEED)
    reconnects = run.reconnects(FEED)
    assert reconnects.get("1000") == 1 and reconnects.get("abnormal") == 1
    assert reconnects.get("stall", 0) >= 1
    assert ("BTCUSDT", "gap") in run.sql("SELECT symbol, reason FROM gaps")
    assert runner.feed.rules.cases["version_skip"] >= 1
    assert runner.books.stats.resyncs >= 1
    assert sum(runner.decode_errors.values()) == 3, runner.bad_frames
    assert run.stored_trades() == run.produced_trades()
    for sym, sb in runner.books.books.items():
        snap = run.sim.model.snapshot(FEED, sym)
        assert sb.in_sync and sb.last_id == snap.last_id, sym
        assert [tuple(lv) for lv in sb.book.bids(200)] == snap.bids[:200], sym
