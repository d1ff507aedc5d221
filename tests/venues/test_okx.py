"""OKX v5 collector side: recorded frames through ``OkxFeed`` (fixtures: tests/fixtures/okx/)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

import msgspec
import pytest

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Quote, Trade
from analyzer.feed.book import OrderBook
from analyzer.venues.base import DecodeError, OptionError, UnknownStream, VenueError
from analyzer.venues.okx import MARKETS, VENUE, OkxFeed
from analyzer.venues.okx.decode import OkxRules, book_checksum, signed_crc32

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "okx"
MS = 1_000_000
T = 1_700_000_000_000_000_000  # a local receipt time


class Recorder:
    """A Sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[object] = []

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
        self.events.append(("gap", symbol, first_missing, last_missing))

    def on_duplicate(self) -> None:
        self.events.append("duplicate")


class BookChecker(Recorder):
    """A Sink that rebuilds each book as its changes arrive (as the book keeper does: the
    change is applied before the next frame is decoded) and checks the venue's checksum."""

    def __init__(self) -> None:
        super().__init__()
        self.rules: OkxRules | None = None
        self.books: dict[str, OrderBook] = {}
        self.checked: Counter[str] = Counter()
        self.differing: list[tuple[str, int]] = []

    def on_book(self, ev: BookChange) -> None:
        super().on_book(ev)
        book = self.books.setdefault(ev.symbol, OrderBook())
        if ev.is_snapshot:
            book.apply_snapshot(ev.bids, ev.asks)
        else:
            book.apply(ev.bids, ev.asks)
        if ev.checksum:  # 0: none sent, not checked
            assert self.rules is not None
            self.checked[ev.symbol] += 1
            if self.rules.checksum(ev.symbol, book) != ev.checksum:
                self.differing.append((ev.symbol, ev.ts_exchange))


def _instruments() -> dict[str, Instrument]:
    """The trimmed recorded listing, decoded by each market's feed."""
    out: dict[str, Instrument] = {}
    for line in (FIXTURES / "OKX.0.txt").read_text().splitlines():
        url, rest = line.split(" -> ", 1)
        body = rest.split(": ", 1)[1].encode()
        kind = url.rsplit("=", 1)[1]
        venue = {"SPOT": "okx_spot", "SWAP": "okx_swap", "FUTURES": "okx_futures"}[kind]
        out.update(OkxFeed(MARKETS[venue], [], [], Recorder()).decode_instruments([body], 7))
    return out


INSTRUMENTS = _instruments()


def _feed(venue: str, symbols: list[str], channels: list[str], **kw: object
          ) -> tuple[OkxFeed, BookChecker]:
    sink = BookChecker()
    feed = OkxFeed(MARKETS[venue], symbols, channels, sink, **kw)  # type: ignore[arg-type]
    feed.set_instruments(INSTRUMENTS)
    sink.rules = feed.rules
    return feed, sink


def _ws_frames() -> list[bytes]:
    """The received frames of the cryptofeed capture, in order."""
    lines = (FIXTURES / "OKX.ws.1.0.txt").read_text().splitlines()[1:]
    # sent frames start with the url
    return [ln.split(": ", 1)[1].encode() for ln in lines if not ln.startswith("wss://")]


def _sample(name: str) -> bytes:
    """A crypto-msg-parser frame by ``source_module/source_fn``."""
    for line in (FIXTURES / "okx_raw_msgs.ndjson").read_text().splitlines():
        d = json.loads(line)
        if f"{d['source_module']}/{d['source_fn']}" == name:
            return d["raw"].encode()
    raise KeyError(name)


def _tardis(file: str, channel: str, n: int = 0) -> bytes:
    """The ``n``-th tardis-node frame of a channel."""
    lines = [ln for ln in (FIXTURES / file).read_text().splitlines()
             if f'"channel":"{channel}"' in ln and '"generated"' not in ln]
    return lines[n].encode()


# ---- the venue and its markets ----------------------------------------------------------------


def test_venue_and_markets() -> None:
    assert VENUE.name == "okx" and VENUE.emulator == "analyzer.venues.okx.emulate"
    assert set(VENUE.markets) == {"okx_spot", "okx_swap", "okx_futures"}
    spot, swap, fut = (MARKETS[v] for v in ("okx_spot", "okx_swap", "okx_futures"))
    assert spot.is_spot and not swap.is_spot and not fut.is_spot
    assert (spot.kind, swap.kind, fut.kind) == ("SPOT", "SWAP", "FUTURES")
    for m in (spot, swap, fut):
        assert m.exchange == "okx" and m.ws_url == "wss://ws.okx.com:8443"
        assert m.rest_url == "https://www.okx.com"
        assert m.heartbeat == b"ping" and m.heartbeat_seconds == 20.0 < 30
        assert m.snapshot_source == "ws"
        assert m.max_messages_per_second <= 3  # paced: a subscribe holds many channels
    assert (spot.fees.maker, spot.fees.taker) == (0.0008, 0.001)
    assert (swap.fees.maker, swap.fees.taker) == (0.0002, 0.0005)
    feed, _ = _feed("okx_swap", [], [])
    assert feed.ws_endpoint("wss://ws.okx.com:8443") == "wss://ws.okx.com:8443/ws/v5/public"
    assert feed.ws_endpoint("ws://127.0.0.1:9000/okx_swap/") == (
        "ws://127.0.0.1:9000/okx_swap/ws/v5/public")
    assert feed.instrument_paths() == ["/api/v5/public/instruments?instType=SWAP"]
    assert feed.depth_path("BTC-USDT-SWAP") is None and feed.trades_path("X", 1) is None
    assert feed.open_interest_path("X") is None and feed.funding_info_path() is None
    assert feed.rest_headers("key") is None and feed.last_trade_id == {}


