"""The simulated world: assets, venues and event rates, as frozen msgspec Structs.

One ``VenueSpec`` is one feed (a feed id ``<exchange>_<market>``): the unit the rest of the
analyzer keys everything by (``venue`` in ``analyzer.events``), with its own symbols, fees,
depth and sequence rules; a feed that lists linear and inverse contracts together
has one spec per kind. An exchange with several markets is several specs, so adding a venue
is adding specs to ``World.venues``, with no code; each venue's emulator declares its own
(``sim_venues``), and ``default_world`` takes them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from analyzer.sim.clock import check_interval
from analyzer.sim.errors import SimError

MARKETS = ("spot", "perpetual", "future")
VenueKind = Literal["spot", "linear", "inverse"]


class FundingSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's funding formula (the common premium-index formula by default).

    rate = P + clamp(I - P, -clamp, +clamp), then capped to [-cap, +cap], where P is the average
    premium index over the funding interval (sampled every ``sample_s`` seconds, the k-th sample
    of the interval weighted k) and I the interest component, ``interest_8h`` per 8 hours scaled
    to the interval (0.01 % per 8 h: 0.0025 % per 2 h).
    """

    interest_8h: float = 0.0001
    clamp: float = 0.0005
    cap: float = 0.0075
    sample_s: int = 5


class SymbolTemplates(msgspec.Struct, frozen=True, kw_only=True):
    """``str.format`` templates of a venue's symbols. Fields: ``base``, ``quote`` and, for dated
    futures, ``yymmdd`` (251226), ``ddMMMyy`` (26DEC25), ``yyyymmdd`` (20251226), ``mYY`` (Z25:
    month code and year)."""

    spot: str = "{base}{quote}"
    perpetual: str = "{base}{quote}"
    future: str = "{base}{quote}_{yymmdd}"


class AssetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An underlying and how its instruments look on every venue (before venue factors)."""

    name: str
    start_price: float
    vol_annual: float = 0.5  # long-run volatility of the diffusion (jumps come on top)
    jumps_per_day: float = 1.0
    jump_sigma: float = 0.004  # standard deviation of a jump's log return
    tick: dict[str, float]  # per market type: spot, perpetual, future
    lot: dict[str, float]  # linear size increment in base units per market type
    inverse_contract_size: float  # quote units (USD) per inverse contract
    top_size: float  # base units at the best level (times the venue's depth factor)
    trade_size: float  # median trade, base units
    # book levels per bp of price at the top (a major BTC perpetual: ~15 within 1 bp of the
    # mid, ~35 per bp from 2 to 20 bp); gaps between levels then grow with the rank
    levels_per_bp: float = 20.0
    open_interest_usd: float  # typical open interest of one derivative on a depth-1 venue
    basis_mean: float = 0.08  # annualised basis of dated futures: long-run mean
    basis_sd: float = 0.03  # ... its stationary standard deviation
    basis_halflife_h: float = 24.0
    basis_slope: float = 0.02  # extra annualised basis per year of time to expiry
    premium_mean: float = 0.00005  # perpetual premium over the index (fraction)
    premium_sd: float = 0.0002
    premium_halflife_s: float = 1800.0


class VenueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One feed of one exchange and the instruments it lists for every asset."""

    feed: str  # the id events carry in ``venue``
    exchange: str
    kind: VenueKind  # spot; linear (sizes in base); inverse (sizes in quote contracts)
    quote: str  # quote currency in symbols: USDT, USD...
    perpetual: bool = False
    quarterlies: int = 0  # dated futures listed at any time (current quarter, next, ...)
    symbols: SymbolTemplates = SymbolTemplates()
    assets: tuple[str, ...] | None = None  # None: every asset of the world
    price_offset_bps: float = 0.0  # the venue's index against the common underlying
    basis_offset: float = 0.0  # added to the asset's annualised basis on this venue
    depth_factor: float = 1.0
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002
    funding_interval_hours: dict[str, float] = {}  # per asset; others use the default
    default_funding_interval_hours: float = 8.0
    funding: FundingSpec = FundingSpec()
    # Futures style: each change carries the previous change's last id (a prev id) and ids
    # may skip between changes. Spot style: no prev id; first id == previous last id + 1.
    sends_prev_id: bool = False
    tick: dict[str, float] = {}  # per asset: this venue's tick for all its markets
    inverse_contract_size: float | None = None  # USD a contract (None: the asset's)
    spread_ticks: int = 1  # quoted spread when the book is calm

    def markets(self) -> tuple[str, ...]:
        if self.kind == "spot":
            return ("spot",)
        return ("perpetual",) * self.perpetual + ("future",) * (self.quarterlies > 0)

    def funding_hours(self, asset: str) -> float:
        return self.funding_interval_hours.get(asset, self.default_funding_interval_hours)

    def lists(self, asset: str) -> bool:
        return self.assets is None or asset in self.assets


