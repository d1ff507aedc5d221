"""BingX USDT-M perpetual swap market data: streams, gzip, heartbeat, decoding, the book rule
(the spot market: ``spot.py``, a subclass of this feed).

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/ (gzip, Ping/Pong, subscribe)
      https://bingx-api.github.io/docs/#/en-us/swapV2/socket/market.html (incrDepth, trade,
      bookTicker, markPrice)

Streams are BingX ``dataType``s, ``<symbol>@<channel>`` with the symbol as BingX spells it
(``BTC-USDT``: case-sensitive, ``btc-usdt`` is refused). ``depth``: ``@incrDepth``;
``trades``: ``@trade``; ``bookTicker``: ``@bookTicker`` (a Quote with update id -1: its ``u``
is not in the book's id space); ``markPrice``: ``@markPrice`` (mark only). BingX streams no
funding, index or open interest: they come over REST (``rest.py``: ``premium_path``, polled by
the core, and ``open_interest_path``). One topic per subscribe request, ``{"id","reqType",
"dataType"}``; its ``id`` is the stream, so that an error answer (80015 "dataType not support",
80403 past 200 topics) names the refused stream: a refused stream's data (one frame may still
leak, per probes) is an UnknownStream, not events.

Frames. Every server frame is gzip-compressed binary, ``Ping`` included: ``inflate`` gunzips
(a corrupt or truncated frame is a DecodeError, counted; the stream goes on). ``control`` sees
the inflated frame: ``Ping`` is the venue's heartbeat, answered ``Pong`` (``reply``), an
``{"id":..,"code":0}`` answer is an ack. A data frame starts
``{"code":0,"dataType":"<stream>"``: a byte slice of that picks the typed decoder
(``schemas.py``), which parses the whole frame once.

Books (``BingxRules``). ``@incrDepth`` sends the whole book first (``action: all``, up to ~1,000
levels a side, with ``lastUpdateId``): a snapshot on the socket (``ws`` source: a resync
resubscribes that stream alone), then ``action: update`` frames of changed levels (absolute
sizes; "0.0000" deletes; asks often worst first: the book applies them by price). The docs say
each update's ``lastUpdateId`` is the previous one plus one, and to reconnect otherwise. Probes
of the live venue (nemanull/arbitrage-observatory, "BingX WebSocket Profile", 2026-09) saw the
first update at the snapshot's id + 1, then ids skipping forward by 2 to 9 now and then (475 to
490 skips a minute over 199 streams, about 2.4 a minute per stream) with no change lost in what
they compared (the books still matched REST), and never going back. Those skips are not
documented, so the rule is the documented one (issue 16: a doubtful step is a gap and a resync;
a skip is let through only where the venue documents it as normal), in ``BingxRules.follows``:
an id of the last + 1 follows; any other forward step is a gap and a resync (the book's stream
resubscribed alone: a fresh ``action: all``), counted as ``cases["id_skip"]`` (a step up to
``SKIP_SEEN``, the probed skips' range doubled) or ``cases["id_jump"]`` (larger); an id not
above the last is stale and dropped by the book keeper (``cases["id_back"]`` counts the ones
below it: a venue restart would show there). The cost, per the probes: every stream resyncs
about once every 25 s (the collector paces a book's resubscriptions, at once after 10 calm
seconds), and its book is out of sync for the round trip each time. The option
``max_id_skip`` (default 1, the docs' rule) is the one place to change it: a user whose live
traffic shows the skips harmless (``id_skip`` counts them; a book compared with REST) may set
it to, say, 20, and a skip up to it is then applied (still counted); a skip then hides a lost
frame when the loss is within the bound.

Trades carry no id and duplicates were seen (ccxt#18650, #25639): each trade gets the id of
``rest.trade_key`` (time, side, price, size, and its rank among the frame's trades with the
same four), and a trade whose key a recent frame of the stream already had (as many times) is
dropped here (``TradeIds``); the store's (venue, symbol, trade_id) key does the rest. A frame
lists its trades newest first: they are handed on oldest first.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Annotated, Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, Quote, Trade
from analyzer.venues.base import (
    Control,
    DecodeError,
    FeedBase,
    Route,
    Sink,
    UnknownStream,
    VenueError,
)
from analyzer.venues.bingx.rest import BingxRest, trade_key
from analyzer.venues.bingx.schemas import (
    BOOK_TICKER_DECODER,
    DEPTH_DECODER,
    ENVELOPE_DECODER,
    MARK_DECODER,
    TRADES_DECODER,
    BookTickerFrame,
    DepthFrame,
    MarkFrame,
    TradesFrame,
)
from analyzer.venues.bingx.spec import WS_PATH
from analyzer.venues.bounds import MS

DATA_PREFIX = b'{"code":0,"dataType":"'
DATA_START = len(DATA_PREFIX)
GZIP_MAGIC = b"\x1f\x8b"
PING = b"Ping"
PONG = b"Pong"
BOOK_LEVELS = 1000  # levels a side of the ``action: all`` snapshot (up to ~1,024 seen)
TRADE_WINDOW_MS = 60_000  # how long a trade's key is remembered (duplicates come seconds apart)
CHANNELS = {"depth": "incrDepth", "trades": "trade", "bookTicker": "bookTicker",
            "markPrice": "markPrice"}


SKIP_SEEN = 20  # forward steps up to this are counted as the venue's skips (2-9 probed)
_time = attrgetter("T")


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """A BingX feed's own config keys (``[feeds.options]``)."""

    # the largest forward step of incrDepth's lastUpdateId applied as the venue's own skip
    # (module doc); 1, the default: the docs' strict +1 rule, every skip a gap and a resync
    max_id_skip: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1


