"""The analysis window of a live book: the levels and band remainders that
``liquidity.liquidity`` needs, cut from an ``OrderBook`` without touching every level, and the two
frames that function reads.

The window of one side (reference point for the bands: the mid) is

1. the exact levels from the best one while their cumulative notional is below
   ``cover_notional``, then ONE more level (and at least ``top_n`` levels, for the imbalance),
   capped at ``max_levels``. A walk for any notional up to ``cover_notional`` gives the same
   answer on these levels as on the full book (the extra level means a different rounding of
   the cumulative sum cannot leave the walk one level short); if ``max_levels`` cut it,
   ``liquidity`` reports ``insufficient_depth``, never a number from a cut book;
2. per band of ``bands_bps``, the *remainder*: the notional resting inside the band (bids with
   price >= mid * (1 - x/1e4), asks with price <= mid * (1 + x/1e4), a level on the edge
   included) at levels deeper than the last exact level. 0.0 when the band edge lies within the
   exact levels (the last exact level is on or beyond it); None when the book does not reach the
   edge (its deepest level lies strictly inside the band: the visible book cannot show the band
   complete). So depth(band) = exact levels inside the band + remainder, exactly the full
   book's depth, whatever ``max_levels`` is;
3. per band, whether it is *exact*: its edge lies within the book's ``horizon``, the part known
   complete (a REST snapshot cut at the venue's limit misses, beyond its last level, every
   level no diff has touched since); otherwise the full book's depth is a lower bound.

Notional, in the book's own units: linear (spot, USDⓈ-M) ``price * size * contract_size`` in the
quote currency; inverse (COIN-M) ``size * contract_size`` in USD. ``cover_notional`` and the
remainders are in those units: a caller configured in USD divides by the quote's USD rate for a
linear book.

Cost. This module reads ``OrderBook``'s private layout (keys per side in blocks of 16-128, best
key last, each block's keys and sizes in two ``array('d')``, its running ``notional`` = sum of
key * size and ``size`` = sum of sizes; see ``analyzer/feed/book.py``). The exact levels are
whole blocks taken by their totals plus the block that reaches the cover, summed level by level
(C-level ``accumulate`` + ``bisect``); keys and sizes are sliced from the blocks' arrays. A
remainder is, per band, two bisects, the part of the edge block beyond the edge (or its
complement, whichever is shorter: at most half a block) and a C-level sum over the whole blocks
between the previous (narrower) band's edge and this one: O(log n + blocks), reading levels only
in the edge blocks. At a few hundred books that change between two cuts, the cost is mostly
cache misses on the block totals (a block's object and its total) and the interpreter's work on
the edge blocks: ``benchmarks/bench_liquidity.py``. The window's levels stay in arrays up to
the Polars frame, which takes their buffers whole. The block totals' rounding drift (~1e-16
relative per update, see ``book.py``) is the only difference from an exact sum. An inverse
book's notional is its sizes' sum: the same arithmetic on the blocks' size sums.
"""

from __future__ import annotations

import functools
import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import attrgetter, mul, neg
from typing import Any, TypeAlias

import polars as pl
import pyarrow as pa

from analyzer.analytics.liquidity import SIDE
from analyzer.feed.book import OrderBook, _notional, _part

# (bid prices best first, bid sizes, ask prices best first, ask sizes,
#  bid remainder per band, ask remainder per band, bid exact per band, ask exact per band)
# (array('d') is subscriptable in annotations only from Python 3.12: the alias is a string)
Window: TypeAlias = """tuple[
    array[float], array[float], array[float], array[float], list[float | None],
    list[float | None], list[bool | None], list[bool | None],
]"""

_CHUNK = 16  # levels summed at a time, looking for the one that reaches the cover
_block_size = attrgetter("size")
# (a small plan, written as it should run: the optimizer's passes cost more than they save)
_PLAIN = pl.QueryOptFlags.none()


