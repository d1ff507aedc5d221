"""BingX spot (``bingx_spot``): decoding field by field, the book rule, the listing, and end to
end through the local exchange with the real collector.

No real BingX spot frame has been recorded anywhere we know of (tests/fixtures/bingx has
none of spot either): the frames below are the samples of BingX's docs (the JSON ping), ccxt's
``ts/src/pro/bingx.ts`` (the spot trade frame, the ack) and JKorf/BingX.Net's spot test files
(``UnitTests/Subscriptions/Spot/{ExchangeData/Trades,BookPrice}.txt``,
``Endpoints/Spot/ExchangeData/{GetSymbols,GetRecentTrades}.txt``), copied as data; the book
sequence is made up in the spot layout (no sample has one) and the rest is tested against the
local exchange's simulated spot market.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import simrun
import websockets

from analyzer.events import BookChange, Quote, Trade
from analyzer.exchange import LocalExchange, Simulation
from analyzer.sim import Schedule, World
from analyzer.sim.scenarios import Disconnect, SequenceGap
from analyzer.sim.spec import BTC, ETH, Rates
from analyzer.venues import VENUES
from analyzer.venues.base import DecodeError, UnknownStream, VenueError
from analyzer.venues.bingx import BingxFeed
from analyzer.venues.bingx.emulate import EMULATOR
from analyzer.venues.bingx.emulate.specs import BINGX_SPOT
from analyzer.venues.bingx.spot import BingxSpotFeed

MS = 1_000_000

# ccxt pro/bingx.ts handleTrades, the spot update
CCXT_TRADE = (b'{"code":0,"data":{"E":1690214529432,"T":1690214529386,"e":"trade","m":true,'
              b'"p":"29110.19","q":"0.1868","s":"BTC-USDT","t":"57903921"},'
              b'"dataType":"BTC-USDT@trade","success":true}')
# JKorf Subscriptions/Spot/ExchangeData/Trades.txt (dataType first, numbers and flag as text)
JK_TRADE = (b'{\n  "code": 0,\n  "dataType": "BTC-USDT@trade",\n  "Success": true,\n  "data": '
            b'{\n\t  "e": "trade",\n\t  "E": "1649832413551",\n\t  "s": "BTC-USDT",\n\t  '
            b'"t": "33685717",\n\t  "p": "40125.48",\n\t  "q": "0.007146",\n\t  '
            b'"T": "1649832413512",\n\t  "m": "true"\n\t}\n}')
# JKorf Subscriptions/Spot/BookPrice.txt
JK_BOOK_TICKER = (b'{"code":0,"data":{"A":"24.887920","B":"2.580800","E":1714648924917,'
                  b'"a":"2996.49","b":"2996.46","e":"bookTicker","s":"BTC-USDT"},'
                  b'"dataType":"BTC-USDT@bookTicker","success":true}')
# the spot docs' heartbeat example; ccxt's spot ack (handleSubscriptionStatus)
DOC_PING = b'{"ping":"2177c68e4d0e45679965f482929b59c2","time":"2022-06-07T16:27:36.323+0800"}'
CCXT_ACK = b'{"code":0,"id":"BTC-USDT@trade","msg":"SUCCESS","timestamp":1759225965363}'
# ccxt's spot partial depth sample (depth100: no action): never a book on the incrDepth route
CCXT_DEPTH100 = (b'{"code":0,"data":{"asks":[["84119.73","0.000011"]],"bids":[["83656.98",'
                 b'"2.570805"]],"lastUpdateId":13565694850},"dataType":"BTC-USDT@incrDepth",'
                 b'"success":true,"timestamp":1743241379958}')
# JKorf Endpoints/Spot/ExchangeData/GetSymbols.txt and GetRecentTrades.txt
JK_SYMBOLS = (b'{"code":0,"msg":"","debugMsg":"","data":{"symbols":[{"symbol":"BTC-USDT",'
              b'"minQty":0.0001826,"maxQty":18.2663756,"minNotional":5,"maxNotional":500000,'
              b'"status":1,"tickSize":0.01,"stepSize":0.00001}]}}')
JK_TRADES = (b'{"code":0,"timestamp":1702720325973,"data":['
             b'{"id":76909154,"price":42195.21,"qty":0.00195,"time":1702720325553,'
             b'"buyerMaker":true},{"id":76909153,"price":42195.31,"qty":0.00139,'
             b'"time":1702720325552,"buyerMaker":true},{"id":76909152,"price":42195.48,'
             b'"qty":0.00177,"time":1702720325552,"buyerMaker":false}]}')


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *a: self.events.extend(a if name.startswith("on_") else ())


def feed(symbols: tuple[str, ...] = ("BTC-USDT",), **options: Any) -> tuple[Any, Sink]:
    market, cls = VENUES["bingx_spot"]
    sink = Sink()
    return cls(market, list(symbols), ["depth", "trades", "bookTicker"], sink,
               options=options), sink


def wire(f: Any, text: bytes, ts: int = 7) -> Any:
    inflated = f.inflate(gzip.compress(text))
    assert inflated == text and f.control(inflated) is None
    return f.decode(inflated, ts)


def test_spot_market_spec() -> None:
    market, cls = VENUES["bingx_spot"]
    assert cls is BingxFeed and market.is_spot and market.snapshot_source == "ws"
    assert (market.fees.taker, market.fees.maker) == (0.001, 0.001)
    assert market.max_streams == 200 and market.heartbeat is None
    f, _ = feed()
    assert type(f) is BingxSpotFeed and isinstance(f, BingxFeed)
    assert f.streams == ["BTC-USDT@incrDepth", "BTC-USDT@trade", "BTC-USDT@bookTicker"]
    assert f.ws_endpoint(market.ws_url) == "wss://open-api-ws.bingx.com/market"
    subs = [json.loads(m) for m in f.subscribe_messages(f.streams)]
    assert subs[-1] == {"id": "BTC-USDT@incrDepth", "reqType": "sub",
                        "dataType": "BTC-USDT@incrDepth"}
    assert f.book_stream("BTC-USDT") == "BTC-USDT@incrDepth"
    # spot has no derivative data
    assert f.open_interest_path("BTC-USDT") is None and f.premium_path("BTC-USDT") is None
    assert f.funding_info_path() is None and f.depth_path("BTC-USDT") is None
    # the swap market's feed is the swap's still
    swap, _ = VENUES["bingx_swap"]
    assert type(BingxFeed(swap, [], ["depth"], Sink())) is BingxFeed


@pytest.mark.parametrize(("frame", "expected"), [
    (CCXT_TRADE, ("57903921", 29110.19, 0.1868, "sell", 1690214529386)),
    (JK_TRADE, ("33685717", 40125.48, 0.007146, "sell", 1649832413512)),
])
def test_trade_samples(frame: bytes, expected: tuple[Any, ...]) -> None:
    f, sink = feed()
    route = wire(f, frame)
    assert route.channel == "trades"
    [t] = sink.events
    assert isinstance(t, Trade)
    assert (t.venue, t.symbol, t.ts_local) == ("bingx_spot", "BTC-USDT", 7)
    assert (t.trade_id, t.price, t.size, t.side, t.ts_exchange // MS) == expected


def test_book_ticker_sample() -> None:
    f, sink = feed()
    wire(f, JK_BOOK_TICKER)
    [q] = sink.events
    assert isinstance(q, Quote)
    assert (q.bid_price, q.bid_size, q.ask_price, q.ask_size) == (2996.46, 2.5808, 2996.49,
                                                                  24.88792)
    assert q.ts_exchange == 1714648924917 * MS and q.update_id == -1


def depth(action: str, last: int, bids: list[list[str]], asks: list[list[str]],
          ts: int = 1743241379958) -> bytes:
    return json.dumps({"code": 0, "data": {"action": action, "lastUpdateId": last,
                                           "timestamp": ts, "bids": bids, "asks": asks},
                       "dataType": "BTC-USDT@incrDepth", "success": True},
                      separators=(",", ":")).encode()


def test_incr_depth_snapshot_updates_and_the_id_rule() -> None:
    """``action: all`` is a snapshot, ``update`` a change with its ``lastUpdateId``; the rule
    is the swap's: +1 follows, any other step a gap (counted), an older id stale."""
    f, sink = feed()
    wire(f, depth("all", 100, [["84000.1", "1.5"], ["84000.0", "2"]], [["84001.0", "3"]]))
    wire(f, depth("update", 101, [["84000.0", "0"]], [["84002.0", "1"], ["84001.0", "2.5"]],
                  ts=1743241380458))
    snap, upd = sink.events
    assert isinstance(snap, BookChange) and snap.is_snapshot and snap.last_id == 100
    assert snap.bids == [(84000.1, 1.5), (84000.0, 2.0)] and snap.asks == [(84001.0, 3.0)]
    assert snap.ts_exchange == 1743241379958 * MS
    assert not upd.is_snapshot and (upd.first_id, upd.last_id) == (101, 101)
    assert upd.bids == [(84000.0, 0.0)] and upd.asks == [(84002.0, 1.0), (84001.0, 2.5)]
    rules = f.rules
    assert rules.bridges(100, upd) and rules.follows(100, upd)
    assert not rules.follows(99, upd) and rules.cases["id_skip"] == 1
    assert not rules.follows(101, upd) and rules.is_stale(101, upd)
    assert not rules.follows(102, upd) and rules.cases["id_back"] == 1
    # the option lets a small skip through (counted still)
    g, _ = feed(max_id_skip=3)
    assert g.rules.follows(99, upd) and g.rules.cases["id_skip"] == 1


