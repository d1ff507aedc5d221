"""WEEX spot (``weex_spot``): decoding, the book rule, the listing, and end to end through the
local exchange with the real collector.

No real WEEX spot frame has been recorded anywhere we know of (tests/fixtures/weex has
none either): the frames below are the samples of the docs' third-party mirrors, JKorf/Weex.Net's
spot test frames (``Weex.Net.UnitTests/Subscriptions/Spot/*.txt``, ``Endpoints/Spot/...``) and
ccxt's recorded bodies (``ts/src/weex.ts``, ``ts/src/pro/weex.ts``), copied as data; the rest is
tested against the local exchange's simulated spot market.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import simrun
import websockets

from analyzer.events import BookChange, Instrument, Quote, Trade
from analyzer.exchange import LocalExchange, Simulation
from analyzer.sim import Schedule, World
from analyzer.sim.scenarios import Disconnect, SequenceGap
from analyzer.sim.spec import BTC, ETH, Rates
from analyzer.venues.base import DecodeError
from analyzer.venues.weex import MARKETS, WeexFeed
from analyzer.venues.weex.emulate import EMULATOR
from analyzer.venues.weex.emulate.sim import WEEX_SPOT
from analyzer.venues.weex.spec import HEARTBEAT, SPOT_FEES

MARKET = MARKETS["weex_spot"]
MS = 1_000_000

# JKorf/Weex.Net spot test frames (Subscriptions/Spot/OrderBook.txt, BookTicker.txt, Trades.txt)
JK_DEPTH = (b'{"e":"depth","E":1775118171935,"s":"ETHUSDT","U":971193541,"u":971193552,"l":15,'
            b'"d":"CHANGED","b":[["2048.74","1.18796"]],"a":[["2048.75","1.18796"]]}')
JK_BOOK_TICKER = (b'{"e":"bookTicker","E":1775117847999,"s":"ETHUSDT","u":1775117847996,'
                  b'"b":"2050.67","B":"0.89116","a":"2050.70","A":"2.26200"}')
JK_TRADE = (b'{"e":"trade","E":1775118619709,"s":"ETHUSDT","d":[{"T":1775118619691,'
            b'"t":"8cd20870-d3b0-41d8-91bb-ccdfbdd6576f","p":"2050.56","q":"0.02625",'
            b'"v":"53.8272000","m":true}]}')
# ccxt pro/weex.ts handleBidAsk / handleTrade samples (spot: sizes of 5 decimals)
CCXT_BOOK_TICKER = (b'{"e":"bookTicker","E":1776103547551,"s":"ETHUSDT","u":1776103547547,'
                    b'"b":"2227.39","B":"1.05512","a":"2227.40","A":"6.30889"}')
CCXT_TRADE = (b'{"e":"trade","E":1776104608321,"s":"ETHUSDT","d":[{"T":1776104608298,'
              b'"t":"41099265-7985-4f4c-af93-2cc3bc1cf13b","p":"2225.15","q":"0.02525",'
              b'"v":"56.1850375","m":false}]}')
# ccxt weex.ts parseMarket's spot entry, and JKorf's spot exchangeInfo (no steps)
CCXT_SYMBOL = {
    "symbol": "ETHUSDT", "status": "TRADING", "baseAsset": "ETH", "baseAssetPrecision": "8",
    "quoteAsset": "USDT", "quoteAssetPrecision": "8", "tickSize": "0.01", "stepSize": "0.00001",
    "minTradeAmount": "0.0001", "maxTradeAmount": "99999", "takerFeeRate": "0.001",
    "makerFeeRate": "0.001", "buyLimitPriceRatio": "0.1", "sellLimitPriceRatio": "0.1",
    "marketBuyLimitSize": "99999", "marketSellLimitSize": "99999",
    "marketFallbackPriceRatio": "0", "enableTrade": True, "enableDisplay": True,
    "displayDigitMerge": "0.01,0.1,0.5,1,5", "displayNew": False, "displayHot": False,
}
JK_SYMBOL = {
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
    "quoteAsset": "USDT", "quoteAssetPrecision": 8, "minTradeAmount": "0.0001",
    "maxTradeAmount": "1000", "takerFeeRate": "0.001", "makerFeeRate": "0.001",
    "enableTrade": True,
}
# ccxt's fetchTrades sample (a UUID id) and JKorf's GetRecentTrades (digits)
REST_TRADES = (b'[{"id":"875fba11-f8a1-42ad-915d-012ccb375e8a","price":"2114.77","qty":"0.01000",'
               b'"quoteQty":"21.1477000","time":1775594995485,"isBuyerMaker":false,'
               b'"isBestMatch":true},{"id":"120045678901","price":"2114.70","qty":"0.002",'
               b'"quoteQty":"4.2294","time":1775594995400,"isBuyerMaker":true,'
               b'"isBestMatch":true}]')


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.duplicates = 0

    def on_book(self, ev: BookChange) -> None:
        self.events.append(ev)

    def on_trade(self, ev: Trade) -> None:
        self.events.append(ev)

    def on_quote(self, ev: Quote) -> None:
        self.events.append(ev)

    def on_ticker(self, ev: Any) -> None:
        self.events.append(ev)

    def on_duplicate(self) -> None:
        self.duplicates += 1


def feed(channels: tuple[str, ...] = ("depth", "trades", "bookTicker"),
         symbols: tuple[str, ...] = ("ETHUSDT",)) -> tuple[WeexFeed, Sink]:
    sink = Sink()
    return WeexFeed(MARKET, list(symbols), list(channels), sink, options={"depth": 15}), sink


# -- the market and its streams --------------------------------------------------------------


def test_spot_market_spec() -> None:
    """The spot host, the V3 path, the contract socket's limits and heartbeat, spot's fees."""
    assert MARKET.is_spot and MARKET.kind == "spot" and MARKET.exchange == "weex"
    assert MARKET.ws_url == "wss://ws-spot.weex.com"
    assert MARKET.rest_url == "https://api-spot.weex.com"
    assert MARKET.fees == SPOT_FEES and (SPOT_FEES.taker, SPOT_FEES.maker) == (0.001, 0.001)
    assert MARKET.snapshot_source == "ws" and MARKET.max_streams == 100
    assert MARKET.heartbeat == HEARTBEAT
    f, _ = feed(("depth", "trades", "bookTicker", "markPrice", "openInterest"))
    assert f.ws_endpoint(MARKET.ws_url) == "wss://ws-spot.weex.com/v3/ws/public"
    # no mark, index, funding or open interest on spot
    assert f.streams == ["ETHUSDT@depth15", "ETHUSDT@trade", "ETHUSDT@bookTicker"]
    assert json.loads(f.subscribe_messages(f.streams)[0]) == {
        "method": "SUBSCRIBE", "params": f.streams, "id": 1}
    assert f.book_stream("ethusdt") == "ETHUSDT@depth15"
    assert f.premium_path("ETHUSDT") is None and f.open_interest_path("ETHUSDT") is None
    assert f.instrument_paths() == ["/api/v3/exchangeInfo"]
    assert f.recent_trades_path("ETHUSDT") == "/api/v3/market/trades?symbol=ETHUSDT&limit=1000"
    assert (f.rest_weights["instruments"], f.rest_weights["trades"],
            f.rest_weights["depth"]) == (20, 25, 5)
    # the control frames are the contract socket's
    assert f.control(b'{"event":"ping","time":"1693208170000"}') == "ping"
    assert f.reply(b"") == b'{"method":"PONG","id":1}'
    assert f.control(b'{"result":true,"id":1000000}') == "pong"
    assert f.control(b'{"result":true,"id":3}') == "ack"


# -- frames, field by field ------------------------------------------------------------------


def test_depth_change_sample() -> None:
    """JKorf's spot depth frame: a change with U 971193541 (the previous u), u 971193552."""
    f, sink = feed()
    f.decode(JK_DEPTH, 7)
    [ev] = sink.events
    assert ev == BookChange("weex_spot", "ETHUSDT", 1775118171935 * MS, 7, False,
                            [(2048.74, 1.18796)], [(2048.75, 1.18796)], 971193542, 971193552,
                            971193541)


