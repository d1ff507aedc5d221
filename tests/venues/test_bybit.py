"""Bybit v5 collector side: recorded frames through ``BybitFeed`` to normalized events.

Fixtures: ``tests/fixtures/bybit/`` (PROVENANCE.md). Every expected number below is written out
from the frame it comes from.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import msgspec
import pytest

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Gap,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.feed.book import OrderBook
from analyzer.feed.books import BookKeeper
from analyzer.venues.base import DecodeError, OptionError, UnknownStream, VenueError
from analyzer.venues.bybit import MARKETS, VENUE, BybitFeed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"
OB500 = FIXTURES / "ob500_XRPUSDT_2024-12-01.ndjson"
SAMPLES = FIXTURES / "tardis_v5_samples.ndjson"
MS = 1_000_000
T0 = 1_700_000_000_000_000_000  # a local receipt time


class Sink:
    """Collects every event, by kind."""

    def __init__(self) -> None:
        self.books: list[BookChange] = []
        self.quotes: list[Quote] = []
        self.trades: list[Trade] = []
        self.tickers: list[DerivativeTicker] = []
        self.ois: list[OpenInterest] = []
        self.liquidations: list[Liquidation] = []
        self.gaps: list[tuple[str, int, int]] = []
        self.duplicates = 0

    def on_book(self, ev: BookChange) -> None:
        self.books.append(ev)

    def on_quote(self, ev: Quote) -> None:
        self.quotes.append(ev)

    def on_trade(self, ev: Trade) -> None:
        self.trades.append(ev)

    def on_ticker(self, ev: DerivativeTicker) -> None:
        self.tickers.append(ev)

    def on_open_interest(self, ev: OpenInterest) -> None:
        self.ois.append(ev)

    def on_liquidation(self, ev: Liquidation) -> None:
        self.liquidations.append(ev)

    def on_trade_gap(self, symbol: str, first_missing: int, last_missing: int) -> None:
        self.gaps.append((symbol, first_missing, last_missing))

    def on_duplicate(self) -> None:
        self.duplicates += 1

    def count(self) -> int:
        return sum(map(len, (self.books, self.quotes, self.trades, self.tickers, self.ois,
                             self.liquidations)))


def feed(category: str, symbols: list[str], channels: list[str], **options: object
         ) -> tuple[BybitFeed, Sink]:
    sink = Sink()
    return BybitFeed(MARKETS[f"bybit_{category}"], symbols, channels, sink,
                     options=dict(options)), sink


def ob500_lines() -> list[bytes]:
    return OB500.read_bytes().splitlines()


def sample(topic: str, kind: str = "snapshot", n: int = 0) -> bytes:
    """The n-th recorded sample frame of ``topic`` and ``type``."""
    found = [line for line in SAMPLES.read_bytes().splitlines()
             if (m := json.loads(line))["topic"] == topic and m["type"] == kind]
    return found[n]


def xrp_feed() -> tuple[BybitFeed, Sink]:
    return feed("linear", ["XRPUSDT"], ["depth"], depth=500)


# ---- the order book --------------------------------------------------------------------------


def reference_rebuild(lines: list[bytes]) -> list[tuple[dict[str, str], dict[str, str]]]:
    """The book after each frame, built independently: plain dicts of the raw strings, a
    snapshot replaces them, a size "0" removes a price."""
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    states = []
    for line in lines:
        m = json.loads(line)
        if m["type"] == "snapshot":
            bids, asks = {}, {}
        for side, levels in ((bids, m["data"]["b"]), (asks, m["data"]["a"])):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        states.append((dict(bids), dict(asks)))
    return states


def as_levels(side: dict[str, str], descending: bool) -> list[tuple[float, float]]:
    return sorted(((float(p), float(s)) for p, s in side.items()), reverse=descending)


def test_ob500_rebuilds_the_recorded_book_level_for_level() -> None:
    lines = ob500_lines()
    f, sink = xrp_feed()
    for i, line in enumerate(lines):
        route = f.decode(line, T0 + i)
        assert route is not None and route.stream == "orderbook.500.XRPUSDT"
    changes = sink.books
    assert len(changes) == 50
    first = changes[0]
    assert (first.venue, first.symbol, first.ts_exchange, first.ts_local) == (
        "bybit_linear", "XRPUSDT", 1733011200691 * MS, T0)
    assert first.is_snapshot and (first.first_id, first.last_id) == (20254869, 20254869)
    assert (first.prev_id, first.checksum) == (-1, 0)
    assert len(first.bids) == len(first.asks) == 500
    assert first.bids[0] == (1.9531, 6203.0)  # the recorded first level, "1.9531","6203"
    assert not any(c.is_snapshot for c in changes[1:])
    assert [c.last_id for c in changes] == list(range(20254869, 20254919))
    assert changes[1].bids[0] == (1.9531, 6198.0) and changes[1].ts_exchange == 1733011200693 * MS

    book = OrderBook()
    for change, (bids, asks) in zip(changes, reference_rebuild(lines), strict=True):
        if change.is_snapshot:
            book.apply_snapshot(change.bids, change.asks)
        else:
            book.apply(change.bids, change.asks)
        # every level of both sides, after every frame
        assert book.bid_count == len(bids) and book.ask_count == len(asks)
        assert book.bids(len(bids)) == as_levels(bids, descending=True)
        assert book.asks(len(asks)) == as_levels(asks, descending=False)
    assert not book.is_crossed()


def test_update_id_chain_follows_and_a_dropped_delta_breaks_it() -> None:
    f, sink = xrp_feed()
    for i, line in enumerate(ob500_lines()):
        f.decode(line, T0 + i)
    changes, rules = sink.books, f.rules
    assert rules.checksum is None
    snapshot_id = changes[0].last_id
    assert rules.bridges(snapshot_id, changes[1])
    assert not rules.is_stale(snapshot_id, changes[1])
    assert all(rules.follows(a.last_id, b) for a, b in pairwise(changes))
    # one delta lost: the next does not follow, nor bridge a snapshot two behind
    assert not rules.follows(changes[10].last_id, changes[12])
    assert not rules.bridges(snapshot_id, changes[2])
    # a change the snapshot already holds (the old subscription's, during a resubscribe)
    assert rules.is_stale(changes[5].last_id, changes[5])
    assert rules.is_stale(changes[5].last_id, changes[3])


def test_the_keeper_goes_live_on_the_ws_snapshot_and_flags_a_dropped_delta() -> None:
    f, sink = xrp_feed()
    for i, line in enumerate(ob500_lines()):
        f.decode(line, T0 + i)
    requested: list[str] = []
    gaps: list[Gap] = []
    keeper = BookKeeper("bybit_linear", ["XRPUSDT"], f.rules, requested.append, gaps.append,
                        lambda q: None, snapshot_levels=f.snapshot_levels, refresh_fraction=0)
    keeper.start()  # a ws source: "request" = (re)subscribe book_stream; the snapshot comes in
    assert requested == ["XRPUSDT"]
    snapshot, *deltas = sink.books
    keeper.on_snapshot(snapshot)
    for ev in deltas[:20]:
        keeper.on_change(ev)
    sb = keeper.books["XRPUSDT"]
    assert sb.in_sync and sb.last_id == 20254889 and not gaps
    keeper.on_change(deltas[21])  # deltas[20] was lost
    assert not sb.in_sync
    assert [(g.reason, g.expected_id, g.received_id) for g in gaps] == [
        ("gap", 20254889, 20254890)]
    assert requested == ["XRPUSDT", "XRPUSDT"]


def test_u1_is_a_snapshot_that_replaces_the_book() -> None:
    lines = ob500_lines()
    f, sink = xrp_feed()
    for i, line in enumerate(lines[:10]):
        f.decode(line, T0 + i)
    # a service restart: the next frame comes with u = 1 (here: a recorded delta, edited)
    restart = json.loads(lines[10])
    assert restart["type"] == "delta"
    restart["data"]["u"] = 1
    f.decode(json.dumps(restart).encode(), T0 + 10)
    ev = sink.books[-1]
    assert ev.is_snapshot and (ev.first_id, ev.last_id) == (1, 1)
    book = OrderBook()
    for change in sink.books:
        if change.is_snapshot:
            book.apply_snapshot(change.bids, change.asks)
        else:
            book.apply(change.bids, change.asks)
    expected_bids = {p: s for p, s in restart["data"]["b"] if float(s)}
    expected_asks = {p: s for p, s in restart["data"]["a"] if float(s)}
    assert book.bids(10_000) == as_levels(expected_bids, descending=True)
    assert book.asks(10_000) == as_levels(expected_asks, descending=False)
    # the chain starts again from 1
    nxt = json.loads(lines[11])
    nxt["data"]["u"] = 2
    f.decode(json.dumps(nxt).encode(), T0 + 11)
    assert f.rules.bridges(1, sink.books[-1]) and f.rules.follows(1, sink.books[-1])
    # a snapshot re-sent mid-stream with an ordinary u is a snapshot too
    again = json.loads(lines[0])
    again["data"]["u"] = 20254999
    f.decode(json.dumps(again).encode(), T0 + 12)
    assert sink.books[-1].is_snapshot


def test_depth_50_usdc_perpetual_frames() -> None:
    f, sink = feed("linear", ["BTCPERP"], ["depth"], depth=50)
    f.decode(sample("orderbook.50.BTCPERP"), T0)
    f.decode(sample("orderbook.50.BTCPERP", "delta"), T0 + 1)
    snap, delta = sink.books
    assert snap == BookChange("bybit_linear", "BTCPERP", 1680673821591 * MS, T0, True,
                              [(28555.2, 0.597)], [(28555.3, 0.225)], 20683568, 20683568)
    assert delta == BookChange("bybit_linear", "BTCPERP", 1680673821651 * MS, T0 + 1, False,
                               [(28555.2, 0.677)], [(28555.3, 0.029)], 20683569, 20683569)
    assert f.rules.bridges(snap.last_id, delta)


def test_book_ticker_is_a_quote_without_an_update_id() -> None:
    f, sink = feed("linear", ["BTCUSDT"], ["bookTicker"])
    assert f.streams == ["orderbook.1.BTCUSDT"]
    f.decode(sample("orderbook.1.BTCUSDT"), T0)
    f.decode(sample("orderbook.1.BTCUSDT", "delta", 0), T0 + 1)
    # a delta of 2023-04-21 (another session): a removed old best and a new one on each side
    f.decode(sample("orderbook.1.BTCUSDT", "delta", 1), T0 + 2)
    assert sink.quotes == [
        Quote("bybit_linear", "BTCUSDT", 1680673820717 * MS, T0, 28552.0, 0.047, 28552.1,
              25.433, -1),
        # bid size "0.012", no ask in the delta: the ask stays
        Quote("bybit_linear", "BTCUSDT", 1680673821137 * MS, T0 + 1, 28552.0, 0.012, 28552.1,
              25.433, -1),
        # b: ["27994.60","0"], ["27991.70","0.777"]; a: ["27994.40","0.058"], ["27994.80","0"]
        Quote("bybit_linear", "BTCUSDT", 1682092584425 * MS, T0 + 2, 27991.7, 0.777, 27994.4,
              0.058, -1),
    ]
    assert not sink.books


# ---- trades, tickers, open interest, liquidations ----------------------------------------------


def test_inverse_trades_are_in_contracts_and_keep_their_uuids() -> None:
    f, sink = feed("inverse", ["BTCUSD"], ["trades"])
    assert f.decode(sample("publicTrade.BTCUSD"), T0).channel == "trades"
    assert sink.trades == [
        Trade("bybit_inverse", "BTCUSD", 1680673823564 * MS, T0,
              "0cbf2330-952d-5d03-a462-4bf826c867af", 28560.5, 5823.0, "buy", "trade"),
        Trade("bybit_inverse", "BTCUSD", 1680673823564 * MS, T0,
              "912e56de-9ed6-5f4f-9421-f0ff5a42d84a", 28560.5, 3.0, "buy", "trade"),
        Trade("bybit_inverse", "BTCUSD", 1680673823564 * MS, T0,
              "cb558b74-cf72-5157-b53b-93944db336ad", 28560.5, 5593.0, "buy", "trade"),
    ]
    assert f.last_trade_id == {} and f.trades_path("BTCUSD", 1) is None and not sink.gaps


def test_linear_trade_is_in_base_units() -> None:
    f, sink = feed("linear", ["LTCUSDT"], ["trades"])
    f.decode(sample("publicTrade.LTCUSDT"), T0)
    assert sink.trades == [Trade("bybit_linear", "LTCUSDT", 1680688979983 * MS, T0,
                                 "4c7b6bdc-b4a3-5716-9c7b-bbe01dc7072f", 94.53, 0.4, "buy")]


def test_a_block_trade_and_a_taker_sell() -> None:
    f, sink = feed("linear", ["BTCUSDT"], ["trades"])
    frame = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":['
             b'{"T":1672304486865,"s":"BTCUSDT","S":"Sell","v":"0.001","p":"16578.50",'
             b'"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":true,'
             b'"seq":1783284617}]}')
    f.decode(frame, T0)
    assert sink.trades == [Trade("bybit_linear", "BTCUSDT", 1672304486865 * MS, T0,
                                 "20f43950-d8dd-5b31-9112-a178eb6023af", 16578.5, 0.001, "sell",
                                 "block_trade")]


# ---- recent trades over REST (the reconnect backfill) -----------------------------------------


def test_recent_trade_body_of_the_docs_decodes_field_by_field() -> None:
    """The docs' example answer (fixtures/bybit/recent_trade_spot.json), one spot trade."""
    f, _ = feed("spot", ["BTCUSDT"], ["trades"])
    assert f.recent_trades_path("BTCUSDT") == (
        "/v5/market/recent-trade?category=spot&symbol=BTCUSDT&limit=60")
    assert f.rest_weights["trades"] == 1
    [t] = f.decode_trades((FIXTURES / "recent_trade_spot.json").read_bytes(), "BTCUSDT", T0)
    assert t.venue == "bybit_spot" and t.symbol == "BTCUSDT"
    assert t.trade_id == "2100000000007764263"  # execId
    assert t.price == 16618.49 and t.size == 0.00012
    assert t.side == "buy"  # side: the taker's
    assert t.ts_exchange == 1672052955758 * MS and t.ts_local == T0  # time, ms as text
    assert t.kind == "trade"  # isBlockTrade false


