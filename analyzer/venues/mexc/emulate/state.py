"""What the local exchange knows about a replayed MEXC contract market, as released so far.

Per symbol: the book as the recorded ``push.depth`` frames made it (levels as recorded, in
contracts; sizes absolute, 0 removes; frames a fault kept off the wire are applied too: the
venue's book has them) with the last version, and its last ``COMMITS_KEPT`` pushes for
``depth_commits``; the deals released (for ``contract/deals``); the last ticker (funding for
``contract/funding_rate``). REST: the recorded listing, else one made up for the symbols seen
(MEXC's contract sizes where known, tick 0.1); book snapshots and commits (a recorded symbol's
book is empty, version 0, before its first push), deals, funding (the last recorded rate, 0
before any, an 8 h cycle).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import Instrument
from analyzer.venues.mexc.emulate import info
from analyzer.venues.mexc.emulate.recordings import is_depth, stream_symbol

if TYPE_CHECKING:
    from collections.abc import Callable

    from analyzer.exchange.market import MarketFeed

MS = 1_000_000
HOUR_MS = 3_600_000
DEALS_KEPT = 2000
# live contract sizes (contract/detail, 2025) of the symbols a made-up listing may need
LIVE_CONTRACT_SIZES = {"BTC": 0.0001, "ETH": 0.01, "SOL": 0.1, "XRP": 1.0}


class _Depth(msgspec.Struct, gc=False):
    asks: list[list[float]]
    bids: list[list[float]]
    version: int


class _DepthFrame(msgspec.Struct, gc=False):
    data: _Depth
    ts: int = 0


class _DealFrame(msgspec.Struct, gc=False):
    data: dict[str, Any] | list[dict[str, Any]]


class _TickerFrame(msgspec.Struct, gc=False):
    data: dict[str, Any]


_depth_decoder = msgspec.json.Decoder(_DepthFrame)
_deal_decoder = msgspec.json.Decoder(_DealFrame)
_ticker_decoder = msgspec.json.Decoder(_TickerFrame)


class Book:
    """One symbol's book: price -> [price, contracts, count] as recorded, its version."""

    __slots__ = ("asks", "bids", "commits", "ts", "version")

    def __init__(self) -> None:
        self.bids: dict[float, list[float]] = {}
        self.asks: dict[float, list[float]] = {}
        self.version = 0
        self.ts = 0
        self.commits: deque[dict[str, Any]] = deque(maxlen=info.COMMITS_KEPT)

    def sorted(self, limit: int) -> tuple[list[list[float]], list[list[float]]]:
        return ([self.bids[p] for p in sorted(self.bids, reverse=True)[:limit]],
                [self.asks[p] for p in sorted(self.asks)[:limit]])