# ---- books: the recorded capture against the venue's own checksum -----------------------------


def test_recorded_books_match_every_checksum() -> None:
    """Replay the 2022 capture (three markets on one socket) through three feeds; rebuild each
    book with OrderBook; our checksum equals the frame's on every book message."""
    feeds = [
        _feed("okx_spot", ["BTC-USDT"], ["depth", "trades"]),
        _feed("okx_swap", ["UNI-USD-SWAP"], ["depth", "trades"]),
        _feed("okx_futures", ["BTC-USD-220527"], ["depth", "trades"]),
    ]
    kinds: Counter[str] = Counter()
    for frame in _ws_frames():
        control = feeds[0][0].control(frame)
        if control is not None:
            kinds[control] += 1
            continue
        taken = 0
        for feed, _ in feeds:
            with contextlib.suppress(UnknownStream):
                taken += feed.decode(frame, T) is not None
        if not taken:
            assert b'"channel":"tickers"' in frame
        kinds["data" if taken else "unknown"] += taken or 1
    # 18 subscribe acks, 28 tickers (not subscribed), 74 trades + 290 book frames
    assert kinds == Counter(ack=18, unknown=28, data=364)
    checked = sum((sink.checked for _, sink in feeds), Counter())
    assert checked == {"BTC-USD-220527": 99, "BTC-USDT": 98, "UNI-USD-SWAP": 93}
    assert sum(checked.values()) == 290
    assert [d for _, sink in feeds for d in sink.differing] == []
    for _, sink in feeds:
        books = [e for e in sink.events if isinstance(e, BookChange)]
        assert books[0].is_snapshot and not any(e.is_snapshot for e in books[1:])
        assert {(e.first_id, e.last_id, e.prev_id) for e in books} == {(-1, -1, -1)}  # 2022
        assert all(not book.is_crossed() for book in sink.books.values())


def _book_frames(symbol: str) -> list[bytes]:
    head = f'{{"arg":{{"channel":"books","instId":"{symbol}"}}'.encode()
    return [f for f in _ws_frames() if f.startswith(head)]


def _replay_checksums(feed: OkxFeed, sink: BookChecker, frames: list[bytes]) -> list[bool]:
    """Decode ``frames`` (the sink rebuilds the book) and say for each whether the checksum
    matched."""
    out = []
    for frame in frames:
        before = len(sink.differing)
        feed.decode(frame, T)
        out.append(len(sink.differing) == before)
    return out


def test_corrupted_level_makes_the_checksum_differ() -> None:
    frames = _book_frames("BTC-USDT")[:5]
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["depth"])
    assert _replay_checksums(feed, sink, frames) == [True] * 5
    # one size string of the snapshot's best bid changed: its value ...
    snap = json.loads(frames[0])
    px, sz = snap["data"][0]["bids"][0][:2]
    assert (px, sz) == ("30243.4", "0.0012029")
    snap["data"][0]["bids"][0][1] = "0.0012030"
    edited = json.dumps(snap, separators=(",", ":")).encode()
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["depth"])
    replay = _replay_checksums(feed, sink, [edited, *frames[1:]])
    # wrong until the second update sets that level anew (["30243.4","0.3066629","0","3"])
    assert replay == [False, False, True, True, True]
    # ... or only its text: the same number written "0.233930" (the checksum hashes the text)
    snap["data"][0]["bids"][0][1] = "0.00120290"
    edited = json.dumps(snap, separators=(",", ":")).encode()
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["depth"])
    assert _replay_checksums(feed, sink, [edited])[0] is False
    assert sink.events[-1].bids[0] == (30243.4, 0.0012029)  # the value itself is unchanged


def test_checksum_with_uneven_sides() -> None:
    """A side shorter than the other: its levels end, the longer side's remaining levels follow
    alone. Recorded: an option snapshot with no bids at all (crypto-msg-parser). (The other
    single snapshots in the samples were shortened by their authors and match no checksum.)"""
    d = json.loads(_sample("l2_event/option_snapshot"))["data"][0]
    assert (d["bids"], len(d["asks"])) == ([], 2)
    assert book_checksum([], [tuple(lv) for lv in d["asks"]]) == d["checksum"] == 971343753
    assert signed_crc32("0.0005:305:0.001:550") == 971343753
    bids = [("1.27803", "2", "0", "1"), ("1.27802", "65", "0", "1")]
    asks = [("1.27898", "65", "0", "1")]
    assert book_checksum(bids, asks) == signed_crc32("1.27803:2:1.27898:65:1.27802:65")
    assert book_checksum(asks, bids) == signed_crc32("1.27898:65:1.27803:2:1.27802:65")


