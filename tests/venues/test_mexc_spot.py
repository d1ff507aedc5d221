"""MEXC spot (``mexc_spot``): the protobuf wire reader against frames written out by hand from
the .proto field numbers and against real frames (tests/fixtures/mexc/spot_frames.ndjson, see
its PROVENANCE.md), broken frames, the book rule's cases, control frames, REST bodies and the
recordings' reading. End to end through the local exchange: test_mexc_spot_exchange.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from analyzer.events import BookChange, Quote, Trade
from analyzer.exchange.recordings import FRAME, INFO, SNAPSHOT
from analyzer.feed.books import LIVE, SYNCING, BookKeeper
from analyzer.venues import VENUES
from analyzer.venues.base import DecodeError, UnknownStream, VenueError
from analyzer.venues.mexc import protobuf as pb
from analyzer.venues.mexc.decode import MexcFeed, MexcRules
from analyzer.venues.mexc.emulate.recordings import Inference, MexcRecordings
from analyzer.venues.mexc.emulate.spot import SpotReplay
from analyzer.venues.mexc.emulate.spot_render import bad_price
from analyzer.venues.mexc.spot import MexcSpotFeed, deal_ids

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mexc"
MARKET = VENUES["mexc_spot"][0]
MS = 1_000_000
T = 7

# -- frames written out by hand (keys: field << 3 | wire type; 313-315 take two bytes) ---------
# The docs' examples' values ("Diff.Depth Stream", "Trade Streams", "Individual Symbol Book
# Ticker Streams"), with a second level, a tradeId and a version added.

DEPTH = (
    b"\x0a\x2f" b"spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"  # 1 channel (47)
    + b"\x1a\x07" b"BTCUSDT"  # 3 symbol
    + b"\x30" + bytes.fromhex("bad2c3d1c432")  # 6 sendTime 1736411507002 (varint)
    + b"\xca\x13\x92\x01"  # 313 publicAggreDepths, 146 bytes (a two-byte length)
    + b"\x0a\x16" b"\x0a\x08" b"92880.01" b"\x12\x0a" b"0.50000000"  # 1 an ask: price, quantity
    + b"\x12\x16" b"\x0a\x08" b"92877.58" b"\x12\x0a" b"0.00000000"  # 2 a bid (removed)
    + b"\x12\x16" b"\x0a\x08" b"92877.00" b"\x12\x0a" b"1.25000000"  # 2 a bid
    + b"\x1a\x27" b"spot@public.aggre.depth.v3.api.pb@100ms"  # 3 eventType
    + b"\x22\x0b" b"10589632359"  # 4 fromVersion
    + b"\x2a\x0b" b"10589632361"  # 5 toVersion
    + b"\x30" + bytes.fromhex("b9d2c3d1c432")  # 6 lastOrderCreateTime (not read)
)
DEALS = (
    b"\x0a\x2f" b"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
    + b"\x1a\x07" b"BTCUSDT"
    + b"\x30" + bytes.fromhex("bca9d9d0c432")  # 6 sendTime 1736409765052
    + b"\xd2\x13\x96\x01"  # 314 publicAggreDeals, 150 bytes
    + b"\x0a\x1f" b"\x0a\x08" b"93220.00" b"\x12\x0a" b"0.04438243"  # 1 a deal: price, quantity
    + b"\x18\x02" + b"\x20" + bytes.fromhex("bba9d9d0c432")  # 3 tradeType 2, 4 time ...051
    + b"\x0a\x4a" b"\x0a\x08" b"93220.01" b"\x12\x0a" b"0.00100000" b"\x18\x01"
    + b"\x20" + bytes.fromhex("bca9d9d0c432")
    + b"\x2a\x29" b"731901896985399296X0_731901896985399297X0"  # 5 tradeId (skipped)
    + b"\x12\x27" b"spot@public.aggre.deals.v3.api.pb@100ms"  # 2 eventType
)
BOOK_TICKER = (
    b"\x0a\x34" b"spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
    + b"\x1a\x07" b"BTCUSDT"
    + b"\x30" + bytes.fromhex("91b0e7d1c432")  # 6 sendTime 1736412092433
    + b"\xda\x13\x3b"  # 315 publicAggreBookTicker, 59 bytes
    + b"\x0a\x08" b"93387.28" b"\x12\x07" b"3.73485"  # 1 bidPrice, 2 bidQuantity
    + b"\x1a\x08" b"93387.29" b"\x22\x08" b"7.669875"  # 3 askPrice, 4 askQuantity
    + b"\x2a\x0b" b"36913565463"  # 5 version
    + b"\x30" + bytes.fromhex("8eb0e7d1c432")  # 6 lastOrderCreateTime
)
DEPTH_CH = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"
DEALS_CH = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
TICKER_CH = "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
# the refusal public clients record (text as several of them quote it)
REFUSAL = ('{"id":0,"code":0,"msg":"Not Subscribed successfully! '
           '[spot@public.deals.v3.api@BTCUSDT].  Reason： Blocked! "}').encode()


def real(name: str) -> dict[str, Any]:
    for line in (FIXTURES / "spot_frames.ndjson").read_text().splitlines():
        doc = json.loads(line)
        if doc["name"].startswith(name):
            return doc
    raise KeyError(name)


def rest_body(path: str) -> bytes:
    for line in (FIXTURES / "spot_rest_bodies.ndjson").read_text().splitlines():
        doc = json.loads(line)
        if doc["path"] == path:
            return doc["raw"].encode()
    raise KeyError(path)


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *a: self.events.extend(a if name.startswith("on_") else ())


def feed(symbols: tuple[str, ...] = ("BTCUSDT",), **options: Any) -> tuple[Any, Sink]:
    market, cls = VENUES["mexc_spot"]
    sink = Sink()
    return cls(market, list(symbols), ["depth", "trades", "bookTicker"], sink,
               options=options), sink


# -- the market and the feed ---------------------------------------------------------------------


def test_spot_market_spec_and_the_feed_class() -> None:
    m = MARKET
    assert (m.exchange, m.kind, m.is_spot, m.snapshot_source) == ("mexc", "spot", True, "rest")
    assert (m.ws_url, m.rest_url) == ("wss://wbs-api.mexc.com", "https://api.mexc.com")
    assert (m.max_streams, m.heartbeat) == (30, b'{"method":"PING"}')
    assert (m.fees.maker, m.fees.taker) == (0.0, 0.0005)
    f, _ = feed(("btcusdt",))
    assert type(f) is MexcSpotFeed and VENUES["mexc_spot"][1] is MexcFeed
    assert f.ws_endpoint(m.ws_url) == "wss://wbs-api.mexc.com/ws"
    assert f.streams == [DEALS_CH, DEPTH_CH, TICKER_CH]  # deals first, books before quotes
    assert [json.loads(x) for x in f.subscribe_messages([DEPTH_CH])] == [
        {"method": "SUBSCRIPTION", "params": [DEPTH_CH], "id": 1}]
    assert json.loads(f.unsubscribe_messages([DEPTH_CH])[0])["method"] == "UNSUBSCRIPTION"
    assert f.depth_path("BTCUSDT") == "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    assert f.recent_trades_path("BTCUSDT") == "/api/v3/trades?symbol=BTCUSDT&limit=1000"
    assert None is f.gap_fill_path("", 0) is f.trades_path("X", 1) is f.open_interest_path("X")
    assert None is f.funding_info_path() is f.premium_path("X")
    assert isinstance(f.rules, MexcRules) and f.rules.spot  # (one rule class: both markets)
    assert f.inflate(b"\x0a\x01x") == b"\x0a\x01x"  # so that captures keep frames byte-exact
    tens, _ = feed(interval="10ms", depth_limit=5000, quote_versions=False)
    assert tens.book_stream("ETHUSDT") == "spot@public.aggre.depth.v3.api.pb@10ms@ETHUSDT"
    assert tens.snapshot_levels == 5000
    for bad in ({"depth_limit": 5001}, {"interval": "1s"}, {"nope": 1}):
        with pytest.raises(msgspec.ValidationError):
            MexcFeed.check_options(MARKET, bad)
    assert MexcFeed.check_options(MARKET, {"interval": "10ms"}).interval == "10ms"


# -- the wire reader, frames written by hand -------------------------------------------------------


def test_depth_frame_field_by_field() -> None:
    channel, symbol, ms, body, start, stop = pb.read_push(DEPTH)
    assert (channel, symbol, ms, body) == (DEPTH_CH.encode(), b"BTCUSDT", 1736411507002, 313)
    assert stop == len(DEPTH) and stop - start == 146
    asks, bids, first, last = pb.read_depth(DEPTH, start, stop)
    assert asks == [(92880.01, 0.5)] and bids == [(92877.58, 0.0), (92877.0, 1.25)]
    assert (first, last) == (10589632359, 10589632361)
    f, sink = feed()
    assert f.control(DEPTH) is None and f.decode(DEPTH, T).channel == "depth"
    assert sink.events == [BookChange("mexc_spot", "BTCUSDT", 1736411507002 * MS, T, False,
                                      [(92877.58, 0.0), (92877.0, 1.25)], [(92880.01, 0.5)],
                                      10589632359, 10589632361, -1)]


def test_deals_frame_field_by_field() -> None:
    channel, _, ms, body, start, stop = pb.read_push(DEALS)
    assert (channel, ms, body, stop - start) == (DEALS_CH.encode(), 1736409765052, 314, 150)
    assert pb.read_deals(DEALS, start, stop) == [(93220.0, 0.04438243, 2, 1736409765051),
                                                 (93220.01, 0.001, 1, 1736409765052)]
    f, sink = feed()
    f.decode(DEALS, T)
    assert sink.events == [
        Trade("mexc_spot", "BTCUSDT", 1736409765051 * MS, T,
              "1736409765051-2-93220.0-0.04438243", 93220.0, 0.04438243, "sell"),
        Trade("mexc_spot", "BTCUSDT", 1736409765052 * MS, T, "1736409765052-1-93220.01-0.001",
              93220.01, 0.001, "buy")]


def test_book_ticker_frame_field_by_field() -> None:
    _, _, ms, body, start, stop = pb.read_push(BOOK_TICKER)
    assert (ms, body, stop - start) == (1736412092433, 315, 59)
    assert pb.read_book_ticker(BOOK_TICKER, start, stop) == (93387.28, 3.73485, 93387.29,
                                                             7.669875, 36913565463)
    f, sink = feed()
    f.decode(BOOK_TICKER, T)
    assert sink.events == [Quote("mexc_spot", "BTCUSDT", 1736412092433 * MS, T, 93387.28,
                                 3.73485, 93387.29, 7.669875, 36913565463)]
    off, sink = feed(quote_versions=False)
    off.decode(BOOK_TICKER, T)
    assert sink.events[0].update_id == -1


def test_unknown_fields_and_any_order_are_read() -> None:
    """Fields the reader does not know (a symbolId, a createTime, a fixed64, a fixed32, a new
    string) are skipped by their wire type, wherever they come."""
    extra = (b"\x22\x05" b"abcde" + b"\x29" + bytes(8) + b"\x3d" + bytes(4)
             + b"\xa2\x06\x03xyz")  # 4 symbolId, 5 as fixed64, 7 fixed32, 100 a string
    moved = extra + DEPTH[DEPTH.index(b"\x1a\x07"):] + DEPTH[:DEPTH.index(b"\x1a\x07")]
    assert pb.read_push(moved)[:4] == pb.read_push(DEPTH)[:4]
    f, sink = feed()
    f.decode(moved, T)
    assert sink.events[0].last_id == 10589632361
    assert list(pb.fields(b"\x08\x96\x01\x12\x02hi")) == [(1, 0, 150), (2, 2, b"hi")]


# -- real frames -----------------------------------------------------------------------------------


def test_real_book_tickers_field_by_field() -> None:
    """Two recorded bookTicker pushes (2026-09-23 10ms, 2026-09-25 100ms): the wrapper holds
    channel, symbol and sendTime; the body the 2026-06 version and lastOrderCreateTime."""
    ten = bytes.fromhex(real("aggre.bookTicker@10ms")["hex"])
    assert [(f, w) for f, w, _ in pb.fields(ten)] == [(1, 2), (3, 2), (6, 0), (315, 2)]
    channel, symbol, ms, body, start, stop = pb.read_push(ten)
    assert (channel, symbol, ms, body) == (
        b"spot@public.aggre.bookTicker.v3.api.pb@10ms@BTCUSDT", b"BTCUSDT", 1790145447239, 315)
    assert [(f, v) for f, _, v in pb.fields(ten, start, stop)] == [
        (1, b"86503.92"), (2, b"14.91335308"), (3, b"86503.93"), (4, b"0.004965"),
        (5, b"81999275445"), (6, 1790145447233)]
    f, sink = feed(interval="10ms")
    f.decode(ten, T)
    assert sink.events == [Quote("mexc_spot", "BTCUSDT", 1790145447239 * MS, T, 86503.92,
                                 14.91335308, 86503.93, 0.004965, 81999275445)]
    hundred = bytes.fromhex(real("aggre.bookTicker@100ms")["hex"])
    f, sink = feed()
    f.decode(hundred, T)
    assert sink.events == [Quote("mexc_spot", "BTCUSDT", 1790281243450 * MS, T, 84270.0,
                                 0.006387, 84270.01, 5.42169969, 82164153436)]


def test_real_deals_field_by_field() -> None:
    """A recorded deals push (2026-09-25): two deals, their tradeIds (field 5, skipped), and
    the body's eventType."""
    frame = bytes.fromhex(real("aggre.deals@100ms")["hex"])
    _, _, ms, body, start, stop = pb.read_push(frame)
    assert (ms, body) == (1790281246250, 314)
    items = list(pb.fields(frame, start, stop))
    assert [f for f, _, _ in items] == [1, 1, 2]
    assert items[2][2] == b"spot@public.aggre.deals.v3.api.pb@100ms"
    first = items[0][2]
    assert isinstance(first, bytes)
    assert list(pb.fields(first)) == [(1, 2, b"84270"), (2, 2, b"0.00099829"), (3, 0, 2),
                                      (4, 0, 1790281246176),
                                      (5, 2, b"731901896985399296X0_731901896985399297X0")]
    f, sink = feed()
    f.decode(frame, T)
    assert sink.events == [
        Trade("mexc_spot", "BTCUSDT", 1790281246176 * MS, T, "1790281246176-2-84270.0-0.00099829",
              84270.0, 0.00099829, "sell"),
        Trade("mexc_spot", "BTCUSDT", 1790281246177 * MS, T, "1790281246177-1-84270.0-0.00019169",
              84270.0, 0.00019169, "buy")]


