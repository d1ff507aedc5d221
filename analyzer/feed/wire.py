"""A lean websocket client for market data (RFC 6455, client side, no extensions).

Why not the websockets library for receiving: its receive path (a parser generator, a message
assembler, a queue and an ``await`` per message) costs ~7 µs per frame on our machines, more than
decoding, the book and storage together. Here frames are cut out of each TCP read inside
``data_received`` and handed to ``on_frame`` synchronously: no task switch, no queue. The
kernel's socket buffer and TCP window are the backpressure: while a frame is being processed
nothing more is read.

Handled: the opening handshake (ws:// and wss://), text and binary frames, fragmented messages,
server pings (answered at once), pongs, the closing handshake, frames up to ``max_size``.
Not offered: permessage-deflate (the venues' frames are small; inflating costs more CPU than
the bandwidth saves). A protocol violation closes the connection with 1002 and is reported
like any other close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
ABNORMAL = 1006  # closed without a close frame (RFC 6455 7.1.5)


class HandshakeError(OSError):
    """The server did not accept the websocket upgrade (the HTTP status is in the message)."""


def _mask(payload: bytes) -> bytes:
    """Client frames are masked with a random key (RFC 6455 5.3)."""
    key = os.urandom(4)
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return key + masked


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A single, final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _mask(payload)


class WireProtocol(asyncio.Protocol):
    def __init__(self, key: bytes, request: bytes, on_frame: Callable[[bytes, int], None],
                 max_size: int) -> None:
        self.key = key
        self.request = request
        self.on_frame = on_frame
        self.max_size = max_size
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()  # the close code
        self._head = b""  # handshake bytes until the blank line
        self._buf = b""  # bytes of an incomplete frame
        self._pending: list[bytes] = []  # chunks of a large incomplete frame
        self._pending_len = 0
        self._need = 0  # bytes needed before parsing again (large frames)
        self._fragments: list[bytes] | None = None
        self.last_pong = time.monotonic()
        # local time of the last data frame (text or binary): pings, pongs and control frames do
        # not count, so a venue that answers pings but sends no data is seen as stalled
        self.last_ns = 0
        self.frame_errors = 0

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed in handshake"))
        if not self.closed.done():
            self.closed.set_result(ABNORMAL)

    def data_received(self, data: bytes) -> None:
        if self.closed.done():
            return
        if not self.opened.done():
            data = self._handshake(data)
            if not data:
                return
        if self._need:
            self._pending.append(data)
            self._pending_len += len(data)
            if self._pending_len < self._need:
                return
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = self._need = 0
        elif self._buf:
            data = self._buf + data
            self._buf = b""
        self._parse(data)

    # -- internals --

    def _handshake(self, data: bytes) -> bytes:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > 65536:
                self._fail_open(HandshakeError("handshake response too large"))
            return b""
        head, rest = self._head[:end], self._head[end + 4 :]
        self._head = b""
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            self._fail_open(HandshakeError(f"server answered {lines[0].decode(errors='replace')}"))
            return b""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
        if headers.get(b"sec-websocket-accept") != accept:
            self._fail_open(HandshakeError("bad Sec-WebSocket-Accept in the handshake"))
            return b""
        self.opened.set_result(None)
        return rest

    def _fail_open(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _parse(self, data: bytes) -> None:
        ts = time.time_ns()  # one receipt time per read: these arrived together
        pos = 0
        n = len(data)
        on_frame = self.on_frame
        max_size = self.max_size
        while n - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1]
            # the usual frame first: a final text or binary frame of up to 64 KiB (a masked
            # frame's length byte is >= 128 and takes the general path below)
            if length < 126:
                start = pos + 2
            elif length == 126:
                if n - pos < 4:
                    break
                length = data[pos + 2] << 8 | data[pos + 3]
                start = pos + 4
            else:
                if length & 0x80:
                    return self._protocol_error("masked frame from the server")
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            if length > max_size:
                return self._protocol_error(f"frame of {length} bytes > max_size", 1009)
            end = start + length
            if end > n:
                if end - pos > 65536:  # a large frame: collect chunks, join once
                    self._pending = [data[pos:]]
                    self._pending_len = n - pos
                    self._need = end - pos
                    return None
                break
            payload = data[start:end]
            pos = end
            if b0 == 0x81 or b0 == 0x82:  # FIN + text / binary
                self.last_ns = ts
                try:
                    on_frame(payload, ts)
                except Exception:  # a bug downstream must not take the connection down
                    self.frame_errors += 1
                    log.exception("frame handler failed")
                continue
            opcode = b0 & 0x0F
            if opcode in (TEXT, BINARY, CONT):  # a fragment, or a final frame with RSV bits
                if opcode != CONT:
                    self.last_ns = ts
                    self._fragments = [payload]
                elif self._fragments is None:
                    return self._protocol_error("continuation without a first fragment")
                else:
                    self._fragments.append(payload)
                if b0 & 0x80:  # the message's final frame
                    message = b"".join(self._fragments)
                    self._fragments = None
                    try:
                        on_frame(message, ts)
                    except Exception:
                        self.frame_errors += 1
                        log.exception("frame handler failed")
            elif opcode == PING:
                self._write(PONG, payload)
            elif opcode == PONG:
                self.last_pong = time.monotonic()
            elif opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._write(CLOSE, payload[:2])
                self._finish(code)
                return None
            else:
                return self._protocol_error(f"unknown opcode {opcode}")
        self._buf = data[pos:]
        return None

    def _protocol_error(self, why: str, code: int = 1002) -> None:
        log.warning("websocket protocol error: %s", why)
        self._write(CLOSE, code.to_bytes(2, "big"))
        self._finish(code)

    def _finish(self, code: int) -> None:
        if not self.closed.done():
            self.closed.set_result(code)
        if self.transport is not None:
            self.transport.close()

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))


class WireConnection:
    """An open connection: ``send`` text, ``ping``, ``close``/``abort``; ``closed`` resolves to
    the close code (1006 if the connection dropped without a close frame)."""

    def __init__(self, protocol: WireProtocol) -> None:
        self.protocol = protocol
        self.closed = protocol.closed

    def send(self, text: bytes) -> None:
        self.protocol._write(TEXT, text)

    def ping(self) -> None:
        self.protocol._write(PING, b"")

    @property
    def last_pong(self) -> float:
        return self.protocol.last_pong

    @property
    def last_ns(self) -> int:
        return self.protocol.last_ns

    async def close(self, code: int = 1000, timeout: float = 2.0) -> None:
        """Closing handshake: send a close frame, wait briefly for the server's, then drop."""
        p = self.protocol
        p._write(CLOSE, code.to_bytes(2, "big"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(p.closed), timeout)
        self.abort()

    def abort(self) -> None:
        t = self.protocol.transport
        if t is not None:
            t.abort()
        if not self.closed.done():
            self.closed.set_result(ABNORMAL)


async def connect(url: str, on_frame: Callable[[bytes, int], None], *,
                  open_timeout: float = 10.0, max_size: int = 2**24) -> WireConnection:
    """Open a websocket to ``url`` (ws:// or wss://) delivering frames to ``on_frame``."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a websocket URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        f"User-Agent: analyzer\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()

    async def open_() -> WireConnection:
        _, protocol = await loop.create_connection(
            lambda: WireProtocol(key, request, on_frame, max_size),
            parts.hostname, port,
            ssl=ssl.create_default_context() if secure else None,
            server_hostname=parts.hostname if secure else None,
        )
        try:
            await protocol.opened
        except BaseException:
            if protocol.transport is not None:
                protocol.transport.abort()
            raise
        return WireConnection(protocol)

    return await asyncio.wait_for(open_(), open_timeout)
