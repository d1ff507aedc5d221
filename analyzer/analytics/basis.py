"""Basis, premium, funding and open interest of derivatives against spot and index.

Input is a *market state* frame, one row per (``ts``, ``venue``, ``symbol``) sample on a common
time grid (the live path passes one tick, batch passes the whole grid; the functions do not care):

    ts Int64 ns · exchange · venue · symbol · base · quote · market ('spot'|'perpetual'|'future')
    inverse bool · contract_size f64 · expiry Int64 ns|null · bid, ask, mid f64 (rebuilt book,
    null when not in sync) · in_sync bool · quote_age_s f64 · mark, index f64 (null for spot)
    funding_rate (per interval) · funding_interval_hours · next_funding_time ns · open_interest
    (linear: base units; inverse: contracts of ``contract_size`` USD)

Tradable prices come in a separate long frame ``vwaps``: (ts, venue, symbol, notional_usd,
buy_vwap, sell_vwap), null where the visible book cannot fill the notional.

Conventions (also in ``notes/analytics.md``):

- All ratios are plain fractions (0.0024, not bps or %). Annualisation uses a 365-day year and
  the exact time to expiry: ``dte_days = (expiry - ts) / 86_400e9``.
- The futures price F is the book mid, taken only while the book is in sync.
- The spot reference S is the mid of the *same exchange's* spot book for the same base (legs are
  matched on ``exchange`` and ``base`` at the same ``ts``). USD stablecoins are taken at par with
  USD: a spot market quoted in any of ``SPOT_QUOTES`` serves as a USD price, the first quote in
  that order that is listed wins (it is never swapped for another because its book is out of
  sync: the row is marked invalid instead).
- Legs are matched at the same ``ts`` of the grid, no as-of search; staleness within the grid is
  judged from ``quote_age_s``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

NS_PER_DAY = 86_400 * 1_000_000_000
SPOT_QUOTES: tuple[str, ...] = ("USDT", "USDC", "USD", "FDUSD")
TS_KEYS = ("ts", "venue", "base")

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
          "h": 3_600 * 10**9, "d": NS_PER_DAY}


def duration_ns(value: str | int) -> int:
    """``'30m'``, ``'1h'``, ``'7d'``, ``'1h30m'`` (units ns, us, ms, s, m, h, d) or an int of ns."""
    if isinstance(value, int):
        return value
    parts = re.findall(r"(\d+)(ns|us|ms|s|m|h|d)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _clock(state: pl.DataFrame) -> pl.Expr:
    """The instant time to expiry is measured from: ``ts_market`` (the venue time the row's
    prices are as of) where the state carries it, else ``ts``. Live, the two differ by the
    feed's lag; against a simulated venue whose clock runs faster, only the venue's is right."""
    if "ts_market" in state.columns:
        return pl.coalesce("ts_market", "ts")
    return pl.col("ts")


def tenors(state: pl.DataFrame) -> pl.DataFrame:
    """``state`` with a ``tenor`` label: ``'spot'``, ``'perp'``, or ``'q1'``, ``'q2'``, … for dated
    futures, numbered by expiry (dense rank, nearest first) per (ts, venue, base) among the
    *unexpired* futures. A future with ``expiry <= ts`` (or no expiry) is dropped from the frame:
    its book is no longer a market. Labels stay bounded (one per listed expiry) for Prometheus."""
    is_future = pl.col("market") == "future"
    live = state.filter(~is_future | (pl.col("expiry") > _clock(state)).fill_null(False))
    rank = (
        pl.when(is_future).then(pl.col("expiry")).otherwise(None)
        .rank("dense").over(list(TS_KEYS))
    )
    return live.with_columns(
        tenor=pl.when(pl.col("market") == "spot").then(pl.lit("spot"))
        .when(pl.col("market") == "perpetual").then(pl.lit("perp"))
        .otherwise(pl.lit("q") + rank.cast(pl.String))
    )


def _spot_legs(state: pl.DataFrame, spot_quotes: Sequence[str]) -> pl.DataFrame:
    """One spot row per (ts, exchange, base): the first listed quote in ``spot_quotes`` order."""
    pref = pl.DataFrame(
        {"quote": list(spot_quotes), "_pref": list(range(len(spot_quotes)))},
        schema={"quote": state.schema["quote"], "_pref": pl.Int32},
    )
    spot = state.filter(pl.col("market") == "spot").join(pref, on="quote", how="inner")
    keys = ["ts", "exchange", "base"]
    spot = spot.filter(pl.col("_pref") == pl.col("_pref").min().over(keys))
    return spot.select(
        *keys,
        spot_venue=pl.col("venue"),
        spot_symbol=pl.col("symbol"),
        spot_ref=pl.when(pl.col("in_sync")).then(pl.col("mid")),
        _spot_sync=pl.col("in_sync"),
        _spot_age=pl.col("quote_age_s"),
    ).unique(subset=keys, keep="first", maintain_order=True)


def _ann(b: pl.Expr, dte: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Simple ``b * 365 / dte`` and compounded ``(1 + b) ** (365 / dte) - 1``; null when dte <= 0
    or null (perpetuals)."""
    ok = dte > 0
    return (
        pl.when(ok).then(b * 365.0 / dte),
        pl.when(ok).then((1.0 + b).pow(365.0 / dte) - 1.0),
    )


