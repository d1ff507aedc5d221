"""OKX end to end: the local exchange speaking OKX v5 (``analyzer.venues.okx.emulate``) over
real websockets and HTTP on loopback, the real collector, real Parquet and DuckDB files.

The oracle is the recorded capture (tests/fixtures/okx/OKX.ws.1.0.txt, 2022): its 290 book
messages carry OKX's own CRC32 checksums, which the collector verifies on every one after the
exchange replays them; the simulated market carries checksums the exchange computes the same
way, so the collector verifies the simulated books too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
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
from analyzer.events import BookChange, Instrument
from analyzer.exchange import Faults, LocalExchange, Replay, Simulation
from analyzer.exchange.emulator import emulators
from analyzer.feed.book import OrderBook
from analyzer.sim import Schedule, World
from analyzer.sim.scenarios import Disconnect
from analyzer.sim.spec import BTC, ETH, Rates
from analyzer.store.research import query
from analyzer.venues.okx import MARKETS, OkxFeed
from analyzer.venues.okx.decode import OkxRules
from analyzer.venues.okx.emulate import EMULATOR, restart_notice
from analyzer.venues.okx.emulate.render import SymbolFormat
from analyzer.venues.okx.emulate.specs import SIM_VENUES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "okx"
RECORDED = {"okx_spot": "BTC-USDT", "okx_swap": "UNI-USD-SWAP", "okx_futures": "BTC-USD-220527"}
BOOK_MESSAGES = {"BTC-USDT": 98, "UNI-USD-SWAP": 93, "BTC-USD-220527": 99}  # 290 in all
TRADES = {"BTC-USDT": 69, "UNI-USD-SWAP": 1, "BTC-USD-220527": 4}  # 74 frames, 1 trade each
CHANNELS = ["depth", "trades", "bookTicker"]


def sql(db: Path, text: str) -> list[tuple]:
    return query(db, text).rows()


async def collect(tmp_path: Path, ex: LocalExchange, feeds: list[dict[str, Any]],
                  run: Callable[[Collector], Awaitable[None]],
                  setup: Callable[[Collector], None] | None = None) -> Collector:
    """The collector on these feeds of a started exchange, until ``run`` returns; drained,
    flushed and stopped. ``setup(collector)`` before it starts."""
    for f in feeds:
        f.setdefault("ws_url", ex.ws_url(f["venue"]))
        f.setdefault("rest_url", ex.base_url(f["venue"]))
        f.setdefault("open_interest_seconds", 1.0)
    cfg = config.parse({
        "feeds": feeds,
        "store": {"data_dir": str(tmp_path / "data"),
                  "database": str(tmp_path / "data" / "analyzer.duckdb"),
                  "flush_seconds": 0.3},
        "metrics": {"port": 0},
    })
    collector = Collector(cfg)
    if setup is not None:
        setup(collector)
    try:
        await collector.start()
        await run(collector)
        await drained(collector)
    finally:
        await collector.stop()
    return collector


def replay_run(tmp_path: Path, *, path: Path = FIXTURES, speed: float = 0.0,
               faults: dict[str, Faults] | None = None,
               during: Callable[[LocalExchange, Collector], Awaitable[None]] | None = None
               ) -> tuple[Collector, LocalExchange]:
    """The capture replayed on the three OKX markets (each serves its own instrument of it)
    and collected to the end."""

    async def main() -> tuple[Collector, LocalExchange]:
        ex = LocalExchange(port=0)
        for feed in RECORDED:
            ex.add_replay(Replay.from_path(path, feed, speed=speed,
                                           faults=(faults or {}).get(feed)))
        await ex.start()

        async def run(collector: Collector) -> None:
            if during is not None:
                await during(ex, collector)
            await ex.wait_replays_done(timeout=60)

        try:
            feeds = [{"venue": f, "symbols": [s], "channels": CHANNELS}
                     for f, s in RECORDED.items()]
            collector = await collect(tmp_path, ex, feeds, run)
        finally:
            await ex.stop()
        return collector, ex

    return asyncio.run(main())


def book_stats(collector: Collector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in collector.runners:
        s = r.books.stats
        out[r.venue] = {k: getattr(s, k) for k in ("checksums_verified", "checksums_failed",
                                                     "gaps", "resyncs", "snapshots_applied")}
    return out


def test_registry_serves_okx() -> None:
    assert emulators()["okx"] is EMULATOR
    assert set(EMULATOR.markets) == set(RECORDED)


def test_replayed_capture_every_checksum_verified_trades_once(tmp_path: Path) -> None:
    """THE ORACLE: all 290 recorded book messages (3 snapshots + 287 updates, each with OKX's
    checksum) verified by the collector's books, none failed, no gap; 74 trades stored once."""
    t0 = time.perf_counter()
    collector, _ = replay_run(tmp_path)
    wall = time.perf_counter() - t0
    stats = book_stats(collector)
    print(f"OKX capture replayed through the collector: {stats} ({wall:.2f} s wall)")
    for feed, symbol in RECORDED.items():
        s = stats[feed]
        assert s["checksums_verified"] == BOOK_MESSAGES[symbol], (feed, s)
        assert s["checksums_failed"] == 0 and s["gaps"] == 0 and s["resyncs"] == 0
    db = tmp_path / "data" / "analyzer.duckdb"
    rows = {s: (n, d) for s, n, d in sql(
        db, "SELECT symbol, count(*), count(DISTINCT trade_id) FROM trades GROUP BY ALL")}
    assert rows == {s: (n, n) for s, n in TRADES.items()}
    assert sql(db, "SELECT count(*) FROM gaps") == [(0,)]
    # the replay's listing is the recorded one: UNI-USD-SWAP is inverse, 10 USD a contract
    runner = next(r for r in collector.runners if r.venue == "okx_swap")
    inst = runner.instruments["UNI-USD-SWAP"]
    assert inst.inverse and inst.contract_size == 10.0


