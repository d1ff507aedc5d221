"""MEXC contract (futures) public market data: streams, decoding, the book sequencing rule
(shared with spot, whose feed is ``spot.py``).

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/#websocket-api
      https://mexcdevelop.github.io/apidocs/contract_v1_en/#market-endpoints
      ("How is depth information maintained", at the end of the WebSocket API section)

Streams, one subscription each (``{"method":"sub.<name>","param":{"symbol":"BTC_USDT"}}``,
acked ``{"channel":"rs.sub.<name>","data":"success"}``, refused ``{"channel":"rs.error",
"data":"<why>"}``, a ``VenueError``), named ``<name>:<symbol>`` here:

    depth         depth:<SYM>         push.depth: BookChange (``compress`` false: see Books)
    trades        deal:<SYM>          push.deal: Trade (no ids: ``rest.deal_ids``)
    bookTicker    depth.full:<SYM>    push.depth.full (top 5, whole): Quote, update id -1
    markPrice     ticker:<SYM>        push.ticker (once a second): mark (``fairPrice``), index,
                  funding.rate:<SYM>  funding rate; push.funding.rate: rate, next settlement
    openInterest  ticker:<SYM>        ``holdVol`` (contracts, one side), when it changes

A frame is ``{"channel":"push.<name>","data":...,"symbol":"<SYM>","ts":<ms>}``: a frame that
starts with its channel is routed by a byte slice of it and of its last ``"symbol":"`` (the
envelope's, after ``data``; a ticker's data holds the same symbol), then parsed once by the
stream's typed decoder (``schemas.py``), and its symbol checked against the route's; any other
layout (``symbol`` first, as 2025 frames are) is parsed twice (envelope, then data). Liquidations:
MEXC publishes none. Times: ``ts`` and deal ``t`` are ms; kline ``t`` is seconds (not used).

Units. Sizes are contracts: multiplied here by the contract's ``contractSize`` (the listing given
to ``set_instruments``: ``Instrument.contract_value``) into base units; open interest is valued
in USD at the mark (USDT, USDC taken as USD).

Funding. ``push.ticker`` carries the rate but neither its time nor the interval. The interval
is ``collectCycle`` (hours) of ``GET contract/funding_rate`` (``funding_info_path``, re-read
hourly by the runner; ccxt/ccxt#11674: not always 8 h), which also gives each contract's
``nextSettleTime``: kept, moved on by the interval once passed, and replaced by any later one
(``push.funding.rate``'s ``nextSettleTime`` when sent, the per-symbol ``premium`` poll).

Books (``MexcRules``, the one place of the rule). The snapshot is REST ``contract/depth`` with
its ``version`` (source ``rest``: pushes buffered until it comes). The docs: "The version of
each new event should be exactly equal to version+1 of the previous event, otherwise packet
loss may occur ... re-initialize". Incremental pushes are merged by default ("merging enabled
by default ... set compress to false"): a merged push may step the version by more than one,
which the docs do not say; so we subscribe with ``compress: false`` and take any step but +1
as a gap. The first push applied on a snapshot must be its ``version + 1``; older ones are
dropped; a newer one means the snapshot is older than the stream: another one is asked for.
JKorf/Mexc.Net (``MexcFuturesSymbolOrderBook``, ``_sequencesAreConsecutive`` in
CryptoExchange.Net's ``SymbolOrderBook.ProcessUpdate``) does the same: skip ``<= last``,
out of sync on ``> last + 1``. (Some later CryptoExchange.Net versions skip the check on the
first update after a snapshot, venue-pitfalls: we do not, it could bridge a stale snapshot.)
Each change is one version: ``first_id == last_id == version``, ``prev_id == version - 1``.
The doubtful cases are counted in ``rules.cases``: ``version_skip`` (a step above 1: a gap),
``version_repeat`` (a version at or below the last: dropped as stale), ``bridge_skip`` (the
first push after a snapshot skips past it). A gap is mended from ``depth_commits``
(``gap_fill_path``: the latest 1000 versions, each a change) before a full snapshot is taken,
as the docs' recipe does. Spot's pushes each cover a range of versions
(``fromVersion..toVersion``): the same class applies the same rule to ranges
(``MexcRules(spot=True)``; the spot docs' wording and the cases it adds: ``spot.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest, Quote, Trade
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
from analyzer.venues.mexc import rest
from analyzer.venues.mexc.schemas import (
    DEAL_DECODER,
    DEPTH_DECODER,
    ENVELOPE_DECODER,
    FUNDING_DECODER,
    TICKER_DECODER,
    DealFrame,
    DepthFrame,
    FundingFrame,
    TickerFrame,
)
from analyzer.venues.mexc.spec import WS_PATH

# The book rule: a push follows the last when its version is the last + STEP (docs).
STEP = 1
PREFIX = b'{"channel":"'
START = len(PREFIX)
SYMBOL_KEY = b'"symbol":"'
HOUR_MS = 3_600_000
BBO_LEVELS = 5  # push.depth.full: 5, 10 or 20 levels; the quote needs the first
ORDER = {"trades": 0, "depth": 1}  # subscription order by channel (``streams``)


def scale(contract_size: float) -> tuple[float, float]:
    """(m, d) such that ``contracts * m / d`` is a size in base units: (1, k) when a contract is
    ``1/k`` of the base (0.0001 BTC: k = 10000), else (contract size, 1). A division by k is
    one correctly rounded operation, so the size is the float nearest the exact one (``3 /
    10000`` is 0.0003, ``3 * 0.0001`` is 0.00030000000000000003), as a venue quoting in base
    units would give it."""
    if 0 < contract_size < 1:
        k = round(1 / contract_size)
        if abs(k * contract_size - 1) < 1e-12:
            return 1.0, float(k)
    return contract_size, 1.0


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """A MEXC feed's own config keys (``[feeds.options]``)."""

    # levels a side of a REST snapshot (``contract/depth/<sym>?limit=``); JKorf/Mexc.Net asks
    # for 1000. At most 1000: a venue that answered fewer levels than asked would make the
    # book keeper take a full side for the whole book (no source says MEXC serves more)
    depth_limit: Annotated[int, msgspec.Meta(ge=5, le=1000)] = 1000