def test_checksum_zero_is_not_checked_and_texts_are_not_kept() -> None:
    """Since 2026 OKX sends checksum 0: the event says 0 (not checked) and the feed keeps no
    level texts for that book (one parse a frame)."""
    frames = _book_frames("BTC-USDT")[:2]
    zeroed = [json.loads(f) for f in frames]
    for d in zeroed:
        d["data"][0]["checksum"] = 0
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["depth"])
    for d in zeroed:
        feed.decode(json.dumps(d, separators=(",", ":")).encode(), T)
    assert [ev.checksum for ev in sink.events] == [0, 0]
    assert feed.texts == {}
    book = OrderBook()
    book.apply_snapshot(sink.events[0].bids, sink.events[0].asks)
    assert feed.rules.checksum("BTC-USDT", book) == 0  # nothing to compare with
    # a later snapshot with a checksum starts keeping them again
    feed.decode(frames[0], T)
    assert set(feed.texts) == {"BTC-USDT"}


def test_inverse_and_linear_book_units() -> None:
    """Inverse books stay in contracts; a linear contract's sizes become base units (ctVal)."""
    inv, sink = _feed("okx_swap", ["UNI-USD-SWAP"], ["depth"])
    inv.decode(_book_frames("UNI-USD-SWAP")[0], T)
    snap = sink.events[0]
    assert snap.is_snapshot and snap.asks[0] == (5.148, 60.0)  # ["5.148","60","0","1"]: 60 x 10 USD
    lin, sink = _feed("okx_swap", ["BTC-USDT-SWAP"], ["depth"])
    frame = json.loads(_sample("l2_event/linear_future_snapshot"))  # BTC-USDT-220325 levels
    frame["arg"] = {"channel": "books", "instId": "BTC-USDT-SWAP"}
    lin.decode(json.dumps(frame, separators=(",", ":")).encode(), T)
    ev = sink.events[0]
    assert frame["data"][0]["asks"][0][:2] == ["43741.9", "4"]
    assert ev.asks[0] == (43741.9, pytest.approx(0.04))  # 4 contracts x 0.01 BTC
    assert ev.bids[2] == (43738.0, pytest.approx(0.34))  # 34 contracts
    assert ev.ts_exchange == 1646314548269 * MS and ev.ts_local == T
    assert ev.checksum == 2127111983 and ev.is_snapshot


# ---- seqId / prevSeqId ------------------------------------------------------------------------


def _seq_frame(action: str, seq: int, prev: int, bids: list[list[str]]) -> bytes:
    """A ``books`` frame in the documented shape (docs "Order book channel"), with seqIds."""
    return json.dumps({
        "arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action,
        "data": [{"asks": [["8476.98", "415", "0", "13"]], "bids": bids,
                  "ts": "1597026383085", "checksum": 0, "prevSeqId": prev, "seqId": seq}],
    }, separators=(",", ":")).encode()


def test_seq_id_chain() -> None:
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["depth"])
    chain = [("snapshot", 10, -1), ("update", 15, 10), ("update", 15, 15),  # no change: same id
             ("update", 3, 15),  # the sequence restarts after maintenance, still chained
             ("update", 5, 3)]
    for action, seq, prev in chain:
        feed.decode(_seq_frame(action, seq, prev, [["8476.97", "256", "0", "12"]]), T)
    evs = sink.events
    assert [(e.is_snapshot, e.first_id, e.last_id, e.prev_id) for e in evs] == [
        (True, 10, 10, -1), (False, 15, 15, 10), (False, 15, 15, 15), (False, 3, 3, 15),
        (False, 5, 5, 3)]
    rules = feed.rules
    assert rules.bridges(evs[0].last_id, evs[1])
    assert all(rules.follows(a.last_id, b) for a, b in pairwise(evs[1:]))
    # a lost frame breaks the chain
    lost = BookChange("okx_spot", "BTC-USDT", 0, 0, False, [], [], 22, 22, 20)
    assert not rules.follows(15, lost) and not rules.bridges(10, lost)
    # a change older than the snapshot is stale; the one chained to it is not
    old = BookChange("okx_spot", "BTC-USDT", 0, 0, False, [], [], 8, 8, 6)
    assert rules.is_stale(10, old) and not rules.is_stale(10, evs[1])
    # 2022 frames carry no seqIds: -1 follows -1 (continuity rests on the checksum)
    legacy = BookChange("okx_spot", "BTC-USDT", 0, 0, False, [], [], -1, -1, -1)
    assert rules.follows(-1, legacy) and not rules.is_stale(-1, legacy)


# ---- the other channels, by hand --------------------------------------------------------------


def test_trades_linear_and_inverse() -> None:
    lin, sink = _feed("okx_swap", ["BTC-USDT-SWAP", "BTC-USD-SWAP"], ["trades"])
    lin.decode(_sample("trade/linear_swap"), T)
    lin.decode(_sample("trade/inverse_swap"), T)
    a, b = sink.events
    assert a == Trade("okx_swap", "BTC-USDT-SWAP", 1646312440645 * MS, T, "219066264",
                      43568.8, pytest.approx(0.07), "buy", "trade")  # 7 contracts x 0.01 BTC
    assert b == Trade("okx_swap", "BTC-USD-SWAP", 1646312664791 * MS, T, "173543957",
                      43574.9, 1.0, "sell", "trade")  # 1 contract of 100 USD
    spot, sink = _feed("okx_spot", ["BTC-USDT"], ["trades"])
    spot.decode(_sample("trade/spot"), T)
    assert sink.events == [Trade("okx_spot", "BTC-USDT", 1646311839593 * MS, T, "314161276",
                                 43474.1, 0.00373695, "buy", "trade")]
    # the documented 2024 shape: an aggregate of 3 fills by one taker order at one price
    doc = (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
           b'"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",'
           b'"ts":"1630048897897","count":"3","source":"0","seqId":1234}]}')
    spot.decode(doc, T)
    assert sink.events[-1].kind == "aggTrade" and sink.events[-1].size == 0.12060306


