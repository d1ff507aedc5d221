"""MEXC contract API, collector side: real frames and bodies through ``MexcFeed`` (fixtures:
tests/fixtures/mexc/, see its PROVENANCE.md), the book rule, units, funding, malformed frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Quote, Trade
from analyzer.feed.books import LIVE, BookKeeper
from analyzer.venues.base import DecodeError, UnknownStream, VenueError
from analyzer.venues.mexc.decode import MexcFeed, MexcRules, scale
from analyzer.venues.mexc.spec import MARKETS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mexc"
MS = 1_000_000
T = 1_700_000_000_000_000_000  # a local receipt time
MARKET = MARKETS["mexc_futures"]
BTC_CS = 0.0001  # BTC_USDT contractSize (contract/detail)
BTC_K = 10_000  # sizes are contracts / 10000: the float nearest the exact size


def parser_frame(module: str, fn: str) -> bytes:
    """A raw frame of crypto-msg-parser's MEXC samples by its test module and function."""
    for line in (FIXTURES / "mexc_raw_msgs.ndjson").read_text().splitlines():
        d = json.loads(line)
        if d["source_module"] == module and d["source_fn"] == fn:
            return d["raw"].encode()
    raise KeyError((module, fn))


def jkorf(name: str, path: str | None = None) -> bytes:
    """A frame or body of JKorf/Mexc.Net's test files by its file name (and REST path)."""
    files = ("jkorf_ws_frames.ndjson", "jkorf_rest_bodies.ndjson")
    for f in files:
        for line in (FIXTURES / f).read_text().splitlines():
            d = json.loads(line)
            if d["source_file"].endswith(f"/{name}.txt") and (path is None or d["path"] == path):
                return d["raw"].encode()
    raise KeyError(name)


