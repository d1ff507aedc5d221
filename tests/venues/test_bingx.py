"""BingX swap: every real frame and REST body of the fixtures decoded field by field, gzip and
the heartbeat, the book rule on an incrDepth sequence, trade ids and duplicates, malformed
frames."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.events import BookChange, DerivativeTicker, OpenInterest, Quote, Trade
from analyzer.venues import VENUES
from analyzer.venues.base import DecodeError, UnknownStream, VenueError
from analyzer.venues.bingx import MARKETS, BingxFeed
from analyzer.venues.bingx.rest import interval_from_history, trade_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bingx"
MS = 1_000_000
ALL = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.duplicates = 0

    def on_trade(self, ev: Trade) -> None:
        self.events.append(ev)

    on_book = on_quote = on_ticker = on_open_interest = on_liquidation = on_trade

    def on_trade_gap(self, symbol: str, first: int, last: int) -> None:
        raise AssertionError("no trade ids")

    def on_duplicate(self) -> None:
        self.duplicates += 1


def feed(symbols: tuple[str, ...] = ("ETH-USDT",), **options: Any) -> tuple[BingxFeed, Sink]:
    sink = Sink()
    return BingxFeed(MARKETS["bingx_swap"], list(symbols), ALL, sink,  # type: ignore[arg-type]
                     options=options), sink


def frame(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def rest(path: str) -> bytes:
    for line in (FIXTURES / "rest_bodies.ndjson").read_text().splitlines():
        row = json.loads(line)
        if row["path"] == path:
            return row["raw"].encode()
    raise KeyError(path)


def wire(f: BingxFeed, text: bytes, ts: int = 7) -> None:
    """A frame as it comes: gzip, inflated, looked at, decoded."""
    inflated = f.inflate(gzip.compress(text))
    assert inflated == text
    assert f.control(inflated) is None
    f.decode(inflated, ts)


def test_registry_market_and_limits() -> None:
    market, cls = VENUES["bingx_swap"]
    assert cls is BingxFeed and market.snapshot_source == "ws" and market.heartbeat is None
    assert market.max_streams == 200 and market.max_messages_per_second == 10.0
    assert (market.fees.taker, market.fees.maker) == (0.0005, 0.0002)
    f, _ = feed()
    assert f.streams == ["ETH-USDT@incrDepth", "ETH-USDT@trade", "ETH-USDT@bookTicker",
                         "ETH-USDT@markPrice"]
    assert f.ws_endpoint("wss://open-api-swap.bingx.com") == (
        "wss://open-api-swap.bingx.com/swap-market")
    subs = f.subscribe_messages(f.streams)
    assert len(subs) == 4 and json.loads(subs[-1]) == {  # the book last (its doc)
        "id": "ETH-USDT@incrDepth", "reqType": "sub", "dataType": "ETH-USDT@incrDepth"}
    assert json.loads(subs[0])["dataType"] == "ETH-USDT@trade"
    assert json.loads(f.unsubscribe_messages(["ETH-USDT@incrDepth"])[0])["reqType"] == "unsub"
    assert f.book_stream("ETH-USDT") == "ETH-USDT@incrDepth"


def test_real_trade_frame_each_fill_once_with_stable_ids() -> None:
    f, sink = feed()
    wire(f, frame("ETH-USDT_trade.json"))
    trades = sink.events
    assert len(trades) == 23 and all(isinstance(t, Trade) for t in trades)
    assert [t.ts_exchange for t in trades] == sorted(t.ts_exchange for t in trades)
    first, last = trades[0], trades[-1]
    assert first == Trade("bingx_swap", "ETH-USDT", 1714650252503 * MS, 7,
                          "1714650252503:b:2984.42:6.78:0", 2984.42, 6.78, "buy")
    assert last == Trade("bingx_swap", "ETH-USDT", 1714650253104 * MS, 7,
                         "1714650253104:b:2983.48:1.92:0", 2983.48, 1.92, "buy")
    same = [t for t in trades if t.ts_exchange == 1714650252640 * MS]
    assert len(same) == 11 and {t.side for t in same} == {"sell"}  # m true: the taker sold
    assert [t.trade_id.rsplit(":", 1)[1] for t in same] == [str(n) for n in range(11)]
    assert len({t.trade_id for t in trades}) == 23
    # the same frame again (a duplicate) adds nothing; one more fill of a known key does
    wire(f, frame("ETH-USDT_trade.json"), 8)
    assert len(sink.events) == 23 and sink.duplicates == 1 and f.duplicate_trades == 23
    wire(f, b'{"code":0,"dataType":"ETH-USDT@trade","data":[{"q":"0.01","p":"2983.92",'
            b'"T":1714650252641,"m":true,"s":"ETH-USDT"},{"q":"0.01","p":"2983.92",'
            b'"T":1714650252641,"m":true,"s":"ETH-USDT"},{"q":"0.01","p":"2983.92",'
            b'"T":1714650252641,"m":true,"s":"ETH-USDT"}]}', 9)
    assert [t.trade_id for t in sink.events[23:]] == ["1714650252641:s:2983.92:0.01:2"]


def test_real_book_ticker_and_mark_frames() -> None:
    f, sink = feed()
    wire(f, frame("ETH-USDT_bookTicker.json"))
    wire(f, frame("ETH-USDT_markPrice.json"))
    assert sink.events == [
        Quote("bingx_swap", "ETH-USDT", 1714650946596 * MS, 7, 2993.59, 13.24, 2993.67, 9.78,
              -1),
        DerivativeTicker("bingx_swap", "ETH-USDT", 1714650884021 * MS, 7, mark_price=2999.63),
    ]
    assert f.marks == {"ETH-USDT": 2999.63}


def test_incr_depth_sequence_and_the_id_rule() -> None:
    """The replay fixture's sequence (levels of the real depth20 frame): the snapshot, updates
    with skips of 2, asks worst first; then the rule on made-up steps: by default the docs'
    strict +1 (a skip is a gap, counted), ``max_id_skip`` lets skips up to it through."""
    f, sink = feed()
    for line in (FIXTURES / "replay.ndjson").read_text().splitlines()[:4]:
        wire(f, line.encode())
    snap, *updates = sink.events
    assert isinstance(snap, BookChange) and snap.is_snapshot
    assert (snap.first_id, snap.last_id, snap.prev_id) == (1000, 1000, -1)
    assert snap.bids[0] == (2990.64, 14.13) and snap.asks[0] == (2991.06, 12.8)
    assert len(snap.bids) == len(snap.asks) == 20
    assert snap.ts_exchange == 1714650397486 * MS
    assert [u.last_id for u in updates] == [1001, 1003, 1005]
    assert updates[1].asks[0] == (2990.9, 1.0) and updates[1].asks[-1] == (2990.71, 0.0)
    rules = f.rules

    def step(last: int, new: int) -> bool:
        return rules.follows(last, BookChange("bingx_swap", "ETH-USDT", 0, 0, False, [], [],
                                              new, new))

    assert f.Options().max_id_skip == 1  # the docs' rule is the default
    assert [step(1000, 1001), step(1001, 1003), step(1003, 1023)] == [True, False, False]
    assert [step(1023, 1044), step(1044, 1044), step(1044, 1040)] == [False, False, False]
    assert rules.cases == {"id_skip": 2, "id_jump": 1, "id_back": 1}
    assert rules.is_stale(1005, updates[2]) and not rules.is_stale(1004, updates[2])
    assert not rules.follows(1001, updates[1]) and rules.cases["id_skip"] == 3
    lenient, _ = feed(max_id_skip=20)  # for live traffic whose skips prove harmless
    assert lenient.rules.follows(1001, updates[1]) and lenient.rules.follows(1003, BookChange(
        "bingx_swap", "ETH-USDT", 0, 0, False, [], [], 1023, 1023))
    assert not lenient.rules.follows(1023, BookChange("bingx_swap", "ETH-USDT", 0, 0, False,
                                                      [], [], 1044, 1044))
    assert lenient.rules.cases == {"id_skip": 2, "id_jump": 1, "id_back": 0}


def test_gzip_ping_pong_acks_and_errors() -> None:
    f, _ = feed()
    assert f.control(f.inflate(gzip.compress(b"Ping"))) == "ping" and f.reply(b"Ping") == b"Pong"
    ack = b'{"id":"ETH-USDT@trade","code":0,"msg":"","dataType":"","data":null}'
    assert f.control(ack) == "ack" and f.decode(ack, 1) is None
    with pytest.raises(DecodeError, match="truncated"):
        f.inflate(gzip.compress(b'{"code":0}')[:-8])
    with pytest.raises(DecodeError):
        f.inflate(b"\x1f\x8b\x08\x00" + b"\xff" * 30)
    with pytest.raises(DecodeError, match="not a gzip"):
        f.inflate(b"\x00\x01")
    refused = b'{"id":"ETH-USDT@markPrice","code":80015,"msg":"dataType not support",' \
              b'"dataType":"","data":null}'
    assert f.control(refused) is None
    with pytest.raises(VenueError, match="80015"):
        f.decode(refused, 1)
    with pytest.raises(UnknownStream):  # a refused topic's leaked frame is no event
        f.decode(frame("ETH-USDT_markPrice.json"), 1)
    with pytest.raises(UnknownStream):
        f.decode(b'{"code":0,"dataType":"BTC-USDT@trade","data":[]}', 1)


@pytest.mark.parametrize("bad", [
    b'{"code":0,"dataType":"ETH-USDT@incrDepth","data":{"action":"all","lastUpdateId":1,'
    b'"bids":[["x","1"]],"asks":[]}}',
    b'{"code":0,"dataType":"ETH-USDT@incrDepth","data":{"action":"all","lastUpdateId":1,'
    b'"bids":[["1","-2"]],"asks":[]}}',
    b'{"code":0,"dataType":"ETH-USDT@incrDepth","data":{"action":"nope","lastUpdateId":1}}',
    b'{"code":0,"dataType":"ETH-USDT@trade","data":[{"q":"0","p":"1","T":1,"m":true}]}',
    b'{"code":0,"dataType":"ETH-USDT@markPrice","data":{"p":"NaN","E":1}}',
    b'{"code":0,"dataType":"ETH-USDT@bookTicker","data":{"b":"1"}}',
    b"<html>502</html>",
])
def test_malformed_frames_are_decode_errors(bad: bytes) -> None:
    f, sink = feed()
    with pytest.raises(DecodeError):
        f.decode(bad, 1)
    assert sink.events == []


def test_rest_bodies() -> None:
    f, _ = feed(("BTC-USDT", "ETH-USDT"))
    listing = f.decode_instruments([rest("/openApi/swap/v2/quote/contracts")], 5)
    btc = listing["BTC-USDT"]
    assert (btc.market, btc.base, btc.quote, btc.inverse, btc.contract_size, btc.tick_size,
            btc.lot_size, btc.expiry, btc.contract_value) == (
        "perpetual", "BTC", "USDT", False, 1.0, 0.1, 0.0001, None, 1.0)
    assert listing["ETH-USDT"].tick_size == 0.01 and listing["ETH-USDT"].lot_size == 0.01
    [tk] = f.decode_premium(rest("/openApi/swap/v2/quote/premiumIndex"), "BTC-USDT", 9)
    # the 2023 body has no fundingIntervalHours: unknown (counted), never assumed
    assert tk == DerivativeTicker("bingx_swap", "BTC-USDT", 9, 9, 42216.4, 42219.9, 0.000251,
                                  1702742400000 * MS, None)
    assert f.interval_unknown == 1
    assert f.decode_funding_history(rest("/openApi/swap/v2/quote/fundingRate"),
                                    "QNT-USDT") == 8.0
    assert f.funding_hours == {"QNT-USDT": 8.0}
    assert interval_from_history([0, 4 * 3_600_000, 12 * 3_600_000]) == 4.0
    newer = (b'{"code":0,"msg":"","data":{"symbol":"BTC-USDT","markPrice":"77190","indexPrice":'
             b'"77200","lastFundingRate":"0.0001","nextFundingTime":1760000000000,'
             b'"fundingIntervalHours":4}}')
    assert f.decode_premium(newer, "BTC-USDT", 9)[0].funding_interval_hours == 4.0
    row = newer[newer.index(b"{", 1):-1]
    assert f.decode_funding_info(b'{"code":0,"msg":"","data":[' + row + b"]}") == {
        "BTC-USDT": 4.0}
    oi = f.decode_open_interest(rest("/openApi/swap/v2/quote/openInterest"), 9, None, 0.5)
    assert oi == OpenInterest("bingx_swap", "EOS-USDT", 1702719692859 * MS, 9, 7409966.52 / 0.5,
                              7409966.52)
    trades = f.decode_trades(rest("/openApi/swap/v2/quote/trades"), "BTC-USDT", 9)
    assert trades[0].ts_exchange < trades[-1].ts_exchange
    assert trades[-1] == Trade("bingx_swap", "BTC-USDT", 1702719269849 * MS, 9,
                               trade_key(1702719269849, True, 42214.0, 0.0248, 0), 42214.0,
                               0.0248, "sell")
    with pytest.raises(VenueError):
        f.decode_premium(b'{"code":109425,"msg":"Symbol does not exist","data":null}', "X", 1)
    with pytest.raises(DecodeError):
        f.decode_open_interest(rest("/openApi/swap/v2/quote/openInterest"), 9, None, None)
