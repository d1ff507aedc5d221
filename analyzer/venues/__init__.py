"""The venue registry: one package per exchange, found here by itself.

Every package under ``analyzer/venues/`` whose ``__init__`` defines ``VENUE`` is a venue (in
the order of their names): adding one is adding its folder. ``EXCHANGES`` maps an exchange
name to its ``Venue`` (markets, feed class, emulator module); ``VENUES`` maps every feed id
(one market of one exchange, the ``venue`` of a config's ``[[feeds]]`` and of every stored
row) to its ``Market`` and feed class. The interface is ``analyzer/venues/base.py``; what a
package holds is in ``analyzer/venues/README.md``.
"""

import importlib
import pkgutil

from analyzer.venues.base import Market, Venue, VenueFeed


def _discover() -> dict[str, Venue]:
    found: dict[str, Venue] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg:
            venue = getattr(importlib.import_module(f"{__name__}.{info.name}"), "VENUE", None)
            if isinstance(venue, Venue):
                found[venue.name] = venue
    return found


EXCHANGES: dict[str, Venue] = _discover()

VENUES: dict[str, tuple[Market, type[VenueFeed]]] = {
    feed: (market, venue.feed)  # type: ignore[misc]
    for venue in EXCHANGES.values()
    for feed, market in venue.markets.items()
}


def market(feed: str) -> Market:
    """The market of a feed id (KeyError if unknown)."""
    return VENUES[feed][0]


__all__ = ["EXCHANGES", "VENUES", "market"]
