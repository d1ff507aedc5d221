"""MEXC's side of the local exchange: the contract market's websocket and REST protocols, and
the spot market's (protobuf frames) (``analyzer.exchange.emulator`` is the interface).

``market``: websocket path, control protocol, heartbeat and limits, REST routing; ``info``: REST
bodies; ``render``: the simulated market's frames and the venue's book (versions, commits);
``simulated``: REST answers from the model; ``state``: what a replay keeps of its recorded
frames; ``recordings``: reading recorded MEXC traffic (both markets); ``specs``: the sim's
specs of the markets; ``spot``: the spot market (protocol, limits, REST, the simulated market
and the replay), ``spot_render``: its frames in protobuf.
"""

from analyzer.venues.mexc.emulate.market import MARKETS_EMULATED, EmulatedMarket
from analyzer.venues.mexc.emulate.recordings import MexcRecordings
from analyzer.venues.mexc.emulate.specs import SIM_VENUES
from analyzer.venues.mexc.emulate.spot import SpotMarket


class MexcEmulator:
    """The ``VenueEmulator`` of MEXC."""

    name = "mexc"

    def __init__(self) -> None:
        self.markets = {**MARKETS_EMULATED, "mexc_spot": SpotMarket("mexc_spot")}
        self.recordings = MexcRecordings()
        self.sim_venues = SIM_VENUES


EMULATOR = MexcEmulator()

__all__ = ["EMULATOR", "EmulatedMarket", "MexcEmulator", "SpotMarket"]