def notional_label(notional: float) -> str:
    """A notional as a column suffix: 100000, 2p5."""
    return f"{notional:.0f}" if float(notional).is_integer() else f"{notional:g}".replace(".", "p")


def basis(
    state: pl.DataFrame,
    vwaps: pl.DataFrame | None = None,
    *,
    notionals: Sequence[float] | None = None,
    max_age_s: float = 5.0,
    spot_quotes: Sequence[str] = SPOT_QUOTES,
) -> pl.DataFrame:
    """One row per derivative sample (perpetual or unexpired future) of ``state`` (labelled by
    ``tenors`` unless ``state`` already has a ``tenor`` column).

    Columns (fractions unless said; F = the derivative's book mid when in sync, S = ``spot_ref``):

    - keys: ``ts, exchange, venue, symbol, base, quote, market, tenor, inverse, expiry``
    - ``dte_days``: ``(expiry - ts) / 86_400e9``, exact; null for perpetuals
    - ``mid`` (F), ``mark``, ``index``, ``spot_venue``, ``spot_symbol``, ``spot_ref`` (S, USD)
    - ``basis_spot = (F - S) / S`` (for a perpetual: its premium against spot)
    - ``basis_index = (F - index) / index``
    - ``basis_spot_ann``, ``basis_index_ann``: simple ``b * 365 / dte_days``; ``*_ann_comp``:
      compounded ``(1 + b) ** (365 / dte_days) - 1``; null for perpetuals or ``dte_days <= 0``
    - ``premium = (P - index) / index`` for perpetuals, P = the book mid while in sync, else the
      venue's mark price; ``premium_ref`` says which (``'mid'``/``'mark'``); null for futures
    - ``funding_rate`` (per interval), ``funding_interval_hours``, ``next_funding_time``,
      ``funding_ann = rate * (24 / h) * 365``, ``funding_8h = rate * 8 / h``; null when the
      interval is unknown (never assumed to be 8 h)
    - ``oi_contracts`` (as given), ``oi_usd``: linear ``oi * mark`` (mid when no mark), inverse
      ``oi * contract_size``
    - tradable basis, one column pair per notional N (``N`` printed without decimals, e.g.
      ``tradable_100000``): ``tradable_N = (F_sell_vwap(N) - S_buy_vwap(N)) / S_buy_vwap(N)``,
      the gross of buying spot and selling the derivative for N USD; ``tradable_ann_N`` simple
      annualised (null for perpetuals). Null when a vwap is null (book cannot fill N) or a leg is
      out of sync. ``notionals`` fixes the column set (default: the notionals found in ``vwaps``)
      so that the live schema does not depend on a tick's content.
    - ``valid`` / ``reason``: the first failing check of ``book_unsynced``, ``book_empty``,
      ``book_stale`` (``quote_age_s > max_age_s``), ``spot_missing``, ``spot_unsynced``,
      ``spot_empty``, ``spot_stale``; reason null when valid. An invalid row keeps the numbers
      that can still be computed (funding, OI, premium from mark) so callers decide.
    """
    st = tenors(state) if "tenor" not in state.columns else state
    deriv = st.filter(pl.col("market").is_in(["perpetual", "future"])).join(
        _spot_legs(st, spot_quotes), on=["ts", "exchange", "base"], how="left"
    )
    f = pl.when(pl.col("in_sync")).then(pl.col("mid"))
    s = pl.col("spot_ref")
    idx = pl.col("index")
    dte = pl.col("dte_days")
    perp = pl.col("market") == "perpetual"
    interval = pl.col("funding_interval_hours")
    age_limit = pl.lit(max_age_s)
    reason = (
        pl.when(~pl.col("in_sync").fill_null(False)).then(pl.lit("book_unsynced"))
        .when(pl.col("mid").is_null()).then(pl.lit("book_empty"))
        .when(pl.col("quote_age_s") > age_limit).then(pl.lit("book_stale"))
        .when(pl.col("spot_symbol").is_null()).then(pl.lit("spot_missing"))
        .when(~pl.col("_spot_sync").fill_null(False)).then(pl.lit("spot_unsynced"))
        .when(s.is_null()).then(pl.lit("spot_empty"))
        .when(pl.col("_spot_age") > age_limit).then(pl.lit("spot_stale"))
    )
    out = deriv.with_columns(
        dte_days=(pl.col("expiry") - _clock(deriv)).cast(pl.Float64) / NS_PER_DAY,
        mid=f,
        basis_spot=(f - s) / s,
        basis_index=(f - idx) / idx,
        premium=pl.when(perp).then((pl.coalesce(f, pl.col("mark")) - idx) / idx),
        premium_ref=pl.when(perp & f.is_not_null()).then(pl.lit("mid"))
        .when(perp & pl.col("mark").is_not_null()).then(pl.lit("mark")),
        funding_ann=pl.col("funding_rate") * (24.0 / interval) * 365.0,
        funding_8h=pl.col("funding_rate") * (8.0 / interval),
        oi_contracts=pl.col("open_interest"),
        oi_usd=pl.when(pl.col("inverse"))
        .then(pl.col("open_interest") * pl.col("contract_size"))
        .otherwise(pl.col("open_interest") * pl.coalesce(pl.col("mark"), f)),
        reason=reason,
    )
    bs_ann, bs_comp = _ann(pl.col("basis_spot"), dte)
    bi_ann, bi_comp = _ann(pl.col("basis_index"), dte)
    out = out.with_columns(
        basis_spot_ann=bs_ann, basis_spot_ann_comp=bs_comp,
        basis_index_ann=bi_ann, basis_index_ann_comp=bi_comp,
        valid=pl.col("reason").is_null(),
    )
    tradable: list[str] = []
    if vwaps is not None:
        if notionals is None:
            notionals = sorted(vwaps.get_column("notional_usd").unique().drop_nulls().to_list())
        legs_ok = pl.col("in_sync").fill_null(False) & pl.col("_spot_sync").fill_null(False)
        for n in notionals:
            v = vwaps.filter(pl.col("notional_usd") == n)
            sell = v.select("ts", "venue", "symbol", _fsell="sell_vwap")
            buy = v.select("ts", spot_venue="venue", spot_symbol="symbol", _sbuy="buy_vwap")
            name, ann = f"tradable_{notional_label(n)}", f"tradable_ann_{notional_label(n)}"
            out = (
                out.join(sell, on=["ts", "venue", "symbol"], how="left")
                .join(buy, on=["ts", "spot_venue", "spot_symbol"], how="left")
                .with_columns(
                    pl.when(legs_ok).then((pl.col("_fsell") - pl.col("_sbuy")) / pl.col("_sbuy"))
                    .alias(name)
                )
                .with_columns(_ann(pl.col(name), dte)[0].alias(ann))
                .drop("_fsell", "_sbuy")
            )
            tradable += [name, ann]
    return out.select(
        "ts", "exchange", "venue", "symbol", "base", "quote", "market", "tenor", "inverse",
        "expiry", "dte_days", "mid", "mark", "index", "spot_venue", "spot_symbol", "spot_ref",
        "basis_spot", "basis_index", "basis_spot_ann", "basis_spot_ann_comp", "basis_index_ann",
        "basis_index_ann_comp", "premium", "premium_ref", "funding_rate",
        "funding_interval_hours", "next_funding_time", "funding_ann", "funding_8h",
        "oi_contracts", "oi_usd", *tradable, "valid", "reason",
    )