def test_dropped_update_is_a_checksum_row_and_that_book_alone_resyncs(tmp_path: Path) -> None:
    """The 10th update of BTC-USDT never goes out (the exchange's book still applies it): the
    next one's checksum fails, a ``checksum`` gap row is stored, that book alone resubscribes
    on its connection, the exchange's fresh snapshot brings it back, and every later book
    message verifies again."""
    faults = {"okx_spot": Faults(drop_depth=[("BTC-USDT", 10)])}
    # the websocket file alone, at 4x its pace (2.7 s): the recorded listing was fetched 229 s
    # before it; without it the exchange lists the recorded instruments itself
    capture = tmp_path / "capture"
    capture.mkdir()
    shutil.copy(FIXTURES / "OKX.ws.1.0.txt", capture)
    collector, _ = replay_run(tmp_path, path=capture, speed=4.0, faults=faults)
    stats = book_stats(collector)
    print(f"drop fault: {stats}")
    spot = stats["okx_spot"]
    assert spot["checksums_failed"] == 1
    # the recorded 98 less the dropped one and the failed one, plus the rendered snapshot of
    # the resync (97); updates released while the book was unsubscribed are not seen
    assert 80 <= spot["checksums_verified"] <= 97
    assert spot["snapshots_applied"] == 2
    for feed in ("okx_swap", "okx_futures"):
        assert stats[feed]["checksums_failed"] == 0 and stats[feed]["resyncs"] == 0
    db = tmp_path / "data" / "analyzer.duckdb"
    assert sql(db, "SELECT venue, symbol, reason FROM gaps") == [
        ("okx_spot", "BTC-USDT", "checksum")]
    runner = next(r for r in collector.runners if r.venue == "okx_spot")
    assert runner.books.books["BTC-USDT"].in_sync
    reconnects: dict[str, int] = {}
    for c in runner.connections:
        for k, v in c.stats.reconnects.items():
            reconnects[k] = reconnects.get(k, 0) + v
    assert reconnects == {}  # the resync stayed on the connection


