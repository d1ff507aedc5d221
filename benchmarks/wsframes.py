"""The benchmarks' frame-counting websocket clients: the opening handshake and counting frames
in a byte buffer.

A deliberately minimal reader (server frames are unmasked) so the client costs next to nothing
and the server under test is what is measured.
"""

from __future__ import annotations

import base64
import os
import socket


def handshake(host: str, port: int, path: str) -> tuple[socket.socket, bytes]:
    """Open a websocket to ``path``; returns the socket and the bytes read past the handshake."""
    sock = socket.create_connection((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def scan(view: bytearray) -> tuple[int, int, int, bool]:
    """Walk the complete frames at the start of ``view``: (bytes consumed, text frames,
    text payload bytes, whether a close frame was seen)."""
    pos = frames = nbytes = 0
    closed = False
    while True:
        avail = len(view) - pos
        if avail < 2:
            break
        n = view[pos + 1] & 0x7F
        hdr = 2
        if n == 126:
            if avail < 4:
                break
            n = int.from_bytes(view[pos + 2 : pos + 4], "big")
            hdr = 4
        elif n == 127:
            if avail < 10:
                break
            n = int.from_bytes(view[pos + 2 : pos + 10], "big")
            hdr = 10
        if avail < hdr + n:
            break
        opcode = view[pos] & 0x0F
        if opcode == 0x1:
            frames += 1
            nbytes += n
        elif opcode == 0x8:
            closed = True
        pos += hdr + n
    return pos, frames, nbytes, closed
