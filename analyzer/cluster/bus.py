"""NATS JetStream for the shards' states: the connection, the stream, a shard's publisher and
the analytics process's durable consumer (``__init__``: why, and the docs).

The stream ``<PREFIX>_STATE`` takes the subjects ``<prefix>.state.<shard>``; file storage;
limits: ``state_max_age_seconds``, ``state_max_bytes`` (oldest dropped first), a two-minute
de-duplication window on ``Nats-Msg-Id``. The consumer is a durable pull consumer with
explicit acks over every shard's subject, delivering from the first message kept; a message not
acknowledged within ``ACK_WAIT_S`` is delivered again.

Numbering: a shard's states are ``(epoch, seq)``. A shard starting takes the numbering of the
last state of its subject still in the stream and goes on from the next ``seq`` (so its
states stay contiguous across a restart and the consumer can tell a lost one); with none kept,
it starts a new epoch, its start time in ns. A failed publish is counted and its ``seq`` not
reused (the server may have stored it: a second state under the same id would be dropped as a
duplicate); the consumer then sees the gap, counted as missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from analyzer.cluster.errors import ClusterError
from analyzer.config import Cluster

log = logging.getLogger(__name__)

ACK_WAIT_S = 60.0  # a state held this long unacknowledged is delivered again
DUPLICATE_WINDOW_S = 120.0
H_SHARD, H_EPOCH, H_SEQ = "Analyzer-Shard", "Analyzer-Epoch", "Analyzer-Seq"
H_PART, H_PARTS, H_TS, H_BOOKS = "Analyzer-Part", "Analyzer-Parts", "Analyzer-Ts", "Analyzer-Books"


def stream_name(cl: Cluster) -> str:
    return f"{cl.subject_prefix.upper()}_STATE"


def subject(cl: Cluster, shard: str) -> str:
    return f"{cl.subject_prefix}.state.{shard}"


async def connect(url: str, name: str, timeout: float = 10.0) -> Client:
    """A connection that reconnects for ever (a NATS restart is waited out, not fatal);
    ClusterError if the server cannot be reached at start."""
    async def error_cb(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    try:
        return await asyncio.wait_for(nats.connect(
            [u.strip() for u in url.split(",")], name=name, max_reconnect_attempts=-1,
            reconnect_time_wait=1, connect_timeout=2, error_cb=error_cb,
            allow_reconnect=True), timeout)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise ClusterError(f"cannot connect to NATS at {url}: {exc or type(exc).__name__}"
                           ) from None


async def ensure_stream(js: JetStreamContext, cl: Cluster) -> None:
    """Create the state stream, or bring its limits to the configuration's."""
    config = api.StreamConfig(
        name=stream_name(cl), subjects=[f"{cl.subject_prefix}.state.*"],
        storage=api.StorageType.FILE, retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD, max_age=cl.state_max_age_seconds,
        max_bytes=cl.state_max_bytes, duplicate_window=DUPLICATE_WINDOW_S,
    )
    try:
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:  # exists with other limits
            await js.update_stream(config)
    except nats.errors.Error as exc:
        raise ClusterError(f"cannot create the NATS stream {config.name}: {exc}") from None


@dataclass
class PublisherStats:
    states: int = 0
    parts: int = 0
    bytes: int = 0
    errors: int = 0
    last_bytes: int = 0
    last_seconds: float = 0.0  # encoding and publishing the last state


class Publisher:
    """A shard's side: ``resume()`` once, then ``publish(payloads, ts, books)`` a state."""

    def __init__(self, js: JetStreamContext, cl: Cluster, shard: str) -> None:
        self.js = js
        self.stream = stream_name(cl)
        self.subject = subject(cl, shard)
        self.shard = shard
        self.epoch = 0
        self.seq = 0
        self.stats = PublisherStats()

    async def resume(self) -> None:
        try:
            last = await self.js.get_last_msg(self.stream, self.subject)
            h = last.headers or {}
            self.epoch, self.seq = int(h[H_EPOCH]), int(h[H_SEQ])
            log.info("%s: states go on from epoch %d seq %d", self.shard, self.epoch, self.seq)
        except (nats.js.errors.NotFoundError, KeyError, ValueError):
            self.epoch, self.seq = time.time_ns(), 0

    async def publish(self, payloads: list[bytes], ts: int, books: int) -> bool:
        self.seq += 1
        base = {H_SHARD: self.shard, H_EPOCH: str(self.epoch), H_SEQ: str(self.seq),
                H_PARTS: str(len(payloads)), H_TS: str(ts), H_BOOKS: str(books)}
        try:
            for i, payload in enumerate(payloads):
                await self.js.publish(self.subject, payload, timeout=5.0, stream=self.stream,
                                      headers={**base, H_PART: str(i), "Nats-Msg-Id":
                                               f"{self.shard}:{self.epoch}:{self.seq}:{i}"})
        except (TimeoutError, nats.errors.Error) as exc:
            self.stats.errors += 1
            if self.stats.errors <= 10 or self.stats.errors % 100 == 0:
                log.warning("%s: publishing state %d failed (%s)", self.shard, self.seq, exc)
            return False
        self.stats.states += 1
        self.stats.parts += len(payloads)
        n = sum(len(p) for p in payloads)
        self.stats.bytes += n
        self.stats.last_bytes = n
        return True


