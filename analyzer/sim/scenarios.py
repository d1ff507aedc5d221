"""Scenarios of the simulated market, selectable by name and combinable in a ``Schedule``.

A scenario has a start offset ``at_s`` (from the model's start) and a ``duration_s``; it acts on
the events after its start up to its end (the model cuts its steps there), and it states what
the analyzer should conclude from it in ``expected`` (resolved against the model's calendar:
feeds, symbols, times), so that tests can assert it.

Two kinds:
  market scenarios act in the model (basis, premium, books) between their start and end;
  transport scenarios only *declare* faults, as timed ``Fault`` records for the exchange that
  renders the model's events into each venue's protocol to apply. Fault kinds follow the local
  exchange's: ``stall`` {seconds} (the feed sends nothing, connections stay open, pings go
  on), ``drop_depth`` {symbol, count} (the next ``count`` depth changes of symbol never go
  out; the venue's book still has them), ``close`` {code: 1000|1001|1008|1011|None} (None:
  TCP abort without a close frame), ``malformed`` {kind: truncated|nonjson|badprice}.

``Schedule.parse("calm_contango,fleeting_spike@300s,stale_feed@10m+90s")``: comma-separated
``name[@offset][+duration]``, times in ms, s (default), m or h.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from analyzer.sim.clock import NS, quarterly_expiries
from analyzer.sim.errors import SimError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from analyzer.sim.model import MarketModel


class Fault(msgspec.Struct, frozen=True):
    """A transport fault for the exchange to apply at ``at_ns`` on ``feed``."""

    at_ns: int
    feed: str
    kind: str  # stall | drop_depth | close | malformed
    params: dict[str, Any] = {}


class ScenarioRun(msgspec.Struct, frozen=True):
    """A scheduled scenario, resolved: its window (end None: to the end of the run) and what
    the analyzer should conclude."""

    name: str
    start_ns: int
    end_ns: int | None
    expected: dict[str, Any]


class Scenario(msgspec.Struct, kw_only=True):
    """Base of all scenarios. Subclasses set ``name`` and override the hooks they need."""

    name: ClassVar[str] = ""
    at_s: float = 0.0
    duration_s: float | None = 60.0

    def window(self, start_ns: int) -> tuple[int, int | None]:
        begin = start_ns + round(self.at_s * NS)
        return begin, None if self.duration_s is None else begin + round(self.duration_s * NS)

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        """What the analyzer should conclude (targets resolved against the model)."""
        return {}

    def faults(self, model: MarketModel, begin: int, end: int | None) -> list[Fault]:
        return []

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        """Act at the window's start (market scenarios)."""

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        """Undo at the window's end."""


def default_feed(model: MarketModel, spot: bool = False) -> str:
    """The feed a scenario aims at when it names none: the world's first spot feed, or its
    first linear derivatives feed (else its first derivatives feed)."""
    venues = model.world.venues
    if spot:
        kinds: tuple[str, ...] = ("spot",)
    else:
        kinds = ("linear", "inverse")
    for kind in kinds:
        for v in venues:
            if v.kind == kind:
                return v.feed
    return venues[0].feed


class _Feed(Scenario, kw_only=True):
    """A scenario aimed at one feed (``""``: the world's default, see ``default_feed``)."""

    feed: str = ""

    def target_feed(self, model: MarketModel) -> str:
        return self.feed or default_feed(model, getattr(self, "contract", "") == "spot")


class _Leg(_Feed, kw_only=True):
    """A scenario aimed at one instrument: ``contract`` is spot, perpetual, near or far (the
    nearest or the last listed quarterly at the scenario's start)."""

    asset: str = "BTC"
    contract: str = "near"

    def target(self, model: MarketModel, begin: int) -> dict[str, Any]:
        # aimed at another kind of feed (``/<feed>``): a spot feed's
        # one contract, or a futures feed's perpetual for a spot scenario
        feed = self.target_feed(model)
        contract = self.contract
        if model.world.venue(feed).kind == "spot":
            contract = "spot"
        elif contract == "spot":
            contract = "perpetual"
        return {"feed": feed, "symbol": model.symbol_at(feed, self.asset, contract, begin)}


