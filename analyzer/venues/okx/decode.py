"""OKX v5 public market data: streams, decoding, the book sequencing rule and checksum.

Docs: https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel
      https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-trades-channel
      https://www.okx.com/docs-v5/en/#public-data-websocket
      https://www.okx.com/docs-v5/en/#overview-websocket

Channels. ``depth``: ``books`` (400 levels, public; the ``book_channel`` option may name
``books-l2-tbt`` or ``books50-l2-tbt``, which OKX grants to VIP4 and above only: others get
error 64003); ``trades``: ``trades``; ``bookTicker``: ``bbo-tbt`` (a Quote with update id -1:
its seqId is not comparable with the book's); ``markPrice``: ``mark-price``, ``index-tickers``
of the instrument's underlying (``BTC-USDT``, ``BTC-USD``: one stream shared by every followed
instrument on that index) and, for swaps, ``funding-rate``; ``openInterest``: ``open-interest``.
A stream is named ``<channel>:<instId>`` (``books:BTC-USDT``) and identified in a frame by the
``arg`` that opens it, ``{"arg":{"channel":"books","instId":"BTC-USDT"},...}``: a byte slice of
that picks the typed decoder (``schemas.py``), which parses the whole frame once.

Units. OKX sizes are contracts for SWAP and FUTURES. Linear contracts are converted here to base
units (size * ctVal * ctMult, from the listing given to ``set_instruments`` before any frame);
inverse ones stay contracts of ``contract_size`` USD; spot sizes are base units already.

Books. Each book frame is ``{asks, bids, ts, checksum, seqId, prevSeqId}`` with levels
``[px, sz, "0", count]``; a snapshot has ``prevSeqId`` -1 and each later frame's ``prevSeqId`` is
the previous frame's ``seqId`` (steps are not 1; a frame without changes repeats its seqId; after
maintenance the id may restart lower, still chained by ``prevSeqId``). Frames recorded before
seqIds existed (2022) carry -1 for both, and continuity rests on the checksum alone. The
checksum (signed CRC32 of ``bidPx:bidSz:askPx:askSz:...`` over the top 25 levels, the strings
as sent) is fixed to 0 since 2026 and then not checked. Checking it needs each level's text:
kept, per book, only while its snapshot carried a non-zero checksum (a second, string-only
parse of each frame of that book), so a book the venue sends no checksum for costs one parse.
They are kept sorted by price, each level as its ``"px:sz"`` text (``TextBook``), so that the
checksum is two slices, one join and a CRC, without reading the book's levels: the book is only
compared in O(1) (level counts, best prices) to make sure the texts describe it.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any, Literal

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Quote, Trade
from analyzer.feed.book import OrderBook
from analyzer.venues.base import (
    Control,
    DecodeError,
    FeedBase,
    Route,
    Sink,
    UnknownStream,
    VenueError,
)
from analyzer.venues.bounds import MAX_PRICE, MAX_SIZE, MS
from analyzer.venues.okx.rest import OkxRest
from analyzer.venues.okx.schemas import (
    BBO_DECODER,
    BOOK_DECODER,
    BOOK_TEXT_DECODER,
    ENVELOPE_DECODER,
    EVENT_DECODER,
    FUNDING_DECODER,
    INDEX_DECODER,
    MARK_DECODER,
    OPEN_INTEREST_DECODER,
    TRADES_DECODER,
    BboFrame,
    BookFrame,
    BookTextFrame,
    FundingFrame,
    IndexFrame,
    MarkFrame,
    OpenInterestFrame,
    TextLevel,
    TradesFrame,
)
from analyzer.venues.okx.spec import WS_PATH

HOUR_MS = 3_600_000
CHECKSUM_LEVELS = 25
# "the total length of multiple channels cannot exceed 64 KB" (docs "WebSocket / Subscribe")
MAX_REQUEST_BYTES = 60_000
ARG_PREFIX = b'{"arg":{"channel":"'
ARG_START = len(ARG_PREFIX)
Level2 = tuple[float, float]  # (price, size) of a BookChange
BOOK_CHANNELS = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50}  # levels a snapshot

class Options(msgspec.Struct, forbid_unknown_fields=True):
    """An OKX feed's own config keys (``[feeds.options]``)."""

    # books: public, 400 levels, diffs every 100 ms. books-l2-tbt (400) / books50-l2-tbt (50):
    # every 10 ms, for VIP4+ users only (others: error 64003; ccxt/ccxt#12995).
    book_channel: Literal["books", "books-l2-tbt", "books50-l2-tbt"] = "books"