def test_real_frames_of_other_channels_and_the_ack() -> None:
    depth5 = bytes.fromhex(real("limit.depth@5")["hex"])
    assert pb.read_push(depth5)[3] == 303  # publicLimitDepths: read, then not ours
    f, _ = feed()
    with pytest.raises(UnknownStream):
        f.decode(depth5, T)
    ack = real("ack of aggre.deals")["text"].encode()
    assert f.control(ack) == "ack" and f.decode(ack, T) is None


# -- broken frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, frame", [("depth", DEPTH), ("deals", DEALS),
                                          ("ticker", BOOK_TICKER)])
def test_every_truncation_is_a_decode_error_and_the_stream_goes_on(name: str,
                                                                   frame: bytes) -> None:
    """Cut at every byte: a DecodeError (or an UnknownStream where the channel itself is cut),
    never an event; the whole frame after it still decodes."""
    f, sink = feed()
    for cut in range(len(frame)):
        with pytest.raises(DecodeError):
            f.decode(frame[:cut], T)
    assert sink.events == []
    f.decode(frame, T)
    assert len(sink.events) == (2 if name == "deals" else 1)


@pytest.mark.parametrize("bad", [
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",  # wire type 4 (a group end)
    b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a varint of 11 bytes
    b"\x02\x00",  # field number 0
    b"\x0b\x0a\x00",  # wire type 3 (a group)
    b"\x09" + bytes(7),  # a fixed64 cut short
    b"",  # nothing
    b"\x0a\x2f" + DEPTH_CH.encode(),  # a push with no body
    DEPTH.replace(b"92880.01", b"not-a-no"),  # a price that is no number
    DEPTH.replace(b"92880.01", b"nan\x00\x00\x00\x00\x00"),
    DEPTH.replace(b"0.50000000", b"-1.000000"[:10].ljust(10, b"0")),  # a negative quantity
    DEPTH.replace(b"10589632359", b"1058963236x"),  # a version that is no number
    DEPTH.replace(b"\x22\x0b10589632359", b"\x22\x0b10589632362"),  # fromVersion > toVersion
    DEALS.replace(b"\x18\x02", b"\x18\x03"),  # tradeType 3
    DEALS.replace(DEALS_CH.encode(), DEPTH_CH.encode()),  # a deals body on the depth channel
    BOOK_TICKER.replace(b"\x1a\x07BTCUSDT", b"\x1a\x07ETHUSDT"),  # another symbol
    b'{"id":0,"code":0,',  # JSON cut
])
def test_malformed_frames_are_decode_errors(bad: bytes) -> None:
    f, sink = feed()
    with pytest.raises(DecodeError):
        f.decode(bad, T)
    assert sink.events == []