# -- market scenarios -----------------------------------------------------------------------


class CalmContango(Scenario, kw_only=True):
    """Quarterlies of every asset (or ``asset``) trade at a calm, positive annualised basis:
    the level stays inside [lo, hi]; venue offsets, the term-structure slope and contract noise
    keep every contract's simple annualised basis inside ``expected_range``."""

    name: ClassVar[str] = "calm_contango"
    duration_s: float | None = None
    asset: str | None = None
    level: float = 0.095
    lo: float = 0.075
    hi: float = 0.115
    expected_range: tuple[float, float] = (0.05, 0.15)

    def _assets(self, model: MarketModel) -> list[str]:
        return [self.asset] if self.asset else [a.name for a in model.world.assets]

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {"assets": self._assets(model), "annualised_basis_range": self.expected_range,
                "term_structure": "contango", "anomaly": False}

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        expected["_old"] = [
            model.asset_state(a).basis.set(mean=self.level, sd=0.01, lo=self.lo, hi=self.hi,
                                           halflife_s=6 * 3600.0)
            for a in self._assets(model)
        ]

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        for a, old in zip(self._assets(model), expected.pop("_old"), strict=True):
            model.asset_state(a).basis.set(**old)


class SteepContango(Scenario, kw_only=True):
    """The asset's annualised basis climbs to ``level`` (half-way within ``ramp_halflife_s``)
    and stays there with deep books: a genuine cash-and-carry opportunity on every venue's
    quarterlies that persists from ``persist_from_ns`` to the end of the window."""

    name: ClassVar[str] = "steep_contango"
    duration_s: float | None = 3600.0
    asset: str = "BTC"
    level: float = 0.30
    band: float = 0.03
    ramp_halflife_s: float = 60.0

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        settle = begin + round(10 * self.ramp_halflife_s * NS)
        return {
            "asset": self.asset,
            "feeds": [v.feed for v in model.world.venues if v.quarterlies],
            "annualised_basis_range": (self.level - 2 * self.band, self.level + 2 * self.band),
            "carry_opportunity": True,
            "persist_from_ns": settle,
            "min_persist_s": None if end is None else (end - settle) / NS,
        }

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        # a ramp, not a jump: the band is enforced once the level has got there
        # (bounds wide enough for the ramp: a calm_contango running alongside has clamped the
        # level to its own range)
        basis = model.asset_state(self.asset).basis
        expected["_old"] = basis.set(mean=self.level, sd=self.band / 3,
                                     halflife_s=self.ramp_halflife_s,
                                     lo=min(basis.lo, self.level - self.band),
                                     hi=max(basis.hi, self.level + self.band))

        def band() -> None:
            if "_old" in expected:  # still running
                basis.set(lo=self.level - self.band, hi=self.level + self.band)

        model.defer(expected["persist_from_ns"], band)

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        old = expected.pop("_old")
        basis = model.asset_state(self.asset).basis
        basis.set(**{**old, "halflife_s": self.ramp_halflife_s})  # back as fast as it came
        model.defer(model.now_ns + round(10 * self.ramp_halflife_s * NS),
                    lambda: basis.set(halflife_s=old["halflife_s"]))


class FleetingSpike(_Leg, kw_only=True):
    """One quarterly jumps ``spike_bps`` above its fair price for a few seconds, then comes
    back: an anomaly against the other venues, never a carry opportunity (not persistent)."""

    name: ClassVar[str] = "fleeting_spike"
    duration_s: float | None = 3.0
    spike_bps: float = 80.0

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {**self.target(model, begin), "spike_bps": self.spike_bps,
                "spike_seconds": self.duration_s, "carry_opportunity": False, "anomaly": True}

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        model.instrument_state(expected["feed"], expected["symbol"]).extra_bps = self.spike_bps

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        inst = model.find(expected["feed"], expected["symbol"])
        if inst:
            inst.extra_bps = 0.0


