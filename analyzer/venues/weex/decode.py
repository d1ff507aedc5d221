"""WEEX V3 public market data, contract and spot: streams, decoding, the book sequencing rule.

Docs: https://www.weex.com/api-doc/contract/Websocket/websocket-intro
      https://www.weex.com/api-doc/contract/Websocket/public/Depth-Channel
      https://www.weex.com/api-doc/contract/Websocket/public/Trades-Channel
      https://www.weex.com/api-doc/contract/Websocket/public/Tickers-Channel
Frames seen: blyn-ai/CryptoSmith-X ``Fixtures/weex-ws`` (captured 2026-09-06), tests/fixtures/weex.

Protocol. ``wss://ws-contract.weex.com/v3/ws/public``; the server greets with
``{"cid":..,"event":"connected",..}``. Subscriptions are Binance-shaped,
``{"method":"SUBSCRIBE","params":["BTCUSDT@depth200","BTCUSDT@trade"],"id":1}``, answered
``{"result":true,"id":1}`` (the snapshot may come before the answer) or
``{"result":false,"id":1,"msg":"INVALID_ARGUMENT: invalid symbol : X"}``: a ``VenueError``, and
the streams it names (else every stream of that request) are never asked for again
(``refused``): six refusals on one socket close it (1007), so a refused stream is not retried.

Channels. ``depth``: ``<SYM>@depth200`` (option ``depth``: 15 or 200, the only two the venue
has; ``@depth`` is 15); ``trades``: ``<SYM>@trade``; ``markPrice``: ``<SYM>@ticker`` (Binance's
24 h ticker plus ``m`` the mark and ``i`` the index price) and, over REST, ``premiumIndex`` for
funding (rate, next time, interval: ``rest``); ``openInterest``: REST. There is no
bookTicker, funding, open-interest or liquidation channel on the contract socket. A frame
names its event and symbol (``{"e":"depth","E":..,"s":"BTCUSDT",..}``), not its stream: one
decode of a union tagged by ``e`` (``schemas.DataFrame``) gives the frame's class, which names
its stream's kind, and the symbol; the route is found from the two (a frame that is not one of
them, e.g. a control frame, takes the slow path, which names its error's channel).

Books (``WeexRules``, the one place of the rule). The subscription sends ``depthSnapshot``
(``d`` SNAPSHOT; ``U``, ``u``), then ``depth`` changes every ~500 ms whose ``U`` is the
previous frame's ``u`` (not ``u + 1``), the first change's ``U`` the snapshot's ``u``; sizes
are absolute, "0" removes a level, and the venue keeps the window (15 or 200 levels a side)
itself: a level leaving it is sent as a removal. The docs say only "if any update is missed,
resubscribe"; the chain ``U == previous u`` is verified on the real 60-change sequence (and on
~27,000 changes by a third-party probe). Any other ``U`` is a gap: the book resyncs by
resubscribing its stream alone (``snapshot_source`` ``ws``); a change whose ``u`` is not above
the book's is a stale one (the old subscription's, during a resubscribe) and dropped. A change
is a BookChange with ``prev_id`` = ``U``, ``first_id`` = ``U + 1``, ``last_id`` = ``u``. No
checksum. A delisted symbol is acked and sends one empty snapshot with ``U = u = 0`` and
nothing after: a dead stream, counted (``rules.cases["dead_stream"]``) and not handed to the
book, which stays out of sync without asking again (resubscribing would bring the same empty
snapshot); it is not counted as a frame either, so no freshness watch learns it and restarts
the connection for it.

Trades. ``tradeSnapshot`` (the latest 20) on each subscription, then ``trade`` frames that
repeat trades already sent and are not in time order: each trade (UUID ``t``) is handed on
once, per frame in time order; a repeat is dropped and counted (``Sink.on_duplicate``). What was
handed on is kept per symbol (``trades.TradeLedger``: the latest ``TRADES_KEPT`` ids, and the
same trades by millisecond and content). A resubscription's ``tradeSnapshot`` none of whose
trades had been met is counted (``trades_beyond_snapshot``): the outage was longer than 20
trades. ``m`` true (the buyer was the maker) is a taker sell.

Backfill. After a reconnect the collector asks ``GET /capi/v3/market/trades`` for the latest
1,000 trades (``rest``) and keeps those from the venue time of the last trade seen before the
outage on (``since``). That REST body names a trade by ``id`` (digits in the docs' sample),
the socket by a UUID: the store's idempotence on the trade id cannot tell that a REST trade is
one the socket brought, so ``TradeLedger.backfill`` does, by content. The rule: the hole is
what lies strictly after the last trade the old connection handed on and before the first
trade of the new connection (the oldest millisecond of the first ``tradeSnapshot`` after the
request was asked, ``resumed_ms``). At the boundary milliseconds a REST trade is matched to a
trade the socket handed on at the same millisecond with the same price, size and side (each
socket trade to one REST trade: the same content twice in one millisecond is two trades on
both sides); it is the socket's trade and is returned under the socket's UUID (so the store
keeps one row). An unmatched REST trade older than or at ``resumed_ms`` is in the hole and is
handed on under its REST id; an unmatched one after it is left out: the new connection brings
it. Why content: the two sources share nothing else (no common id, no sequence), and the venue
time alone would either drop the other trades of the boundary millisecond or store the same
trade twice. When the REST answer comes before the new connection's ``tradeSnapshot``, the new
connection's first trade is not known yet: every unmatched REST trade is handed on, and each
is remembered so that the socket's copy, when it comes, is dropped as a duplicate by the same
match (first source wins). The matching is applied at every millisecond, not only the two
boundaries: the socket has nothing inside the hole, and a trade it did hand on out of time
order is not stored twice. The REST ids of the real venue may be the socket's UUIDs (ccxt's
sample shows a UUID); the rule does not rely on it either way.

Heartbeat. The server sends ``{"event":"ping","time":"<ms>"}`` about every 60 s; the V3 docs
say to answer ``{"method":"PONG","id":1}`` (V2 wanted ``{"event":"pong","time":..}``), and ccxt
answers ``{"id":n,"method":"PONG"}``: ``control`` calls it a ``ping`` and ``reply`` makes that
answer (the V3 docs close a socket after 10 unanswered pings). Our own heartbeat
(``spec.HEARTBEAT``, every 30 s) is ``{"method":"PING","id":1000000}``, answered
``{"result":true,"id":1000000}``: the ``pong`` the connection waits for.

``rules.cases`` also counts the funding-interval cases of ``rest`` (one dict for the feed's
doubtful cases, exported by the core).

Spot (``weex_spot``). Docs: https://www.weex.com/api-doc/spot/Websocket/websocket-intro and its
public channels (Depth, Trades, BookTicker); ``wss://ws-spot.weex.com/v3/ws/public`` (ccxt
``pro/weex.ts`` ``urls.api.ws.spot`` + ``/public``; JKorf/Weex.Net ``WeexSocketClientSpotApi``
``/v3/ws/public``). No real spot frame has been recorded anywhere we know of: what follows
rests on the docs, ccxt's and JKorf's samples, and the tests use those samples and the local
exchange. The socket speaks the contract socket's protocol: the same subscribe, acks,
refusals, greeting and ``{"event":"ping"}`` answered ``PONG`` (ccxt uses one client for both
hosts), the same ``<SYM>@depth15|200`` and ``<SYM>@trade`` frames (same keys: ccxt parses both
with one handler), so this class decodes both markets. Spot's own channel is
``<SYM>@bookTicker`` (``{"e":"bookTicker","E":..,"s":..,"u":..,"b":..,"B":..,"a":..,"A":..}``):
a ``Quote`` of the venue. Its ``u`` is not used as the quote's update id: JKorf calls it the
"order book sequence number", but in both samples it is a millisecond time a few ms before
``E`` (1775117847996 against ``E`` 1775117847999; ccxt 1776103547547 against ...551), not in
the depth stream's id space (``u`` 971193552 in JKorf's spot depth sample of the same
minute): handed to the core as a book id, it would compare the quote with a book position it
does not name. The quote is sent with no id (-1): never compared with the book, deduplicated
by content and time. The spot ``@ticker`` has no mark or index (ccxt's ``m``/``i`` are the
contract's): ``markPrice`` is not a spot channel here.

The spot book rule. The docs say only "if any update is missed, resubscribe" for spot as for
contracts, and no spot sequence is recorded; JKorf's spot sample has the contract's fields
(``U`` 971193541, ``u`` 971193552, ``l``, ``d``). The chain of the contract socket is kept:
a change follows when its ``U`` is the last ``u`` (``WeexRules``, one rule for both markets).
Why not also accept ``U == u + 1`` (Binance's spot convention): under the chain a frame whose
``U`` is one above the last ``u`` means a frame in between was lost, so accepting it could
serve a wrong book; refusing it when spot used the other convention only costs resyncs (a gap
and a resubscribe), never a wrong book. Each such step is counted on spot
(``rules.cases["spot_u_plus_one"]``): live traffic shows at once if spot numbers its changes
the other way, and the rule is changed in this one place. The listing, REST trades and the
reconnect's trade backfill: ``rest`` (spot paths) and the same ``TradeLedger``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from itertools import count
from typing import Any, Literal

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
from analyzer.venues.bounds import MS
from analyzer.venues.weex.rest import SPOT_WEIGHTS, WeexRest
from analyzer.venues.weex.schemas import (
    BOOK_TICKER_DECODER,
    DEPTH_DECODER,
    ENVELOPE_DECODER,
    FRAME_DECODER,
    TICKER_DECODER,
    TRADE_DECODER,
    BookTickerFrame,
    DepthChange,
    DepthFrame,
    DepthSnapshot,
    TickerFrame,
    TradeFrame,
    Trades,
    TradeSnapshot,
)
from analyzer.venues.weex.spec import PING_ID, WS_PATH
from analyzer.venues.weex.trades import TradeLedger

log = logging.getLogger(__name__)

DATA_PREFIX = b'{"e":"'
DATA_START = len(DATA_PREFIX)
# event -> the kind of stream it comes on (route keys are ``kind@SYMBOL``)
KIND = {b"depthSnapshot": b"depth", b"depth": b"depth", b"tradeSnapshot": b"trade",
        b"trade": b"trade", b"ticker": b"ticker", b"bookTicker": b"bookTicker"}
# the kind of stream -> the classes of its frames (``schemas``: the event is the class)
FRAMES: dict[bytes, tuple[type, ...]] = {
    b"depth": (DepthChange, DepthSnapshot), b"trade": (Trades, TradeSnapshot),
    b"ticker": (TickerFrame,), b"bookTicker": (BookTickerFrame,)}
REPLY = b'{"method":"PONG","id":1}'
REQUESTS_KEPT = 1000  # subscribe requests remembered (to name the streams a refusal means)
CONTROL_BYTES = 512  # a control frame is short; a longer one is data laid out unlike WEEX's


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """A WEEX feed's own config keys (``[feeds.options]``)."""

    # the book stream's depth: the venue has 15 (``@depth``) and 200 levels a side
    depth: Literal[15, 200] = 200