def test_bad_price_copy_of_the_local_exchange_is_a_depth_error() -> None:
    f, _ = feed()
    with pytest.raises(DecodeError, match="no number") as exc:
        f.decode(bad_price(DEPTH), T)
    assert exc.value.channel == "depth"


# -- the book rule -------------------------------------------------------------------------------


def change(first: int, last: int, bids: list[tuple[float, float]] | None = None) -> BookChange:
    return BookChange("mexc_spot", "BTCUSDT", T, T, False, bids or [], [], first, last)


def test_rule_cases_on_version_ranges() -> None:
    """The spot docs' recipe on ``fromVersion..toVersion`` (spot.py's module doc): stale if it
    ends at or below the snapshot; the first applied holds the snapshot's version + 1; then
    each starts at the last's end + 1; every other step counted by name."""
    r = MexcRules(spot=True)
    assert r.is_stale(100, change(95, 100)) and not r.is_stale(100, change(95, 101))
    assert r.bridges(100, change(95, 105))  # straddles: the docs' step 7
    assert r.bridges(100, change(101, 105))  # starts right after (step 6 read literally: no)
    assert not r.bridges(100, change(102, 105))  # a hole: a newer snapshot is asked
    assert r.follows(105, change(106, 110)) and r.follows(105, change(106, 106))
    assert not r.follows(105, change(107, 110))  # a skip: a gap
    assert not r.follows(105, change(104, 110))  # reaches back over the last: a gap
    assert not r.follows(105, change(100, 105))  # wholly old: dropped as stale
    assert r.cases == {"version_skip": 1, "version_repeat": 1, "bridge_skip": 1,
                       "bridge_next": 1, "version_overlap": 1}
    assert MexcRules().cases == {"version_skip": 0, "version_repeat": 0, "bridge_skip": 0}