def _as_rest(frame: bytes, category: str) -> bytes:
    """A recent-trade body holding the trades of a publicTrade frame, newest first, each under
    the REST keys (execId = i, price = p, size = v, side = S, time = T, isBlockTrade = BT)."""
    m = json.loads(frame)
    items = [{"execId": d["i"], "symbol": d["s"], "price": d["p"], "size": d["v"],
              "side": d["S"], "time": str(d["T"]), "isBlockTrade": d["BT"]}
             for d in reversed(m["data"])]
    return json.dumps({"retCode": 0, "retMsg": "OK",
                       "result": {"category": category, "list": items}}).encode()


def test_rest_trades_equal_the_stream_trades_of_the_same_executions() -> None:
    """The recorded publicTrade frames (inverse in contracts, linear in base units, a block
    trade) against the same executions as recent-trade items: the same Trades, oldest first."""
    block = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":['
             b'{"T":1672304486865,"s":"BTCUSDT","S":"Sell","v":"0.001","p":"16578.50",'
             b'"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":true}]}')
    for category, symbol, frame in (("inverse", "BTCUSD", sample("publicTrade.BTCUSD")),
                                     ("linear", "LTCUSDT", sample("publicTrade.LTCUSDT")),
                                     ("linear", "BTCUSDT", block)):
        f, sink = feed(category, [symbol], ["trades"])
        f.decode(frame, T0)
        assert sink.trades
        assert f.decode_trades(_as_rest(frame, category), symbol, T0) == sink.trades
    assert feed("inverse", [], [])[0].recent_trades_path("BTCUSD") == (
        "/v5/market/recent-trade?category=inverse&symbol=BTCUSD&limit=1000")