# ---- recent trades over REST (the reconnect backfill) -----------------------------------------


def test_rest_trades_body_of_the_docs_decodes_field_by_field() -> None:
    """The docs' example answer (fixtures/okx/trades_rest.json): two BTC-USDT fills, newest
    first; decoded oldest first."""
    feed, _ = _feed("okx_spot", ["BTC-USDT"], ["trades"])
    assert feed.recent_trades_path("BTC-USDT") == "/api/v5/market/trades?instId=BTC-USDT&limit=500"
    assert feed.rest_weights["trades"] == 1
    old, new = feed.decode_trades((FIXTURES / "trades_rest.json").read_bytes(), "BTC-USDT", T)
    assert old == Trade("okx_spot", "BTC-USDT", 1654161641568 * MS, T, "242720719", 29964.1,
                        0.00001, "sell", "trade")
    assert new.venue == "okx_spot" and new.symbol == "BTC-USDT"
    assert new.trade_id == "242720720"  # tradeId
    assert new.price == 29963.2 and new.size == 0.00001  # px; sz in base units (spot)
    assert new.side == "sell"  # the taker's
    assert new.ts_exchange == 1654161646974 * MS and new.ts_local == T
    assert new.kind == "trade"


def _rest(*rows: dict[str, str]) -> bytes:
    return json.dumps({"code": "0", "msg": "", "data": list(rows)}).encode()


def test_rest_trades_equal_the_stream_trades_of_the_same_executions() -> None:
    """The channel's trade and the REST fill of one execution (recorded frames, rewritten under
    the REST keys; the docs' REST trade, rewritten as a channel frame) are the same Trade:
    id, price, size in the unit system (linear contracts x ctVal), side, time, kind."""
    for venue, name in (("okx_spot", "trade/spot"), ("okx_swap", "trade/linear_swap"),
                        ("okx_swap", "trade/inverse_swap"), ("okx_futures", "trade/linear_future"),
                        ("okx_futures", "trade/inverse_future")):
        frame = json.loads(_sample(name))
        inst = frame["arg"]["instId"]
        feed, sink = _feed(venue, [inst], ["trades"])
        feed.set_instruments({inst: INSTRUMENTS.get(inst) or _listed_like(inst)})
        feed.decode(_sample(name), T)
        [ws] = sink.events
        [rest] = feed.decode_trades(_rest(*[d | {"source": "0"} for d in frame["data"]]), inst, T)
        assert rest == ws, name
    doc = json.loads((FIXTURES / "trades_rest.json").read_text())["data"][0]
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["trades"])
    feed.decode(json.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"},
                            "data": [doc | {"count": "1"}]}).encode(), T)
    assert feed.decode_trades(_rest(doc), "BTC-USDT", T) == sink.events


def _listed_like(inst: str) -> Instrument:
    """A listed future of the same kind (the recorded listing has other expiries; its contract
    size applies to both decodes alike)."""
    like = {"BTC-USDT-220325": "ETH-USDT-220527", "BTC-USD-220325": "BTC-USD-220527"}[inst]
    return msgspec.structs.replace(INSTRUMENTS[like], symbol=inst)


def test_rest_fills_are_aggregated_as_the_channel_does() -> None:
    """The docs' channel example, an aggregate of 3 fills of one taker order (tradeId
    130639474 the last), against its 3 fills as REST rows (ids 130639472-474, sizes summing
    to 0.12060306): one Trade, the channel's. A fill of another price, side or time, or not
    the next id, stays a trade of its own."""
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["trades"])
    feed.decode(b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
                b'"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",'
                b'"ts":"1630048897897","count":"3","source":"0","seqId":1234}]}', T)
    fill = {"instId": "BTC-USDT", "side": "buy", "source": "0", "px": "42219.9",
            "ts": "1630048897897"}
    rows = [fill | {"tradeId": "130639474", "sz": "0.1"},
            fill | {"tradeId": "130639473", "sz": "0.02"},
            fill | {"tradeId": "130639472", "sz": "0.00060306"}]
    assert feed.decode_trades(_rest(*rows), "BTC-USDT", T) == sink.events
    assert sink.events[0].kind == "aggTrade"
    others = [fill | {"tradeId": "130639478", "sz": "1", "ts": "1630048897898"},
              fill | {"tradeId": "130639477", "sz": "1", "px": "42220"},
              fill | {"tradeId": "130639476", "sz": "1", "side": "sell"},
              fill | {"tradeId": "130639475", "sz": "1", "source": "1"},
              *rows,
              fill | {"tradeId": "130639470", "sz": "1"}]  # ...472 is not the next id
    got = feed.decode_trades(_rest(*others), "BTC-USDT", T)
    assert [t.trade_id for t in got] == ["130639470", "130639474", "130639475", "130639476",
                                         "130639477", "130639478"]
    assert got[1] == sink.events[0] and {t.kind for t in got[2:]} == {"trade"}


