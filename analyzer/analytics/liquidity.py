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
            deeper than the deepest level given, null when the book does not reach the band edge
            (``levels.window`` computes them).

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
    depth     book, ts, venue, symbol, band_bps (f64), bid_quote, ask_quote, bid_usd, ask_usd
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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import polars as pl
import pyarrow as pa

SIDE = pl.Enum(["bid", "ask"])
STATUS = pl.Enum(["ok", "out_of_sync", "empty", "one_sided", "crossed"])
REASON = pl.Enum(["insufficient_depth", "out_of_sync", "empty", "one_sided", "crossed"])

_KEY_BOOK = 1 << 17  # sort key = book * 2^17 + is_ask * 2^16 + level (< 2^49: Int64)
_KEY_SIDE = 1 << 16

_c = pl.col


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
    ).with_columns(key.alias("key")).collect(engine="in-memory")
    if lv.height == 0:
        return lv
    lo, hi, ordered = lv.select(
        _c("level").min().alias("lo"), _c("level").max().alias("hi"),
        (_c("key").diff() > 0).all().alias("ordered"),
    ).row(0)
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
    rows: pl.DataFrame,
    starts: pl.Series,
    n_rows: int,
    sums: list[tuple[str, str, pl.Series | None]],
) -> pl.DataFrame:
    """One row per run: for each (name, column, k) the sum of ``column`` over the run
    (k None) or over its first k rows. Each is one ``list.sum`` over Arrow list views of the
    column (no copy): offsets at the run starts, or interleaved start, start + k, ... so that
    every other list is a run's first k rows."""
    prefix = [(name, k) for name, _, k in sums if k is not None]
    offs = pl.DataFrame({"s": starts, **dict(prefix)}).select(
        *(pl.concat_arr("s", _c("s") + _c(name)).arr.explode()
          .append(pl.lit(n_rows, dtype=pl.Int64)).alias(name) for name, _ in prefix),
    )
    whole = pl.concat([starts, pl.Series([n_rows], dtype=pl.Int64)]).to_arrow()
    values = {col: rows[col].rechunk().to_arrow() for col in {c for _, c, _ in sums}}

    def lists(name: str, col: str, o: pa.Array) -> pl.Series:
        return pl.Series(name, pa.LargeListArray.from_arrays(o, values[col]))

    whole_sums = pl.DataFrame([lists(n, c, whole) for n, c, k in sums if k is None]).select(
        _c("*").list.sum() + 0.0)
    part_sums = pl.DataFrame([lists(n, c, offs[n].to_arrow()) for n, c, k in sums
                              if k is not None]).select(
        (_c("*").list.sum() + 0.0).gather_every(2))
    return whole_sums.hstack(part_sums)


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

    # runs: the rows of one (book, side), contiguous: [start, end]
    rk = _c("key") // _KEY_SIDE
    st = (rk != rk.shift(1)).fill_null(True).arg_true().cast(pl.Int64)
    en = st.shift(-1, fill_value=n_rows) - 1
    fk = _c("key").gather(st)
    runs = lv.select(
        st.alias("start"), en.alias("end"), (en - st + 1).alias("len"),
        (fk // _KEY_BOOK).cast(pl.UInt32).alias("book"),
        ((fk // _KEY_SIDE) % 2 == 1).alias("ask"),
        (en - st + 1).cast(pl.UInt32).alias("levels"),
        (fk - fk % _KEY_SIDE).alias("base_key"),
        _c("price").gather(st).alias("best"),
        _c("size").gather(st).alias("best_size"),
        _c("price").gather(en).alias("deepest"),
    )
    starts, ends, lengths = runs["start"], runs["end"], runs["len"]
    runs = runs.drop("start", "end", "len")

    # per book: best bid / ask and the attributes, one row per row of `books`
    def side_of(ask: bool, p: str) -> pl.LazyFrame:
        return runs.lazy().filter(_c("ask") == ask).select(
            "book", *(_c(c).alias(p + c) for c in ("best", "best_size", "levels", "deepest")))

    b = books.lazy().select(
        _c("book").cast(pl.UInt32), "ts", "venue", "symbol",
        _c("in_sync").cast(pl.Boolean).fill_null(False),
    ).join(meta, on="book", how="left", maintain_order="left").join(
        side_of(False, "b_"), on="book", how="left", maintain_order="left",
    ).join(side_of(True, "a_"), on="book", how="left", maintain_order="left").with_columns(
        ((_c("b_best") + _c("a_best")) / 2).alias("mid")).collect(engine="in-memory")
    mid = _c("mid")
    # per run: the attributes its rows need, the band edges signed so that a row is in band x
    # iff its signed price (asks price, bids -price: growing with depth) <= edge x
    run_attr = runs.select("book", "ask").join(
        b.select("book", "mid", "inverse", "contract_size", "usd_rate"),
        on="book", how="left", maintain_order="left",
    ).select(
        "inverse", "contract_size", "usd_rate",
        *(pl.when(_c("ask")).then(mid * (1 + x / 1e4)).otherwise(-(mid * (1 - x / 1e4)))
          .alias(f"e{i}") for i, x in enumerate(bands)),
    )

    # per row: notional, base quantity, USD, band masks, and the integer prefix of USD units.
    # The plan is specialised on what the books need (no inverse book, unit contract sizes,
    # USD quotes: fewer passes over the rows).
    cap = max(notionals) * 2 + 1
    unit, itype = _units(n_rows, cap)
    price, size = _c("price"), _c("size")
    per_row: list[str] = ["inverse", "contract_size", "usd_rate"]
    any_inverse = bool(run_attr["inverse"].any())
    unit_cs = bool((run_attr["contract_size"] == 1.0).all())
    usd_quote = bool((run_attr["usd_rate"] == 1.0).all())
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
    ).collect(engine="in-memory")

    # per run: sums over the run, or over its first k rows (List views, no copy)
    k = len(notionals)
    cum = rows["cum"]
    before_run = pl.concat([pl.Series([0], dtype=itype), cum]).gather(starts)
    fill: dict[str, pl.Series] = {}
    for i, n in enumerate(notionals):
        # the first row whose USD cumulated along the run reaches n: it fills n
        at = cum.search_sorted(before_run + round(n * unit), side="left").cast(pl.Int64)
        filled = at <= ends
        fill[f"k{i}"] = (at - starts).clip(upper_bound=lengths.cast(pl.Int64))
        fill[f"p{i}"] = lv["price"].gather(at.clip(upper_bound=max(n_rows - 1, 0))).zip_with(
            filled, pl.Series([None], dtype=pl.Float64)) if n_rows else pl.Series(
            [], dtype=pl.Float64)
    last_level = lv["key"].gather(ends) % _KEY_SIDE
    if ((last_level + 1) == lengths.cast(pl.Int64)).all():  # levels 0..n-1, the usual case
        n_top = lengths.cast(pl.Int64).clip(upper_bound=max(top_n, 0))
    else:
        n_top = lv["key"].search_sorted(runs["base_key"] + max(top_n, 0), side="left").cast(
            pl.Int64) - starts
        n_top = n_top.clip(upper_bound=lengths.cast(pl.Int64))
    sums = _run_sums(rows, starts, n_rows, [
        *((f"d{i}", f"d{i}", None) for i in range(len(bands))),
        *((f"u{i}", "usd", fill[f"k{i}"]) for i in range(k)),
        *((f"q{i}", "base", fill[f"k{i}"]) for i in range(k)),
        ("top", "size", n_top),
    ])
    per_run = sums.with_columns(
        *(fill[f"p{i}"].alias(f"p{i}") for i in range(k)), runs["book"], runs["ask"])
    run_cols = ["top"] + [f"d{i}" for i in range(len(bands))] + [
        f"{c}{i}" for c in "puq" for i in range(k)]
    b = b.join(
        per_run.filter(~_c("ask")).select("book", *(_c(c).alias("b_" + c) for c in run_cols)),
        on="book", how="left", maintain_order="left",
    ).join(
        per_run.filter("ask").select("book", *(_c(c).alias("a_" + c) for c in run_cols)),
        on="book", how="left", maintain_order="left",
    )

    b = b.with_columns(*_status_columns())
    summary_x, depth_x, plain_x, extra_x, slip_x = _outputs(tuple(bands), tuple(notionals))
    lb = b.lazy()
    summary = lb.select(summary_x)
    depth = lb.select(depth_x)
    if extra is not None:
        ex = extra.lazy().select(
            _c("book").cast(pl.UInt32), _c("band_bps").cast(pl.Float64),
            _c("bid_extra").cast(pl.Float64), _c("ask_extra").cast(pl.Float64),
            pl.lit(True).alias("given"),
        ).collect(engine="in-memory")
        nb = len(bands)
        if ex.height == b.height * nb and b.select(
            ~(pl.lit(ex["book"]).ne_missing(_c("book").gather(pl.int_range(pl.len() * nb) // nb))
              .any())
            & ~(pl.lit(ex["band_bps"]).ne_missing(
                pl.lit(pl.Series(bands, dtype=pl.Float64)).gather(
                    pl.int_range(pl.len() * nb) % nb)).any())
        ).item():
            # row for row as in `depth` (levels.frame for the same books, in order): no join
            depth = depth.with_columns(
                pl.lit(ex[c]) for c in ("bid_extra", "ask_extra", "given"))
        else:
            depth = depth.join(ex.lazy(), on=["book", "band_bps"], how="left",
                               maintain_order="left", validate="m:1")
    out = pl.collect_all([summary, depth.select(plain_x if extra is None else extra_x),
                          lb.select(slip_x)], engine="in-memory")
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
    keys: list[str],
    name: str,
    values: tuple[float, ...],
    columns: dict[str, Callable[[int, float], pl.Expr]],
) -> list[pl.Expr]:
    """Expressions over the per-book frame: each row repeated once per value (in column
    ``name``, f64), with ``columns[c](i, value)`` as column ``c`` of the i-th repetition."""
    k = len(values)
    rep = pl.int_range(pl.len() * k, dtype=pl.UInt32)
    # (concat_arr: a fixed-size array per row, ~40x cheaper than concat_list here)
    return [
        *(_c(c).gather(rep // k) for c in keys),
        pl.lit(pl.Series(name, values, dtype=pl.Float64)).gather(rep % k).alias(name),
        *(pl.concat_arr(f(i, v) for i, v in enumerate(values)).arr.explode().alias(c)
          for c, f in columns.items()),
    ]


@functools.lru_cache(maxsize=64)
def _outputs(
    bands: tuple[float, ...], notionals: tuple[float, ...]
) -> tuple[list[pl.Expr], ...]:
    """(summary, depth before the remainders, depth without / with the remainders, slippage): the
    expressions that build the outputs from the per-book frame (built once per parameters:
    building Polars expressions costs more than running them on a few hundred books)."""
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

    depth = _long(keys, "band_bps", bands, {
        "bid_in": lambda i, x: good(_c(f"b_d{i}")),
        "ask_in": lambda i, x: good(_c(f"a_d{i}")),
        # the levels given reach the band edge: the deepest is on or beyond it
        "bid_reached": lambda i, x: _c("b_deepest") <= mid * (1 - x / 1e4),
        "ask_reached": lambda i, x: _c("a_deepest") >= mid * (1 + x / 1e4),
        "usd_rate": lambda i, x: rate,
    })
    bid_quote = pl.when(_c("bid_reached")).then(_c("bid_in"))
    ask_quote = pl.when(_c("ask_reached")).then(_c("ask_in"))

    def finish(bq: pl.Expr, aq: pl.Expr) -> list[pl.Expr]:
        return [
            *keys, "band_bps", bq.alias("bid_quote"), aq.alias("ask_quote"),
            (bq * _c("usd_rate")).alias("bid_usd"),
            (aq * _c("usd_rate")).alias("ask_usd"),
        ]

    plain = finish(bid_quote, ask_quote)
    with_extra = finish(
        pl.when(_c("given")).then(_c("bid_in") + _c("bid_extra")).otherwise(bid_quote),
        pl.when(_c("given")).then(_c("ask_in") + _c("ask_extra")).otherwise(ask_quote),
    )

    def vwap(side: str, i: int, n: float) -> pl.Expr:
        # the filled base quantity: the levels before the last one, plus (n - USD before it)
        # converted to its quote currency and divided by its price
        filled = _c(f"{side}_q{i}") + (n - _c(f"{side}_u{i}")) / (rate * _c(f"{side}_p{i}"))
        return good(n / rate / filled)

    def reason(side: str, i: int, n: float) -> pl.Expr:
        return (
            pl.when(~ok).then(_c("status").cast(pl.String))
            .when(_c(f"{side}_p{i}").is_null()).then(pl.lit("insufficient_depth"))
            .cast(REASON)
        )

    def bps(side: str, i: int, n: float) -> pl.Expr:
        return (vwap(side, i, n) - mid).abs() / mid * 1e4

    slippage = _long(keys, "notional_usd", notionals, {
        "buy_vwap": lambda i, n: vwap("a", i, n),
        "buy_bps": lambda i, n: bps("a", i, n),
        "sell_vwap": lambda i, n: vwap("b", i, n),
        "sell_bps": lambda i, n: bps("b", i, n),
        "buy_reason": lambda i, n: reason("a", i, n),
        "sell_reason": lambda i, n: reason("b", i, n),
    })
    return summary, depth, plain, with_extra, slippage
