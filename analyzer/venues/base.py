"""The venue interface: what a venue package provides, and what it calls with what it decodes.

A venue is one package under ``analyzer/venues/<exchange>/`` (see ``analyzer/venues/README.md``)
holding everything that knows the venue: its markets (endpoints, limits, heartbeat, fees), raw
msgspec Structs of its frames, the decode to the normalized events of ``analyzer.events``, its
order-book sequencing rule and checksum, its REST paths and weights, and the local exchange's
side of its protocol. The collector, transport, books, store, analytics, simulation and the
exchange's server reach a venue only through the names in this module.

The collector side of a venue is a ``VenueFeed`` class, instantiated once per configured feed
(one market of one exchange: ``bybit_linear``), registered in ``analyzer.venues.VENUES`` with its
``Market``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import msgspec

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.feed.book import OrderBook

# Channel names used in configs and metric labels (a fixed, bounded set).
CHANNELS = ("depth", "trades", "bookTicker", "markPrice", "openInterest", "liquidations")

# What a control frame is (``VenueFeed.control``); anything else is data.
Control = Literal["pong", "ack", "restart", "ignore", "ping"]


class DecodeError(Exception):
    """A frame could not be decoded; the stream goes on. ``channel`` labels the counter."""

    def __init__(self, message: str, channel: str = "other") -> None:
        super().__init__(message)
        self.channel = channel


class UnknownStream(DecodeError):
    """A frame for a stream or symbol that nobody subscribed to; ignored and counted."""


class OptionError(ValueError):
    """A venue option's value does not suit the market (the message names what would)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class VenueError(DecodeError):
    """The venue answered a request with an error (a refused subscription, a bad symbol)."""


@dataclass(frozen=True, slots=True)
class Fees:
    """A venue's documented default fees (lowest tier, no discounts), as fractions of notional.
    ``settlement`` is charged on a dated contract held to expiry."""

    taker: float
    maker: float
    settlement: float = 0.0


@dataclass(frozen=True, slots=True)
class Market:
    """Endpoints and limits of one market of one exchange: a feed id of the configuration.

    ``max_streams`` is per connection (a subscribe beyond it is refused or closes the
    connection); ``max_messages_per_second`` paces what we send. ``heartbeat`` is the venue's
    application-level ping (a text frame we send every ``heartbeat_seconds`` when the venue asks
    for one; the reply is a ``pong`` control frame); None: websocket pings only.
    ``snapshot_source`` says where a book's snapshot comes from: ``rest`` (a request per book,
    then diffs buffered and bridged) or ``ws`` (the subscription sends it; a resync resubscribes
    that book's stream alone). ``max_connection_age_seconds``: the venue closes older
    connections; we rotate before."""

    venue: str  # feed id, e.g. binance_usdm; also the local exchange's path prefix
    exchange: str  # binance | bybit | okx ...
    kind: str  # the venue's own name of the market: spot, usdm, linear, swap ...
    ws_url: str
    rest_url: str
    is_spot: bool
    fees: Fees
    weight_per_minute: int  # REST budget we allow ourselves (below the venue's limit)
    max_streams: int = 1024
    max_messages_per_second: float = 10.0
    max_connection_age_seconds: float = 23.5 * 3600
    heartbeat: bytes | None = None
    heartbeat_seconds: float = 20.0
    snapshot_source: Literal["rest", "ws"] = "rest"
    # REST: answers that mean a ban (403 always), and the header reporting the weight used
    ban_statuses: tuple[int, ...] = (403,)
    used_weight_header: str | None = None


@dataclass(slots=True)
class Route:
    """Where frames of one stream go. ``last_ns`` and ``frames`` feed the per-stream watchdog
    (``analyzer.feed.freshness``), which watches the ``depth``, ``bookTicker`` and ``markPrice``
    channels."""

    stream: str
    channel: str
    symbol: str
    decoder: Any  # the venue's typed decoder(s) for this stream
    handler: Callable[..., None]
    last_ns: int = 0
    frames: int = 0
    extra: Any = None  # the venue's own per-stream state