class ThinBook(_Leg, kw_only=True):
    """One leg's book keeps its levels but only ``depth_factor`` of its sizes (and of its
    taker orders): slippage for a normal notional is too high or the book cannot fill it, so
    a carry candidate on this leg is rejected by the liquidity gate."""

    name: ClassVar[str] = "thin_book"
    duration_s: float | None = 600.0
    depth_factor: float = 0.02

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {**self.target(model, begin), "depth_factor": self.depth_factor,
                "carry_opportunity": False, "reject_gate": "liquidity"}

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        inst = model.instrument_state(expected["feed"], expected["symbol"])
        inst.book.set_depth(self.depth_factor, inst.fair)

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        inst = model.find(expected["feed"], expected["symbol"])
        if inst:
            inst.book.set_depth(1.0, inst.fair)


class OneSidedBook(_Leg, kw_only=True):
    """One side of one leg's book is pulled but for its ``keep`` farthest levels: the spread
    is huge and a taker on that side cannot be filled near the mid (insufficient depth)."""

    name: ClassVar[str] = "one_sided_book"
    duration_s: float | None = 300.0
    side: str = "ask"
    keep: int = 10

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {**self.target(model, begin), "side": self.side, "insufficient_depth": True,
                "carry_opportunity": False, "reject_gate": "liquidity"}

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        if self.side not in ("ask", "bid"):
            raise SimError(f"one_sided_book: side must be ask or bid, not {self.side!r}")
        inst = model.instrument_state(expected["feed"], expected["symbol"])
        inst.book.empty(0 if self.side == "ask" else 1, self.keep)

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        inst = model.find(expected["feed"], expected["symbol"])
        if inst:
            inst.book.empty(-1)


class CrossedBook(_Leg, kw_only=True):
    """A bid ``ticks`` above the best ask sits in one book for ``duration_s`` (the venue's own
    snapshot is crossed too): the collector must flag the book crossed, distrust it and
    resync; no opportunity may use it meanwhile."""

    name: ClassVar[str] = "crossed_book"
    duration_s: float | None = 2.0
    contract: str = "spot"
    ticks: int = 5

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {**self.target(model, begin), "crossed_s": self.duration_s, "expect": "resync",
                "gap_reason": "crossed", "carry_opportunity": False}

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        model.instrument_state(expected["feed"], expected["symbol"]).book.cross(self.ticks)

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        inst = model.find(expected["feed"], expected["symbol"])
        if inst:
            inst.book.uncross()