def test_rest_trades_errors() -> None:
    feed, _ = _feed("okx_swap", ["BTC-USDT-SWAP"], ["trades"])
    with pytest.raises(VenueError, match="51001"):
        feed.decode_trades(b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}',
                           "BTC-USDT-SWAP", T)
    row = {"instId": "BTC-USDT-SWAP", "tradeId": "1", "px": "1", "sz": "1", "side": "buy",
           "ts": "1654161646974"}
    for bad in ({"px": "-1"}, {"sz": "0"}, {"side": "Buy"}, {"ts": "x"},
                {"instId": "ETH-USDT-SWAP"}):
        with pytest.raises(DecodeError) as info:
            feed.decode_trades(_rest(row | bad), "BTC-USDT-SWAP", T)
        assert info.value.channel == "trades"
    unlisted, _ = _feed("okx_swap", ["XYZ-USDT-SWAP"], ["trades"])
    with pytest.raises(DecodeError, match="no instrument"):
        unlisted.decode_trades(_rest(row | {"instId": "XYZ-USDT-SWAP"}), "XYZ-USDT-SWAP", T)


def test_bbo_quotes() -> None:
    feed, sink = _feed("okx_swap", ["BTC-USDT-SWAP", "BTC-USD-SWAP"], ["bookTicker"])
    feed.decode(_sample("bbo/linear_swap"), T)
    feed.decode(_sample("bbo/inverse_swap"), T)
    a, b = sink.events
    assert a == Quote("okx_swap", "BTC-USDT-SWAP", 1656642503092 * MS, T, 20386.7,
                      pytest.approx(0.5), 20386.8, pytest.approx(0.07), -1)  # 50 / 7 contracts
    assert b == Quote("okx_swap", "BTC-USD-SWAP", 1656633600013 * MS, T, 19918.9, 34.0,
                      19920.0, 3.0, -1)


def test_mark_index_funding_and_open_interest_linear() -> None:
    """FIL-USDT-220325 (tardis futures frames): a linear future of 0.1 FIL a contract (expired
    by the 2022 listing, so its instrument is stated here: oiCcy / oi = 0.1 in the frame)."""
    fil = Instrument("okx_futures", "FIL-USDT-220325", "okx", "future", "FIL", "USDT", False,
                     1.0, 0.001, 0.1, 1648195200000 * MS, contract_value=0.1)
    sink = Recorder()
    feed = OkxFeed(MARKETS["okx_futures"], ["FIL-USDT-220325"], ["markPrice", "openInterest"],
                   sink)
    feed.set_instruments({"FIL-USDT-220325": fil})
    assert feed.streams == ["mark-price:FIL-USDT-220325", "index-tickers:FIL-USDT",
                            "open-interest:FIL-USDT-220325"]  # no funding on dated futures
    feed.decode(_tardis("okex_futures_v5.ndjson", "mark-price"), T)
    feed.decode(_tardis("okex_futures_v5.ndjson", "open-interest"), T)
    feed.decode(_tardis("okex_futures_v5.ndjson", "index-tickers"), T)
    mark, oi, index = sink.events
    assert mark == DerivativeTicker("okx_futures", "FIL-USDT-220325", 1640131204676 * MS, T,
                                    mark_price=36.232)
    assert oi == OpenInterest("okx_futures", "FIL-USDT-220325", 1640131202886 * MS, T,
                              pytest.approx(23687.0),  # 236870 contracts x 0.1 FIL = oiCcy
                              pytest.approx(858227.384))  # x the mark 36.232
    assert index == DerivativeTicker("okx_futures", "FIL-USDT-220325", 1640140200581 * MS, T,
                                     index_price=35.583)


def test_index_ticker_for_every_instrument_on_the_index() -> None:
    feed, sink = _feed("okx_swap", ["WNCG-USDT-SWAP"], ["markPrice"])
    assert feed.add_symbol("WNCG-USDT-SWAP") == []
    sink2 = Recorder()
    fut = OkxFeed(MARKETS["okx_futures"], ["BTC-USD-220527", "BTC-USD-220624"], ["markPrice"],
                  sink2)
    assert fut.streams.count("index-tickers:BTC-USD") == 1  # one stream, two instruments
    frame = _tardis("okex_swap_v5.ndjson", "index-tickers")
    feed.decode(frame, T)
    assert sink.events == [DerivativeTicker("okx_swap", "WNCG-USDT-SWAP", 1640131290649 * MS, T,
                                            index_price=2.1675)]
    btc = frame.replace(b"WNCG-USDT", b"BTC-USD")
    fut.decode(btc, T)
    assert [(e.symbol, e.index_price) for e in sink2.events] == [
        ("BTC-USD-220527", 2.1675), ("BTC-USD-220624", 2.1675)]