class FeedBase:
    """The state every venue's feed keeps (``VenueFeed``); a venue's class adds its own and
    routes its symbols."""

    Options: ClassVar[type]

    @classmethod
    def check_options(cls, market: Market, options: Any) -> Any:
        """The venue's ``Options`` from a config's dict (msgspec.ValidationError on a bad key
        or value); a venue with rules across options overrides this."""
        return options if isinstance(options, cls.Options) else msgspec.convert(options,
                                                                                cls.Options)

    def __init__(self, market: Market, channels: Iterable[str], sink: Sink,
                 funding_hours: dict[str, float] | None) -> None:
        self.market = market
        self.venue = market.venue
        self.channels = set(channels)
        self.sink = sink
        self.funding_hours = funding_hours if funding_hours is not None else {}
        self.routes: dict[bytes, Route] = {}
        # the last id per symbol where trade ids rise by one (REST backfill after a gap)
        self.last_trade_id: dict[str, int] = {}

    def ws_routes(self, ws_url: str, streams: list[str]) -> dict[str, list[str]]:
        """The websocket URL of each stream: one for most venues (``ws_endpoint``)."""
        return {self.ws_endpoint(ws_url): streams}

    def ws_endpoint(self, ws_url: str) -> str:
        raise NotImplementedError

    # optional REST requests (``VenueFeed``): most venues have no such request

    def premium_path(self, symbol: str) -> str | None:
        return None

    def decode_premium(self, body: bytes, symbol: str, ts_local: int) -> list[DerivativeTicker]:
        raise NotImplementedError

    def gap_fill_path(self, symbol: str, last_id: int) -> str | None:
        return None

    def reply(self, frame: bytes) -> bytes:
        raise NotImplementedError(f"{self.venue} sends no pings of its own")

    def decode_gap_fill(self, body: bytes, symbol: str, ts_local: int) -> list[BookChange]:
        raise NotImplementedError


class Sink(Protocol):
    """Receives decoded events. Implemented by the collector's per-feed runner."""

    def on_trade(self, ev: Trade) -> None: ...
    def on_book(self, ev: BookChange) -> None: ...
    def on_quote(self, ev: Quote) -> None: ...
    def on_ticker(self, ev: DerivativeTicker) -> None: ...
    def on_open_interest(self, ev: OpenInterest) -> None: ...
    def on_liquidation(self, ev: Liquidation) -> None: ...
    def on_trade_gap(self, symbol: str, first_missing: int, last_missing: int) -> None:
        """Trade ids ``first_missing..last_missing`` were skipped (e.g. across a reconnect)."""
        ...
    def on_duplicate(self) -> None:
        """A frame already seen (overlapping connections, a replay) was dropped."""
        ...


class SequenceRules(Protocol):
    """A venue's order-book continuity rules, applied by ``analyzer.feed.books``.

    ``checksum``: None if the venue sends none; else a function of the symbol and the book after
    a change is applied, compared with the change's ``checksum`` whenever that is non-zero.
    ``cases`` (optional): counts of the cases a rule lets through that the venue's docs leave
    open (an id that skips forward, say), by name; exported as
    ``analyzer_book_rule_cases_total`` so that live traffic shows how often each happens."""

    checksum: Callable[[str, OrderBook], int] | None

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        """True if a buffered change is older than the snapshot and must be dropped."""
        ...

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        """True if ``ev`` is the first change to apply on top of a snapshot."""
        ...

    def follows(self, last_id: int, ev: BookChange) -> bool:
        """True if ``ev`` directly follows a change whose last id was ``last_id``."""
        ...