def test_recent_trade_errors() -> None:
    f, _ = feed("linear", ["BTCUSDT"], ["trades"])
    with pytest.raises(VenueError, match="10001"):
        f.decode_trades(b'{"retCode":10001,"retMsg":"params error: symbol invalid",'
                        b'"result":{},"retExtInfo":{},"time":1}', "BTCUSDT", T0)
    item = {"execId": "x", "symbol": "BTCUSDT", "price": "1", "size": "1", "side": "Buy",
            "time": "1672052955758", "isBlockTrade": False}
    for bad in ({"price": "-1"}, {"size": "0"}, {"side": "buy"}, {"time": "soon"},
                {"symbol": "ETHUSDT"}):
        body = json.dumps({"retCode": 0, "result": {"list": [item | bad]}}).encode()
        with pytest.raises(DecodeError) as info:
            f.decode_trades(body, "BTCUSDT", T0)
        assert info.value.channel == "trades"
    assert f.decode_trades(b'{"retCode":0,"result":{"category":"linear","list":[]}}',
                           "BTCUSDT", T0) == []


def linear_instruments(f: BybitFeed) -> None:
    f.set_instruments(f.decode_instruments([(FIXTURES / "instruments_linear.json").read_bytes()],
                                           T0))


def test_linear_ticker_snapshot() -> None:
    f, sink = feed("linear", ["BTCUSDT"], ["markPrice", "openInterest"])
    assert f.streams == ["tickers.BTCUSDT"]
    linear_instruments(f)  # fundingInterval 480 minutes
    f.decode(sample("tickers.BTCUSDT"), T0)
    assert sink.tickers == [DerivativeTicker(
        "bybit_linear", "BTCUSDT", 1680673821770 * MS, T0,
        mark_price=28552.81, index_price=28562.25, funding_rate=0.0001,
        next_funding_time=1680681600000 * MS, funding_interval_hours=8.0)]
    # openInterest "52774.528" BTC and openInterestValue "1506861070.82" USDT are both sides
    assert sink.ois == [OpenInterest("bybit_linear", "BTCUSDT", 1680673821770 * MS, T0,
                                     26387.264, 753430535.41)]


