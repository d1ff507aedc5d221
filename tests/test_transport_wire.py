"""The websocket client's frame parser (analyzer/feed/wire.py) on the paths its fast path
separates: a final text or binary frame is delivered at once; everything else (RSV bits,
fragments, control frames, 64-bit lengths, masked or oversized frames) takes the general path
and must behave as before. Frames are made by the websockets library (the reference peer) and
fed to the protocol in every cut of the byte stream."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest
from websockets.frames import Frame, Opcode

from analyzer.feed import wire

KEY = base64.b64encode(b"0123456789abcdef")
HANDSHAKE = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: " + base64.b64encode(hashlib.sha1(KEY + wire._GUID).digest())
             + b"\r\n\r\n")


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def feed(chunks: list[bytes], max_size: int = 2**20
         ) -> tuple[list[tuple[bytes, int]], wire.WireProtocol, Transport]:
    """The frames delivered (with their receipt times) when ``chunks`` arrive one read each."""
    got: list[tuple[bytes, int]] = []

    async def main() -> tuple[wire.WireProtocol, Transport]:
        p = wire.WireProtocol(KEY, b"GET / HTTP/1.1\r\n\r\n", lambda f, ts: got.append((f, ts)),
                              max_size)
        t = Transport()
        p.connection_made(t)  # type: ignore[arg-type]
        p.data_received(HANDSHAKE)
        for c in chunks:
            p.data_received(c)
        return p, t

    p, t = asyncio.run(main())
    return got, p, t


def serialize(*frames: Frame) -> bytes:
    return b"".join(f.serialize(mask=False) for f in frames)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_every_length_encoding_in_every_cut(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    stream = serialize(Frame(Opcode.TEXT, payload), Frame(Opcode.BINARY, b"after"))
    cuts = range(1, len(stream)) if len(stream) < 400 else [1, 2, 3, 4, 9, 10, 11, 200,
                                                            len(stream) - 6, len(stream) - 1]
    for cut in cuts:
        got, _, _ = feed([stream[:cut], stream[cut:]])
        assert [f for f, _ in got] == [payload, b"after"], cut


def test_final_frames_with_rsv_bits_are_delivered_whole() -> None:
    """A frame with an RSV bit set (an extension we did not negotiate) was delivered as it
    came before the fast path: it still is, not taken for the first fragment of a message."""
    rsv1_text = bytes((0x80 | 0x40 | 0x1, 3)) + b"one"  # (the library refuses to make them)
    rsv2_binary = bytes((0x80 | 0x20 | 0x2, 3)) + b"two"
    got, p, t = feed([rsv1_text + rsv2_binary + serialize(Frame(Opcode.TEXT, b"three"))])
    assert [f for f, _ in got] == [b"one", b"two", b"three"]
    assert p._fragments is None and not t.closed


def test_fragments_around_a_ping_and_one_receipt_time_per_read() -> None:
    stream = serialize(Frame(Opcode.TEXT, b"a"), Frame(Opcode.TEXT, b"first ", fin=False),
                       Frame(Opcode.PING, b"p"), Frame(Opcode.CONT, b"second ", fin=False),
                       Frame(Opcode.CONT, b"third"), Frame(Opcode.BINARY, b"b"))
    got, p, t = feed([stream])
    assert [f for f, _ in got] == [b"a", b"first second third", b"b"]
    assert len({ts for _, ts in got}) == 1 and p.last_ns == got[0][1]
    assert t.written[-1][0] == 0x80 | wire.PONG  # the ping answered, masked (client frame)


def test_pings_and_pongs_do_not_move_the_data_clock() -> None:
    got, p, _ = feed([serialize(Frame(Opcode.TEXT, b"data"))])
    data_ns = p.last_ns
    assert data_ns == got[0][1]
    p.data_received(serialize(Frame(Opcode.PING, b""), Frame(Opcode.PONG, b"")))
    assert p.last_ns == data_ns


def test_masked_server_frame_is_a_protocol_error() -> None:
    frame = Frame(Opcode.TEXT, b"masked").serialize(mask=True)
    got, p, t = feed([serialize(Frame(Opcode.TEXT, b"ok")) + frame])
    assert [f for f, _ in got] == [b"ok"]
    assert p.closed.result() == 1002 and t.closed


@pytest.mark.parametrize("size", [200, 70_000])
def test_frame_over_max_size_closes_with_1009(size: int) -> None:
    got, p, _ = feed([serialize(Frame(Opcode.TEXT, b"x" * size))], max_size=100)
    assert got == [] and p.closed.result() == 1009


def test_continuation_without_a_first_fragment_is_a_protocol_error() -> None:
    got, p, _ = feed([serialize(Frame(Opcode.CONT, b"orphan"))])
    assert got == [] and p.closed.result() == 1002


def test_close_frame_ends_with_its_code_after_the_frames_before_it() -> None:
    close = Frame(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"going away")
    got, p, t = feed([serialize(Frame(Opcode.TEXT, b"last"), close, Frame(Opcode.TEXT, b"x"))])
    assert [f for f, _ in got] == [b"last"]
    assert p.closed.result() == 1001 and t.closed
