"""WEEX's recorded traffic: reading it (``WeexRecordings``) and what a replay keeps of it to
serve new subscriptions and REST (``WeexReplay``).

Recordings: plain V3 frames, one per line (the CryptoSmith-X capture: no local time, each is
timed by its ``E``), or analyzer captures ``<ts> <frame>``. A frame names its event and symbol,
not its stream: the stream is made from them (``BTCUSDT@depth15`` from ``"e":"depth"``,
``"l":15``; ``BTCUSDT@trade``; ``BTCUSDT@ticker``), the names clients subscribe. Replies, the
greeting and pings are skipped.

Replay. Each recorded depth frame is applied to the exchange's own book of its symbol (also
the frames a fault kept off the wire: the venue's book has them) and the chain ``U == previous
u`` is checked (``chain_breaks``). A client that subscribes a book the replay has already
started gets a snapshot of that book with the last ``u``, so that the recorded changes after it
chain to it; one that subscribes before the recorded snapshot is released gets that one in its
place. A trade subscription gets the latest 20 trades released (``tradeSnapshot``). REST:
a listing made up from the recorded symbols (steps from the recorded decimals), mark and index
from the last ticker frame (funding: the 0.01 % baseline every 8 h, as none is recorded).

Spot: no spot recording exists; a recording is taken for spot when its URLs name the spot host
(``ws-spot``/``api-spot``) or it holds ``bookTicker`` frames (a spot-only channel), and then
served with a spot listing (``tickSize``/``stepSize`` from the recorded decimals) and its
``bookTicker`` frames relayed as recorded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from analyzer.exchange.emulator import RestError
from analyzer.exchange.recordings import FRAME, INFO, REST, Event
from analyzer.venues.weex.emulate.book import depth_frame

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording

MS = 1_000_000
_E = re.compile(rb'"E":(\d{10,16})')
_HEAD = re.compile(rb'^\{"e":"(\w+)".*?"s":"(\w+)"')
_L = re.compile(rb'"l":(\d+)')
EVENT_STREAM = {b"depthSnapshot": b"depth", b"depth": b"depth", b"tradeSnapshot": b"trade",
                b"trade": b"trade", b"ticker": b"ticker", b"bookTicker": b"bookTicker"}
TRADES_KEPT = 20
HOUR_MS = 3_600_000
_encode = msgspec.json.encode


class _Frame(msgspec.Struct):
    e: str = ""
    E: int = 0
    s: str = ""
    U: int = 0
    u: int = 0
    l: int = 15  # noqa: E741 (WEEX's key)
    b: list[list[str]] = []
    a: list[list[str]] = []
    d: msgspec.Raw = msgspec.Raw(b"[]")


class _Ticker(msgspec.Struct):
    m: str = ""
    i: str = ""


_frame_decoder = msgspec.json.Decoder(_Frame)
_trades_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_ticker_decoder = msgspec.json.Decoder(list[_Ticker])


def stream_of(payload: bytes) -> bytes | None:
    """The stream a data frame comes on (None: not a data frame)."""
    m = _HEAD.match(payload)
    if m is None:
        return None
    kind = EVENT_STREAM.get(m[1])
    if kind is None:
        return None
    if kind == b"depth":
        n = _L.search(payload)
        return m[2] + b"@depth" + (n[1] if n is not None else b"15")
    return m[2] + b"@" + kind


def places(text: str) -> int:
    return len(text.partition(".")[2])


class ReplayBook:
    """One symbol's replayed book: levels (texts as recorded), last ``u`` and time, the
    depth of its stream, the change frames of this pass (fault positions count them)."""

    __slots__ = ("asks", "bids", "depth", "last_u", "price_places", "size_places", "ts_ms",
                 "updates")

    def __init__(self) -> None:
        self.bids: dict[float, tuple[str, str]] = {}  # price -> its texts as recorded
        self.asks: dict[float, tuple[str, str]] = {}
        self.last_u = -1
        self.ts_ms = 0
        self.depth = 15
        self.updates = 0
        self.price_places = 1
        self.size_places = 4

    def apply(self, f: _Frame) -> None:
        """Apply a frame's levels; the price decimals are those of the last level read, the
        size decimals the most seen."""
        last_price = None
        size_places = self.size_places
        for side, levels in ((self.bids, f.b), (self.asks, f.a)):
            for lv in levels:
                try:
                    price, size = float(lv[0]), float(lv[1])
                except (ValueError, IndexError):
                    continue  # a broken recorded level: nothing to keep
                last_price = lv[0]
                if size:
                    side[price] = (lv[0], lv[1])
                    if len(lv[1]) - 1 > size_places:  # (n characters: n - 1 decimals at most)
                        size_places = max(size_places, places(lv[1]))
                else:
                    side.pop(price, None)
        if last_price is not None:
            self.price_places = places(last_price)
        self.size_places = size_places
        self.last_u = f.u
        self.ts_ms = f.E or self.ts_ms
        self.depth = f.l or self.depth

    def snapshot(self, symbol: str, n: int) -> bytes:
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:n]]
        asks = [self.asks[p] for p in sorted(self.asks)[:n]]
        return depth_frame(
            "depthSnapshot", symbol, n, self.ts_ms, self.last_u, self.last_u,
            ",".join(f'["{p}","{q}"]' for p, q in bids),
            ",".join(f'["{p}","{q}"]' for p, q in asks),
        )


class WeexReplay:
    """The ``ReplayMarket`` of WEEX futures, or of spot with ``spot``."""

    def __init__(self, recording: Recording | None, spot: bool = False) -> None:
        self.spot = spot
        self.seen: set[str] = set(recording.symbols) if recording else set()
        self.first_ts = recording.first_ts if recording else 0
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, ReplayBook] = {}
        self.trades: dict[str, list[bytes]] = {}  # per symbol, the latest trades' texts
        self.tickers: dict[str, tuple[str, str, int]] = {}  # mark, index, ms
        self.now_ns = self.first_ts

    # -- the released frames -------------------------------------------------------------------

    def classify(self, stream: bytes) -> tuple[Any, str | None, bool]:
        symbol, _, channel = stream.partition(b"@")
        sym = symbol.decode()
        if channel.startswith(b"depth"):
            return self.on_depth, sym, True
        if channel == b"trade":
            return self.on_trades, sym, False
        if channel == b"ticker":
            return self.on_ticker, sym, False
        return None, sym, False

    def on_depth(self, symbol: str, frame: bytes) -> int:
        """Apply a recorded depth frame; its 1-based number among the symbol's changes (0: a
        snapshot, which faults leave alone, or undecodable)."""
        try:
            f = _frame_decoder.decode(frame)
        except msgspec.DecodeError:
            self.decode_errors += 1
            return 0
        rb = self.books.get(symbol)
        if rb is None:
            rb = self.books[symbol] = ReplayBook()
        if f.e == "depthSnapshot":
            rb.bids.clear()
            rb.asks.clear()
            rb.apply(f)
            return 0
        if rb.last_u >= 0 and rb.last_u != f.U:
            self.chain_breaks += 1
        rb.apply(f)
        rb.updates += 1
        return rb.updates

    def on_trades(self, symbol: str, frame: bytes) -> None:
        try:
            f = _frame_decoder.decode(frame)
            rows = _trades_decoder.decode(f.d)
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        kept = self.trades.setdefault(symbol, [])  # (at most 20: a list is searched fast)
        kept.extend([b for r in rows if (b := bytes(r)) not in kept])
        del kept[:-TRADES_KEPT]

    def on_ticker(self, symbol: str, frame: bytes) -> None:
        try:
            f = _frame_decoder.decode(frame)
            d = _ticker_decoder.decode(f.d)
        except msgspec.DecodeError:
            self.decode_errors += 1
            return
        if d and d[0].m and d[0].i:
            self.tickers[symbol] = (d[0].m, d[0].i, f.E)

    def depth_seen(self, symbol: str) -> int:
        rb = self.books.get(symbol)
        return rb.updates if rb is not None else 0

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        return None  # snapshots come on the socket

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        return None

    # -- subscriptions -------------------------------------------------------------------------

    def knows(self, symbol: str) -> bool:
        return symbol in self.seen

    def snapshot(self, symbol: str, n: int) -> bytes | None:
        """A book's snapshot now, once the replay has released its recorded one (None before:
        the recorded one will come)."""
        rb = self.books.get(symbol)
        return None if rb is None or rb.last_u < 0 else rb.snapshot(symbol, n)

    def trade_snapshot(self, symbol: str) -> bytes | None:
        kept = self.trades.get(symbol)
        if not kept:
            return None
        return (f'{{"e":"tradeSnapshot","E":{self.now_ns // MS},"s":"{symbol}","d":['
                ).encode() + b",".join(kept[::-1]) + b"]}"

    # -- REST ----------------------------------------------------------------------------------

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        if endpoint == "time":
            return _encode({"serverTime": feed.now_ms()})
        if endpoint == "exchangeInfo":
            if self.spot:
                return _encode({"timezone": "UTC", "serverTime": feed.now_ms(),
                                "symbols": [self._spot_info(s) for s in sorted(self.seen)]})
            return _encode({"assets": [{"asset": "USDT", "marginAvailable": True}],
                            "symbols": [self._info(s) for s in sorted(self.seen)]})
        symbol = params.get("symbol", "").upper()
        if symbol not in self.seen:
            raise RestError(400, {"code": -1121, "msg": "Invalid symbol."})
        if endpoint == "depth":
            return _encode(self.depth(feed, symbol, int(params.get("limit") or 15)))
        if endpoint == "premiumIndex":
            mark, index, ms = self.tickers.get(symbol, ("", "", 0))
            rb = self.books.get(symbol)
            if not mark and rb is not None and rb.bids and rb.asks:
                mark = index = f"{(max(rb.bids) + min(rb.asks)) / 2:.2f}"
            if not mark and self.trades.get(symbol):  # else the last trade's price
                mark = index = str(msgspec.json.decode(self.trades[symbol][-1]).get("p", ""))
            if not mark:
                raise RestError(400, {"code": -1, "msg": "no price yet"})
            now = ms or self.now_ns // MS
            nxt = (now // (8 * HOUR_MS) + 1) * 8 * HOUR_MS
            return _encode([{"symbol": symbol, "markPrice": mark, "indexPrice": index,
                             "lastFundingRate": "0.0001", "forecastFundingRate": "0.0001",
                             "interestRate": "0.0001", "nextFundingTime": nxt, "time": now,
                             "collectCycle": 480}])
        if endpoint == "openInterest":
            return _encode({"symbol": symbol, "openInterest": "0", "time": self.now_ns // MS})
        if endpoint == "trades":
            return b"[]"
        raise RestError(404, {"code": -1, "msg": "not found"})

    def _info(self, symbol: str) -> dict[str, Any]:
        rb = self.books.get(symbol) or ReplayBook()
        lot = f"{10.0 ** -rb.size_places:.{rb.size_places}f}"
        return {"symbol": symbol, "baseAsset": symbol.removesuffix("USDT"), "quoteAsset": "USDT",
                "marginAsset": "USDT", "pricePrecision": str(rb.price_places),
                "quantityPrecision": str(rb.size_places), "contractVal": lot,
                "forwardContractFlag": True, "makerFeeRate": "0.0002", "takerFeeRate": "0.0008",
                "minOrderSize": lot}

    def _spot_info(self, symbol: str) -> dict[str, Any]:
        rb = self.books.get(symbol) or ReplayBook()
        return {"symbol": symbol, "status": "TRADING", "baseAsset": symbol.removesuffix("USDT"),
                "quoteAsset": "USDT", "enableTrade": True,
                "tickSize": f"{10.0 ** -rb.price_places:.{rb.price_places}f}",
                "stepSize": f"{10.0 ** -rb.size_places:.{rb.size_places}f}",
                "takerFeeRate": "0.001", "makerFeeRate": "0.001"}

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        rb = self.books.get(symbol)
        if rb is None:
            raise RestError(400, {"code": -1121, "msg": "Invalid symbol."})
        return {"bids": [list(rb.bids[p]) for p in sorted(rb.bids, reverse=True)[:limit]],
                "asks": [list(rb.asks[p]) for p in sorted(rb.asks)[:limit]],
                "lastUpdateId": rb.last_u}


class Inference:
    """A WEEX recording is of spot when its URLs name the spot host or it holds ``bookTicker``
    frames; else of futures."""

    def __init__(self) -> None:
        self.spot = False

    def url(self, url: str) -> None:
        if "-spot." in url:
            self.spot = True

    def stream(self, stream: bytes) -> None:
        if stream.endswith(b"@bookTicker"):
            self.spot = True

    def frame(self, stream: bytes, frame: bytes) -> None:
        return None

    def market(self) -> str | None:
        return "spot" if self.spot else "futures"


class WeexRecordings:
    """The ``RecordingFormat`` of WEEX (see ``analyzer.exchange.emulator``)."""

    envelope = None  # the stream is made from the event and the symbol: every frame is parsed

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        stream = stream_of(payload)
        if stream is None:
            return None  # a reply, the greeting, a ping
        return ts, FRAME, stream, payload

    def frame_time(self, payload: bytes) -> int | None:
        """The exchange time of a frame recorded without a local time (ns; None: a reply)."""
        m = _E.search(payload)
        return int(m[1]) * MS if m is not None else None

    def rest_event(self, ts: int, url: str, body: bytes) -> Event:
        parts = urlsplit(url)
        if parts.path.endswith("/exchangeInfo"):
            return ts, INFO, parts.path, body
        symbol = (parse_qs(parts.query).get("symbol") or [""])[0].upper()
        return ts, REST, (parts.path, symbol), body

    def symbol_of(self, stream: bytes) -> str | None:
        return stream.partition(b"@")[0].decode() or None

    def is_depth(self, stream: bytes) -> bool:
        return stream.partition(b"@")[2].startswith(b"depth")

    def inference(self) -> Inference:
        return Inference()

    def claims(self, urls: list[str], head: bytes) -> bool:
        if any("weex" in u for u in urls):
            return True
        return (b'"e":"depthSnapshot"' in head or b'"e":"tradeSnapshot"' in head
                or b'"d":"CHANGED"' in head)  # (not bookTicker: Binance's has that event too)