@functools.lru_cache(maxsize=32)
def _bands(bands: tuple[float, ...]) -> tuple[tuple[int, ...], tuple[float, ...],
                                               tuple[float, ...]]:
    """(band indices narrowest first, their bid edge factors 1 - x/1e4, ask edge factors
    1 + x/1e4): a band's edge is mid * factor, the narrowest band's edge the largest key."""
    order = tuple(sorted(range(len(bands)), key=bands.__getitem__))
    return (order, tuple(1 - bands[b] / 1e4 for b in order),
            tuple(1 + bands[b] / 1e4 for b in order))


def _exact(
    blocks: list[Any], ask: bool, inverse: bool, cover: float, least: int, max_levels: int
) -> tuple[array[float], array[float], int, int]:
    """(keys best first, sizes, i, j) of one side's exact levels: from the best while the
    cumulative notional (key * size, made positive for asks; inverse: size) is below ``cover``,
    then one more; at least ``least`` levels, at most ``max_levels``. The last key taken is
    ``blocks[i].keys[j]``. Whole blocks are taken by their running totals; only the block that
    reaches ``cover`` is summed level by level."""
    sign = -1.0 if ask else 1.0
    keys = array("d")
    sizes = array("d")
    cum = 0.0  # notional of the keys taken, while below cover
    want = 0  # how many keys, once known
    i = len(blocks) - 1
    while True:
        blk = blocks[i]
        n = len(keys)
        keys += blk.keys[::-1]
        sizes += blk.sizes[::-1]
        if not want:
            total = blk.size if inverse else sign * blk.notional
            if cum + total < cover:
                cum += total
            else:  # this block reaches cover: find the level by exact prefix sums, a few
                # levels at a time (it is often early in a block of up to 128)
                at = -cum if ask and not inverse else cum  # key space: asks sum negative
                for c in range(n, len(keys), _CHUNK):
                    e = c + _CHUNK
                    acc = list(accumulate(sizes[c:e] if inverse else
                                          map(mul, keys[c:e], sizes[c:e]), initial=at))
                    # (asks: the prefix sums fall, neg() makes them rise)
                    k = (bisect_left(acc, cover, key=neg) if ask and not inverse else
                         bisect_left(acc, cover))
                    if k < len(acc):  # acc[k], the notional through keys[c + k - 1], reaches it
                        want = min(max(c + k + 1, least), max_levels)
                        break
                    at = acc[-1]
                else:  # rounding: the block total said yes, its levels say no
                    cum = -at if ask and not inverse else at
        if len(keys) >= (want or max_levels) or i == 0:
            break
        i -= 1
    # not covered: everything walked (or cut at max_levels); a book shorter than `want`
    want = min(want or max_levels, len(keys))
    del keys[want:], sizes[want:]
    return keys, sizes, i, len(blk.keys) - (want - n)


def _remainders(
    blocks: list[Any], maxes: list[float], edges: list[float], ci: int, cj: int, inverse: bool
) -> list[float | None]:
    """Per band edge (as a key; ``edges`` narrowest band first, so descending): the key-space
    notional (inverse books: the summed size) of the keys >= edge that lie deeper than the last
    exact key ``blocks[ci].keys[cj]``; None when the deepest key is > edge.

    The first key >= edge is ``blocks[ei].keys[ej]``. The keys from there up to, excluding,
    (ci, cj) are block ei from ej, the whole blocks ei + 1 .. ci - 1 (their running totals,
    summed incrementally, band over band) and block ci up to cj; or, when ei = ci, block ci
    from ej to cj.

    (Exact prefix sums kept per block while it does not change were tried: under a second of
    real traffic between two cuts, too few deep blocks stay unchanged for them to pay.)"""
    total = _block_size if inverse else _notional
    out: list[float | None] = []
    deepest = blocks[0].keys[0]
    head = None  # block ci up to cj, once needed
    whole = 0.0  # total of the blocks lo + 1 .. ci - 1
    lo = ci - 1
    hi = ci + 1  # edges descend: each edge's block is at or before the previous one's
    for edge in edges:
        if deepest > edge:
            out.append(None)
            continue
        ei = hi = bisect_left(maxes, edge, 0, hi)
        if ei > ci:  # the edge lies beyond the last block's keys: none >= edge is deeper
            out.append(0.0)
            continue
        hi += 1
        blk = blocks[ei]
        ej = bisect_left(blk.keys, edge)
        if ei == ci:
            out.append(_part(blk, ej, cj, inverse) if ej < cj else 0.0)
            continue
        if head is None:
            head = _part(blocks[ci], 0, cj, inverse)
        if ei < lo:
            whole += sum(map(total, blocks[ei + 1 : lo + 1]))
            lo = ei
        out.append(_part(blk, ej, len(blk.keys), inverse) + whole + head)
    return out