def test_funding_rate() -> None:
    hours: dict[str, float] = {}
    feed, sink = _feed("okx_swap", ["BTC-USDT-SWAP", "BTC-USD-SWAP", "SOS-USDT-SWAP"],
                       ["markPrice"], funding_hours=hours)
    feed.set_instruments({"SOS-USDT-SWAP": Instrument(
        "okx_swap", "SOS-USDT-SWAP", "okx", "perpetual", "SOS", "USDT", False, 1.0, 1e-8, 1e6,
        contract_value=1e6)})
    # 2022 frames: the coming settlement's rate and time, no nextFundingTime: interval unknown
    feed.decode(_sample("funding_rate/linear_swap"), T)
    assert sink.events[-1] == DerivativeTicker(
        "okx_swap", "BTC-USDT-SWAP", 0, T, funding_rate=0.0001534702159002,
        next_funding_time=1646323200000 * MS, funding_interval_hours=None)
    # a frame without fundingRate: no rate (never 0)
    feed.decode(_tardis("okex_swap_v5.ndjson", "funding-rate", 1), T)
    assert sink.events[-1].funding_rate is None
    assert sink.events[-1].next_funding_time == 1640851200000 * MS
    # OKX's documented push (docs "Funding rate channel", 2023): interval = nextFundingTime -
    # fundingTime = 8 h; nextFundingRate "" is no rate
    doc = (b'{"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},"data":[{"formulaType":'
           b'"noRate","fundingRate":"0.0001875391284828","fundingTime":"1700726400000",'
           b'"impactValue":"","instId":"BTC-USD-SWAP","instType":"SWAP","interestRate":"",'
           b'"method":"current_period","maxFundingRate":"0.00375","minFundingRate":"-0.00375",'
           b'"nextFundingRate":"","nextFundingTime":"1700755200000","premium":'
           b'"0.0001233824646391","settFundingRate":"0.0001699799259033","settState":"settled",'
           b'"ts":"1700724675402"}]}')
    feed.decode(doc, T)
    assert sink.events[-1] == DerivativeTicker(
        "okx_swap", "BTC-USD-SWAP", 1700724675402 * MS, T, funding_rate=0.0001875391284828,
        next_funding_time=1700726400000 * MS, funding_interval_hours=8.0)
    assert hours == {"BTC-USD-SWAP": 8.0}
    # lowered to 4 h: the interval follows every update
    feed.decode(doc.replace(b"1700755200000", b"1700740800000"), T)
    assert sink.events[-1].funding_interval_hours == 4.0 and hours["BTC-USD-SWAP"] == 4.0
    # a later frame without nextFundingTime keeps the last known interval
    inverse = _sample("funding_rate/inverse_swap")
    feed.decode(inverse, T)
    assert sink.events[-1] == DerivativeTicker(
        "okx_swap", "BTC-USD-SWAP", 0, T, funding_rate=0.0000734174532791,
        next_funding_time=1646323200000 * MS, funding_interval_hours=4.0)


def test_open_interest_inverse_and_linear_swap() -> None:
    feed, sink = _feed("okx_swap", ["BTC-USD-SWAP", "WNCG-USDT-SWAP"],
                       ["markPrice", "openInterest"])
    # the recorded REST body's BTC-USD-SWAP values in the channel's frame shape (no recorded
    # inverse open-interest frame): 4092973 contracts of 100 USD
    frame = (b'{"arg":{"channel":"open-interest","instId":"BTC-USD-SWAP"},"data":[{"instId":'
             b'"BTC-USD-SWAP","instType":"SWAP","oi":"4092973","oiCcy":"13840.048827662696883",'
             b'"ts":"1654348683853"}]}')
    feed.decode(frame, T)
    assert sink.events[-1] == OpenInterest("okx_swap", "BTC-USD-SWAP", 1654348683853 * MS, T,
                                           4092973.0, 409297300.0)
    # linear, ctVal 1 WNCG: before any mark, no value (the frame has no oiUsd)
    feed.decode(_tardis("okex_swap_v5.ndjson", "open-interest"), T)
    assert sink.events[-1] == OpenInterest("okx_swap", "WNCG-USDT-SWAP", 1640131258756 * MS, T,
                                           644195.0, None)
    feed.decode(_tardis("okex_swap_v5.ndjson", "mark-price"), T)
    assert sink.events[-1].mark_price == 2.1729
    feed.decode(_tardis("okex_swap_v5.ndjson", "open-interest"), T)
    assert sink.events[-1].value_usd == pytest.approx(644195 * 2.1729)  # 1,399,771.3155


# ---- instruments ------------------------------------------------------------------------------


def test_instruments_from_the_recorded_listing() -> None:
    ts = 7
    assert INSTRUMENTS["BTC-USDT"] == Instrument(
        "okx_spot", "BTC-USDT", "okx", "spot", "BTC", "USDT", False, 1.0, 0.1, 0.00000001,
        None, ts)
    # linear: 0.01 BTC a contract, its sizes converted to BTC at decode: contract_size 1
    assert INSTRUMENTS["BTC-USDT-SWAP"] == Instrument(
        "okx_swap", "BTC-USDT-SWAP", "okx", "perpetual", "BTC", "USDT", False, 1.0, 0.1,
        0.01, None, ts, contract_value=0.01)  # lotSz 1 contract = 0.01 BTC
    assert INSTRUMENTS["BTC-USD-SWAP"] == Instrument(  # inverse: 100 USD a contract
        "okx_swap", "BTC-USD-SWAP", "okx", "perpetual", "BTC", "USD", True, 100.0, 0.1, 1.0,
        None, ts)
    assert INSTRUMENTS["UNI-USD-SWAP"].contract_size == 10.0
    assert INSTRUMENTS["BTC-USD-220527"] == Instrument(  # inverse future, expTime 2022-05-27 08:00
        "okx_futures", "BTC-USD-220527", "okx", "future", "BTC", "USD", True, 100.0, 0.1, 1.0,
        1653638400000 * MS, ts)
    eth = INSTRUMENTS["ETH-USDT-220527"]
    assert (eth.market, eth.inverse, eth.contract_size, eth.contract_value, eth.base,
            eth.quote) == ("future", False, 1.0, 0.1, "ETH", "USDT")
    assert INSTRUMENTS["SHIB-USDT-SWAP"].contract_value == 1_000_000.0  # ccxt/ccxt#20580


