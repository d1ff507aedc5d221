"""MEXC's spot market as the local exchange serves it (feed ``mexc_spot``): the websocket
protocol, limits, REST routing and budget, the simulated market and the replay of recordings.

Docs: https://mexcdevelop.github.io/apidocs/spot_v3_en/ ("Websocket Market Streams", "LIMITS",
      "Market Data Endpoints")

Websocket ``/ws``. Requests ``{"method":"SUBSCRIPTION"|"UNSUBSCRIPTION","params":[...],"id":n}``
are answered ``{"id":n,"code":0,"msg":"<the channels, comma separated>"}``; a channel that is
not served (an unknown symbol or channel, the retired JSON ones, one past the 30 a connection
holds) gets ``{"id":n,"code":0,"msg":"Not Subscribed successfully! [<channels>].  Reason：
Blocked! "}`` (the refusal public clients record for the retired channels, used here for every
refusal; the others of the request are served).
``{"method":"PING"}`` is answered ``{"id":0,"code":0,"msg":"PONG"}``. Answers are text frames,
pushes binary protobuf frames (``encode``: the identity, so that the core writes every push as
a binary frame; ``spot_render``). "If the subscription is successful but there is no data flow,
the server will disconnect after one minute": a connection that sent nothing (no ping) for 60 s
is closed, stricter than MEXC while data flows. More than 100 messages a second close the
connection ("The Websocket limits is: 100times/s"). MEXC sends no websocket pings we know of.

REST ``/api/v3/``: ``exchangeInfo`` (weight 10), ``depth`` (1; limit default 100, at most
5000), ``trades`` (5; default 500, at most 1000, newest first, ``"id": null``), ``ping``,
``time``; "500 every 10 second" an endpoint, kept here as one budget of the market; over it 429
``{"code":429,"msg":"Too Many Requests"}``, banned 418. An unknown symbol: HTTP 400
``{"code":-1121,"msg":"Invalid symbol."}``.

Replay (``SpotReplay``): the collector's raw captures of ``mexc_spot`` (binary frames as
``~<base64>``, REST bodies as ``{"rest":..}`` lines: ``recordings``). A capture starts with
pushes the collector buffered before its first snapshot, and may hold holes (a reconnect, a
stream ahead of a snapshot): so a pair's book is the recorded depth snapshot brought up to the
stream by the pushes logged since (the venue's book: what MEXC would answer), then each push
that follows it; a recorded version break (``fromVersion`` not the last ``toVersion`` + 1) is
counted in ``chain_breaks`` and leaves the book unserved (REST: an empty book at version 0,
which the client cannot bridge, so it asks again) until a later snapshot mends it. A pair
without any recorded snapshot is built from its first push. REST answers the recorded listing
(else one made up for the pairs seen), the book at its version, and the recorded deals.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import Instrument
from analyzer.exchange.emulator import Close, RestError, Session
from analyzer.venues.base import DecodeError
from analyzer.venues.mexc import protobuf as pb
from analyzer.venues.mexc.emulate.spot_render import (
    INTERVALS,
    KINDS,
    SpotFormat,
    bad_price,
    decimals,
)
from analyzer.venues.mexc.spec import SPOT_MAX_STREAMS

if TYPE_CHECKING:
    from collections.abc import Callable

    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Recording
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel

FEED_ID = "mexc_spot"
MS = 1_000_000
PATHS = {f"/api/v3/{name}": name for name in ("exchangeInfo", "depth", "trades", "ping", "time")}
WEIGHTS = {"exchangeInfo": 10, "trades": 5}  # others 1
DEPTH_DEFAULT, DEPTH_MOST = 100, 5000
TRADES_DEFAULT, TRADES_MOST = 500, 1000
DEALS_KEPT = 2000
LOG_KEPT = 10_000  # pushes a replayed book keeps to bring a recorded snapshot up to the stream
REFUSAL = "Not Subscribed successfully! [{}].  Reason： Blocked! "
_encode = msgspec.json.encode


class _Request(msgspec.Struct):
    method: str = ""
    params: list[str] = []
    id: int | str = 0


_request = msgspec.json.Decoder(_Request)


def invalid_symbol() -> RestError:
    return RestError(400, {"code": -1121, "msg": "Invalid symbol."})


def limit_of(params: dict[str, str], default: int, most: int) -> int:
    text = params.get("limit")
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise RestError(400, {"code": -1100,
                              "msg": "Illegal characters found in parameter 'limit'."})
    return min(int(text), most)


def channel_symbol(channel: str) -> str | None:
    """The pair of a push channel this market serves (``<kind>@<interval>@<SYM>``), else None."""
    parts = channel.split("@")
    if (len(parts) != 4 or f"{parts[0]}@{parts[1]}" not in KINDS.values()
            or parts[2] not in INTERVALS or not parts[3]):
        return None
    return parts[3]


def spot_symbol(symbol: str, base: str, quote: str, price_dp: int, qty_dp: int
                ) -> dict[str, Any]:
    """An ``exchangeInfo`` item as MEXC writes one (JKorf/Mexc.Net's GetExchangeInfo.txt)."""
    return {"symbol": symbol, "status": "1", "baseAsset": base, "baseAssetPrecision": qty_dp,
            "quoteAsset": quote, "quotePrecision": price_dp, "quoteAssetPrecision": price_dp,
            "baseCommissionPrecision": qty_dp, "quoteCommissionPrecision": price_dp,
            "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"], "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "quoteAmountPrecision": "1",
            "baseSizePrecision": "0", "permissions": ["SPOT"], "filters": [],
            "maxQuoteAmount": "2000000", "makerCommission": "0", "takerCommission": "0.0005",
            "quoteAmountPrecisionMarket": "1", "maxQuoteAmountMarket": "100000",
            "fullName": base, "tradeSideType": 1}