def window(
    book: OrderBook,
    bands_bps: Sequence[float],
    cover_notional: float,
    inverse: bool,
    contract_size: float,
    max_levels: int,
    *,
    top_n: int = 10,
    horizon: tuple[float, float] = (-math.inf, math.inf),
) -> Window:
    """(bid prices best first, bid sizes, ask prices best first, ask sizes, bid remainder per
    band, ask remainder per band, bid exact per band, ask exact per band): the analysis window of
    ``book`` (see the module doc).
    ``cover_notional`` and the remainders are in the book's notional units (quote currency for
    linear books, USD for inverse ones); bands are measured from the mid, remainders are in the
    order of ``bands_bps``. ``top_n``: at least this many levels per side (when the book has
    them and ``max_levels`` allows), so that the imbalance over the top ``top_n`` levels is the
    full book's. ``horizon``: (lowest bid, highest ask) down to which the book is known
    complete (``BookKeeper``'s ``SymbolBook.horizon``: the last level of a REST snapshot side
    that was cut at the venue's limit; a level beyond it that no diff has touched is missing); a
    band is *exact* when its edge lies within it, otherwise its depth is a lower bound. A book
    with an empty side has no mid: the window is then just the best level of the other side,
    which is all ``liquidity`` needs to report it as one-sided, and every remainder and flag is
    None."""
    bid_maxes = book._bid_maxes
    ask_maxes = book._ask_maxes
    if not (bid_maxes and ask_maxes):
        top = book.bids(1), book.asks(1)
        none: list[Any] = [None] * len(bands_bps)
        return (array("d", [p for p, _ in top[0]]), array("d", [s for _, s in top[0]]),
                array("d", [p for p, _ in top[1]]), array("d", [s for _, s in top[1]]), none,
                list(none), list(none), list(none))
    mid = (bid_maxes[-1] - ask_maxes[-1]) / 2
    cover = cover_notional / contract_size
    least = min(top_n, max_levels)
    bid_blocks, ask_blocks = book._bid_blocks, book._ask_blocks
    bk, bs, bi, bj = _exact(bid_blocks, False, inverse, cover, least, max_levels)
    ak, asz, ai, aj = _exact(ask_blocks, True, inverse, cover, least, max_levels)
    order, bid_f, ask_f = _bands(tuple(bands_bps))
    bid_r = _remainders(bid_blocks, bid_maxes, [mid * f for f in bid_f], bi, bj, inverse)
    ask_r = _remainders(ask_blocks, ask_maxes, [-(mid * f) for f in ask_f], ai, aj, inverse)
    bid_rem: list[float | None] = [None] * len(order)
    ask_rem: list[float | None] = [None] * len(order)
    bid_ok: list[bool | None] = [None] * len(order)
    ask_ok: list[bool | None] = [None] * len(order)
    lo, hi = horizon
    for b, rb, ra, bf, af in zip(order, bid_r, ask_r, bid_f, ask_f, strict=True):
        # to notional units; asks sum negative keys (0.0 - x: no -0.0), drift clamped at 0
        if rb is not None:
            bid_rem[b] = max(rb, 0.0) * contract_size
        if ra is not None:
            ask_rem[b] = max(ra if inverse else 0.0 - ra, 0.0) * contract_size
        bid_ok[b] = mid * bf >= lo
        ask_ok[b] = mid * af <= hi
    return bk, bs, array("d", map(neg, ak)), asz, bid_rem, ask_rem, bid_ok, ask_ok