def test_instruments_keep_live_ones_of_the_market_only() -> None:
    feed, _ = _feed("okx_swap", [], [])
    line = (FIXTURES / "OKX.0.txt").read_text().splitlines()[1]
    body = json.loads(line.split(" -> ", 1)[1].split(": ", 1)[1])
    body["data"][0]["state"] = "suspend"
    got = feed.decode_instruments([json.dumps(body).encode()], 1)
    assert body["data"][0]["instId"] not in got and len(got) == len(body["data"]) - 1
    spot_body = (FIXTURES / "OKX.0.txt").read_text().splitlines()[0]
    assert feed.decode_instruments([spot_body.split(": ", 1)[1].encode()], 1) == {}
    with pytest.raises(VenueError, match="50011"):
        feed.decode_instruments([b'{"code":"50011","msg":"Too Many Requests","data":[]}'], 1)
    with pytest.raises(DecodeError):
        feed.decode_instruments([b'{"code":"0","data":[{"instId":"X"}]}'], 1)


# ---- subscriptions and control frames ---------------------------------------------------------


def test_streams_and_subscriptions() -> None:
    feed, _ = _feed("okx_swap", ["BTC-USDT-SWAP"], ["depth", "trades", "bookTicker",
                                                    "markPrice", "openInterest"])
    assert feed.streams == [
        "books:BTC-USDT-SWAP", "trades:BTC-USDT-SWAP", "bbo-tbt:BTC-USDT-SWAP",
        "mark-price:BTC-USDT-SWAP", "index-tickers:BTC-USDT", "funding-rate:BTC-USDT-SWAP",
        "open-interest:BTC-USDT-SWAP"]
    assert feed.book_stream("BTC-USDT-SWAP") == "books:BTC-USDT-SWAP"
    assert feed.snapshot_levels == 400
    (msg,) = feed.subscribe_messages(feed.streams[:2])
    assert json.loads(msg) == {"op": "subscribe", "args": [
        {"channel": "books", "instId": "BTC-USDT-SWAP"},
        {"channel": "trades", "instId": "BTC-USDT-SWAP"}]}
    assert json.loads(feed.unsubscribe_messages(["books:BTC-USDT-SWAP"])[0])["op"] == (
        "unsubscribe")
    many = [f"books:COIN{i}-USDT-SWAP" for i in range(3000)]
    msgs = feed.subscribe_messages(many)
    assert len(msgs) > 1 and all(len(m) < 64 * 1024 for m in msgs)
    assert [a["instId"] for m in msgs for a in json.loads(m)["args"]] == [
        s.split(":")[1] for s in many]
    spot, _ = _feed("okx_spot", ["BTC-USDT"], ["depth", "markPrice", "openInterest"])
    assert spot.streams == ["books:BTC-USDT"]  # no derivative channels on spot


def test_options() -> None:
    assert OkxFeed.Options().book_channel == "books"
    feed, _ = _feed("okx_spot", ["BTC-USDT"], ["depth"],
                    options={"book_channel": "books50-l2-tbt"})
    assert feed.streams == ["books50-l2-tbt:BTC-USDT"] and feed.snapshot_levels == 50
    with pytest.raises(msgspec.ValidationError):
        OkxFeed.check_options(MARKETS["okx_spot"], {"book_channel": "books5"})
    with pytest.raises((msgspec.ValidationError, OptionError)):
        OkxFeed.check_options(MARKETS["okx_spot"], {"depth_speed": "100ms"})


def test_control_frames() -> None:
    feed, _ = _feed("okx_spot", ["BTC-USDT"], ["depth"])
    assert feed.control(b"pong") == "pong"
    assert feed.control(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},'
                        b'"connId":"a4d3ae55"}') == "ack"
    assert feed.control(b'{"event":"unsubscribe","arg":{"channel":"books","instId":'
                        b'"BTC-USDT"},"connId":"d0b44253"}') == "ack"
    notice = (b'{"event":"notice","code":"64008","msg":"The connection will soon be closed for'
              b' a service upgrade. Please reconnect.","connId":"a4d3ae55"}')
    assert feed.control(notice) == "restart"
    assert feed.control(b'{"event":"channel-conn-count","channel":"orders","connCount":"2",'
                        b'"connId":"abcd1234"}') == "ignore"
    error = (b'{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": '
             b'\\"subscribe\\"}","connId":"a4d3ae55"}')
    assert feed.control(error) is None  # left to decode
    with pytest.raises(VenueError, match="60012"):
        feed.decode(error, T)
    with pytest.raises(VenueError, match="64003"):
        feed.decode(b'{"event":"error","code":"64003","msg":"Your trading fee tier doesn\'t '
                    b'meet the requirement to access this channel"}', T)
    assert feed.control(_book_frames("BTC-USDT")[1]) is None  # data
    for frame in (b"pong", notice, b'{"event":"subscribe","arg":{"channel":"books"}}'):
        assert feed.decode(frame, T) is None  # control frames decode to nothing