def test_depth_snapshot_then_chain() -> None:
    """A snapshot (the contract's layout) and the change that chains to it."""
    f, sink = feed()
    snap = (b'{"e":"depthSnapshot","E":1775118171000,"s":"ETHUSDT","U":971193530,'
            b'"u":971193541,"l":15,"d":"SNAPSHOT","b":[["2048.70","2.5"]],'
            b'"a":[["2048.80","1.25"]]}')
    f.decode(snap, 1)
    f.decode(JK_DEPTH, 2)
    s, c = sink.events
    assert s.is_snapshot and (s.first_id, s.last_id) == (971193541, 971193541)
    assert s.bids == [(2048.7, 2.5)] and s.asks == [(2048.8, 1.25)]
    assert f.rules.bridges(s.last_id, c) and not f.rules.is_stale(s.last_id, c)


@pytest.mark.parametrize(("frame", "expected"), [
    (JK_BOOK_TICKER, (1775117847999, 2050.67, 0.89116, 2050.70, 2.262)),
    (CCXT_BOOK_TICKER, (1776103547551, 2227.39, 1.05512, 2227.40, 6.30889)),
])
def test_book_ticker_samples(frame: bytes, expected: tuple[Any, ...]) -> None:
    """bookTicker -> a Quote of the venue at ``E``; its ``u`` (a ms time) is not an id."""
    f, sink = feed()
    route = f.decode(frame, 5)
    assert route is not None and route.channel == "bookTicker"
    ms, bp, bs, ap, az = expected
    [q] = sink.events
    assert q == Quote("weex_spot", "ETHUSDT", ms * MS, 5, bp, bs, ap, az, -1, "venue")


