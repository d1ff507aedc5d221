"""The lean websocket client against the websockets library's server (the reference peer)."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.http11 import Response

from analyzer.feed import wire


def run(coro):
    return asyncio.run(coro)


async def _with_server(handler, client):
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**24) as server:
        port = server.sockets[0].getsockname()[1]
        return await client(f"ws://127.0.0.1:{port}/stream?streams=a@b")


def test_messages_of_every_size_fragments_and_close_code() -> None:
    big = b"x" * 70_000  # 16-bit length is not enough
    huge = b"y" * (1 << 17)  # read in many chunks

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None and ws.request.path == "/stream?streams=a@b"
        await ws.send(b"hello", text=True)
        await ws.send(b"\x00\x01binary")
        await ws.send(big, text=True)
        await ws.send([b"frag", b"men", b"ted"], text=True)  # a fragmented message
        await ws.send(huge, text=True)
        echoed = await ws.recv()  # what the client sent, unmasked by the server
        await ws.send(f"echo {echoed}", text=True)
        await ws.close(1001, "going away")

    async def client(url: str) -> tuple[list[bytes], int]:
        got: list[bytes] = []
        conn = await wire.connect(url, lambda f, ts: got.append(f))
        conn.send(b'{"method":"SUBSCRIBE","params":["a@b"],"id":1}')
        code = await asyncio.wait_for(conn.closed, 5)
        return got, code

    got, code = run(_with_server(handler, client))
    assert got == [b"hello", b"\x00\x01binary", big, b"fragmented", huge,
                   b'echo {"method":"SUBSCRIBE","params":["a@b"],"id":1}']
    assert code == 1001


def test_pings_are_answered_and_pongs_seen() -> None:
    async def handler(ws: ServerConnection) -> None:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 2)  # resolves only if our client answered
        await ws.send("pong received", text=True)
        await ws.wait_closed()

    async def client(url: str) -> tuple[list[bytes], bool]:
        got: list[bytes] = []
        conn = await wire.connect(url, lambda f, ts: got.append(f))
        before = conn.last_pong
        conn.ping()
        for _ in range(100):
            if got and conn.last_pong > before:
                break
            await asyncio.sleep(0.02)
        await conn.close()
        return got, conn.last_pong > before

    got, ponged = run(_with_server(handler, client))
    assert got == [b"pong received"] and ponged


def test_rejected_upgrade_is_a_handshake_error() -> None:
    async def main() -> None:
        def reject(conn: ServerConnection, request: object) -> Response:
            return conn.respond(429, "Too many requests\n")

        async with serve(lambda ws: None, "127.0.0.1", 0, process_request=reject) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(wire.HandshakeError, match="429"):
                await wire.connect(f"ws://127.0.0.1:{port}/", lambda f, ts: None)

    run(main())


def test_abrupt_drop_is_1006() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("one", text=True)
        ws.transport.abort()

    async def client(url: str) -> int:
        conn = await wire.connect(url, lambda f, ts: None)
        return await asyncio.wait_for(conn.closed, 5)

    assert run(_with_server(handler, client)) == wire.ABNORMAL


def test_parser_survives_any_split_of_the_byte_stream() -> None:
    """Feed a stream of server frames cut at every possible point into the protocol."""
    frames = [
        Frame(Opcode.TEXT, b'{"stream":"x","data":{}}'),
        Frame(Opcode.BINARY, bytes(range(200))),
        Frame(Opcode.TEXT, b"a" * 300),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.TEXT, b"first ", fin=False),
        Frame(Opcode.CONT, b"second ", fin=False),
        Frame(Opcode.CONT, b"third"),
    ]
    stream = b"".join(f.serialize(mask=False) for f in frames)
    expected = [b'{"stream":"x","data":{}}', bytes(range(200)), b"a" * 300,
                b"first second third"]

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

        def is_closing(self) -> bool:
            return False

    def got_frame(got: list[bytes]):
        return lambda f, ts: got.append(f)

    async def main() -> None:
        key = base64.b64encode(b"0123456789abcdef")
        accept = base64.b64encode(hashlib.sha1(key + wire._GUID).digest())
        handshake = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        for cut in range(1, len(stream)):
            got: list[bytes] = []
            p = wire.WireProtocol(key, b"GET / HTTP/1.1\r\n\r\n", got_frame(got),
                                  2**20)
            t = Transport()
            p.connection_made(t)  # type: ignore[arg-type]
            p.data_received(handshake + stream[:cut])
            p.data_received(stream[cut:])
            assert got == expected, cut
            assert len(t.written) == 2  # the request, then a pong (masked) for the ping
            assert t.written[1][0] == 0x80 | 10

    run(main())