def okx_world() -> World:
    return World(assets=(BTC, ETH), venues=SIM_VENUES, rates=Rates()).validate()


def test_simulated_okx_markets_collected_in_sync_with_checksums(tmp_path: Path) -> None:
    """The three OKX markets simulated: books verified on every message (none failed, no
    gap), trades stored once and as many as released, sizes in the unit system, funding
    interval from the two times, open interest in contracts, base units and USD."""
    sim = Simulation(okx_world(), seed=5, speed=10, duration_s=12.0,
                     wait_for=("okx_spot", "okx_swap", "okx_futures"), autostart=False)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        by: dict[str, list[str]] = {}
        for inst in sim.model.instruments():
            by.setdefault(inst.venue, []).append(inst.symbol)
        deriv = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]
        feeds = [{"venue": "okx_spot", "symbols": by["okx_spot"], "channels": CHANNELS},
                 {"venue": "okx_swap", "symbols": by["okx_swap"], "channels": deriv},
                 {"venue": "okx_futures", "symbols": by["okx_futures"], "channels": deriv}]

        async def run(collector: Collector) -> None:
            books = [sb for r in collector.runners for sb in r.books.books.values()]
            deadline = time.monotonic() + 60
            while not all(sb.in_sync for sb in books):
                assert time.monotonic() < deadline, "snapshots"
                await asyncio.sleep(0.05)
            sim.start()
            await ex.wait_replays_done(timeout=60)

        try:
            return await collect(tmp_path, ex, feeds, run)
        finally:
            await ex.stop()

    collector = asyncio.run(main())
    stats = book_stats(collector)
    print(f"simulated OKX: {stats}")
    for feed, s in stats.items():
        assert s["checksums_verified"] > 100 and s["checksums_failed"] == 0, (feed, s)
        assert s["gaps"] == 0 and s["resyncs"] == 0
    db = tmp_path / "data" / "analyzer.duckdb"
    stored = {(v, s): (n, d) for v, s, n, d in sql(
        db, "SELECT venue, symbol, count(*), count(DISTINCT trade_id) FROM trades GROUP BY ALL")}
    for feed in ("okx_spot", "okx_swap", "okx_futures"):
        sim_feed = sim.feeds[feed]
        for sym, route in sim_feed.routes.items():
            tape = route.tape
            n = stored.get((feed, sym), (0, 0))
            assert n[0] == n[1]  # each trade once
            size = sql(db, f"SELECT coalesce(sum(size), 0) FROM trades WHERE venue = '{feed}' "
                           f"AND symbol = '{sym}'")[0][0]
            assert size == pytest.approx(tape.volume, rel=1e-9, abs=1e-9), (feed, sym)
    # units: the linear swap trades in BTC (lots of 0.001 BTC: 0.1 contract of 0.01 BTC), the
    # inverse one in whole contracts of 100 USD
    [(lin_min, lin_whole)] = sql(db, "SELECT min(size), bool_and(abs(size * 1000 - "
                                     "round(size * 1000)) < 1e-6) FROM trades "
                                     "WHERE symbol = 'BTC-USDT-SWAP'")
    assert 0 < lin_min < 1 and lin_whole
    [(inv_whole,)] = sql(db, "SELECT bool_and(size = round(size) AND size >= 1) FROM trades "
                             "WHERE symbol = 'BTC-USD-SWAP'")
    assert inv_whole
    swap = next(r for r in collector.runners if r.venue == "okx_swap")
    # a linear contract is 0.01 BTC; its sizes are BTC once decoded, so analytics (notional =
    # price x size x contract_size) count it once, as every other venue's linear books
    linear = swap.instruments["BTC-USDT-SWAP"]
    assert (linear.contract_size, linear.contract_value) == (1.0, 0.01)
    assert swap.instruments["BTC-USD-SWAP"].contract_size == 100.0
    assert swap.instruments["BTC-USD-SWAP"].inverse
    rows = dict(sql(db, "SELECT symbol, max(funding_interval_hours) FROM derivative_tickers "
                        "WHERE venue = 'okx_swap' AND funding_interval_hours IS NOT NULL "
                        "GROUP BY ALL"))
    assert rows == {"BTC-USDT-SWAP": 8.0, "ETH-USDT-SWAP": 4.0, "BTC-USD-SWAP": 8.0,
                    "ETH-USD-SWAP": 8.0}
    model = sim.model
    for sym in ("BTC-USDT-SWAP", "BTC-USD-SWAP"):
        [(oi, usd)] = sql(db, "SELECT open_interest, value_usd FROM open_interest WHERE "
                              f"symbol = '{sym}' ORDER BY ts_local DESC LIMIT 1")
        truth = model.open_interest("okx_swap", sym)
        assert oi == pytest.approx(truth.open_interest, rel=1e-6)
        if sym == "BTC-USD-SWAP":
            assert usd == pytest.approx(oi * 100.0)
        else:
            assert usd == pytest.approx(oi * 60_000, rel=0.1)



