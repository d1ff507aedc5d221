"""The simulated multi-venue market: ``MarketModel``.

One underlying price per asset (``process.Underlying``); every instrument is priced from it:
  venue index   S (1 + venue offset), offset = the venue's ``price_offset_bps`` + a small OU;
  spot          the venue's index;
  perpetual     index (1 + premium), premium = the asset's OU + a small venue OU;
  quarterly     index (1 + b), b = (L + venue basis offset + slope T) T + noise, with L the
                asset's annualised basis level (OU), T years to expiry; the noise fades over
                the last two days, so b converges to 0 at expiry.
Each instrument has a ``SimBook`` that recentres on that fair price every step.

Time is a parameter: ``advance(until_ns)`` runs the whole steps (a grid of ``step_ns`` from
``start_ns``, also cut at expiries and scenario boundaries) that end at or before ``until_ns``
and returns their events in time order (a stable sort: equal timestamps keep generation
order). Steps never depend on how the caller chunks time, so neither do the events.
``now_ns`` is where it stopped; the state queries (``snapshot``, ``ticker``,
``open_interest``) describe that instant and are consistent with every event returned so far.
Events carry ``ts_local == ts_exchange``: the model has no network; whoever delivers them
stamps the receipt time.

Events (``venue`` is the feed id of the ``VenueSpec``, ``symbol`` the venue's own):
  Instrument        every listing: the initial ones first, then a new quarterly at the
                    instant its predecessor expires (``ts_local`` = listing time);
  BookChange        the book's changes (see ``book``), never snapshots: ``snapshot()`` is the
                    REST view;
  Quote             bookTicker: each change of the best bid/ask, ``update_id`` = its update;
  Trade             one per price level a taker order fills (an aggregate trade), ids rising;
  Liquidation       a forced order, with the taker walk it causes;
  DerivativeTicker  every ``ticker_interval_s`` per derivative: mark, index, and for
                    perpetuals the predicted funding rate, next funding time and interval;
                    at a funding settlement the ticker of that instant carries the realised
                    rate and the next settlement time instead; at a quarterly's expiry its
                    last ticker carries the settlement price as mark;
  OpenInterest      every ``open_interest_interval_s`` per derivative.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Instrument, OpenInterest
from analyzer.sim.book import BookParams, Flow, SimBook, ratio
from analyzer.sim.clock import NS, YEAR_NS, expiry_code, quarterly_expiries, utc_ns
from analyzer.sim.errors import SimError
from analyzer.sim.process import OU, FundingClock, FundingSettlement, Underlying
from analyzer.sim.scenarios import Fault, ScenarioRun, Schedule
from analyzer.sim.spec import AssetSpec, VenueSpec, World, default_world

DEFAULT_START_NS = utc_ns(2026, 1, 5)  # a Monday; 81 days before the March 2026 quarterly
SETTLEMENT_WINDOW_NS = 30 * 60 * NS  # quarterlies settle on the 30-minute index average
FUTURE_DEPTH = 0.3  # quarterlies are thinner than the perpetual of the same venue
OI_HALFLIFE_S = 6 * 3600.0
OI_NOISE = 0.02  # open interest also moves without trades seen here (other venues, RFQs)
_TS = attrgetter("ts_exchange")


class ExpiredContract(msgspec.Struct, frozen=True, gc=False):
    """A quarterly at its expiry: the settlement price (30-minute average of its venue's index),
    and its book's last mid and the index at that instant."""

    venue: str
    symbol: str
    ts: int
    settlement_price: float
    last_mid: float
    index: float


class AssetState:
    """The processes of one asset, shared by all its instruments."""

    __slots__ = ("basis", "premium", "price", "spec", "under")

    def __init__(self, spec: AssetSpec) -> None:
        self.spec = spec
        self.under = Underlying(spec.start_price, spec.vol_annual, spec.jumps_per_day,
                                spec.jump_sigma)
        self.price = spec.start_price
        self.basis = OU(spec.basis_mean, spec.basis_mean, spec.basis_sd,
                        spec.basis_halflife_h * 3600.0, lo=-0.05, hi=0.6)
        self.premium = OU(spec.premium_mean, spec.premium_mean, spec.premium_sd,
                          spec.premium_halflife_s)


class VenueAssetState:
    """What one venue adds to one asset: index offset and perpetual premium noise."""

    __slots__ = ("offset_bps", "premium")

    def __init__(self) -> None:
        self.offset_bps = OU(0.0, 0.0, 0.3, 300.0)
        self.premium = OU(0.0, 0.0, 0.00005, 600.0)


class SimInstrument:
    """One listed instrument: its description, fair price, book and derivative state."""

    __slots__ = ("asset", "book", "expiry", "extra_bps", "fair", "funding", "index", "info",
                 "market", "noise", "oi", "oi_base", "settle_n", "settle_sum", "va", "venue")

    def __init__(self, info: Instrument, venue: VenueSpec, asset: AssetState,
                 va: VenueAssetState) -> None:
        self.info = info
        self.venue = venue
        self.asset = asset
        self.va = va
        self.market = info.market
        self.expiry = info.expiry
        self.extra_bps = 0.0  # scenario displacement of the fair price
        self.noise = OU(0.0, 0.0, 0.00005, 60.0) if self.expiry else None
        self.fair = self.index = asset.price
        self.funding: FundingClock | None = None
        self.oi = self.oi_base = 0.0
        self.settle_sum = 0.0
        self.settle_n = 0
        self.book: SimBook

    def reprice(self, t_ns: int, price: float) -> None:
        va, v = self.va, self.venue
        index = price * (1.0 + (v.price_offset_bps + va.offset_bps.x) * 1e-4)
        if self.market == "spot":
            fair = index
        elif self.market == "perpetual":
            fair = index * (1.0 + self.asset.premium.x + va.premium.x)
        else:
            t = max(0, self.expiry - t_ns) / YEAR_NS
            level = self.asset.basis.x + v.basis_offset + self.asset.spec.basis_slope * t
            fair = index * (1.0 + level * t + self.noise.x * min(1.0, t * 365 / 2))
        if self.extra_bps:
            fair *= 1.0 + self.extra_bps * 1e-4
        self.index = index
        self.fair = fair


class MarketModel:
    """A deterministic simulated market of ``world`` (default: ``spec.default_world()``).

    seed      all randomness comes from one ``random.Random(seed)``: the same seed, world,
              schedule and start give the same events, whatever the ``advance`` chunking.
    start_ns  the model's clock at the start (default 2026-01-05 00:00 UTC); an
              ``expiry_roll`` in the schedule moves it so the expiry falls where it says.
    schedule  a ``Schedule`` or its text form (``"calm_contango,fleeting_spike@300s"``).
    fast      throughput mode (``Rates.fast``): one-second steps and lighter changes, for the
              same events per second.
    """

    def __init__(self, world: World | None = None, seed: int = 0, start_ns: int | None = None,
                 schedule: Schedule | str | None = None, *, fast: bool = False) -> None:
        world = (world or default_world()).validate()
        if fast:
            r = world.rates
            world = msgspec.structs.replace(world, rates=msgspec.structs.replace(
                r, step_s=1.0, updates_per_s=min(r.updates_per_s, 30.0), top_share=0.8))
        self.world = world
        self.schedule = (schedule if isinstance(schedule, Schedule)
                         else Schedule.parse(schedule or ""))
        self.seed = seed
        self.start_ns = self.schedule.pin_start(
            DEFAULT_START_NS if start_ns is None else start_ns)
        self.now_ns = self.start_ns
        r = world.rates
        self.step_ns = max(1, round(r.step_s * NS))
        self._ticker_ns = round(r.ticker_interval_s * NS) if r.ticker_interval_s > 0 else 0
        self._oi_ns = (round(r.open_interest_interval_s * NS)
                       if r.open_interest_interval_s > 0 else 0)
        self.rng = random.Random(seed)
        self._assets = {a.name: AssetState(a) for a in world.assets}
        self._va = {(v.feed, a.name): VenueAssetState()
                    for v in world.venues for a in world.assets if v.lists(a.name)}
        self._insts: dict[tuple[str, str], SimInstrument] = {}
        self._funding: list[FundingSettlement] = []
        self._expired: list[ExpiredContract] = []
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self._out: list[Any] = []  # events produced outside a step (first listings)
        for v in world.venues:
            for a in world.assets:
                if v.lists(a.name):
                    self._out += self._list_all(v, a.name, self.start_ns)
        self._next_exp = self._next_expiry()
        self._runs: list[ScenarioRun] = []
        self._faults: list[Fault] = []
        for sc in self.schedule:
            begin, end = sc.window(self.start_ns)
            expected = sc.expect(self, begin, end)
            self._runs.append(ScenarioRun(sc.name, begin, end, expected))
            self._faults += sc.faults(self, begin, end)
            ctx = dict(expected)  # the scenario's working copy (it may keep state in it)
            self.defer(begin, lambda sc=sc, ctx=ctx: sc.begin(self, ctx))
            if end is not None:
                self.defer(end, lambda sc=sc, ctx=ctx: sc.end(self, ctx))
        self._faults.sort(key=attrgetter("at_ns"))

    # -- public queries -----------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        """Instruments listed now (``ts_local`` is the listing time)."""
        return [i.info for i in self._insts.values()]

    def snapshot(self, feed: str, symbol: str) -> BookChange:
        """The whole book now, as a snapshot change (``first_id == last_id`` = the last id of
        the changes emitted so far; bids and asks best first)."""
        last, bids, asks = self.instrument_state(feed, symbol).book.snapshot()
        return BookChange(feed, symbol, self.now_ns, self.now_ns, True, bids, asks, last, last)

    def ticker(self, feed: str, symbol: str) -> DerivativeTicker:
        """Mark, index and (perpetuals) predicted funding now."""
        inst = self.instrument_state(feed, symbol)
        if inst.market == "spot":
            raise SimError(f"{feed} {symbol} is spot: no mark price or funding")
        return self._ticker(inst, self.now_ns)

    def open_interest(self, feed: str, symbol: str) -> OpenInterest:
        inst = self.instrument_state(feed, symbol)
        if inst.market == "spot":
            raise SimError(f"{feed} {symbol} is spot: no open interest")
        return self._oi_event(inst, self.now_ns)

    def funding_history(self, feed: str | None = None,
                        symbol: str | None = None) -> list[FundingSettlement]:
        """Realised funding settlements so far, oldest first."""
        return [f for f in self._funding
                if (feed is None or f.venue == feed) and (symbol is None or f.symbol == symbol)]

    def expired(self) -> list[ExpiredContract]:
        return list(self._expired)

    def faults(self) -> list[Fault]:
        """Transport faults declared by the schedule, for the exchange, by time."""
        return list(self._faults)

    def scenario_runs(self) -> list[ScenarioRun]:
        return list(self._runs)

    def symbol_at(self, feed: str, asset: str, contract: str, t_ns: int,
                  kind: str | None = None) -> str:
        """The symbol of ``contract`` (spot, perpetual, near, far) of an asset on a feed at
        t_ns, from the calendar (the listing rule is: the first n quarterlies after t);
        ``kind``: which spec of a feed that has a linear and an inverse one (default: its
        first)."""
        v = self.world.venue(feed, kind)
        self.world.asset(asset)
        if not v.lists(asset):
            raise SimError(f"{feed} does not list {asset}")
        if contract == "spot" and v.kind == "spot":
            return self._symbol(v, asset, "spot", None)
        if contract == "perpetual" and v.perpetual:
            return self._symbol(v, asset, "perpetual", None)
        if contract in ("near", "far") and v.quarterlies:
            exp = quarterly_expiries(t_ns, v.quarterlies)
            return self._symbol(v, asset, "future", exp[0] if contract == "near" else exp[-1])
        raise SimError(f"{feed} has no {contract!r} contract: use one of "
                       f"{', '.join(self._contracts(v))}")

    def instrument_state(self, feed: str, symbol: str) -> SimInstrument:
        inst = self._insts.get((feed, symbol))
        if inst is None:
            raise SimError(f"no instrument {feed} {symbol} listed at {self.now_ns}")
        return inst

    def find(self, feed: str, symbol: str) -> SimInstrument | None:
        return self._insts.get((feed, symbol))

    def asset_state(self, name: str) -> AssetState:
        self.world.asset(name)
        return self._assets[name]

    def defer(self, t_ns: int, fn: Callable[[], None]) -> None:
        """Call fn at the start of the step beginning at t_ns (steps are cut there)."""
        self._seq += 1
        heapq.heappush(self._heap, (t_ns, self._seq, fn))

    # -- running ------------------------------------------------------------------------------

    def advance(self, until_ns: int) -> list[Any]:
        """Run every step that ends at or before until_ns; their events, in time order."""
        out, self._out = self._out, []
        step = self.step_ns
        heap = self._heap
        while True:
            t0 = self.now_ns
            t1 = t0 + step - (t0 - self.start_ns) % step
            if heap and t0 < heap[0][0] < t1:
                t1 = heap[0][0]
            nxt = self._next_exp
            if nxt is not None and t0 < nxt < t1:
                t1 = nxt
            if t1 > until_ns:
                return out
            while heap and heap[0][0] <= t0:
                heapq.heappop(heap)[2]()
            out += self._step(t0, t1)
            self.now_ns = t1

    def _step(self, t0: int, t1: int) -> list[Any]:
        dt = (t1 - t0) / NS
        g = self.rng.gauss
        rnd = self.rng.random
        rho = self.world.correlation
        zc = g(0.0, 1.0)
        for a in self._assets.values():
            z = math.sqrt(rho) * zc + math.sqrt(1.0 - rho) * g(0.0, 1.0)
            a.under.step(dt, z, rnd(), g(0.0, 1.0))
            a.price = a.under.price
            a.basis.step(dt, g(0.0, 1.0))
            a.premium.step(dt, g(0.0, 1.0))
        for va in self._va.values():
            va.offset_bps.step(dt, g(0.0, 1.0))
            va.premium.step(dt, g(0.0, 1.0))
        ev: list[Any] = []
        insts = list(self._insts.values())
        for inst in insts:
            if inst.noise is not None:
                inst.noise.step(dt, g(0.0, 1.0))
            inst.reprice(t1, inst.asset.price)
            inst.book.run(t0, t1, inst.fair, ev)
        self._periodic(insts, t0, t1, dt, ev)
        ev.sort(key=_TS)
        self._expire(t1, ev)
        return ev

    def _periodic(self, insts: list[SimInstrument], t0: int, t1: int, dt: float,
                  ev: list[Any]) -> None:
        """Tickers, funding, open interest and settlement averages due in (t0, t1]."""
        tk = self._ticker_ns
        oi = self._oi_ns
        tickers = range((t0 // tk + 1) * tk, t1 + 1, tk) if tk else ()
        ois = range((t0 // oi + 1) * oi, t1 + 1, oi) if oi else ()
        for inst in insts:
            if inst.market == "spot":
                continue
            # the settlement ticker (funding, expiry) stands for the regular one at that time
            settled = {inst.expiry} if inst.expiry is not None and inst.expiry <= t1 else set()
            if inst.funding is not None:
                for ts, rate, avg, n in inst.funding.advance(t1, inst.fair / inst.index - 1.0):
                    f = inst.funding
                    self._funding.append(FundingSettlement(
                        inst.info.venue, inst.info.symbol, ts, rate, avg, n, f.interval_hours))
                    # the period's last prediction, at its end, is the settled rate
                    # (``analytics.funding.realised_funding`` reads it there)
                    ev.append(DerivativeTicker(inst.info.venue, inst.info.symbol, ts, ts,
                                               inst.fair, inst.index, rate, ts,
                                               f.interval_hours))
                    settled.add(ts)
            ev.extend(self._ticker(inst, ts) for ts in tickers if ts not in settled)
            for ts in ois:
                self._drift_oi(inst, min(dt, oi / NS))
                ev.append(self._oi_event(inst, ts))
            if inst.expiry is not None and inst.expiry - t1 < SETTLEMENT_WINDOW_NS:
                inst.settle_sum += inst.index
                inst.settle_n += 1

    def _expire(self, t1: int, ev: list[Any]) -> None:
        """Settle and delist the quarterlies expiring at t1, list their successors."""
        gone = [i for i in self._insts.values() if i.expiry is not None and i.expiry <= t1]
        if not gone:
            return
        for inst in gone:
            feed, sym = inst.info.venue, inst.info.symbol
            price = inst.settle_sum / inst.settle_n if inst.settle_n else inst.index
            best = inst.book.best()
            mid = (best[0] + best[1]) / 2 if best else inst.fair
            self._expired.append(ExpiredContract(feed, sym, t1, price, mid, inst.index))
            ev.append(DerivativeTicker(feed, sym, t1, t1, price, inst.index))
            del self._insts[(feed, sym)]
        due = {(i.info.venue, i.info.base) for i in gone}
        for v in self.world.venues:  # in the world's order, like the first listings
            for a in self.world.assets:
                if (v.feed, a.name) in due:
                    ev += self._list_all(v, a.name, t1, futures_only=True)
        self._next_exp = self._next_expiry()

    # -- listing ------------------------------------------------------------------------------

    def _next_expiry(self) -> int | None:
        exp = [i.expiry for i in self._insts.values() if i.expiry is not None]
        return min(exp) if exp else None

    @staticmethod
    def _contracts(v: VenueSpec) -> list[str]:
        if v.kind == "spot":
            return ["spot"]
        return ["perpetual"] * v.perpetual + ["near", "far"] * (v.quarterlies > 0)

    @staticmethod
    def _symbol(v: VenueSpec, asset: str, market: str, expiry: int | None) -> str:
        template = getattr(v.symbols, market)
        fields = {"base": asset, "quote": v.quote}
        if expiry is not None:
            fields |= {s: expiry_code(expiry, s) for s in ("yymmdd", "ddMMMyy", "yyyymmdd", "mYY")}
        return template.format(**fields)

    def _list_all(self, v: VenueSpec, asset: str, t_ns: int,
                  futures_only: bool = False) -> list[Instrument]:
        """List every contract of an asset on a venue that is due at t_ns and not yet listed."""
        wanted: list[tuple[str, int | None]] = []
        if not futures_only:
            wanted += [(m, None) for m in v.markets() if m != "future"]
        if v.quarterlies:
            wanted += [("future", e) for e in quarterly_expiries(t_ns, v.quarterlies)]
        return [
            self._list(v, self._assets[asset], market, expiry, sym, t_ns)
            for market, expiry in wanted
            if (v.feed, sym := self._symbol(v, asset, market, expiry)) not in self._insts
        ]

    def _list(self, v: VenueSpec, a: AssetState, market: str, expiry: int | None, sym: str,
              t_ns: int) -> Instrument:
        spec, rates = a.spec, self.world.rates
        inverse = v.kind == "inverse"
        tick = v.tick.get(spec.name, spec.tick[market])
        lot = 1.0 if inverse else spec.lot[market]
        contract = v.inverse_contract_size or spec.inverse_contract_size
        info = Instrument(v.feed, sym, v.exchange, market, spec.name, v.quote, inverse,
                          contract if inverse else 1.0, tick, lot, expiry, t_ns)
        inst = SimInstrument(info, v, a, self._va[(v.feed, spec.name)])
        inst.reprice(t_ns, a.price)
        units = inst.fair / contract if inverse else 1.0  # size per base unit
        depth = v.depth_factor * (FUTURE_DEPTH if market == "future" else 1.0)
        n_iv = max(1, round(rates.step_s * rates.book_changes_per_s))
        per_iv = rates.step_s / n_iv  # seconds per interval
        params = BookParams(
            tick=tick, lot=lot, levels=rates.levels, levels_per_bp=spec.levels_per_bp,
            top_size_lots=spec.top_size * depth * units / lot,
            trade_size_lots=spec.trade_size * depth * units / lot,
            spread_ticks=v.spread_ticks, sends_prev_id=v.sends_prev_id,
            is_derivative=market != "spot",
            liq_share=(min(0.2, rates.liquidations_per_hour / 3600.0 / rates.trades_per_s)
                       if rates.trades_per_s > 0 else 0.0),
        )
        rng = self.rng
        inst.book = SimBook(
            v.feed, sym, params, rng, fair=inst.fair,
            first_id=rng.randrange(10**9, 10**10), first_trade_id=rng.randrange(10**8, 10**9),
            n_intervals=n_iv,
            flow=Flow(updates=rates.updates_per_s * per_iv, trades=rates.trades_per_s * per_iv,
                      top_share=rates.top_share),
        )
        if market != "spot":
            notional = spec.open_interest_usd * depth
            inst.oi = inst.oi_base = (notional / contract if inverse else notional / inst.fair)
        if market == "perpetual":
            inst.funding = FundingClock(t_ns, v.funding_hours(spec.name), v.funding)
        self._insts[(v.feed, sym)] = inst
        return info

    # -- derivative state ---------------------------------------------------------------------

    def _ticker(self, inst: SimInstrument, ts: int) -> DerivativeTicker:
        f = inst.funding
        if f is None:
            return DerivativeTicker(inst.info.venue, inst.info.symbol, ts, ts, inst.fair,
                                    inst.index)
        return DerivativeTicker(inst.info.venue, inst.info.symbol, ts, ts, inst.fair, inst.index,
                                f.predicted(), f.next_settle, f.interval_hours)

    def _drift_oi(self, inst: SimInstrument, dt: float) -> None:
        """Open interest follows activity: traded size opens or closes positions at random
        (slightly more opening), and reverts toward its typical level."""
        rnd = self.rng.random
        traded = inst.book.volume * inst.info.lot_size
        inst.book.volume = 0
        oi = inst.oi + traded * (rnd() - 0.45) * 0.5
        oi += inst.oi_base * OI_NOISE * (rnd() - 0.5) * math.sqrt(dt / 3600.0)
        oi += (inst.oi_base - oi) * min(1.0, dt / OI_HALFLIFE_S)
        inst.oi = max(oi, 0.01 * inst.oi_base)

    def _oi_event(self, inst: SimInstrument, ts: int) -> OpenInterest:
        n, d = ratio(inst.info.lot_size)
        oi = (round(inst.oi * d / n) * n) / d
        usd = oi * inst.info.contract_size if inst.info.inverse else oi * inst.fair
        return OpenInterest(inst.info.venue, inst.info.symbol, ts, ts, oi, usd)
