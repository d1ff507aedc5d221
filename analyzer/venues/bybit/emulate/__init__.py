"""Bybit's side of the local exchange: the v5 public streams of spot, linear and inverse in
Bybit's own websocket and REST protocols (``analyzer.exchange.emulator`` is the interface).

``market``: websocket path, control protocol, heartbeat and limits, REST routing; ``info``:
REST bodies; ``state``: what a replay keeps of its recorded frames; ``render`` and
``simulated``: the simulated market's frames and REST answers; ``recordings``: reading
recorded Bybit traffic; ``specs``: the sim's specs of the markets.
"""

from analyzer.venues.bybit.emulate.market import MARKETS_EMULATED, EmulatedMarket
from analyzer.venues.bybit.emulate.recordings import BybitRecordings
from analyzer.venues.bybit.emulate.specs import SIM_VENUES


class BybitEmulator:
    """The ``VenueEmulator`` of Bybit."""

    name = "bybit"

    def __init__(self) -> None:
        self.markets = dict(MARKETS_EMULATED)
        self.recordings = BybitRecordings()
        self.sim_venues = SIM_VENUES


EMULATOR = BybitEmulator()

__all__ = ["EMULATOR", "BybitEmulator", "EmulatedMarket"]