def test_fast_market_books_pass_their_checksums(tmp_path: Path) -> None:
    """A steep contango: the dated futures run up through hundreds of levels, so the levels
    at their top come from beyond the 400 the snapshot showed. OKX sends each level that comes
    into its window (the exchange did not, and ~10 checksums a run failed on okx_futures while
    the client's top 25 lacked them): every checksum verified, no resync."""
    run = simrun.run_sim(tmp_path, "steep_contango", seconds=30, speed=10, exchanges=("okx",))
    stats = book_stats(run.collector)
    print(f"okx steep contango: {stats}")
    for feed, s in stats.items():
        assert s["checksums_verified"] > 0 and s["checksums_failed"] == 0, (feed, s)
        assert s["gaps"] == 0 and s["resyncs"] == 0, (feed, s)
    assert stats["okx_futures"]["checksums_verified"] > 1000


class _Snap:
    def __init__(self, last_id: int, bids: list[tuple[float, float]],
                 asks: list[tuple[float, float]]) -> None:
        self.last_id, self.bids, self.asks = last_id, bids, asks


class _Model:
    """What a ``SymbolFormat`` asks of the model: its time and a book's snapshot."""

    now_ns = 1_700_000_000_000_000_000

    def __init__(self, snap: _Snap) -> None:
        self.snap = snap

    def snapshot(self, venue: str, symbol: str) -> _Snap:
        return self.snap


class _Books:
    """A sink keeping the collector's book of each change (as the book keeper does) and the
    checksums it verified or found different."""

    def __init__(self) -> None:
        self.book = OrderBook()
        self.rules: OkxRules | None = None
        self.verified = 0
        self.differing: list[int] = []

    def on_book(self, ev: BookChange) -> None:
        if ev.is_snapshot:
            self.book.apply_snapshot(ev.bids, ev.asks)
        else:
            self.book.apply(ev.bids, ev.asks)
        assert self.rules is not None and ev.checksum
        if self.rules.checksum(ev.symbol, self.book) == ev.checksum:
            self.verified += 1
        else:
            self.differing.append(ev.last_id)