def test_book_keeper_with_the_rule_buffers_bridges_detects_gaps_and_resyncs() -> None:
    gaps: list[Any] = []
    asked: list[str] = []
    f, _ = feed()
    keeper = BookKeeper("mexc_spot", ["BTCUSDT"], f.rules, asked.append, gaps.append,
                        lambda q: None, snapshot_levels=1000)
    keeper.start()
    for first, last in ((90, 95), (96, 99), (100, 103), (104, 104)):
        keeper.on_change(change(first, last, [(float(last), 1.0)]))
    snap = BookChange("mexc_spot", "BTCUSDT", 0, T, True, [(50.0, 2.0)], [(300.0, 1.0)],
                      101, 101)
    keeper.on_snapshot(snap)
    sb = keeper.books["BTCUSDT"]
    assert sb.state == LIVE and sb.last_id == 104 and keeper.stats.stale_dropped == 2
    assert sb.book.bids(10) == [(104.0, 1.0), (103.0, 1.0), (50.0, 2.0)]
    keeper.on_change(change(103, 104))  # old news
    assert sb.state == LIVE and keeper.stats.stale_dropped == 3
    keeper.on_change(change(104, 106))  # overlaps the last: doubtful, a gap
    assert [g.reason for g in gaps] == ["gap"] and asked == ["BTCUSDT", "BTCUSDT"]
    assert sb.state == SYNCING and f.rules.cases["version_overlap"] == 1
    # a snapshot older than the buffered push: a bridge skip, another snapshot
    keeper.on_snapshot(BookChange("mexc_spot", "BTCUSDT", 0, T, True, [], [], 102, 102))
    assert f.rules.cases["bridge_skip"] == 1 and len(asked) == 3
    keeper.on_snapshot(BookChange("mexc_spot", "BTCUSDT", 0, T, True, [(60.0, 1.0)], [],
                                  105, 105))
    assert sb.state == LIVE and sb.last_id == 106 and sb.book.bids(10) == [(60.0, 1.0)]
    keeper.on_change(change(108, 109))  # a skip
    assert f.rules.cases["version_skip"] == 1 and len(gaps) == 2