class BingxRules:
    """BingX books: the id rule of the module doc, in ``follows`` alone. ``cases`` counts the
    steps the docs leave open: ``id_skip`` (a forward step up to ``SKIP_SEEN``: a gap unless
    within ``max_skip``), ``id_jump`` (a larger one), ``id_back`` (an id below the last)."""

    checksum: Callable[[str, Any], int] | None = None

    def __init__(self, max_skip: int) -> None:
        self.max_skip = max_skip
        self.cases: dict[str, int] = {"id_skip": 0, "id_jump": 0, "id_back": 0}

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return self.follows(snapshot_id, ev)

    def follows(self, last_id: int, ev: BookChange) -> bool:
        step = ev.last_id - last_id
        if step == 1:
            return True
        if step > 1:
            self.cases["id_skip" if step <= SKIP_SEEN else "id_jump"] += 1
            return step <= self.max_skip
        if step < 0:
            self.cases["id_back"] += 1
        return False


class TradeIds:
    """The trade keys of a stream's recent frames, with how many trades had each: a frame's
    trades beyond what earlier frames had of their key are new (module doc)."""

    __slots__ = ("order", "seen")

    def __init__(self) -> None:
        self.seen: dict[tuple[int, bool, float, float], int] = {}
        self.order: deque[tuple[int, tuple[int, bool, float, float]]] = deque()

    def new(self, rows: list[tuple[int, bool, float, float]]) -> list[tuple[int, int]]:
        """(index in ``rows``, rank) of the rows not seen before, in the order given."""
        seen = self.seen
        if len(rows) == 1:  # the usual frame: the loops below, for one row
            key = rows[0]
            out = []
            if key not in seen:
                seen[key] = 1
                self.order.append((key[0], key))
                out.append((0, 0))
            self._forget(key[0])
            return out
        counts: dict[tuple[int, bool, float, float], int] = {}
        out = []
        for i, key in enumerate(rows):
            n = counts.get(key, 0)
            counts[key] = n + 1
            if n >= seen.get(key, 0):
                out.append((i, n))
        newest = 0
        for key, n in counts.items():
            had = seen.get(key)
            if had is None:
                self.order.append((key[0], key))
            if had is None or n > had:
                seen[key] = n
            newest = max(newest, key[0])
        self._forget(newest)
        return out

    def _forget(self, newest: int) -> None:
        """Forget the keys older than the window before ``newest``."""
        order, seen = self.order, self.seen
        while order and order[0][0] < newest - TRADE_WINDOW_MS:
            seen.pop(order.popleft()[1], None)


