"""BingX's swap market in the simulated world (``analyzer.sim.VenueSpec``): BTC and ETH
USDT-M perpetuals, ``BTC-USDT`` as BingX writes them. Sizes are base units (no contract size).
Fees: the standard perpetual rates (``analyzer.venues.bingx.spec``). Funding every 8 h, the ETH
perpetual every 4 h, so that a non-default ``fundingIntervalHours`` goes through premiumIndex.
The model's book ids (spot style: each change's first id follows the previous last id) only tell
the renderer which changes it has sent; BingX's ``lastUpdateId``s are numbered by the renderer
itself (``render``, ``book.Ids``).
"""

from __future__ import annotations

from analyzer.sim.spec import SymbolTemplates, VenueSpec
from analyzer.venues.bingx.spec import SWAP_FEES

BINGX_SWAP = VenueSpec(
    feed="bingx_swap", exchange="bingx", kind="linear", quote="USDT", perpetual=True,
    symbols=SymbolTemplates(perpetual="{base}-{quote}"), price_offset_bps=0.25,
    depth_factor=0.9, taker_fee=SWAP_FEES.taker, maker_fee=SWAP_FEES.maker,
    funding_interval_hours={"ETH": 4.0},
)
SIM_VENUES = (BINGX_SWAP,)