# -- control frames, REST bodies, recordings -------------------------------------------------------


def test_control_frames_and_refusals() -> None:
    f, sink = feed()
    assert f.control(b'{"id":0,"code":0,"msg":"PONG"}') == "pong"
    assert f.control(json.dumps({"id": 3, "code": 0, "msg": DEPTH_CH}).encode()) == "ack"
    assert f.control(REFUSAL) is None
    with pytest.raises(VenueError, match="Blocked"):
        f.decode(REFUSAL, T)
    with pytest.raises(VenueError):
        f.decode(b'{"id":1,"code":30001,"msg":"bad request"}', T)
    other, _ = feed(("ETHUSDT",))
    with pytest.raises(UnknownStream):
        other.decode(DEPTH, T)
    assert sink.events == []


def test_rest_bodies() -> None:
    f, _ = feed()
    [brock] = f.decode_instruments([rest_body("/api/v3/exchangeInfo")], T).values()
    assert (brock.symbol, brock.market, brock.base, brock.quote) == (
        "BROCKUSDT", "spot", "BROCK", "USDT")
    assert (brock.tick_size, brock.lot_size, brock.contract_size) == (0.00001, 0.01, 1.0)
    listing = (b'{"symbols":[{"symbol":"AUSDT","status":"2","baseAsset":"A","quoteAsset":"USDT",'
               b'"quotePrecision":2,"baseAssetPrecision":2},{"symbol":"BUSDT","status":"ENABLED"'
               b',"baseAsset":"B","quoteAsset":"USDT","quotePrecision":4,"baseAssetPrecision":0}'
               b']}')
    assert list(f.decode_instruments([listing], T)) == ["BUSDT"]  # paused left out
    snap = f.decode_snapshot(rest_body("/api/v3/depth"), "BTCUSDT", T)
    assert (snap.is_snapshot, snap.first_id, snap.last_id) == (True, 1112416, 1112416)
    assert (snap.bids, snap.asks) == ([(15.0, 49999.0)], [(14.0, 1.0)])
    trades = f.decode_trades(rest_body("/api/v3/trades"), "ETHUSDT", T)
    assert [(t.trade_id, t.side, t.size) for t in trades] == [  # oldest first
        ("1737623988876-2-3219.58-0.09293", "sell", 0.09293),
        ("1737623988881-1-3219.58-0.04757", "buy", 0.04757)]
    with pytest.raises(VenueError, match="Invalid symbol"):
        f.decode_snapshot(b'{"code":-1121,"msg":"Invalid symbol."}', "NOPE", T)
    with pytest.raises(DecodeError):
        f.decode_trades(b'[{"price":"x"}]', "BTCUSDT", T)