def test_levels_coming_into_the_window_are_sent() -> None:
    """The emulator's ``books`` stream is OKX's 400-level window of a deeper book: as the price
    runs through the asks (each change takes the best 60 and brings 60 bids above the best),
    every level that comes from below the window's edge into it is in the change, with its
    size; the client's book (snapshot + changes, never more) then matches the venue's top 25
    on every frame, checksum and levels, long after the snapshot's 400 asks are gone."""
    tick = 0.1
    bids = [(round(1000.0 - i * tick, 1), round(0.001 * (1 + i % 7), 3)) for i in range(1000)]
    asks = [(round(1000.1 + i * tick, 1), round(0.001 * (1 + i % 5), 3)) for i in range(1000)]
    info = Instrument("okx_spot", "BTC-USDT", "okx", "spot", "BTC", "USDT", False, 1.0,
                      tick, 0.001)
    fmt = SymbolFormat("SPOT", info, _Model(_Snap(10, bids, asks)), {})  # type: ignore[arg-type]
    sink = _Books()
    feed = OkxFeed(MARKETS["okx_spot"], ["BTC-USDT"], ["depth"], sink)  # type: ignore[arg-type]
    sink.rules = feed.rules
    snapshot = fmt.snapshot("books")
    assert snapshot.count(b'"0","1"]') == 800  # 400 levels a side
    feed.decode(snapshot, 1)
    last, top_bid = 10, bids[0][0]
    for n in range(12):
        gone = asks[n * 60:(n + 1) * 60]
        new = [(round(top_bid + (i + 1) * tick, 1), 0.002) for i in range(60)]
        top_bid = new[-1][0]
        ev = BookChange("okx_spot", "BTC-USDT", _Model.now_ns, 0, False, new,
                        [(p, 0.0) for p, _ in gone], last + 1, last + 7, last)
        last += 7
        frame = fmt.book_frame(ev)
        if n == 0:  # 60 asks went, the 60 after the edge came in (the first was the 401st)
            d = json.loads(frame)["data"][0]
            assert [a for a in d["asks"] if a[1] != "0"] == [
                [f"{p:g}", f"{q:g}", "0", "1"] for p, q in asks[400:460]]
        feed.decode(frame, 1)
    assert sink.verified == 13 and sink.differing == []
    # the asks now at the top were beyond the snapshot's last one
    assert sink.book.asks(25) == asks[720:745]
    # every ask left (1000 - 720), the snapshot's 400 bids and the 720 new ones
    assert sink.book.ask_count == 280 and sink.book.bid_count == 400 + 720


def test_replay_answers_trades_with_the_recorded_trades_as_fills() -> None:
    """The replay keeps the recorded ``trades`` frames released so far and answers GET
    /api/v5/market/trades with them as fills, newest first, at most ``limit``; an aggregate of
    3 (the docs' channel example) comes back as 3 fills, which decode to the channel's trade.
    The 2022 capture's channel sent single fills (no aggregation then): the fills of one taker
    order (consecutive ids, one millisecond, side and price) decode to the aggregate today's
    channel sends, under the last fill's id, with their summed size."""
    from analyzer.venues.okx import MARKETS, OkxFeed
    from analyzer.venues.okx.emulate.state import OkxReplay

    replay = OkxReplay("SPOT", None)
    handler, inst, depth = replay.classify(b"trades:BTC-USDT")
    assert handler is not None and inst == "BTC-USDT" and not depth
    recorded = [line.split(": ", 1)[1].encode() for line in
                (FIXTURES / "OKX.ws.1.0.txt").read_text().splitlines()[1:]
                if '"channel":"trades","instId":"BTC-USDT"}' in line and '"data"' in line]
    aggregate = (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
                 b'"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",'
                 b'"ts":"1630048897897","count":"3","source":"0","seqId":1234}]}')

    class _Sink:
        def __init__(self) -> None:
            self.trades: list[Any] = []

        def on_trade(self, ev: Any) -> None:
            self.trades.append(ev)

    sink = _Sink()
    feed = OkxFeed(MARKETS["okx_spot"], ["BTC-USDT"], ["trades"], sink)  # type: ignore[arg-type]
    for frame in [*recorded, aggregate]:
        handler(inst, frame)
        feed.decode(frame, 1)
    assert len(sink.trades) == TRADES["BTC-USDT"] + 1
    body = replay.rest(None, "trades", {"instId": "BTC-USDT", "limit": "500"})  # type: ignore[arg-type]
    data = json.loads(body)["data"]
    assert [d["tradeId"] for d in data[:3]] == ["130639474", "130639473", "130639472"]
    assert sum(float(d["sz"]) for d in data[:3]) == pytest.approx(0.12060306, abs=1e-12)
    assert len(data) == TRADES["BTC-USDT"] + 3
    got = feed.decode_trades(body, "BTC-USDT", 1)
    assert got[-1] == sink.trades[-1] and got[-1].kind == "aggTrade"
    assert {t.trade_id for t in got} < {t.trade_id for t in sink.trades}
    assert sum(t.size for t in got) == pytest.approx(sum(t.size for t in sink.trades))
    merged = [t for t in got if t.kind == "aggTrade"]
    print(f"2022 capture: {len(sink.trades) - 1} BTC-USDT fills, {len(got) - 1} trades as "
          f"aggregated ({len(merged) - 1} of several fills)")
    assert len(merged) > 1
    few = replay.rest(None, "trades", {"instId": "BTC-USDT", "limit": "2"})  # type: ignore[arg-type]
    assert [d["tradeId"] for d in json.loads(few)["data"]] == ["130639474", "130639473"]


