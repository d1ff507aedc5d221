"""Reconnect discipline (issue 14, defect 2) against a real websocket server on loopback: every
reconnect, whatever the close, goes through capped, jittered exponential backoff that only a
healthy period resets; 1008 also slows subscribing."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from websockets.asyncio.server import ServerConnection, serve

from analyzer.feed.connection import Connection, ConnectionSettings


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