def signed_crc32(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def book_checksum(bids: list[TextLevel], asks: list[TextLevel]) -> int:
    """OKX's legacy checksum of the top levels given best first: ``bidPx:bidSz:askPx:askSz``
    interleaved level by level (a longer side's remaining levels alone), signed CRC32."""
    n = min(len(bids), len(asks))
    parts: list[str] = []
    for b, a in zip(bids[:n], asks[:n], strict=True):
        parts += (b[0], b[1], a[0], a[1])
    for x in bids[n:] or asks[n:]:
        parts += (x[0], x[1])
    return signed_crc32(":".join(parts))


class TextBook:
    """A book's levels as the venue sent them, for the checksum: per side, the keys ascending
    best first (bids ``-price``, asks ``price``) and, in the same order, each level's
    ``"px:sz"`` text, so that the top 25 are two slices. ``last_id``: the seqId of the last
    frame applied, to skip the stale frames the book keeper drops (``OkxRules``).

    ``replace`` and ``update`` take a frame's text levels and return them as numbers (sizes
    times ``factor``, module doc): the texts and the numbers come from one pass over a frame
    parsed once."""

    __slots__ = ("ask_keys", "ask_texts", "bid_keys", "bid_texts", "last_id")

    def __init__(self) -> None:
        self.bid_keys: list[float] = []
        self.bid_texts: list[str] = []
        self.ask_keys: list[float] = []
        self.ask_texts: list[str] = []
        self.last_id = -1

    def replace(self, bids: list[TextLevel], asks: list[TextLevel], factor: float
                ) -> tuple[list[Level2], list[Level2]]:
        """A snapshot's levels (a repeated price keeps its last text; size 0: none)."""
        self.bid_keys, self.bid_texts, bid_levels = _side_of(bids, factor, True)
        self.ask_keys, self.ask_texts, ask_levels = _side_of(asks, factor, False)
        return bid_levels, ask_levels

    def update(self, bids: list[TextLevel], asks: list[TextLevel], factor: float
               ) -> tuple[list[Level2], list[Level2]]:
        """Changed levels: size 0 removes one, else its text is set."""
        return (_update_side(self.bid_keys, self.bid_texts, bids, factor, True),
                _update_side(self.ask_keys, self.ask_texts, asks, factor, False))

    def checksum(self) -> int:
        """OKX's checksum of the top 25 levels a side (``book_checksum``)."""
        b = self.bid_texts[:CHECKSUM_LEVELS]
        a = self.ask_texts[:CHECKSUM_LEVELS]
        n = min(len(b), len(a))
        parts: list[str] = [""] * (2 * n)
        parts[::2] = b[:n]
        parts[1::2] = a[:n]
        parts += b[n:] or a[n:]
        return signed_crc32(":".join(parts))


def numbers(levels: list[TextLevel], factor: float) -> list[Level2]:
    """Text levels as ``(price, size * factor)``, range-checked as ``bounds.Price`` and
    ``bounds.Size`` are (a NaN fails every comparison). Raises ValueError."""
    out = []
    for tp, tz, _, _ in levels:
        p = float(tp)
        s = float(tz)
        if not (0.0 < p < MAX_PRICE and 0.0 <= s < MAX_SIZE):
            raise ValueError(f"book level [{tp[:30]!r}, {tz[:30]!r}] out of range")
        out.append((p, s * factor))
    return out


def _side_of(levels: list[TextLevel], factor: float, negate: bool
             ) -> tuple[list[float], list[str], list[Level2]]:
    nums = numbers(levels, factor)
    side: dict[float, str] = {}
    for (p, s), (tp, tz, _, _) in zip(nums, levels, strict=True):
        k = -p if negate else p
        if s:
            side[k] = f"{tp}:{tz}"
        else:
            side.pop(k, None)
    keys = sorted(side)
    return keys, [side[k] for k in keys], nums


def _update_side(keys: list[float], texts: list[str], levels: list[TextLevel], factor: float,
                 negate: bool) -> list[Level2]:
    out = []
    for tp, tz, _, _ in levels:
        p = float(tp)
        s = float(tz)
        if not (0.0 < p < MAX_PRICE and 0.0 <= s < MAX_SIZE):
            raise ValueError(f"book level [{tp[:30]!r}, {tz[:30]!r}] out of range")
        k = -p if negate else p
        i = bisect_left(keys, k)
        if i < len(keys) and keys[i] == k:
            if s:
                texts[i] = f"{tp}:{tz}"
            else:
                del keys[i]
                del texts[i]
        elif s:
            keys.insert(i, k)
            texts.insert(i, f"{tp}:{tz}")
        out.append((p, s * factor))
    return out


class OkxRules:
    """OKX books: a change follows the last when its ``prevSeqId`` is the last ``seqId``.

    The snapshot comes first on the subscription (``ws`` source), so a change older than it
    (``seqId <= `` the snapshot's, not chained to it) is stale, and the first change bridges it
    when it chains to the snapshot. Without seqIds (-1 on both sides, 2022 recordings) every
    change follows. ``checksum``: see the module doc."""

    def __init__(self, texts: dict[str, TextBook]) -> None:
        self._texts = texts

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return 0 <= ev.last_id <= snapshot_id and ev.prev_id != snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.prev_id == snapshot_id

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.prev_id == last_id

    def checksum(self, symbol: str, book: OrderBook) -> int:
        """OKX's checksum of ``book`` (the top 25 levels a side), from the texts of its levels as
        the venue sent them; 0 when they are not kept for this book or do not describe it (other
        level counts or best prices), so that a change carrying a checksum then mismatches: a
        resync brings a snapshot, and the texts."""
        tb = self._texts.get(symbol)
        if tb is None:
            return 0
        bid_keys, ask_keys = tb.bid_keys, tb.ask_keys
        if book.bid_count != len(bid_keys) or book.ask_count != len(ask_keys):
            return 0
        top = book.top()
        if top is not None and (top[0] != -bid_keys[0] or top[2] != ask_keys[0]):
            return 0
        return tb.checksum()


def _index_of(inst_id: str) -> str:
    """The index an instrument is priced on, its ``uly``: the first two parts of the instId
    (BTC-USDT-SWAP -> BTC-USDT, BTC-USD-250926 -> BTC-USD); USD-margined ``BTC-USD_UM`` ones
    use the ``BTC-USD`` index."""
    base, quote = inst_id.split("-")[:2]
    return f"{base}-{quote.removesuffix('_UM')}"


class OkxFeed(OkxRest, FeedBase):
    """Streams, subscriptions and decoding of one OKX market (REST: ``OkxRest``)."""

    Options = Options
    # OKX public frames are text (no compression unless negotiated): no inflate hook
    inflate = None


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
        self.symbols = [s.upper() for s in symbols]
        self.book_channel = opts.book_channel
        self.snapshot_levels = BOOK_CHANNELS[opts.book_channel]
        self.derivatives = not market.is_spot
        self.swap = market.kind == "SWAP"
        # book texts for the checksum, per symbol, while the venue sends checksums
        self.texts: dict[str, TextBook] = {}
        self.rules = OkxRules(self.texts)
        self.instruments: dict[str, Instrument] = {}
        # size multiplier per symbol (linear: base units a contract); spot: 1
        self.size_factor: dict[str, float] = {}
        self.marks: dict[str, float] = {}  # last mark price per symbol (OI value of linear)
        for symbol in self.symbols:
            self._route(symbol)

    # -- streams and subscriptions --

    def _streams_for(self, symbol: str) -> list[tuple[str, str, str, Any, Callable[..., None]]]:
        """(OKX channel, instId, our channel, decoder, handler) of a symbol's streams."""
        out: list[tuple[str, str, str, Any, Callable[..., None]]] = []
        if "depth" in self.channels:
            out.append((self.book_channel, symbol, "depth", BOOK_DECODER, self._on_book))
        if "trades" in self.channels:
            out.append(("trades", symbol, "trades", TRADES_DECODER, self._on_trades))
        if "bookTicker" in self.channels:
            out.append(("bbo-tbt", symbol, "bookTicker", BBO_DECODER, self._on_bbo))
        if self.derivatives:
            if "markPrice" in self.channels:
                out.append(("mark-price", symbol, "markPrice", MARK_DECODER, self._on_mark))
                out.append(("index-tickers", _index_of(symbol), "markPrice", INDEX_DECODER,
                            self._on_index))
                if self.swap:
                    out.append(("funding-rate", symbol, "markPrice", FUNDING_DECODER,
                                self._on_funding))
            if "openInterest" in self.channels:
                out.append(("open-interest", symbol, "openInterest", OPEN_INTEREST_DECODER,
                            self._on_open_interest))
        return out

    def _route(self, symbol: str) -> list[str]:
        streams = []
        for channel, inst_id, ours, decoder, handler in self._streams_for(symbol):
            key = f'{channel}","instId":"{inst_id}'.encode()
            route = self.routes.get(key)
            if route is None:
                extra = [symbol] if channel == "index-tickers" else None
                route = Route(f"{channel}:{inst_id}", ours, symbol, decoder, handler, extra=extra)
                self.routes[key] = route
                streams.append(route.stream)
            elif channel == "index-tickers" and symbol not in route.extra:
                route.extra.append(symbol)  # another instrument on a followed index
        return streams

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol (a newly listed future); returns its new streams."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        return self._route(symbol)

    @property
    def streams(self) -> list[str]:
        return [r.stream for r in self.routes.values()]

    def ws_endpoint(self, ws_url: str) -> str:
        """The public endpoint under a base URL (the live one or the local exchange's)."""
        return ws_url.rstrip("/") + WS_PATH

    def _requests(self, op: str, streams: list[str]) -> list[bytes]:
        """``{"op": op, "args": [{"channel", "instId"}, ...]}`` requests, each under 64 KB."""
        out: list[bytes] = []
        args: list[dict[str, str]] = []
        size = 0
        for stream in streams:
            channel, inst_id = stream.split(":", 1)
            arg = {"channel": channel, "instId": inst_id}
            n = len(msgspec.json.encode(arg)) + 1
            if args and size + n > MAX_REQUEST_BYTES:
                out.append(msgspec.json.encode({"op": op, "args": args}))
                args, size = [], 0
            args.append(arg)
            size += n
        if args:
            out.append(msgspec.json.encode({"op": op, "args": args}))
        return out

    def subscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("subscribe", streams)

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("unsubscribe", streams)

    def book_stream(self, symbol: str) -> str:
        return f"{self.book_channel}:{symbol.upper()}"

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """The listing: linear contracts' sizes become base units (ctVal * ctMult each)."""
        self.instruments.update(instruments)
        for symbol, inst in instruments.items():
            linear = inst.market != "spot" and not inst.inverse
            self.size_factor[symbol] = inst.contract_value if linear else 1.0

    def _factor(self, route: Route) -> float:
        """What converts the route's sizes to the unit system (module doc)."""
        if not self.derivatives:
            return 1.0
        factor = self.size_factor.get(route.symbol)
        if factor is None:
            raise DecodeError(f"{route.stream}: no instrument listed (contract size unknown)",
                              route.channel)
        return factor

    # -- control frames --

    def control(self, frame: bytes) -> Control | None:
        """``pong`` (our heartbeat's answer), ``ack`` (subscribe / unsubscribe), ``restart``
        (notice 64008: the connection closes in about a minute for an upgrade), ``ignore``
        (``channel-conn-count`` and other notices). Errors are left to ``decode``, which raises
        them as VenueError; data frames (they start with ``{"arg"``) return None at once."""
        if frame.startswith(ARG_PREFIX):
            return None
        if frame == b"pong":
            return "pong"
        if b'"event"' not in frame[:64]:
            return None
        try:
            ev = EVENT_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError):
            return None  # decode will say what is wrong with it
        if ev.event in ("subscribe", "unsubscribe"):
            return "ack"
        if ev.event == "notice":
            return "restart" if str(ev.code) == "64008" else "ignore"
        if ev.event == "channel-conn-count":
            return "ignore"
        return None  # error, channel-conn-count-error: decode raises VenueError

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a control frame. Raises DecodeError on a bad frame, UnknownStream for one of a
        stream nobody subscribed to, VenueError for an ``{"event": "error"}``."""
        if frame.startswith(ARG_PREFIX):
            route = self.routes.get(frame[ARG_START : frame.find(b'"}', ARG_START)])
            if route is not None:
                return self._dispatch(route, frame, ts_local)
        return self._decode_slow(frame, ts_local)

    def _dispatch(self, route: Route, frame: bytes, ts_local: int) -> Route:
        try:
            msg = route.decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        route.handler(msg, route, ts_local, frame)
        route.last_ns = ts_local
        route.frames += 1
        return route

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        """Frames that do not start with OKX's compact ``arg``: events, errors, unsubscribed
        streams, or JSON laid out differently (whitespace, key order)."""
        if frame == b"pong":
            return None
        try:
            env = ENVELOPE_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not an OKX frame: {exc}") from None
        if env.event is not None:
            if env.event in ("error", "channel-conn-count-error"):
                raise VenueError(f"OKX {env.event} {env.code}: {env.msg}")
            return None  # subscribe / unsubscribe acks, notices, connection counts
        if env.arg is None or not env.data:
            raise DecodeError("OKX frame without arg or data")
        key = f'{env.arg.channel}","instId":"{env.arg.instId}'.encode()
        route = self.routes.get(key)
        if route is None:
            raise UnknownStream(f"unsubscribed stream {env.arg.channel[:40]}:"
                                f"{env.arg.instId[:40]}")
        return self._dispatch(route, frame, ts_local)

    def _on_book(self, msg: BookFrame, route: Route, ts_local: int, frame: bytes) -> None:
        """A book whose checksum is not checked: numbers parsed by msgspec. A snapshot with a
        checksum turns the stream to ``_on_text_book`` (and back: ``_check_sums``)."""
        if msg.action == "snapshot" and msg.data and msg.data[0].checksum:
            self._on_text_book(self._check_sums(route, frame, True), route, ts_local, frame)
            return
        symbol = route.symbol
        factor = self._factor(route)
        snapshot = msg.action == "snapshot"
        if snapshot:
            self.texts.pop(symbol, None)
        for d in msg.data:
            if factor == 1.0:
                bids = [(p, s) for p, s, _, _ in d.bids]
                asks = [(p, s) for p, s, _, _ in d.asks]
            else:
                bids = [(p, s * factor) for p, s, _, _ in d.bids]
                asks = [(p, s * factor) for p, s, _, _ in d.asks]
            self.sink.on_book(BookChange(
                self.venue, symbol, d.ts * MS, ts_local, snapshot, bids, asks, d.seqId,
                d.seqId, d.prevSeqId, d.checksum,
            ))

    def _on_text_book(self, msg: BookTextFrame, route: Route, ts_local: int, frame: bytes
                      ) -> None:
        """A book whose checksum is checked: its levels parsed as text, kept (``TextBook``)
        and made numbers in one pass."""
        snapshot = msg.action == "snapshot"
        if snapshot and not (msg.data and msg.data[0].checksum):
            self._on_book(self._check_sums(route, frame, False), route, ts_local, frame)
            return
        symbol = route.symbol
        factor = self._factor(route)
        if snapshot:
            tb: TextBook | None = TextBook()
            self.texts[symbol] = tb
        else:
            tb = self.texts.get(symbol)
        try:
            for d in msg.data:
                if tb is None:  # (texts dropped meanwhile: the book resyncs)
                    bids, asks = numbers(d.bids, factor), numbers(d.asks, factor)
                elif snapshot:
                    bids, asks = tb.replace(d.bids, d.asks, factor)
                    tb.last_id = d.seqId
                elif d.prevSeqId == tb.last_id or d.seqId > tb.last_id:
                    # (not chained and newer: a gap, the book resyncs)
                    bids, asks = tb.update(d.bids, d.asks, factor)
                    tb.last_id = d.seqId
                else:  # stale: the book keeper drops it, the texts too
                    bids, asks = numbers(d.bids, factor), numbers(d.asks, factor)
                self.sink.on_book(BookChange(
                    self.venue, symbol, d.ts * MS, ts_local, snapshot, bids, asks, d.seqId,
                    d.seqId, d.prevSeqId, d.checksum,
                ))
        except ValueError as exc:  # a level that is no number, or out of range
            # the frame is dropped, its texts maybe half applied: the next change does not
            # follow the book (a gap) or, without seqIds, fails its checksum; both resync
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None

    def _check_sums(self, route: Route, frame: bytes, on: bool) -> Any:
        """Switch the stream's decoder at a snapshot that starts (``on``) or stops carrying
        checksums, and parse that snapshot again with the new one."""
        route.decoder = BOOK_TEXT_DECODER if on else BOOK_DECODER
        route.handler = self._on_text_book if on else self._on_book
        if not on:
            self.texts.pop(route.symbol, None)
        try:
            return route.decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None

    def _on_bbo(self, msg: BboFrame, route: Route, ts_local: int, frame: bytes) -> None:
        factor = self._factor(route)
        for d in msg.data:
            if d.bids and d.asks:  # an empty side (an illiquid option): no quote
                b, a = d.bids[0], d.asks[0]
                self.sink.on_quote(Quote(self.venue, route.symbol, d.ts * MS, ts_local, b[0],
                                         b[1] * factor, a[0], a[1] * factor, -1))

    def _on_trades(self, msg: TradesFrame, route: Route, ts_local: int, frame: bytes) -> None:
        factor = self._factor(route)
        for t in msg.data:
            self.sink.on_trade(Trade(self.venue, route.symbol, t.ts * MS, ts_local, t.tradeId,
                                     t.px, t.sz * factor, t.side,
                                     "aggTrade" if t.count > 1 else "trade"))

    def _on_mark(self, msg: MarkFrame, route: Route, ts_local: int, frame: bytes) -> None:
        for d in msg.data:
            self.marks[route.symbol] = d.markPx
            self.sink.on_ticker(DerivativeTicker(self.venue, route.symbol, d.ts * MS, ts_local,
                                                 mark_price=d.markPx))

    def _on_index(self, msg: IndexFrame, route: Route, ts_local: int, frame: bytes) -> None:
        # one index (BTC-USDT) prices every followed instrument on it: a ticker for each
        for d in msg.data:
            for symbol in route.extra:
                self.sink.on_ticker(DerivativeTicker(self.venue, symbol, d.ts * MS, ts_local,
                                                     index_price=d.idxPx))

    def _on_funding(self, msg: FundingFrame, route: Route, ts_local: int, frame: bytes) -> None:
        symbol = route.symbol
        for d in msg.data:
            # fundingTime is the coming settlement, nextFundingTime the one after: their
            # difference is the interval (8 h, lowered to 6/4/2/1 h on volatile swaps)
            hours = self.funding_hours.get(symbol)
            if d.fundingTime is not None and d.nextFundingTime is not None:
                step = d.nextFundingTime - d.fundingTime
                if not 0 < step <= 24 * HOUR_MS:
                    raise DecodeError(f"{route.stream}: funding interval of {step} ms",
                                      route.channel)
                hours = self.funding_hours[symbol] = step / HOUR_MS
            rate = d.fundingRate if isinstance(d.fundingRate, float) else None
            next_ns = d.fundingTime * MS if d.fundingTime is not None else None
            self.sink.on_ticker(DerivativeTicker(
                self.venue, symbol, (d.ts or 0) * MS, ts_local, funding_rate=rate,
                next_funding_time=next_ns, funding_interval_hours=hours,
            ))

    def _on_open_interest(self, msg: OpenInterestFrame, route: Route, ts_local: int,
                          frame: bytes) -> None:
        symbol = route.symbol
        factor = self._factor(route)
        inst = self.instruments.get(symbol)
        for d in msg.data:
            if inst is not None and inst.inverse:  # contracts of contract_size USD
                oi, value = d.oi, d.oi * inst.contract_size
            else:  # linear: base units, valued at the mark (USDT, USDC ~ USD)
                oi = d.oi * factor
                mark = self.marks.get(symbol)
                value = oi * mark if mark is not None else d.oiUsd
            self.sink.on_open_interest(OpenInterest(self.venue, symbol, d.ts * MS, ts_local,
                                                    oi, value))


__all__ = ["OkxFeed", "OkxRules", "Options", "TextBook", "book_checksum", "signed_crc32"]