def test_reconnects_lose_no_trade_recent_fills_fill_the_holes(tmp_path: Path) -> None:
    """The swap feed's connections closed 5 times (1000, 1001, 1008, 1011, a TCP abort), 10
    market seconds apart: after each reconnect the collector asks GET /api/v5/market/trades
    for every instrument, whose answer is single fills (an aggregate of the channel split in
    up to 3, ids of their own); aggregated back they carry the channel's tradeId, so every
    trade the simulation released is stored exactly once, with the channel's size."""
    schedule = Schedule([Disconnect(at_s=5.0, spacing_s=10.0, feed="okx_swap")])
    run = simrun.run_sim(tmp_path, schedule, seconds=70, speed=10, exchanges=("okx",),
                         options={"okx_swap": {"healthy_seconds": 0.5}})
    swap = run.runner("okx_swap")
    produced, stored = run.produced_trades(), run.stored_trades()
    print(f"okx disconnects: reconnects {run.reconnects('okx_swap')}, trades produced "
          f"{sum(produced.values())}, stored {sum(stored.values())}, backfilled "
          f"{swap.trades_backfilled}, gaps {swap.trade_gaps}")
    assert run.reconnects("okx_swap") == {
        "1000": 1, "1001": 1, "1008": 1, "1011": 1, "abnormal": 1}
    assert run.exchange.stats["feeds"]["okx_swap"]["closed_by_fault"] == 5
    assert all(sum(r.decode_errors.values()) == 0 for r in run.collector.runners)
    assert swap.trades_backfilled > 0 and swap.trade_gaps == 0
    assert stored == produced  # (stored_trades checks that each is stored once)
    for sym, tape in run.exchange.feed("okx_swap").tapes.items():  # the channel's sizes
        [(size,)] = run.sql("SELECT coalesce(sum(size), 0) FROM trades WHERE venue = "
                            f"'okx_swap' AND symbol = '{sym}'")
        assert size == pytest.approx(tape.volume, rel=1e-9), sym
    kinds = dict(run.sql("SELECT kind, count(*) FROM trades WHERE venue = 'okx_swap' "
                         "GROUP BY ALL"))
    assert kinds["aggTrade"] > 0 and kinds["trade"] > 0


async def _ws(url: str) -> Any:
    return await websockets.connect(url + "/ws/v5/public", ping_interval=None)