class Recorder:
    """A Sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_trade(self, ev: Trade) -> None:
        self.events.append(ev)

    def on_book(self, ev: BookChange) -> None:
        self.events.append(ev)

    def on_quote(self, ev: Quote) -> None:
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
        self.events.append("duplicate")


CHANNELS = ["depth", "trades", "bookTicker", "markPrice", "openInterest"]


def listing() -> dict[str, Instrument]:
    feed = MexcFeed(MARKET, [], [], Recorder())
    return feed.decode_instruments([jkorf("GetSymbols")], T)


def feed_of(symbols: list[str], channels: list[str] = CHANNELS) -> tuple[MexcFeed, Recorder]:
    sink = Recorder()
    feed = MexcFeed(MARKET, symbols, channels, sink)
    inst = listing()
    feed.set_instruments({s: inst[s] for s in symbols if s in inst})
    return feed, sink


# -- instruments and units ------------------------------------------------------------------------


def test_contract_detail_makes_linear_perpetuals_in_base_units() -> None:
    inst = listing()
    assert sorted(inst) == ["BTC_USDT", "ETH_USDT"]
    btc = inst["BTC_USDT"]
    assert btc == Instrument("mexc_futures", "BTC_USDT", "mexc", "perpetual", "BTC", "USDT",
                             False, 1.0, 0.5, BTC_CS, None, T, contract_value=BTC_CS)
    eth = inst["ETH_USDT"]
    assert (eth.contract_value, eth.tick_size, eth.lot_size) == (0.001, 0.05, 0.001)


def test_coin_margined_and_disabled_contracts_are_left_out() -> None:
    doc = json.loads(jkorf("GetSymbols"))
    btc = doc["data"][0]
    doc["data"] = [btc | {"symbol": "BTC_USD", "quoteCoin": "USD", "settleCoin": "BTC"},
                   btc | {"symbol": "OLD_USDT", "state": 3}, btc | {"symbol": "NEW_USDT"}]
    feed = MexcFeed(MARKET, [], [], Recorder())
    assert list(feed.decode_instruments([json.dumps(doc).encode()], T)) == ["NEW_USDT"]
    # the live push.contract frame's contract: contractSize, not minVol
    contract = json.loads(jkorf("Symbol"))["data"]
    body = json.dumps({"success": True, "code": 0, "data": [contract]}).encode()
    clo = feed.decode_instruments([body], T)["CLO_USDT"]
    assert (clo.contract_value, clo.tick_size, clo.lot_size) == (10.0, 0.0001, 10.0)
    with pytest.raises(VenueError):
        feed.decode_instruments([b'{"success":false,"code":1001,"message":"no"}'], T)
    with pytest.raises(DecodeError):
        feed.decode_instruments([json.dumps({"success": True, "data": [
            btc | {"contractSize": -1}]}).encode()], T)


# -- websocket frames, field by field -------------------------------------------------------------


def test_recorded_depth_push_is_a_change_in_base_units() -> None:
    feed, sink = feed_of(["BTC_USDT"])
    feed.decode(parser_frame("l2_event", "linear_swap_update"), T)
    assert sink.events == [BookChange(
        "mexc_futures", "BTC_USDT", 1647000258746 * MS, T, False,
        [(39962.5, 58272 / BTC_K)], [(39961.0, 0.0), (39961.5, 0.0)],
        4702740808, 4702740808, 4702740807,
    )]
    sink.events.clear()
    feed.decode(parser_frame("before_20220311::l2_event", "linear_swap_update"), T)
    [ev] = sink.events
    assert (ev.bids, ev.asks, ev.last_id) == ([], [(38704.5, 138686 / BTC_K)], 2427341830)


def test_recorded_deals_both_layouts() -> None:
    feed, sink = feed_of(["BTC_USDT"])
    feed.decode(parser_frame("trade", "linear_swap"), T)
    assert sink.events == [Trade("mexc_futures", "BTC_USDT", 1646999591755 * MS, T,
                                 "1646999591755-2-39766.5-32.0", 39766.5, 32 / BTC_K, "sell")]
    sink.events.clear()
    feed.decode(jkorf("Trades"), T)  # 2025: data is a list, the symbol comes first
    assert sink.events == [Trade("mexc_futures", "BTC_USDT", 1763645012047 * MS, T,
                                 "1763645012047-2-91847.4-49.0", 91847.4, 49 / BTC_K, "sell")]


def test_two_alike_deals_in_one_frame_are_two_trades_and_a_repeat_keeps_its_ids() -> None:
    feed, sink = feed_of(["BTC_USDT"], ["trades"])
    d = {"p": 100.5, "v": 3, "T": 1, "O": 1, "M": 2, "t": 1763645012047}
    frame = json.dumps({"channel": "push.deal", "data": [d, d, d | {"v": 4}],
                        "symbol": "BTC_USDT", "ts": 1763645012047}).encode()
    feed.decode(frame, T)
    feed.decode(frame, T + 1)  # the same frame again (an overlapping connection)
    ids = [e.trade_id for e in sink.events]
    assert ids[:3] == ["1763645012047-1-100.5-3.0", "1763645012047-1-100.5-3.0#1",
                       "1763645012047-1-100.5-4.0"]
    assert ids[3:] == ids[:3] and all(e.side == "buy" for e in sink.events)


def test_recorded_ticker_gives_mark_index_funding_and_open_interest() -> None:
    feed, sink = feed_of(["BTC_USDT"])
    feed.funding_hours["BTC_USDT"] = 8.0
    feed.decode(parser_frame("ticker", "linear_swap"), T)
    ts = 1654165943014 * MS
    assert sink.events == [
        DerivativeTicker("mexc_futures", "BTC_USDT", ts, T, 29911.1, 29926.9, 0.000072, None,
                         8.0),
        OpenInterest("mexc_futures", "BTC_USDT", ts, T, 12357864 / BTC_K,
                     12357864 / BTC_K * 29911.1),
    ]
    sink.events.clear()
    feed.decode(parser_frame("ticker", "linear_swap"), T)  # OI unchanged: not sent again
    assert [type(e) for e in sink.events] == [DerivativeTicker]


def test_recorded_full_depth_is_the_quote() -> None:
    feed, sink = feed_of(["BTC_USDT"])
    feed.decode(parser_frame("l2_topk", "linear_swap"), T)
    assert sink.events == [Quote("mexc_futures", "BTC_USDT", 1653995843510 * MS, T, 31708.0,
                                 3210 / BTC_K, 31708.5, 74950 / BTC_K, -1)]


def test_doc_frames_funding_rate_and_ticker() -> None:
    """JKorf's doc-example frames (their envelope symbol is BTC_USDT whatever was subscribed):
    push.funding.rate gives the rate; the next settlement comes from funding info."""
    feed, sink = feed_of(["BTC_USDT"], ["markPrice"])
    hours = feed.decode_funding_info(jkorf("GetFundingRates"))
    assert hours == {"BTC_USDT": 8.0, "ETH_USDT": 8.0} and feed.funding_hours == {}
    feed.funding_hours.update(hours)
    feed.decode(jkorf("FundingRate"), T)
    # (the frame's time, 2020-04-21, is before the settlement known: it stands)
    assert sink.events == [DerivativeTicker("mexc_futures", "BTC_USDT", 1587442022003 * MS, T,
                                            None, None, 0.001, 1609833600000 * MS, 8.0)]
    sink.events.clear()
    feed.decode(jkorf("Ticker"), T)
    [tk] = sink.events
    assert (tk.mark_price, tk.index_price, tk.funding_rate) == (6867.4, 6861.6, 0.0008)


def test_next_settlement_moves_on_by_the_interval() -> None:
    feed, sink = feed_of(["BTC_USDT"], ["markPrice"])
    feed.funding_hours["BTC_USDT"] = 4.0
    feed.decode_funding_info(jkorf("GetFundingRates"))  # next 1609833600000
    frame = json.loads(parser_frame("ticker", "linear_swap"))
    frame["data"]["timestamp"] = 1609833600000 + 5 * 3_600_000  # 5 h after: 2 settlements on
    feed.decode(json.dumps(frame).encode(), T)
    assert sink.events[0].next_funding_time == (1609833600000 + 8 * 3_600_000) * MS


def test_premium_poll_funding_of_one_contract() -> None:
    feed, _ = feed_of(["BTC_USDT"], ["markPrice"])
    assert feed.premium_path("BTC_USDT") == "/api/v1/contract/funding_rate/BTC_USDT"
    feed.decode(parser_frame("ticker", "linear_swap"), T)
    [tk] = feed.decode_premium(jkorf("GetFundingRate"), "BTC_USDT", T)
    assert tk == DerivativeTicker("mexc_futures", "BTC_USDT", 1609829807577 * MS, T, 29911.1,
                                  29926.9, -0.000489, 1609833600000 * MS, 8.0)
    assert feed.funding_hours["BTC_USDT"] == 8.0
    with pytest.raises(DecodeError):
        feed.decode_premium(jkorf("GetFundingRate"), "ETH_USDT", T)


# -- REST bodies ----------------------------------------------------------------------------------


def test_recorded_depth_snapshot_and_recent_deals() -> None:
    feed, _ = feed_of(["BTC_USDT"])
    assert feed.depth_path("BTC_USDT") == "/api/v1/contract/depth/BTC_USDT?limit=1000"
    snap = feed.decode_snapshot(parser_frame("l2_snapshot", "linear_swap"), "BTC_USDT", T)
    assert snap == BookChange(
        "mexc_futures", "BTC_USDT", 1654328706778 * MS, T, True,
        [(29675.5, 59944 / BTC_K), (29675.0, 29676 / BTC_K), (29674.5, 15455 / BTC_K)],
        [(29676.5, 20696 / BTC_K), (29677.0, 19821 / BTC_K), (29677.5, 50122 / BTC_K)],
        5216820883, 5216820883,
    )
    # the docs' example: levels of two numbers too
    body = b'{"success":true,"code":0,"data":{"asks":[[3968.5,121],[3968.6,160,4]],' \
           b'"bids":[[3968.4,179,4]],"version":1,"timestamp":1587442022003}}'
    assert feed.decode_snapshot(body, "BTC_USDT", T).asks == [(3968.5, 121 / BTC_K),
                                                              (3968.6, 160 / BTC_K)]
    trades = feed.decode_trades(jkorf("GetRecentTrades"), "BTC_USDT", T)
    assert trades == [
        Trade("mexc_futures", "BTC_USDT", 1609831234759 * MS, T, "1609831234759-2-31199.0-15.0",
              31199.0, 15 / BTC_K, "sell"),
        Trade("mexc_futures", "BTC_USDT", 1609831235985 * MS, T, "1609831235985-1-31199.0-18.0",
              31199.0, 18 / BTC_K, "buy"),
    ]  # oldest first
    assert feed.recent_trades_path("BTC_USDT") == "/api/v1/contract/deals/BTC_USDT?limit=100"
    assert feed.trades_path("BTC_USDT", 1) is None and feed.open_interest_path("X") is None


def test_depth_commits_are_changes_oldest_first() -> None:
    feed, _ = feed_of(["BTC_USDT"])
    assert feed.gap_fill_path("BTC_USDT", 5) == "/api/v1/contract/depth_commits/BTC_USDT/1000"
    body = (b'{"success":true,"code":0,"data":[{"asks":[[31792,59105,1]],"bids":[],'
            b'"version":1481763378},{"asks":[],"bids":[[31790,2,1]],"version":1481763377}]}')
    got = feed.decode_gap_fill(body, "BTC_USDT", T)
    assert got == [
        BookChange("mexc_futures", "BTC_USDT", T, T, False, [(31790.0, 2 / BTC_K)], [],
                   1481763377, 1481763377, 1481763376),
        BookChange("mexc_futures", "BTC_USDT", T, T, False, [], [(31792.0, 59105 / BTC_K)],
                   1481763378, 1481763378, 1481763377),
    ]
    with pytest.raises(VenueError):
        feed.decode_gap_fill(b'{"success":false,"code":1002,"message":"x"}', "BTC_USDT", T)


# -- control frames, subscriptions ----------------------------------------------------------------


def test_subscribe_messages_and_control_frames() -> None:
    feed, _ = feed_of(["BTC_USDT"])
    # deals first, books next: one subscription a message, paced
    assert feed.streams == ["deal:BTC_USDT", "depth:BTC_USDT", "depth.full:BTC_USDT",
                            "ticker:BTC_USDT", "funding.rate:BTC_USDT"]
    assert [json.loads(m) for m in feed.subscribe_messages(feed.streams[:3])] == [
        {"method": "sub.deal", "param": {"symbol": "BTC_USDT"}},
        {"method": "sub.depth", "param": {"symbol": "BTC_USDT", "compress": False}},
        {"method": "sub.depth.full", "param": {"symbol": "BTC_USDT", "limit": 5}},
    ]
    assert json.loads(feed.unsubscribe_messages(["depth:BTC_USDT"])[0]) == {
        "method": "unsub.depth", "param": {"symbol": "BTC_USDT"}}
    assert MARKET.heartbeat == b'{"method":"ping"}' and 10 <= MARKET.heartbeat_seconds <= 20
    assert feed.ws_endpoint("wss://contract.mexc.com") == "wss://contract.mexc.com/edge"
    pong = b'{"channel":"pong","data":1587453241453}'
    ack = b'{"channel":"rs.sub.deal","data":"success","ts":"1587442022003"}'
    err = b'{"channel":"rs.error","data":"Contract doesn\'t exist!","ts":"1587442022003"}'
    assert feed.control(pong) == "pong" and feed.control(ack) == "ack"
    assert feed.control(err) is None
    assert feed.control(parser_frame("trade", "linear_swap")) is None
    assert feed.decode(pong, T) is None and feed.decode(ack, T) is None
    with pytest.raises(VenueError, match="Contract doesn"):
        feed.decode(err, T)


def test_malformed_and_unknown_frames() -> None:
    feed, sink = feed_of(["BTC_USDT"])
    good = json.loads(parser_frame("l2_event", "linear_swap_update"))
    bad_frames = [
        b"not json", b'{"data":1}', b'{"channel":"push.depth","symbol":"BTC_USDT"}',
        json.dumps(good | {"data": good["data"] | {"version": -5}}).encode(),
        json.dumps(good | {"data": good["data"] | {"bids": [["x", 1, 1]]}}).encode(),
        json.dumps(good | {"data": good["data"] | {"bids": [[1e300, 1, 1]]}}).encode(),
        json.dumps(good | {"data": good["data"] | {"asks": [[5.0, -1, 1]]}}).encode(),
        b'{"channel":"push.deal","data":{"p":1,"v":1,"T":3,"t":1646999591755},'
        b'"symbol":"BTC_USDT","ts":1}',
        b'{"channel":"push.ticker","data":{"symbol":"BTC_USDT","fairPrice":"NaN",'
        b'"indexPrice":1,"timestamp":1},"symbol":"BTC_USDT","ts":1}',
    ]
    for frame in bad_frames:
        with pytest.raises(DecodeError):
            feed.decode(frame, T)
    assert sink.events == []
    with pytest.raises(UnknownStream):
        feed.decode(parser_frame("l2_event", "inverse_swap_update"), T)  # BTC_USD
    unlisted, _ = feed_of(["XRP_USDT"], ["depth"])
    frame = parser_frame("l2_event", "linear_swap_update").replace(b"BTC_USDT", b"XRP_USDT")
    with pytest.raises(DecodeError, match="contract size unknown"):
        unlisted.decode(frame, T)


def test_a_frame_whose_symbol_differs_inside_falls_back_to_its_envelope() -> None:
    """The fast path routes by the last ``"symbol":"`` of the frame; a frame laid out otherwise
    (symbol first, keys reordered) goes through the envelope and gives the same events."""
    feed, sink = feed_of(["BTC_USDT"], ["depth"])
    good = json.loads(parser_frame("l2_event", "linear_swap_update"))
    feed.decode(parser_frame("l2_event", "linear_swap_update"), T)
    reordered = {"symbol": good["symbol"], "ts": good["ts"], "data": good["data"],
                 "channel": good["channel"]}
    feed.decode(json.dumps(reordered).encode(), T)
    assert sink.events[0] == sink.events[1]


# -- the book rule --------------------------------------------------------------------------------


def change(v: int, bids: list[tuple[float, float]] | None = None) -> BookChange:
    return BookChange("mexc_futures", "BTC_USDT", T, T, False, bids or [], [], v, v, v - 1)


def test_rule_stale_bridge_follow_and_counted_cases() -> None:
    r = MexcRules()
    assert r.is_stale(100, change(100)) and r.is_stale(100, change(99))
    assert not r.is_stale(100, change(101))
    assert r.bridges(100, change(101)) and not r.bridges(100, change(102))
    assert r.follows(101, change(102))
    assert not r.follows(101, change(104)) and not r.follows(101, change(101))
    assert r.cases == {"version_skip": 1, "version_repeat": 1, "bridge_skip": 1}


def test_book_keeper_with_the_rule_buffers_bridges_and_detects_a_skip() -> None:
    """Pushes buffered before the REST snapshot, the stale ones dropped, version + 1 bridging it;
    a push skipping a version is a gap and a new snapshot."""
    gaps: list[Any] = []
    asked: list[str] = []
    rules = MexcRules()
    keeper = BookKeeper("mexc_futures", ["BTC_USDT"], rules, asked.append, gaps.append,
                        lambda q: None, snapshot_levels=1000)
    keeper.start()
    for v in (98, 99, 100, 101, 102):
        keeper.on_change(change(v, [(100.0 + v, 1.0)]))
    snap = BookChange("mexc_futures", "BTC_USDT", T, T, True, [(50.0, 2.0)], [(300.0, 1.0)],
                      100, 100)
    keeper.on_snapshot(snap)
    sb = keeper.books["BTC_USDT"]
    assert sb.state == LIVE and sb.last_id == 102 and keeper.stats.stale_dropped == 3
    assert sb.book.bids(10) == [(202.0, 1.0), (201.0, 1.0), (50.0, 2.0)]
    keeper.on_change(change(104))
    assert [g.reason for g in gaps] == ["gap"] and asked == ["BTC_USDT", "BTC_USDT"]
    assert (gaps[0].expected_id, gaps[0].received_id) == (102, 103)
    assert rules.cases["version_skip"] == 1


def test_sizes_are_the_floats_nearest_the_exact_ones() -> None:
    assert scale(0.0001) == (1.0, 10_000.0) and scale(0.001) == (1.0, 1000.0)
    assert scale(10.0) == (10.0, 1.0) and scale(0.3) == (0.3, 1.0)
    feed, sink = feed_of(["BTC_USDT"], ["trades"])
    feed.decode(parser_frame("trade", "linear_swap").replace(b'"v":32', b'"v":3'), T)
    assert sink.events[0].size == 0.0003 != 3 * BTC_CS  # (0.00030000000000000003)


def test_options() -> None:
    feed = MexcFeed(MARKET, ["btc_usdt"], ["depth"], Recorder(), options={"depth_limit": 200})
    assert feed.snapshot_levels == 200 and feed.streams == ["depth:BTC_USDT"]
    with pytest.raises(msgspec.ValidationError):
        MexcFeed.check_options(MARKET, {"depth_limit": 1})
    with pytest.raises(msgspec.ValidationError):
        MexcFeed.check_options(MARKET, {"nope": 1})