class MexcReplay:
    """The ``ReplayMarket`` of MEXC's contract market."""

    def __init__(self, listing: bytes | None, symbols: set[str] | None = None) -> None:
        self.listing = listing
        self.symbols = symbols or set()  # the recording's: known before their first frame
        self.now_ns = 0
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, Book] = {}
        self.depth_counts: dict[str, int] = {}
        self.deals: dict[str, list[dict[str, Any]]] = {}
        self.tickers: dict[str, dict[str, Any]] = {}

    # -- released frames --

    def classify(
        self, stream: bytes
    ) -> tuple[Callable[[str | None, bytes], int | None] | None, str | None, bool]:
        symbol = stream_symbol(stream)
        if symbol is None:
            return None, None, False
        if is_depth(stream):
            book = self.books.setdefault(symbol, Book())
            return (lambda s, frame: self._on_depth(symbol, book, frame)), symbol, True
        if stream.startswith(b"deal:"):
            return (lambda s, frame: self._on_deal(symbol, frame)), symbol, False
        if stream.startswith(b"ticker:"):
            return (lambda s, frame: self._on_ticker(symbol, frame)), symbol, False
        return None, symbol, False

    def _on_depth(self, symbol: str, book: Book, frame: bytes) -> int:
        seen = self.depth_counts[symbol] = self.depth_counts.get(symbol, 0) + 1
        try:
            f = _depth_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1
            return 0
        d = f.data
        if book.version and d.version != book.version + 1:
            self.chain_breaks += 1
        for side, levels in ((book.bids, d.bids), (book.asks, d.asks)):
            for lv in levels:
                if lv[1]:
                    side[lv[0]] = lv
                else:
                    side.pop(lv[0], None)
        book.version, book.ts = d.version, f.ts
        book.commits.append({"asks": d.asks, "bids": d.bids, "version": d.version})
        return seen

    def _on_deal(self, symbol: str, frame: bytes) -> None:
        try:
            f = _deal_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1
            return
        rows = self.deals.setdefault(symbol, [])
        rows.extend(f.data if isinstance(f.data, list) else [f.data])
        if len(rows) > DEALS_KEPT * 1.5:
            del rows[: len(rows) - DEALS_KEPT]

    def _on_ticker(self, symbol: str, frame: bytes) -> None:
        try:
            self.tickers[symbol] = _ticker_decoder.decode(frame).data
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1

    def depth_seen(self, symbol: str) -> int:
        return self.depth_counts.get(symbol, 0)

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        pass  # no recorded REST snapshots are replayed: the book is the frames'

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        pass

    # -- the websocket side --

    def stream_error(self, symbol: str) -> str | None:
        return None  # a replay cannot tell a listed symbol: every subscription is accepted

    # -- REST --

    def _book(self, symbol: str) -> Book:
        """A symbol's book; a recorded symbol's before its first push is empty (version 0)."""
        book = self.books.get(symbol)
        if book is None:
            if symbol not in self.symbols:
                raise info.no_contract()
            book = self.books[symbol] = Book()
        return book

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        now = feed.now_ms()
        name, _, arg = endpoint.partition(":")
        if name == "ping":
            return info.ok(now)
        if name == "detail":
            if self.listing is not None:
                return self.listing
            return info.ok([info.contract_item(i, i.contract_value)
                            for i in self.synthetic(feed)])
        if name == "funding_rate":
            symbols = [arg] if arg else sorted(self.symbols | set(self.tickers))
            items = [self._funding(s, now) for s in symbols]
            return info.ok(items[0] if arg else items)
        symbol, _, limit = arg.partition(":")
        if name == "depth":
            book = self._book(symbol)
            bids, asks = book.sorted(info.limit_of(params.get("limit"), info.DEPTH_LIMIT,
                                                   info.DEPTH_LIMIT))
            return info.ok({"asks": asks, "bids": bids, "version": book.version,
                            "timestamp": book.ts or now})
        if name == "depth_commits":
            n = info.limit_of(limit, 1, info.COMMITS_KEPT)
            return info.ok(list(self._book(symbol).commits)[-n:])
        if name == "deals":
            n = info.limit_of(params.get("limit"), info.DEALS_LIMIT, info.DEALS_LIMIT)
            return info.ok(self.deals.get(symbol, [])[: -n - 1 : -1])
        raise info.error(600, "Parameter error")

    def _funding(self, symbol: str, now_ms: int) -> dict[str, Any]:
        tk = self.tickers.get(symbol)
        if tk is None and symbol not in self.symbols:
            raise info.no_contract()
        tk = tk or {}  # no ticker released yet: a rate of 0
        step = 8 * HOUR_MS
        return info.funding_item(symbol, float(tk.get("fundingRate") or 0.0), 8.0,
                                 (now_ms // step + 1) * step, now_ms)

    def synthetic(self, feed: MarketFeed) -> list[Instrument]:
        out = []
        for sym in sorted(feed.symbols):
            base, _, quote = sym.partition("_")
            cs = LIVE_CONTRACT_SIZES.get(base, 1.0)
            out.append(Instrument("", sym, "mexc", "perpetual", base, quote or "USDT", False,
                                  1.0, 0.1, cs, None, self.now_ns, contract_value=cs))
        return out

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        """A symbol's book now: levels (price, contracts), best first, and its version."""
        book = self.books.get(symbol)
        if book is None:
            return {"bids": [], "asks": [], "version": 0}
        bids, asks = book.sorted(limit)
        return {"bids": [(lv[0], lv[1]) for lv in bids], "asks": [(lv[0], lv[1]) for lv in asks],
                "version": book.version}
