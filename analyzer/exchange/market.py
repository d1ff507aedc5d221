"""One market (feed) of the local exchange: its subscribers, its replay loop, its faults.

Frames go out verbatim. The replay writes websocket text frames straight to each subscriber's
transport, a batch at a time (one write per client per batch, not one per frame: that is what
makes the exchange fast enough not to be the bottleneck of a collector's benchmark), then
waits on each client whose write buffer is above the high-water mark. A batch is a list of
payloads per client; the frame headers are added when it is written, and a stream with one
combined-stream subscriber (the usual case) hands its payloads straight to that list (see
``MarketFeed.sinks``). So a slow reader slows
the replay down instead of growing a queue: nothing is buffered beyond one batch plus the
transport's high-water mark per client. Control traffic (control answers, pings, close
frames) goes through websockets itself; both write whole frames on the same loop, so they
never interleave inside a frame. Compression is not negotiated, so the frames need no
per-message processing, except for a venue that compresses every frame itself: its emulator's
optional ``encode(payload) -> bytes`` makes each written payload a binary frame. What the
frames mean is the venue's (``MarketEmulator``): which are
depth frames, what REST answers, how a raw connection's frames are unwrapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from websockets.protocol import State

from analyzer.exchange.recordings import FRAME, REST, SNAPSHOT

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from analyzer.exchange.emulator import MarketEmulator, ReplayMarket
    from analyzer.exchange.replay import Replay

log = logging.getLogger(__name__)

BATCH = 256  # frames between flushes (and between yields to the event loop) at full speed
_H16 = struct.Struct("!BBH").pack
_H64 = struct.Struct("!BBQ").pack
_NOT_JSON = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_CLOSE_REASONS = {1000: "", 1001: "going away", 1008: "policy violation", 1011: "internal error"}


def text_header(n: int) -> bytes:
    """Header of an unmasked, final websocket text frame of n bytes (server to client)."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return _H16(0x81, 126, n)
    return _H64(0x81, 127, n)


class _Headers(dict[int, bytes]):
    """Text-frame headers by payload length, made on first use."""

    def __missing__(self, n: int) -> bytes:
        header = self[n] = text_header(n)
        return header


_HEADERS = _Headers()


def binary_frames(payloads: list[bytes]) -> bytes:
    """The websocket binary frames of these payloads, joined (an ``encode`` venue's)."""
    parts = []
    for p in payloads:
        n = len(p)
        parts.append(bytes((0x82, n)) if n < 126 else
                     _H16(0x82, 126, n) if n < 65536 else _H64(0x82, 127, n))
        parts.append(p)
    return b"".join(parts)


def frames(payloads: list[bytes]) -> bytes:
    """The websocket text frames of these payloads, joined (header and payload interleaved
    by slice assignment: no Python loop per frame)."""
    parts = payloads * 2
    parts[::2] = map(_HEADERS.__getitem__, map(len, payloads))
    parts[1::2] = payloads
    return b"".join(parts)


class Client:
    """A websocket connection and the streams it asked for."""

    __slots__ = ("closed", "combined", "conn", "frames", "frozen", "out", "streams", "transport")

    def __init__(self, conn: ServerConnection, combined: bool) -> None:
        self.conn = conn
        self.transport = conn.transport
        self.combined = combined  # frames as stored, else through the venue's ``unwrap``
        self.streams: dict[bytes, None] = {}  # in subscription order
        self.out: list[bytes] = []  # payloads of the current batch
        self.frames = 0
        self.closed = False
        self.frozen = False  # a freeze fault: routed nothing until it ends


