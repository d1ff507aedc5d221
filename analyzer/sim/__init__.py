"""A simulated multi-venue market: pure Python, no I/O, no wall clock (time is a parameter).

``MarketModel(world, seed, start_ns, schedule).advance(until_ns)`` returns the normalized events
of ``analyzer.events`` for every instrument of every venue, in time order. See ``model`` for
the pricing, ``book`` for the order books and their id rules, ``scenarios`` for what can be
scheduled and what the analyzer should conclude from it.
"""

from analyzer.sim.clock import funding_times, next_funding, quarterly_expiries, quarterly_expiry
from analyzer.sim.errors import SimError
from analyzer.sim.model import DEFAULT_START_NS, ExpiredContract, MarketModel
from analyzer.sim.process import FundingSettlement, funding_rate
from analyzer.sim.scenarios import SCENARIOS, Fault, Scenario, ScenarioRun, Schedule
from analyzer.sim.spec import (
    AssetSpec,
    FundingSpec,
    Rates,
    SymbolTemplates,
    VenueSpec,
    World,
    default_world,
)

__all__ = [
    "DEFAULT_START_NS",
    "SCENARIOS",
    "AssetSpec",
    "ExpiredContract",
    "Fault",
    "FundingSettlement",
    "FundingSpec",
    "MarketModel",
    "Rates",
    "Scenario",
    "ScenarioRun",
    "Schedule",
    "SimError",
    "SymbolTemplates",
    "VenueSpec",
    "World",
    "default_world",
    "funding_rate",
    "funding_times",
    "next_funding",
    "quarterly_expiries",
    "quarterly_expiry",
]