def test_stream_and_rest_copies_of_a_deal_get_one_id() -> None:
    """The reconnect backfill's copy of a deal is the stream's (the store keeps one): same
    time, side, price and quantity; repeats numbered in both the same way."""
    deals = [(84270.0, 0.5, 1, 1000), (84270.0, 0.5, 1, 1000), (84271.0, 0.1, 2, 1001)]
    assert deal_ids(deals) == ["1000-1-84270.0-0.5", "1000-1-84270.0-0.5#1",
                               "1001-2-84271.0-0.1"]
    body = json.dumps([  # newest first
        {"id": None, "price": "84271.00", "qty": "0.10000000", "time": 1001,
         "isBuyerMaker": True}] + [{"id": None, "price": "84270.00", "qty": "0.50000000",
                                    "time": 1000, "isBuyerMaker": False}] * 2).encode()
    f, _ = feed()
    assert [t.trade_id for t in f.decode_trades(body, "BTCUSDT", T)] == deal_ids(deals)


def test_recordings_read_captured_frames_and_rest() -> None:
    rec = MexcRecordings()
    line = b"~" + base64.b64encode(DEPTH)
    assert rec.payload(5, line, None) == (5, FRAME, DEPTH_CH.encode(), DEPTH)
    assert rec.payload(5, b"~" + base64.b64encode(b'{"id":0,"code":0,"msg":"PONG"}'),
                       None) is None
    with pytest.raises(msgspec.DecodeError):
        rec.payload(5, b"~" + base64.b64encode(DEPTH[:30]), None)
    assert rec.symbol_of(DEPTH_CH.encode()) == "BTCUSDT" and rec.is_depth(DEPTH_CH.encode())
    assert not rec.is_depth(DEALS_CH.encode()) and rec.symbol_of(b"depth:BTC_USDT") == "BTC_USDT"
    assert rec.rest_event(1, "/api/v3/exchangeInfo", b"{}")[1:3] == (INFO, "/api/v3/exchangeInfo")
    assert rec.rest_event(1, "/api/v3/depth?symbol=btcusdt&limit=1000", b"{}")[1:3] == (
        SNAPSHOT, "BTCUSDT")
    spot, futures = Inference(), Inference()
    spot.url("/data/raw/mexc_spot/mexc_spot-20260925-10.gz")
    futures.stream(b"depth:BTC_USDT")
    assert (spot.market(), futures.market()) == ("spot", "futures")
    assert rec.claims([], b"1790281246250000000 " + line)