@pytest.mark.parametrize(("frame", "expected"), [
    (JK_TRADE, (1775118619691, "8cd20870-d3b0-41d8-91bb-ccdfbdd6576f", 2050.56, 0.02625,
                "sell")),
    (CCXT_TRADE, (1776104608298, "41099265-7985-4f4c-af93-2cc3bc1cf13b", 2225.15, 0.02525,
                  "buy")),
])
def test_trade_samples(frame: bytes, expected: tuple[Any, ...]) -> None:
    """A spot trade: ``T``, the UUID ``t``, price, base size, ``m`` true a taker sell; the
    same frame again is a duplicate, not a second trade."""
    f, sink = feed()
    f.decode(frame, 9)
    f.decode(frame, 10)
    ms, tid, p, q, side = expected
    assert sink.events == [Trade("weex_spot", "ETHUSDT", ms * MS, 9, tid, p, q, side)]
    assert sink.duplicates == 1


@pytest.mark.parametrize("frame", [
    JK_BOOK_TICKER.replace(b'"b":"2050.67"', b'"b":"abc"'),
    JK_BOOK_TICKER.replace(b'"B":"0.89116"', b'"B":"0"'),  # an empty top is no quote
    JK_BOOK_TICKER.replace(b'"a":"2050.70",', b""),
    JK_DEPTH.replace(b'"2048.74"', b'"-1"'),
    JK_TRADE.replace(b'"q":"0.02625"', b'"q":"NaN"'),
])
def test_malformed_frames_are_decode_errors(frame: bytes) -> None:
    f, sink = feed()
    with pytest.raises(DecodeError):
        f.decode(frame, 1)
    assert sink.events == []


# -- the book rule -----------------------------------------------------------------------------


def change(prev: int, last: int) -> BookChange:
    return BookChange("weex_spot", "ETHUSDT", 1, 1, False, [], [], prev + 1, last, prev)


