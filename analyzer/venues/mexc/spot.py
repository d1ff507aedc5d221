"""MEXC spot public market data (``mexc_spot``): streams, protobuf frames, the book rule, REST.

Docs: https://mexcdevelop.github.io/apidocs/spot_v3_en/ ("Websocket Market Streams": "Trade
      Streams", "Diff.Depth Stream", "Individual Symbol Book Ticker Streams", "How to Properly
      Maintain a Local Copy of the Order Book"; "Market Data Endpoints": exchangeInfo, depth,
      trades), as of mexcdevelop/apidocs spot_v3_en c0de8fff (2025-08-08)
Schema: mexcdevelop/websocket-proto @ 7b8ac7a6 (``protobuf.py``)

Streams, one channel each, named by the channel itself (the push wrapper's field 1 is it: a
frame is routed by one dict lookup of that slice):

    depth       spot@public.aggre.depth.v3.api.pb@100ms@<SYM>       BookChange
    trades      spot@public.aggre.deals.v3.api.pb@100ms@<SYM>       Trade, one per deal
    bookTicker  spot@public.aggre.bookTicker.v3.api.pb@100ms@<SYM>  Quote

``interval`` (option: 100ms or 10ms) is how often MEXC pushes what it aggregated. Requests are
``{"method":"SUBSCRIPTION","params":[<channel>],"id":<n>}``, one channel a message (an ack
names what it acks: ``{"id":<n>,"code":0,"msg":"<channel>"}``), likewise ``UNSUBSCRIPTION``; a
refusal is still code 0: ``{"id":0,"code":0,"msg":"Not Subscribed successfully! [<channels>].
Reason： Blocked! "}`` (public clients' captures, 2025-2026, of the retired JSON channels; what
an unknown symbol gets is not recorded anywhere we know of), a ``VenueError``. The heartbeat
``{"method":"PING"}`` is answered ``{"id":0,"code":0,"msg":"PONG"}`` (``control``: ``pong``).
JSON frames (acks, pongs, refusals) come as text, pushes as binary protobuf: ``control`` looks
no further than a frame's first byte for data (``{`` is JSON). ``inflate`` is the identity, so
that the connection hands every frame to the raw capture byte-exact (``~<base64>`` lines:
protobuf holds newlines).

Decoding (``protobuf.py``): the wrapper's ``sendTime`` (ms, the docs' "event time") times book
changes and quotes; deals carry their own ``time``. Sizes are base units. A frame whose body is
missing, is not its channel's, or holds a number out of range is a ``DecodeError`` of the
route's channel; an unsubscribed channel an ``UnknownStream``.

Trades. Deals carry no id in the docs; the 2026-06 schema adds ``tradeId`` (a text like
``731901896985399296X0_731901896985399297X0``), but ``GET /api/v3/trades`` answers ``"id":
null``: a deal is named by its content, as ``mexc_futures`` names its deals, so that the
stream's copy and the REST copy (the reconnect backfill, newest first, at most 1000) get one
id and the store keeps one: ``<time>-<1 buy|2 sell>-<price>-<quantity>`` (floats' repr), ``#k``
for the k-th repeat within one frame or body. Two deals alike in all four within one
millisecond but pushed in two frames are taken for one.

Books (``decode.MexcRules(spot=True)``, the rule of both markets). The snapshot is REST
``/api/v3/depth?symbol=&limit=`` (``depth_limit``, default 1000 as the docs' recipe, at most
5000) with its ``lastUpdateId``; each push covers ``fromVersion..toVersion``: ``first_id``,
``last_id`` (no prev id). The docs' recipe: "3. The fromVersion of each new push message should
be exactly equal to the toVersion + 1 of the previous message. Otherwise, packet loss has
occurred, and reinitialization from step 2 is required." (``follows``: anything else is a gap
and a new snapshot: a step forward ``version_skip``, a push reaching back over the last
``version_overlap``, one wholly at or below it ``version_repeat``, dropped as stale). "5. If
the toVersion in the push message is smaller than the version in the snapshot, the message is
outdated and should be ignored." (``is_stale``: ``toVersion <= lastUpdateId``: one equal to it
holds nothing newer either). "6. If the fromVersion in the push message is greater than the
version in the snapshot, data is missing ... 7. ... the version in the snapshot falls within
the [fromVersion, toVersion] range of the push message, the push message can be integrated".
Read literally, 6 refuses a push starting at the snapshot's version + 1, which misses nothing
by rule 3; so the first push applied has ``fromVersion <= lastUpdateId + 1 <= toVersion`` (as
Binance spot's), a push starting right after counted as ``bridge_next``, one starting later
(``bridge_skip``) makes the book ask a newer snapshot. MEXC spot serves no depth commits: a gap
takes a snapshot. Levels are absolute quantities, 0 removes.

Quotes. The bookTicker's ``version`` (added 2026-06, not in the docs) is taken as the book
version whose top it shows: two recorded frames (2026-09-25) agree with the depth of the same
minute, the bookTicker's version a little below the partial depth's and the same best bid and
ask. So a Quote carries it as its update id and the book keeper compares its top with the
venue's where the versions make that exact (a mismatch resyncs that book and is counted):
``quote_versions`` (option) false sends -1 (no comparison) should live traffic say otherwise;
a frame without it also gives -1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import msgspec

from analyzer.events import BookChange, Instrument, OpenInterest, Quote, Trade
from analyzer.venues.base import (
    CHANNELS,
    Control,
    DecodeError,
    FeedBase,
    Market,
    Route,
    Sink,
    UnknownStream,
    VenueError,
)
from analyzer.venues.bounds import MS
from analyzer.venues.mexc import protobuf as pb
from analyzer.venues.mexc.decode import MexcRules
from analyzer.venues.mexc.schemas import (
    SPOT_DEPTH_DECODER,
    SPOT_ERROR_DECODER,
    SPOT_INFO_DECODER,
    SPOT_TRADES_DECODER,
)
from analyzer.venues.mexc.spec import SPOT_WS_PATH

PREFIX = "/api/v3"
INSTRUMENTS_PATH = f"{PREFIX}/exchangeInfo"
DEPTH_PATH = f"{PREFIX}/depth"
TRADES_PATH = f"{PREFIX}/trades"
TRADES_LIMIT = 1000  # "Default 500; max 1000"
# Weight(IP) of each request (docs "Market Data Endpoints")
REST_WEIGHTS = {"instruments": 10, "depth": 1, "trades": 5}
ONLINE = ("1", "ENABLED")  # exchangeInfo ``status``
# channel -> (stream name template, the body's field in the push wrapper)
KINDS = {
    "depth": ("spot@public.aggre.depth.v3.api.pb@{interval}@{symbol}", pb.DEPTH),
    "trades": ("spot@public.aggre.deals.v3.api.pb@{interval}@{symbol}", pb.DEALS),
    "bookTicker": ("spot@public.aggre.bookTicker.v3.api.pb@{interval}@{symbol}",
                   pb.BOOK_TICKER),
}
ORDER = {"trades": 0, "depth": 1}  # subscription order by channel (``streams``)
REFUSED = "Not Subscribed"


class SpotOptions(msgspec.Struct, forbid_unknown_fields=True):
    """A MEXC spot feed's own config keys (``[feeds.options]``)."""

    # levels a side of a REST snapshot (``/api/v3/depth?limit=``): the docs' recipe asks 1000,
    # "max 5000"
    depth_limit: Annotated[int, msgspec.Meta(ge=5, le=5000)] = 1000
    interval: Literal["100ms", "10ms"] = "100ms"  # how often MEXC pushes what it aggregated
    # the bookTicker's version as the Quote's update id (module doc, "Quotes")
    quote_versions: bool = True


