"""Binance's side of the local exchange: spot, USDⓈ-M and COIN-M served in Binance's own
websocket and REST protocols (``analyzer.exchange.emulator`` is the interface).

``market``: websocket paths, control protocol, pings and limits, REST routing; ``rest`` and
``info``: REST answers of a replayed market; ``state``: what a replay keeps of its recorded
frames; ``render`` and ``simulated``: the simulated market's frames and REST bodies;
``recordings``: reading recorded Binance traffic; ``specs``: the sim's specs of the markets.
"""

from analyzer.venues.binance.emulate.market import MARKETS_EMULATED, EmulatedMarket
from analyzer.venues.binance.emulate.recordings import BinanceRecordings
from analyzer.venues.binance.emulate.specs import SIM_VENUES


class BinanceEmulator:
    """The ``VenueEmulator`` of Binance."""

    name = "binance"

    def __init__(self) -> None:
        self.markets = dict(MARKETS_EMULATED)
        self.recordings = BinanceRecordings()
        self.sim_venues = SIM_VENUES


EMULATOR = BinanceEmulator()

__all__ = ["EMULATOR", "BinanceEmulator", "EmulatedMarket"]