def test_protocol_acks_errors_ping_and_idle_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-arg acks and 60018 errors, ``ping`` -> ``pong``, the snapshot first on a book
    subscription; a client that sends nothing for the idle limit is closed with 4004, one
    that pings stays past it (limit lowered to 1.5 s for the test)."""
    monkeypatch.setattr(EMULATOR.markets["okx_spot"], "idle_timeout_s", 1.5)
    sim = Simulation(okx_world(), seed=2, speed=1.0)

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        try:
            url = ex.ws_url("okx_spot")
            ws = await _ws(url)
            await ws.send(json.dumps({"op": "subscribe", "args": [
                {"channel": "books", "instId": "BTC-USDT"},
                {"channel": "books", "instId": "BTC-USDT-SWAP"},  # another market's
                {"channel": "nope", "instId": "BTC-USDT"}]}))
            ack = json.loads(await ws.recv())
            assert ack["event"] == "subscribe" and ack["arg"] == {"channel": "books",
                                                                  "instId": "BTC-USDT"}
            for _ in range(2):
                err = json.loads(await ws.recv())
                assert err["event"] == "error" and err["code"] == "60018"
            snap = json.loads(await ws.recv())
            assert snap["action"] == "snapshot" and snap["data"][0]["prevSeqId"] == -1
            assert len(snap["data"][0]["bids"]) == 400 and snap["data"][0]["checksum"] != 0
            await ws.send("ping")
            while (msg := await ws.recv()) != "pong":
                assert json.loads(msg)["arg"]["channel"] == "books"
            # pinging keeps it open past the idle limit; stop pinging and it closes: 4004
            silent = await _ws(url)
            for _ in range(4):
                await asyncio.sleep(0.6)
                await ws.send("ping")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(silent.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004
            assert closed.value.rcvd.reason == "No data received in 30s."
            assert ws.state is websockets.State.OPEN
            await ws.close()
        finally:
            await ex.stop()

    asyncio.run(main())


def test_collector_heartbeat_keeps_quiet_connection_up(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A market that sends nothing (the replay is over) past the idle limit: the collector's
    ``ping`` text keeps its connection open (idle limit lowered to 1.5 s, the collector's
    heartbeat to 0.5 s)."""
    for m in EMULATOR.markets.values():
        monkeypatch.setattr(m, "idle_timeout_s", 1.5)

    def fast_heartbeat(collector: Collector) -> None:
        for r in collector.runners:
            r.market = dataclasses.replace(r.market, heartbeat_seconds=0.5)

    async def main() -> Collector:
        ex = LocalExchange(port=0)
        ex.add_replay(Replay.from_path(FIXTURES, "okx_spot", speed=0))
        await ex.start()

        async def run(collector: Collector) -> None:
            await ex.wait_replays_done(timeout=60)
            await asyncio.sleep(4.0)  # silence: nothing but pongs

        try:
            feeds = [{"venue": "okx_spot", "symbols": ["BTC-USDT"], "channels": CHANNELS}]
            return await collect(tmp_path, ex, feeds, run, setup=fast_heartbeat)
        finally:
            await ex.stop()

    collector = asyncio.run(main())
    runner = collector.runners[0]
    reconnects = {k: v for c in runner.connections for k, v in c.stats.reconnects.items()}
    assert reconnects == {}
    assert runner.books.stats.checksums_verified == BOOK_MESSAGES["BTC-USDT"]


def test_restart_notice_then_close_and_reconnect(tmp_path: Path) -> None:
    """The 64008 notice reaches the collector as a restart warning: it rotates to a new
    connection before the exchange closes the warned one, so the close costs nothing."""
    sim = Simulation(okx_world(), seed=4, speed=5, duration_s=20.0, wait_for=("okx_spot",))

    async def main() -> tuple[Collector, int]:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        warned = 0

        async def run(collector: Collector) -> None:
            nonlocal warned
            await asyncio.sleep(0.5)
            warned = restart_notice(ex.feed("okx_spot"), close_after_s=2.0)
            await ex.wait_replays_done(timeout=60)

        try:
            feeds = [{"venue": "okx_spot", "symbols": ["BTC-USDT"], "channels": CHANNELS}]
            return await collect(tmp_path, ex, feeds, run), warned
        finally:
            await ex.stop()

    collector, warned = asyncio.run(main())
    assert warned >= 1
    runner = collector.runners[0]
    reconnects = {k: v for c in runner.connections for k, v in c.stats.reconnects.items()}
    print(f"64008: {reconnects}")
    assert reconnects == {"rotation": 1}
    assert runner.books.stats.checksums_failed == 0 and runner.books.stats.gaps == 0