def exchange_info(symbols: list[dict[str, Any]], now_ms: int) -> bytes:
    return _encode({"timezone": "CST", "serverTime": now_ms, "rateLimits": [],
                    "exchangeFilters": [], "symbols": symbols})


# ---- the simulated market ---------------------------------------------------------------------


class SpotSim:
    """The ``SimMarket`` of MEXC spot: a ``SpotFormat`` per pair, REST from the model."""

    def __init__(self, feed_id: str, model: MarketModel) -> None:
        self.feed_id = feed_id
        self.model = model
        self.formats: dict[str, SpotFormat] = {}

    def renderer(self, instrument: Instrument) -> SpotFormat:
        f = self.formats[instrument.symbol] = SpotFormat(instrument, self.model)
        return f

    def stream_error(self, symbol: str) -> str | None:
        if symbol not in self.formats or self.model.find(self.feed_id, symbol) is None:
            return "unknown symbol"
        return None

    def _format(self, params: dict[str, str]) -> SpotFormat:
        f = self.formats.get(params.get("symbol", ""))
        if f is None or self.model.find(self.feed_id, f.symbol) is None:
            raise invalid_symbol()
        return f

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        now = feed.now_ms()
        if endpoint == "ping":
            return b"{}"
        if endpoint == "time":
            return _encode({"serverTime": now})
        if endpoint == "exchangeInfo":
            listed = sorted((i for i in self.model.instruments() if i.venue == self.feed_id),
                            key=lambda i: i.symbol)
            return exchange_info([spot_symbol(i.symbol, i.base, i.quote, decimals(i.tick_size),
                                              decimals(i.lot_size)) for i in listed], now)
        f = self._format(params)
        if endpoint == "depth":
            return _encode(f.depth_body(limit_of(params, DEPTH_DEFAULT, DEPTH_MOST)))
        return _encode(f.trades_body(limit_of(params, TRADES_DEFAULT, TRADES_MOST)))

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        """The venue's book now (the model's), in floats, best first, with its version."""
        snap = self.model.snapshot(self.feed_id, symbol)
        return {"bids": snap.bids[:limit], "asks": snap.asks[:limit],
                "lastUpdateId": snap.last_id}


# ---- the replayed market ----------------------------------------------------------------------


class _DepthBody(msgspec.Struct, gc=False):
    lastUpdateId: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


_depth_body = msgspec.json.Decoder(_DepthBody, strict=False)