def test_inverse_perpetual_ticker_snapshot_and_delta() -> None:
    f, sink = feed("inverse", ["BTCUSD"], ["markPrice", "openInterest"])
    f.funding_hours["BTCUSD"] = 8.0  # as the runner's dict would hold it
    f.decode(sample("tickers.BTCUSD"), T0)
    f.decode(sample("tickers.BTCUSD", "delta"), T0 + 1)
    snap_ts, delta_ts = 1680673822577 * MS, 1680673822776 * MS
    assert sink.tickers == [
        DerivativeTicker("bybit_inverse", "BTCUSD", snap_ts, T0, 28560.0, 28566.94, 0.0001,
                         1680681600000 * MS, 8.0),
        # the delta carries fundingRate "0.0001" and no mark or index: those are merged in
        DerivativeTicker("bybit_inverse", "BTCUSD", delta_ts, T0 + 1, 28560.0, 28566.94,
                         0.0001, 1680681600000 * MS, 8.0),
    ]
    # openInterest "449736676" then "449736674" contracts of 1 USD, both sides; the value is
    # in USD (Bybit's openInterestValue "15747.08" is in BTC)
    assert sink.ois == [
        OpenInterest("bybit_inverse", "BTCUSD", snap_ts, T0, 224868338.0, 224868338.0),
        OpenInterest("bybit_inverse", "BTCUSD", delta_ts, T0 + 1, 224868337.0, 224868337.0),
    ]


