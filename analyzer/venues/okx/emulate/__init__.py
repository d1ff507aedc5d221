"""OKX's side of the local exchange: spot, swaps and dated futures served in OKX v5's own
websocket and REST protocols (``analyzer.exchange.emulator`` is the interface).

``market``: the websocket control protocol, heartbeat, limits, REST routing, the 64008 notice;
``books``: books as texts, OKX's checksum, snapshot frames; ``state``: what a replay keeps of
its recorded frames; ``render`` and ``simulated``: the simulated market's frames and REST
answers; ``info``: REST bodies; ``recordings``: reading recorded OKX traffic; ``specs``: the
sim's specs of the markets.
"""

from analyzer.venues.okx.emulate.market import MARKETS_EMULATED, OkxMarket, restart_notice
from analyzer.venues.okx.emulate.recordings import OkxRecordings
from analyzer.venues.okx.emulate.specs import SIM_VENUES


class OkxEmulator:
    """The ``VenueEmulator`` of OKX."""

    name = "okx"

    def __init__(self) -> None:
        self.markets = dict(MARKETS_EMULATED)
        self.recordings = OkxRecordings()
        self.sim_venues = SIM_VENUES


EMULATOR = OkxEmulator()

__all__ = ["EMULATOR", "OkxEmulator", "OkxMarket", "restart_notice"]
