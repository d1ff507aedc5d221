"""What the local exchange knows about a replayed BingX swap market, as released so far.

Frames: a captured frame comes as its gzip bytes (sent as they are); the state reads its text
(``recordings.text_of``: inflated once, when the line was read).

Books: each recorded ``@incrDepth`` frame is applied to the exchange's own book of its symbol
(``action: all`` replaces it; size 0 removes a level), also the frames a fault kept off the
wire. A client that subscribes to a book the replay has already started gets a snapshot
rendered from it with the last ``lastUpdateId``, so that the recorded updates after it follow
it; one that subscribes before the recorded snapshot is released gets that one. ``chain_breaks``
counts recorded updates whose id is not above the previous one.

REST: the listing from the recording (or made up for the symbols it streams), recent trades of
the recorded ``@trade`` frames released so far, premiumIndex from the recorded mark (index =
mark, funding 0, every 8 h: a replay has no funding), open interest as recorded or none.
"""

from __future__ import annotations

import zlib
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError
from analyzer.venues.bingx.emulate import info
from analyzer.venues.bingx.emulate.recordings import CONTRACTS, text_of

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording

HOUR_MS = 3_600_000
TRADES_KEPT = 2000
NO_SYMBOL = info.error(109425, "Symbol does not exist")


class _Depth(msgspec.Struct, gc=False):
    action: str
    lastUpdateId: int
    time: int = 0
    timestamp: int = 0  # spot's time
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []


class _DepthFrame(msgspec.Struct, gc=False):
    data: _Depth
    timestamp: int = 0  # spot's envelope time


class _Trade(msgspec.Struct, gc=False):
    q: str
    p: str
    T: int
    m: bool


class _TradesFrame(msgspec.Struct, gc=False):
    data: list[_Trade]


class _Mark(msgspec.Struct, gc=False):
    p: str
    E: int = 0


class _MarkFrame(msgspec.Struct, gc=False):
    data: _Mark


_depth = msgspec.json.Decoder(_DepthFrame)
_price, _size = itemgetter(0), itemgetter(1)
_encode = msgspec.json.encode
_trades = msgspec.json.Decoder(_TradesFrame)
_mark = msgspec.json.Decoder(_MarkFrame)


class ReplayBook:
    """A symbol's book as the recorded frames make it: price -> the level as recorded."""

    __slots__ = ("asks", "bids", "last_id", "time", "updates")

    def __init__(self) -> None:
        self.bids: dict[float, tuple[str, str]] = {}  # price -> (price, size) texts
        self.asks: dict[float, tuple[str, str]] = {}
        self.last_id = -1
        self.time = 0
        self.updates = 0

    def apply(self, d: _Depth, ms: int = 0) -> None:
        """Apply a frame's levels (a level that is no number is skipped)."""
        for side, levels in ((self.bids, d.bids), (self.asks, d.asks)):
            if d.action == "all":
                side.clear()
                try:  # the whole book at C speed: no size 0 in a snapshot, as a rule
                    sizes = list(map(float, map(_size, levels)))
                    if 0.0 not in sizes:
                        side.update(zip(map(float, map(_price, levels)), levels, strict=True))
                        continue
                except ValueError:
                    pass
            for lv in levels:
                try:
                    price, size = float(lv[0]), float(lv[1])
                except ValueError:
                    continue
                if size:
                    side[price] = lv
                else:
                    side.pop(price, None)
        self.last_id = d.lastUpdateId
        self.time = d.time or d.timestamp or ms or self.time

    def texts(self, limit: int = 1000) -> tuple[str, str]:
        """The best ``limit`` bids and asks, each side as its JSON list of levels."""
        bids, asks = self.bids, self.asks
        return (_encode([bids[p] for p in sorted(bids, reverse=True)[:limit]]).decode(),
                _encode([asks[p] for p in sorted(asks)[:limit]]).decode())

    def frame(self, symbol: str, now_ms: int) -> bytes:
        """The ``action: all`` frame of the book (timed ``now_ms`` if no frame had a time)."""
        bids, asks = self.texts()
        return (f'{{"code":0,"dataType":"{symbol}@incrDepth","data":{{"action":"all",'
                f'"lastUpdateId":{self.last_id},"time":{self.time or now_ms},"bids":{bids},'
                f'"asks":{asks}}}}}').encode()