def test_inverse_dated_future_ticker_has_no_funding_and_merges_deltas() -> None:
    f, sink = feed("inverse", ["BTCUSDU23"], ["markPrice", "openInterest"])
    f.funding_hours["BTCUSDU23"] = 8.0  # never used for a contract without funding
    f.decode(sample("tickers.BTCUSDU23"), T0)
    ts = 1680673822099 * MS
    # fundingRate "" and nextFundingTime "": none; basis "459.06" = mark - index (not a field)
    assert sink.tickers == [DerivativeTicker("bybit_inverse", "BTCUSDU23", ts, T0,
                                             29023.6, 28566.94, None, None, None)]
    assert sink.ois == [OpenInterest("bybit_inverse", "BTCUSDU23", ts, T0, 2273588.0,
                                     2273588.0)]
    # the delta moves only basisRate, the top of book and 24 h stats: nothing to emit, and
    # the merged ticker keeps the snapshot's values
    route = f.decode(sample("tickers.BTCUSDU23", "delta"), T0 + 1)
    assert route is not None and route.frames == 2
    assert len(sink.tickers) == 1 and len(sink.ois) == 1
    st = route.extra
    assert (st.mark, st.index, st.funding, st.next_funding) == (29023.6, 28566.94, None, None)


def test_single_side_open_interest_is_preferred_when_sent() -> None:
    f, sink = feed("linear", ["BTCUSDT"], ["openInterest"])
    frame = (b'{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
             b'"markPrice":"66666.60","openInterest":"492373.72","openInterestValue":'
             b'"32824881841.75","singleOpenInterest":"246186.86","singleOpenInterestValue":'
             b'"16412440920.88","fundingIntervalHour":"8","fundingRate":"0.0001",'
             b'"nextFundingTime":"1760428800000"},"cs":1,"ts":1760409119857}')
    f.decode(frame, T0)
    assert sink.ois == [OpenInterest("bybit_linear", "BTCUSDT", 1760409119857 * MS, T0,
                                     246186.86, 16412440920.88)]
    assert not sink.tickers  # markPrice not subscribed


