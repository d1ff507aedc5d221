"""A websocket connection to a venue that stays up.

Subscribes (paced below the venue's incoming-message limit), lets the websockets library answer
the venue's pings, watches for silent stalls, reconnects with capped, jittered exponential
backoff, and rotates to a fresh connection before the venue's maximum connection age: the new
connection subscribes and receives before the old one is closed, so nothing is lost; the
overlap is deduplicated downstream by update and trade ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

log = logging.getLogger(__name__)

# close codes we count by name; anything else is "other" (bounded label set)
CLOSE_REASONS = {1000: "1000", 1001: "1001", 1006: "abnormal", 1008: "1008", 1011: "1011"}


@dataclass(slots=True)
class ConnectionSettings:
    stall_seconds: float = 30.0  # no frame at all for this long: reconnect
    max_age_seconds: float = 23.5 * 3600  # Binance closes at 24 h: rotate before
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    subscribe_interval: float = 0.25  # seconds between subscribe messages
    open_timeout: float = 10.0
    ping_interval: float | None = 20.0


@dataclass(slots=True)
class ConnectionStats:
    connects: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)  # reason -> count
    last_ns: int = 0  # local time of the last frame
    connected: bool = False


class Connection:
    """Keeps ``streams`` flowing from ``url`` into ``on_frame(frame_bytes, ts_local_ns)``."""

    def __init__(
        self,
        name: str,
        url: str,
        subscribe_messages: list[bytes],
        on_frame: Callable[[bytes, int], None],
        settings: ConnectionSettings,
        *,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.subscribe_messages = subscribe_messages
        self.on_frame = on_frame
        self.settings = settings
        self.on_connected = on_connected
        self.stats = ConnectionStats()
        self.subscribe_interval = settings.subscribe_interval
        self._ws: ClientConnection | None = None
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Connect, receive, reconnect, until ``stop()``."""
        failures = 0
        while not self._stop.is_set():
            reason = await self._session()
            self.stats.connected = False
            if self._stop.is_set():
                return
            self.stats.reconnects[reason] = self.stats.reconnects.get(reason, 0) + 1
            if reason == "1008":  # policy violation: we were too fast; subscribe slower
                self.subscribe_interval = min(self.subscribe_interval * 2, 5.0)
            failures = failures + 1 if reason in ("error", "abnormal") else 1
            s = self.settings
            delay = min(s.backoff_max, s.backoff_initial * 2 ** (failures - 1))
            delay *= 0.5 + random.random() / 2  # jitter: a fleet must not reconnect in lockstep
            log.warning("%s: connection ended (%s); reconnecting in %.2fs", self.name, reason,
                        delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            self._ws.transport.abort()

    async def _open(self) -> ClientConnection:
        ws = await connect(
            self.url,
            compression=None,
            max_size=2**24,
            open_timeout=self.settings.open_timeout,
            ping_interval=self.settings.ping_interval,
            proxy=None,
        )
        for i, msg in enumerate(self.subscribe_messages):
            if i:
                await asyncio.sleep(self.subscribe_interval)
            await ws.send(msg, text=True)
        return ws

    async def _session(self) -> str:
        """One connection's life; returns why it ended (a bounded reason label)."""
        try:
            ws = await self._open()
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            log.warning("%s: cannot connect to %s: %s", self.name, self.url, exc)
            return "error"
        self._ws = ws
        self.stats.connects += 1
        self.stats.connected = True
        self.stats.last_ns = time.time_ns()
        if self.on_connected is not None:
            self.on_connected()
        opened = time.monotonic()
        while True:
            receiver = asyncio.ensure_future(self._receive(ws))
            watchdog = asyncio.ensure_future(self._watch(opened))
            done, _ = await asyncio.wait(
                {receiver, watchdog}, return_when=asyncio.FIRST_COMPLETED
            )
            if receiver in done:
                watchdog.cancel()
                return receiver.result()
            why = watchdog.result()
            if why == "rotation":
                # open the replacement first; frames keep flowing on the old one meanwhile
                try:
                    new_ws = await self._open()
                    first = await asyncio.wait_for(new_ws.recv(decode=False), 30)
                except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                    log.warning("%s: rotation failed (%s); keeping the old connection",
                                self.name, exc)
                    opened = time.monotonic() - self.settings.max_age_seconds + 60
                    continue
                receiver.cancel()
                await ws.close()
                self.stats.reconnects["rotation"] = self.stats.reconnects.get("rotation", 0) + 1
                ws = self._ws = new_ws
                opened = time.monotonic()
                self.on_frame(first, time.time_ns())
                continue
            receiver.cancel()
            ws.transport.abort()
            return why

    async def _receive(self, ws: ClientConnection) -> str:
        recv = ws.recv
        on_frame = self.on_frame
        stats = self.stats
        clock = time.time_ns
        try:
            while True:
                frame = await recv(decode=False)
                ts = clock()
                stats.last_ns = ts
                on_frame(frame, ts)  # type: ignore[arg-type]
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            return CLOSE_REASONS.get(code, "other")

    async def _watch(self, opened: float) -> str:
        s = self.settings
        while True:
            await asyncio.sleep(min(1.0, s.stall_seconds / 4))
            if time.time_ns() - self.stats.last_ns > s.stall_seconds * 1e9:
                log.warning("%s: no frame for %.0fs: stalled", self.name, s.stall_seconds)
                return "stall"
            if time.monotonic() - opened > s.max_age_seconds:
                return "rotation"
