"""The venue registry: one package per exchange, one line here each.

``EXCHANGES`` maps an exchange name to its ``Venue`` (markets, feed class, emulator module);
``VENUES`` maps every feed id (one market of one exchange, the ``venue`` of a config's
``[[feeds]]`` and of every stored row) to its ``Market`` and feed class. The interface is
``analyzer/venues/base.py``; what a package holds is in ``analyzer/venues/README.md``.
"""

from analyzer.venues import binance, bybit, okx
from analyzer.venues.base import Market, Venue, VenueFeed

EXCHANGES: dict[str, Venue] = {v.name: v for v in (binance.VENUE, bybit.VENUE, okx.VENUE)}

VENUES: dict[str, tuple[Market, type[VenueFeed]]] = {
    feed: (market, venue.feed)  # type: ignore[misc]
    for venue in EXCHANGES.values()
    for feed, market in venue.markets.items()
}


def market(feed: str) -> Market:
    """The market of a feed id (KeyError if unknown)."""
    return VENUES[feed][0]


__all__ = ["EXCHANGES", "VENUES", "market"]