class WeexRules:
    """WEEX books (module doc): a change follows the last when its ``U`` (``prev_id``) is the
    last ``u``; the first change after a snapshot when its ``U`` is the snapshot's ``u``; a
    change not above the book's ``u`` is stale. ``cases``: counts of the doubtful cases;
    ``spot``: count the steps of ``U == u + 1`` (a gap here; the module doc, "The spot book
    rule")."""

    checksum = None

    def __init__(self, cases: dict[str, int], spot: bool = False) -> None:
        self.cases = cases
        self.spot = spot

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def follows(self, last_id: int, ev: BookChange) -> bool:
        if ev.prev_id == last_id:
            return True
        if self.spot and ev.prev_id == last_id + 1:
            self.cases["spot_u_plus_one"] = self.cases.get("spot_u_plus_one", 0) + 1
        return False

    bridges = follows  # the first change after a snapshot: the same chain, from its ``u``


def stream_kind(stream: str) -> str:
    """``depth``, ``trade``, ``ticker`` or ``bookTicker`` of a stream name
    (``BTCUSDT@depth200``)."""
    channel = stream.partition("@")[2]
    return "depth" if channel.startswith("depth") else channel


class WeexFeed(WeexRest, FeedBase):
    """Streams, subscriptions and decoding of WEEX's USDT-M perpetuals and of its spot market
    (``market.is_spot``; REST: ``WeexRest``)."""

    Options = Options
    inflate = None  # text frames (permessage-deflate is not offered)

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
        self.depth = opts.depth
        self.snapshot_levels = opts.depth
        self.spot = bool(market.is_spot)
        if self.spot:
            self.rest_weights = SPOT_WEIGHTS
        self.cases: dict[str, int] = {}
        self.rules = WeexRules(self.cases, spot=self.spot)
        self.symbols: list[str] = []
        self.instruments: dict[str, Instrument] = {}
        self.contract_val: dict[str, float] = {}
        self.marks: dict[str, float] = {}
        self.dead: set[str] = set()  # symbols whose book stream is dead (delisted)
        self.refused: set[str] = set()  # streams the venue refused: never asked again
        self.requests: dict[int, list[str]] = {}  # request id -> its streams
        self.ledgers: dict[str, TradeLedger] = {}  # symbol -> its trades (``trades``)
        # the routes again, by class of frame and symbol (``decode``'s fast path)
        self.by_frame: dict[type, dict[str, Route]] = {}
        self._ids = count(1)
        for symbol in symbols:
            self.add_symbol(symbol)

    # -- streams and subscriptions --

    def _streams_for(self, symbol: str) -> list[tuple[str, str, Any, Callable[..., Any]]]:
        """(stream, our channel, decoder, handler) of a symbol's streams."""
        out: list[tuple[str, str, Any, Callable[..., Any]]] = []
        if "depth" in self.channels:
            out.append((f"{symbol}@depth{self.depth}", "depth", DEPTH_DECODER, self._on_depth))
        if "trades" in self.channels:
            out.append((f"{symbol}@trade", "trades", TRADE_DECODER, self._on_trades))
        if self.spot:  # spot has no mark or index; its own channel is the best bid and ask
            if "bookTicker" in self.channels:
                out.append((f"{symbol}@bookTicker", "bookTicker", BOOK_TICKER_DECODER,
                            self._on_book_ticker))
        elif "markPrice" in self.channels:
            out.append((f"{symbol}@ticker", "markPrice", TICKER_DECODER, self._on_ticker))
        return out

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol; returns its new streams."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        streams = []
        for stream, channel, decoder, handler in self._streams_for(symbol):
            key = f"{stream_kind(stream)}@{symbol}".encode()
            extra = self.ledgers.setdefault(symbol, TradeLedger()) if channel == "trades" \
                else None
            route = self.routes[key] = Route(stream, channel, symbol, decoder, handler,
                                             extra=extra)
            for cls in FRAMES[key.partition(b"@")[0]]:
                self.by_frame.setdefault(cls, {})[symbol] = route
            streams.append(stream)
        return streams

    @property
    def streams(self) -> list[str]:
        return [r.stream for r in self.routes.values()]

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + WS_PATH

    def _request(self, method: str, streams: list[str]) -> list[bytes]:
        """One request of the streams not refused (a connection holds at most 100)."""
        wanted = [s for s in streams if s not in self.refused]
        if not wanted:
            return []
        rid = next(self._ids) % PING_ID or next(self._ids)  # never the heartbeat's id
        self.requests[rid] = wanted
        if len(self.requests) > REQUESTS_KEPT:
            del self.requests[next(iter(self.requests))]
        return [msgspec.json.encode({"method": method, "params": wanted, "id": rid})]

    def subscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._request("SUBSCRIBE", streams)

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._request("UNSUBSCRIBE", streams)

    def book_stream(self, symbol: str) -> str:
        return f"{symbol.upper()}@depth{self.depth}"

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """The listing: each contract's size in base units, for open interest (the socket's
        sizes are base units already)."""
        self.instruments.update(instruments)
        for symbol, inst in instruments.items():
            self.contract_val[symbol] = inst.contract_value

    # -- control frames --

    def control(self, frame: bytes) -> Control | None:
        """``ping`` (the server's: answered with ``reply``), ``pong`` (our heartbeat's
        answer), ``ack`` (a subscription's), ``ignore`` (the greeting, an echoed PONG); None
        for data and for refusals (``decode`` raises them as VenueError)."""
        if frame.startswith(DATA_PREFIX) or len(frame) > CONTROL_BYTES:
            return None
        try:
            env = ENVELOPE_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError):
            return None  # decode will say what is wrong with it
        if env.event == "ping":
            return "ping"
        if env.result is True:
            return "pong" if env.id == PING_ID else "ack"
        if env.event is not None or env.method == "PONG":
            return "ignore"
        return None

    def reply(self, frame: bytes) -> bytes:
        """The answer to the server's ping (module doc)."""
        return REPLY

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a control frame. Raises DecodeError on a bad frame, UnknownStream for one of a
        stream nobody subscribed to, VenueError for a refusal."""
        # one decode of any data frame; anything else (a control frame, a bad value, an event
        # or symbol not followed, a lower-case symbol) is the slow paths' to name
        try:
            msg = FRAME_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError):
            route = self._route_by_prefix(frame)
            if route is not None:  # its stream's decoder says what is wrong, on its channel
                return self._dispatch(route, frame, ts_local)
            return self._decode_slow(frame, ts_local)
        routes = self.by_frame.get(msg.__class__)
        route = routes.get(msg.s) if routes is not None else None
        if route is None:
            return self._decode_slow(frame, ts_local)
        if route.handler(msg, route, ts_local) is not False:
            route.last_ns = ts_local
            route.frames += 1
        return route

    def _route_by_prefix(self, frame: bytes) -> Route | None:
        """The route a frame's first bytes name (``{"e":"depth","E":..,"s":"BTCUSDT"``), even
        when the rest does not parse; None if they name none."""
        if not frame.startswith(DATA_PREFIX):
            return None
        end = frame.find(b'"', DATA_START)
        kind = KIND.get(frame[DATA_START:end])
        at = frame.find(b'"s":"', end)
        if kind is None or at < 0:
            return None
        return self.routes.get(kind + b"@" + frame[at + 5 : frame.find(b'"', at + 5)])

    def _dispatch(self, route: Route, frame: bytes, ts_local: int) -> Route:
        try:
            msg = route.decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        if route.handler(msg, route, ts_local) is not False:
            route.last_ns = ts_local
            route.frames += 1
        return route

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        try:
            env = ENVELOPE_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a WEEX frame: {exc}") from None
        if env.result is False:
            self._refused(env.id, env.msg)
            raise VenueError(f"WEEX refused request {env.id!r}: {env.msg[:200]}")
        if env.result is True or env.event is not None or env.method is not None:
            return None  # acks, pings, the greeting
        if env.e is None or env.s is None:
            raise DecodeError("WEEX frame without an event and a symbol")
        kind = KIND.get(env.e.encode())
        if kind is None:
            raise UnknownStream(f"unknown WEEX event {env.e[:40]!r}")
        route = self.routes.get(kind + b"@" + env.s.upper().encode())
        if route is None:
            raise UnknownStream(f"unsubscribed stream {env.e[:40]} {env.s[:40]}")
        return self._dispatch(route, frame, ts_local)

    def _refused(self, rid: int | str | None, msg: str) -> None:
        """The streams a refusal means: those of its request that the message names (``...
        : <name>``), else all of them; never subscribed again."""
        streams = self.requests.get(rid) if isinstance(rid, int) else None
        if not streams:
            return
        name = msg.rpartition(" : ")[2].strip().upper()
        named = [s for s in streams if name and name in s.upper()]
        self.refused.update(named or streams)
        log.warning("%s: WEEX refused %s (%s): not asked again", self.venue,
                    ", ".join(named or streams), msg[:200])

    def _on_depth(self, msg: DepthFrame, route: Route, ts_local: int) -> bool | None:
        if msg.__class__ is DepthChange:
            self.sink.on_book(BookChange(self.venue, route.symbol, msg.E * MS, ts_local, False,
                                         msg.b, msg.a, msg.U + 1, msg.u, msg.U))
            return None
        symbol = route.symbol
        if msg.u == 0 and not msg.b and not msg.a:  # a delisted symbol's dead stream
            self.count("dead_stream")
            if symbol not in self.dead:
                self.dead.add(symbol)
                log.warning("%s %s: empty snapshot with u = 0: the symbol is delisted; its "
                            "book is not resubscribed", self.venue, symbol)
            return False
        self.dead.discard(symbol)
        self.sink.on_book(BookChange(self.venue, symbol, msg.E * MS, ts_local, True, msg.b,
                                     msg.a, msg.u, msg.u))
        return None

    def _on_trades(self, msg: TradeFrame, route: Route, ts_local: int) -> None:
        ledger: TradeLedger = route.extra
        new, dropped, beyond = ledger.new(msg.d, msg.__class__ is TradeSnapshot)
        if beyond:
            self.count("trades_beyond_snapshot")
        sink = self.sink
        for _ in range(dropped):
            sink.on_duplicate()
        symbol = route.symbol
        for t in new:
            sink.on_trade(Trade(self.venue, symbol, t.T * MS, ts_local, t.t, t.p, t.q,
                                "sell" if t.m else "buy"))

    def _on_book_ticker(self, msg: BookTickerFrame, route: Route, ts_local: int) -> None:
        """Spot's best bid and ask, with no update id (module doc, "Spot")."""
        self.sink.on_quote(Quote(self.venue, route.symbol, msg.E * MS, ts_local, msg.b, msg.B,
                                 msg.a, msg.A, -1))

    def _on_ticker(self, msg: TickerFrame, route: Route, ts_local: int) -> None:
        symbol = route.symbol
        for d in msg.d:
            self.marks[symbol] = d.m
            self.sink.on_ticker(DerivativeTicker(self.venue, symbol, msg.E * MS, ts_local,
                                                 mark_price=d.m, index_price=d.i))


__all__ = ["Options", "WeexFeed", "WeexRules", "stream_kind"]