class Book:
    """One pair's book as released: price -> quantity per side, its version, whether it is
    exact (``valid``), and the latest pushes (first, last, bids, asks) to bring a recorded
    snapshot up to the stream."""

    __slots__ = ("asks", "bids", "log", "valid", "version")

    def __init__(self, valid: bool) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.version = 0
        self.valid = valid
        self.log: deque[tuple[int, int, list[tuple[float, float]], list[tuple[float, float]]]] = (
            deque(maxlen=LOG_KEPT))

    def apply(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
              last: int) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
        self.version = last

    def top(self, limit: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return (sorted(self.bids.items(), reverse=True)[:limit], sorted(self.asks.items())[:limit])


class SpotReplay:
    """The ``ReplayMarket`` of MEXC spot (module doc, "Replay"). ``snapshotted``: the pairs
    the recording holds a depth snapshot of: their books are exact from one on (the pushes
    before it, and any after a recorded hole, build nothing until a snapshot mends them, and
    REST answers an empty book at version 0 meanwhile, which no push bridges: the client asks
    again); the others are built from their first push (a partial book)."""

    def __init__(self, listing: bytes | None, symbols: set[str] | None = None,
                 snapshotted: set[str] | None = None) -> None:
        self.listing = listing
        self.symbols = symbols or set()
        self.snapshotted = snapshotted or set()
        self.now_ns = 0
        self.decode_errors = 0
        self.chain_breaks = 0
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, Book] = {}
        self.depth_counts: dict[str, int] = {}
        self.deals: dict[str, list[tuple[int, float, float, bool]]] = {}

    def _book(self, symbol: str) -> Book:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = Book(valid=symbol not in self.snapshotted)
        return book

    def classify(self, stream: bytes) -> tuple[Callable[[str | None, bytes], int | None] | None,
                                               str | None, bool]:
        symbol = channel_symbol(stream.decode(errors="replace"))
        if symbol is None:
            return None, None, False
        if b".aggre.depth." in stream:
            book = self._book(symbol)
            return (lambda s, frame: self._on_depth(symbol, book, frame)), symbol, True
        if b".aggre.deals." in stream:
            return (lambda s, frame: self._on_deals(symbol, frame)), symbol, False
        return None, symbol, False

    def _on_depth(self, symbol: str, book: Book, frame: bytes) -> int:
        seen = self.depth_counts[symbol] = self.depth_counts.get(symbol, 0) + 1
        try:
            _, _, _, _, start, stop = pb.read_push(frame)
            asks, bids, first, last = pb.read_depth(frame, start, stop)
        except DecodeError:
            self.decode_errors += 1
            return 0
        book.log.append((first, last, bids, asks))
        if not book.valid:
            return seen
        if book.version and first != book.version + 1:
            if last <= book.version:
                return seen  # old news: the book holds it
            self.chain_breaks += 1
            if symbol in self.snapshotted:  # a hole (or an overlap): wait for a snapshot
                book.valid = False
                return seen
        book.apply(bids, asks, last)
        return seen

    def _on_deals(self, symbol: str, frame: bytes) -> None:
        try:
            _, _, _, _, start, stop = pb.read_push(frame)
            deals = pb.read_deals(frame, start, stop)
        except DecodeError:
            self.decode_errors += 1
            return
        rows = self.deals.setdefault(symbol, [])
        rows.extend((ms, p, q, side == 2) for p, q, side, ms in deals)
        if len(rows) > DEALS_KEPT * 1.5:
            del rows[: len(rows) - DEALS_KEPT]

    def depth_seen(self, symbol: str) -> int:
        return self.depth_counts.get(symbol, 0)

    def on_snapshot(self, symbol: str, body: bytes) -> None:
        """A recorded depth snapshot: the book from it and the logged pushes after it, if they
        follow it (else it stays as it was: a later snapshot will do)."""
        try:
            d = _depth_body.decode(body)
        except (msgspec.DecodeError, ValueError):
            self.decode_errors += 1
            return
        self.symbols.add(symbol)
        book = self._book(symbol)
        v = d.lastUpdateId
        if book.valid and book.version >= v:
            return  # an exact book already past it
        nxt = Book(valid=True)
        nxt.bids, nxt.asks, nxt.version, nxt.log = dict(d.bids), dict(d.asks), v, book.log
        for first, last, bids, asks in book.log:
            if last <= nxt.version:
                continue
            if first > nxt.version + 1:
                return  # the log does not reach back to the snapshot
            nxt.apply(bids, asks, last)
        book.bids, book.asks, book.version, book.valid = nxt.bids, nxt.asks, nxt.version, True

    def on_rest(self, key: tuple[str, str], body: bytes) -> None:
        pass

    # -- the websocket side --

    def stream_error(self, symbol: str) -> str | None:
        return None  # a replay cannot tell a listed pair: every subscription is accepted

    # -- REST --

    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        now = feed.now_ms()
        if endpoint == "ping":
            return b"{}"
        if endpoint == "time":
            return _encode({"serverTime": now})
        if endpoint == "exchangeInfo":
            if self.listing is not None:
                return self.listing
            return exchange_info([spot_symbol(s, *_split(s), 8, 8)
                                  for s in sorted(feed.symbols | self.symbols)], now)
        symbol = params.get("symbol", "")
        if symbol not in self.books and symbol not in self.symbols and symbol not in self.deals:
            raise invalid_symbol()
        if endpoint == "depth":
            book = self._book(symbol)
            if not book.valid:
                return _encode({"lastUpdateId": 0, "bids": [], "asks": []})
            bids, asks = book.top(limit_of(params, DEPTH_DEFAULT, DEPTH_MOST))
            return _encode({"lastUpdateId": book.version,
                            "bids": [[repr(p), repr(q)] for p, q in bids],
                            "asks": [[repr(p), repr(q)] for p, q in asks]})
        n = limit_of(params, TRADES_DEFAULT, TRADES_MOST)
        return _encode([{"id": None, "price": repr(p), "qty": repr(q), "quoteQty": repr(p * q),
                         "time": ms, "isBuyerMaker": sold, "isBestMatch": True,
                         "tradeType": "ASK" if sold else "BID"}
                        for ms, p, q, sold in reversed(self.deals.get(symbol, [])[-n:])])

    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        book = self._book(symbol)
        bids, asks = book.top(limit)
        return {"bids": bids, "asks": asks, "lastUpdateId": book.version}