def constant_maturity(
    basis_df: pl.DataFrame, days: Sequence[int] = (30, 90), *, column: str = "basis_spot_ann"
) -> pl.DataFrame:
    """Constant-maturity annualised basis per (ts, venue, base) and tenor in ``days``.

    Linear interpolation in time to expiry between the two valid futures whose ``dte_days``
    bracket the tenor (``lo <= days <= hi``): ``v_lo + (v_hi - v_lo) * (days - lo) / (hi - lo)``;
    exactly on an expiry it is that contract's value. Null (never extrapolated) when no valid
    future lies on one side. Perpetuals and invalid rows take no part.

    Columns: ``ts, exchange, venue, base, days, basis_ann, dte_lo, dte_hi, symbol_lo,
    symbol_hi``; one row per group holding a future and per tenor.
    """
    keys = ["ts", "exchange", "venue", "base"]
    fut = basis_df.filter(pl.col("market") == "future")
    usable = fut.filter(pl.col("valid") & pl.col(column).is_not_null() & (pl.col("dte_days") > 0))
    grid = fut.select(keys).unique().join(
        pl.DataFrame({"days": list(days)}, schema={"days": pl.Int64}), how="cross"
    )
    pts = grid.join(usable.select(*keys, "symbol", "dte_days", _v=pl.col(column)), on=keys,
                    how="left")
    d, t = pl.col("dte_days"), pl.col("days").cast(pl.Float64)
    below, above = d <= t, d >= t
    agg = pts.group_by([*keys, "days"]).agg(
        dte_lo=d.filter(below).max(),
        dte_hi=d.filter(above).min(),
        _v_lo=pl.col("_v").filter(below).sort_by(d.filter(below)).last(),
        _v_hi=pl.col("_v").filter(above).sort_by(d.filter(above)).first(),
        symbol_lo=pl.col("symbol").filter(below).sort_by(d.filter(below)).last(),
        symbol_hi=pl.col("symbol").filter(above).sort_by(d.filter(above)).first(),
    )
    lo, hi, vlo, vhi = pl.col("dte_lo"), pl.col("dte_hi"), pl.col("_v_lo"), pl.col("_v_hi")
    return agg.with_columns(
        basis_ann=pl.when(hi == lo).then(vlo).otherwise(vlo + (vhi - vlo) * (t - lo) / (hi - lo))
    ).select(*keys, "days", "basis_ann", "dte_lo", "dte_hi", "symbol_lo", "symbol_hi").sort(
        [*keys, "days"]
    )


