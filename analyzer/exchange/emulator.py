"""The local exchange's venue interface: what a venue must provide to be served.

``analyzer.exchange`` (server, routing, replay and simulation loops, faults) knows no venue. A
venue plugs in with one module, named in its registry entry
(``Venue(..., emulator="analyzer.venues.<exchange>.emulate")`` in ``analyzer.venues``), that
holds a module-level ``EMULATOR``: a ``VenueEmulator``. Nothing under ``analyzer/exchange``
changes to add one. The layers:

    VenueEmulator    one per exchange: its markets, the sim's specs of them, its recordings
      MarketEmulator one per feed id (``<exchange>_<market>``): websocket protocol, heartbeat,
                     limits, REST routing and budgets, and the two sources of data below
        ReplayMarket made per replay (``replayed``): reads the recorded frames the replay
                     releases, keeps what REST answers need (book, trades, marks)
        SimMarket    made per simulation (``simulated``): one SymbolRenderer per instrument
                     (normalized events -> frames), REST answers from the model
      RecordingFormat  the venue's recorded traffic -> replay events; market inference

Addresses. Every market is served under ``/<feed id>/`` on the exchange's one port: a client
configured with the base ``http://127.0.0.1:PORT/<feed id>`` keeps the venue's own paths after
it, for websockets (``accepts`` says which) and REST (``route``).

Streams. A *stream* (bytes) is whatever the venue subscribes by: a stream name
(``btcusdt@depth@100ms``), a topic (``orderbook.50.BTCUSDT``), a ``channel:instId`` pair. The
core keeps each connection's subscriptions as stream -> None and routes every frame keyed by its
stream to the connections subscribed to it, batching writes and waiting on slow readers. Frames
are sent verbatim as text, unless the market has an optional ``encode(payload) -> bytes``
(a venue that compresses every frame itself): then every payload written to a client, data and
the frames queued by ``session.send``, goes out as ``encode(payload)`` in a binary frame
(``encode`` returns a payload that is already encoded unchanged, so that a fault can send a
corrupt one). Control replies returned as bytes go out as binary frames too.

Control messages. Each message a client sends goes to ``MarketEmulator.on_message`` with the
connection's ``Session``: the venue parses it (subscribe, unsubscribe, list, an app-level ping
such as ``{"op":"ping"}`` answered ``{"op":"pong",...}``, or a bare ``ping`` text answered
``pong``), acts through the session (``subscribe`` / ``unsubscribe``; ``send`` queues a data
frame, e.g. the book snapshot some venues send on a book subscription before its deltas, ahead
of any later frame of that stream; frames queued while a message is handled are written as
soon as it returns, before its reply), and returns its reply text, nothing, or a ``Close``. The
core enforces the message rate (``messages_per_s`` per connection; over it:
``too_many_messages``), the idle timeout (``idle_timeout_s``, for a venue that closes a
connection silent for 30 s), websocket pings (``ping_interval`` / ``ping_timeout``; None: the
venue does not ping) and the connection age. A resync that the venue does by resubscribing one
book topic is just an unsubscribe then a subscribe through the session.

``Session.source`` is the feed's ReplayMarket or SimMarket, for a venue that renders a snapshot
on subscription. A simulated snapshot is the model's book now, which may be ahead of the
released stream by up to one model step: the venue's ids must let a client discard the changes
the snapshot already holds (by the update ids the venue documents).

REST. ``route(path)`` names the endpoint (None: 404); ``weight`` charges the per-IP budget of
the market (``weight_limit`` per ``window_s``, overridable by the exchange); the core answers
an over-budget request (429, or 418 once banned if the exchange bans: the venue may map them to
its own status) with the venue's body (``over_budget``) and ``Retry-After``, and adds
``weight_headers`` to every answer. The answer itself
comes from the feed's ReplayMarket or SimMarket; a venue error is a ``RestError``.

Faults stay in the core and need two hooks: ``depth`` in ``ReplayMarket.classify`` (which
frames are depth frames: ``drop_depth`` counts and skips those) and ``corrupt_price(frame)``
(the ``badprice`` malformed frame: a copy of a depth frame whose first price is not a number).

Simulated events. ``SymbolRenderer.outputs(sinks)`` tells, per normalized event class
(``analyzer.events``: Quote, BookChange, Trade, DerivativeTicker, Liquidation, OpenInterest), which
(render, send) pairs a released event goes through, given the sinks of the subscribed streams;
the release loop calls ``send(render(ev))`` per pair, nothing else, so a renderer should do its
formatting work in ``render`` only (it is the exchange's hot path: preformat templates, cache
number texts). For DerivativeTicker, Liquidation and OpenInterest ``render`` may return None
(the venue sends nothing at this instant: a throttle, one index per pair). ``tape``: the venue's
record of released trades for its REST history (or None).

Recordings. Lines ``<local ts> <payload>`` (hftbacktest files, analyzer captures) and cryptofeed
capture folders are read by ``analyzer.exchange.recordings``; each payload goes through the
venue's ``RecordingFormat``: a payload starting with ``envelope`` is a frame whose stream runs
from there to the next ``"`` (the fast path, no decode); any other through ``payload``; REST
bodies recorded with their URL through ``rest_event``.

Adding a venue: in ``analyzer/venues/<exchange>/emulate.py`` (or an ``emulate/`` package),
  1. a MarketEmulator per market, keyed by the feed ids of the venue's registry entry;
  2. its ReplayMarket (``replayed(None)`` too: a market with no replay still answers REST) and
     its SimMarket, with a SymbolRenderer per instrument;
  3. a RecordingFormat (``envelope`` None when its frames have no fixed prefix before the
     stream);
  4. ``sim_venues``: the ``analyzer.sim.VenueSpec`` of each market (``default_world`` lists
     every registered venue's);
  5. a module-level ``EMULATOR`` and ``emulator="analyzer.venues.<exchange>.emulate"`` in the
     venue's ``Venue``. The registered venues' ``emulate`` packages are worked examples.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

    from analyzer.events import Instrument
    from analyzer.exchange.market import MarketFeed
    from analyzer.exchange.recordings import Event, Recording
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel, VenueSpec


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code and reason."""

    code: int
    reason: str = ""


