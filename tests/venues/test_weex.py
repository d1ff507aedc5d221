"""WEEX contract API V3, collector side: the real frames (tests/fixtures/weex/) through
``WeexFeed``, the book rule on the real 60-change sequence, REST bodies, malformed input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import msgspec
import pytest

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Trade
from analyzer.feed.book import OrderBook
from analyzer.feed.books import BookKeeper
from analyzer.venues.base import DecodeError, UnknownStream, VenueError
from analyzer.venues.weex import MARKETS, VENUE, WeexFeed
from analyzer.venues.weex.decode import WeexRules
from analyzer.venues.weex.rest import cycle_hours
from analyzer.venues.weex.spec import HEARTBEAT
from analyzer.venues.weex.trades import RECENT_TRADES, TRADES_KEPT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "weex"
MS = 1_000_000
T = 1_800_000_000_000_000_000  # a local receipt time
MARKET = MARKETS["weex_futures"]


class Recorder:
    """A Sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.duplicates = 0

    def on_trade(self, ev: Trade) -> None:
        self.events.append(ev)

    def on_book(self, ev: BookChange) -> None:
        self.events.append(ev)

    def on_quote(self, ev: object) -> None:
        self.events.append(ev)

    def on_ticker(self, ev: DerivativeTicker) -> None:
        self.events.append(ev)

    def on_open_interest(self, ev: OpenInterest) -> None:
        self.events.append(ev)

    def on_liquidation(self, ev: object) -> None:
        self.events.append(ev)

    def on_trade_gap(self, symbol: str, first_missing: int, last_missing: int) -> None:
        self.events.append(("gap", symbol))

    def on_duplicate(self) -> None:
        self.duplicates += 1


class ToKeeper(Recorder):
    """A Sink handing book changes to the collector's book keeper."""

    def __init__(self, keeper: BookKeeper) -> None:
        super().__init__()
        self.keeper = keeper

    def on_book(self, ev: BookChange) -> None:
        self.keeper.on_change(ev)


def lines(name: str) -> list[bytes]:
    return [line for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]