class BingxReplay:
    """The ``ReplayMarket`` of the BingX swap market."""

    listing_path = CONTRACTS  # the recorded instrument listing's INFO key

    def __init__(self, recording: Recording | None) -> None:
        self.listing = recording.listings.get(self.listing_path) if recording else None
        self.seen: set[str] = set(recording.symbols) if recording else set()
        self.first_ts = recording.first_ts if recording else 0
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, ReplayBook] = {}
        self.trades: dict[str, list[tuple[int, str, str, bool]]] = {}
        self.marks: dict[str, str] = {}
        self.recorded: dict[tuple[str, str], bytes] = {}
        self.now_ns = self.first_ts

    def classify(self, stream: bytes) -> tuple[Any, str | None, bool]:
        symbol, _, channel = stream.decode().partition("@")
        if channel == "incrDepth":
            return self.on_depth, symbol, True
        if channel == "trade":
            return self.on_trades, symbol, False
        if channel == "markPrice":
            return self.on_mark, symbol, False
        return None, symbol or None, False

    def on_depth(self, symbol: str, frame: bytes) -> int:
        try:
            msg = _depth.decode(text_of(frame))
        except (msgspec.DecodeError, zlib.error):
            self.decode_errors += 1
            return 0
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = ReplayBook()
        d = msg.data
        if d.action == "update" and d.lastUpdateId <= book.last_id:
            self.chain_breaks += 1
        book.apply(d, msg.timestamp)
        book.updates += 1
        return book.updates

    def on_trades(self, symbol: str, frame: bytes) -> None:
        try:
            msg = _trades.decode(text_of(frame))
        except (msgspec.DecodeError, zlib.error):
            self.decode_errors += 1
            return
        rows = self.trades.setdefault(symbol, [])
        rows.extend((t.T, t.p, t.q, t.m) for t in sorted(msg.data, key=lambda t: t.T))
        if len(rows) > TRADES_KEPT * 1.1:
            del rows[: len(rows) - TRADES_KEPT]

    def on_mark(self, symbol: str, frame: bytes) -> None:
        try:
            self.marks[symbol] = _mark.decode(text_of(frame)).data.p
        except (msgspec.DecodeError, zlib.error):
            self.decode_errors += 1

    def depth_seen(self, symbol: str) -> int:
        book = self.books.get(symbol)
        return book.updates if book is not None else 0

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        return None  # BingX books come on the socket

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        self.recorded[key] = body

    def knows(self, symbol: str) -> bool:
        return symbol in self.seen

    def snapshot(self, symbol: str) -> bytes | None:
        book = self.books.get(symbol)
        if book is None or book.last_id < 0:
            return None
        return book.frame(symbol, self.now_ns // 1_000_000)

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        symbol = params.get("symbol", "")
        if endpoint == "contracts":
            if self.listing is not None:
                return self.listing
            return info.body([info.contract(s, s.split("-")[0], s.split("-")[-1], 0.01, 0.01,
                                            n) for n, s in enumerate(sorted(self.seen))])
        path = {"openInterest": "/openApi/swap/v2/quote/openInterest",
                "premiumIndex": "/openApi/swap/v2/quote/premiumIndex"}.get(endpoint)
        if path is not None and (path, symbol) in self.recorded:
            return self.recorded[(path, symbol)]
        if endpoint == "premiumIndex" and not symbol:  # the funding info: every row known
            return info.body([self._premium(s, m) for s, m in sorted(self.marks.items())])
        if symbol not in self.seen:
            raise RestError(200, NO_SYMBOL)
        if endpoint == "trades":
            limit = info.limit_of(params)
            return info.trades(self.trades.get(symbol, [])[-limit:], limit)
        if endpoint == "premiumIndex":
            mark = self.marks.get(symbol)
            if mark is None:
                raise RestError(200, info.error(109400, "no mark price recorded yet"))
            return info.body(self._premium(symbol, mark))
        raise RestError(200, info.error(109400, f"{endpoint} not recorded"))

    def _premium(self, symbol: str, mark: str) -> dict[str, Any]:
        now_ms = self.now_ns // 1_000_000
        return info.premium(symbol, mark, mark, 0.0,
                            (now_ms // (8 * HOUR_MS) + 1) * 8 * HOUR_MS, 8.0)

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        book = self.books.get(symbol)
        if book is None:
            raise RestError(200, NO_SYMBOL)
        bids = sorted(book.bids, reverse=True)[:limit]
        asks = sorted(book.asks)[:limit]
        return {"lastUpdateId": book.last_id, "bids": [list(book.bids[p]) for p in bids],
                "asks": [list(book.asks[p]) for p in asks]}