def test_funding_interval_from_the_ticker_wins() -> None:
    f, sink = feed("linear", ["XRPUSDT"], ["markPrice"])
    f.funding_hours["XRPUSDT"] = 8.0  # a stale listing
    frame = (b'{"topic":"tickers.XRPUSDT","type":"snapshot","data":{"symbol":"XRPUSDT",'
             b'"markPrice":"2.0","indexPrice":"2.001","fundingRate":"-0.0002",'
             b'"nextFundingTime":"1760428800000","fundingIntervalHour":"4"},"cs":1,'
             b'"ts":1760409119857}')
    f.decode(frame, T0)
    assert sink.tickers == [DerivativeTicker("bybit_linear", "XRPUSDT", 1760409119857 * MS, T0,
                                             2.0, 2.001, -0.0002, 1760428800000 * MS, 4.0)]


def test_all_liquidation_side_is_the_order_side() -> None:
    f, sink = feed("linear", ["PIPPINUSDT"], ["liquidations"])
    assert f.streams == ["allLiquidation.PIPPINUSDT"]
    f.decode(sample("allLiquidation.PIPPINUSDT"), T0)
    # S "Sell": a short position was liquidated, by a buy order
    assert sink.liquidations == [Liquidation("bybit_linear", "PIPPINUSDT", 1740480207110 * MS,
                                             T0, "buy", 0.02456, 2846.0)]


def test_frames_laid_out_differently_take_the_slow_path() -> None:
    f, sink = feed("linear", ["PIPPINUSDT"], ["liquidations"])
    frame = (b'{"ts":1740480207578,"type":"snapshot","topic":"allLiquidation.PIPPINUSDT",'
             b'"data":{"T":1740480207110,"s":"PIPPINUSDT","S":"Buy","v":"2846","p":"0.02456"}}')
    assert f.control(frame) is None
    assert f.decode(frame, T0) is not None
    assert sink.liquidations == [Liquidation("bybit_linear", "PIPPINUSDT", 1740480207110 * MS,
                                             T0, "sell", 0.02456, 2846.0)]


# ---- instruments --------------------------------------------------------------------------------


def test_instruments_of_each_category() -> None:
    spot, _ = feed("spot", [], [])
    assert spot.instrument_paths() == ["/v5/market/instruments-info?category=spot"]
    got = spot.decode_instruments([(FIXTURES / "instruments_spot.json").read_bytes()], T0)
    assert got == {"BTCUSDT": Instrument("bybit_spot", "BTCUSDT", "bybit", "spot", "BTC", "USDT",
                                         False, 1.0, 0.1, 0.000001, None, T0)}
    assert spot.funding_hours == {}

    hours: dict[str, float] = {}
    linear = BybitFeed(MARKETS["bybit_linear"], [], [], Sink(), funding_hours=hours)
    assert linear.instrument_paths() == [
        "/v5/market/instruments-info?category=linear&limit=1000"]
    got = linear.decode_instruments([(FIXTURES / "instruments_linear.json").read_bytes()], T0)
    assert got == {  # BIOUSDT is PreLaunch: left out
        "BTCUSDT": Instrument("bybit_linear", "BTCUSDT", "bybit", "perpetual", "BTC", "USDT",
                              False, 1.0, 0.1, 0.001, None, T0),
        "XRPUSDT": Instrument("bybit_linear", "XRPUSDT", "bybit", "perpetual", "XRP", "USDT",
                              False, 1.0, 0.0001, 1.0, None, T0),
        "BTC-26DEC25": Instrument("bybit_linear", "BTC-26DEC25", "bybit", "future", "BTC",
                                  "USDT", False, 1.0, 0.5, 0.001, 1766736000000 * MS, T0),
    }
    assert hours == {"BTCUSDT": 8.0, "XRPUSDT": 4.0}  # fundingInterval 480 and 240 minutes

    inverse, _ = feed("inverse", [], [])
    got = inverse.decode_instruments([(FIXTURES / "instruments_inverse.json").read_bytes()], T0)
    assert got == {  # BTCUSDM23 is Delivering: left out
        "BTCUSD": Instrument("bybit_inverse", "BTCUSD", "bybit", "perpetual", "BTC", "USD",
                             True, 1.0, 0.5, 1.0, None, T0),
        "BTCUSDU23": Instrument("bybit_inverse", "BTCUSDU23", "bybit", "future", "BTC", "USD",
                                True, 1.0, 0.5, 1.0, 1695974400000 * MS, T0),
    }
    assert inverse.funding_hours == {"BTCUSD": 8.0}
    assert inverse.funding_info_path() is None
    assert inverse.depth_path("BTCUSD") is None and inverse.open_interest_path("BTCUSD") is None