def test_ping_pong_acks_and_errors() -> None:
    f, _ = feed()
    ping = f.inflate(gzip.compress(DOC_PING))
    assert f.control(ping) == "ping"
    assert json.loads(f.reply(ping)) == {"pong": "2177c68e4d0e45679965f482929b59c2",
                                         "time": "2022-06-07T16:27:36.323+0800"}
    assert f.decode(ping, 1) is None
    assert f.control(b"Ping") == "ping" and f.reply(b"Ping") == b"Pong"
    assert f.control(CCXT_ACK) == "ack" and f.decode(CCXT_ACK, 1) is None
    err = b'{"id":"BTC-USDT@trade","code":100400,"msg":"dataType not support","timestamp":1}'
    assert f.control(err) is None
    with pytest.raises(VenueError, match="100400"):
        f.decode(err, 1)
    # the refused stream's data (a leaked frame) is no trade
    with pytest.raises(UnknownStream):
        f.decode(CCXT_TRADE, 1)
    # data of a stream nobody subscribed to
    g, _ = feed(symbols=("ETH-USDT",))
    with pytest.raises(UnknownStream):
        g.decode(CCXT_TRADE, 1)


@pytest.mark.parametrize("bad", [
    CCXT_DEPTH100,  # a partial-depth push (no action) is never a book
    CCXT_TRADE.replace(b'"p":"29110.19"', b'"p":"NaN"'),
    CCXT_TRADE.replace(b'"t":"57903921"', b'"t":"abc"'),
    depth("delta", 5, [], []),
    b'{"code":0,"data":{"x":1},"dataType":"BTC-USDT@bookTicker","success":true}',
    b"\x1f\x8b not gzip",
])
def test_malformed_frames_are_decode_errors(bad: bytes) -> None:
    f, sink = feed()
    with pytest.raises(DecodeError):
        f.decode(f.inflate(bad), 1)
    assert sink.events == []


