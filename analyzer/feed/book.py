"""The L2 order book: levels by price, absolute sizes, size 0 removes a level.

Keys. Each side is stored under a key that grows towards the best price, so both sides share one
code path and the best level is always the LAST key: bids use ``key = price``, asks
``key = -price`` (negation is exact). Plain ``bisect`` then works on both sides with C float
comparisons and no ``key=`` callback. Exact float keys are fine: prices are decoded from the
venue's decimal strings, so the same string always gives the same float.

Layout per side:

    entries  dict key -> _Cell(size, block) one hash lookup per update; mutable, so a size
                                            update allocates nothing
    blocks   list of _Block in key order    each a sorted list of 8-64 consecutive keys, the
                                            same keys' cells in the same order (``cells``) and
                                            ``notional`` = sum of key * size over them
    maxes    each block's last key          maxes[-1] is the best key: top() is O(1)

Cells are not tracked by the cyclic garbage collector. A book holds one per level, and 500 books
of BTCUSDT's density hold ~5 M: as lists, every full collection walked them all (~0.8 s, a stall
of the event loop every few seconds of such traffic) and every young collection the new ones.
The only reference cycles they close (block -> cells -> cell -> block) are cut by hand when a
side's blocks are dropped (``_drop``); a merge or a deleted level leaves no cycle behind.

Why blocks, not one flat sorted list of prices per side (the simpler design, prototyped and
measured against this one on the machine that produced the ``benchmarks/bench_book.py`` figures):
on the real BTCUSDT book ±100 bps around the mid holds ~4,150 of 10,000 levels, and any per-level
Python loop costs ~70 ns a level there, so a flat list needs ~290 µs per ``depth(100)``; with block
notionals it is two bisects, part of one block and a C-level sum over ~130 block totals: ~7 µs.
The price is ~25 ns more per size update and ~1.2x per real diff (median 34-level diff 11 µs vs
9.5 µs, whole-replay mean 24 µs vs 20 µs). At BTCUSDT's ~20 diffs/s and five depth bands read
once a second, blocks also cost less CPU in total. Inserts and deletes (~40 % of changes, median
~200 levels from the top) move at most one block's keys.

Block notionals are updated by ``+= key * (new - old)``, which leaves a rounding error of about an
ulp of the block's total per update (~1e-16 relative), and are recomputed exactly whenever a block
is split, merged or built; ``depth`` can differ from an exact sum by that much, nothing more.

Notional is ``price * size`` in the book's own units: quote currency for spot and linear contracts.
For inverse (COIN-M) contracts, where a size is a count of fixed-USD contracts, ``depth`` and
``walk`` are not meaningful as such; converting is the caller's concern, not this class's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import pairwise
from operator import attrgetter, mul, neg

import msgspec

from analyzer.events import Level, Side

_LOAD = 32  # keys per block after a split or a rebuild
_MAX = 2 * _LOAD  # split a block above this
_MIN = _LOAD // 4  # merge a block into a neighbour below this

_notional = attrgetter("notional")


class _Block:
    """Consecutive keys of one side, ascending; ``cells``: their entries' cells (the same
    objects as in the entries dict, so a size update writes once and readers scanning a block
    reach its sizes without a hash lookup each); ``notional`` = sum of key * size over them and
    ``size`` = sum of their sizes (an inverse contract's notional is its size: ``depth`` of an
    inverse book, analyzer/analytics/levels.py, reads it).
    (Not a list subclass: bisect and del are ~2x slower on one than on a plain list. Weak
    references: for the test that dropped blocks are freed.)"""

    __slots__ = ("__weakref__", "cells", "keys", "notional", "size")

    def __init__(self, keys: list[float], cells: list[_Cell]) -> None:
        self.keys = keys
        self.cells = cells
        self.notional = 0.0
        self.size = 0.0


class _Cell(msgspec.Struct, gc=False):
    """One level: its size and its block (see the module doc on the garbage collector)."""

    size: float
    block: _Block


# key -> its cell
_Entries = dict[float, _Cell]


def _drop(blocks: list[_Block]) -> None:
    """Cut the block -> cell -> block cycles of blocks being dropped, so that reference
    counting frees them (the collector does not see the cells' references)."""
    for blk in blocks:
        blk.cells.clear()


def _sum(keys: list[float], cells: list[_Cell]) -> float:
    """Sum of key * size over ``keys`` and their ``cells`` (sizes by a comprehension: its
    attribute loads are specialised, ~2x faster than ``map(attrgetter("size"), ...)``)."""
    return sum(map(mul, keys, [c.size for c in cells]))


def _size_sum(cells: list[_Cell]) -> float:
    """Sum of the sizes of ``cells``."""
    return sum([c.size for c in cells])


def _total(blk: _Block) -> None:
    """Recompute a block's running totals exactly."""
    blk.notional = _sum(blk.keys, blk.cells)
    blk.size = _size_sum(blk.cells)


def _build(levels: Iterable[Level], negate: bool) -> tuple[_Entries, list[_Block], list[float]]:
    sizes = {(-p if negate else p): s for p, s in levels if s}
    keys = sorted(sizes)
    starts = list(range(0, len(keys), _LOAD))
    if len(starts) > 1 and len(keys) - starts[-1] < _MIN:
        del starts[-1]  # fold a short tail into the block before it
    entries: _Entries = {}
    blocks = []
    for j, end in pairwise([*starts, len(keys)]):
        blk = _Block(keys[j:end], [])
        blk.cells = [_Cell(sizes[k], blk) for k in blk.keys]
        entries.update(zip(blk.keys, blk.cells, strict=True))
        _total(blk)
        blocks.append(blk)
    return entries, blocks, [blk.keys[-1] for blk in blocks]


def _split(i: int, entries: _Entries, blocks: list[_Block], maxes: list[float]) -> None:
    blk = blocks[i]
    keys = blk.keys
    new = _Block(keys[_LOAD:], blk.cells[_LOAD:])
    del keys[_LOAD:]
    del blk.cells[_LOAD:]
    for cell in new.cells:
        cell.block = new
    _total(blk)
    _total(new)
    blocks.insert(i + 1, new)
    maxes[i] = keys[-1]
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
        blk = _Block([], [])
        j = 0
        blocks.append(blk)
        maxes.append(k)
    blk.keys.insert(j, k)
    blk.cells.insert(j, cell := _Cell(s, blk))
    entries[k] = cell
    blk.notional += k * s
    blk.size += s
    if len(blk.keys) > _MAX:
        _split(i, entries, blocks, maxes)


def _delete(k: float, entries: _Entries, blocks: list[_Block], maxes: list[float]) -> None:
    """Remove a present key: the general case (last key of its block, block gets small)."""
    cell = entries.pop(k)
    s, blk = cell.size, cell.block
    keys = blk.keys
    cells = blk.cells
    i = bisect_left(maxes, keys[-1])  # maxes[i] is still this block's old last key
    j = bisect_left(keys, k)
    del keys[j]
    del cells[j]
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
        into.cells.extend(cells)
    else:
        into = blocks[i]
        into.keys[:0] = keys
        into.cells[:0] = cells
    for cell in cells:
        cell.block = into
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
        e = entries.get(k)
        if e is not None:
            if s:
                d = s - e.size
                blk = e.block
                blk.notional += k * d
                blk.size += d
                e.size = s
            elif len(keys := (blk := e.block).keys) > _MIN and k != keys[-1]:
                del entries[k]
                j = bisect_left(keys, k)
                del keys[j]
                del blk.cells[j]
                d = e.size
                blk.notional -= k * d
                blk.size -= d
            else:
                _delete(k, entries, blocks, maxes)
        elif s:
            i = bisect_left(maxes, k)
            if i < len(maxes) and len(keys := (blk := blocks[i]).keys) < _MAX:
                j = bisect_left(keys, k)
                keys.insert(j, k)
                blk.cells.insert(j, cell := _Cell(s, blk))
                entries[k] = cell
                blk.notional += k * s
                blk.size += s
            else:
                _insert(k, s, entries, blocks, maxes)


def _band(blocks: list[_Block], maxes: list[float], edge: float) -> float:
    """Sum of key * size over the keys >= ``edge``."""
    i = bisect_left(maxes, edge)
    if i == len(maxes):
        return 0.0
    blk = blocks[i]
    keys = blk.keys
    j = bisect_left(keys, edge)
    rest = sum(map(_notional, blocks[i + 1 :]))
    # of the edge block, scan whichever part is smaller
    if j * 2 <= len(keys):
        return rest + blk.notional - _sum(keys[:j], blk.cells[:j])
    return rest + _sum(keys[j:], blk.cells[j:])


def _top(blocks: list[_Block], n: int) -> tuple[list[float], list[float]]:
    """(keys, sizes) of the last ``n`` keys of a side, best first."""
    keys: list[float] = []
    cells: list[_Cell] = []
    for blk in reversed(blocks):
        need = n - len(keys)
        if len(blk.keys) >= need:
            keys += blk.keys[: -need - 1 : -1]
            cells += blk.cells[: -need - 1 : -1]
            break
        keys += blk.keys[::-1]
        cells += blk.cells[::-1]
    return keys, [c.size for c in cells]


class OrderBook:
    """One L2 book. Levels are absolute sizes; size 0 removes the level."""

    __slots__ = ("_ask", "_ask_blocks", "_ask_maxes", "_bid", "_bid_blocks", "_bid_maxes")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.apply_snapshot((), ())

    def __del__(self) -> None:
        # a dropped book frees its levels at once (the cells' cycles: see the module doc)
        if hasattr(self, "_bid_blocks"):
            _drop(self._bid_blocks)
            _drop(self._ask_blocks)

    # -- updates -------------------------------------------------------------------------------

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book with these levels (zero sizes skipped; a repeated price keeps
        its last size)."""
        if hasattr(self, "_bid_blocks"):
            _drop(self._bid_blocks)
            _drop(self._ask_blocks)
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
        return (b, self._bid[b].size, -k, self._ask[k].size)

    def best_bid(self) -> Level | None:
        maxes = self._bid_maxes
        if not maxes:
            return None
        b = maxes[-1]
        return (b, self._bid[b].size)

    def best_ask(self) -> Level | None:
        maxes = self._ask_maxes
        if not maxes:
            return None
        k = maxes[-1]
        return (-k, self._ask[k].size)

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
        return list(zip(map(neg, keys), sizes, strict=True))

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
            keys, cells = blk.keys, blk.cells
            for i in range(len(keys) - 1, -1, -1):  # (an index: zip() costs more to set up)
                p = sign * keys[i]
                s = cells[i].size
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
        for entries, blocks, maxes in (
            (self._bid, self._bid_blocks, self._bid_maxes),
            (self._ask, self._ask_blocks, self._ask_maxes),
        ):
            keys = [k for blk in blocks for k in blk.keys]
            assert keys == sorted(entries), "blocks out of order or out of step with entries"
            assert maxes == [blk.keys[-1] for blk in blocks], "maxes out of step"
            assert all(blk.keys for blk in blocks), "empty block"
            assert len(blocks) == 1 or all(_MIN <= len(blk.keys) <= _MAX for blk in blocks)
            for blk in blocks:
                assert len(blk.cells) == len(blk.keys), "cells out of step with keys"
                pairs = zip(blk.keys, blk.cells, strict=True)
                assert all(entries[k] is c for k, c in pairs), "stray cell"
                assert all(c.block is blk for c in blk.cells), "entry in the wrong block"
                assert all(c.size for c in blk.cells), "zero size stored"
                exact = _sum(blk.keys, blk.cells)
                assert abs(blk.notional - exact) <= 1e-9 * abs(exact), "notional drifted"
                size = _size_sum(blk.cells)
                assert abs(blk.size - size) <= 1e-9 * size, "size sum drifted"
