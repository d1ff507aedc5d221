"""MEXC's markets in the simulated world (``analyzer.sim.VenueSpec``): the USDT perpetuals
``BTC_USDT`` and ``ETH_USDT`` of the contract market, and the spot pairs ``BTCUSDT`` and
``ETHUSDT``.

Contract sizes (``info.CONTRACT_SIZES``): BTC 0.0001 (MEXC's), ETH 0.001 (the docs'
``contract/detail`` example; the live ETH_USDT contract is 0.01, which would make the sim's
0.001 ETH lot a tenth of a contract: MEXC sizes are whole contracts). Fees: users without MX
(``analyzer.venues.mexc.spec``). Funding every 8 h, the ETH perpetual every 4 h, so that an
interval other than 8 goes through ``collectCycle``. Book ids spot style (each change starts
right after the last): the renderer numbers MEXC's ``version`` one per push and keeps the
changes for ``depth_commits``. Spot: the default spot fees; book ids spot style too, which
are MEXC spot's versions as they are (a push covers ``fromVersion..toVersion``, ``spot_render``).
``SIM_VENUES``: both, what the exchange simulates for ``--venues mexc``.
"""

from __future__ import annotations

from analyzer.sim.spec import SymbolTemplates, VenueSpec
from analyzer.venues.mexc.spec import FUTURES_FEES, SPOT_FEES

MEXC_FUTURES = VenueSpec(
    feed="mexc_futures", exchange="mexc", kind="linear", quote="USDT", perpetual=True,
    symbols=SymbolTemplates(perpetual="{base}_{quote}"),
    price_offset_bps=0.4, basis_offset=0.001, depth_factor=0.9,
    taker_fee=FUTURES_FEES.taker, maker_fee=FUTURES_FEES.maker,
    funding_interval_hours={"ETH": 4.0},
)
MEXC_SPOT = VenueSpec(
    feed="mexc_spot", exchange="mexc", kind="spot", quote="USDT",
    symbols=SymbolTemplates(spot="{base}{quote}"), price_offset_bps=0.2, depth_factor=0.8,
    taker_fee=SPOT_FEES.taker, maker_fee=SPOT_FEES.maker,
)
SIM_VENUES = (MEXC_FUTURES, MEXC_SPOT)
