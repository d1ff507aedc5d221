"""A simulated market as a source of the local exchange: one model drives every market.

    ex = LocalExchange(port=0)
    ex.add_simulation(Simulation(seed=7, schedule="sequence_gap@30s", speed=50, duration_s=120))
    await ex.start()          # the clock starts when a client subscribes (see ``wait_for``)
    await ex.wait_replays_done()  # a run without a duration ends with ex.simulation.stop()

One ``MarketModel`` (``analyzer.sim``) has one clock for all its venues. The simulation advances
it one model step at a time (0.1 s of market time by default) and releases the step's events
in time order, paced to ``speed`` (market seconds per wall second; 0: as fast as the subscribed
clients read, which their websocket backpressure decides). Each event is rendered into its
venue's frames (the venue's ``SymbolRenderer``, see ``emulator``) at release, only for the
streams someone subscribed (each symbol's ``Route`` holds the (render, send) pairs of each
event class), and written through the market's ``MarketFeed``: its routing, batching,
backpressure and fault API are the replay's. So the model runs at most one step ahead of the
wire, and REST answers come from it (the venue's ``SimMarket``): depth snapshots are the
model's book, trades are those released so far.

The model's declared transport faults (``MarketModel.faults()``) are applied at their market
time: ``stall`` freezes the feed's open connections for that many market seconds (they stay
open and answer pings; new connections are served), ``drop_depth`` keeps the next depth
changes of a symbol off the wire, ``close`` closes every connection of the feed with a code or
aborts them (when no client is connected, the next one to connect), ``malformed`` sends a
broken frame just before the feed's next one.

Determinism: frames depend on the seed, world, schedule, start and the subscriptions only, so a
client subscribed before the clock starts gets byte-identical frames run after run.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.exchange.emulator import MarketEmulator, SymbolRenderer, markets
from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.market import _NOT_JSON, Client, MarketFeed
from analyzer.sim import MarketModel, Schedule, World

log = logging.getLogger(__name__)

NS = 1_000_000_000
MS = 1_000_000
RETRY_NS = 100 * MS  # a close fault with no connection to close looks again this much later
# Frames between flushes and yields to the loop: 4x the replay's (~5 ms of work at full
# speed), as a flush serves the clients of three markets.
BATCH = 1024


Sink = Callable[[bytes], Any]  # takes the frames of one stream


class Route:
    """Where the frames of one symbol go: per event class, the (render, send) pairs of its
    subscribed streams (empty: nobody subscribed), so the release loop reads a slot instead of
    looking streams up. Refreshed whenever the feed's subscriptions change."""

    __slots__ = ("book", "feed", "liquidation", "open_interest", "quote", "renderer", "tape",
                 "ticker", "trade")

    def __init__(self, renderer: SymbolRenderer, feed: SimFeed) -> None:
        self.renderer = renderer
        self.feed = feed
        self.tape = renderer.tape
        self.refresh({})

    def refresh(self, sinks: dict[bytes, Sink]) -> None:
        out = self.renderer.outputs(sinks) if sinks else {}
        self.quote = tuple(out.get(Quote, ()))
        self.book = tuple(out.get(BookChange, ()))
        self.trade = tuple(out.get(Trade, ()))
        self.ticker = tuple(out.get(DerivativeTicker, ()))
        self.liquidation = tuple(out.get(Liquidation, ()))
        self.open_interest = tuple(out.get(OpenInterest, ()))


