"""What the local exchange knows about a replayed Bybit market, as released so far.

Per book topic (each depth is its own window, with its own ``u``), the book as the recorded
frames made it: a snapshot replaces it, a delta sets absolute sizes (0 removes). Deltas a fault
kept off the wire are applied too: the venue's book has them. A new subscription starts with
that book as a snapshot carrying the current ``u`` (until the replay releases the topic's first
frame there is none: the recording's own snapshot comes first). Per ticker topic, the merged
ticker (the last snapshot with every delta since), for a new subscription's snapshot. Per
symbol, the trades released (the last ``TRADES_KEPT``), for ``recent-trade``. Prices and sizes
stay the venue's strings. REST: the recorded listing, else one made up for the symbols seen
(steps from the recorded numbers' decimals); recent trades.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import Instrument
from analyzer.venues.bybit.emulate import info
from analyzer.venues.bybit.emulate.recordings import is_depth, topic_symbol

if TYPE_CHECKING:
    from collections.abc import Callable

    from analyzer.exchange.market import MarketFeed

MS = 1_000_000
_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH", "EUR")
TRADES_KEPT = 2000  # per symbol: more than a recent-trade request returns (1000)


class _BookData(msgspec.Struct, gc=False):
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    u: int
    s: str = ""
    seq: int = 0


class _BookFrame(msgspec.Struct, gc=False):
    type: str
    ts: int
    data: _BookData


class _TickerFrame(msgspec.Struct, gc=False):
    type: str
    data: dict[str, Any]
    ts: int = 0


class _TradeData(msgspec.Struct, gc=False):
    T: int  # fill time (ms)
    S: str  # taker side
    v: str  # size
    p: str  # price
    i: str  # trade id
    BT: bool = False


class _TradeFrame(msgspec.Struct, gc=False):
    data: list[_TradeData]


_book_decoder = msgspec.json.Decoder(_BookFrame)
_trade_decoder = msgspec.json.Decoder(_TradeFrame)
_ticker_decoder = msgspec.json.Decoder(_TickerFrame)
_encode = msgspec.json.encode


def _decimals(text: str) -> int:
    _, _, frac = text.partition(".")
    return len(frac)


class Book:
    """One book topic: price -> size, both as the venue wrote them."""

    __slots__ = ("asks", "bids", "seq", "ts", "u")

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.u = 0
        self.seq = 0
        self.ts = 0

    def sorted(self, limit: int | None = None) -> tuple[list[tuple[str, str]],
                                                         list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda lv: -float(lv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda lv: float(lv[0]))[:limit]
        return bids, asks


def recorded_steps(events: Any, limit: int = 5000) -> dict[str, tuple[float, float]]:
    """(tick, lot) per symbol from the decimals of the first book frames of a recording (its
    first ``limit`` events): Bybit writes a symbol's prices and sizes with fixed decimals."""
    steps: dict[str, tuple[float, float]] = {}
    for n, (_, kind, key, payload) in enumerate(events):
        if n >= limit:
            break
        if kind != 0 or not key.startswith(b"orderbook."):
            continue
        sym = topic_symbol(key)
        if sym is None or sym in steps:
            continue
        try:
            d = _book_decoder.decode(payload).data
        except (msgspec.DecodeError, ValueError):
            continue
        levels = [lv for lv in d.b + d.a if float(lv[1])]
        if levels:
            pd = max(_decimals(p) for p, _ in levels)
            qd = max(_decimals(q) for _, q in levels)
            steps[sym] = (round(10.0**-pd, pd), round(10.0**-qd, qd))
    return steps