class RestError(Exception):
    """A venue's error answer: HTTP status and body as the venue sends them."""

    def __init__(self, status: int, body: bytes | str | dict[str, Any]) -> None:
        if isinstance(body, dict):
            body = msgspec.json.encode(body)
        elif isinstance(body, str):
            body = body.encode()
        super().__init__(body.decode(errors="replace"))
        self.status = status
        self.body = body


class Session(Protocol):
    """One websocket connection, as a venue's control handler sees it."""

    streams: dict[bytes, None]  # subscribed streams, in subscription order
    combined: bool  # frames as stored (True) or through ``MarketEmulator.unwrap``
    max_streams: int  # the connection's stream limit (the venue's, or the exchange's override)
    source: Any  # the feed's ReplayMarket or SimMarket
    route: str | None  # the venue's own use (a venue serving its streams on several paths)

    def subscribe(self, streams: list[bytes]) -> None: ...
    def unsubscribe(self, streams: list[bytes]) -> None: ...
    def set_combined(self, combined: bool) -> None: ...
    def send(self, frame: bytes) -> None:
        """Queue a data frame now, ahead of any frame the market releases after it."""
        ...


class ReplayMarket(Protocol):
    """What a replay keeps of its recording to answer REST, fed the released events in order.

    ``now_ns``: recorded local time of the last released event (the core sets it);
    ``decode_errors`` and ``chain_breaks`` (recorded book sequence breaks) go into the stats.
    """

    now_ns: int
    decode_errors: int
    chain_breaks: int

    def reset(self) -> None:
        """Forget everything released (a looping replay starts over)."""
        ...
    def classify(
        self, stream: bytes
    ) -> tuple[Callable[[str | None, bytes], int | None] | None, str | None, bool]:
        """(handler, symbol, is_depth) of a stream, asked once per stream name. The core calls
        ``handler(symbol, frame)`` on each of its frames (None: only forwarded); for a depth
        stream the handler returns the frame's 1-based number among the symbol's depth frames
        of this pass (0: undecodable), which ``drop_depth`` faults count."""
        ...
    def depth_seen(self, symbol: str) -> int:
        """Depth frames of a symbol handled in this pass."""
        ...
    def on_snapshot(self, symbol: str, body: bytes) -> None: ...
    def on_rest(self, key: tuple[str, str], body: bytes) -> None: ...
    def rest(self, feed: MarketFeed, endpoint: str, params: dict[str, str]) -> bytes:
        """The body of a REST answer (raises RestError)."""
        ...
    def depth(self, feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
        """What the venue's depth request would answer now (tests compare books with it)."""
        ...


class SymbolRenderer(Protocol):
    """The frames of one simulated instrument."""

    symbol: str
    tape: Any  # released trades for REST history (``add(trade)``), or None

    def streams(self) -> list[bytes]:
        """Every stream this instrument sends on."""
        ...
    def outputs(
        self, sinks: dict[bytes, Callable[[bytes], Any]]
    ) -> dict[type, list[tuple[Callable[[Any], bytes | None], Callable[[bytes], Any]]]]:
        """Per event class, the (render, send) pairs for the streams in ``sinks`` (the sinks
        of every subscribed stream of the feed; called again whenever they change)."""
        ...
    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Every (stream, frame) an event makes, subscribed or not (malformed-frame faults)."""
        ...


class SimMarket(Protocol):
    """One market of one simulation: renderers and REST answers from the model."""

    def renderer(self, instrument: Instrument) -> SymbolRenderer:
        """The renderer of a listed instrument (called once per instrument)."""
        ...
    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes: ...
    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]: ...


class MarketEmulator(Protocol):
    """One market (feed id) of a venue, as the local exchange serves it."""

    feed: str  # feed id: the path prefix, the ``venue`` of simulated events
    market: str  # the venue's own name of the market (spot, usdm, linear, swap...)

    # websocket
    ping_interval: float | None  # seconds between server websocket pings (None: no pings)
    ping_timeout: float | None  # a client that does not pong in time is closed (1011)
    idle_timeout_s: float | None  # close a connection that sent nothing for that long
    # (optional) the close code and reason of that idle close; default Close(1000, "idle")
    idle_close: Close
    messages_per_s: int  # incoming messages a second per connection
    too_many_messages: Close  # what the venue does beyond that
    max_streams: int  # streams a connection may hold

    def accepts(self, path: str) -> bool:
        """True for a websocket path of the venue (after ``/<feed id>/``, query excluded)."""
        ...
    def on_open(self, session: Session, path: str, query: str) -> Close | None:
        """A connection opened: subscribe what its URL names."""
        ...
    def on_message(self, session: Session, message: str | bytes) -> str | bytes | Close | None:
        """Answer one client message (text reply, nothing, or close the connection)."""
        ...
    def unwrap(self, stream: bytes, frame: bytes) -> bytes:
        """A frame for a connection with ``combined`` False (identity if the venue has none)."""
        ...
    def corrupt_price(self, frame: bytes) -> bytes:
        """A copy of a depth frame whose first price is not a number."""
        ...

    # REST
    weight_limit: int  # per IP per window
    window_s: float

    def route(self, path: str) -> str | None:
        """The endpoint name of a REST path (None: not found)."""
        ...
    def weight(self, endpoint: str, params: dict[str, str]) -> int: ...
    def weight_headers(self, used: int) -> list[tuple[str, str]]: ...
    def over_budget(self, status: int, ip: str, limit: int, until_ms: int) -> tuple[int, bytes]:
        """HTTP status and body of an answer over the budget (``status`` 429) or while banned
        (418), as the venue sends them (its own status, e.g. 403, if it has one)."""
        ...

    # sources
    def replayed(self, recording: Recording | None) -> ReplayMarket: ...
    def simulated(self, model: MarketModel) -> SimMarket: ...


class MarketInference(Protocol):
    """Collects hints while a recording is scanned; says which market it is."""

    def url(self, url: str) -> None:
        """A venue URL or a file path the recording came from."""
        ...
    def stream(self, stream: bytes) -> None:
        """A stream seen for the first time."""
        ...
    def frame(self, stream: bytes, frame: bytes) -> None:
        """One of the first frames."""
        ...
    def market(self) -> str | None:
        """The market name (None: cannot tell)."""
        ...


class RecordingFormat(Protocol):
    """A venue's recorded traffic. Events are ``(ts_ns, kind, key, payload)`` tuples, see
    ``analyzer.exchange.recordings``."""

    envelope: bytes | None  # a frame starts with it and its stream runs to the next '"'

    def payload(self, ts: int, payload: bytes, default_symbol: str | None) -> Event | None:
        """A recorded payload that is not an enveloped frame (None: skip it, e.g. an ack);
        may raise msgspec.DecodeError."""
        ...
    def rest_event(self, ts: int, url: str, body: bytes) -> Event: ...
    def symbol_of(self, stream: bytes) -> str | None:
        """The symbol a per-symbol stream is about (None: market-wide)."""
        ...
    def is_depth(self, stream: bytes) -> bool: ...
    def inference(self) -> MarketInference: ...
    def claims(self, urls: list[str], head: bytes) -> bool:
        """True if a recording looks like this venue's (its URLs, its first bytes)."""
        ...


class VenueEmulator(Protocol):
    """An exchange: its markets by feed id, its recordings, the sim's specs of its markets."""

    name: str
    markets: dict[str, MarketEmulator]
    recordings: RecordingFormat
    sim_venues: tuple[VenueSpec, ...]  # the simulated world's specs of its markets


def emulators() -> dict[str, VenueEmulator]:
    """Every registered venue's emulator, by exchange name, in registry order."""
    global _EMULATORS
    if _EMULATORS is None:
        from analyzer.venues import EXCHANGES

        _EMULATORS = {
            name: importlib.import_module(venue.emulator).EMULATOR
            for name, venue in EXCHANGES.items()
            if venue.emulator
        }
    return _EMULATORS


_EMULATORS: dict[str, VenueEmulator] | None = None


def markets() -> dict[str, MarketEmulator]:
    """Every emulated market, by feed id."""
    return {feed: m for e in emulators().values() for feed, m in e.markets.items()}