# ---- bad input: an error, never an event ------------------------------------------------------


BAD = {
    "malformed JSON": (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","da',
                       DecodeError, "depth"),
    "NaN price": (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":'
                  b'[{"asks":[["NaN","1","0","1"]],"bids":[],"ts":"1652459225464",'
                  b'"checksum":0}]}', DecodeError, "depth"),
    "negative price": (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":'
                       b'"BTC-USDT","tradeId":"1","px":"-5","sz":"1","side":"buy",'
                       b'"ts":"1646311839593"}]}', DecodeError, "trades"),
    "negative size": (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
                      b'"data":[{"asks":[["30000","-1","0","1"]],"bids":[],'
                      b'"ts":"1652459225464"}]}', DecodeError, "depth"),
    "text for a size": (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":'
                        b'[["30000","abc","0","1"]],"bids":[["29999","1","0","1"]],'
                        b'"ts":"1652459225464"}]}', DecodeError, "bookTicker"),
    "short level": (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":'
                    b'[{"asks":[["30000","1"]],"bids":[],"ts":"1652459225464"}]}',
                    DecodeError, "depth"),
    "time out of range": (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":'
                          b'"BTC-USDT","tradeId":"1","px":"5","sz":"1","side":"buy",'
                          b'"ts":"1e30"}]}', DecodeError, "trades"),
    "unknown instId": (b'{"arg":{"channel":"books","instId":"ETH-USDT"},"action":"update",'
                       b'"data":[{"asks":[],"bids":[],"ts":"1652459225464"}]}',
                       UnknownStream, "other"),
    "unsubscribed channel": (b'{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[]}',
                             UnknownStream, "other"),
    "not json": (b"hello", DecodeError, "other"),
    "error event": (b'{"event":"error","code":"60018","msg":"Wrong URL or channel:books2,'
                    b'instId:BTC-USDT doesn\'t exist."}', VenueError, "other"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_raises_never_emits(name: str) -> None:
    frame, error, channel = BAD[name]
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["depth", "trades", "bookTicker"])
    with pytest.raises(error) as info:
        feed.decode(frame, T)
    assert info.value.channel == channel
    assert sink.events == []


def test_bad_derivative_input() -> None:
    feed, sink = _feed("okx_swap", ["BTC-USDT-SWAP"], ["markPrice", "openInterest", "trades"])
    bad = [
        # funding beyond ±100 %
        b'{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"fundingRate":'
        b'"1.5","fundingTime":"1646323200000"}]}',
        # a funding interval of a week
        b'{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"fundingRate":'
        b'"0.0001","fundingTime":"1700726400000","nextFundingTime":"1701331200000"}]}',
        # zero mark price
        b'{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"markPx":"0",'
        b'"ts":"1640131259180"}]}',
        # negative open interest
        b'{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"oi":"-1",'
        b'"oiCcy":"1","ts":"1640131258756"}]}',
    ]
    for frame in bad:
        with pytest.raises(DecodeError) as info:
            feed.decode(frame, T)
        assert info.value.channel in ("markPrice", "openInterest")
    # a linear contract without its listing: sizes cannot be converted, so no event
    bare = OkxFeed(MARKETS["okx_swap"], ["BTC-USDT-SWAP"], ["trades"], sink)
    with pytest.raises(DecodeError, match="no instrument"):
        bare.decode(_sample("trade/linear_swap"), T)
    assert sink.events == []


def test_frames_laid_out_differently_take_the_slow_path() -> None:
    feed, sink = _feed("okx_spot", ["BTC-USDT"], ["trades"])
    frame = json.loads(_sample("trade/spot"))
    reordered = json.dumps({"data": frame["data"], "arg": frame["arg"]}, indent=1).encode()
    route = feed.decode(reordered, T)
    assert route is not None and route.stream == "trades:BTC-USDT" and route.frames == 1
    assert sink.events[0].trade_id == "314161276"


def test_rules_type() -> None:
    feed, _ = _feed("okx_spot", [], [])
    assert isinstance(feed.rules, OkxRules) and callable(feed.rules.checksum)


def test_older_trades_page_back_by_trade_id_and_hold_the_cut_trade_whole() -> None:
    """history-trades ``after`` returns the fills older than it: the page after the aggregate
    whose last fill is 130639474 asks for ids below 130639475, so it holds that aggregate's
    every fill again (the collector drops a page's oldest trade when it pages on)."""
    feed, _ = _feed("okx_swap", ["BTC-USDT-SWAP"], ["trades"])
    assert feed.older_trades_path("BTC-USDT-SWAP", "130639474") == (
        "/api/v5/market/history-trades?instId=BTC-USDT-SWAP&type=1&after=130639475&limit=100")
    assert feed.older_trades_path("BTC-USDT-SWAP", "not-an-id") is None