def _split(symbol: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "USDE", "BTC", "ETH"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


# ---- the market -------------------------------------------------------------------------------


class SpotMarket:
    """The ``MarketEmulator`` of MEXC spot (module doc)."""

    ping_interval = None  # no websocket pings known: the client pings, {"method":"PING"}
    ping_timeout = None
    idle_timeout_s: float | None = 60.0
    idle_close = Close(1000, "no data flow")
    messages_per_s = 100  # "The Websocket limits is: 100times/s"
    too_many_messages = Close(1008, "too many requests")
    max_streams = SPOT_MAX_STREAMS
    weight_limit = 500  # "500 every 10 second"
    window_s = 10.0

    def __init__(self, feed: str = FEED_ID) -> None:
        self.feed = feed
        self.market = "spot"

    # -- websocket -----------------------------------------------------------------------------

    def encode(self, payload: bytes) -> bytes:
        return payload  # pushes go as they are, in binary frames

    def accepts(self, path: str) -> bool:
        return path == "ws"

    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        return None

    def on_message(self, session: Session, message: str | bytes) -> str | Close | None:
        try:
            req = _request.decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return _encode({"id": 0, "code": 0, "msg": "Invalid request"}).decode()
        method = req.method.upper()
        if method == "PING":
            return '{"id":0,"code":0,"msg":"PONG"}'
        if method not in ("SUBSCRIPTION", "UNSUBSCRIPTION") or not req.params:
            return _encode({"id": req.id, "code": 0, "msg": "Invalid request"}).decode()
        if method == "UNSUBSCRIPTION":
            session.unsubscribe([p.encode() for p in req.params])
            return _encode({"id": req.id, "code": 0, "msg": ",".join(req.params)}).decode()
        ok: list[str] = []
        refused: list[str] = []
        for channel in req.params:
            symbol = channel_symbol(channel)
            key = channel.encode()
            if (symbol is None or session.source.stream_error(symbol) is not None
                    or (key not in session.streams
                        and len(session.streams) + len(ok) >= session.max_streams)):
                refused.append(channel)
            else:
                ok.append(channel)
        session.subscribe([c.encode() for c in ok])
        msg = REFUSAL.format(",".join(refused)) if refused else ",".join(ok)
        return _encode({"id": req.id, "code": 0, "msg": msg}).decode()

    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        return frame

    def corrupt_price(self, frame: bytes) -> bytes:
        return bad_price(frame)

    # -- REST ----------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        return PATHS.get(path)

    def weight(self, endpoint: str, params: dict[str, str]) -> int:
        return WEIGHTS.get(endpoint, 1)

    def weight_headers(self, used: int) -> list[tuple[str, str]]:
        return []  # none documented

    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        return status, _encode({"code": status, "msg": "Too Many Requests" if status == 429
                                else "IP banned"})

    # -- sources -------------------------------------------------------------------------------

    def replayed(self, recording: Recording | None) -> SpotReplay:
        if recording is None:
            return SpotReplay(None)
        return SpotReplay(recording.listings.get("/api/v3/exchangeInfo", recording.exchange_info),
                          set(recording.symbols), set(recording.first_snapshots))

    def simulated(self, model: MarketModel) -> SpotSim:
        return SpotSim(self.feed, model)


__all__ = ["FEED_ID", "SpotMarket", "SpotReplay", "SpotSim", "channel_symbol"]
