"""The simulated L2 book of one instrument, and the events its order flow produces.

The book lives on the instrument's tick grid. A price is held as an integer number of ticks and
a size as an integer number of lots, so that partial fills never drift and every price a change
mentions is the same float as in the snapshot (``ticks * num / den``, correctly rounded). Each
side is kept as *signed* keys sorted toward the best level (asks -ticks, bids +ticks), so both
sides are handled by the same code and the top is the end of a list (see ``SimBook``).

Order flow, per interval of a step (each update takes the next venue update id):
  deep modifies   levels below the top get new sizes (mostly near the top, sometimes deep);
  deep adds and   a new level in the gap before a level, or a level goes: the book's shape
  cancels         keeps moving without touching the top;
  top updates     the best level gets a new size, goes, or a better one appears inside the
                  spread (when there is room): each one is a ``Quote``;
  taker orders    walk the opposite side from the best level: one ``Trade`` per price they
                  fill, the levels they empty or reduce go into the change, one update id.
Sizes grow with the distance from the mid (like (1 + d / 3 bp) ** 0.6) with noise; gaps between
levels grow with the rank. Every step the book recentres on the instrument's fair price (levels
now through it go, fresh ones fill the top) and keeps each side's level count near the target
by trimming or extending its far end.

Events: a ``BookChange`` per interval with changes, at the interval's end (absolute sizes, 0
deletes, each level once with its last size, in the order the levels first changed), carrying
the ids of its updates; a ``Quote`` at each update that changes the best bid or ask (a
best-bid/offer stream: ``update_id`` is that update's id, so it may fall inside the next
change's [first_id, last_id]). Within an interval the deep updates take their ids before the top
updates and trades. Id rules: spot style, ``first_id == previous last_id + 1`` and
``prev_id == -1``; futures style (a prev id), ``prev_id == previous last_id`` and ids skip
a few values between changes.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from decimal import Decimal
from itertools import accumulate
from statistics import NormalDist

from analyzer.events import BookChange, Level, Liquidation, Quote, Trade

RECENTRE_NS = 1_000  # the recentring update lands 1 µs into a step
DEEP_RANK = 40  # deep ranks: geometric below this, uniform from it to half the book
DEEP_UNIFORM = 0.1  # share of deep updates that are uniform over the deep part of the book
STRUCT_SHARE = 0.35  # share of the updates below the top that add or cancel a level
TOP_MODIFY, TOP_CANCEL = 0.6, 0.2  # top updates: the rest improve the best (inside the spread)
SIZE_BUCKETS_PER_BP = 4
SIZE_BUCKETS = 2048
GAP_GROWTH_RANKS = 300.0  # the mean gap between levels doubles every this many ranks
PATTERN = 4096  # length of the precomputed patterns (near-top refills, deep modifies)
PATTERN_START_BITS = 11  # a pattern is read from a random place among its first 2048 entries
_SKIP = (0, 1, 2, 7)  # futures-style ids: values skipped between two changes
_BOOK_SIDE = ("buy", "sell")  # taker side by the book side it walks: asks (0), bids (1)


def ratio(x: float) -> tuple[int, int]:
    """(num, den) with num/den == the decimal ``x`` as written (0.1 -> (1, 10))."""
    return Decimal(repr(x)).as_integer_ratio()


def quantiles(median: float, sigma: float, n: int = 256) -> list[float]:
    """n equiprobable values of a lognormal with that median."""
    nd = NormalDist()
    return [median * math.exp(sigma * nd.inv_cdf((i + 0.5) / n)) for i in range(n)]


def poisson_table(lam: float, n: int = 256) -> list[int]:
    """n equiprobable draws of Poisson(lam) (inverse CDF at the bucket mid-points)."""
    out = []
    k, p = 0, math.exp(-lam)
    cdf = p
    for i in range(n):
        u = (i + 0.5) / n
        while u > cdf and k < 10 * lam + 20:
            k += 1
            p *= lam / k
            cdf += p
        out.append(k)
    return out


def rank_table(n: int = 256) -> list[int]:
    """n equiprobable ranks below the top: geometric from 1, and ``DEEP_UNIFORM`` of them -1
    (to be drawn uniformly beyond ``DEEP_RANK``)."""
    deep = round(DEEP_UNIFORM * n)
    rest = n - deep
    q = 0.3  # P(rank r+1) / P(rank r) = 1 - q
    out = [1 + min(int(math.log(1 - (i + 0.5) / rest) / math.log(1 - q)), DEEP_RANK - 2)
           for i in range(rest)]
    return out + [-1] * deep


class BookParams:
    """What a book needs to know about its instrument (computed once by the model)."""

    __slots__ = ("is_derivative", "levels", "levels_per_bp", "liq_share", "lot", "sends_prev_id",
                 "spread_ticks", "tick", "top_size_lots", "trade_size_lots")

    def __init__(self, *, tick: float, lot: float, levels: int, levels_per_bp: float,
                 top_size_lots: float, trade_size_lots: float, spread_ticks: int,
                 sends_prev_id: bool, is_derivative: bool, liq_share: float) -> None:
        self.tick = tick
        self.lot = lot
        self.levels = levels
        self.levels_per_bp = levels_per_bp
        self.top_size_lots = top_size_lots
        self.trade_size_lots = trade_size_lots
        self.spread_ticks = spread_ticks
        self.sends_prev_id = sends_prev_id
        self.is_derivative = is_derivative
        self.liq_share = liq_share  # share of taker orders that are liquidations


class Flow:
    """Expected counts per interval: top updates + taker orders (the events), deep modifies,
    deep adds/cancels; and the share of the events that are taker orders."""

    __slots__ = ("deep", "events", "struct", "trade_share")

    def __init__(self, *, updates: float, trades: float, top_share: float) -> None:
        top = updates * top_share
        self.events = top + trades
        self.deep = (updates - top) * (1 - STRUCT_SHARE)
        self.struct = (updates - top) * STRUCT_SHARE
        self.trade_share = trades / self.events if self.events else 0.0


class SimBook:
    """One instrument's book and its event generator (see the module docstring).

    Each side is two aligned lists sorted by key with the best level *last*: ``keys`` (asks
    store -ticks, bids +ticks, so both ascend toward the best) and ``lots`` (integer sizes).
    Everything at the top (updates, taker walks, a move's drop and refill) is then an append
    or a pop at the end, and rank r is index -1 - r. ``chg`` holds, per side, the levels
    changed since the last ``BookChange`` as ready ``price -> size`` floats (0.0 deletes):
    emitting a change is ``list(dict.items())``. Neither side is ever empty: taker walks and
    cancels stop at the last level.

    Ids, readable by a renderer: ``last_emitted`` is the last id of the changes emitted so far
    (the snapshot's), ``first_pending`` the first id of the next change (futures ids skip
    values between changes: a snapshot stamped with it bridges ``U <= L <= u``), ``uid`` the
    last id used, ``tid`` the last trade id.
    """

    __slots__ = (
        "_bits", "_cum", "_dmax", "_dpat", "_ends", "_fac", "_gapm", "_last_top", "_noise",
        "_pois", "_rank", "_reff", "_refv", "_rnd", "_sizes", "_szr", "_topf", "_topv",
        "_tsizes", "chg", "depth", "empty_side", "feed", "first_pending", "frozen", "keys",
        "last_emitted", "ld", "ln", "lots", "mid", "mid_scale", "n_intervals", "p", "stn", "sym",
        "td", "tid", "tn", "trade_thr", "uid", "volume",
    )

    def __init__(self, feed: str, symbol: str, p: BookParams, rng: random.Random, *,
                 fair: float, first_id: int, first_trade_id: int, n_intervals: int,
                 flow: Flow) -> None:
        self.feed = feed
        self.sym = symbol
        self.p = p
        self._rnd = rng.random
        self._bits = rng.getrandbits
        self.tn, self.td = ratio(p.tick)
        self.ln, self.ld = ratio(p.lot)
        self.stn = (-self.tn, self.tn)  # price of key k on side s: (k * stn[s]) / td
        self.keys: tuple[list[int], list[int]] = ([], [])  # asks, bids: ascending, best last
        self.lots: tuple[list[int], list[int]] = ([], [])
        self.chg: tuple[dict[float, float], dict[float, float]] = ({}, {})
        self.n_intervals = n_intervals
        self._ends: dict[int, list[int]] = {}  # interval ends within a step, by step length
        # one 8-bit draw each: events (top updates + taker orders), deep modifies, adds/cancels
        self._pois = (poisson_table(flow.events), poisson_table(flow.deep),
                      poisson_table(flow.struct))
        self.trade_thr = round(flow.trade_share * 65536)
        self._rank = rank_table()
        self._fac = [0.2 + 1.6 * (i + 0.5) / 256 for i in range(256)]  # size noise, mean 1
        self._dmax = max(DEEP_RANK + 1, p.levels // 2)
        self.depth = 1.0
        self.frozen = False  # crossed-book scenario: no recentring, no trades, no top changes
        self.empty_side = -1  # one-sided scenario: the side kept empty (0 asks, 1 bids)
        self.uid = first_id
        self.last_emitted = first_id
        self.first_pending = first_id + 1
        self.tid = first_trade_id
        self.volume = 0  # lots traded since the model last read it (open interest drift)
        self._last_top: tuple[int, int, int, int] | None = None
        self.mid = (0.0, 0.0)  # per side, in keys: a level's distance is mid[s] - key
        self.mid_scale = 0.0
        self._tables(fair)
        self.recentre(fair)
        self.chg[0].clear()
        self.chg[1].clear()
        self._last_top = self.top_keys()

    # -- set-up -----------------------------------------------------------------------------

    def _tables(self, fair: float) -> None:
        """Size, gap and pattern tables for a price around ``fair``, scaled by ``depth``."""
        p = self.p
        rnd = self._rnd
        ln, ld = self.ln, self.ld
        ticks_per_bp = fair * self.td / self.tn / 1e4
        g0 = max(1.0, ticks_per_bp / p.levels_per_bp)
        # gap = 1 + int(U * m) has mean (1 + m) / 2: the level's mean gap g0 (1 + rank / R)
        self._gapm = [2.0 * g0 * (1 + r / GAP_GROWTH_RANKS) - 1 for r in range(p.levels)]
        top = p.top_size_lots * self.depth
        # base size of a level d bps from the mid: grows like (1 + d / 3) ** 0.6
        self._sizes = [
            top * (1 + i / SIZE_BUCKETS_PER_BP / 3) ** 0.6 for i in range(SIZE_BUCKETS)
        ]
        self.mid_scale = SIZE_BUCKETS_PER_BP / ticks_per_bp  # size buckets per tick
        # the same by rank, from the mean distance of rank r: g0 (r + r^2 / 2R) ticks
        self._szr = [
            top * (1 + g0 * (r + r * r / 2 / GAP_GROWTH_RANKS) / ticks_per_bp / 3) ** 0.6
            for r in range(round(p.levels * 1.2) + 2)
        ]
        self._tsizes = [
            max(1, round(x * self.depth)) for x in quantiles(p.trade_size_lots, 1.0)
        ]
        self._topv = [int(top * f) + 1 for f in self._fac]
        self._topf = [(v * ln) / ld for v in self._topv]
        # Patterns read from a random place, instead of drawing every value: the refill of
        # the top after a move (cumulative gaps, lots, sizes; top sizes, as a refill spans a
        # bp or two) and the deep modifies (side, index -1 - rank, lots, size).
        cum = [0]
        for _ in range(PATTERN):
            cum.append(cum[-1] + 1 + int(rnd() * (2 * g0 - 1)))
        self._cum = cum
        # size noise, mean 1: read from any start in the first 2048, for up to a whole side
        n_noise = (1 << PATTERN_START_BITS) + max(PATTERN, round(p.levels * 1.2)) + 1
        self._noise = [0.2 + 1.6 * rnd() for _ in range(n_noise)]
        self._refv = [int(top * f) + 1 for f in self._noise[: PATTERN + 1]]
        self._reff = [(v * ln) / ld for v in self._refv]
        rank, fac, szr, dmax = self._rank, self._fac, self._szr, self._dmax
        dpat = []
        for _ in range(PATTERN):
            r = rank[int(rnd() * 256)]
            if r < 0:
                r = DEEP_RANK + int(rnd() * (dmax - DEEP_RANK))
            v = int(szr[r] * fac[int(rnd() * 256)]) + 1
            dpat.append((int(rnd() * 2), -1 - r, v, (v * ln) / ld))
        self._dpat = dpat

    # -- queries ----------------------------------------------------------------------------

    def top_keys(self) -> tuple[int, int, int, int] | None:
        ka, kb = self.keys
        if not ka or not kb:
            return None
        return (kb[-1], self.lots[1][-1], ka[-1], self.lots[0][-1])

    def best(self) -> tuple[float, float] | None:
        """(best bid, best ask) prices, None while a side is empty."""
        ka, kb = self.keys
        if not ka or not kb:
            return None
        return (kb[-1] * self.tn) / self.td, (-ka[-1] * self.tn) / self.td

    def snapshot(self) -> tuple[int, list[Level], list[Level]]:
        """(last id, bids best first, asks best first) as of the last emitted change."""
        tn, td, ln, ld = self.tn, self.td, self.ln, self.ld
        (ka, kb), (la, lb) = self.keys, self.lots
        bids = [((k * tn) / td, (v * ln) / ld) for k, v in zip(kb[::-1], lb[::-1], strict=True)]
        asks = [((-k * tn) / td, (v * ln) / ld) for k, v in zip(ka[::-1], la[::-1], strict=True)]
        return self.last_emitted, bids, asks

    # -- one step ---------------------------------------------------------------------------

    def run(self, t0: int, t1: int, fair: float, out: list) -> None:
        """Events of the interval (t0, t1] with the fair price of the step, appended to out.

        This is the model's hot loop: everything is bound to locals once per step, each kind
        of update has its own loop, and changes and quotes are emitted inline (a method call
        and a dozen attribute reads per update would cost more than the update itself).
        """
        if not self.frozen:
            self.recentre(fair)
        self.maintain()
        if self.top_keys() != self._last_top and (self.chg[0] or self.chg[1]):
            self._quote(t0 + RECENTRE_NS, out)
        rnd, bits, rank, fac, szr = self._rnd, self._bits, self._rank, self._fac, self._szr
        pois_ev, pois_deep, pois_struct = self._pois
        dpat, dmax, topv, topf = self._dpat, self._dmax, self._topv, self._topf
        keys2, lots2, chg2, stn2 = self.keys, self.lots, self.chg, self.stn
        ka, kb = keys2
        la, lb = lots2
        ca, cb = chg2
        trade_thr = self.trade_thr
        top_mod, top_can = round(TOP_MODIFY * 128), round((TOP_MODIFY + TOP_CANCEL) * 128)
        half = self.p.levels // 2
        empty, frozen = self.empty_side, self.frozen
        feed, sym, tn, td, ln, ld = self.feed, self.sym, self.tn, self.td, self.ln, self.ld
        linked = self.p.sends_prev_id
        uid, first, last = self.uid, self.first_pending, self.last_emitted
        span = t1 - t0
        ends = self._ends.get(span)
        if ends is None:
            n = self.n_intervals
            ends = self._ends[span] = [span * j // n for j in range(1, n + 1)]
        # The top as floats [bid, bid size, ask, ask size]: deep updates never touch it, the
        # top updates and taker orders below keep it up to date.
        top = [(kb[-1] * tn) / td, (lb[-1] * ln) / ld, (-ka[-1] * tn) / td, (la[-1] * ln) / ld]
        a = t0
        for b in ends:
            b += t0
            x = bits(26)
            nd = pois_deep[x & 255]
            if nd:  # deep modifies, from the pattern
                i = bits(PATTERN_START_BITS)
                if len(ka) > dmax and len(kb) > dmax:
                    for s, ri, v, fl in dpat[i : i + nd]:
                        lots2[s][ri] = v
                        chg2[s][(keys2[s][ri] * stn2[s]) / td] = fl
                else:  # a side is short (one-sided book): skip what it lacks
                    for s, ri, v, fl in dpat[i : i + nd]:
                        if -ri <= len(keys2[s]):
                            lots2[s][ri] = v
                            chg2[s][(keys2[s][ri] * stn2[s]) / td] = fl
                uid += nd
            ns = pois_struct[(x >> 8) & 255]
            for _ in range(ns):  # deep adds and cancels (below the top)
                y = bits(24)
                s = y & 1
                if s == empty:
                    s ^= 1
                keys = keys2[s]
                nk = len(keys)
                r = rank[(y >> 1) & 255]
                if r < 0:
                    r = DEEP_RANK + int(rnd() * (dmax - DEEP_RANK))
                if r >= nk:
                    continue
                if y >> 23:  # add a level in the gap between ranks r and r - 1
                    lo, hi = keys[-1 - r], keys[-r]
                    if hi - lo < 2:
                        continue
                    k = lo + 1 + int(rnd() * (hi - lo - 1))
                    v = int(szr[r] * fac[(y >> 9) & 255]) + 1
                    keys.insert(-r, k)
                    lots2[s].insert(-r, v)
                    chg2[s][(k * stn2[s]) / td] = (v * ln) / ld
                elif nk > half:  # cancel
                    k = keys.pop(-1 - r)
                    del lots2[s][-1 - r]
                    chg2[s][(k * stn2[s]) / td] = 0.0
                else:
                    continue
                uid += 1
            ne = 0 if frozen else pois_ev[(x >> 16) & 255]
            if ne:  # top updates and taker orders: each one an event
                dt = (b - a) // (ne + 1)
                ts = a
                for _ in range(ne):
                    ts += dt
                    y = bits(32)
                    if y & 0xFFFF < trade_thr:
                        self.uid = uid
                        self._trade(ts, out)
                        uid = self.uid
                        top = [(kb[-1] * tn) / td, (lb[-1] * ln) / ld, (-ka[-1] * tn) / td,
                               (la[-1] * ln) / ld]
                        out.append(Quote(feed, sym, ts, ts, top[0], top[1], top[2], top[3],
                                         uid))
                        continue
                    s = (y >> 16) & 1
                    if s == empty:
                        s ^= 1
                    keys = keys2[s]
                    lots = lots2[s]
                    act = (y >> 17) & 127
                    i = 2 - 2 * s  # index of the side's price in top
                    if act >= top_can:  # improve the best: anywhere inside the spread
                        gap = -keys2[s ^ 1][-1] - keys[-1]  # ticks
                        if gap > 1:
                            k = keys[-1] + 1 + (y >> 24) % (gap - 1)
                            keys.append(k)
                            lots.append(0)
                            top[i] = (k * stn2[s]) / td
                    elif act >= top_mod and len(keys) > 1:  # cancel the best
                        keys.pop()
                        lots.pop()
                        chg2[s][top[i]] = 0.0
                        top[i] = (keys[-1] * stn2[s]) / td
                        top[i + 1] = (lots[-1] * ln) / ld
                        uid += 1
                        out.append(Quote(feed, sym, ts, ts, top[0], top[1], top[2], top[3],
                                         uid))
                        continue
                    lots[-1] = topv[y >> 24]
                    chg2[s][top[i]] = top[i + 1] = topf[y >> 24]
                    uid += 1
                    out.append(Quote(feed, sym, ts, ts, top[0], top[1], top[2], top[3], uid))
            if ca or cb:
                out.append(BookChange(feed, sym, b, b, False, list(cb.items()),
                                      list(ca.items()), first, uid, last if linked else -1))
                ca.clear()
                cb.clear()
                last = uid
                if linked:
                    uid += _SKIP[x >> 24]
                first = uid + 1
            a = b
        self.uid, self.first_pending, self.last_emitted = uid, first, last
        self._last_top = self.top_keys()

    def _trade(self, ts: int, out: list) -> None:
        """A taker order walks one side from the best level (the caller quotes the top)."""
        x = self._bits(9)
        s = x & 1  # the side walked: 0 asks (taker buys), 1 bids (taker sells)
        if s == self.empty_side:
            s ^= 1
        keys, lots = self.keys[s], self.lots[s]
        q = self._tsizes[x >> 1]
        p = self.p
        liq = p.is_derivative and self._rnd() < p.liq_share
        if liq:
            q *= 5
        ch = self.chg[s]
        side = _BOOK_SIDE[s]
        stn, td, ln, ld = self.stn[s], self.td, self.ln, self.ld
        feed, sym = self.feed, self.sym
        self.uid += 1
        filled = 0
        notional = 0.0
        while q and len(keys) > 1:  # never empties a side
            v = lots[-1]
            px = (keys[-1] * stn) / td
            if v <= q:
                fill = v
                keys.pop()
                lots.pop()
                ch[px] = 0.0
            else:
                fill = q
                lots[-1] = v - q
                ch[px] = ((v - q) * ln) / ld
            q -= fill
            self.tid += 1
            out.append(Trade(feed, sym, ts, ts, str(self.tid), px, (fill * ln) / ld, side))
            filled += fill
            notional += fill * px
        self.volume += filled
        if liq and filled:
            out.append(Liquidation(feed, sym, ts, ts, side, notional / filled, (filled * ln) / ld))

    def _quote(self, ts: int, out: list) -> None:
        ka, kb = self.keys
        if ka and kb:
            la, lb = self.lots
            self._last_top = (kb[-1], lb[-1], ka[-1], la[-1])
            tn, td, ln, ld = self.tn, self.td, self.ln, self.ld
            out.append(Quote(self.feed, self.sym, ts, ts, (kb[-1] * tn) / td, (lb[-1] * ln) / ld,
                             (-ka[-1] * tn) / td, (la[-1] * ln) / ld, self.uid))

    # -- shape keeping ----------------------------------------------------------------------

    def recentre(self, fair: float) -> None:
        """Move the top to the fair price: levels now through it go, fresh ones fill the gap
        between the new best and the old one (at most ``levels`` of them)."""
        f = fair * self.td / self.tn
        spread = self.p.spread_ticks
        bid = math.floor(f - spread / 2)
        self.mid = (-f, f)
        targets = (-(bid + spread), bid)  # the best key of each side
        changed = False
        for s in (0, 1):
            if s == self.empty_side:
                continue
            keys, tk = self.keys[s], targets[s]
            n = len(keys) - bisect_right(keys, tk)
            if n:
                self._drop(s, n)
                changed = True
            if not keys or keys[-1] < tk:
                self._refill(s, tk)
                changed = True
        if changed:
            self.uid += 1

    def _drop(self, s: int, n: int, far: bool = False) -> None:
        """Delete the n best levels of side s (the n farthest with ``far``)."""
        keys = self.keys[s]
        cut = slice(None, n) if far else slice(len(keys) - n, None)
        stn, td = self.stn[s], self.td
        self.chg[s].update(dict.fromkeys([(k * stn) / td for k in keys[cut]], 0.0))
        del keys[cut]
        del self.lots[s][cut]

    def _refill(self, s: int, tk: int) -> None:
        """New levels from key tk (the new best) back to the side's current best: gaps and
        sizes from the near-top pattern; level by level, with gaps by rank and sizes by
        distance, only for a refill longer than half the book."""
        keys = self.keys[s]
        cum = self._cum
        i0 = self._bits(PATTERN_START_BITS)
        base = cum[i0]
        i1 = bisect_left(cum, base + tk - keys[-1], i0) if keys else len(cum)
        if i1 - i0 <= self._dmax:
            off = tk + base
            new = [off - c for c in cum[i1 - 1 : i0 - 1 if i0 else None : -1]]  # ascending
            stn, td = self.stn[s], self.td
            self.chg[s].update(zip([(k * stn) / td for k in new], self._reff[i0:i1],
                                   strict=True))
            keys.extend(new)
            self.lots[s].extend(self._refv[i0:i1])
            return
        end = keys[-1] if keys else tk - (1 << 62)
        new = []
        k = tk
        r = 0
        gapm = self._gapm
        limit = len(gapm)
        rnd = self._rnd
        while k > end and r < limit:
            new.append(k)
            k -= 1 + int(rnd() * gapm[r])
            r += 1
        new.reverse()
        keys.extend(new)
        self.lots[s].extend(self._fill(s, new))

    def maintain(self) -> None:
        """Keep each side's level count within 20 % of the target, at its far end."""
        n = self.p.levels
        for s in (0, 1):
            if s == self.empty_side:
                continue
            keys = self.keys[s]
            nk = len(keys)
            if nk > n * 1.2:
                self._drop(s, nk - n, far=True)
                self.uid += 1
            elif keys and nk < n * 0.8:  # extend: gaps and sizes by rank
                rnd, gapm = self._rnd, self._gapm
                far = keys[0]
                new = [far - d for d in accumulate([1 + int(rnd() * gapm[r])
                                                     for r in range(nk, n)])]
                i = self._bits(PATTERN_START_BITS)
                noise = self._noise[i : i + n - nk]
                vals = [int(b * f) + 1 for b, f in zip(self._szr[nk:n], noise, strict=True)]
                new.reverse()
                vals.reverse()
                stn, td, ln, ld = self.stn[s], self.td, self.ln, self.ld
                self.chg[s].update(zip([(k * stn) / td for k in new],
                                       [(v * ln) / ld for v in vals], strict=True))
                keys[0:0] = new
                self.lots[s][0:0] = vals
                self.uid += 1

    def _fill(self, s: int, new: list[int]) -> list[int]:
        """Fresh sizes, by distance from the mid, for the levels ``new`` of side s (entered in
        the change); returns their lots."""
        ch, sizes, fac, bits = self.chg[s], self._sizes, self._fac, self._bits
        mid, scale, top = self.mid[s], self.mid_scale, SIZE_BUCKETS - 1
        stn, td, ln, ld = self.stn[s], self.td, self.ln, self.ld
        out = []
        for k in new:
            d = int((mid - k) * scale)
            v = int(sizes[min(d, top) if d > 0 else 0] * fac[bits(8)]) + 1
            ch[(k * stn) / td] = (v * ln) / ld
            out.append(v)
        return out

    # -- scenario hooks (applied at the start of a step, emitted with its first change) -----

    def set_depth(self, factor: float, fair: float) -> None:
        """Scale the book's sizes (and taker sizes) to ``factor`` of normal: every level gets a
        fresh size from the new tables."""
        self.depth = factor
        self._tables(fair)
        for s in (0, 1):
            self.lots[s][:] = self._fill(s, self.keys[s])
        self.uid += 1

    def empty(self, side: int, keep: int = 10) -> None:
        """Remove all but the farthest ``keep`` (>= 1) levels of a side and keep it so
        (one-sided book) until ``empty(-1)``."""
        if side >= 0:
            self._drop(side, max(0, len(self.keys[side]) - max(1, keep)))
            self.uid += 1
        self.empty_side = side

    def cross(self, ticks: int) -> None:
        """Put a bid ``ticks`` above the best ask and freeze the top (crossed book)."""
        ka, kb = self.keys
        k = -ka[-1] + ticks
        v = max(1, round(self.p.top_size_lots * self.depth))
        kb.append(k)
        self.lots[1].append(v)
        self.chg[1][(k * self.tn) / self.td] = (v * self.ln) / self.ld
        self.uid += 1
        self.frozen = True

    def uncross(self) -> None:
        """Remove bids at or above the best ask and resume normal flow."""
        ka, kb = self.keys
        n = 0
        while n < len(kb) - 1 and kb[-1 - n] >= -ka[-1]:
            n += 1
        self._drop(1, n)
        self.uid += 1
        self.frozen = False
