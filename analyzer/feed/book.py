"""The L2 order book: levels by price, absolute sizes, size 0 removes a level.

Keys. Each side is stored under a key that grows towards the best price, so both sides share one
code path and the best level is always the LAST key: bids use ``key = price``, asks
``key = -price`` (negation is exact). Plain ``bisect`` then works on both sides. Exact float keys
are fine: prices are decoded from the venue's decimal strings, so the same string always gives
the same float.

Layout per side:

    entries  dict key -> _Block holding it  the presence test and a present key's block, in one
                                            hash lookup
    blocks   list of _Block in key order    each 16-128 consecutive keys and their sizes, as two
                                            ``array('d')`` (``keys``, ``sizes``), with running
                                            totals ``notional`` (sum of key * size) and ``size``
    maxes    each block's last key          maxes[-1] is the best key: top() is O(1)

A size update finds its block in ``entries`` and its index by a bisect of the block's keys, and
writes the size in place; an insert or a delete moves one block's tail (a memmove of at most
1 KB).

Why columns. A book is read more widely than it is written: the analytics cut every book's
window once a second (``analyzer/analytics/levels.py``), ~100 levels a side from the top and the
edges of five depth bands out to 200 bps. With hundreds of books, the traffic between two cuts
evicts them from the CPU caches, so a cut costs its cache misses. A level held as objects (a key
float, a cell, a size float: the previous layout) cost up to three misses a read; in arrays a
block's levels are two runs of contiguous doubles, read by slices that copy memory. Measured with
``benchmarks/bench_liquidity.py`` (500 BTCUSDT books, a second of traffic between cuts), the cut
went from ~107 to ~62 µs a book. The price is on the write side: a size update bisects its block
(~70 ns) where a cell was updated in place, ~+30 % per diff on one warm book
(``benchmarks/bench_book.py``). A level takes ~100 bytes, most of them its dict entry and key,
and the cyclic garbage collector sees the blocks, not one object per level.

Why blocks, not one flat sorted array per side: an insert or delete near the top would move the
whole side; and ``depth`` over ±100 bps (~4,150 of 10,000 levels on the real BTCUSDT book) is
two bisects, part of one block and a C-level sum over ~70 block totals, not a pass over the
levels. Why 64 keys a block rather than 32: the cut reads every whole block's total inside a band
(two misses each) and part of one block per band edge (contiguous, so cheap): fewer, longer
blocks win there, for ~4 % more per diff.

Block totals are updated by ``+= key * (new - old)``, which leaves a rounding error of about an
ulp of the block's total per update (~1e-16 relative), and are recomputed exactly whenever a block
is split, merged or built; ``depth`` can differ from an exact sum by that much, nothing more.

Notional is ``price * size`` in the book's own units: quote currency for spot and linear contracts.
For inverse (COIN-M) contracts, where a size is a count of fixed-USD contracts, ``depth`` and
``walk`` are not meaningful as such; converting is the caller's concern, not this class's.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from itertools import pairwise, repeat
from operator import attrgetter, mul

from analyzer.events import Level, Side

_LOAD = 64  # keys per block after a split or a rebuild
_MAX = 2 * _LOAD  # split a block above this
_MIN = _LOAD // 4  # merge a block into a neighbour below this

_notional = attrgetter("notional")


class _Block:
    """Consecutive keys of one side, ascending, and their sizes in the same order;
    ``notional`` = sum of key * size over them, ``size`` = sum of their sizes (an inverse
    contract's notional is its size: ``depth`` of an inverse book, analyzer/analytics/levels.py,
    reads it). (Weak references: for the test that a book holds no reference cycles.)"""

    __slots__ = ("__weakref__", "keys", "notional", "size", "sizes")

    def __init__(self, keys: array[float], sizes: array[float]) -> None:
        self.keys = keys
        self.sizes = sizes
        self.notional = _sum(keys, sizes)
        self.size = sum(sizes)


# key -> its block
_Entries = dict[float, _Block]


def _sum(keys: Iterable[float], sizes: Iterable[float]) -> float:
    """Sum of key * size."""
    return sum(map(mul, keys, sizes))


def _part(blk: _Block, a: int, b: int, sizes_only: bool = False) -> float:
    """Sum of key * size (``sizes_only``: of sizes) over ``blk.keys[a:b]``: from the levels of
    the part or of its complement (the block's running total minus the rest), whichever is
    shorter."""
    keys, sizes = blk.keys, blk.sizes
    if sizes_only:
        if 2 * (b - a) <= len(keys):
            return sum(sizes[a:b])
        return blk.size - sum(sizes[:a]) - sum(sizes[b:])
    if 2 * (b - a) <= len(keys):
        return _sum(keys[a:b], sizes[a:b])
    return blk.notional - _sum(keys[:a], sizes[:a]) - _sum(keys[b:], sizes[b:])


def _total(blk: _Block) -> None:
    """Recompute a block's running totals exactly."""
    blk.notional = _sum(blk.keys, blk.sizes)
    blk.size = sum(blk.sizes)


def _build(levels: Iterable[Level], negate: bool) -> tuple[_Entries, list[_Block], list[float]]:
    sizes = {(-p if negate else p): s for p, s in levels if s}
    keys = sorted(sizes)
    starts = list(range(0, len(keys), _LOAD))
    if len(starts) > 1 and len(keys) - starts[-1] < _MIN:
        del starts[-1]  # fold a short tail into the block before it
    entries: _Entries = {}
    blocks = []
    for j, end in pairwise([*starts, len(keys)]):
        part = keys[j:end]
        blk = _Block(array("d", part), array("d", map(sizes.__getitem__, part)))
        entries.update(zip(part, repeat(blk)))
        blocks.append(blk)
    return entries, blocks, [blk.keys[-1] for blk in blocks]


def _split(i: int, entries: _Entries, blocks: list[_Block], maxes: list[float]) -> None:
    blk = blocks[i]
    new = _Block(blk.keys[_LOAD:], blk.sizes[_LOAD:])
    entries.update(zip(new.keys, repeat(new)))
    del blk.keys[_LOAD:]
    del blk.sizes[_LOAD:]
    _total(blk)
    blocks.insert(i + 1, new)
    maxes[i] = blk.keys[-1]
    maxes.insert(i + 1, new.keys[-1])


def _insert(
    k: float, s: float, entries: _Entries, blocks: list[_Block], maxes: list[float]
) -> None:
    """Add a key that is absent: the general case (new last key of a block, new side, split)."""
    i = bisect_left(maxes, k)
    if i < len(maxes):
        blk = blocks[i]
        j = bisect_left(blk.keys, k)
    elif blocks:  # beyond the current best: becomes the last key of the last block
        i -= 1
        blk = blocks[i]
        j = len(blk.keys)
        maxes[i] = k
    else:
        blk = _Block(array("d"), array("d"))
        j = 0
        blocks.append(blk)
        maxes.append(k)
    blk.keys.insert(j, k)
    blk.sizes.insert(j, s)
    entries[k] = blk
    blk.notional += k * s
    blk.size += s
    if len(blk.keys) > _MAX:
        _split(i, entries, blocks, maxes)


def _delete(k: float, j: int, entries: _Entries, blocks: list[_Block], maxes: list[float]
            ) -> None:
    """Remove a present key, ``keys[j]`` of its block: the general case (the block's last key,
    or the block gets small)."""
    blk = entries.pop(k)
    keys, sizes = blk.keys, blk.sizes
    i = bisect_left(maxes, keys[-1])  # maxes[i] is still this block's old last key
    s = sizes[j]
    del keys[j]
    del sizes[j]
    blk.notional -= k * s
    blk.size -= s
    if len(keys) >= _MIN or len(blocks) == 1:
        if keys:
            maxes[i] = keys[-1]
        else:
            blocks.clear()
            maxes.clear()
        return
    # merge into the next block (the previous one for the last block), split if too big
    del blocks[i]
    del maxes[i]
    if i == len(blocks):
        i -= 1
        into = blocks[i]
        into.keys.extend(keys)
        into.sizes.extend(sizes)
    else:
        into = blocks[i]
        into.keys[:0] = keys
        into.sizes[:0] = sizes
    entries.update(zip(keys, repeat(into)))
    maxes[i] = into.keys[-1]
    if len(into.keys) > _MAX:
        _split(i, entries, blocks, maxes)
    else:
        _total(into)


def _apply_side(
    levels: Iterable[Level],
    negate: bool,
    entries: _Entries,
    blocks: list[_Block],
    maxes: list[float],
) -> None:
    """The per-update hot path. The common cases (a new size for a present key; inserting or
    deleting a key inside a block) are inline; ``_insert`` / ``_delete`` handle the rest."""
    for p, s in levels:
        k = -p if negate else p
        blk = entries.get(k)
        if blk is not None:
            keys = blk.keys
            j = bisect_left(keys, k)
            if s:
                sizes = blk.sizes
                d = s - sizes[j]
                sizes[j] = s
                blk.notional += k * d
                blk.size += d
            elif len(keys) > _MIN and j < len(keys) - 1:  # maxes and block count unchanged
                del entries[k]
                sizes = blk.sizes
                d = sizes[j]
                del keys[j]
                del sizes[j]
                blk.notional -= k * d
                blk.size -= d
            else:
                _delete(k, j, entries, blocks, maxes)
        elif s:
            i = bisect_left(maxes, k)
            if i < len(maxes) and len(keys := (blk := blocks[i]).keys) < _MAX:
                j = bisect_left(keys, k)
                keys.insert(j, k)
                blk.sizes.insert(j, s)
                entries[k] = blk
                blk.notional += k * s
                blk.size += s
            else:
                _insert(k, s, entries, blocks, maxes)


def _band(blocks: list[_Block], maxes: list[float], edge: float) -> float:
    """Sum of key * size over the keys >= ``edge``."""
    i = bisect_left(maxes, edge)
    if i == len(maxes):
        return 0.0
    keys = blocks[i].keys
    rest = sum(map(_notional, blocks[i + 1 :]))
    return rest + _part(blocks[i], bisect_left(keys, edge), len(keys))


def _top(blocks: list[_Block], n: int) -> tuple[array[float], array[float]]:
    """(keys, sizes) of the last ``n`` keys of a side, best first."""
    keys = array("d")
    sizes = array("d")
    for blk in reversed(blocks):
        need = n - len(keys)
        if len(blk.keys) >= need:
            keys += blk.keys[: -need - 1 : -1]
            sizes += blk.sizes[: -need - 1 : -1]
            break
        keys += blk.keys[::-1]
        sizes += blk.sizes[::-1]
    return keys, sizes


class OrderBook:
    """One L2 book. Levels are absolute sizes; size 0 removes the level."""

    __slots__ = ("_ask", "_ask_blocks", "_ask_maxes", "_bid", "_bid_blocks", "_bid_maxes")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.apply_snapshot((), ())

    # -- updates -------------------------------------------------------------------------------

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book with these levels (zero sizes skipped; a repeated price keeps
        its last size)."""
        self._bid, self._bid_blocks, self._bid_maxes = _build(bids, negate=False)
        self._ask, self._ask_blocks, self._ask_maxes = _build(asks, negate=True)

    def add_missing(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set the levels whose price the book does not hold (a side's present levels are kept
        as they are)."""
        bid, ask = self._bid, self._ask
        _apply_side([lv for lv in bids if lv[0] not in bid and lv[1]], False, bid,
                    self._bid_blocks, self._bid_maxes)
        _apply_side([lv for lv in asks if -lv[0] not in ask and lv[1]], True, ask,
                    self._ask_blocks, self._ask_maxes)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply absolute levels: size > 0 sets the level, size 0 deletes it (deleting an
        absent level is a no-op)."""
        _apply_side(bids, False, self._bid, self._bid_blocks, self._bid_maxes)
        _apply_side(asks, True, self._ask, self._ask_blocks, self._ask_maxes)

    # -- top of book -----------------------------------------------------------------------------

    def top(self) -> tuple[float, float, float, float] | None:
        """(bid price, bid size, ask price, ask size), or None if a side is empty."""
        try:
            b = self._bid_maxes[-1]
            k = self._ask_maxes[-1]
        except IndexError:
            return None
        return (b, self._bid_blocks[-1].sizes[-1], -k, self._ask_blocks[-1].sizes[-1])

    def best_bid(self) -> Level | None:
        maxes = self._bid_maxes
        if not maxes:
            return None
        return (maxes[-1], self._bid_blocks[-1].sizes[-1])

    def best_ask(self) -> Level | None:
        maxes = self._ask_maxes
        if not maxes:
            return None
        return (-maxes[-1], self._ask_blocks[-1].sizes[-1])

    def is_crossed(self) -> bool:
        """Best bid >= best ask (a locked book counts as crossed). False if a side is empty."""
        return bool(self._bid_maxes and self._ask_maxes) and (
            self._bid_maxes[-1] >= -self._ask_maxes[-1]
        )

    def mid(self) -> float | None:
        if not (self._bid_maxes and self._ask_maxes):
            return None
        return (self._bid_maxes[-1] - self._ask_maxes[-1]) / 2

    def microprice(self) -> float | None:
        """(bid * ask_size + ask * bid_size) / (bid_size + ask_size); None if a side is empty."""
        t = self.top()
        if t is None:
            return None
        b, b_size, a, a_size = t
        return (b * a_size + a * b_size) / (b_size + a_size)

    # -- levels ----------------------------------------------------------------------------------

    def bids(self, n: int) -> list[Level]:
        """The top ``n`` bid levels, best (highest) first."""
        if n <= 0:
            return []
        return list(zip(*_top(self._bid_blocks, n), strict=True))

    def asks(self, n: int) -> list[Level]:
        """The top ``n`` ask levels, best (lowest) first."""
        if n <= 0:
            return []
        keys, sizes = _top(self._ask_blocks, n)
        return [(-k, s) for k, s in zip(keys, sizes, strict=True)]

    @property
    def bid_count(self) -> int:
        return len(self._bid)

    @property
    def ask_count(self) -> int:
        return len(self._ask)

    def __len__(self) -> int:
        return len(self._bid) + len(self._ask)

    # -- liquidity -------------------------------------------------------------------------------

    def depth(self, bps: float) -> tuple[float, float]:
        """(bid notional, ask notional) within ``bps`` of the MID: the sum of price * size over
        bids with price >= mid * (1 - bps/1e4) and asks with price <= mid * (1 + bps/1e4); a
        level exactly on the edge counts. (0.0, 0.0) if a side is empty (no mid)."""
        bm = self._bid_maxes
        am = self._ask_maxes
        if not (bm and am):
            return (0.0, 0.0)
        mid = (bm[-1] - am[-1]) / 2
        bid = _band(self._bid_blocks, bm, mid * (1 - bps / 1e4))
        # ask keys are -price: price <= hi  <=>  key >= -hi, and key * size sums negated
        # (0.0 - x rather than -x: an empty band gives 0.0, not -0.0)
        ask = 0.0 - _band(self._ask_blocks, am, -(mid * (1 + bps / 1e4)))
        return (bid, ask)

    def walk(self, side: Side, notional: float) -> float | None:
        """VWAP of a market order for ``notional`` (price * size units, see the module doc):
        ``buy`` walks the asks, ``sell`` the bids, from the best level; the last level used is
        partially consumed. None when the visible book cannot fill it (never a partial answer).
        ``notional`` must be > 0."""
        if not notional > 0:
            raise ValueError(f"notional must be > 0, got {notional!r}")
        if side == "buy":
            blocks, sign = self._ask_blocks, -1.0
        elif side == "sell":
            blocks, sign = self._bid_blocks, 1.0
        else:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        left = notional
        qty = 0.0
        for blk in reversed(blocks):
            keys, sizes = blk.keys, blk.sizes
            for i in range(len(keys) - 1, -1, -1):  # (an index: zip() costs more to set up)
                p = sign * keys[i]
                s = sizes[i]
                cost = p * s
                if cost >= left:
                    return notional / (qty + left / p)
                left -= cost
                qty += s
        return None

    def slippage_bps(self, side: Side, notional: float) -> float | None:
        """|VWAP - mid| / mid * 1e4 for ``notional``; None if ``walk`` is None or there is no
        mid."""
        mid = self.mid()
        if mid is None:
            return None
        vwap = self.walk(side, notional)
        if vwap is None:
            return None
        return abs(vwap - mid) / mid * 1e4

    def imbalance(self, n: int) -> float | None:
        """(sum bid size - sum ask size) / (sum of both) over the top ``n`` levels of each side;
        None when both are empty (or n <= 0). One empty side gives +1 or -1."""
        if n <= 0:
            return None
        b = sum(_top(self._bid_blocks, n)[1])
        a = sum(_top(self._ask_blocks, n)[1])
        total = b + a
        if not total:
            return None
        return (b - a) / total

    def _check(self) -> None:
        """Assert the internal invariants (for tests; O(n))."""
        for entries, blocks, maxes in ((self._bid, self._bid_blocks, self._bid_maxes),
                                       (self._ask, self._ask_blocks, self._ask_maxes)):
            keys = [k for blk in blocks for k in blk.keys]
            assert keys == sorted(entries), "blocks out of order or out of step with entries"
            assert all(entries[k] is blk for blk in blocks for k in blk.keys), "wrong block"
            assert maxes == [blk.keys[-1] for blk in blocks], "maxes out of step"
            assert all(blk.keys for blk in blocks), "empty block"
            assert len(blocks) == 1 or all(_MIN <= len(blk.keys) <= _MAX for blk in blocks)
            for blk in blocks:
                assert len(blk.sizes) == len(blk.keys), "sizes out of step with keys"
                assert all(blk.sizes), "zero size stored"
                exact = _sum(blk.keys, blk.sizes)
                assert abs(blk.notional - exact) <= 1e-9 * abs(exact), "notional drifted"
                size = sum(blk.sizes)
                assert abs(blk.size - size) <= 1e-9 * size, "size sum drifted"