def test_rest_bodies() -> None:
    f, _ = feed()
    assert f.instrument_paths() == ["/openApi/spot/v1/common/symbols"]
    [inst] = f.decode_instruments([JK_SYMBOLS], 9).values()
    assert (inst.venue, inst.symbol, inst.market, inst.base, inst.quote) == (
        "bingx_spot", "BTC-USDT", "spot", "BTC", "USDT")
    assert (inst.inverse, inst.contract_size, inst.contract_value) == (False, 1.0, 1.0)
    assert (inst.tick_size, inst.lot_size, inst.expiry) == (0.01, 0.00001, None)
    assert f.recent_trades_path("BTC-USDT") == (
        "/openApi/spot/v1/market/trades?symbol=BTC-USDT&limit=100")
    trades = f.decode_trades(JK_TRADES, "BTC-USDT", 9)
    assert [(t.trade_id, t.price, t.size, t.side, t.ts_exchange // MS) for t in trades] == [
        ("76909152", 42195.48, 0.00177, "buy", 1702720325552),
        ("76909153", 42195.31, 0.00139, "sell", 1702720325552),
        ("76909154", 42195.21, 0.00195, "sell", 1702720325553)]
    with pytest.raises(VenueError):
        f.decode_trades(b'{"code":100204,"msg":"no symbol"}', "BTC-USDT", 9)


# -- the local exchange, the real collector ------------------------------------------------------


@pytest.fixture
def spot_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated BingX world of the spot market alone (short runs, no swap load)."""
    monkeypatch.setattr(EMULATOR, "sim_venues", (BINGX_SPOT,))
    monkeypatch.setattr(EMULATOR.markets["bingx_spot"], "ping_s", 0.3)  # 5 s live


def test_exchange_serves_spot_protocol(spot_only: None) -> None:
    """The spot socket ``/market``: gzip frames; the spot ack, then the ``action: all``
    snapshot; a refused symbol (code 100400); the JSON ping, whose pong (same id) counts."""
    world = World(assets=(BTC, ETH), venues=(BINGX_SPOT,), rates=Rates()).validate()
    sim = Simulation(world, seed=1, speed=1.0)
    market = EMULATOR.markets["bingx_spot"]

    async def main() -> None:
        ex = LocalExchange(port=0)
        ex.add_simulation(sim)
        await ex.start()
        try:
            async with websockets.connect(ex.ws_url("bingx_spot") + "/market",
                                          ping_interval=None) as ws:
                await ws.send(json.dumps({"id": "a", "reqType": "sub",
                                          "dataType": "BTC-USDT@incrDepth"}))
                ack = json.loads(gzip.decompress(await ws.recv()))
                assert (ack["id"], ack["code"], ack["msg"]) == ("a", 0, "SUCCESS")
                raw = gzip.decompress(await ws.recv())
                snap = json.loads(raw)
                assert snap["dataType"] == "BTC-USDT@incrDepth" and snap["success"] is True
                assert snap["data"]["action"] == "all" and len(snap["data"]["bids"]) == 1000
                f, sink = feed()
                f.decode(raw, 1)
                [b] = sink.events
                assert b.is_snapshot and b.last_id == snap["data"]["lastUpdateId"]
                await ws.send(json.dumps({"id": "b", "dataType": "btc-usdt@trade"}))
                pongs = market.pongs
                seen_ping = refused = False
                while not (seen_ping and refused):
                    msg = json.loads(gzip.decompress(await asyncio.wait_for(ws.recv(), 5)))
                    if "ping" in msg:
                        assert f.control(json.dumps(msg).encode()) == "ping"
                        await ws.send(json.dumps({"pong": msg["ping"], "time": msg["time"]}))
                        seen_ping = True
                    elif msg.get("id") == "b":
                        assert msg["code"] == 100400
                        refused = True
                for _ in range(100):
                    if market.pongs > pongs:
                        break
                    await asyncio.sleep(0.05)
                assert market.pongs > pongs
        finally:
            await ex.stop()

    asyncio.run(main())


def test_simulated_spot_in_sync_every_trade_once_quotes(tmp_path: Path,
                                                         spot_only: None) -> None:
    """The simulated spot BTC and ETH over gzip frames: the listing, both books in sync with
    the model without a gap (spot ids step by one), every trade stored once by its id, the
    venue's bookTicker quotes stored, the server's JSON pings answered."""
    market = EMULATOR.markets["bingx_spot"]
    pongs = market.pongs
    run = simrun.run_sim(tmp_path, "", seconds=6, speed=8, exchanges=("bingx",))
    runner = run.runner("bingx_spot")
    s = runner.books.stats
    assert s.gaps == 0 and s.resyncs == 0 and s.snapshots_applied == 2
    assert sum(runner.decode_errors.values()) == 0
    assert runner.feed.rules.cases == {"id_skip": 0, "id_jump": 0, "id_back": 0}
    produced, stored = run.produced_trades(), run.stored_trades()
    assert stored == produced and sum(stored.values()) > 30
    for sym, sb in runner.books.books.items():
        snap = run.sim.model.snapshot("bingx_spot", sym)
        assert sb.in_sync, sym
        assert [tuple(lv) for lv in sb.book.bids(100)] == snap.bids[:100], sym
        assert [tuple(lv) for lv in sb.book.asks(100)] == snap.asks[:100], sym
    inst = runner.instruments["BTC-USDT"]
    assert (inst.market, inst.contract_value, inst.inverse) == ("spot", 1.0, False)
    [(quotes,)] = run.sql("SELECT count(*) FROM quotes WHERE venue = 'bingx_spot' "
                          "AND source = 'venue'")
    assert quotes > 10
    assert market.pongs > pongs


def test_spot_gap_recovered_and_disconnects_lose_no_trade(tmp_path: Path,
                                                          spot_only: None) -> None:
    """A dropped spot depth change: a ``gap`` row (an id skip), that book resubscribed alone
    and in sync again; then the connection closed twice (1001, a TCP abort): each reconnect
    resyncs, the recent trades backfill by id, and every trade is stored exactly once."""
    schedule = Schedule([
        SequenceGap(at_s=2.0, feed="bingx_spot", contract="spot", asset="BTC"),
        Disconnect(at_s=5.0, spacing_s=4.0, feed="bingx_spot", codes=(1001, None)),
    ])
    run = simrun.run_sim(tmp_path, schedule, seconds=14, speed=6, exchanges=("bingx",),
                         options={"bingx_spot": {"healthy_seconds": 0.5}})
    runner = run.runner("bingx_spot")
    assert run.reconnects("bingx_spot") == {"1001": 1, "abnormal": 1}
    assert ("BTC-USDT", "gap") in run.sql("SELECT symbol, reason FROM gaps")
    assert runner.feed.rules.cases["id_skip"] >= 1
    assert runner.books.stats.resyncs >= 1
    assert all(sb.in_sync for sb in runner.books.books.values())
    assert sum(runner.decode_errors.values()) == 0
    assert run.stored_trades() == run.produced_trades()