def test_replayed_book_is_a_snapshot_brought_up_by_the_logged_pushes() -> None:
    """The local exchange's replay of a capture: pushes before the recorded snapshot are logged
    and applied over it (also a snapshot older than the stream), a recorded hole leaves the
    book unserved (version 0: nobody bridges it) until a later snapshot mends it."""
    def push(first: int, last: int, bid: bytes, qty: bytes) -> bytes:
        body = pb.depth_body([], [pb.level(bid, qty)], b"spot@public.aggre.depth.v3.api.pb@100ms",
                             first, last)
        return pb.push(DEPTH_CH.encode(), b"BTCUSDT", 1000 + last, pb.DEPTH, body)

    def snapshot(v: int, bids: list[list[str]]) -> bytes:
        return json.dumps({"lastUpdateId": v, "bids": bids, "asks": [["99.0", "1"]]}).encode()

    class Feed:
        def now_ms(self) -> int:
            return 0

    replay = SpotReplay(None, {"BTCUSDT"}, {"BTCUSDT"})
    handle, symbol, is_depth = replay.classify(DEPTH_CH.encode())
    assert (symbol, is_depth) == ("BTCUSDT", True) and handle is not None

    def depth() -> tuple[int, list[tuple[float, float]]]:
        d = json.loads(replay.rest(Feed(), "depth", {"symbol": "BTCUSDT"}))  # type: ignore[arg-type]
        return d["lastUpdateId"], [(float(p), float(q)) for p, q in d["bids"]]

    for frame in (push(11, 12, b"90.0", b"1"), push(13, 15, b"91.0", b"2")):
        handle(symbol, frame)
    assert depth() == (0, [])  # nothing exact yet
    replay.on_snapshot("BTCUSDT", snapshot(12, [["90.0", "1"], ["80.0", "5"]]))  # older
    assert depth() == (15, [(91.0, 2.0), (90.0, 1.0), (80.0, 5.0)])
    handle(symbol, push(16, 16, b"91.0", b"0"))
    assert depth() == (16, [(90.0, 1.0), (80.0, 5.0)])
    handle(symbol, push(18, 19, b"92.0", b"1"))  # a recorded hole
    assert depth() == (0, []) and replay.chain_breaks == 1
    replay.on_snapshot("BTCUSDT", snapshot(18, [["85.0", "3"]]))
    assert depth() == (19, [(92.0, 1.0), (85.0, 3.0)])