class BybitReplay:
    """The ``ReplayMarket`` of one Bybit category."""

    def __init__(self, category: str, listing: bytes | None,
                 steps: dict[str, tuple[float, float]] | None = None) -> None:
        self.category = category
        self.listing = listing
        self.steps = steps or {}  # symbol -> (tick, lot) read from the recording's first books
        self.now_ns = 0
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[bytes, Book] = {}
        self.tickers: dict[bytes, dict[str, Any]] = {}
        self.depth_counts: dict[str, int] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {}  # recent-trade items, oldest first

    # -- released frames --

    def classify(
        self, stream: bytes
    ) -> tuple[Callable[[str | None, bytes], int | None] | None, str | None, bool]:
        symbol = topic_symbol(stream)
        if stream.startswith(b"orderbook."):
            book = self.books.setdefault(stream, Book())
            depth = is_depth(stream)

            def on_book(symbol: str | None, frame: bytes) -> int | None:
                n = self._on_book(book, frame)
                if not depth or symbol is None:
                    return n
                seen = self.depth_counts[symbol] = self.depth_counts.get(symbol, 0) + 1
                return seen if n else 0

            return on_book, symbol, depth
        if stream.startswith(b"tickers."):
            return (lambda symbol, frame: self._on_ticker(stream, frame)), symbol, False
        if stream.startswith(b"publicTrade.") and symbol is not None:
            return (lambda _, frame: self._on_trades(symbol, frame)), symbol, False
        return None, symbol, False

    def _on_trades(self, symbol: str, frame: bytes) -> None:
        """Keep a publicTrade frame's trades as recent-trade items."""
        try:
            f = _trade_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1
            return
        rows = self.trades.setdefault(symbol, [])
        rows.extend({"execId": t.i, "symbol": symbol, "price": t.p, "size": t.v, "side": t.S,
                     "time": str(t.T), "isBlockTrade": t.BT} for t in f.data)
        if len(rows) > TRADES_KEPT * 1.5:
            del rows[: len(rows) - TRADES_KEPT]

    def _on_book(self, book: Book, frame: bytes) -> int:
        try:
            f = _book_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1
            return 0
        d = f.data
        if f.type == "snapshot" or d.u == 1:
            book.bids = dict(d.b)
            book.asks = dict(d.a)
        else:
            if book.u and d.u != book.u + 1:
                self.chain_breaks += 1
            for side, levels in ((book.bids, d.b), (book.asks, d.a)):
                for p, q in levels:
                    if float(q):
                        side[p] = q
                    else:
                        side.pop(p, None)
        book.u, book.seq, book.ts = d.u, d.seq, f.ts
        return 1

    def _on_ticker(self, stream: bytes, frame: bytes) -> None:
        try:
            f = _ticker_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1
            return
        if f.type == "snapshot":
            self.tickers[stream] = dict(f.data)
        elif stream in self.tickers:
            self.tickers[stream].update(f.data)

    def depth_seen(self, symbol: str) -> int:
        return self.depth_counts.get(symbol, 0)

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        pass  # Bybit's snapshots are frames

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        if key[0].endswith("/instruments-info"):
            self.listing = body

    # -- what a new subscription starts with --

    def topic_error(self, topic: bytes) -> str | None:
        return None  # a replay cannot tell a listed symbol: every topic is accepted

    def snapshot_frame(self, topic: bytes) -> bytes | None:
        """A book topic's snapshot now (None: nothing released yet, or not a book topic)."""
        book = self.books.get(topic)
        if book is not None and book.u:
            bids, asks = book.sorted()
            depth = topic.split(b".")[1]
            if depth.isdigit():
                bids, asks = bids[: int(depth)], asks[: int(depth)]
            return _encode({
                "topic": topic.decode(), "type": "snapshot", "ts": book.ts,
                "data": {"s": topic_symbol(topic), "b": bids, "a": asks, "u": book.u,
                         "seq": book.seq},
                "cts": book.ts,
            })
        ticker = self.tickers.get(topic)
        if ticker is not None:
            return _encode({"topic": topic.decode(), "type": "snapshot", "data": ticker,
                            "ts": self.now_ns // MS})
        return None

    def subscribed(self, session: Any, topic: bytes) -> None:
        frame = self.snapshot_frame(topic)
        if frame is not None:
            session.send(frame)

    def unsubscribed(self, session: Any, topic: bytes) -> None:
        pass

    # -- REST --

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        now = feed.now_ms()
        if endpoint == "time":
            return info.envelope({"timeSecond": str(now // 1000),
                                  "timeNano": str(now * 1_000_000)}, now)
        if endpoint == "instruments":
            if self.listing is not None:
                return info.recorded_listing(self.listing, self.category, params)
            return info.instruments_body(self.category, params, self.synthetic(feed), {}, now)
        rows = self.trades.get(params.get("symbol", "").upper(), [])
        return info.recent_trades_body(self.category, params, rows, now)

    def synthetic(self, feed: MarketFeed) -> list[Instrument]:
        """A listing of the symbols seen: steps from the decimals of the recorded books."""
        steps = self.steps
        out = []
        for sym in sorted(feed.symbols):
            tick, lot = steps.get(sym, (0.01, 0.001))
            quote = next((q for q in _QUOTES if sym.endswith(q) and sym != q), "USDT")
            dated = info.is_dated(sym)
            market = "spot" if self.category == "spot" else "future" if dated else "perpetual"
            if dated and self.category == "inverse":  # BTCUSDH26
                quote, base = "USD", sym[:-6]
            elif dated:  # BTCUSDT-27MAR26, BTC-27MAR26 (USDC)
                head = sym.split("-")[0]
                quote = "USDT" if head.endswith("USDT") else "USDC"
                base = head.removesuffix("USDT")
            else:
                base = sym[: -len(quote)]
            out.append(Instrument(
                "", sym, "bybit", market, base, quote, self.category == "inverse", 1.0,
                tick, lot,
                # a dated contract's delivery is unknown here: a quarter from now
                (self.now_ns + 90 * 86_400 * 10**9) if dated else None, self.now_ns,
            ))
        return out

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        """The deepest book topic of a symbol now: levels as floats, best first, and its u."""
        topics = [t for t in self.books if is_depth(t) and topic_symbol(t) == symbol]
        if not topics:
            return {"bids": [], "asks": [], "u": 0}
        topic = max(topics, key=lambda t: int(t.split(b".")[1]))
        book = self.books[topic]
        bids, asks = book.sorted(limit)
        return {"bids": [(float(p), float(q)) for p, q in bids],
                "asks": [(float(p), float(q)) for p, q in asks], "u": book.u}
