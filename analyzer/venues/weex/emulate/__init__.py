"""WEEX's side of the local exchange: USDT-M perpetuals served in the contract API V3's own
websocket and REST protocols (``analyzer.exchange.emulator`` is the interface).

``market``: the websocket control protocol, the server's pings, limits, REST routing;
``book``: the venue's window of a book and its frames; ``sim``: the simulated market's frames,
REST answers and spec; ``replay``: reading recorded WEEX traffic and what a replay keeps of it.
"""

from analyzer.venues.weex.emulate.market import MARKETS_EMULATED, WeexMarket
from analyzer.venues.weex.emulate.replay import WeexRecordings
from analyzer.venues.weex.emulate.sim import SIM_VENUES


class WeexEmulator:
    """The ``VenueEmulator`` of WEEX."""

    name = "weex"

    def __init__(self) -> None:
        self.markets = dict(MARKETS_EMULATED)
        self.recordings = WeexRecordings()
        self.sim_venues = SIM_VENUES


EMULATOR = WeexEmulator()

__all__ = ["EMULATOR", "WeexEmulator", "WeexMarket"]
