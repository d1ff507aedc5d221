"""BingX's side of the local exchange: the USDT-M perpetual swap market in BingX's own
websocket (gzip binary frames, server ``Ping``) and REST protocols, and the spot market in its
own (``spot``: socket ``/market``, JSON pings, spot frames and REST)
(``analyzer.exchange.emulator`` is the interface).

``market``: the websocket protocol, heartbeat, limits, REST routing; ``render`` and
``simulated``: the simulated market's frames and REST answers; ``state``: what a replay keeps;
``info``: REST bodies; ``recordings``: reading recorded BingX traffic; ``specs``: the sim's
spec of the market.
"""

from analyzer.venues.bingx.emulate.market import MARKETS_EMULATED, BingxMarket, gzip_frame
from analyzer.venues.bingx.emulate.recordings import BingxRecordings
from analyzer.venues.bingx.emulate.specs import EMULATED
from analyzer.venues.bingx.emulate.spot import BingxSpotMarket


class BingxEmulator:
    """The ``VenueEmulator`` of BingX."""

    name = "bingx"

    def __init__(self) -> None:
        self.markets = {**MARKETS_EMULATED, "bingx_spot": BingxSpotMarket("bingx_spot")}
        self.recordings = BingxRecordings()
        self.sim_venues = EMULATED


EMULATOR = BingxEmulator()

__all__ = ["EMULATOR", "BingxEmulator", "BingxMarket", "BingxSpotMarket", "gzip_frame"]