class VenueFeed(Protocol):
    """The collector side of one market of a venue.

    Constructed as ``cls(market, symbols, channels, sink, options=..., funding_hours=...)``;
    ``options`` are the venue's own config keys: a dict or an instance of the class's
    ``Options`` (a msgspec Struct with ``forbid_unknown_fields``), checked at config load by
    ``check_options`` (a classmethod returning the ``Options``; raises msgspec.ValidationError
    or OptionError). ``funding_hours`` is the runner's {symbol: hours} from the venue's
    funding info. ``control`` and ``inflate`` may be None: no control frames worth telling
    from data (the connection's fast path), text frames.
    """

    Options: ClassVar[type]
    market: Market
    rules: SequenceRules
    snapshot_levels: int  # levels a side a snapshot holds at most (REST limit or WS depth)
    routes: dict[Any, Route]
    # venues whose trade ids rise by exactly 1 per symbol: the last id seen, for REST backfill
    # after a reconnect (empty for venues without such ids)
    last_trade_id: dict[str, int]
    rest_weights: dict[str, int]  # weight of each REST request kind (see the *_path methods)

    @property
    def streams(self) -> list[str]: ...
    def add_symbol(self, symbol: str) -> list[str]: ...
    def set_instruments(self, instruments: dict[str, Instrument]) -> None:
        """The listing, before any frame: contract sizes convert sizes to the unit system."""
        ...
    def ws_endpoint(self, ws_url: str) -> str: ...
    def ws_routes(self, ws_url: str, streams: list[str]) -> dict[str, list[str]]:
        """The URL each stream is subscribed on (``FeedBase``: ``ws_endpoint`` for all; a venue
        serving its streams on several paths groups them)."""
        ...
    def subscribe_messages(self, streams: list[str]) -> list[bytes]: ...
    def unsubscribe_messages(self, streams: list[str]) -> list[bytes]: ...
    def book_stream(self, symbol: str) -> str:
        """The stream whose (re)subscription sends ``symbol``'s book snapshot (``ws`` source)."""
        ...
    def control(self, frame: bytes) -> Control | None:
        """A cheap look at a frame: ``pong``, ``ack``, ``restart`` (the venue will close this
        connection soon: rotate), ``ignore``, ``ping`` (the venue's own ping: the connection
        sends ``reply(frame)``); None for data. Called before ``decode`` by the connection
        (after ``inflate``), for venues with a heartbeat or notices; data is every other
        frame."""
        ...
    def reply(self, frame: bytes) -> bytes:
        """The answer to a frame ``control`` called a ``ping`` (venues that ping their clients
        with messages of their own: a text ``Pong``, a JSON pong)."""
        ...
    def inflate(self, frame: bytes) -> bytes:
        """The frame as text (venues that compress their frames); identity otherwise."""
        ...
    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink; raises DecodeError."""
        ...
    def rest_headers(self, api_key: str | None) -> dict[str, str] | None: ...

    # REST. A path method returning None: the venue has no such request (OI on the stream,
    # snapshots on the socket, no backfill by id).
    def instrument_paths(self) -> list[str]: ...
    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]: ...
    def depth_path(self, symbol: str) -> str | None: ...
    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange: ...
    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None: ...
    def recent_trades_path(self, symbol: str) -> str | None:
        """The venue's latest trades of a symbol (venues without consecutive trade ids: the
        reconnect backfill; ``decode_trades`` reads the body)."""
        ...
    def older_trades_path(self, symbol: str, before_id: str) -> str | None:
        """The page of trades up to ``before_id``, that trade included and whole (venues that
        page their history; None otherwise): the backfill pages back until it reaches the last
        trade it saw."""
        ...
    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]: ...
    def open_interest_path(self, symbol: str) -> str | None: ...
    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest: ...
    def funding_info_path(self) -> str | None: ...
    def decode_funding_info(self, body: bytes) -> dict[str, float]: ...
    def premium_path(self, symbol: str) -> str | None:
        """Funding (rate, next time, interval), mark and index of a symbol over REST, polled
        every ``premium_seconds`` for venues that stream none of them (None: streamed;
        ``FeedBase``'s default). Weight: ``rest_weights["premium"]``."""
        ...
    def decode_premium(self, body: bytes, symbol: str, ts_local: int) -> list[DerivativeTicker]:
        ...
    def gap_fill_path(self, symbol: str, last_id: int) -> str | None:
        """The venue's latest book changes of a symbol, to mend a gap after ``last_id`` without
        a full snapshot (None: a gap takes a snapshot; ``FeedBase``'s default). Weight:
        ``rest_weights["gap_fill"]``."""
        ...
    def decode_gap_fill(self, body: bytes, symbol: str, ts_local: int) -> list[BookChange]:
        """The changes of a ``gap_fill_path`` body, oldest first."""
        ...


@dataclass(frozen=True)
class Venue:
    """One exchange: its markets and the feed class that collects each of them."""

    name: str
    markets: dict[str, Market]
    feed: Callable[..., VenueFeed]
    docs: str = ""
    # the module holding the local exchange's side of the venue (analyzer.exchange imports it
    # by name, so that the collector never loads the exchange's code)
    emulator: str = ""


__all__ = [
    "CHANNELS",
    "BookChange",
    "Control",
    "DecodeError",
    "DerivativeTicker",
    "FeedBase",
    "Fees",
    "Instrument",
    "Liquidation",
    "Market",
    "OpenInterest",
    "OptionError",
    "Quote",
    "Route",
    "SequenceRules",
    "Sink",
    "Trade",
    "UnknownStream",
    "Venue",
    "VenueError",
    "VenueFeed",
]
