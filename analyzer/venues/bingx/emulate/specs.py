"""BingX's markets in the simulated world (``analyzer.sim.VenueSpec``): BTC and ETH
USDT-M perpetuals and BTC and ETH spot, ``BTC-USDT`` as BingX writes both. Sizes are base
units (no contract size).
Fees: the standard perpetual rates (``analyzer.venues.bingx.spec``). Funding every 8 h, the ETH
perpetual every 4 h, so that a non-default ``fundingIntervalHours`` goes through premiumIndex.
The model's book ids (spot style: each change's first id follows the previous last id) only tell
the renderer which changes it has sent; BingX's ``lastUpdateId``s are numbered by the renderer
itself (``render``, ``book.Ids``). Spot: the standard spot fees; its ids step by one, without
the swap's skips (``spot``). ``SIM_VENUES`` is the swap market's (its tests' world);
``EMULATED`` both, what the exchange simulates for ``--venues bingx``.
"""

from __future__ import annotations

from analyzer.sim.spec import SymbolTemplates, VenueSpec
from analyzer.venues.bingx.spec import SPOT_FEES, SWAP_FEES

BINGX_SWAP = VenueSpec(
    feed="bingx_swap", exchange="bingx", kind="linear", quote="USDT", perpetual=True,
    symbols=SymbolTemplates(perpetual="{base}-{quote}"), price_offset_bps=0.25,
    depth_factor=0.9, taker_fee=SWAP_FEES.taker, maker_fee=SWAP_FEES.maker,
    funding_interval_hours={"ETH": 4.0},
)
BINGX_SPOT = VenueSpec(
    feed="bingx_spot", exchange="bingx", kind="spot", quote="USDT",
    symbols=SymbolTemplates(spot="{base}-{quote}"), price_offset_bps=0.15,
    depth_factor=0.7, taker_fee=SPOT_FEES.taker, maker_fee=SPOT_FEES.maker,
)
SIM_VENUES = (BINGX_SWAP,)
EMULATED = (BINGX_SWAP, BINGX_SPOT)
