"""Reconnect discipline (issue 14, defect 2) against a real websocket server on loopback: every
reconnect, whatever the close, goes through capped, jittered exponential backoff that only a
healthy period resets; 1008 also slows subscribing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from analyzer.feed.connection import Connection, ConnectionSettings, Hooks


async def run_against(handler, seconds: float, **settings: float) -> tuple[Connection, list]:
    accepted: list[float] = []

    async def wrapped(ws: ServerConnection) -> None:
        accepted.append(time.monotonic())
        await handler(ws)

    async with serve(wrapped, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = Connection("test", f"ws://127.0.0.1:{port}/stream", [b'{"method":"SUBSCRIBE"}'],
                          lambda frame, ts: None, ConnectionSettings(**settings))
        task = asyncio.create_task(conn.run())
        await asyncio.sleep(seconds)
        conn.stop()
        await asyncio.wait_for(task, 5)
    return conn, accepted


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1008])
def test_a_server_that_closes_at_once_is_not_hammered(code: int) -> None:
    async def close_at_once(ws: ServerConnection) -> None:
        await ws.close(code)

    conn, accepted = asyncio.run(run_against(close_at_once, 6.0, backoff_initial=0.5,
                                             backoff_max=30.0))
    # 0.25-0.5, 0.5-1, 1-2, 2-4 s: at most 5 connections in 6 s (without backoff: ~15)
    assert 3 <= len(accepted) <= 5, accepted
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert conn.stats.reconnects == {str(code): len(accepted)}
    if code == 1008:  # a policy violation: we were too fast, subscribe slower
        assert conn.subscribe_interval == min(
            5.0, ConnectionSettings().subscribe_interval * 2 ** len(accepted))
    else:
        assert conn.subscribe_interval == ConnectionSettings().subscribe_interval


def test_the_backoff_is_capped() -> None:
    async def close_at_once(ws: ServerConnection) -> None:
        await ws.close(1011)

    conn, accepted = asyncio.run(run_against(close_at_once, 4.0, backoff_initial=0.2,
                                             backoff_max=0.4))
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    assert len(accepted) >= 8 and max(gaps) < 0.6, gaps
    assert 0.2 <= conn.delay <= 0.4


def test_a_healthy_period_resets_the_backoff() -> None:
    """A connection that delivered data for healthy_seconds reconnects at the initial delay."""

    async def healthy_then_close(ws: ServerConnection) -> None:
        for _ in range(8):
            await ws.send('{"stream":"x","data":{}}')
            await asyncio.sleep(0.05)
        await ws.close(1001)

    _conn, accepted = asyncio.run(run_against(healthy_then_close, 4.0, backoff_initial=0.2,
                                             healthy_seconds=0.3))
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    # each session lasts ~0.4 s and is healthy: every wait is 0.1-0.2 s, never growing
    assert len(accepted) >= 5 and max(gaps) < 0.4 + 0.2 + 0.15, gaps


# -- venue hooks: application-level heartbeats, control frames, restart notices --------------


def _control(frame: bytes) -> str | None:
    """A venue like OKX: text ping/pong, subscribe acks, a restart notice."""
    if frame == b"pong":
        return "pong"
    if frame.startswith(b'{"event":"subscribe"'):
        return "ack"
    if frame.startswith(b'{"event":"notice"'):
        return "restart"
    return None


async def run_hooked(handler, seconds: float, **settings: float
                     ) -> tuple[Connection, list[bytes], list[float]]:
    accepted: list[float] = []
    delivered: list[bytes] = []

    async def wrapped(ws: ServerConnection) -> None:
        accepted.append(time.monotonic())
        await handler(ws)

    async with serve(wrapped, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        conn = Connection("test", f"ws://127.0.0.1:{port}/ws", [b'{"op":"subscribe"}'],
                          lambda frame, ts: delivered.append(frame),
                          ConnectionSettings(**settings),
                          hooks=Hooks(_control, b"ping", heartbeat_seconds=0.4))
        task = asyncio.create_task(conn.run())
        await asyncio.sleep(seconds)
        conn.stop()
        await asyncio.wait_for(task, 5)
    return conn, delivered, accepted


def test_an_application_heartbeat_is_sent_and_its_pongs_are_not_data() -> None:
    """The venue gets our text ping every heartbeat period and answers pong; pongs keep the
    heartbeat satisfied but are neither delivered nor data: a stream of pongs alone stalls."""
    pings: list[float] = []

    async def pong_only(ws: ServerConnection) -> None:
        await ws.send('{"event":"subscribe","arg":{"channel":"books"}}')
        async for msg in ws:
            if msg == "ping":
                pings.append(time.monotonic())
                await ws.send("pong")

    conn, delivered, accepted = asyncio.run(run_hooked(pong_only, 3.0, stall_seconds=1.5,
                                                       backoff_initial=5.0))
    assert len(pings) >= 2  # every 0.4 s until the stall
    assert delivered and all(f.startswith(b'{"event":"subscribe"') for f in delivered)
    assert conn.stats.reconnects.get("stall") == 1, conn.stats.reconnects
    assert len(accepted) == 1


def test_a_venue_that_stops_answering_pings_is_left() -> None:
    async def data_without_pongs(ws: ServerConnection) -> None:
        while True:
            await ws.send('{"arg":{"channel":"books"},"data":[]}')
            await asyncio.sleep(0.05)

    conn, delivered, _ = asyncio.run(run_hooked(data_without_pongs, 2.0, backoff_initial=5.0))
    assert conn.stats.reconnects == {"ping_timeout": 1}
    assert len(delivered) > 10


def test_a_restart_notice_rotates_without_losing_frames() -> None:
    """The notice reaches the decoder, a new connection is opened and receives before the old
    one is closed: every frame either connection sent was delivered."""
    sent: list[int] = []
    counter = itertools.count()

    async def notice_then_data(ws: ServerConnection) -> None:
        first = not sent

        async def answer_pings() -> None:
            async for msg in ws:
                if msg == "ping":
                    await ws.send("pong")

        reader = asyncio.create_task(answer_pings())
        try:
            for i in range(10_000):
                n = next(counter)
                await ws.send(f'{{"n":{n}}}')
                sent.append(n)
                if first and i == 5:
                    await ws.send('{"event":"notice","code":"64008","msg":"restart in 30s"}')
                await asyncio.sleep(0.02)
        except ConnectionClosed:
            pass  # the old connection, closed by the rotation
        finally:
            reader.cancel()

    conn, delivered, accepted = asyncio.run(run_hooked(notice_then_data, 2.5,
                                                       backoff_initial=5.0))
    assert len(accepted) == 2  # the rotation's new connection, no reconnect
    assert conn.stats.reconnects == {"rotation": 1}
    assert b'{"event":"notice","code":"64008","msg":"restart in 30s"}' in delivered
    got = {int(f[5:-1]) for f in delivered if f.startswith(b'{"n":')}
    # every frame sent was delivered, across the rotation; only the last one written may still
    # have been on the wire when the client stopped at the end of the test
    assert got <= set(sent) and set(sent) - got <= {sent[-1]}
    assert len(got) > 50  # (well past the notice, sent after frame 5)


def test_compressed_frames_are_inflated_before_control_and_venue_pings_answered() -> None:
    """A venue like BingX: every frame gzip binary, pings included. Each frame is seen raw (the
    capture), inflated, then looked at: the venue's ``Ping`` gets our ``Pong`` and is not data;
    a frame that does not inflate is reported and the stream goes on."""
    import gzip

    raw: list[bytes] = []
    bad: list[bytes] = []
    delivered: list[bytes] = []
    pongs: list[str] = []

    frames = [gzip.compress(b'{"n":1}'), gzip.compress(b"Ping"),
              gzip.compress(b'{"n":2}')[:-6], gzip.compress(b'{"n":3}')]  # the third truncated

    async def venue(ws: ServerConnection) -> None:
        for f in frames:
            await ws.send(f)
        with contextlib.suppress(ConnectionClosed):
            async for msg in ws:  # (appended as they come: the client ends the connection)
                if msg != '{"op":"subscribe"}':
                    pongs.append(msg)  # noqa: PERF401

    def control(frame: bytes) -> str | None:
        return "ping" if frame == b"Ping" else None

    hooks = Hooks(control, reply=lambda frame: b"Pong", inflate=gzip.decompress,
                  raw=lambda ts, frame: raw.append(frame), bad=lambda exc, f: bad.append(f))

    async def main() -> None:
        async with serve(venue, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            conn = Connection("test", f"ws://127.0.0.1:{port}/ws", [b'{"op":"subscribe"}'],
                              lambda frame, ts: delivered.append(frame), ConnectionSettings(),
                              hooks=hooks)
            task = asyncio.create_task(conn.run())
            await asyncio.sleep(0.6)
            conn.stop()
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert delivered == [b'{"n":1}', b'{"n":3}']
    assert pongs == ["Pong"]
    assert raw == frames
    assert bad == [frames[2]]