class MexcRules:
    """MEXC books, both markets: a push covers versions ``first_id..last_id`` (futures: one,
    ``version``; spot: ``fromVersion..toVersion``) and follows the last when its first is the
    last's last + 1; the first applied on a snapshot holds the snapshot's version + 1 (module
    doc; spot: ``spot.py``). ``cases`` counts the steps the docs leave doubtful; spot
    (``spot=True``) counts two more: ``bridge_next`` (a push starting right after the snapshot,
    which the spot docs' step 6 read literally would resync) and ``version_overlap`` (a push
    reaching back over the last one: a gap)."""

    checksum = None

    def __init__(self, spot: bool = False) -> None:
        self.spot = spot
        self.cases: dict[str, int] = {"version_skip": 0, "version_repeat": 0, "bridge_skip": 0}
        if spot:
            self.cases |= {"bridge_next": 0, "version_overlap": 0}

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        nxt = snapshot_id + STEP
        if ev.first_id <= nxt <= ev.last_id:
            if self.spot and ev.first_id == nxt:
                self.cases["bridge_next"] += 1
            return True
        if ev.first_id > nxt:
            self.cases["bridge_skip"] += 1
        return False

    def follows(self, last_id: int, ev: BookChange) -> bool:
        step = ev.first_id - last_id
        if step == STEP:
            return True
        if step > STEP:
            key = "version_skip"
        elif ev.last_id > last_id:  # a range reaching back over the last (spot only)
            key = "version_overlap"
        else:
            key = "version_repeat"
        self.cases[key] = self.cases.get(key, 0) + 1
        return False


class _Ticker:
    """The merged derivative state of one symbol, from push.ticker, push.funding.rate and REST
    funding: what each ticker emitted carries."""

    __slots__ = ("funding", "index", "mark", "next_ms", "oi_sent")

    def __init__(self) -> None:
        self.mark: float | None = None
        self.index: float | None = None
        self.funding: float | None = None
        self.next_ms = 0  # next settlement, ms (0: unknown)
        self.oi_sent: float | None = None