def test_spot_book_rule_is_the_chain_and_counts_u_plus_one() -> None:
    """U == the last u follows; U == u + 1 (Binance's spot numbering) is a gap here, counted
    as ``spot_u_plus_one`` on spot only; anything else a plain gap; not above u: stale."""
    f, _ = feed()
    r = f.rules
    assert r.follows(100, change(100, 110)) and r.bridges(100, change(100, 110))
    assert not r.follows(100, change(101, 110))
    assert not r.bridges(100, change(101, 110))
    assert not r.follows(100, change(105, 110))
    assert r.is_stale(110, change(100, 110)) and not r.is_stale(109, change(100, 110))
    assert r.cases == {"spot_u_plus_one": 2}
    futures = WeexFeed(MARKETS["weex_futures"], [], [], Sink()).rules
    assert not futures.follows(100, change(101, 110)) and futures.cases == {}


# -- REST ----------------------------------------------------------------------------------------


def test_listing_ccxt_and_jkorf_entries() -> None:
    """ccxt's recorded entry: tick 0.01, lot 0.00001, spot, base units; JKorf's (no steps):
    steps from the precisions, counted; a halted or untradeable symbol is skipped; one with
    neither steps nor precisions is skipped and counted."""
    f, _ = feed()
    halted = {**CCXT_SYMBOL, "symbol": "XUSDT", "status": "HALT"}
    off = {**CCXT_SYMBOL, "symbol": "YUSDT", "enableTrade": False}
    bare = {"symbol": "ZUSDT", "baseAsset": "Z", "quoteAsset": "USDT", "status": "TRADING"}
    body = json.dumps({"timezone": "UTC", "serverTime": 1, "symbols": [
        CCXT_SYMBOL, JK_SYMBOL, halted, off, bare]}).encode()
    out = f.decode_instruments([body], 3)
    assert out == {
        "ETHUSDT": Instrument("weex_spot", "ETHUSDT", "weex", "spot", "ETH", "USDT", False, 1.0,
                              0.01, 0.00001, None, 3, contract_value=1.0),
        "BTCUSDT": Instrument("weex_spot", "BTCUSDT", "weex", "spot", "BTC", "USDT", False, 1.0,
                              1e-8, 1e-8, None, 3, contract_value=1.0),
    }
    assert f.rules.cases == {"spot_steps_from_precision": 1, "spot_steps_unknown": 1}
    with pytest.raises(DecodeError):
        f.decode_instruments([b'{"symbols":[{"symbol":"A"}]}'], 1)


def test_recent_trades_body() -> None:
    """The spot trades body (UUID and digit ids): oldest first, each under its REST id when
    the socket has not brought it; the socket's copy later is a duplicate."""
    f, sink = feed()
    trades = f.decode_trades(REST_TRADES, "ETHUSDT", 4)
    assert trades == [
        Trade("weex_spot", "ETHUSDT", 1775594995400 * MS, 4, "120045678901", 2114.70, 0.002,
              "sell"),
        Trade("weex_spot", "ETHUSDT", 1775594995485 * MS, 4,
              "875fba11-f8a1-42ad-915d-012ccb375e8a", 2114.77, 0.01, "buy"),
    ]
    f.decode(b'{"e":"trade","E":1775594995490,"s":"ETHUSDT","d":[{"T":1775594995485,'
             b'"t":"875fba11-f8a1-42ad-915d-012ccb375e8a","p":"2114.77","q":"0.01000",'
             b'"v":"21.1477","m":false}]}', 5)
    assert sink.events == [] and sink.duplicates == 1


# -- the local exchange, the real collector ------------------------------------------------------