class Rates(msgspec.Struct, frozen=True, kw_only=True):
    """Event rates per instrument and the model's time step.

    Prices and book recentring move on a grid of ``step_s`` from the model's start; events
    inside a step get their own timestamps. A larger step is the fast mode: the
    same events per simulated second, less work per event.
    """

    step_s: float = 0.1
    book_changes_per_s: float = 20.0  # BookChange events (an interval with no change sends none)
    updates_per_s: float = 80.0  # order-flow updates (add, cancel, modify) batched into them
    top_share: float = 0.25  # share of updates at the best level: each one changes the top
    trades_per_s: float = 5.0  # taker orders (one Trade per price level they fill)
    ticker_interval_s: float = 1.0  # mark/index/funding of each derivative
    open_interest_interval_s: float = 10.0
    liquidations_per_hour: float = 6.0
    levels: int = 2500  # book levels per side

    @classmethod
    def fast(cls, **changes: float) -> Rates:
        """Throughput mode: one-second steps and lighter changes (30 updates/s, 80 % of them at
        the top), for the same events per second as the default (~20 changes, ~30 quotes,
        ~5 taker orders per instrument)."""
        return cls(**{"step_s": 1.0, "updates_per_s": 30.0, "top_share": 0.8, **changes})


class World(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the model simulates."""

    assets: tuple[AssetSpec, ...]
    venues: tuple[VenueSpec, ...]
    rates: Rates = Rates()
    correlation: float = 0.8  # of the assets' diffusive returns

    def asset(self, name: str) -> AssetSpec:
        for a in self.assets:
            if a.name == name:
                return a
        raise SimError(f"unknown asset {name!r}: known: {', '.join(a.name for a in self.assets)}")

    def venue(self, feed: str, kind: str | None = None) -> VenueSpec:
        """The spec of a feed (its first: a feed may list linear and inverse contracts, one
        spec each; ``kind`` picks one)."""
        for v in self.venues:
            if v.feed == feed and (kind is None or v.kind == kind):
                return v
        raise SimError(f"unknown feed {feed!r}: known: {', '.join(v.feed for v in self.venues)}")

    def validate(self) -> World:
        """Raise ``SimError`` on an inconsistent world; return it unchanged."""
        names = [a.name for a in self.assets]
        # one spec per feed and kind: a feed listing linear and inverse contracts has two
        feeds = [(v.feed, v.kind) for v in self.venues]
        if not names or len(set(names)) != len(names):
            raise SimError(f"asset names must be unique and non-empty: {names}")
        if not feeds or len(set(feeds)) != len(feeds):
            raise SimError(f"venue (feed, kind) pairs must be unique and non-empty: {feeds}")
        for a in self.assets:
            for m in MARKETS:
                if a.tick.get(m, 0) <= 0 or a.lot.get(m, 0) <= 0:
                    raise SimError(f"asset {a.name}: tick and lot needed for market {m!r}")
        for v in self.venues:
            for a in self.assets:
                if v.lists(a.name) and v.kind != "spot":
                    check_interval(v.funding_hours(a.name))
            if v.kind == "spot" and (v.perpetual or v.quarterlies):
                raise SimError(f"venue {v.feed}: a spot venue lists no derivatives")
        if self.rates.step_s <= 0 or self.rates.levels < 50:
            raise SimError("rates: step_s must be > 0 and levels >= 50")
        return self


BTC = AssetSpec(
    name="BTC",
    start_price=60_000.0,
    vol_annual=0.5,
    tick={"spot": 0.01, "perpetual": 0.1, "future": 0.1},
    lot={"spot": 0.00001, "perpetual": 0.001, "future": 0.001},
    inverse_contract_size=100.0,
    top_size=0.5,
    trade_size=0.05,
    open_interest_usd=2e9,
)
ETH = AssetSpec(
    name="ETH",
    start_price=3_000.0,
    vol_annual=0.65,
    tick={"spot": 0.01, "perpetual": 0.01, "future": 0.01},
    lot={"spot": 0.0001, "perpetual": 0.001, "future": 0.001},
    inverse_contract_size=10.0,
    top_size=8.0,
    trade_size=0.8,
    open_interest_usd=1e9,
)

def default_world(rates: Rates | None = None, exchanges: Sequence[str] | None = None) -> World:
    """BTC and ETH on every simulated market of the registered venues (each venue's emulator
    declares its markets' specs: ``sim_venues``), in registry order; ``exchanges``: of those
    venues only (a name the registry lacks, or without an emulator, is a SimError)."""
    import importlib

    from analyzer.venues import EXCHANGES  # the registry, loaded on first use

    emulated = {name: v.emulator for name, v in EXCHANGES.items() if v.emulator}
    names = list(emulated) if exchanges is None else list(exchanges)
    unknown = [n for n in names if n not in emulated]
    if unknown:
        raise SimError(f"no simulated venue {', '.join(unknown)} (known: {', '.join(emulated)})")
    venues = tuple(spec for name in names
                   for spec in importlib.import_module(emulated[name]).EMULATOR.sim_venues)
    return World(assets=(BTC, ETH), venues=venues, rates=rates or Rates()).validate()