class FundingNegative(Scenario, kw_only=True):
    """The asset's perpetuals trade ``premium`` below the index (reached within
    ``10 * ramp_halflife_s``). Funding averages the premium over the interval, the later
    samples weighing more, so: every settlement in ``settlements`` (those with at least
    ``share`` of their interval inside the window) realises a negative rate, shorts pay; and
    the predicted rate of each perpetual is negative from its ``predicted_negative`` time to
    the end of the window (once the window holds over a third of the interval's weight)."""

    name: ClassVar[str] = "funding_negative"
    duration_s: float | None = 10 * 3600.0
    asset: str = "BTC"
    premium: float = -0.002
    ramp_halflife_s: float = 60.0
    share: float = 0.2

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        settle = begin + round(10 * self.ramp_halflife_s * NS)
        last = end if end is not None else begin + 86400 * NS
        settlements: list[tuple[str, str, int]] = []
        predicted: list[tuple[str, str, int]] = []
        for v in model.world.venues:
            if not (v.perpetual and v.lists(self.asset)):
                continue
            sym = model.symbol_at(v.feed, self.asset, "perpetual", begin, v.kind)
            h = round(v.funding_hours(self.asset) * 3600 * NS)
            settlements += [(v.feed, sym, t) for t in range((settle // h + 1) * h, last + 1, h)
                            if t - settle >= self.share * h]
            # weight share of the samples after `settle` at time t of an interval that began
            # at s0: 1 - ((settle - s0) / (t - s0))^2, over a third from t - s0 = 1.25 a; or
            # from the first sample of the next interval
            s0 = settle // h * h
            t = min(s0 + math.ceil(1.25 * (settle - s0)), s0 + h + v.funding.sample_s * NS)
            if t < last:
                predicted.append((v.feed, sym, t))
        return {"asset": self.asset, "funding_sign": -1, "settlements": settlements,
                "predicted_negative": predicted}

    def begin(self, model: MarketModel, expected: dict[str, Any]) -> None:
        expected["_old"] = model.asset_state(self.asset).premium.set(
            mean=self.premium, halflife_s=self.ramp_halflife_s)

    def end(self, model: MarketModel, expected: dict[str, Any]) -> None:
        model.asset_state(self.asset).premium.set(**expected.pop("_old"))


class ExpiryRoll(Scenario, kw_only=True):
    """Pins the clock so that the quarterlies of the nearest quarter expire ``lead_s`` after
    the scenario's start: each settles (its last ticker's mark is the settlement price, the
    30-minute average of its venue's index), disappears, and the next quarterly is listed.
    The basis (F - S) / S of an expiring contract is within ``max_basis_bps`` at expiry."""

    name: ClassVar[str] = "expiry_roll"
    duration_s: float | None = 120.0
    lead_s: float = 60.0
    max_basis_bps: float = 5.0

    def pin(self, start_ns: int) -> int:
        """The model start that puts the first expiry after ``start_ns`` at the right time."""
        expiry = quarterly_expiries(start_ns, 1)[0]
        return expiry - round((self.at_s + self.lead_s) * NS)

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        expiry = begin + round(self.lead_s * NS)
        expiring, listed = [], []
        for v in model.world.venues:
            if not v.quarterlies:
                continue
            for a in model.world.assets:
                if v.lists(a.name):
                    expiring.append((v.feed, model.symbol_at(v.feed, a.name, "near", begin,
                                                             v.kind)))
                    listed.append((v.feed, model.symbol_at(v.feed, a.name, "far", expiry,
                                                           v.kind)))
        return {"expiry_ns": expiry, "expiring": expiring, "listed": listed,
                "max_basis_bps": self.max_basis_bps,
                "settlement": "30-minute average of the venue's index"}


# -- transport scenarios (declared faults) --------------------------------------------------


class StaleFeed(_Feed, kw_only=True):
    """One feed stops sending for ``duration_s`` while its connections stay open (pings go
    on): its books and quotes must be flagged stale and no opportunity may use them."""

    name: ClassVar[str] = "stale_feed"

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {"feed": self.target_feed(model), "stale_s": self.duration_s, "expect": "stale",
                "carry_opportunity": False}

    def faults(self, model: MarketModel, begin: int, end: int | None) -> list[Fault]:
        return [Fault(begin, self.target_feed(model), "stall", {"seconds": self.duration_s})]


class SequenceGap(_Leg, kw_only=True):
    """The next ``count`` depth changes of one symbol never reach the client: the collector
    must see the gap by the venue's id rules, invalidate that book only, and resync it."""

    name: ClassVar[str] = "sequence_gap"
    duration_s: float | None = 1.0
    contract: str = "perpetual"
    count: int = 1

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {**self.target(model, begin), "expect": "gap", "gap_reason": "gap",
                "action": "resync"}

    def faults(self, model: MarketModel, begin: int, end: int | None) -> list[Fault]:
        t = self.target(model, begin)
        return [Fault(begin, t["feed"], "drop_depth", {"symbol": t["symbol"],
                                                       "count": self.count})]


class Disconnect(_Feed, kw_only=True):
    """The feed's connections close once per code, ``spacing_s`` apart (None: TCP abort, no
    close frame): the collector reconnects each time and loses no trade (REST backfill)."""

    name: ClassVar[str] = "disconnect"
    duration_s: float | None = None
    codes: tuple[int | None, ...] = (1000, 1001, 1008, 1011, None)
    spacing_s: float = 20.0

    def window(self, start_ns: int) -> tuple[int, int | None]:
        begin = start_ns + round(self.at_s * NS)
        return begin, begin + round(self.spacing_s * len(self.codes) * NS)

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {"feed": self.target_feed(model),
                "close_codes": ["abrupt" if c is None else c for c in self.codes],
                "expect": "reconnect", "trades_lost": 0}

    def faults(self, model: MarketModel, begin: int, end: int | None) -> list[Fault]:
        step = round(self.spacing_s * NS)
        feed = self.target_feed(model)
        return [Fault(begin + i * step, feed, "close", {"code": c})
                for i, c in enumerate(self.codes)]


class Close(Disconnect, kw_only=True):
    """One close of the feed's connections with 1011 (server error): the collector reconnects
    once, after its initial backoff, and loses no trade. ``disconnect`` is the burst of every
    code."""

    name: ClassVar[str] = "close"
    codes: tuple[int | None, ...] = (1011,)


class Malformed(_Feed, kw_only=True):
    """``count`` malformed frames on one feed, cycling through ``kinds``, ``spacing_s``
    apart: each is counted and skipped, the stream goes on, no book resyncs for it."""

    name: ClassVar[str] = "malformed"
    duration_s: float | None = None
    count: int = 6
    kinds: tuple[str, ...] = ("truncated", "nonjson", "badprice")
    spacing_s: float = 5.0

    def window(self, start_ns: int) -> tuple[int, int | None]:
        begin = start_ns + round(self.at_s * NS)
        return begin, begin + round(self.spacing_s * self.count * NS)

    def expect(self, model: MarketModel, begin: int, end: int | None) -> dict[str, Any]:
        return {"feed": self.target_feed(model), "count": self.count, "kinds": list(self.kinds),
                "expect": "counted_and_skipped"}

    def faults(self, model: MarketModel, begin: int, end: int | None) -> list[Fault]:
        step = round(self.spacing_s * NS)
        feed = self.target_feed(model)
        return [Fault(begin + i * step, feed, "malformed",
                      {"kind": self.kinds[i % len(self.kinds)]}) for i in range(self.count)]


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (CalmContango, SteepContango, FleetingSpike, ThinBook, OneSidedBook,
                CrossedBook, FundingNegative, ExpiryRoll, StaleFeed, SequenceGap, Disconnect,
                Close, Malformed)
}

_ITEM = re.compile(
    r"^([a-z_]+)(?:@([0-9.]+)(ms|s|m|h)?)?(?:\+([0-9.]+)(ms|s|m|h)?)?(?:/([a-z0-9_]+))?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Schedule:
    """Scenarios with their start offsets, in start order."""

    def __init__(self, scenarios: Iterable[Scenario] = ()) -> None:
        self.scenarios = sorted(scenarios, key=lambda s: s.at_s)
        if sum(isinstance(s, ExpiryRoll) for s in self.scenarios) > 1:
            raise SimError("a schedule can hold one expiry_roll (it pins the clock)")

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """``name[@offset][+duration][/feed]``, comma-separated; offsets from the model's
        start; ``/<feed>`` aims a scenario that has a feed at another feed of the world."""
        out: list[Scenario] = []
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            m = _ITEM.match(item)
            if not m:
                raise SimError(f"bad scenario {item!r}: use name[@offset][+duration][/feed], "
                               "e.g. fleeting_spike@300s or stale_feed@10m+90s/<feed>")
            name, at, at_unit, dur, dur_unit, feed = m.groups()
            if name not in SCENARIOS:
                raise SimError(f"unknown scenario {name!r}: known: {', '.join(SCENARIOS)}")
            params: dict[str, Any] = {}
            if at is not None:
                params["at_s"] = _number(at, item) * _UNIT[at_unit]
            if dur is not None:
                params["duration_s"] = _number(dur, item) * _UNIT[dur_unit]
            if feed is not None:
                if "feed" not in SCENARIOS[name].__struct_fields__:
                    raise SimError(f"scenario {name!r} is not aimed at one feed: drop /{feed}")
                params["feed"] = feed
            out.append(SCENARIOS[name](**params))
        return cls(out)

    def pin_start(self, start_ns: int) -> int:
        for s in self.scenarios:
            if isinstance(s, ExpiryRoll):
                return s.pin(start_ns)
        return start_ns

    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    def __len__(self) -> int:
        return len(self.scenarios)


def _number(text: str, item: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise SimError(f"bad number {text!r} in scenario {item!r}") from None
    if not math.isfinite(x):
        raise SimError(f"bad number {text!r} in scenario {item!r}")
    return x