class MexcFeed(FeedBase):
    """Streams, subscriptions, decoding and REST bodies of MEXC's contract market; the
    registry's one feed class of MEXC: a spot market gets ``spot.MexcSpotFeed`` instead (its
    own protocol, protobuf frames and REST)."""

    Options = Options
    inflate = None  # text frames

    def __new__(cls, market: Any, *args: Any, **kwargs: Any) -> Any:
        if cls is MexcFeed and getattr(market, "is_spot", False):
            from analyzer.venues.mexc.spot import MexcSpotFeed

            return MexcSpotFeed(market, *args, **kwargs)  # (not a MexcFeed: built whole here)
        return super().__new__(cls)

    @classmethod
    def check_options(cls, market: Market, options: Any) -> Any:
        if cls is MexcFeed and market.is_spot:
            from analyzer.venues.mexc.spot import MexcSpotFeed

            return MexcSpotFeed.check_options(market, options)
        return super().check_options(market, options)

    def __init__(
        self,
        market: Market,
        symbols: Iterable[str],
        channels: Iterable[str],
        sink: Sink,
        *,
        options: dict[str, Any] | Options | None = None,
        funding_hours: dict[str, float] | None = None,
    ) -> None:
        opts = self.check_options(market, options or {})
        super().__init__(market, channels, sink, funding_hours)
        unknown = self.channels - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")
        self.snapshot_levels = opts.depth_limit
        self.rules = MexcRules()
        self.rest_weights = dict(rest.REST_WEIGHTS)
        self.instruments: dict[str, Instrument] = {}
        # (m, d) a symbol: contracts * m / d are base units (``scale``)
        self.size_factor: dict[str, tuple[float, float]] = {}
        self.state: dict[str, _Ticker] = {}
        self.symbols: list[str] = []
        for symbol in symbols:
            self.add_symbol(symbol)

    # -- streams --

    def _streams_for(self, s: str) -> list[tuple[str, bytes, str, Any, Callable[..., None]]]:
        """(stream name, push channel, our channel, decoder, handler) of a symbol."""
        ch = self.channels
        out: list[tuple[str, bytes, str, Any, Callable[..., None]]] = []
        if "depth" in ch:
            out.append(("depth", b"push.depth", "depth", DEPTH_DECODER, self._on_depth))
        if "trades" in ch:
            out.append(("deal", b"push.deal", "trades", DEAL_DECODER, self._on_deal))
        if "bookTicker" in ch:
            out.append(("depth.full", b"push.depth.full", "bookTicker", DEPTH_DECODER,
                        self._on_bbo))
        if "markPrice" in ch or "openInterest" in ch:
            channel = "markPrice" if "markPrice" in ch else "openInterest"
            out.append(("ticker", b"push.ticker", channel, TICKER_DECODER, self._on_ticker))
        if "markPrice" in ch:
            out.append(("funding.rate", b"push.funding.rate", "markPrice", FUNDING_DECODER,
                        self._on_funding))
        return out

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol (a new listing); returns its new streams."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        self.state[symbol] = _Ticker()
        streams = []
        for name, push, channel, decoder, handler in self._streams_for(symbol):
            stream = f"{name}:{symbol}"
            self.routes[push + b"|" + symbol.encode()] = Route(stream, channel, symbol, decoder,
                                                              handler)
            streams.append(stream)
        return streams

    @property
    def streams(self) -> list[str]:
        """Deals first, then books, then the rest: MEXC takes one subscription a message, sent
        paced, so the streams that lose data while unsubscribed go first (a deal missed at
        start-up is not backfilled; a book's pushes are buffered for its snapshot)."""
        return [r.stream for r in sorted(self.routes.values(),
                                         key=lambda r: ORDER.get(r.channel, len(ORDER)))]

    def book_stream(self, symbol: str) -> str:
        return f"depth:{symbol.upper()}"

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + WS_PATH

    def _requests(self, op: str, streams: list[str]) -> list[bytes]:
        out = []
        for stream in streams:
            name, _, symbol = stream.partition(":")
            param: dict[str, Any] = {"symbol": symbol}
            if op == "sub" and name == "depth":
                param["compress"] = False  # every version, unmerged (module doc)
            elif op == "sub" and name == "depth.full":
                param["limit"] = BBO_LEVELS
            out.append(msgspec.json.encode({"method": f"{op}.{name}", "param": param}))
        return out

    def subscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("sub", streams)

    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]:
        return self._requests("unsub", streams)

    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """The listing: each contract's size converts its sizes to base units."""
        self.instruments.update(instruments)
        for symbol, inst in instruments.items():
            self.size_factor[symbol] = scale(inst.contract_value)

    def _factor(self, route: Route) -> tuple[float, float]:
        factor = self.size_factor.get(route.symbol)
        if factor is None:
            raise DecodeError(f"{route.stream}: no instrument listed (contract size unknown)",
                              route.channel)
        return factor

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        return None  # public market data needs no key

    # -- control frames --

    def control(self, frame: bytes) -> Control | None:
        """``pong`` (``{"channel":"pong","data":<ms>}``), ``ack`` (``rs.sub.*``, ``rs.unsub.*``),
        ``ignore`` (other ``rs.*`` answers); errors (``rs.error``) are left to ``decode``, which
        raises VenueError; pushes (``{"channel":"push.``) return None at once."""
        if frame.startswith(b'{"channel":"push.'):
            return None
        if frame.startswith(b'{"channel":"pong"'):
            return "pong"
        if b'"rs.' not in frame and b'"pong"' not in frame:
            return None
        try:
            env = ENVELOPE_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError):
            return None  # decode will say what is wrong with it
        if env.channel == "pong":
            return "pong"
        if env.channel.startswith(("rs.sub.", "rs.unsub.")):
            return "ack"
        if env.channel.startswith("rs.") and env.channel != "rs.error":
            return "ignore"
        return None

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a control frame. Raises DecodeError on a bad frame, UnknownStream for a stream
        nobody subscribed to, VenueError for an ``rs.error`` answer."""
        if frame.startswith(PREFIX):
            end = frame.find(b'"', START)
            i = frame.rfind(SYMBOL_KEY)
            if end > 0 and i > 0:
                j = i + len(SYMBOL_KEY)
                route = self.routes.get(frame[START:end] + b"|" + frame[j:frame.find(b'"', j)])
                if route is not None:
                    try:
                        msg = route.decoder.decode(frame)
                    except (msgspec.DecodeError, ValueError) as exc:
                        raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
                    if not msg.symbol or msg.symbol == route.symbol:
                        return self._handle(route, msg, ts_local)
        return self._decode_slow(frame, ts_local)

    def _handle(self, route: Route, msg: Any, ts_local: int) -> Route:
        route.handler(msg, route, ts_local)
        route.last_ns = ts_local
        route.frames += 1
        return route

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        """Frames laid out otherwise (``symbol`` first), control frames and errors."""
        try:
            env = ENVELOPE_DECODER.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a MEXC frame: {exc}") from None
        channel = env.channel
        if not channel.startswith("push."):
            if channel == "rs.error":
                raise VenueError(f"MEXC refused a request: {bytes(env.data)[:200]!r}")
            if channel == "pong" or channel.startswith("rs."):
                return None
            raise DecodeError(f"not a MEXC frame: channel {channel[:40]!r}")
        route = self.routes.get(f"{channel}|{env.symbol}".encode())
        if route is None:
            raise UnknownStream(f"unsubscribed stream {channel[:40]} {env.symbol[:40]}")
        try:
            msg = route.decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        return self._handle(route, msg, ts_local)

    def _on_depth(self, f: DepthFrame, route: Route, ts_local: int) -> None:
        m, k = self._factor(route)
        d = f.data
        v = d.version
        self.sink.on_book(BookChange(
            self.venue, route.symbol, f.ts * MS, ts_local, False,
            [(lv.p, lv.v * m / k) for lv in d.bids], [(lv.p, lv.v * m / k) for lv in d.asks],
            v, v, v - 1,
        ))

    def _on_bbo(self, f: DepthFrame, route: Route, ts_local: int) -> None:
        d = f.data
        if d.bids and d.asks:
            m, k = self._factor(route)
            b, a = d.bids[0], d.asks[0]
            self.sink.on_quote(Quote(self.venue, route.symbol, f.ts * MS, ts_local, b.p,
                                     b.v * m / k, a.p, a.v * m / k, -1))

    def _on_deal(self, f: DealFrame, route: Route, ts_local: int) -> None:
        m, k = self._factor(route)
        data = f.data
        if not isinstance(data, list):  # one deal (the 2022 layout): no repeat to number
            self.sink.on_trade(Trade(self.venue, route.symbol, data.t * MS, ts_local,
                                     f"{data.t}-{data.T}-{data.p!r}-{data.v!r}", data.p,
                                     data.v * m / k, "buy" if data.T == 1 else "sell"))
            return
        venue, symbol, on_trade = self.venue, route.symbol, self.sink.on_trade
        for d, tid in zip(data, rest.deal_ids(data), strict=True):
            on_trade(Trade(venue, symbol, d.t * MS, ts_local, tid, d.p, d.v * m / k,
                           "buy" if d.T == 1 else "sell"))

    def _next_settle(self, st: _Ticker, symbol: str, now_ms: int) -> int | None:
        """The coming settlement (ns): the last one known, moved on by the interval once past."""
        if not st.next_ms:
            return None
        hours = self.funding_hours.get(symbol)
        if st.next_ms <= now_ms and hours:
            step = int(hours * HOUR_MS)
            st.next_ms += ((now_ms - st.next_ms) // step + 1) * step
        return st.next_ms * MS

    def _emit(self, st: _Ticker, symbol: str, ts_ms: int, ts_local: int) -> None:
        self.sink.on_ticker(DerivativeTicker(
            self.venue, symbol, ts_ms * MS, ts_local, st.mark, st.index, st.funding,
            self._next_settle(st, symbol, ts_ms), self.funding_hours.get(symbol),
        ))

    def _on_ticker(self, f: TickerFrame, route: Route, ts_local: int) -> None:
        d = f.data
        symbol = route.symbol
        st = self.state[symbol]
        st.mark, st.index = d.fairPrice, d.indexPrice
        if d.fundingRate is not None:
            st.funding = d.fundingRate
        if "markPrice" in self.channels:
            self._emit(st, symbol, d.timestamp, ts_local)
        if "openInterest" in self.channels and d.holdVol is not None:
            m, k = self._factor(route)
            oi = d.holdVol * m / k
            if oi != st.oi_sent:
                st.oi_sent = oi
                self.sink.on_open_interest(OpenInterest(
                    self.venue, symbol, d.timestamp * MS, ts_local, oi, oi * d.fairPrice))

    def _on_funding(self, f: FundingFrame, route: Route, ts_local: int) -> None:
        d = f.data
        st = self.state[route.symbol]
        rate = d.rate if d.rate is not None else d.fundingRate
        if rate is not None:
            st.funding = rate
        if d.nextSettleTime:
            st.next_ms = d.nextSettleTime
        self._emit(st, route.symbol, f.ts or ts_local // MS, ts_local)

    # -- REST --

    def instrument_paths(self) -> list[str]:
        return [rest.INSTRUMENTS_PATH]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        return rest.decode_instruments(bodies, self.venue, ts_local)

    def _size_of(self, symbol: str, channel: str) -> tuple[float, float]:
        factor = self.size_factor.get(symbol)
        if factor is None:
            raise DecodeError(f"{symbol}: no instrument listed (contract size unknown)", channel)
        return factor

    def depth_path(self, symbol: str) -> str | None:
        return f"{rest.PREFIX}/depth/{symbol}?limit={self.snapshot_levels}"

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        return rest.decode_snapshot(body, self.venue, symbol, ts_local,
                                    self._size_of(symbol, "depth"))

    def gap_fill_path(self, symbol: str, last_id: int) -> str | None:
        return f"{rest.PREFIX}/depth_commits/{symbol}/{rest.COMMITS_LIMIT}"

    def decode_gap_fill(self, body: bytes, symbol: str, ts_local: int) -> list[BookChange]:
        return rest.decode_commits(body, self.venue, symbol, ts_local,
                                   self._size_of(symbol, "depth"))

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # deals have no ids: no backfill by id

    def recent_trades_path(self, symbol: str) -> str | None:
        return f"{rest.PREFIX}/deals/{symbol}?limit={rest.DEALS_LIMIT}"

    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        return None  # the latest 100 deals only

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        return rest.decode_trades(body, self.venue, symbol, ts_local,
                                  self._size_of(symbol, "trades"))

    def open_interest_path(self, symbol: str) -> str | None:
        return None  # holdVol on the ticker stream

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        raise NotImplementedError("MEXC open interest comes on the ticker stream")

    def funding_info_path(self) -> str | None:
        return rest.FUNDING_PATH

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        """{symbol: hours} (``collectCycle``); each followed contract's ``nextSettleTime`` is
        kept for its tickers."""
        hours: dict[str, float] = {}
        for f in rest.decode_funding_list(body):
            hours[f.symbol] = float(f.collectCycle)
            st = self.state.get(f.symbol)
            if st is not None and f.nextSettleTime > st.next_ms:
                st.next_ms = f.nextSettleTime
        return hours

    def premium_path(self, symbol: str) -> str | None:
        return f"{rest.FUNDING_PATH}/{symbol}"

    def decode_premium(self, body: bytes, symbol: str, ts_local: int) -> list[DerivativeTicker]:
        """A contract's funding (rate, next settlement, interval) with the last mark and index
        the stream gave (None before any)."""
        f = rest.decode_funding(body, symbol)
        self.funding_hours[symbol] = float(f.collectCycle)
        st = self.state.get(symbol)
        if st is None:
            return [rest.funding_ticker(f, self.venue, ts_local, None, None)]
        st.funding = f.fundingRate
        st.next_ms = f.nextSettleTime
        return [rest.funding_ticker(f, self.venue, ts_local, st.mark, st.index)]


__all__ = ["STEP", "MexcFeed", "MexcRules", "Options"]