def _column(name: str, dtype: pa.DataType, values: array[Any]) -> pl.Series:
    """A Series of ``values`` (an array of that type's C values), from their buffer."""
    buffer = pa.py_buffer(values)
    return pl.Series(name, pa.Array.from_buffers(dtype, len(values), [None, buffer]))


_RANKS = array("h", range(1024))  # level ranks 0..n-1 of a window side, sliced
_ASK_AT = 32_768  # _ASK: 0 (bid) codes, then 1 (ask) codes, as many as a side's levels can be
_ASK = array("B", bytes(_ASK_AT)) + array("B", b"\x01" * _ASK_AT)


def _ranks(n: int) -> array[int]:
    """0..n-1 as Int16 (a window side holds at most 32,768 levels)."""
    return _RANKS[:n] if n <= len(_RANKS) else array("h", range(n))


def frame(
    ids: Sequence[int], windows: Iterable[Window], bands_bps: Sequence[float]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(levels, extra): the ``levels`` and ``extra`` frames of ``liquidity.liquidity`` for many
    windows at once (``ids[i]`` is the book id of ``windows[i]``).

    levels  ``book`` UInt32, ``side`` Enum('bid', 'ask'), ``level`` Int16 (0 = best),
            ``price``, ``size`` f64; sorted by (book order, side, level) as ``liquidity`` wants.
    extra   one row per (book, band): ``book`` UInt32, ``band_bps`` f64, ``bid_extra``,
            ``ask_extra`` f64 (null where the book does not reach the band's edge),
            ``bid_exact``, ``ask_exact`` bool (the band's edge within the book's horizon)."""
    bands = [float(x) for x in bands_bps]
    windows = list(windows)
    if len(windows) != len(ids):
        raise ValueError(f"{len(ids)} ids for {len(windows)} windows")
    # every column from buffers built by C-level array copies (no Python object per row)
    book = array("I")
    level = array("h")
    ask = array("B")
    prices = array("d")
    sizes = array("d")
    bid_extra: list[float | None] = []
    ask_extra: list[float | None] = []
    bid_exact: list[bool | None] = []
    ask_exact: list[bool | None] = []
    n = len(windows)
    for i, (bp, bs, ap, asz, br, ar, be, ae) in zip(ids, windows, strict=True):
        nb, na = len(bp), len(ap)
        book += array("I", (i,)) * (nb + na)
        level += _ranks(nb)
        level += _ranks(na)
        ask += _ASK[:nb]
        ask += _ASK[_ASK_AT:_ASK_AT + na]
        prices.extend(bp)
        prices.extend(ap)
        sizes.extend(bs)
        sizes.extend(asz)
        bid_extra += br
        ask_extra += ar
        bid_exact += be
        ask_exact += ae
    if len(bid_extra) != n * len(bands):
        raise ValueError(f"windows do not hold {len(bands)} remainders each")
    levels = pl.DataFrame([
        _column("book", pa.uint32(), book), _column("ask", pa.uint8(), ask),
        _column("level", pa.int16(), level), _column("price", pa.float64(), prices),
        _column("size", pa.float64(), sizes),
    ]).lazy().select(
        "book",
        pl.when(pl.col("ask") == 1).then(pl.lit("ask", SIDE)).otherwise(pl.lit("bid", SIDE))
        .alias("side"),
        "level", "price", "size",
    ).collect(engine="in-memory", optimizations=_PLAIN)
    k = len(bands)
    extra = pl.DataFrame({
        "book": pl.Series([i for i in ids for _ in range(k)], dtype=pl.UInt32),
        "band_bps": pl.Series(bands * n, dtype=pl.Float64),
        "bid_extra": pl.Series(bid_extra, dtype=pl.Float64),
        "ask_extra": pl.Series(ask_extra, dtype=pl.Float64),
        "bid_exact": pl.Series(bid_exact, dtype=pl.Boolean),
        "ask_exact": pl.Series(ask_exact, dtype=pl.Boolean),
    })
    return levels, extra