def test_instruments_error_body_is_a_venue_error() -> None:
    f, _ = feed("linear", [], [])
    with pytest.raises(VenueError):
        f.decode_instruments([b'{"retCode":10001,"retMsg":"params error","result":{}}'], T0)
    with pytest.raises(DecodeError):
        f.decode_instruments([b'{"retCode":0,"result":{"list":[{"symbol":"X","baseCoin":"X",'
                              b'"quoteCoin":"USDT","status":"Trading","contractType":"Linear'
                              b'Perpetual","priceFilter":{"tickSize":"NaN"}}]}}'], T0)


# ---- control frames, requests, options ----------------------------------------------------------


def test_control_frames() -> None:
    f, sink = feed("linear", ["BTCUSDT"], ["depth"])
    spot_pong = b'{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e","op":"ping"}'
    linear_pong = (b'{"success":true,"ret_msg":"pong","conn_id":"465772b1","req_id":"",'
                   b'"op":"ping"}')
    private_pong = b'{"req_id":"test","op":"pong","args":["1675418560633"],"conn_id":"c"}'
    ack = (b'{"success":true,"ret_msg":"subscribe","conn_id":"2324d924","req_id":"10001",'
           b'"op":"subscribe"}')
    ack_empty = b'{"success":true,"ret_msg":"","op":"unsubscribe","conn_id":"c"}'
    for frame in (spot_pong, linear_pong, private_pong):
        assert f.control(frame) == "pong"
        assert f.decode(frame, T0) is None
    for frame in (ack, ack_empty):
        assert f.control(frame) == "ack"
        assert f.decode(frame, T0) is None
    refused = (b'{"success":false,"ret_msg":"error:handler not found,topic:orderbook.1.BTCUSDTX",'
               b'"conn_id":"d","req_id":"","op":"subscribe"}')
    assert f.control(refused) is None
    with pytest.raises(VenueError, match="handler not found"):
        f.decode(refused, T0)
    assert f.control(ob500_lines()[0]) is None  # data
    assert f.inflate is None
    assert sink.count() == 0 and all(r.frames == 0 for r in f.routes.values())


def test_requests_endpoint_and_streams() -> None:
    f, _ = feed("linear", [f"S{i}USDT" for i in range(9)],
                ["depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations"])
    streams = f.streams
    assert len(streams) == 9 * 5 and streams[:5] == [
        "orderbook.1000.S0USDT", "orderbook.1.S0USDT", "publicTrade.S0USDT", "tickers.S0USDT",
        "allLiquidation.S0USDT"]
    assert f.routes[b"tickers.S0USDT"].channel == "markPrice"
    msgs = [json.loads(m) for m in f.subscribe_messages(streams)]
    assert [len(m["args"]) for m in msgs] == [10, 10, 10, 10, 5]
    assert [a for m in msgs for a in m["args"]] == streams
    assert {m["op"] for m in msgs} == {"subscribe"}
    assert len({m["req_id"] for m in msgs}) == 5
    unsub = [json.loads(m) for m in f.unsubscribe_messages(["orderbook.1000.S0USDT"])]
    assert unsub[0]["op"] == "unsubscribe" and unsub[0]["args"] == ["orderbook.1000.S0USDT"]
    assert f.book_stream("S3USDT") == "orderbook.1000.S3USDT"
    assert f.ws_endpoint("wss://stream.bybit.com") == "wss://stream.bybit.com/v5/public/linear"
    assert f.ws_endpoint("ws://127.0.0.1:9000/") == "ws://127.0.0.1:9000/v5/public/linear"
    assert f.add_symbol("s0usdt") == []
    assert f.add_symbol("newusdt")[0] == "orderbook.1000.NEWUSDT"
    assert f.rest_headers("key") is None and f.snapshot_levels == 1000

    spot, _ = feed("spot", ["BTCUSDT"], ["depth", "markPrice", "openInterest", "liquidations"],
                   depth=200)
    assert spot.streams == ["orderbook.200.BTCUSDT"]  # no tickers or liquidations on spot
    assert spot.ws_endpoint("wss://stream.bybit.com") == "wss://stream.bybit.com/v5/public/spot"
    one, _ = feed("inverse", ["BTCUSD"], ["depth", "bookTicker"], depth=1)
    assert one.streams == ["orderbook.1.BTCUSD"]  # one topic serves book and quote