@pytest.fixture
def spot_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated WEEX world of the spot market alone (short runs, no futures load)."""
    monkeypatch.setattr(EMULATOR, "sim_venues", (WEEX_SPOT,))


def test_exchange_serves_spot_protocol() -> None:
    """The spot socket: greeting, snapshots before the ack (15 levels), a bookTicker frame
    that the spot feed decodes; a contract-only channel name is refused."""
    world = World(assets=(BTC, ETH), venues=(WEEX_SPOT,), rates=Rates()).validate()
    sim = Simulation(world, seed=1, speed=2.0)

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        try:
            url = ex.ws_url("weex_spot") + "/v3/ws/public"
            async with websockets.connect(url, ping_interval=None) as ws:
                assert json.loads(await ws.recv())["event"] == "connected"
                await ws.send(json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [
                    "BTCUSDT@depth15", "BTCUSDT@trade", "BTCUSDT@bookTicker"]}))
                got: list[dict[str, Any]] = []
                raw: list[bytes] = []
                while not any(m.get("e") == "bookTicker" for m in got):
                    frame = await asyncio.wait_for(ws.recv(), 10)
                    raw.append(frame.encode() if isinstance(frame, str) else frame)
                    got.append(json.loads(frame))
                events = [m.get("e") or m.get("result") for m in got]
                assert events[:3] == ["depthSnapshot", "tradeSnapshot", True]
                assert len(got[0]["b"]) == len(got[0]["a"]) == 15
                f, sink = feed(symbols=("BTCUSDT",))
                f.decode(raw[-1], 1)
                [q] = sink.events
                assert isinstance(q, Quote) and q.bid_price < q.ask_price
                await ws.send(json.dumps({"method": "SUBSCRIBE", "id": 2,
                                          "params": ["BTCUSDT@markPrice"]}))
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if m.get("id") == 2:
                        assert m["result"] is False
                        break
        finally:
            await ex.stop()

    asyncio.run(main())


def test_simulated_spot_in_sync_every_trade_once_quotes(tmp_path: Path,
                                                         spot_only: None) -> None:
    """The simulated spot BTC and ETH: the spot listing, books in sync without a gap, every
    trade stored once (each frame repeats the trade before), the venue's bookTicker quotes
    stored, no doubtful case."""
    run = simrun.run_sim(tmp_path, "", seconds=8, speed=8, exchanges=("weex",))
    runner = run.runner("weex_spot")
    s = runner.books.stats
    assert s.gaps == 0 and s.resyncs == 0 and s.snapshots_applied == 2
    assert sum(runner.decode_errors.values()) == 0 and runner.feed.rules.cases == {}
    produced, stored = run.produced_trades(), run.stored_trades()
    assert stored == produced and sum(stored.values()) > 50
    assert runner.duplicate_frames > 0
    for sym, sb in runner.books.books.items():
        assert sb.in_sync and sb.book.bid_count == sb.book.ask_count == 200, sym
    inst = runner.instruments["BTCUSDT"]
    assert (inst.market, inst.contract_value, inst.inverse) == ("spot", 1.0, False)
    [(quotes,)] = run.sql("SELECT count(*) FROM quotes WHERE venue = 'weex_spot' "
                          "AND source = 'venue'")
    assert quotes > 20


def test_spot_gap_recovered_and_disconnects_lose_no_trade(tmp_path: Path,
                                                          spot_only: None) -> None:
    """A dropped spot depth change: a ``gap`` row, that book resubscribed alone and in sync
    again; then the connection closed twice (1001, a TCP abort): each reconnect resyncs, and
    every trade is stored exactly once."""
    schedule = Schedule([
        SequenceGap(at_s=2.0, feed="weex_spot", contract="spot", asset="BTC"),
        Disconnect(at_s=5.0, spacing_s=5.0, feed="weex_spot", codes=(1001, None)),
    ])
    run = simrun.run_sim(tmp_path, schedule, seconds=16, speed=6, exchanges=("weex",),
                         options={"weex_spot": {"healthy_seconds": 0.5}})
    runner = run.runner("weex_spot")
    assert run.reconnects("weex_spot") == {"1001": 1, "abnormal": 1}
    assert ("BTCUSDT", "gap") in run.sql("SELECT symbol, reason FROM gaps")
    assert runner.books.stats.resyncs >= 1
    assert all(sb.in_sync for sb in runner.books.books.values())
    assert sum(runner.decode_errors.values()) == 0
    assert run.stored_trades() == run.produced_trades()