class _Control(msgspec.Struct, frozen=True, gc=False):
    """``{"id":0,"code":0,"msg":...}``: an ack, a pong or a refusal."""

    id: int | str = 0
    code: int = 0
    msg: str = ""


_control = msgspec.json.Decoder(_Control, strict=False)


def deal_ids(deals: list[tuple[float, float, int, int]]) -> list[str]:
    """Content ids (module doc, "Trades") of deals (price, quantity, 1|2, ms)."""
    seen: dict[str, int] = {}
    out = []
    for p, q, side, ms in deals:
        key = f"{ms}-{side}-{p!r}-{q!r}"
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}#{n}")
    return out


def _rest_error(body: bytes, what: str, channel: str) -> Exception:
    """The error a body that did not decode stands for: the venue's own answer, or a bad body."""
    try:
        err = SPOT_ERROR_DECODER.decode(body)
    except (msgspec.DecodeError, ValueError) as exc:
        return DecodeError(f"{what}: {exc}", channel)
    return VenueError(f"{what}: {err.code} {err.msg[:200]}", channel)


class MexcSpotFeed(FeedBase):
    """Streams, subscriptions, decoding and REST of the MEXC spot market (module doc); built
    by ``decode.MexcFeed`` for a spot market."""

    Options = SpotOptions
    # frames are not compressed: the identity (``bytes`` of a bytes object is that object, a C
    # call), set so that the connection captures every frame byte-exact (module doc)
    inflate = bytes

    def __init__(
        self,
        market: Market,
        symbols: Iterable[str],
        channels: Iterable[str],
        sink: Sink,
        *,
        options: dict[str, Any] | SpotOptions | None = None,
        funding_hours: dict[str, float] | None = None,
    ) -> None:
        opts = self.check_options(market, options or {})
        super().__init__(market, channels, sink, funding_hours)
        unknown = self.channels - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")
        self.options = opts
        self.snapshot_levels = opts.depth_limit
        self.rules = MexcRules(spot=True)
        self.rest_weights = dict(REST_WEIGHTS)
        self.symbols: list[str] = []
        self._ids = 0  # request ids
        for symbol in symbols:
            self.add_symbol(symbol)

    # -- streams --

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol (a new listing); returns its new streams. MEXC spot has no
        mark, funding, open interest or liquidations: those channels add nothing."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        handlers: dict[str, Callable[..., None]] = {
            "depth": self._on_depth, "trades": self._on_deals, "bookTicker": self._on_ticker}
        out = []
        for channel, (template, body) in KINDS.items():
            if channel not in self.channels:
                continue
            stream = template.format(interval=self.options.interval, symbol=symbol)
            self.routes[stream.encode()] = Route(stream, channel, symbol, body,
                                                 handlers[channel], extra=symbol.encode())
            out.append(stream)
        return out

    @property
    def streams(self) -> list[str]:
        """Deals first, then books, then quotes: one subscription a message, paced, so the
        streams that lose data while unsubscribed go first (a book's pushes are buffered for
        its snapshot; a deal missed at start-up is not backfilled)."""
        return [r.stream for r in sorted(self.routes.values(),
                                         key=lambda r: ORDER.get(r.channel, len(ORDER)))]

    def book_stream(self, symbol: str) -> str:
        return KINDS["depth"][0].format(interval=self.options.interval, symbol=symbol.upper())

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + SPOT_WS_PATH

    def _requests(self, method: str, streams: list[str]) -> list[bytes]:
        out = []
        for stream in streams:
            self._ids += 1
            out.append(msgspec.json.encode({"method": method, "params": [stream],
                                            "id": self._ids}))
        return out

    def subscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("SUBSCRIPTION", streams)

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("UNSUBSCRIPTION", streams)

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        return None  # spot sizes are base units already

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        return None  # public market data needs no key

    # -- control frames --

    def control(self, frame: bytes) -> Control | None:
        """``pong`` (msg ``PONG``), ``ack`` (code 0, msg a channel); a refusal is left to
        ``decode`` (a VenueError); protobuf pushes (not ``{``) return None at once."""
        if frame[:1] != b"{":
            return None
        try:
            msg = _control.decode(frame)
        except (msgspec.DecodeError, ValueError):
            return None  # decode will say what is wrong with it
        if msg.msg == "PONG":
            return "pong"
        if msg.code == 0 and not msg.msg.startswith(REFUSED):
            return "ack"
        return None

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a control frame. Raises DecodeError on a bad frame, UnknownStream for a
        channel nobody subscribed to, VenueError for a refused request."""
        if frame[:1] == b"{":
            return self._decode_text(frame)
        channel, symbol, ms, body, start, stop = pb.read_push(frame)
        route = self.routes.get(channel)
        if route is None:
            raise UnknownStream(f"unsubscribed stream {channel[:80]!r}")
        if body != route.decoder:
            raise DecodeError(f"{route.stream}: body field {body}, not {route.decoder}",
                              route.channel)
        if symbol and symbol != route.extra:
            raise DecodeError(f"{route.stream}: symbol {symbol[:40]!r}", route.channel)
        try:
            route.handler(frame, start, stop, ms, route, ts_local)
        except DecodeError as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        route.last_ns = ts_local
        route.frames += 1
        return route

    def _decode_text(self, frame: bytes) -> None:
        """An ack or a pong: nothing; a refusal: a VenueError."""
        try:
            msg = _control.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a MEXC spot frame: {exc}") from None
        if msg.code != 0 or msg.msg.startswith(REFUSED):
            raise VenueError(f"MEXC refused a request: {msg.code} {msg.msg[:300]}")

    def _on_depth(self, frame: bytes, start: int, stop: int, ms: int, route: Route,
                  ts_local: int) -> None:
        asks, bids, first, last = pb.read_depth(frame, start, stop)
        if first > last:
            raise DecodeError(f"fromVersion {first} > toVersion {last}")
        self.sink.on_book(BookChange(self.venue, route.symbol, ms * MS, ts_local, False, bids,
                                     asks, first, last))

    def _on_deals(self, frame: bytes, start: int, stop: int, ms: int, route: Route,
                  ts_local: int) -> None:
        deals = pb.read_deals(frame, start, stop)
        venue, symbol, on_trade = self.venue, route.symbol, self.sink.on_trade
        if len(deals) == 1:  # the usual push: no repeat to number
            p, q, side, t = deals[0]
            on_trade(Trade(venue, symbol, t * MS, ts_local, f"{t}-{side}-{p!r}-{q!r}", p, q,
                           "buy" if side == 1 else "sell"))
            return
        for (p, q, side, t), tid in zip(deals, deal_ids(deals), strict=True):
            on_trade(Trade(venue, symbol, t * MS, ts_local, tid, p, q,
                           "buy" if side == 1 else "sell"))

    def _on_ticker(self, frame: bytes, start: int, stop: int, ms: int, route: Route,
                   ts_local: int) -> None:
        top = pb.read_book_ticker(frame, start, stop)
        if top is None:
            return  # a side is empty: no quote
        bid, bid_qty, ask, ask_qty, ver = top
        self.sink.on_quote(Quote(self.venue, route.symbol, ms * MS, ts_local, bid, bid_qty,
                                 ask, ask_qty, ver if self.options.quote_versions else -1))

    # -- REST --

    def instrument_paths(self) -> list[str]:
        return [INSTRUMENTS_PATH]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        """The online spot pairs (``status`` "1"), by symbol: tick and lot from the price and
        quantity precisions (decimals)."""
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                info = SPOT_INFO_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError):
                raise _rest_error(body, "exchangeInfo", "other") from None
            for s in info.symbols:
                if str(s.status) not in ONLINE:
                    continue
                out[s.symbol] = Instrument(
                    self.venue, s.symbol, "mexc", "spot", s.baseAsset, s.quoteAsset, False, 1.0,
                    float(f"1e-{s.quotePrecision}"), float(f"1e-{s.baseAssetPrecision}"), None,
                    ts_local)
        return out

    def depth_path(self, symbol: str) -> str | None:
        return f"{DEPTH_PATH}?symbol={symbol}&limit={self.snapshot_levels}"

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        """The book at ``lastUpdateId`` (no time in the body: 0)."""
        try:
            d = SPOT_DEPTH_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError):
            raise _rest_error(body, f"depth snapshot {symbol}", "depth") from None
        v = d.lastUpdateId
        return BookChange(self.venue, symbol, 0, ts_local, True, d.bids, d.asks, v, v)

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # deals have no ids: no backfill by id

    def recent_trades_path(self, symbol: str) -> str | None:
        return f"{TRADES_PATH}?symbol={symbol}&limit={TRADES_LIMIT}"

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        return None  # the latest 1000 only

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """Recent trades (newest first in the body) as the Trades the stream makes, oldest
        first."""
        try:
            rows = SPOT_TRADES_DECODER.decode(body)
        except (msgspec.DecodeError, ValueError):
            raise _rest_error(body, f"trades {symbol}", "trades") from None
        rows.reverse()  # oldest first; deals of one millisecond in the stream's order too
        deals = [(t.price, t.qty, 2 if t.isBuyerMaker else 1, t.time)
                 for t in sorted(rows, key=lambda t: t.time)]
        return [Trade(self.venue, symbol, ms * MS, ts_local, tid, p, q,
                      "buy" if side == 1 else "sell")
                for (p, q, side, ms), tid in zip(deals, deal_ids(deals), strict=True)]

    def open_interest_path(self, symbol: str) -> str | None:
        return None  # spot: none

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        raise NotImplementedError("MEXC spot has no open interest")

    def funding_info_path(self) -> str | None:
        return None

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        raise NotImplementedError("MEXC spot has no funding")


__all__ = ["KINDS", "MexcSpotFeed", "SpotOptions", "deal_ids"]