def test_options_and_the_registry_entry() -> None:
    spot = MARKETS["bybit_spot"]
    with pytest.raises(OptionError):
        BybitFeed.check_options(spot, {"depth": 500})  # never offered on spot
    with pytest.raises(msgspec.ValidationError):
        BybitFeed.check_options(spot, {"depth": 100})
    with pytest.raises(msgspec.ValidationError):
        BybitFeed.check_options(spot, {"speed": "100ms"})
    assert BybitFeed.check_options(MARKETS["bybit_linear"], {}).depth == 1000
    assert VENUE.name == "bybit" and VENUE.feed is BybitFeed
    assert VENUE.emulator == "analyzer.venues.bybit.emulate"
    for m in MARKETS.values():
        assert m.snapshot_source == "ws" and m.heartbeat == b'{"op":"ping"}'
        assert m.heartbeat_seconds == 20.0 and m.ws_url == "wss://stream.bybit.com"
    assert MARKETS["bybit_inverse"].fees.settlement == 0.0005


# ---- bad input ---------------------------------------------------------------------------------


def bad(f: BybitFeed, sink: Sink, frame: bytes, error: type[DecodeError], channel: str) -> None:
    with pytest.raises(error) as info:
        f.decode(frame, T0)
    assert info.value.channel == channel
    assert sink.count() == 0


def test_bad_frames_raise_and_emit_nothing() -> None:
    f, sink = feed("linear", ["XRPUSDT", "BTCUSDT"], ["depth", "trades", "markPrice"], depth=500)
    snapshot = ob500_lines()[0]
    bad(f, sink, snapshot[: len(snapshot) // 2], DecodeError, "depth")  # truncated
    m = json.loads(snapshot)
    m["data"]["b"][3][0] = "NaN"
    bad(f, sink, json.dumps(m).encode(), DecodeError, "depth")
    m["data"]["b"][3][0] = "-1.9528"
    bad(f, sink, json.dumps(m).encode(), DecodeError, "depth")
    m = json.loads(snapshot)
    m["data"]["a"][0][1] = "-5"
    bad(f, sink, json.dumps(m).encode(), DecodeError, "depth")
    m = json.loads(snapshot)
    m["type"] = "partial"
    bad(f, sink, json.dumps(m).encode(), DecodeError, "depth")
    trade = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,'
             b'"S":"Buy","v":"0.001","p":"-16578.50","i":"x"}]}')
    bad(f, sink, trade, DecodeError, "trades")
    bad(f, sink, trade.replace(b'"-16578.50"', b'"16578.50"').replace(b'"Buy"', b'"Up"'),
        DecodeError, "trades")
    ticker = (b'{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"fundingRate":"5"'
              b'}}')
    bad(f, sink, ticker, DecodeError, "markPrice")
    bad(f, sink, ticker.replace(b'"fundingRate":"5"', b'"markPrice":"inf"'), DecodeError,
        "markPrice")
    # topics nobody subscribed to, on both paths
    bad(f, sink, sample("liquidation.XRPUSD"), UnknownStream, "other")
    bad(f, sink, sample("liquidation.GALAUSDT"), UnknownStream, "other")  # data before topic
    bad(f, sink, sample("tickers.BTCUSD"), UnknownStream, "other")
    bad(f, sink, sample("orderbook.1.BTCUSDT"), UnknownStream, "other")
    # not JSON, not an object, neither data nor reply
    bad(f, sink, b"pong", DecodeError, "other")
    bad(f, sink, b"[1,2]", DecodeError, "other")
    bad(f, sink, b'{"hello":"world"}', DecodeError, "other")
    assert all(r.frames == 0 for r in f.routes.values())
    # and the stream goes on
    assert f.decode(snapshot, T0) is not None and len(sink.books) == 1