class MarketFeed:
    """Subscriptions, state and replay loop of one market (a feed id). ``state`` is the venue's
    ``ReplayMarket``: what the replay released, for the REST answers."""

    def __init__(
        self,
        emulator: MarketEmulator,
        replay: Replay | None,
        weight_limit: int,
        send_timeout_s: float | None,
    ) -> None:
        self.emulator = emulator
        self.market = emulator.market
        self.feed_id = emulator.feed
        self.unwrap = emulator.unwrap
        # a venue compressing its frames: each payload as written (binary frames); None: text
        self.encode: Callable[[bytes], bytes] | None = getattr(emulator, "encode", None)
        self.replay = replay
        self.weight_limit = weight_limit
        self.send_timeout_s = send_timeout_s
        rec = replay.recording if replay is not None else None
        self.symbols: set[str] = set(rec.symbols) if rec else set()
        self.exchange_info: bytes | None = rec.exchange_info if rec else None
        self.streams: set[bytes] = set(rec.streams) if rec else set()
        self.state: ReplayMarket = emulator.replayed(rec)
        # stream -> (handler, symbol, is_depth), asked of the state once per stream
        self.kinds: dict[bytes, tuple[Any, str | None, bool]] = {}
        self.speed = replay.speed if replay is not None else 0.0
        self.clients: dict[Client, None] = {}  # in connection order
        self.subs: dict[bytes, list[Client]] = {}
        # stream -> what takes a payload of it: see _update_sinks
        self.sinks: dict[bytes, Callable[[bytes], Any]] = {}
        self.active = 0  # subscriptions to streams the recording has
        # Replay progress and counters.
        self.position = 0  # frames read in this pass
        self.passes = 0
        self.frames_sent = 0  # frames written, summed over clients
        self.bytes_sent = 0
        self.dropped = 0
        self.injected = 0
        self.closed_by_fault = 0
        self.slow_clients_dropped = 0
        self._hold = True
        self._stall_until = 0.0
        self._drops: dict[str, set[int]] = {}
        self._badprice = 0
        self._faults: list[tuple[int, str, object]] = []
        self._fault_i = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self.done: asyncio.Event | None = None

    # ------------------------------------------------------------------------------------------
    # Subscriptions

    def bind(self) -> None:
        """Create the loop-bound primitives (called from the running loop)."""
        self._started = asyncio.Event()
        self._wake = asyncio.Event()
        self.done = asyncio.Event()
        if self.replay is None:
            self.done.set()

    def attach(self, client: Client) -> None:
        self.clients[client] = None

    def detach(self, client: Client) -> None:
        if client in self.clients:
            del self.clients[client]
            self.unsubscribe(client, list(client.streams))
        client.closed = True
        client.out.clear()

    def subscribe(self, client: Client, names: list[bytes]) -> None:
        new = [n for n in dict.fromkeys(names) if n not in client.streams]
        for name in new:
            client.streams[name] = None
        if not client.frozen:
            self._route(client, new)
        if self.active and self._started is not None and not self._started.is_set():
            self._started.set()

    def unsubscribe(self, client: Client, names: list[bytes]) -> None:
        gone = [n for n in dict.fromkeys(names) if n in client.streams]
        for name in gone:
            del client.streams[name]
        if not client.frozen:
            self._unroute(client, gone)

    def set_combined(self, client: Client, combined: bool) -> None:
        """Frames as stored or unwrapped for this client: and so their route."""
        client.combined = combined
        self._update_sinks()

    def _route(self, client: Client, names: list[bytes]) -> None:
        """Start sending these streams to the client (``subs`` is what the replay reads)."""
        for name in names:
            self.subs.setdefault(name, []).append(client)
            if name in self.streams:
                self.active += 1
        self._update_sinks()
        self._update_hold()

    def _unroute(self, client: Client, names: list[bytes]) -> None:
        for name in names:
            subs = self.subs[name]
            subs.remove(client)
            if not subs:
                del self.subs[name]
            if name in self.streams:
                self.active -= 1
        self._update_sinks()
        self._update_hold()

    def _update_sinks(self) -> None:
        """Per subscribed stream, the callable that takes its payloads: the ``out.append`` of
        its one combined-stream subscriber (a C call per frame, the usual case), else
        ``_deliver`` to all of them. Updated in place: loops hold it in a local."""
        self.sinks.clear()
        self.sinks.update({
            name: (
                targets[0].out.append
                if len(targets) == 1 and targets[0].combined
                else partial(self._deliver, name, targets=targets)
            )
            for name, targets in self.subs.items()
        })

    def _update_hold(self) -> None:
        # As fast as possible: wait while nobody (not frozen) takes the recording's frames.
        self._hold = (self.speed == 0 and self.active == 0) or self._stall_until > 0
        if not self._hold and self._wake is not None:
            self._wake.set()

    def now_ms(self) -> int:
        """Recorded time of the last released event (the replayed market's clock)."""
        if self.replay is None:
            return time.time_ns() // 1_000_000
        return self.state.now_ns // 1_000_000

    # ------------------------------------------------------------------------------------------
    # Writing

    def _deliver(self, key: bytes, payload: bytes, targets: list[Client]) -> None:
        """Queue a payload for each target: unwrapped for clients not ``combined``."""
        raw = None
        for c in targets:
            if c.combined:
                c.out.append(payload)
            else:
                if raw is None:
                    raw = self.unwrap(key, payload)
                c.out.append(raw)

    def _flush(self) -> list[Client]:
        """Write every client's batch as one transport write; the clients written."""
        written = [c for c in self.clients if c.out]
        for c in written:
            out = c.out
            if c.closed or c.conn.protocol.state is not State.OPEN:
                out.clear()
                continue
            encode = self.encode
            data = frames(out) if encode is None else binary_frames(list(map(encode, out)))
            c.frames += len(out)
            self.frames_sent += len(out)
            out.clear()
            c.transport.write(data)
            self.bytes_sent += len(data)
        return written

    async def _flush_and_drain(self) -> None:
        await self._drain(self._flush())
        await asyncio.sleep(0)

    async def _drain(self, written: list[Client]) -> None:
        """Wait for each written client whose transport is above its high-water mark."""
        for c in written:
            conn = c.conn
            if not conn.paused or c.closed:
                continue
            try:
                # Connection.drain() waits for the transport to go under its low-water mark.
                await asyncio.wait_for(conn.drain(), self.send_timeout_s)
            except TimeoutError:
                log.warning(
                    "%s: client not reading for %ss, dropped", self.feed_id, self.send_timeout_s
                )
                self.slow_clients_dropped += 1
                c.transport.abort()
                self.detach(c)
            except Exception:  # the connection went away while we waited
                self.detach(c)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------------------
    # REST (a simulated market answers from its model instead)

    def rest(self, endpoint: str, params: dict[str, str]) -> bytes:
        """The body of a REST answer (raises ``emulator.RestError``)."""
        return self.state.rest(self, endpoint, params)

    def depth_body(self, symbol: str, limit: int) -> dict[str, Any]:
        return self.state.depth(self, symbol, limit)

    # ------------------------------------------------------------------------------------------
    # Faults, at positions or called at any time

    def close_clients(self, code: int | None = 1000, reason: str | None = None) -> int:
        """Close every connection of this market with a close code, or abort them (None)."""
        self._flush()
        clients = list(self.clients)
        for c in clients:
            if code is None:
                c.transport.abort()
            else:
                self._spawn(
                    c.conn.close(code, _CLOSE_REASONS.get(code, "") if reason is None else reason)
                )
            # Unsubscribe now: at full speed the replay must wait for the reconnection.
            self.detach(c)
        self.closed_by_fault += len(clients)
        return len(clients)

    def freeze(self, seconds: float) -> None:
        """The connections open now get no data for a while (they stay open and answer pings).

        Frames released meanwhile are not sent to them: a connection that outlives the freeze
        resumes with a gap, like a stuck venue connection that recovers. New connections are
        served at once, and at full speed the replay waits while every subscriber is frozen,
        so a client that reconnects (or just waits) loses nothing."""
        self._flush()
        loop = asyncio.get_running_loop()
        for c in list(self.clients):
            if not c.frozen:
                self._unroute(c, list(c.streams))
                c.frozen = True
                loop.call_later(seconds, self._unfreeze, c)

    def mute(self, stream: str, seconds: float) -> None:
        """Like ``freeze``, for one stream of the connections open now: their other streams
        keep flowing (a stream stuck on the venue's side)."""
        self._flush()
        key = stream.encode()
        loop = asyncio.get_running_loop()
        for c in list(self.clients):
            if key in c.streams and not c.frozen:
                self._unroute(c, [key])
                loop.call_later(seconds, self._unmute, c, key)

    def _unmute(self, client: Client, key: bytes) -> None:
        if (not client.closed and not client.frozen and key in client.streams
                and client not in self.subs.get(key, ())):
            self._route(client, [key])

    def stall(self, seconds: float) -> None:
        """The whole market sends nothing for a while, to old and new connections alike (they
        stay open and answer pings); the replay pauses, so nothing is lost, only late."""
        self._stall_until = asyncio.get_running_loop().time() + seconds
        self._update_hold()

    def _unfreeze(self, client: Client) -> None:
        if client.frozen and not client.closed:
            client.frozen = False
            self._route(client, list(client.streams))

    def drop_next_depth(self, symbol: str, count: int = 1) -> None:
        """Keep the next ``count`` depth diffs of a symbol off the wire (the book applies them)."""
        seen = self.state.depth_seen(symbol.upper())
        drops = self._drops.setdefault(symbol.upper(), set())
        drops.update(range(seen + 1, seen + 1 + count))

    def inject(self, stream: str, payload: bytes) -> int:
        """Send arbitrary bytes as one text frame to the subscribers of a stream, now."""
        key = stream.encode()
        targets = self.subs.get(key, [])
        if targets:
            self._deliver(key, payload, targets)
            self._flush()
        self.injected += 1
        return len(targets)

    async def _fire(self, pos: int, key: bytes, payload: bytes) -> None:
        faults = self._faults
        while self._fault_i < len(faults) and faults[self._fault_i][0] <= pos:
            _, what, arg = faults[self._fault_i]
            self._fault_i += 1
            if what == "malformed":
                if arg == "badprice":
                    self._badprice += 1
                    continue
                wire = payload if self.encode is None else self.encode(payload)
                bad = wire[: len(wire) // 2] if arg == "truncated" else _NOT_JSON
                targets = self.subs.get(key)
                if targets:
                    self._deliver(key, bad, targets)
                self.injected += 1
            elif what == "close":
                log.info(
                    "%s: closing all connections at frame %d (%s)",
                    self.feed_id,
                    pos,
                    arg or "abort",
                )
                self.close_clients(arg)  # type: ignore[arg-type]
            elif what == "stall":
                log.info("%s: sending nothing for %ss from frame %d", self.feed_id, arg, pos)
                self.stall(arg)  # type: ignore[arg-type]
            elif what == "freeze":
                log.info("%s: freezing open connections %ss at frame %d", self.feed_id, arg, pos)
                self.freeze(arg)  # type: ignore[arg-type]
            elif what == "mute":
                stream, secs = arg  # type: ignore[misc]
                log.info("%s: muting %s %ss at frame %d", self.feed_id, stream, secs, pos)
                self.mute(stream, secs)

    # ------------------------------------------------------------------------------------------
    # Replay

    async def run(self) -> None:
        replay = self.replay
        assert replay is not None and self._started is not None and self.done is not None
        for symbol, n in replay.faults.drop_depth:
            self._drops.setdefault(symbol, set()).add(n)
        self._faults = replay.faults.positions()
        await self._started.wait()
        log.info(
            "%s: replay of %s starts (speed %s)",
            self.feed_id,
            replay.recording.name,
            replay.speed or "max",
        )
        while True:
            await self._pass()
            self.passes += 1
            self.done.set()
            log.info("%s: replay pass %d done, %d frames", self.feed_id, self.passes, self.position)
            if not replay.loop:
                return
            self.state.reset()
            self.position = 0
            # Faults belong to the first pass.
            self._drops.clear()
            self._faults = []
            self._fault_i = 0

    async def _held(self) -> None:
        await self._flush_and_drain()
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            now = loop.time()
            if self._stall_until > now:
                await asyncio.sleep(self._stall_until - now)  # keepalive pings go on meanwhile
                continue
            self._stall_until = 0.0
            self._update_hold()
            if not self._hold:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _pass(self) -> None:
        replay = self.replay
        assert replay is not None
        loop = asyncio.get_running_loop()
        speed = replay.speed
        ns_to_s = 1e-9 / speed if speed > 0 else 0.0
        state = self.state
        kinds = self.kinds
        classify = state.classify
        subs = self.subs
        sinks = self.sinks
        drops = self._drops
        rec0 = last_ts = -1
        wall0 = 0.0
        batch = 0
        next_fault = (
            self._faults[self._fault_i][0] if self._fault_i < len(self._faults) else sys.maxsize
        )
        for ts, kind, key, payload in replay.recording.events():
            if speed > 0:
                if rec0 < 0 or ts < last_ts:  # start, or chained recordings going back in time
                    rec0, wall0 = ts, loop.time()
                last_ts = ts
                ahead = wall0 + (ts - rec0) * ns_to_s - loop.time()
                if ahead > 0.001:
                    await self._flush_and_drain()
                    batch = 0
                    ahead = wall0 + (ts - rec0) * ns_to_s - loop.time()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            if self._hold:
                held_at = loop.time()
                await self._held()
                wall0 += loop.time() - held_at  # a stall delays the recorded pace: no burst
            state.now_ns = ts
            if kind != FRAME:
                if kind == SNAPSHOT:
                    state.on_snapshot(key, payload)
                elif kind == REST:
                    state.on_rest(key, payload)
                continue
            pos = self.position
            self.position = pos + 1
            if pos >= next_fault:
                await self._fire(pos, key, payload)
                next_fault = (
                    self._faults[self._fault_i][0]
                    if self._fault_i < len(self._faults)
                    else sys.maxsize
                )
                if self._hold:
                    held_at = loop.time()
                    await self._held()
                    wall0 += loop.time() - held_at
            info = kinds.get(key)
            if info is None:
                info = kinds[key] = classify(key)
            handle, symbol, depth = info
            if depth:
                n = handle(symbol, payload)
                if self._badprice and n:
                    self._badprice -= 1
                    targets = subs.get(key)
                    if targets:
                        self._deliver(key, self.emulator.corrupt_price(payload), targets)
                    self.injected += 1
                if drops and n in drops.get(symbol, ()):  # type: ignore[arg-type]
                    self.dropped += 1
                    continue
            elif handle is not None:
                handle(symbol, payload)
            send = sinks.get(key)
            if send is not None:
                send(payload)
            batch += 1
            if batch >= BATCH:
                batch = 0
                await self._flush_and_drain()
        await self._flush_and_drain()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def stats(self) -> dict[str, Any]:
        return {
            "recording": self.replay.recording.name if self.replay else None,
            "speed": self.speed,
            "clients": len(self.clients),
            "subscriptions": sum(len(c.streams) for c in self.clients),
            "frames_read": self.position,
            "frames_total": self.replay.recording.frames if self.replay else 0,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "passes": self.passes,
            "done": bool(self.done and self.done.is_set()),
            "dropped": self.dropped,
            "injected": self.injected,
            "closed_by_fault": self.closed_by_fault,
            "slow_clients_dropped": self.slow_clients_dropped,
            "recorded_chain_breaks": self.state.chain_breaks,
            "decode_errors": self.state.decode_errors,
        }