class SimFeed(MarketFeed):
    """One market of a simulation. Subscriptions, delivery and faults are ``MarketFeed``'s;
    streams, symbols, frames and REST answers come from the model through the venue's
    ``SimMarket``."""

    def __init__(
        self,
        emulator: MarketEmulator,
        sim: Simulation,
        weight_limit: int,
        send_timeout_s: float | None,
    ) -> None:
        super().__init__(emulator, None, weight_limit, send_timeout_s)
        self.sim = sim
        self.speed = sim.speed
        self.sim_market = emulator.simulated(sim.model)
        self.routes: dict[str, Route] = {}  # every symbol listed so far
        self.backlog: list[Any] | None = None  # events held back while the feed is stalled

    @property
    def tapes(self) -> dict[str, Any]:
        """The trades released so far, per symbol (REST history), as the venue keeps them."""
        return {symbol: route.tape for symbol, route in self.routes.items()}

    def _update_sinks(self) -> None:
        super()._update_sinks()
        for route in self.routes.values():
            route.refresh(self.sinks)

    def add_symbol(self, inst: Instrument) -> Route:
        renderer = self.sim_market.renderer(inst)
        route = self.routes[renderer.symbol] = Route(renderer, self)
        route.refresh(self.sinks)
        self.symbols.add(renderer.symbol)
        self.streams.update(renderer.streams())
        # subscriptions made before the listing count from now on
        self.active = sum(len(cs) for name, cs in self.subs.items() if name in self.streams)
        return route

    def _update_hold(self) -> None:
        self._hold = False  # the simulation decides when to wait, for all markets at once
        self.sim.wake()

    def now_ms(self) -> int:
        return self.sim.model.now_ns // MS

    # -- faults --------------------------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """The market sends nothing for ``seconds`` of wall time, to old and new connections
        alike (they stay open, pings go on); its events wait, so they are late, not lost."""
        self._flush()
        self._stall_until = asyncio.get_running_loop().time() + seconds
        if self.backlog is None:
            self.backlog = []
        self.sim.wake()

    def freeze_until(self, end_ns: int) -> int:
        """The connections open now get nothing until the market clock reaches ``end_ns``
        (they stay open and answer pings); new connections are served at once."""
        self._flush()
        frozen: list[Client] = []
        for c in list(self.clients):
            if not c.frozen:
                self._unroute(c, list(c.streams))
                c.frozen = True
                frozen.append(c)
        self.sim.at(end_ns, lambda: [self._unfreeze(c) for c in frozen])
        return len(frozen)

    def drop_next_depth(self, symbol: str, count: int = 1) -> None:
        """Keep the next ``count`` depth changes of a symbol off the wire (the model's book,
        hence the REST snapshot, has them)."""
        key = (self.feed_id, symbol.upper())
        self.sim.drops[key] = self.sim.drops.get(key, 0) + count

    # -- REST ----------------------------------------------------------------------------------

    def listed(self) -> list[Instrument]:
        return [i for i in self.sim.model.instruments() if i.venue == self.feed_id]

    def rest(self, endpoint: str, params: dict[str, str]) -> bytes:
        return self.sim_market.rest(self, endpoint, params)

    def depth_body(self, symbol: str, limit: int) -> dict[str, Any]:
        return self.sim_market.depth(self, symbol, limit)

    def stats(self) -> dict[str, Any]:
        return {
            "simulation": f"seed {self.sim.seed}, {', '.join(self.sim.scenarios) or 'no scenario'}",
            "speed": self.speed,
            "clients": len(self.clients),
            "subscriptions": sum(len(c.streams) for c in self.clients),
            "symbols": sorted(i.symbol for i in self.listed()),
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "done": self.sim.finished,
            "dropped": self.dropped,
            "injected": self.injected,
            "closed_by_fault": self.closed_by_fault,
            "slow_clients_dropped": self.slow_clients_dropped,
        }


class Simulation:
    """A ``MarketModel`` served by the local exchange on every market of its world.

    speed       market seconds per wall second; 0 runs as fast as the subscribed clients read
                (and waits while nobody is subscribed).
    start_ns    the market clock at the start (default: the model's, 2026-01-05 00:00 UTC).
    duration_s  market seconds to run, then the streams go quiet (None: forever).
    fast        one-second model steps (``Rates.fast``): the throughput mode.
    wait_for    feeds that must each have a subscriber before the clock starts (default: any
                one subscription starts it); tests wait for every feed they collect, so that no
                event is produced before anyone listens.
    autostart   False: the clock also waits for ``start()`` (a test starts it once its
                collector holds every book's first snapshot); ``stop()`` ends a run early.
    """

    def __init__(
        self,
        world: World | None = None,
        seed: int = 0,
        schedule: Schedule | str | None = None,
        *,
        speed: float = 1.0,
        start_ns: int | None = None,
        duration_s: float | None = None,
        fast: bool = False,
        wait_for: Iterable[str] | None = None,
        autostart: bool = True,
    ) -> None:
        if speed < 0:
            raise ExchangeError(
                f"speed must be 0 (as fast as clients read) or positive, not {speed}"
            )
        if duration_s is not None and duration_s <= 0:
            raise ExchangeError(f"duration must be positive, not {duration_s}")
        self.model = MarketModel(world, seed, start_ns, schedule, fast=fast)
        self.world = self.model.world
        self.seed = seed
        self.speed = float(speed)
        self.scenarios = self.model.schedule.names()
        self.start_ns = self.model.start_ns
        self.end_ns = None if duration_s is None else self.start_ns + round(duration_s * NS)
        served = markets()
        for v in self.world.venues:
            if v.feed not in served:
                raise ExchangeError(
                    f"the local exchange cannot serve feed {v.feed!r} "
                    f"(it serves {', '.join(served)})"
                )
        self.wait_for = tuple(wait_for) if wait_for is not None else None
        for feed_id in self.wait_for or ():
            if feed_id not in self.feed_ids:
                raise ExchangeError(f"wait_for: {feed_id!r} is not a feed of the simulated world")
        self._go = autostart
        self.feeds: dict[str, SimFeed] = {}
        self.drops: dict[tuple[str, str], int] = {}  # (feed, symbol) -> depth changes to drop
        self.finished = False
        self.done: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._lookup: dict[str, dict[str, Route]] = {}  # venue -> symbol -> route
        self._actions: list[tuple[int, int, str, Any, Any]] = []  # (at_ns, seq, what, feed, arg)
        self._seq = 0
        self._pending_bad: list[tuple[SimFeed, str]] = []
        self._horizon = 0
        self._unflushed = 0
        self._wall0 = 0.0
        self._sim0 = 0
        self.started_wall: float | None = None
        self.events_released = 0

    @property
    def feed_ids(self) -> list[str]:
        return list(dict.fromkeys(v.feed for v in self.world.venues))  # a feed may have 2 specs

    def start(self) -> None:
        """Let the clock start (``autostart=False``); it still waits for ``wait_for``."""
        self._go = True
        self.wake()

    def stop(self) -> None:
        """End the run at the market time reached: the streams go quiet, REST answers on."""
        now = self.model.now_ns
        self.end_ns = now if self.end_ns is None else min(self.end_ns, now)
        self.wake()

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def at(self, t_ns: int, fn: Any) -> None:
        """Run ``fn()`` when the release reaches market time t_ns."""
        self._push(t_ns, "call", None, fn)

    def _push(self, t_ns: int, what: str, feed: SimFeed | None, arg: Any) -> None:
        self._seq += 1
        heapq.heappush(self._actions, (t_ns, self._seq, what, feed, arg))

    # -- set-up by the exchange ----------------------------------------------------------------

    def attach(self, feeds: dict[str, SimFeed]) -> None:
        self.feeds = feeds
        for inst in self.model.instruments():
            self._list(inst)
        for fault in self.model.faults():
            feed = feeds.get(fault.feed)
            if feed is None:
                log.warning("fault %s on %s: not a market of this exchange", fault.kind, fault.feed)
                continue
            self._push(fault.at_ns, fault.kind, feed, fault.params)

    def bind(self) -> None:
        self.done = asyncio.Event()
        self._wake = asyncio.Event()

    def _list(self, inst: Instrument) -> None:
        feed = self.feeds[inst.venue]
        if inst.symbol in feed.routes:
            return
        self._lookup.setdefault(inst.venue, {})[inst.symbol] = feed.add_symbol(inst)

    # -- running -------------------------------------------------------------------------------

    def _anyone(self) -> bool:
        return any(f.active for f in self.feeds.values())

    async def _gate(self) -> None:
        assert self._wake is not None
        while True:
            if self.wait_for is None:
                ready = self._anyone()
            else:
                ready = all(self.feeds[f].active for f in self.wait_for)
            stopped = self.end_ns is not None and self.end_ns <= self.start_ns
            if (ready and self._go) or stopped:
                return
            self._wake.clear()
            await self._wake.wait()

    async def run(self) -> None:
        assert self.done is not None
        await self._gate()
        loop = asyncio.get_running_loop()
        model = self.model
        self._wall0 = loop.time()
        self._sim0 = model.now_ns
        self._horizon = self._sim0
        self.started_wall = time.monotonic()
        log.info("simulation starts at %d (seed %s, %s, speed %s)", model.now_ns, self.seed,
                 ", ".join(self.scenarios) or "no scenario", self.speed or "max")
        step = model.step_ns
        listing = model.now_ns  # the first chunk carries the first listings
        try:
            while self.end_ns is None or model.now_ns < self.end_ns:
                before = model.now_ns
                until = before + step
                if self.end_ns is not None:
                    until = min(until, self.end_ns)
                events = model.advance(until)
                if model.now_ns >= listing:
                    # Instruments are listed at the start and when contracts expire only
                    events = self._listings(events)
                    listing = min((i.expiry for i in model.instruments() if i.expiry),
                                  default=1 << 62)
                if self._pending_bad:
                    self._retry_bad(events)
                await self._release(events)
                if model.now_ns == before:  # an end off the model's step grid: stop short of it
                    break
            await self._flush()
            for feed in self.feeds.values():  # a stall still running at the end
                if feed.backlog is not None:
                    await asyncio.sleep(max(0.0, feed._stall_until - loop.time()))
            await self._end_stalls(force=True)
            await self._flush()
        finally:
            self.finished = True
            self.done.set()
        log.info("simulation done at %d, %d events released", model.now_ns, self.events_released)

    def _listings(self, events: list[Any]) -> list[Any]:
        """Register the instruments listed in this chunk; the other events, in order."""
        out = []
        for ev in events:
            if ev.__class__ is Instrument:
                self._list(ev)
            else:
                out.append(ev)
        return out

    async def _flush(self) -> None:
        """Write every market's batch, wait for slow readers, let the loop run; then handle
        stalls that ended and, as fast as possible, wait while nobody is subscribed."""
        self._unflushed = 0
        for feed in self.feeds.values():
            written = feed._flush()
            if written:
                await feed._drain(written)
        await asyncio.sleep(0)
        if any(f.backlog is not None for f in self.feeds.values()):
            await self._end_stalls()
        if self.speed == 0 and not self._anyone():
            assert self._wake is not None
            while not self._anyone():
                self._wake.clear()
                await self._wake.wait()

    async def _end_stalls(self, force: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        for feed in self.feeds.values():
            if feed.backlog is not None and (force or feed._stall_until <= now):
                events, feed.backlog = feed.backlog, None
                feed._stall_until = 0.0
                await self._release(events, paced=False)

    async def _pace(self, ts: int) -> None:
        await self._flush()
        loop = asyncio.get_running_loop()
        due = self._wall0 + (ts - self._sim0) / (self.speed * NS)
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        # everything due within the next millisecond goes out without another look at the clock
        self._horizon = self._sim0 + int((loop.time() + 0.001 - self._wall0) * self.speed * NS)

    async def _release(self, events: list[Any], paced: bool = True) -> None:
        """Render and send events in order (the exchange's hot loop: kept flat on purpose)."""
        lookup = self._lookup
        drops = self.drops
        pacing = paced and self.speed > 0
        actions = self._actions
        next_action = actions[0][0] if actions and paced else 1 << 62
        n = self._unflushed  # frames written since the last flush, across chunks
        for ev in events:
            ts = ev.ts_exchange
            if ts >= next_action:
                self._act(ts, events, ev)
                next_action = actions[0][0] if actions else 1 << 62
            if pacing and ts > self._horizon:
                await self._pace(ts)
                n = 0
            cls = ev.__class__
            if cls is Quote:
                r = lookup[ev.venue][ev.symbol]
                if r.feed.backlog is not None:
                    r.feed.backlog.append(ev)
                    continue
                for render, send in r.quote:
                    send(render(ev))
                    n += 1
            elif cls is BookChange:
                r = lookup[ev.venue][ev.symbol]
                if r.feed.backlog is not None:
                    r.feed.backlog.append(ev)
                    continue
                if drops and drops.get((ev.venue, ev.symbol)):
                    drops[ev.venue, ev.symbol] -= 1
                    r.feed.dropped += 1
                    continue
                for render, send in r.book:
                    send(render(ev))
                    n += 1
            elif cls is Trade:
                r = lookup[ev.venue][ev.symbol]
                if r.feed.backlog is not None:
                    r.feed.backlog.append(ev)
                    continue
                if r.tape is not None:
                    r.tape.add(ev)
                for render, send in r.trade:
                    send(render(ev))
                    n += 1
            elif cls is DerivativeTicker or cls is Liquidation or cls is OpenInterest:
                n += self._sparse(ev)
            if n >= BATCH:
                n = 0
                await self._flush()
        self._unflushed = n
        self.events_released += len(events)

    def _sparse(self, ev: DerivativeTicker | Liquidation | OpenInterest) -> int:
        """The rarer events (one a second or less per instrument): their render may decline
        (None: the venue sends nothing now)."""
        r = self._lookup[ev.venue][ev.symbol]
        if r.feed.backlog is not None:
            r.feed.backlog.append(ev)
            return 0
        cls = ev.__class__
        outputs = (r.ticker if cls is DerivativeTicker
                   else r.liquidation if cls is Liquidation else r.open_interest)
        n = 0
        for render, send in outputs:
            frame = render(ev)
            if frame is not None:
                send(frame)
                n += 1
        return n

    # -- faults --------------------------------------------------------------------------------

    def _act(self, ts: int, events: list[Any], current: Any) -> None:
        """Apply every action due at or before ts (just before the event at ts goes out)."""
        actions = self._actions
        while actions and actions[0][0] <= ts:
            at, _, what, feed, arg = heapq.heappop(actions)
            if what == "call":
                arg()
                continue
            log.info("%s: %s %s at %d", feed.feed_id, what, arg, at)
            if what == "stall":
                feed.freeze_until(at + round(float(arg.get("seconds") or 0) * NS))
            elif what == "drop_depth":
                feed.drop_next_depth(arg["symbol"], int(arg.get("count", 1)))
            elif what == "close":
                if feed.clients:
                    feed.close_clients(arg.get("code"))
                else:  # nobody connected (yet again): close the next connection instead
                    self._push(at + RETRY_NS, what, feed, arg)
            elif what == "malformed":
                pos = next(i for i, e in enumerate(events) if e is current)
                if not self._malformed(feed, arg.get("kind", "nonjson"), events, pos):
                    self._pending_bad.append((feed, arg.get("kind", "nonjson")))
            else:
                log.warning("%s: unknown fault %r ignored", feed.feed_id, what)

    def _retry_bad(self, events: list[Any]) -> None:
        pending, self._pending_bad = self._pending_bad, []
        for feed, kind in pending:
            if not self._malformed(feed, kind, events, 0):
                self._pending_bad.append((feed, kind))

    def _malformed(self, feed: SimFeed, kind: str, events: list[Any], pos: int) -> bool:
        """Send a broken frame to the subscribers of the feed's next frame (a depth frame for
        ``badprice``): half of that frame, an HTML error page, or a copy with a bad price."""
        lookup = self._lookup.get(feed.feed_id, {})
        for ev in events[pos:]:
            if getattr(ev, "venue", None) != feed.feed_id or ev.__class__ is Instrument:
                continue
            if kind == "badprice" and ev.__class__ is not BookChange:
                continue
            route = lookup.get(ev.symbol)
            if route is None:
                continue
            for key, frame in route.renderer.frames(ev):
                targets = feed.subs.get(key)
                if not targets:
                    continue
                if kind == "badprice":
                    bad = feed.emulator.corrupt_price(frame)
                elif kind == "truncated":  # cut on the wire (an ``encode`` venue's too)
                    wire = frame if feed.encode is None else feed.encode(frame)
                    bad = wire[: len(wire) // 2]
                else:
                    bad = _NOT_JSON
                feed._deliver(key, bad, targets)
                feed.injected += 1
                return True
        return False