class BingxFeed(BingxRest, FeedBase):
    """Streams, subscriptions and decoding of the BingX swap market (REST: ``BingxRest``)."""

    Options = Options

    def __new__(cls, market: Any, *args: Any, **kwargs: Any) -> BingxFeed:
        """The registry's one feed class serves both markets: a spot market gets the spot
        feed (``spot.BingxSpotFeed``, a subclass: its own socket, frames and REST)."""
        if cls is BingxFeed and getattr(market, "is_spot", False):
            from analyzer.venues.bingx.spot import BingxSpotFeed

            cls = BingxSpotFeed
        return super().__new__(cls)


    def __init__(
        self,
        market: Any,
        symbols: Iterable[str],
        channels: Iterable[str],
        sink: Sink,
        *,
        options: dict[str, Any] | Options | None = None,
        funding_hours: dict[str, float] | None = None,
    ) -> None:
        opts = self.check_options(market, options or {})
        super().__init__(market, channels, sink, funding_hours)
        self.symbols: list[str] = []
        self.rules = BingxRules(opts.max_id_skip)
        self.snapshot_levels = BOOK_LEVELS
        self.instruments: dict[str, Instrument] = {}
        self.marks: dict[str, float] = {}  # latest mark per symbol (OI in coins)
        self.last_price: dict[str, float] = {}  # latest trade price per symbol (OI before)
        self.refused: set[bytes] = set()  # streams the venue refused
        self.duplicate_trades = 0
        self.interval_unknown = 0  # premium answers without a funding interval
        self._unknown_logged: set[str] = set()
        for symbol in symbols:
            self.add_symbol(symbol)

    # -- streams and subscriptions --

    def _streams_for(self, symbol: str) -> list[tuple[str, str, Any, Callable[..., None]]]:
        handlers: dict[str, tuple[Any, Callable[..., None]]] = {
            "depth": (DEPTH_DECODER, self._on_depth),
            "trades": (TRADES_DECODER, self._on_trades),
            "bookTicker": (BOOK_TICKER_DECODER, self._on_book_ticker),
            "markPrice": (MARK_DECODER, self._on_mark),
        }
        return [(f"{symbol}@{CHANNELS[ch]}", ch, *handlers[ch])
                for ch in CHANNELS if ch in self.channels]

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol; returns its new streams."""
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        out = []
        for stream, channel, decoder, handler in self._streams_for(symbol):
            extra = TradeIds() if channel == "trades" else None
            self.routes[stream.encode()] = Route(stream, channel, symbol, decoder, handler,
                                                 extra=extra)
            out.append(stream)
        return out

    @property
    def streams(self) -> list[str]:
        return [r.stream for r in self.routes.values()]

    def ws_endpoint(self, ws_url: str) -> str:
        """The market endpoint under a base URL (the live host or the local exchange's)."""
        return ws_url.rstrip("/") + WS_PATH

    def subscribe_messages(self, streams: list[str]) -> list[bytes]:
        """One request per topic; the book streams last: a connection's requests go out one at
        a time (paced), and a book that is in sync then means every other topic of the
        connection is subscribed too (nothing streamed before it is missed unnoticed)."""
        ordered = sorted(streams, key=lambda s: s.endswith("@incrDepth"))
        return [msgspec.json.encode({"id": s, "reqType": "sub", "dataType": s})
                for s in ordered]

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return [msgspec.json.encode({"id": f"unsub:{s}", "reqType": "unsub", "dataType": s})
                for s in streams]

    def book_stream(self, symbol: str) -> str:
        return f"{symbol}@incrDepth"

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """The listing (sizes are base units already: nothing to convert)."""
        self.instruments.update(instruments)

    # -- frames --

    def inflate(self, frame: bytes) -> bytes:
        """A gzip frame's text; a frame that is text already (``{``) as it is. Raises
        DecodeError on a corrupt or truncated one (zlib checks the CRC and the length)."""
        if frame[:2] != GZIP_MAGIC:
            if frame[:1] == b"{":
                return frame
            raise DecodeError(f"not a gzip frame: {frame[:20]!r}")
        try:
            return zlib.decompress(frame, 31)  # one call: no decompressor object to make
        except zlib.error as exc:  # "incomplete or truncated stream", "invalid ...", ...
            raise DecodeError(f"bad gzip frame: {exc}") from None

    def control(self, frame: bytes) -> Control | None:
        """``ping`` (the venue's ``Ping``), ``ack`` (a subscribe or unsubscribe answered with
        code 0); None for data and errors (``decode`` raises those as VenueError)."""
        if frame.startswith(DATA_PREFIX):
            return None
        if frame == PING:
            return "ping"
        if frame.startswith(b'{"id":') and b'"code":0,' in frame[:120] \
                and b'"data":null' in frame:
            return "ack"
        return None

    def reply(self, frame: bytes) -> bytes:
        return PONG

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one (inflated) frame and hand its events to the sink. Returns the route, or
        None for a control frame. Raises DecodeError on a bad frame, UnknownStream for a stream
        nobody subscribed to (or the venue refused), VenueError for an error answer."""
        if frame.startswith(DATA_PREFIX):
            route = self.routes.get(frame[DATA_START : frame.find(b'"', DATA_START)])
            if route is not None and not self.refused:  # (``_dispatch``, inlined: hot path)
                try:
                    msg = route.decoder.decode(frame)
                except (msgspec.DecodeError, ValueError) as exc:
                    raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
                route.handler(msg, route, ts_local)
                route.last_ns = ts_local
                route.frames += 1
                return route
        return self._decode_slow(frame, ts_local)

    def _dispatch(self, route: Route, frame: bytes, ts_local: int) -> Route:
        try:
            msg = route.decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        route.handler(msg, route, ts_local)
        route.last_ns = ts_local
        route.frames += 1
        return route

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        if frame == PING:
            return None
        try:
            env = ENVELOPE_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a BingX frame: {exc}") from None
        if env.id is not None:  # an answer to a request of ours
            stream = env.id.removeprefix("unsub:").encode()
            if env.code != 0:
                if stream in self.routes and not env.id.startswith("unsub:"):
                    self.refused.add(stream)
                raise VenueError(f"BingX error {env.code} for {env.id[:60]}: {env.msg[:200]}")
            if not env.id.startswith("unsub:"):
                self.refused.discard(stream)
            return None
        if env.code != 0:
            raise VenueError(f"BingX error {env.code}: {env.msg[:200]}")
        key = env.dataType.encode()
        route = self.routes.get(key)
        if route is None or key in self.refused:
            raise UnknownStream(f"unsubscribed stream {env.dataType[:60]!r}")
        return self._dispatch(route, frame, ts_local)

    def _on_depth(self, msg: DepthFrame, route: Route, ts_local: int) -> None:
        d = msg.data
        if d.action == "all":
            snapshot = True
        elif d.action == "update":
            snapshot = False
        else:
            raise DecodeError(f"{route.stream}: action {d.action[:20]!r}", "depth")
        self.sink.on_book(BookChange(
            self.venue, route.symbol, d.time * MS, ts_local, snapshot, d.bids, d.asks,
            d.lastUpdateId, d.lastUpdateId))

    def _on_trades(self, msg: TradesFrame, route: Route, ts_local: int) -> None:
        rows = msg.data if len(msg.data) < 2 else sorted(msg.data, key=_time)  # newest first
        keys = [(t.T, t.m, t.p, t.q) for t in rows]
        new = route.extra.new(keys)
        if len(new) < len(rows):
            self.duplicate_trades += len(rows) - len(new)
            if not new:
                self.sink.on_duplicate()
        symbol, venue, on_trade = route.symbol, self.venue, self.sink.on_trade
        if rows:
            self.last_price[symbol] = rows[-1].p
        for i, n in new:
            t = rows[i]
            on_trade(Trade(venue, symbol, t.T * MS, ts_local, trade_key(t.T, t.m, t.p, t.q, n),
                           t.p, t.q, "sell" if t.m else "buy"))

    def _on_book_ticker(self, msg: BookTickerFrame, route: Route, ts_local: int) -> None:
        d = msg.data
        self.sink.on_quote(Quote(self.venue, route.symbol, (d.T or d.E) * MS, ts_local,
                                 d.b, d.B, d.a, d.A, -1))

    def _on_mark(self, msg: MarkFrame, route: Route, ts_local: int) -> None:
        d = msg.data
        self.marks[route.symbol] = d.p
        self.sink.on_ticker(DerivativeTicker(self.venue, route.symbol, d.E * MS, ts_local,
                                             mark_price=d.p))


__all__ = ["SKIP_SEEN", "BingxFeed", "BingxRules", "Options", "TradeIds"]