@dataclass
class Received:
    """One state's parts as they arrive (payloads decoded only when the state is used)."""

    shard: str
    epoch: int
    seq: int
    ts: int
    books: int
    parts: int
    payloads: dict[int, bytes] = field(default_factory=dict)
    msgs: list[Msg] = field(default_factory=list)
    stream_seq: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.epoch, self.seq)

    @property
    def complete(self) -> bool:
        return len(self.payloads) == self.parts


class Consumer:
    """The analytics process's durable pull consumer. ``run()`` fetches for ever and hands
    each complete state, in order, to ``on_state``; a state already applied (``applied``:
    shard -> (epoch, seq), restored from the store at start) is acknowledged and dropped."""

    def __init__(self, js: JetStreamContext, cl: Cluster,
                 on_state: Callable[[Received], None],
                 applied: dict[str, tuple[int, int]]) -> None:
        self.js = js
        self.cl = cl
        self.on_state = on_state
        self.applied = dict(applied)
        self.partial: dict[str, Received] = {}
        self.duplicates: dict[str, int] = {}
        self.incomplete: dict[str, int] = {}
        self.missed: dict[str, int] = {}
        self.errors = 0
        self._sub: JetStreamContext.PullSubscription | None = None

    async def subscribe(self) -> None:
        config = api.ConsumerConfig(
            durable_name=self.cl.consumer, ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL, ack_wait=ACK_WAIT_S, max_deliver=-1,
            max_ack_pending=-1)
        try:
            self._sub = await self.js.pull_subscribe(
                f"{self.cl.subject_prefix}.state.*", durable=self.cl.consumer,
                stream=stream_name(self.cl), config=config)
            await self._rewind()
        except nats.errors.Error as exc:
            raise ClusterError(f"cannot subscribe the durable consumer {self.cl.consumer}: "
                               f"{exc}") from None

    async def _rewind(self) -> None:
        """Deliver again, at once and in stream order, everything after the consumer's ack
        floor: what a killed predecessor had received but not acknowledged would otherwise
        come back only after ``ACK_WAIT_S``, behind newer states of its shard (JetStream's
        consumer reset, ADR-60, nats-server 2.14+; older servers: the consumer is created
        again from the floor)."""
        stream = stream_name(self.cl)
        try:
            await self.js.reset_consumer(stream, self.cl.consumer)
            return
        except nats.js.errors.APIError as exc:
            log.info("consumer reset refused (%s): creating the consumer again", exc)
        info = await self.js.consumer_info(stream, self.cl.consumer)
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        await self.js.delete_consumer(stream, self.cl.consumer)
        await self.js.add_consumer(stream, api.ConsumerConfig(
            durable_name=self.cl.consumer, ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=floor + 1,
            ack_wait=ACK_WAIT_S, max_deliver=-1, max_ack_pending=-1,
            filter_subject=f"{self.cl.subject_prefix}.state.*"))

    async def run(self) -> None:
        assert self._sub is not None
        while True:
            try:
                msgs = await self._sub.fetch(256, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except nats.errors.Error as exc:  # (a reconnect under way): try again shortly
                self.errors += 1
                log.warning("nats: fetching states failed (%s)", exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._receive(msg)

    async def _receive(self, msg: Msg) -> None:
        h = msg.headers or {}
        try:
            shard, epoch, seq = h[H_SHARD], int(h[H_EPOCH]), int(h[H_SEQ])
            part, parts, ts, books = int(h[H_PART]), int(h[H_PARTS]), int(h[H_TS]), int(h[H_BOOKS])
        except (KeyError, ValueError):
            self.errors += 1
            log.warning("nats: a state message without its headers (%r): dropped", h)
            await _ack(msg)
            return
        if (epoch, seq) <= self.applied.get(shard, (-1, -1)):
            self.duplicates[shard] = self.duplicates.get(shard, 0) + 1
            await _ack(msg)
            return
        cur = self.partial.get(shard)
        if cur is not None and cur.key != (epoch, seq):
            # a newer state began before this one completed (its shard died mid-state)
            self.incomplete[shard] = self.incomplete.get(shard, 0) + 1
            for m in cur.msgs:
                await _ack(m)
            cur = None
        if cur is None:
            cur = self.partial[shard] = Received(shard, epoch, seq, ts, books, parts)
        cur.payloads[part] = msg.data
        cur.msgs.append(msg)
        cur.stream_seq = max(cur.stream_seq, msg.metadata.sequence.stream)
        if cur.complete:
            del self.partial[shard]
            last = self.applied.get(shard)
            if last is not None and last[0] == epoch and seq > last[1] + 1:
                self.missed[shard] = self.missed.get(shard, 0) + seq - last[1] - 1
            self.applied[shard] = (epoch, seq)
            self.on_state(cur)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


async def _ack(msg: Msg) -> None:
    with contextlib.suppress(nats.errors.Error):
        await msg.ack()


async def ack_all(msgs: list[Msg]) -> None:
    for m in msgs:
        await _ack(m)