def feed(channels: tuple[str, ...] = ("depth", "trades", "markPrice"), depth: int = 15,
         symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> tuple[WeexFeed, Recorder]:
    sink = Recorder()
    return WeexFeed(MARKET, symbols, channels, sink, options={"depth": depth}), sink  # type: ignore[arg-type]


def rebuild(frames: list[bytes]) -> tuple[dict[float, float], dict[float, float], int]:
    """The book the raw frames make, independently (json module): a snapshot replaces, a
    change sets sizes (0 removes), and each change's U is the previous u."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    u = -1
    for frame in frames:
        m = json.loads(frame)
        if m["e"] == "depthSnapshot":
            bids, asks = {}, {}
        else:
            assert m["U"] == u
        for side, levels in ((bids, m["b"]), (asks, m["a"])):
            for p, q in levels:
                if float(q):
                    side[float(p)] = float(q)
                else:
                    side.pop(float(p), None)
        u = m["u"]
    return bids, asks, u


def test_venue_and_market() -> None:
    assert VENUE.name == "weex" and set(VENUE.markets) == {"weex_futures", "weex_spot"}
    assert VENUE.emulator == "analyzer.venues.weex.emulate"
    assert MARKET.snapshot_source == "ws" and MARKET.max_streams == 100
    assert MARKET.heartbeat == HEARTBEAT and not MARKET.is_spot
    assert (MARKET.fees.taker, MARKET.fees.maker) == (0.0008, 0.0002)
    f, _ = feed()
    assert f.ws_endpoint("wss://ws-contract.weex.com") == \
        "wss://ws-contract.weex.com/v3/ws/public"
    assert f.snapshot_levels == 15 and feed(depth=200)[0].snapshot_levels == 200


def test_real_depth_snapshot_field_by_field() -> None:
    f, sink = feed()
    [frame] = lines("depth_snapshot.ndjson")
    route = f.decode(frame, T)
    assert route is not None and route.stream == "BTCUSDT@depth15" and route.frames == 1
    [ev] = sink.events
    assert isinstance(ev, BookChange)
    assert (ev.venue, ev.symbol, ev.ts_exchange, ev.ts_local, ev.is_snapshot) == (
        "weex_futures", "BTCUSDT", 1788692246206 * MS, T, True)
    assert (ev.first_id, ev.last_id, ev.prev_id, ev.checksum) == (16786244375, 16786244375, -1, 0)
    assert len(ev.bids) == len(ev.asks) == 15
    assert ev.bids[0] == (79979.8, 2.5926) and ev.bids[-1] == (79975.7, 0.6048)
    assert ev.asks[0] == (79979.9, 2.5821) and ev.asks[-1] == (79982.9, 0.6113)


def test_real_first_change_field_by_field() -> None:
    f, sink = feed()
    f.decode(lines("depth_deltas.ndjson")[0], T)
    [ev] = sink.events
    assert isinstance(ev, BookChange) and not ev.is_snapshot
    assert (ev.ts_exchange, ev.first_id, ev.last_id, ev.prev_id) == (
        1788692246314 * MS, 16786244376, 16786244424, 16786244375)
    assert ev.bids == [(79979.8, 2.8356), (79978.0, 0.4354), (79977.9, 0.0)]
    assert ev.asks == [(79979.9, 2.5579)]


def test_real_sequence_rebuilds_the_recorded_final_book() -> None:
    """THE ORACLE: the snapshot and its 60 changes through the feed and the collector's book
    keeper, by WEEX's rule (U == previous u): no gap, every change applied, and the book after
    the last one equals the independent rebuild level for level (15 x 15, touch 79982.1 /
    79982.2, u 16786246795)."""
    frames = lines("depth_snapshot.ndjson") + lines("depth_deltas.ndjson")
    bids, asks, last_u = rebuild(frames)
    f, _ = feed(("depth",))
    gaps: list[object] = []
    keeper = BookKeeper("weex_futures", ["BTCUSDT"], f.rules, lambda s: None, gaps.append,
                        lambda ev: None, ws_snapshots=True)
    f.sink = ToKeeper(keeper)
    keeper.start()
    for frame in frames:
        f.decode(frame, time.time_ns())
    sb = keeper.books["BTCUSDT"]
    assert gaps == [] and keeper.stats.gaps == 0 and sb.in_sync
    assert sb.updates == 60 and sb.last_id == last_u == 16786246795
    assert sb.book.bids(100) == sorted(bids.items(), reverse=True)
    assert sb.book.asks(100) == sorted(asks.items())
    assert len(bids) == len(asks) == 15
    assert sb.book.top() == (79982.1, 2.4325, 79982.2, 2.7899)


@pytest.mark.parametrize("dropped", [0, 1, 30, 59])
def test_a_dropped_change_breaks_the_chain_and_is_a_gap(dropped: int) -> None:
    """Without any one change of the real sequence, the next one (or, for the last, none) no
    longer follows: a ``gap`` and a resync of that book (its stream resubscribed)."""
    frames = lines("depth_snapshot.ndjson") + lines("depth_deltas.ndjson")
    del frames[1 + dropped]
    f, _ = feed(("depth",))
    gaps: list[object] = []
    asked: list[str] = []
    keeper = BookKeeper("weex_futures", ["BTCUSDT"], f.rules, asked.append, gaps.append,
                        lambda ev: None, ws_snapshots=True)
    f.sink = ToKeeper(keeper)
    keeper.start()
    for frame in frames:
        f.decode(frame, time.time_ns())
    sb = keeper.books["BTCUSDT"]
    if dropped == 59:  # nothing after it to notice: the book is one change behind, in sync
        assert gaps == [] and sb.last_id != 16786246795
        return
    assert keeper.stats.gaps == 1 and not sb.in_sync and asked == ["BTCUSDT"]
    [gap] = gaps
    assert gap.reason == "gap"  # type: ignore[attr-defined]


def test_rules() -> None:
    rules = WeexRules({})
    ev = BookChange("weex_futures", "X", 0, 0, False, [], [], 11, 20, 10)
    assert rules.follows(10, ev) and not rules.follows(11, ev) and not rules.follows(9, ev)
    assert rules.bridges(10, ev) and not rules.bridges(20, ev)
    assert rules.is_stale(20, ev) and rules.is_stale(25, ev) and not rules.is_stale(19, ev)
    assert rules.checksum is None


def test_delisted_symbol_dead_stream_is_counted_not_a_book() -> None:
    """The empty snapshot with U = u = 0 of a delisted symbol: counted in ``rules.cases``,
    not handed to the book, not counted as a frame (no freshness watch learns it)."""
    f, sink = feed(("depth",))
    dead = (b'{"e":"depthSnapshot","E":1788692246206,"s":"BTCUSDT","U":0,"u":0,"l":15,'
            b'"d":"SNAPSHOT","b":[],"a":[]}')
    route = f.decode(dead, T)
    assert route is not None and route.frames == 0
    f.decode(dead, T)
    assert sink.events == [] and f.rules.cases == {"dead_stream": 2}
    assert f.dead == {"BTCUSDT"}
    f.decode(lines("depth_snapshot.ndjson")[0], T)  # listed again: a real snapshot
    assert f.dead == set() and len(sink.events) == 1


def test_real_trades_each_once_in_time_order() -> None:
    """The recorded trade frames: 62 trades in 4 frames, of which 11 of the first ETHUSDT
    ``trade`` frame repeat its ``tradeSnapshot``: 51 trades, each once, repeats counted."""
    f, sink = feed(("trades",))
    for frame in lines("trades_prefix.ndjson"):
        f.decode(frame, T)
    trades = [e for e in sink.events if isinstance(e, Trade)]
    assert len(trades) == 51 and sink.duplicates == 11
    assert len({(t.symbol, t.trade_id) for t in trades}) == 51
    raw = [json.loads(x) for x in lines("trades_prefix.ndjson") if b'"e":"trade' in x]
    every = {d["t"]: (m["s"], d) for m in raw for d in m["d"]}
    assert {t.trade_id for t in trades} == set(every)
    for t in trades:
        symbol, d = every[t.trade_id]
        assert (t.venue, t.symbol, t.ts_exchange, t.ts_local, t.kind) == (
            "weex_futures", symbol, d["T"] * MS, T, "trade")
        assert (t.price, t.size) == (float(d["p"]), float(d["q"]))
        assert t.side == ("sell" if d["m"] else "buy")
    first = trades[0]  # the BTCUSDT snapshot, oldest of its 20 first
    assert first.symbol == "BTCUSDT" and first.trade_id == \
        min(raw[0]["d"], key=lambda d: d["T"])["t"]
    for sym in ("BTCUSDT", "ETHUSDT"):
        # each frame's new trades go out in time order (the frames themselves are not)
        snap = [t.ts_exchange for t in trades if t.symbol == sym][:20]
        assert snap == sorted(snap)


def test_a_resubscription_snapshot_that_reaches_nothing_seen_is_counted() -> None:
    f, sink = feed(("trades",))
    frames = lines("trades_prefix.ndjson")
    f.decode(frames[1], T)  # BTCUSDT tradeSnapshot
    f.decode(frames[1], T)  # the same again (a resubscription): all repeats
    assert f.cases == {} and sink.duplicates == 20
    f.decode(frames[-1].replace(b'"e":"trade"', b'"e":"tradeSnapshot"'), T)  # all new
    assert f.cases == {"trades_beyond_snapshot": 1}


def test_real_ticker_mark_and_index() -> None:
    f, sink = feed()
    route = f.decode(lines("ticker.ndjson")[0], T)
    assert route is not None and route.stream == "BTCUSDT@ticker" and route.channel == \
        "markPrice"
    assert sink.events == [DerivativeTicker("weex_futures", "BTCUSDT", 1788692276431 * MS, T,
                                            mark_price=79984.1, index_price=80019.68575)]
    assert f.marks["BTCUSDT"] == 79984.1


def test_real_control_frames() -> None:
    """The greeting is ignored, acks are acks, the server's pings are pings answered with
    ``{"method":"PONG","id":1}``, our heartbeat's answer is a pong, a refusal is a
    VenueError (and no control frame): none is data."""
    f, sink = feed()
    greeting, ack, refusal, unsub_ack, ping_reply, *pings = lines("control_frames.ndjson")
    assert f.control(greeting) == "ignore"
    assert f.control(ack) == f.control(unsub_ack) == f.control(ping_reply) == "ack"
    assert [f.control(p) for p in pings] == ["ping"] * 3
    assert f.reply(pings[0]) == b'{"method":"PONG","id":1}'
    assert f.control(b'{"result":true,"id":1000000}') == "pong"
    assert f.control(HEARTBEAT.replace(b"PING", b"PONG")) == "ignore"
    assert f.control(refusal) is None
    for frame in (greeting, ack, unsub_ack, ping_reply, *pings):
        assert f.decode(frame, T) is None
    with pytest.raises(VenueError, match="totally_bogus_channel"):
        f.decode(refusal, T)
    assert sink.events == []
    for frame in lines("depth_snapshot.ndjson") + lines("trades_prefix.ndjson")[1:2]:
        assert f.control(frame) is None


def test_subscribe_messages_and_refusals_never_retried() -> None:
    f, _ = feed(depth=200, symbols=("BTCUSDT",))
    assert f.streams == ["BTCUSDT@depth200", "BTCUSDT@trade", "BTCUSDT@ticker"]
    [msg] = f.subscribe_messages(f.streams)
    req = json.loads(msg)
    assert req == {"method": "SUBSCRIBE", "params": f.streams, "id": req["id"]}
    assert f.add_symbol("ethusdt") == ["ETHUSDT@depth200", "ETHUSDT@trade", "ETHUSDT@ticker"]
    assert f.add_symbol("ETHUSDT") == []
    [msg] = f.subscribe_messages(["ETHUSDT@depth200", "ETHUSDT@trade"])
    rid = json.loads(msg)["id"]
    refusal = json.dumps({"result": False, "id": rid,
                          "msg": "INVALID_ARGUMENT: invalid symbol : ETHUSDT"}).encode()
    with pytest.raises(VenueError):
        f.decode(refusal, T)
    assert f.refused == {"ETHUSDT@depth200", "ETHUSDT@trade"}
    # the book's resync (unsubscribe + subscribe) and reconnects never ask for them again
    assert f.subscribe_messages([f.book_stream("ETHUSDT")]) == []
    assert f.unsubscribe_messages([f.book_stream("ETHUSDT")]) == []
    [again] = f.subscribe_messages(f.streams)
    assert json.loads(again)["params"] == [
        "BTCUSDT@depth200", "BTCUSDT@trade", "BTCUSDT@ticker", "ETHUSDT@ticker"]
    [unsub] = f.unsubscribe_messages(["BTCUSDT@depth200"])
    assert json.loads(unsub)["method"] == "UNSUBSCRIBE"
    ids = {json.loads(m)["id"] for m in [msg, again, unsub]}
    assert len(ids) == 3 and 1_000_000 not in ids  # never the heartbeat's


def test_options() -> None:
    with pytest.raises(msgspec.ValidationError):
        WeexFeed.check_options(MARKET, {"depth": 50})
    with pytest.raises(msgspec.ValidationError):
        WeexFeed.check_options(MARKET, {"nope": 1})
    assert WeexFeed.check_options(MARKET, {}).depth == 200


INFO = json.dumps({"assets": [{"asset": "USDT", "marginAvailable": True}], "symbols": [
    {"symbol": "ETHUSDT", "baseAsset": "ETH", "quoteAsset": "USDT", "marginAsset": "USDT",
     "pricePrecision": "2", "quantityPrecision": "3", "baseAssetPrecision": "2",
     "quotePrecision": "8", "contractVal": "0.001", "delivery": ["00:00:00", "08:00:00"],
     "forwardContractFlag": True, "minLeverage": "1", "maxLeverage": "400",
     "makerFeeRate": "0.0002", "takerFeeRate": "0.0008", "minOrderSize": "0.001"},
    {"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT",
     "pricePrecision": 1, "quantityPrecision": 6, "contractVal": 0.000001,
     "forwardContractFlag": True},
    {"symbol": "BTCUSD", "baseAsset": "BTC", "quoteAsset": "USD", "pricePrecision": 1,
     "quantityPrecision": 0, "contractVal": 1, "forwardContractFlag": False},
]}).encode()


def test_instruments_contract_size_and_units() -> None:
    """exchangeInfo (ccxt's recorded ETHUSDT entry, strings; JKorf's BTCUSDT, numbers): USDT-M
    perpetuals only, sizes in base units (``contract_size`` 1), ``contractVal`` the base
    units a contract is worth and the size step, tick from ``pricePrecision``."""
    f, _ = feed()
    listed = f.decode_instruments([INFO], T)
    assert set(listed) == {"ETHUSDT", "BTCUSDT"}
    assert listed["ETHUSDT"] == Instrument(
        "weex_futures", "ETHUSDT", "weex", "perpetual", "ETH", "USDT", False, 1.0, 0.01, 0.001,
        None, T, contract_value=0.001)
    btc = listed["BTCUSDT"]
    assert (btc.tick_size, btc.lot_size, btc.contract_value) == (0.1, 0.000001, 0.000001)
    f.set_instruments(listed)
    assert f.contract_val == {"ETHUSDT": 0.001, "BTCUSDT": 0.000001}
    with pytest.raises(DecodeError):
        f.decode_instruments([b'{"symbols":[{"symbol":"X"}]}'], T)
    gone = INFO.replace(b'"symbol": "ETHUSDT",', b'"symbol": "ETHUSDT", "status": "DELISTED",')
    assert set(f.decode_instruments([gone], T)) == {"BTCUSDT"}


PREMIUM = (b'[{"symbol":"BTCUSDT","markPrice":"69348.6","indexPrice":"69347.9",'
           b'"lastFundingRate":"0.00025","forecastFundingRate":"0.00025","interestRate":"0.0001",'
           b'"nextFundingTime":1764510000000,"time":1764505777345,"collectCycle":480}]')


def test_premium_index_funding_mark_index() -> None:
    """The docs' premiumIndex body (JKorf's test file): mark, index, the rate of the next
    settlement, its time and the interval (480 minutes: 8 h)."""
    f, _ = feed()
    assert f.premium_path("BTCUSDT") == "/capi/v3/market/premiumIndex?symbol=BTCUSDT"
    assert f.rest_weights["premium"] == 1
    assert f.decode_premium(PREMIUM, "BTCUSDT", T) == [DerivativeTicker(
        "weex_futures", "BTCUSDT", 1764505777345 * MS, T, 69348.6, 69347.9, 0.00025,
        1764510000000 * MS, 8.0)]
    assert f.funding_hours == {"BTCUSDT": 8.0} and f.cases == {}
    assert f.decode_premium(PREMIUM, "ETHUSDT", T) == []  # another symbol's answer
    one = PREMIUM[1:-1]  # an object, not a list
    assert f.decode_premium(one, "BTCUSDT", T)[0].funding_interval_hours == 8.0


def test_funding_interval_unit_rule() -> None:
    assert cycle_hours(480) == (8.0, None) and cycle_hours(60) == (1.0, None)
    assert cycle_hours(1440) == (24.0, None) and cycle_hours(240) == (4.0, None)
    assert cycle_hours(8) == (8.0, "funding_cycle_hours")
    assert cycle_hours(4) == (4.0, "funding_cycle_hours")
    assert cycle_hours(90) == (None, "funding_cycle_unknown")
    assert cycle_hours(0) == (None, "funding_cycle_unknown")
    assert cycle_hours(2880) == (None, "funding_cycle_unknown")
    f, _ = feed()
    ev = f.decode_premium(PREMIUM.replace(b"480", b"90"), "BTCUSDT", T)[0]
    assert ev.funding_interval_hours is None and ev.funding_rate == 0.00025
    assert f.decode_premium(PREMIUM.replace(b"480", b"8"), "BTCUSDT", T)[0] \
        .funding_interval_hours == 8.0
    assert f.rules.cases == {"funding_cycle_unknown": 1, "funding_cycle_hours": 1}


def test_open_interest_contracts_to_base_and_usd() -> None:
    f, _ = feed()
    f.set_instruments(f.decode_instruments([INFO], T))
    body = b'{"symbol":"ETHUSDT","openInterest":"128345","time":1764505777345}'
    assert f.open_interest_path("ETHUSDT") == "/capi/v3/market/openInterest?symbol=ETHUSDT"
    inst = f.instruments["ETHUSDT"]
    ev = f.decode_open_interest(body, T, inst, 2000.0)
    assert (ev.venue, ev.symbol, ev.ts_exchange, ev.ts_local) == (
        "weex_futures", "ETHUSDT", 1764505777345 * MS, T)
    assert ev.open_interest == pytest.approx(128.345) and ev.value_usd == \
        pytest.approx(128.345 * 2000.0)
    assert f.decode_open_interest(body, T, None, None).value_usd is None
    with pytest.raises(DecodeError):
        f.decode_open_interest(body.replace(b"ETHUSDT", b"XUSDT"), T, None, None)


def test_rest_paths_no_backfill_by_id_and_no_depth_request() -> None:
    f, _ = feed()
    assert f.depth_path("BTCUSDT") is None and f.older_trades_path("BTCUSDT", "1") is None
    assert f.recent_trades_path("BTCUSDT") == "/capi/v3/market/trades?symbol=BTCUSDT&limit=1000"
    assert f.trades_path("BTCUSDT", 1) is None and f.funding_info_path() is None
    assert f.rest_headers(None) is None
    assert f.instrument_paths() == ["/capi/v3/market/exchangeInfo"]


@pytest.mark.parametrize("frame", [
    b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":1,"u":2,"l":15,"d":"CHANGED",'
    b'"b":[["NaN","1"]],"a":[]}',
    b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":1,"u":2,"l":15,"d":"CHANGED",'
    b'"b":[["1","-1"]],"a":[]}',
    b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":-1,"u":2,"b":[],"a":[]}',
    b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":1,"u":2,"b":[["1e300","1"]],"a":[]}',
    b'{"e":"trade","E":1788692246314,"s":"BTCUSDT","d":[{"T":1,"t":"x","p":"1","q":"0",'
    b'"m":true}]}',
    b'{"e":"trade","E":1788692246314,"s":"BTCUSDT","d":[{"T":1,"t":"x","p":"abc","q":"1",'
    b'"m":true}]}',
    b'{"e":"ticker","E":1788692246314,"s":"BTCUSDT","d":[{"m":"-5","i":"1"}]}',
    b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":1',
    b'not json',
    b'{"s":"BTCUSDT"}',
])
def test_malformed_frames_are_decode_errors_never_events(frame: bytes) -> None:
    f, sink = feed()
    with pytest.raises(DecodeError):
        f.decode(frame, T)
    assert sink.events == []


def test_unknown_streams_and_slow_path() -> None:
    f, sink = feed(symbols=("BTCUSDT",))
    other = lines("trades_prefix.ndjson")[3]  # ETHUSDT: not followed
    with pytest.raises(UnknownStream):
        f.decode(other, T)
    with pytest.raises(UnknownStream):
        f.decode(b'{"e":"kline","E":1,"s":"BTCUSDT"}', T)
    # laid out differently (spaces, key order): the slow path finds the stream
    [snap] = lines("depth_snapshot.ndjson")
    spaced = json.dumps(json.loads(snap), indent=1).encode()
    route = f.decode(spaced, T)
    assert route is not None and route.stream == "BTCUSDT@depth15"
    reordered = json.dumps({"s": "btcusdt", **json.loads(lines("ticker.ndjson")[0])}).encode()
    assert f.decode(reordered, T) is not None
    assert len(sink.events) == 2


def test_book_is_rebuilt_like_an_orderbook() -> None:
    """Decoded changes applied to an OrderBook (as the keeper does) equal the rebuild."""
    frames = lines("depth_snapshot.ndjson") + lines("depth_deltas.ndjson")
    f, sink = feed(("depth",))
    for frame in frames:
        f.decode(frame, T)
    book = OrderBook()
    for ev in sink.events:
        assert isinstance(ev, BookChange)
        if ev.is_snapshot:
            book.apply_snapshot(ev.bids, ev.asks)
        else:
            book.apply(ev.bids, ev.asks)
        assert book.bid_count == book.ask_count == 15  # the venue keeps the window
    bids, asks, _ = rebuild(frames)
    assert book.bids(20) == sorted(bids.items(), reverse=True)
    assert book.asks(20) == sorted(asks.items())


# -- the reconnect's REST backfill (module doc of decode: "Backfill") ---------------------------


def trade_frame(kind: str, trades: list[tuple[int, str, str, str, bool]]) -> bytes:
    """A ``trade``/``tradeSnapshot`` frame of BTCUSDT: (ms, uuid, price, size, buyer maker)."""
    d = [{"T": ms, "t": t, "p": p, "q": q, "v": "1", "m": m} for ms, t, p, q, m in trades]
    return msgspec.json.encode({"e": kind, "E": 1_800_000_000_000, "s": "BTCUSDT", "d": d})


def rest_body(trades: list[tuple[int, str, str, str, bool]]) -> bytes:
    """A ``/capi/v3/market/trades`` body, newest first: (ms, id, price, size, buyer maker)."""
    return msgspec.json.encode([
        {"id": i, "time": ms, "price": p, "qty": q, "quoteQty": "1", "isBestMatch": True,
         "isBuyerMaker": m} for ms, i, p, q, m in reversed(trades)])


MS0 = 1_800_000_000_000


def tape(n: int) -> list[tuple[int, str, str, str, bool]]:
    """``n`` trades (ms, REST id, price, size, buyer maker), two a millisecond, the pairs of
    equal content (the case a match must count)."""
    return [(MS0 + i // 2, str(1000 + i), "80000.1", "0.01", bool(i // 2 % 2)) for i in range(n)]


def uid(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def socket(rows: list[tuple[int, str, str, str, bool]], at: int) -> list:
    return [(ms, uid(at + k), p, q, m) for k, (ms, _, p, q, m) in enumerate(rows)]


def test_backfill_keeps_the_hole_only_matching_the_boundaries_by_content() -> None:
    """The old connection handed on trades 0..10 (the last millisecond cut in two: 10 seen, 11
    not), the new one starts at 31 (its millisecond's first trade, 30, cut off by the snapshot's
    20): REST's 60 trades give 11..30 under their REST ids, the 51 others under the socket's
    UUIDs or not at all (32..59: the new connection brings them)."""
    f, sink = feed(("trades",), symbols=("BTCUSDT",))
    rows = tape(60)
    f.decode(trade_frame("tradeSnapshot", socket(rows[:11], 0)), T)
    assert f.recent_trades_path("BTCUSDT")  # the reconnect's request: the next snapshot is new
    f.decode(trade_frame("tradeSnapshot", socket(rows[31:51], 31)), T)
    handed = [e for e in sink.events if isinstance(e, Trade)]
    assert len(handed) == 31
    got = f.decode_trades(rest_body(rows), "BTCUSDT", T)
    assert [t.ts_exchange for t in got] == sorted(t.ts_exchange for t in got)
    assert sorted(t.ts_exchange // MS for t in got) == sorted(r[0] for r in rows[:51])
    by_rest = [t for t in got if not t.trade_id.startswith("0000")]
    # (the two trades of a boundary millisecond have one content: which REST id is which
    # is not known, only how many of them the hole holds)
    assert sorted(t.ts_exchange // MS for t in by_rest) == [r[0] for r in rows[11:31]]
    assert {t.trade_id for t in got} - {t.trade_id for t in by_rest} == \
        {uid(i) for i in [*range(11), *range(31, 51)]}
    assert {(t.price, t.size, t.side) for t in got} == {(80000.1, 0.01, "buy"),
                                                       (80000.1, 0.01, "sell")}
    # the stream goes on: nothing it brings is dropped (the hole is older than all of it)
    f.decode(trade_frame("trade", socket(rows[50:60], 50)), T)
    assert len([e for e in sink.events if isinstance(e, Trade)]) == 31 + 9
    assert f.cases == {"trades_beyond_snapshot": 1}


def test_backfill_before_the_new_snapshot_first_source_wins() -> None:
    """REST answers before the new connection's snapshot: the trades the socket did not hand
    on are kept under their REST ids and the socket's copies dropped when they come; trades
    after the REST answer go through."""
    f, sink = feed(("trades",), symbols=("BTCUSDT",))
    rows = tape(50)
    f.decode(trade_frame("tradeSnapshot", socket(rows[:10], 0)), T)
    f.recent_trades_path("BTCUSDT")
    got = f.decode_trades(rest_body(rows[:40]), "BTCUSDT", T)
    assert {t.trade_id for t in got} == {uid(i) for i in range(10)} | \
        {r[1] for r in rows[10:40]}
    before = sink.duplicates
    f.decode(trade_frame("tradeSnapshot", socket(rows[30:50], 30)), T)
    assert sink.duplicates == before + 10  # 30..39: the backfill's already
    new = [e.trade_id for e in sink.events if isinstance(e, Trade)][10:]
    assert new == [uid(i) for i in range(40, 50)]
    assert f.cases == {}  # the snapshot met the backfill: no hole beyond it


def test_backfill_without_an_outage_stores_nothing_twice() -> None:
    """A symbol whose stream did not break (another connection reconnected): every REST trade
    is one the socket handed on, under its UUID."""
    f, _ = feed(("trades",), symbols=("BTCUSDT",))
    rows = tape(30)
    f.decode(trade_frame("tradeSnapshot", socket(rows[:20], 0)), T)
    f.decode(trade_frame("trade", socket(rows[20:30], 20)), T)
    f.recent_trades_path("BTCUSDT")
    got = f.decode_trades(rest_body(rows), "BTCUSDT", T)
    assert sorted(t.trade_id for t in got) == [uid(i) for i in range(30)]
    with pytest.raises(DecodeError):
        f.decode_trades(b'[{"id":"1","time":0,"price":"1","qty":"1","isBuyerMaker":true}]',
                        "BTCUSDT", T)


def test_the_backfill_matches_every_trade_of_the_window_kept() -> None:
    """Past twice ``TRADES_KEPT`` trades the ledger forgets the oldest; the latest are still
    matched by content: a backfill of the last REST page stores none of them twice."""
    f, sink = feed(("trades",), symbols=("BTCUSDT",))
    rows = tape(2 * TRADES_KEPT + 500)
    for k in range(0, len(rows), 50):
        f.decode(trade_frame("trade", socket(rows[k : k + 50], k)), T)
    assert len([e for e in sink.events if isinstance(e, Trade)]) == len(rows)
    f.recent_trades_path("BTCUSDT")
    got = f.decode_trades(rest_body(rows[-RECENT_TRADES:]), "BTCUSDT", T)
    assert sorted(t.trade_id for t in got) == \
        [uid(i) for i in range(len(rows) - RECENT_TRADES, len(rows))]


@pytest.mark.parametrize(("frame", "channel"), [
    (b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":1,"u":2,"b":[["NaN","1"]],"a":[]}',
     "depth"),
    (b'{"e":"depthSnapshot","E":1788692246314,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[["1","x"]]}',
     "depth"),
    (b'{"e":"trade","E":1788692246314,"s":"BTCUSDT","d":[{"T":1,"t":"x","p":"abc","q":"1",'
     b'"m":true}]}', "trades"),
    (b'{"e":"ticker","E":1788692246314,"s":"BTCUSDT","d":[{"m":"-5","i":"1"}]}', "markPrice"),
    (b'{"e":"depth","E":1788692246314,"s":"BTCUSDT","U":1', "depth"),  # cut short
    (b'{"e":"depth"', "other"),
    (b'not json', "other"),
])
def test_a_bad_frame_is_counted_on_its_channel(frame: bytes, channel: str) -> None:
    """The fast path's one decode fails on a bad value or a frame cut short; the error names
    the channel of the stream the frame's first bytes name (the decode-error counter's
    label)."""
    f, sink = feed()
    with pytest.raises(DecodeError) as info:
        f.decode(frame, T)
    assert info.value.channel == channel
    assert sink.events == []
