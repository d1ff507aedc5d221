"""A websocket connection to a venue that stays up.

Subscribes (paced below the venue's incoming-message limit), answers the venue's pings and
pings it in turn, watches for silent stalls (no data frame: pongs do not count), and reconnects
with capped, jittered exponential backoff whatever ended the connection (a close code, an error,
a stall); only a healthy period resets the backoff. Before the venue's maximum connection age it
rotates to a fresh connection: the new connection subscribes and receives before the old one is
closed (after its last subscription has had time to take effect), and ``on_connected`` runs
for it as for a reconnect (the runner's trade backfill); the overlap is deduplicated downstream
by update and trade ids (quotes without ids by venue time and content).

Venue hooks (``Hooks``): a venue whose heartbeat is a message of its own (a text ``ping``, a
JSON ``{"op":"ping"}``) has it sent every ``heartbeat_seconds`` instead of websocket pings, and
its reply must come back within that time. Its ``control`` function looks at each frame first:
``pong`` replies and ``ignore``d notices are not data (they neither reach the decoder nor keep
the stall clock alive); subscribe ``ack``s reach the decoder but are not data either; a
``restart`` notice (the venue will close this connection soon) rotates the connection at once,
as the maximum age does; a ``ping`` of the venue's own is answered with ``reply(frame)`` and is
not data either. A venue that compresses its frames has them inflated here (``inflate``),
before ``control`` looks at them: ``raw`` sees each frame as received (the raw capture keeps it
byte-exact), ``bad`` each frame that does not inflate (counted by the runner; the stream goes
on).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.feed import wire
from analyzer.feed.wire import WireConnection

log = logging.getLogger(__name__)

# close codes counted by name; anything else is "other" (a bounded label set)
CLOSE_REASONS = {1000: "1000", 1001: "1001", 1006: "abnormal", 1008: "1008", 1011: "1011"}


@dataclass(slots=True)
class ConnectionSettings:
    stall_seconds: float = 30.0  # no data frame for this long: reconnect
    max_age_seconds: float = 23.5 * 3600  # venues close at 24 h: rotate before
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # a connection that delivered data for this long resets the backoff; a shorter one, however
    # it ended (a clean close code included), makes the next reconnect wait twice as long
    healthy_seconds: float = 60.0
    subscribe_interval: float = 0.25  # seconds between subscribe messages
    # subscribe messages sent at once before the pacing starts (half the venue's rate a second:
    # a venue that takes 10 messages a second gets a connection's first 5 together)
    subscribe_burst: int = 1
    open_timeout: float = 10.0
    ping_interval: float = 20.0  # our pings; a pong must come back within the same time


@dataclass(slots=True)
class Hooks:
    """A venue's application-level protocol (see the module doc)."""

    control: Callable[[bytes], str | None] | None = None
    heartbeat: bytes | None = None
    heartbeat_seconds: float = 20.0
    reply: Callable[[bytes], bytes] | None = None  # the answer to a ``ping`` of the venue's
    inflate: Callable[[bytes], bytes] | None = None  # raises on a frame that does not inflate
    raw: Callable[[int, bytes], None] | None = None  # (ts, frame as received), before inflate
    bad: Callable[[Exception, bytes], None] | None = None  # (why, frame) that did not inflate


class _Link:
    """The wire connection a frame came on, for the answer to a venue's ping (one that comes
    with the handshake's reply, before the connection is known, is sent once it is)."""

    __slots__ = ("pending", "ws")

    def __init__(self) -> None:
        self.ws: WireConnection | None = None
        self.pending: list[bytes] = []

    def answer(self, message: bytes) -> None:
        if self.ws is None:
            self.pending.append(message)
        else:
            self.ws.send(message)

    def attach(self, ws: WireConnection) -> None:
        self.ws = ws
        for m in self.pending:
            ws.send(m)
        self.pending.clear()


@dataclass(slots=True)
class ConnectionStats:
    connects: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)  # reason -> count
    connected: bool = False


