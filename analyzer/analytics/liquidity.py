"""Book liquidity (spread, microprice, imbalance, depth per band, slippage per notional): the one
definition, vectorized over many books. The live path calls it once per tick for every book's
analysis window (``levels.window`` / ``levels.frame``); the batch job calls it over stored
``book_snapshots`` rows (the same window levels) and ``book_snapshot_bands`` (their remainders).

Inputs
    levels  long frame, one row per (book, side, level): ``book`` UInt32 id, ``side``
            Enum('bid', 'ask') (String or Categorical holding 'bid'/'ask' is cast, which costs
            a string pass on millions of rows), ``level`` integer rank 0..65535 (0 = best),
            ``price`` f64, ``size`` f64 (> 0, the venue's unit: base for spot/linear, contracts
            for inverse). Fastest when sorted by (book, side bid-before-ask, level), which is how
            ``levels.frame`` and the stored snapshots come; otherwise it is sorted first. A
            repeated (book, side, level) is an error.
    books   one row per book id: ``book``, ``ts`` Int64 ns, ``venue``, ``symbol``, ``inverse``
            bool, ``contract_size`` f64, ``quote_usd`` f64 (USD per unit of the quote currency;
            1.0 for USD/USDT; ignored for inverse books, whose quote is USD), ``in_sync`` bool.
            The outputs have one row (per band / notional) for every row of ``books``, in its
            order; level rows of a book id not in ``books`` are ignored.
    extra   optional, one row per (book, band): ``book``, ``band_bps`` f64 (as in
            ``bands_bps``), ``bid_extra`` / ``ask_extra`` f64: the notional (book units: quote
            currency for linear books, USD for inverse ones) resting inside the band at levels
            deeper than the deepest level given, null when the book does not reach the band edge;
            optionally ``bid_exact`` / ``ask_exact`` bool: whether the band's edge lies within
            the part of the book known complete (``levels.window`` computes them all).

Conventions (``notes/analytics.md``, "Book liquidity"). Reference point: the MID for depth bands
and slippage. A level's notional is ``price * size * contract_size`` quote units for linear
books and ``size * contract_size`` USD for inverse ones; USD = quote * ``quote_usd`` (linear).
Its base quantity is ``size * contract_size`` (linear) or ``size * contract_size / price``
(inverse, coins).

- mid = (best bid + best ask) / 2; spread_bps = (ask - bid) / mid * 1e4;
  microprice = (bid * ask_size + ask * bid_size) / (bid_size + ask_size);
  imbalance = (sum bid size - sum ask size) / (sum of both) over levels 0..top_n-1 by size.
- depth within x bps: sum of notionals of bids with price >= mid * (1 - x/1e4) and asks with
  price <= mid * (1 + x/1e4), a level on the edge included; in quote currency and in USD.
  With ``extra`` holding the (book, band): that sum over the levels given + the remainder, null
  when the remainder is null. Otherwise (no ``extra``, or a (book, band) absent from it, as for
  plain level frames like old top-20 snapshots) the band is null when the frame does not reach
  its edge on that side (the deepest level given lies strictly inside it): the levels cannot
  show that the band is complete.
- slippage for a notional N USD: walk from the best level until N is filled, the last level
  taken partially: VWAP = filled notional / filled base quantity (quote per base; the partial
  level adds (N - notional before it) / price base units, in its own currency);
  bps = |VWAP - mid| / mid * 1e4. Buy walks the asks, sell the bids. When the levels given
  cannot fill N: null and reason 'insufficient_depth'.
- status, first that applies: 'out_of_sync' (in_sync false or null), 'empty' (no levels),
  'one_sided', 'crossed' (best bid >= best ask), else 'ok'. Any status but 'ok' makes every
  computed value of that book null (slippage reason = the status); ``bid_levels`` /
  ``ask_levels`` still count the rows given.

Outputs (``STATUS`` / ``REASON`` are Enums)
    summary   book, ts, venue, symbol, mid, best_bid, best_ask, spread_bps, microprice,
              imbalance, bid_levels, ask_levels (UInt32), status
    depth     book, ts, venue, symbol, band_bps (f64), bid_quote, ask_quote, bid_usd, ask_usd,
              bid_exact, ask_exact (bool, from ``extra``; null without it: false means the
              depth is a lower bound, the band reaching past what the book knows complete)
    slippage  book, ts, venue, symbol, notional_usd (f64), buy_vwap, buy_bps, sell_vwap,
              sell_bps, buy_reason, sell_reason

How (the cost is a few passes over the rows; everything per book is on small frames). The rows of
one (book, side), a *run*, are contiguous once sorted; every per-run figure is a reduction over
the run, or over its first k rows, done on List views of the flat columns (Arrow offsets = the
run starts: no copy, no hashing, no group-by). Which k: the imbalance takes the rows with
level < top_n, found by a binary search of the global sort key; a notional N is filled at the
first row whose USD cumulated along the run reaches N, found by one binary search per (run, N)
of a global integer prefix sum (see ``_units``), so a run's figures never depend on the other
books of the frame. Band sums mask each row by its band membership (no assumption that prices
are monotone along a run).

Cost on a live tick (a few hundred books, ~100 rows each) is almost all fixed: per Polars call
and per expression node, not per row. So the work is a handful of collects (the frame and its
checks; runs; books; run attributes; rows; the notional walk; offsets; List sums; the per-book
frame; the three outputs), each run with the optimizer off (``_PLAIN``: on these plans its
passes cost more than they save, and they change no value); a book's run figures are gathered
by run index, not joined; and the per-value outputs (bands, notionals) first lay the per-book
columns out long, so that each formula is one expression, not one per value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import polars as pl
import pyarrow as pa

SIDE = pl.Enum(["bid", "ask"])
STATUS = pl.Enum(["ok", "out_of_sync", "empty", "one_sided", "crossed"])
REASON = pl.Enum(["insufficient_depth", "out_of_sync", "empty", "one_sided", "crossed"])

_KEY_BOOK = 1 << 17  # sort key = book * 2^17 + is_ask * 2^16 + level (< 2^49: Int64)
_KEY_SIDE = 1 << 16

_c = pl.col
# the plans here are written as they should run: the optimizer's passes cost more than they save
_PLAIN = pl.QueryOptFlags.none()


def _prepare(levels: pl.DataFrame) -> pl.DataFrame:
    """book u32, ask bool, level i32, price, size, key i64; sorted by key = (book, side,
    level), each key once."""
    key = (
        _c("book").cast(pl.Int64) * _KEY_BOOK
        + _c("ask").cast(pl.Int64) * _KEY_SIDE
        + _c("level").cast(pl.Int64)
    )
    lv = levels.lazy().select(
        _c("book").cast(pl.UInt32),
        (_c("side").cast(SIDE) == "ask").alias("ask"),
        _c("level").cast(pl.Int32),
        _c("price").cast(pl.Float64),
        _c("size").cast(pl.Float64),
    ).with_columns(key.alias("key")).with_columns(
        # (scalars, broadcast without a copy: one collect for the frame and its checks)
        _c("level").min().alias("_lo"), _c("level").max().alias("_hi"),
        (_c("key").diff() > 0).all().alias("_ordered"),
    ).collect(engine="in-memory", optimizations=_PLAIN)
    if lv.height == 0:
        return lv
    lo, hi, ordered = lv["_lo"][0], lv["_hi"][0], lv["_ordered"][0]
    if lo < 0 or hi >= _KEY_SIDE:
        raise ValueError(f"level must be in 0..{_KEY_SIDE - 1}, got {lo}..{hi}")
    if ordered:
        return lv
    lv = lv.sort("key")
    if not lv.select((_c("key").diff() > 0).all()).item():
        raise ValueError("levels holds a (book, side, level) more than once")
    return lv


def _units(rows: int, cap: float) -> tuple[float, pl.DataType]:
    """(units per USD, integer type) of the global prefix sum that picks the level filling a
    notional. Each level's USD is clipped at ``cap`` (> every notional asked, so no choice
    changes: a clipped level fills any notional alone) and rounded to units; the prefix sum of
    ``rows`` levels then stays below rows * (cap * unit + 1) <= 2^62, which fits Int64 with
    2^k units per USD for k = 62 - log2(rows * cap), at most 32 (1 unit = 2^-32 USD). So a
    5 M row frame with notionals up to 1 M USD counts in 2^-19 USD. A level can only be chosen
    differently from a float walk when it fills N to within a unit; the amounts themselves are
    summed in floats, and the VWAP is continuous across that choice (the partial level then
    contributes ~0 either way), so the answers differ by rounding only. Int128 (2^-32 USD) in
    the absurd case where 2^-4 USD units would not fit."""
    k = min(32, math.floor(62 - math.log2(max(rows, 1)) - math.log2(cap + 1)))
    if k < 4:
        return 2.0**32, pl.Int128
    return 2.0**k, pl.Int64


def _run_sums(
    rows: pl.DataFrame, offsets: pl.DataFrame, sums: list[tuple[str, str, str]]
) -> pl.DataFrame:
    """One row per run: for each (name, column, offsets) the sum of ``column`` over every other
    list of the Arrow list view of the column (no copy) with those offsets (a column of
    ``offsets``: interleaved start, start + k, ..., then the row count)."""
    values = {col: rows[col].rechunk().to_arrow() for col in {c for _, c, _ in sums}}
    offs = {o: offsets[o].to_arrow() for o in {o for _, _, o in sums}}
    return pl.DataFrame([
        pl.Series(name, pa.LargeListArray.from_arrays(offs[o], values[col]))
        for name, col, o in sums
    ]).lazy().select((_c("*").list.sum() + 0.0).gather_every(2)).collect(
        engine="in-memory", optimizations=_PLAIN)


def liquidity(
    levels: pl.DataFrame,
    books: pl.DataFrame,
    bands_bps: Sequence[float] = (10, 25, 50, 100, 200),
    notionals_usd: Sequence[float] = (10_000, 100_000, 1_000_000),
    top_n: int = 10,
    extra: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(summary, depth, slippage) of every book in ``books`` from its rows in ``levels`` (and
    its band remainders in ``extra``); see the module doc for the inputs, formulas (reference
    point: the mid) and output columns."""
    if books.select(_c("book").is_duplicated().any()).item():
        raise ValueError("books holds a book id more than once")
    bands = [float(x) for x in bands_bps]
    notionals = [float(n) for n in notionals_usd]
    if not bands or not notionals:
        raise ValueError("bands_bps and notionals_usd must not be empty")
    lv = _prepare(levels)
    n_rows = lv.height
    meta = books.lazy().select(
        _c("book").cast(pl.UInt32),
        _c("inverse").cast(pl.Boolean),
        _c("contract_size").cast(pl.Float64),
        pl.when(_c("inverse").cast(pl.Boolean)).then(1.0).otherwise(_c("quote_usd"))
        .cast(pl.Float64)
        .alias("usd_rate"),
    )

    # runs: the rows of one (book, side), contiguous: [start, end]; `run` = their index
    ln = _c("len").cast(pl.Int64)
    st = ln.cum_sum() - ln
    en = st + ln - 1
    runs = lv.lazy().select((_c("key") // _KEY_SIDE).rle().alias("r")).unnest("r").select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("run"),
        st.alias("start"), en.alias("end"), ln.alias("len"),
        (_c("value") // 2).cast(pl.UInt32).alias("book"),
        (_c("value") % 2 == 1).alias("ask"),
        ln.cast(pl.UInt32).alias("levels"),
        (_c("value") * _KEY_SIDE).alias("base_key"),
        pl.lit(lv["price"]).gather(st).alias("best"),
        pl.lit(lv["size"]).gather(st).alias("best_size"),
        pl.lit(lv["price"]).gather(en).alias("deepest"),
        # levels 0..n-1 in every run (the usual case): the top_n rows are the first ones
        ((pl.lit(lv["key"]).gather(en) % _KEY_SIDE + 1) == ln).all().alias("dense"),
    ).collect(engine="in-memory", optimizations=_PLAIN)
    n_runs = runs.height

    # per book: best bid / ask, the attributes, the index of each side's run; one row per row
    # of `books`
    def side_of(ask: bool, p: str) -> pl.LazyFrame:
        return runs.lazy().filter(_c("ask") == ask).select(
            "book", *(_c(c).alias(p + c) for c in ("run", "best", "best_size", "levels",
                                                   "deepest")))

    b = books.lazy().select(
        _c("book").cast(pl.UInt32), "ts", "venue", "symbol",
        _c("in_sync").cast(pl.Boolean).fill_null(False),
    ).join(meta, on="book", how="left", maintain_order="left").join(
        side_of(False, "b_"), on="book", how="left", maintain_order="left",
    ).join(side_of(True, "a_"), on="book", how="left", maintain_order="left").with_columns(
        ((_c("b_best") + _c("a_best")) / 2).alias("mid")).collect(
        engine="in-memory", optimizations=_PLAIN)
    mid = _c("mid")
    # per run: the attributes its rows need, the band edges signed so that a row is in band x
    # iff its signed price (asks price, bids -price: growing with depth) <= edge x; and which
    # of them differ from the plain case (no inverse book, unit contract sizes, USD quotes)
    run_attr = runs.lazy().select("book", "ask").join(
        b.lazy().select("book", "mid", "inverse", "contract_size", "usd_rate"),
        on="book", how="left", maintain_order="left",
    ).select(
        "inverse", "contract_size", "usd_rate",
        *(pl.when(_c("ask")).then(mid * (1 + x / 1e4)).otherwise(-(mid * (1 - x / 1e4)))
          .alias(f"e{i}") for i, x in enumerate(bands)),
    ).with_columns(
        _c("inverse").any().alias("any_inverse"),
        (_c("contract_size") == 1.0).all().alias("unit_cs"),
        (_c("usd_rate") == 1.0).all().alias("usd_quote"),
    ).collect(engine="in-memory", optimizations=_PLAIN)

    # per row: notional, base quantity, USD, band masks, and the integer prefix of USD units.
    # The plan is specialised on what the books need (fewer passes over the rows).
    cap = max(notionals) * 2 + 1
    unit, itype = _units(n_rows, cap)
    price, size = _c("price"), _c("size")
    per_row: list[str] = ["inverse", "contract_size", "usd_rate"]
    any_inverse, unit_cs, usd_quote = (
        (bool(run_attr["any_inverse"][0]), bool(run_attr["unit_cs"][0]),
         bool(run_attr["usd_quote"][0])) if n_runs else (False, True, True))
    if not any_inverse:
        per_row.remove("inverse")
        base = size if unit_cs else size * _c("contract_size")
        quote = price * base
    else:
        cs = _c("contract_size")
        inv = _c("inverse")
        quote = pl.when(inv).then(size * cs).otherwise(price * size * cs)
        base = pl.when(inv).then(size * cs / price).otherwise(size * cs)
    if unit_cs and not any_inverse:
        per_row.remove("contract_size")
    usd = _c("quote")
    if usd_quote:
        per_row.remove("usd_rate")
    else:
        usd = usd * _c("usd_rate")
    rid = (_c("key") // _KEY_SIDE).rle_id().alias("rid")
    sp = pl.when(_c("ask")).then(price).otherwise(-price)
    rows = lv.lazy().with_columns(rid).with_columns(
        *(pl.lit(run_attr[c]).gather(_c("rid")).alias(c) for c in per_row),
        sp.alias("sp"),
    ).with_columns(quote.alias("quote")).select(
        *(pl.when(_c("sp") <= pl.lit(run_attr[f"e{i}"]).gather(_c("rid"))).then(_c("quote"))
          .otherwise(0.0).alias(f"d{i}") for i in range(len(bands))),
        usd.alias("usd"),
        base.alias("base"),
        size,
        usd.clip(upper_bound=cap).mul(unit).round().cast(itype, strict=False).fill_null(0)
        .cum_sum().alias("cum"),
    ).collect(engine="in-memory", optimizations=_PLAIN)

    # per run: where each notional is filled (the first row whose USD cumulated along the run
    # reaches it) and how many rows the imbalance takes; then the List-view offsets of every
    # per-run sum: interleaved (start, start + k) so that every other list is a run's first k
    # rows, (start, end + 1) for whole runs
    k = len(notionals)
    cum = pl.lit(rows["cum"])
    s, e = _c("start"), _c("end")
    top = max(top_n, 0)
    dense = bool(runs["dense"][0]) if n_runs else True
    walk = runs.lazy().select(
        s, e, ln,
        pl.lit(pl.concat([pl.Series([0], dtype=itype), rows["cum"]])).gather(s).alias("before"),
        (ln.clip(upper_bound=top) if dense else
         (pl.lit(lv["key"]).search_sorted(_c("base_key") + top, side="left").cast(pl.Int64)
          - s).clip(upper_bound=ln)).alias("n_top"),
    ).with_columns(
        cum.search_sorted(_c("before") + round(n * unit), side="left").cast(pl.Int64)
        .alias(f"at{i}") for i, n in enumerate(notionals)
    ).select(
        "start", "end", "n_top",
        *((_c(f"at{i}") - s).clip(upper_bound=ln).alias(f"k{i}") for i in range(k)),
        *(pl.when(_c(f"at{i}") <= e).then(
            pl.lit(lv["price"]).gather(_c(f"at{i}").clip(upper_bound=max(n_rows - 1, 0))))
          .alias(f"p{i}") for i in range(k)),
    ).collect(engine="in-memory", optimizations=_PLAIN)
    parts = {"top": "n_top", **{f"u{i}": f"k{i}" for i in range(k)},
             **{f"q{i}": f"k{i}" for i in range(k)}}
    offsets = walk.lazy().select(
        pl.concat_arr(s, e + 1).arr.explode().append(pl.lit(n_rows, dtype=pl.Int64))
        .alias("whole"),
        *(pl.concat_arr(s, s + _c(f"k{i}")).arr.explode()
          .append(pl.lit(n_rows, dtype=pl.Int64)).alias(f"k{i}") for i in range(k)),
        pl.concat_arr(s, s + _c("n_top")).arr.explode()
        .append(pl.lit(n_rows, dtype=pl.Int64)).alias("n_top"),
    ).collect(engine="in-memory", optimizations=_PLAIN)
    sums = _run_sums(rows, offsets, [
        *((f"d{i}", f"d{i}", "whole") for i in range(len(bands))),
        *((f"u{i}", "usd", parts[f"u{i}"]) for i in range(k)),
        *((f"q{i}", "base", parts[f"q{i}"]) for i in range(k)),
        ("top", "size", "n_top"),
    ]).hstack([walk[f"p{i}"] for i in range(k)])

    # per book: its runs' figures (by run index), its status, then the three outputs
    summary_x, depth_long_x, depth_x, plain_x, extra_x, slip_long_x, slip_x, book_x = (
        _outputs(tuple(bands), tuple(notionals)))
    b = pl.concat([b, *(
        sums.lazy().select(pl.all().gather(pl.lit(b[p + "run"])).name.prefix(p))
        .collect(engine="in-memory", optimizations=_PLAIN) for p in ("b_", "a_"))],
        how="horizontal").lazy().with_columns(book_x).collect(
        engine="in-memory", optimizations=_PLAIN)
    lb = b.lazy()
    summary = lb.select(summary_x)
    depth = lb.select(depth_long_x).select(depth_x)
    if extra is not None:
        ex = extra.lazy().select(
            _c("book").cast(pl.UInt32), _c("band_bps").cast(pl.Float64),
            _c("bid_extra").cast(pl.Float64), _c("ask_extra").cast(pl.Float64),
            *(_c(c).cast(pl.Boolean) if c in extra.columns else pl.lit(None, pl.Boolean).alias(c)
              for c in ("bid_exact", "ask_exact")),
            pl.lit(True).alias("given"),
        ).collect(engine="in-memory", optimizations=_PLAIN)
        nb = len(bands)
        if ex.height == b.height * nb and b.lazy().select(
            ~(pl.lit(ex["book"]).ne_missing(_c("book").gather(pl.int_range(pl.len() * nb) // nb))
              .any())
            & ~(pl.lit(ex["band_bps"]).ne_missing(
                pl.lit(pl.Series(bands, dtype=pl.Float64)).gather(
                    pl.int_range(pl.len() * nb) % nb)).any())
        ).collect(engine="in-memory", optimizations=_PLAIN).item():
            # row for row as in `depth` (levels.frame for the same books, in order): no join
            depth = depth.with_columns(
                pl.lit(ex[c]) for c in ("bid_extra", "ask_extra", "bid_exact", "ask_exact",
                                        "given"))
        else:
            depth = depth.join(ex.lazy(), on=["book", "band_bps"], how="left",
                               maintain_order="left", validate="m:1")
    out = pl.collect_all([summary, depth.select(plain_x if extra is None else extra_x),
                          lb.select(slip_long_x).select(slip_x)],
                         engine="in-memory", optimizations=_PLAIN)
    return out[0], out[1], out[2]


_KEYS = ["book", "ts", "venue", "symbol"]


def _status_columns() -> list[pl.Expr]:
    n_bid = _c("b_levels").fill_null(0)
    n_ask = _c("a_levels").fill_null(0)
    status = (
        pl.when(~_c("in_sync")).then(pl.lit("out_of_sync"))
        .when((n_bid == 0) & (n_ask == 0)).then(pl.lit("empty"))
        .when((n_bid == 0) | (n_ask == 0)).then(pl.lit("one_sided"))
        .when(_c("b_best") >= _c("a_best")).then(pl.lit("crossed"))
        .otherwise(pl.lit("ok"))
        .cast(STATUS)
    )
    return [status.alias("status"), n_bid.alias("bid_levels"), n_ask.alias("ask_levels")]


def _long(
    name: str,
    values: dict[str, list[float]],
    per_book: list[str],
    per_value: dict[str, list[str]],
) -> list[pl.Expr]:
    """Expressions over the per-book frame: each row repeated once per value; ``values``: the
    columns that vary with the value only (the first, ``name``, is the value), ``per_book``
    the columns repeated as they are, ``per_value[c]``: the i-th repetition takes column
    ``per_value[c][i]`` as ``c``. No arithmetic: the formulas then run once on the long frame,
    not once per value."""
    k = len(values[name])
    rep = pl.int_range(pl.len() * k, dtype=pl.UInt32)
    # (concat_arr: a fixed-size array per row, ~40x cheaper than concat_list here)
    return [
        *(_c(c).gather(rep // k) for c in per_book),
        *(pl.lit(pl.Series(c, v, dtype=pl.Float64)).gather(rep % k).alias(c)
          for c, v in values.items()),
        *(pl.concat_arr(*cols).arr.explode().alias(c) for c, cols in per_value.items()),
    ]


@functools.lru_cache(maxsize=64)
def _outputs(
    bands: tuple[float, ...], notionals: tuple[float, ...]
) -> tuple[list[pl.Expr], ...]:
    """(summary, depth as long rows, depth before the remainders, depth without / with the
    remainders, slippage as long rows, slippage, per-book status): the expressions that build
    the outputs from the per-book frame (built once per parameters: building Polars
    expressions costs more than running them on a few hundred books)."""
    ok = _c("status") == "ok"
    keys = _KEYS
    mid, rate = _c("mid"), _c("usd_rate")

    def good(e: pl.Expr) -> pl.Expr:
        return pl.when(ok).then(e)

    bb, ba = _c("b_best"), _c("a_best")
    top_b, top_a = _c("b_top"), _c("a_top")
    summary = [
        *keys,
        good(mid).alias("mid"),
        good(bb).alias("best_bid"),
        good(ba).alias("best_ask"),
        good((ba - bb) / mid * 1e4).alias("spread_bps"),
        good((bb * _c("a_best_size") + ba * _c("b_best_size"))
             / (_c("b_best_size") + _c("a_best_size"))).alias("microprice"),
        good((top_b - top_a) / (top_b + top_a)).alias("imbalance"),
        "bid_levels", "ask_levels", "status",
    ]

    nb = range(len(bands))
    depth_long = _long(
        "band_bps",
        {"band_bps": list(bands), "lo": [1 - x / 1e4 for x in bands],
         "hi": [1 + x / 1e4 for x in bands]},
        [*keys, "status", "mid", "usd_rate", "b_deepest", "a_deepest"],
        {"b_d": [f"b_d{i}" for i in nb], "a_d": [f"a_d{i}" for i in nb]},
    )
    depth = [
        *keys, "band_bps",
        good(_c("b_d")).alias("bid_in"),
        good(_c("a_d")).alias("ask_in"),
        # the levels given reach the band edge: the deepest is on or beyond it
        (_c("b_deepest") <= mid * _c("lo")).alias("bid_reached"),
        (_c("a_deepest") >= mid * _c("hi")).alias("ask_reached"),
        "usd_rate",
    ]
    bid_quote = pl.when(_c("bid_reached")).then(_c("bid_in"))
    ask_quote = pl.when(_c("ask_reached")).then(_c("ask_in"))

    def finish(bq: pl.Expr, aq: pl.Expr, be: pl.Expr, ae: pl.Expr) -> list[pl.Expr]:
        return [
            *keys, "band_bps", bq.alias("bid_quote"), aq.alias("ask_quote"),
            (bq * _c("usd_rate")).alias("bid_usd"),
            (aq * _c("usd_rate")).alias("ask_usd"),
            be.alias("bid_exact"), ae.alias("ask_exact"),
        ]

    unknown = pl.lit(None, pl.Boolean)
    plain = finish(bid_quote, ask_quote, unknown, unknown)
    with_extra = finish(
        pl.when(_c("given")).then(_c("bid_in") + _c("bid_extra")).otherwise(bid_quote),
        pl.when(_c("given")).then(_c("ask_in") + _c("ask_extra")).otherwise(ask_quote),
        _c("bid_exact"), _c("ask_exact"),
    )

    nn = range(len(notionals))
    slip_long = _long(
        "notional_usd", {"notional_usd": list(notionals)},
        [*keys, "status", "mid", "usd_rate"],
        {f"{s}_{c}": [f"{s}_{c}{i}" for i in nn] for s in "ab" for c in "pqu"},
    )
    n = _c("notional_usd")

    def vwap(side: str) -> pl.Expr:
        # the filled base quantity: the levels before the last one, plus (n - USD before it)
        # converted to its quote currency and divided by its price
        filled = _c(f"{side}_q") + (n - _c(f"{side}_u")) / (rate * _c(f"{side}_p"))
        return good(n / rate / filled)

    def reason(side: str) -> pl.Expr:
        return (
            pl.when(~ok).then(_c("status").cast(pl.String))
            .when(_c(f"{side}_p").is_null()).then(pl.lit("insufficient_depth"))
            .cast(REASON)
        )

    def bps(side: str) -> pl.Expr:
        return (vwap(side) - mid).abs() / mid * 1e4

    slippage = [
        *keys, "notional_usd",
        vwap("a").alias("buy_vwap"), bps("a").alias("buy_bps"),
        vwap("b").alias("sell_vwap"), bps("b").alias("sell_bps"),
        reason("a").alias("buy_reason"), reason("b").alias("sell_reason"),
    ]
    return (summary, depth_long, depth, plain, with_extra, slip_long, slippage,
            _status_columns())
