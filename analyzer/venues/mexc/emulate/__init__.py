"""MEXC's side of the local exchange: the contract market's websocket and REST protocols
(``analyzer.exchange.emulator`` is the interface).

``market``: websocket path, control protocol, heartbeat and limits, REST routing; ``info``: REST
bodies; ``render``: the simulated market's frames and the venue's book (versions, commits);
``simulated``: REST answers from the model; ``state``: what a replay keeps of its recorded
frames; ``recordings``: reading recorded MEXC traffic; ``specs``: the sim's specs of the market.
"""

from analyzer.venues.mexc.emulate.market import MARKETS_EMULATED, EmulatedMarket
from analyzer.venues.mexc.emulate.recordings import MexcRecordings
from analyzer.venues.mexc.emulate.specs import SIM_VENUES


class MexcEmulator:
    """The ``VenueEmulator`` of MEXC."""

    name = "mexc"

    def __init__(self) -> None:
        self.markets = dict(MARKETS_EMULATED)
        self.recordings = MexcRecordings()
        self.sim_venues = SIM_VENUES


EMULATOR = MexcEmulator()

__all__ = ["EMULATOR", "EmulatedMarket", "MexcEmulator"]