class Connection:
    """Keeps the subscribed streams flowing from ``url`` into ``on_frame(frame, ts_local_ns)``,
    called synchronously for every frame as it is read."""

    def __init__(
        self,
        name: str,
        url: str,
        subscribe_messages: list[bytes] | Callable[[], list[bytes]],
        on_frame: Callable[[bytes, int], None],
        settings: ConnectionSettings,
        *,
        on_connected: Callable[[], None] | None = None,
        on_opened: Callable[[], None] | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.name = name
        self.url = url
        # a function: asked anew at each connection (a venue that stops asking for a stream
        # it refused: some close a connection after a few refusals)
        self._subscribe = subscribe_messages
        self.settings = settings
        self.on_connected = on_connected
        self.on_opened = on_opened  # connected, nothing subscribed yet
        self.hooks = hooks or Hooks()
        self._deliver = on_frame
        # without hooks every frame is data: the wire's own clock, no extra call
        plain = self.hooks.control is None and self.hooks.inflate is None
        self.on_frame = on_frame if plain else self._on_frame_hooked
        self._data_ns = 0  # with a control hook: local time of the last data frame
        self._pong = 0.0  # monotonic time of the last application-level pong
        self._rotate_now = False
        self.stats = ConnectionStats()
        self.subscribe_interval = settings.subscribe_interval
        self.subscribe_burst = settings.subscribe_burst
        self._ws: WireConnection | None = None
        self._stop = asyncio.Event()
        self._restart: str | None = None  # why restart() ended the current connection
        self.delay = 0.0  # the last reconnect delay (for tests and logs)

    @property
    def subscribe_messages(self) -> list[bytes]:
        s = self._subscribe
        return s() if callable(s) else s

    @property
    def last_ns(self) -> int:
        """Local time of the last data frame on the current connection (0 before the first)."""
        if self.on_frame != self._deliver:
            return self._data_ns
        return self._ws.last_ns if self._ws is not None else 0

    def _on_frame_hooked(self, frame: bytes, ts: int, link: _Link | None = None) -> None:
        hooks = self.hooks
        if hooks.inflate is not None:
            if hooks.raw is not None:
                hooks.raw(ts, frame)
            try:
                frame = hooks.inflate(frame)
            except Exception as exc:  # corrupt or truncated: counted, the stream goes on
                if hooks.bad is not None:
                    hooks.bad(exc, frame)
                return
        kind = hooks.control(frame) if hooks.control is not None else None
        if kind is None:
            self._data_ns = ts
        elif kind == "pong":
            self._pong = time.monotonic()
            return
        elif kind == "ignore":
            return
        elif kind == "ping":
            if hooks.reply is not None and link is not None:
                link.answer(hooks.reply(frame))
            return
        elif kind == "restart":
            log.warning("%s: the venue announced a restart: rotating", self.name)
            self._rotate_now = True
        self._deliver(frame, ts)

    def send(self, messages: list[bytes]) -> bool:
        """Send requests on the current connection (e.g. resubscribe one book); False if it is
        down (its reconnect subscribes everything anyway)."""
        if self._ws is None or not self.stats.connected:
            return False
        for m in messages:
            self._ws.send(m)
        return True

    async def run(self) -> None:
        """Connect, receive, reconnect, until ``stop()``."""
        s = self.settings
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            reason = await self._session()
            self.stats.connected = False
            if self._stop.is_set():
                return
            self._count(reason)
            if reason == "1008":  # policy violation: we were too fast; subscribe slower
                self.subscribe_interval = min(self.subscribe_interval * 2, 5.0)
                self.subscribe_burst = 1
            # A venue that closes at once, cleanly or not, must not be hammered (venues ban
            # an IP that reconnects too often): only a healthy period resets the backoff.
            healthy = time.monotonic() - started >= s.healthy_seconds and reason != "error"
            failures = 1 if healthy else failures + 1
            delay = min(s.backoff_max, s.backoff_initial * 2 ** (failures - 1))
            delay *= 0.5 + random.random() / 2  # jitter: a fleet must not reconnect in lockstep
            self.delay = delay
            log.warning("%s: connection ended (%s); reconnecting in %.2fs", self.name, reason,
                        delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            self._ws.abort()

    def restart(self, reason: str) -> None:
        """End the current connection now (e.g. one of its streams stalled); ``run`` counts
        ``reason`` and reconnects through the backoff."""
        if self._ws is not None and self.stats.connected and self._restart is None:
            self._restart = reason
            self._ws.abort()

    def _count(self, reason: str) -> None:
        self.stats.reconnects[reason] = self.stats.reconnects.get(reason, 0) + 1

    async def _open(self) -> WireConnection:
        on_frame = self.on_frame
        link = None
        if self.hooks.reply is not None and on_frame != self._deliver:
            # a ping is answered on the connection it came on (hooked venues only: a venue
            # without control frames keeps the wire's own path)
            link = _Link()
            on_frame = functools.partial(self._on_frame_hooked, link=link)
        ws = await wire.connect(self.url, on_frame, open_timeout=self.settings.open_timeout)
        if link is not None:
            link.attach(ws)
        if self.on_opened is not None:
            self.on_opened()
        for i, msg in enumerate(self.subscribe_messages):
            if i >= self.subscribe_burst:
                await asyncio.sleep(self.subscribe_interval)
                if ws.closed.done():  # closed while subscribing: the caller sees it at once
                    break
            ws.send(msg)
        return ws

    async def _session(self) -> str:
        """One connection's life; returns why it ended (a bounded reason label)."""
        try:
            ws = await self._open()
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("%s: cannot connect to %s: %s", self.name, self.url, exc)
            return "error"
        self._ws = ws
        self.stats.connects += 1
        self.stats.connected = True
        if self.on_connected is not None and not ws.closed.done():  # (else: the next one's)
            self.on_connected()
        opened = time.monotonic()
        while True:
            watchdog = asyncio.ensure_future(self._watch(ws, opened))
            done, _ = await asyncio.wait({ws.closed, watchdog},
                                         return_when=asyncio.FIRST_COMPLETED)
            if ws.closed in done:
                watchdog.cancel()
                if self._restart is not None:
                    reason, self._restart = self._restart, None
                    return reason
                return CLOSE_REASONS.get(ws.closed.result(), "other")
            why = watchdog.result()
            if why != "rotation":
                ws.abort()
                return why
            # open the replacement first; frames keep flowing on the old one meanwhile
            try:
                new_ws = await self._open()
                deadline = time.monotonic() + 30
                while not new_ws.last_ns and not new_ws.closed.done():
                    if time.monotonic() > deadline:
                        raise TimeoutError("no frame on the new connection")
                    await asyncio.sleep(0.01)
            except (OSError, TimeoutError, ValueError) as exc:
                log.warning("%s: rotation failed (%s); keeping the old connection",
                            self.name, exc)
                opened = time.monotonic() - self.settings.max_age_seconds + 60
                continue
            if len(self.subscribe_messages) > 1:
                # the new connection's first frame may answer its first subscription only:
                # give the last one as long to take effect as each earlier one had
                await asyncio.sleep(self.subscribe_interval)
            await ws.close()
            self._count("rotation")
            ws = self._ws = new_ws
            self._restart = None  # a restart asked meanwhile wanted this: a fresh connection
            opened = time.monotonic()
            if self.on_connected is not None:  # what the handover still lost: backfilled
                self.on_connected()

    async def _watch(self, ws: WireConnection, opened: float) -> str:
        s = self.settings
        h = self.hooks
        started = time.time_ns()
        interval = h.heartbeat_seconds if h.heartbeat is not None else s.ping_interval
        next_ping = time.monotonic() + interval
        ping_sent: float | None = None
        while True:
            await asyncio.sleep(min(1.0, s.stall_seconds / 4, interval / 4))
            now = time.monotonic()
            last = self._data_ns if h.control is not None else ws.last_ns
            if time.time_ns() - max(last, started) > s.stall_seconds * 1e9:
                log.warning("%s: no data frame for %.0fs: stalled", self.name, s.stall_seconds)
                return "stall"
            if now - opened > s.max_age_seconds or self._rotate_now:
                self._rotate_now = False
                return "rotation"
            if now >= next_ping:
                pong = self._pong if h.heartbeat is not None else ws.last_pong
                if ping_sent is not None and pong < ping_sent:
                    log.warning("%s: no pong for %.0fs", self.name, interval)
                    return "ping_timeout"
                if h.heartbeat is not None:
                    ws.send(h.heartbeat)
                else:
                    ws.ping()
                ping_sent = now
                next_ping = now + interval