def term_structure(basis_df: pl.DataFrame, *, column: str = "basis_spot") -> pl.DataFrame:
    """Term-structure points per (ts, venue, base), sorted by ``dte_days``.

    A future contributes (tenor, ``dte_days``, ``basis`` = ``column``, ``basis_ann`` simple
    annualised); a perpetual contributes a point at ``dte_days = 0`` whose ``basis`` is its
    ``premium`` against the index and whose ``basis_ann`` is null (a premium has no maturity to
    annualise over). Columns: ``ts, exchange, venue, base, tenor, symbol, dte_days, basis,
    basis_ann, valid``.
    """
    perp = pl.col("market") == "perpetual"
    return basis_df.select(
        "ts", "exchange", "venue", "base", "tenor", "symbol",
        dte_days=pl.when(perp).then(pl.lit(0.0)).otherwise(pl.col("dte_days")),
        basis=pl.when(perp).then(pl.col("premium")).otherwise(pl.col(column)),
        basis_ann=pl.when(perp).then(None).otherwise(_ann(pl.col(column), pl.col("dte_days"))[0]),
        valid="valid",
    ).sort("ts", "venue", "base", "dte_days")


def cross_venue(basis_df: pl.DataFrame, *, column: str = "basis_spot_ann") -> pl.DataFrame:
    """Across venues, per (ts, base, tenor).

    - ``n_venues``: venues with a valid non-null ``column`` (or ``premium`` for perpetuals)
    - ``basis_ann_median``, ``basis_ann_range`` (max - min), ``basis_ann_std`` (sample std,
      ddof 1, null under two venues) of ``column`` over valid rows (futures; null for perps).
      ``q1`` of two exchanges may be different expiries: annualising makes them comparable.
    - ``premium_median``, ``premium_range``, ``premium_std``: the same for perpetual premiums.
    - ``funding_ann_oiw``: ``sum(funding_ann_i * oi_usd_i) / sum(oi_usd_i)`` over venues with both
      (rates brought to a common interval by annualising; weights in USD because contracts of
      linear and inverse markets are not comparable); ``funding_8h_oiw`` the same per 8 h.
      Funding and OI do not depend on the books, so these ignore ``valid``.
    - ``oi_usd``: summed open interest in USD; ``n_funding``: venues in the funding average.
    """
    ok = pl.col("valid")
    b = pl.col(column).filter(ok & pl.col(column).is_not_null())
    p = pl.col("premium").filter(ok & pl.col("premium").is_not_null())
    both = pl.col("funding_ann").is_not_null() & pl.col("oi_usd").is_not_null()
    w = pl.col("oi_usd").filter(both)
    fa = pl.col("funding_ann").filter(both)
    return (
        basis_df.group_by("ts", "base", "tenor")
        .agg(
            n_venues=pl.max_horizontal(b.count(), p.count()),
            basis_ann_median=b.median(),
            basis_ann_range=b.max() - b.min(),
            basis_ann_std=b.std(),
            premium_median=p.median(),
            premium_range=p.max() - p.min(),
            premium_std=p.std(),
            funding_ann_oiw=(fa * w).sum() / w.sum(),
            oi_usd=pl.when(pl.col("oi_usd").count() > 0).then(pl.col("oi_usd").sum()),
            n_funding=both.sum(),
        )
        .with_columns(
            funding_ann_oiw=pl.when(pl.col("n_funding") > 0).then(pl.col("funding_ann_oiw")),
        )
        .with_columns(funding_8h_oiw=pl.col("funding_ann_oiw") / (365.0 * 3.0))
        .sort("ts", "base", "tenor")
    )
