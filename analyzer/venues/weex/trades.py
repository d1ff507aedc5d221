"""One WEEX symbol's trades as the socket handed them on, and the reconnect's REST backfill.

The rule (why: the module doc of ``decode``, "Trades" and "Backfill"): a trade is handed on
once, under the socket's UUID when the socket brings it first, under the REST ``id`` when only
``GET /capi/v3/market/trades`` has it. The two sources name a trade differently, so a REST
trade is matched to the socket's by content: its millisecond, price, size and side (``Key``),
each socket trade matching at most one REST trade (the same content twice in one millisecond
is two trades, counted as such on both sides).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from analyzer.venues.weex.schemas import RestTrade, TradeData

# trades remembered per symbol (ids against the socket's repeats; contents against the REST
# backfill): at least this many, at most twice; a REST page holds at most half of it
TRADES_KEPT = 2000
RECENT_TRADES = 1000  # a REST page: the venue's maximum

Key = tuple[float, float, bool]  # price, size (base units), the buyer was the maker
_time = attrgetter("T")


def _take(buckets: dict[int, dict[Key, list[str]]], ms: int, key: Key) -> str | None:
    """Remove and return one id of ``key`` at ``ms`` (None: there is none), dropping what is
    left empty."""
    bucket = buckets.get(ms)
    ids = bucket.get(key) if bucket is not None else None
    if not ids:
        return None
    tid = ids.pop(0)
    if not ids:
        del bucket[key]  # type: ignore[union-attr]
        if not bucket:
            del buckets[ms]
    return tid


def _trim(buckets: dict[int, dict[Key, list[str]]], count: int) -> int:
    """Keep the newest milliseconds holding at least ``TRADES_KEPT`` ids of ``count``;
    returns the ids kept."""
    if count <= 2 * TRADES_KEPT:
        return count
    kept = 0
    for ms in sorted(buckets, reverse=True):
        if kept >= TRADES_KEPT:
            del buckets[ms]
        else:
            kept += sum(len(ids) for ids in buckets[ms].values())
    return kept


class TradeLedger:
    """What the socket handed on of one symbol and what the REST backfill kept of it.

    ``seen``: the socket ids met, oldest first, each with its trade when the socket's was handed
    on (None: dropped as the backfill's), the latest ``TRADES_KEPT`` at least; the backfill
    matches REST trades to these trades by millisecond and content (``delivered``: built when
    a backfill comes, not on every frame). ``backfilled``: the REST trades handed on under
    their REST id, by millisecond and content, until the socket brings them (then dropped
    there). ``asked``: a backfill was asked for (``ask``) and no trade snapshot came since;
    ``resumed_ms``: the oldest millisecond of the first snapshot after it, where the new
    subscription's trades start."""

    __slots__ = ("asked", "backfilled", "n_backfilled", "resumed_ms", "seen")

    def __init__(self) -> None:
        self.seen: dict[str, TradeData | None] = {}
        self.backfilled: dict[int, dict[Key, list[str]]] = {}
        self.n_backfilled = 0
        self.asked = False
        self.resumed_ms: int | None = None

    # -- the socket --

    def new(self, trades: list[TradeData], snapshot: bool) -> tuple[list[TradeData], int, bool]:
        """The trades of a frame to hand on, in time order; the count dropped (repeats of the
        socket's own, or trades the backfill already handed on); and for a ``tradeSnapshot``,
        whether none of it had been met (trades between it and the last seen may be missing
        from the socket: the REST backfill's case)."""
        seen = self.seen
        had = bool(seen)
        fresh = [t for t in trades if t.t not in seen]
        if len(fresh) > 1:
            fresh = list({t.t: t for t in fresh}.values())  # a trade twice in one frame: once
            fresh.sort(key=_time)
        met = len(trades) > len(fresh)
        if snapshot and self.asked:  # the first snapshot since a backfill was asked for
            self.asked = False
            self.resumed_ms = min((t.T for t in trades), default=None)
        if self.backfilled:
            out = []
            for t in fresh:
                if _take(self.backfilled, t.T, (t.p, t.q, t.m)) is not None:
                    seen[t.t] = None
                    self.n_backfilled -= 1
                    met = True
                else:
                    seen[t.t] = t
                    out.append(t)
        else:  # (no backfill pending: every fresh trade is handed on)
            for t in fresh:
                seen[t.t] = t
            out = fresh
        if len(seen) > 2 * TRADES_KEPT:
            self.seen = dict(list(seen.items())[-TRADES_KEPT:])
        return out, len(trades) - len(out), snapshot and had and bool(fresh) and not met

    def delivered(self) -> dict[int, dict[Key, list[str]]]:
        """The socket's trades handed on (of ``seen``), by millisecond and content: their ids,
        in the order they came."""
        out: dict[int, dict[Key, list[str]]] = {}
        for tid, t in self.seen.items():
            if t is not None:
                out.setdefault(t.T, {}).setdefault((t.p, t.q, t.m), []).append(tid)
        return out

    # -- the REST backfill --

    def ask(self) -> None:
        """A backfill of recent trades is asked for (a reconnect): the next trade snapshot is
        the new subscription's."""
        self.asked = True
        self.resumed_ms = None

    def backfill(self, rows: Iterable[RestTrade]) -> list[tuple[RestTrade, str]]:
        """The REST trades with the id each is handed on under, oldest first (the rule of the
        module doc of ``decode``): one the socket handed on, under the socket's id (the store
        keeps it once); one newer than the new subscription's first millisecond that the socket
        did not hand on, left out (the socket brings it); any other, under its REST id, and
        remembered so that the socket's copy, if it comes later, is dropped."""
        hi = self.resumed_ms
        pool = self.delivered()  # the socket's trades not matched yet
        out: list[tuple[RestTrade, str]] = []
        for r in sorted(rows, key=lambda r: r.time):
            ms = r.time
            key = (r.price, r.qty, r.isBuyerMaker)
            tid = _take(pool, ms, key)
            if tid is not None:
                out.append((r, tid))
                continue
            if hi is not None and ms > hi:
                continue
            rid = str(r.id)
            out.append((r, rid))
            ids = self.backfilled.setdefault(ms, {}).setdefault(key, [])
            if rid not in ids:  # (a trade an earlier backfill kept: remembered once)
                ids.append(rid)
                self.n_backfilled += 1
        self.n_backfilled = _trim(self.backfilled, self.n_backfilled)
        return out


__all__ = ["RECENT_TRADES", "TRADES_KEPT", "Key", "TradeLedger"]
