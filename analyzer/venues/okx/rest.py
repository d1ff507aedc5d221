"""OKX's REST side: the instrument listing (the only request the collector makes).

Docs: https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments
GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES: 20 requests per 2 s per IP and
instrument type. Book snapshots come on the socket, open interest and funding on their
channels, and trades are not backfilled by id: the other path methods return None.
"""

from __future__ import annotations

import msgspec

from analyzer.events import BookChange, Instrument, OpenInterest, Trade
from analyzer.venues.base import DecodeError, Market, VenueError
from analyzer.venues.okx.schemas import INSTRUMENTS_DECODER, MS, InstrumentInfo

MARKET_TYPES = {"SPOT": "spot", "SWAP": "perpetual", "FUTURES": "future"}


def instrument(info: InstrumentInfo, venue: str, ts_local: int) -> Instrument:
    """One listed instrument in the unit system of ``analyzer.events``.

    Spot: base/quote from baseCcy/quoteCcy, sizes in base units. Derivatives: base and quote
    from the underlying (uly ``BTC-USDT`` of BTC-USDT-SWAP: base BTC, quote USDT; ``BTC-USD`` of
    the inverse BTC-USD-SWAP: base BTC, quote USD), ``contract_size`` = ctVal * ctMult: base units
    a contract for linear ones (whose sizes the feed converts to base units, so ``lot_size`` is
    lotSz contracts in base units too), USD a contract for inverse ones (whose sizes stay
    contracts, as does ``lot_size``). ``expiry``: a dated future's expTime; a swap's expTime,
    when set, is a delisting date, not an expiry."""
    kind = info.instType
    if kind == "SPOT":
        return Instrument(venue, info.instId, "okx", "spot", info.baseCcy, info.quoteCcy, False,
                          1.0, info.tickSz, info.lotSz, None, ts_local)
    if not isinstance(info.ctVal, float):
        raise DecodeError(f"instrument {info.instId}: no ctVal")
    inverse = info.ctType == "inverse"
    size = info.ctVal * (info.ctMult if isinstance(info.ctMult, float) else 1.0)
    if info.uly.count("-") == 1:
        base, quote = info.uly.split("-")
    elif inverse:  # no underlying: an inverse contract is worth ctVal USD, settled in the coin
        base, quote = info.settleCcy, info.ctValCcy
    else:  # a linear one is worth ctVal coins, settled in the quote
        base, quote = info.ctValCcy, info.settleCcy
    expiry = info.expTime * MS if kind == "FUTURES" and isinstance(info.expTime, int) else None
    lot = info.lotSz if inverse else info.lotSz * size
    return Instrument(venue, info.instId, "okx", MARKET_TYPES[kind], base, quote, inverse, size,
                      info.tickSz, lot, expiry, ts_local)


class OkxRest:
    """The REST requests of one OKX market; mixed into ``OkxFeed``."""

    market: Market
    venue: str

    rest_weights: dict[str, int] = {"instruments": 1}  # noqa: RUF012 (read-only table)

    def rest_headers(self, api_key: str | None) -> dict[str, str] | None:
        """Public data needs no key."""
        return None

    def instrument_paths(self) -> list[str]:
        return [f"/api/v5/public/instruments?instType={self.market.kind}"]

    def decode_instruments(self, bodies: list[bytes], ts_local: int) -> dict[str, Instrument]:
        """The live instruments of the listing bodies (suspended, pre-open, expired, test and
        rebasing ones are nothing to follow), by instId."""
        out: dict[str, Instrument] = {}
        for body in bodies:
            try:
                listing = INSTRUMENTS_DECODER.decode(body)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"instruments: {exc}") from None
            if listing.code != "0":
                raise VenueError(f"instruments: OKX error {listing.code}: {listing.msg}")
            for info in listing.data:
                if info.state == "live" and info.instType == self.market.kind:
                    out[info.instId] = instrument(info, self.venue, ts_local)
        return out

    def depth_path(self, symbol: str) -> str | None:
        return None  # the subscription sends the snapshot

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        raise DecodeError("OKX book snapshots come on the socket", "depth")

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str | None:
        return None  # no backfill by trade id (yet)

    def recent_trades_path(self, symbol: str) -> str | None:
        return None  # (the reconnect backfill of recent trades: being added)

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        raise DecodeError("OKX trades are not backfilled over REST", "trades")

    def open_interest_path(self, symbol: str) -> str | None:
        return None  # the open-interest channel

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        raise DecodeError("OKX open interest comes on the socket", "openInterest")

    def funding_info_path(self) -> str | None:
        return None  # the interval comes with every funding-rate frame

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        return {}
