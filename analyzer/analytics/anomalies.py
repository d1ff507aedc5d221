"""Rolling anomaly flags on metric series (basis, premium, funding, ...).

A *series* frame is long: ``ts, venue, base, tenor, metric, value, valid, reason`` and optionally
``symbol``; one series is one (venue, base, tenor, metric[, symbol]) (``symbol`` tells apart
two perpetuals of one venue, e.g. USDⓈ-M BTCUSDT and BTCUSDC, which share the tenor ``perp``).
Two checks, both z-scores against a trailing window that *excludes the current sample* (a spike
does not dilute its own reference):

- ``own_history``: ``z = (value - mean) / std`` over the series' own valid samples in the window.
- ``cross_venue``: the venue's own move ``u = value - mean`` (``mean`` as above) against the
  median move of the *other* venues at the same (ts, base, tenor, metric):
  ``dev = u - median_others(u)``, only when at least ``min_venues`` venues (this one included)
  have a move; ``z = (dev - mean(dev)) / std(dev)`` over this venue's trailing deviations.
  Why not ``value - median(value)`` directly: venues carry persistent offsets (inverse vs linear
  contracts, another quote currency, different expiries behind one tenor label), so a raw median
  jumps whenever one venue drops out (stale book) and flags the others; comparing *moves* removes
  the offsets, and a market-wide move is not a cross-venue anomaly. Leave-one-out keeps a venue
  from pulling its own reference. The spread is the rolling std of the venue's deviation, not a
  cross-sectional MAD: with 3-6 venues a MAD is mostly noise (often 0).

std is the sample std (ddof 1), floored at ``min_std``. A sample is scored only with
``n >= min_samples`` history samples in its window and a spread > 0: an exactly flat history
(funding clamped at the 0.01 % interest rate for hours) has no scale, so a tiny move off it is not
an infinite z; pass ``min_std`` (in the metric's units) to score such series. An anomaly is not an
opportunity: flags feed the outlier gate, they are never alerts to trade.

Invalid samples (stale or unsynced book, null value) are neither scored nor used as anybody's
history: they are counted as suppressed with their reason.

Two implementations of that one definition:

- ``anomalies(series)``: batch, Polars rolling windows over whole series (backfill, research).
- ``AnomalyState.update(tick)``: live, incremental. It keeps, per series, the trailing window of
  its valid values and of its cross-venue deviations (each computed once, at its own tick, from
  the history before it) with their exact running sums, so a tick costs O(new samples), not
  O(history). Fed every sample of a range in time order, it returns the flags ``anomalies()``
  returns for that range (tested on random series, to 1e-9 relative in z, expected and spread).

Window statistics, numerically: live sums are exact (each float is an integer times a power of
two; count, sum and sum of squares are Python integers), so mean and variance are each rounded
once, whatever the window's length, offset or history; no drift from adding and removing samples,
and an exactly flat window has std exactly 0. Batch rolls over ``value - first value of the
series``: Polars' rolling variance loses about ``|mean| / std`` ulps (2e-8 relative for funding
at 0.11 moving by 1e-9), the shift removes the offset from that ratio.

``anomalies(history, since=t)`` (score only samples at or after ``t`` of a trailing history
frame) still works but rolls over the whole history each call; because the cross check uses
each history sample's own trailing mean, that history must hold two windows (``2 * window``, or
2n samples) for its flags to equal batch ones. ``AnomalyState`` needs no history frame.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence

import polars as pl

from analyzer.analytics.basis import duration_ns

KEYS = ["venue", "base", "tenor", "metric"]
_CROSS = ["ts", "base", "tenor", "metric"]
# Metrics that are a function of the books (their validity is the row's ``valid``) and the market
# they apply to; anything else (funding, OI) does not depend on a book and is valid when present.
_APPLIES = {
    "basis_spot_ann": "future", "basis_index_ann": "future", "basis_spot_ann_comp": "future",
    "basis_index_ann_comp": "future", "premium": "perpetual", "funding_ann": "perpetual",
    "funding_8h": "perpetual",
}
_BOOK_FREE = {"funding_ann", "funding_8h", "funding_rate", "oi_usd", "oi_contracts"}


def series_from_basis(
    basis_df: pl.DataFrame,
    metrics: Sequence[str] = ("basis_spot_ann", "premium", "funding_ann"),
) -> pl.DataFrame:
    """Long series frame (with ``symbol``) from a ``basis()`` frame: one row per derivative
    sample and metric that applies to its market (no ``premium`` for a future, no annualised
    basis for a perpetual).
    Funding and OI metrics are valid whenever present; book metrics carry the row's
    ``valid``/``reason``."""
    frames = []
    for m in metrics:
        market = _APPLIES.get(m)
        df = basis_df if market is None else basis_df.filter(pl.col("market") == market)
        book_free = m in _BOOK_FREE
        frames.append(df.select(
            "ts", "venue", "base", "tenor", "symbol",
            metric=pl.lit(m),
            value=pl.col(m).cast(pl.Float64),
            valid=pl.col(m).is_not_null() if book_free else pl.col("valid"),
            reason=pl.when(pl.col(m).is_null()).then(pl.lit("null_value")) if book_free
            else pl.col("reason"),
        ))
    return pl.concat(frames)


def history_span_ns(window: str) -> int:
    """How much trailing history (ns) a live caller must keep for a duration ``window`` so that
    its flags equal a batch call's: two windows (the cross check uses each history sample's own
    trailing mean). For an int window keep 2n valid samples per series."""
    return 2 * duration_ns(window)


def _loo_median(df: pl.DataFrame, col: str, group: list[str]) -> pl.DataFrame:
    """``df`` with ``_med``, the median of ``col`` over the *other* rows of its ``group``
    (leave-one-out), and ``_nv``, the group's size. From three order statistics: with the group
    sorted as x[0..n-1], c = (n - 1) // 2 and r this row's rank, the others' median is x[c]
    (n even, r > c) or x[c + 1] (n even, r <= c); for n odd (x[c-1] + x[c]) / 2 when r > c,
    (x[c-1] + x[c+1]) / 2 when r == c, (x[c] + x[c+1]) / 2 when r < c. ``group[0]`` must be
    ``ts``; the result is sorted by (ts, group, col), so still in time order."""
    rest = group[1:]
    combo = df.select(rest).unique(maintain_order=True).with_row_index("_k")
    width = max(combo.height, 1)
    d = df.join(combo, on=rest, how="left").with_columns(
        _gid=pl.col("ts").rank("dense").cast(pl.Int64) * width + pl.col("_k").cast(pl.Int64)
    ).sort("_gid", col)
    pos = pl.int_range(pl.len(), dtype=pl.Int64)
    d = d.with_columns(
        _start=pl.when(pl.col("_gid") != pl.col("_gid").shift(1).fill_null(-1)).then(pos)
        .forward_fill(),
        _nv=pl.len().over("_gid").cast(pl.Int64),
    )
    start, n = pl.col("_start"), pl.col("_nv")
    c = (n - 1) // 2
    r = pos - start
    x = pl.col(col)
    lo = x.gather(start + (c - 1).clip(lower_bound=0))
    mid = x.gather(start + c)
    hi = x.gather(start + pl.min_horizontal(c + 1, n - 1))
    even = (n % 2) == 0
    med = (
        pl.when(n < 2).then(None)
        .when(even & (r > c)).then(mid)
        .when(even).then(hi)
        .when(r > c).then((lo + mid) / 2)
        .when(r == c).then((lo + hi) / 2)
        .otherwise((mid + hi) / 2)
    )
    return d.with_columns(_med=med).drop("_k", "_gid", "_start")


def _window_stats(
    df: pl.DataFrame, col: str, window: str | int, keys: list[str]
) -> pl.DataFrame:
    """``_mean``, ``_std``, ``_n`` of ``col`` over the trailing window of each series, excluding
    the current sample; ``df`` must be in time order (each series is then in time order)."""
    # rolled about the series' first value: Polars' rolling variance loses ~|mean| / std ulps
    df = df.with_columns(_ref=pl.col(col).first().over(keys))
    df = df.with_columns(_x=pl.col(col) - pl.col("_ref"))
    ref, x = pl.col("_ref"), pl.col("_x")
    one = x.is_not_null().cast(pl.Int64)
    if isinstance(window, int):
        prev = x.shift(1)
        stats = [
            (prev.rolling_mean(window, min_samples=1).over(keys) + ref).alias("_mean"),
            prev.rolling_std(window, min_samples=2).over(keys).alias("_std"),
            one.shift(1).rolling_sum(window, min_samples=1).over(keys).fill_null(0).alias("_n"),
        ]
    else:
        w = f"{duration_ns(window)}i"
        stats = [
            (x.rolling_mean_by("ts", w, closed="left").over(keys) + ref).alias("_mean"),
            x.rolling_std_by("ts", w, closed="left").over(keys).alias("_std"),
            one.rolling_sum_by("ts", w, closed="left").over(keys).alias("_n"),
        ]
    return df.with_columns(stats).drop("_ref", "_x")


def _flags(
    df: pl.DataFrame, dev: pl.Expr, expected: pl.Expr, reason: str, k: float, min_samples: int,
    min_std: float, since: int | None, columns: list[str],
) -> pl.DataFrame:
    spread = pl.max_horizontal(pl.col("_std"), pl.lit(min_std))
    z = pl.when(spread > 0).then(dev / spread)
    scored = df.filter(pl.col("ts") >= since) if since is not None else df
    return scored.with_columns(
        z=z, expected=expected, spread=spread, reason=pl.lit(reason), n=pl.col("_n")
    ).filter((pl.col("_n") >= min_samples) & (pl.col("z").abs() > k)).select(columns)


def anomalies(
    series: pl.DataFrame,
    window: str | int = "30m",
    k: float = 4.0,
    min_samples: int = 30,
    *,
    min_venues: int = 3,
    min_std: float = 0.0,
    since: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Flag samples more than ``k`` sample standard deviations from their own trailing history or
    from the cross-venue median (module docstring for the definitions).

    ``window``: a duration (``'30m'``; samples with ``ts`` in ``[t - window, t)``) or an int n (the
    n previous valid samples of the series). ``since``: score and count only samples with
    ``ts >= since``; earlier rows are history.

    Returns ``(flags, suppressed)``. ``flags``: ``ts, venue, base, tenor, metric[, symbol],
    value, reason ('own_history'|'cross_venue'), z, expected, spread, n``; a sample failing both
    checks gives two rows. ``expected`` is the value that would score z = 0 (own: the window
    mean; cross: own mean + the others' median move + the mean deviation), ``spread`` the std
    used, ``n`` the history samples. ``suppressed``: ``venue, base, tenor, metric[, symbol],
    reason, suppressed``: counts of invalid samples (reason as given, ``'null_value'`` for a
    valid row without a value).
    """
    ok = (
        pl.col("valid").fill_null(False) & pl.col("value").is_not_null()
        & pl.col("value").is_finite()
    )
    keys = [*KEYS, "symbol"] if "symbol" in series.columns else KEYS
    in_scope = pl.col("ts") >= since if since is not None else pl.lit(True)
    suppressed = (
        series.filter(~ok & in_scope)
        .with_columns(reason=pl.coalesce(
            pl.col("reason"),
            pl.when(pl.col("valid").fill_null(False)).then(pl.lit("null_value"))
            .otherwise(pl.lit("invalid")),
        ))
        .group_by([*keys, "reason"])
        .agg(suppressed=pl.len().cast(pl.Int64))
        .sort([*keys, "reason"])
    )
    columns = ["ts", *keys, "value", "reason", "z", "expected", "spread", "n"]
    good = series.filter(ok)
    if since is not None and not isinstance(window, int):
        good = good.filter(pl.col("ts") >= since - 2 * duration_ns(window))
    good = good.select("ts", *keys, "value").sort("ts", maintain_order=True)
    own = _window_stats(good, "value", window, keys)
    own_flags = _flags(own, pl.col("value") - pl.col("_mean"), pl.col("_mean"), "own_history",
                       k, min_samples, min_std, since, columns)
    moves = own.filter(pl.col("_mean").is_not_null())
    if since is not None and not isinstance(window, int):
        moves = moves.filter(pl.col("ts") >= since - duration_ns(window))
    moves = moves.select(
        "ts", *keys, "value", _own=pl.col("_mean"), _u=pl.col("value") - pl.col("_mean")
    )
    moves = (
        _loo_median(moves, "_u", _CROSS)
        .filter(pl.col("_nv") >= min_venues)
        .with_columns(_dev=pl.col("_u") - pl.col("_med"))
    )
    cross = _window_stats(moves, "_dev", window, keys)
    cross_flags = _flags(
        cross, pl.col("_dev") - pl.col("_mean"),
        pl.col("_own") + pl.col("_med") + pl.col("_mean"), "cross_venue",
        k, min_samples, min_std, since, columns,
    )
    flags = pl.concat([own_flags, cross_flags]).sort("ts", *keys, "reason")
    return flags, suppressed


class _Window:
    """One series' trailing samples (ts, value) with their exact count, sum and sum of squares.

    A float is ``p / 2**k`` (``float.as_integer_ratio``); the sums hold ``p << (e - k)`` at a
    common scale ``2**e`` (raised, never lowered, while the window is not empty), so they are
    exact integers and adding or removing a sample never rounds."""

    __slots__ = ("e", "items", "s1", "s2")

    def __init__(self) -> None:
        self.items: deque[tuple[int, int, int]] = deque()  # (ts, p, k)
        self.e = 0
        self.s1 = 0
        self.s2 = 0

    def add(self, ts: int, x: float) -> None:
        p, q = x.as_integer_ratio()
        k = q.bit_length() - 1
        if k > self.e:
            d = k - self.e
            self.s1 <<= d
            self.s2 <<= 2 * d
            self.e = k
        v = p << (self.e - k)
        self.s1 += v
        self.s2 += v * v
        self.items.append((ts, p, k))

    def _pop(self) -> None:
        _, p, k = self.items.popleft()
        v = p << (self.e - k)
        self.s1 -= v
        self.s2 -= v * v
        if not self.items:
            self.e = self.s1 = self.s2 = 0

    def trim(self, start: int | None, size: int | None) -> None:
        """Keep the samples with ``ts >= start`` (duration window) or the last ``size``."""
        items = self.items
        if start is not None:
            while items and items[0][0] < start:
                self._pop()
        else:
            while len(items) > size:
                self._pop()

    def stats(self) -> tuple[int, float | None, float | None]:
        """(n, mean, sample std): each the exact value rounded once (std: twice, the sqrt)."""
        n = len(self.items)
        if n == 0:
            return 0, None, None
        mean = self.s1 / (n << self.e)  # int / int is correctly rounded
        if n < 2:
            return n, mean, None
        var = (n * self.s2 - self.s1 * self.s1) / ((n * (n - 1)) << (2 * self.e))
        return n, mean, math.sqrt(var)


class _Series:
    __slots__ = ("dev", "own")

    def __init__(self) -> None:
        self.own = _Window()  # valid values
        self.dev = _Window()  # cross-venue deviations


def _loo_medians(us: list[float]) -> list[float | None]:
    """For each element of ``us``, the median of the others (``_loo_median``'s rule)."""
    n = len(us)
    if n < 2:
        return [None] * n
    order = sorted(range(n), key=us.__getitem__)
    x = [us[i] for i in order]
    c = (n - 1) // 2
    lo, mid, hi = x[max(c - 1, 0)], x[c], x[min(c + 1, n - 1)]
    out: list[float | None] = [None] * n
    for r, i in enumerate(order):
        if n % 2 == 0:
            out[i] = mid if r > c else hi
        elif r > c:
            out[i] = (lo + mid) / 2
        elif r == c:
            out[i] = (lo + hi) / 2
        else:
            out[i] = (mid + hi) / 2
    return out


class AnomalyState:
    """Live, incremental ``anomalies()``: same arguments (but ``since``), one ``update`` per tick.

    ``update(new)`` takes only the new samples (a series frame with ``ts`` in Int64 ns, any
    number of ticks, each ``ts`` later than every ``ts`` already seen, at most one sample per
    series and ``ts``; rows in any order) and
    returns ``(flags, suppressed)`` for them, in ``anomalies()``'s layout; no history frame is
    kept or passed. A state fed every sample of a range gives the flags ``anomalies()`` gives on
    that range, from the first tick (early ticks have short windows in both). To start with a
    full window after a restart, feed it the stored series of the last two windows first (one
    call, ``update(series)``, and drop its flags). ``min_venues`` must be at least 2.
    """

    def __init__(
        self,
        window: str | int = "30m",
        k: float = 4.0,
        min_samples: int = 30,
        *,
        min_venues: int = 3,
        min_std: float = 0.0,
    ) -> None:
        if min_venues < 2:
            raise ValueError("min_venues must be >= 2")
        if isinstance(window, int) and window < 1:
            raise ValueError("an int window must be >= 1")
        self.window = window
        self.span = None if isinstance(window, int) else duration_ns(window)
        self.k = k
        self.min_samples = min_samples
        self.min_venues = min_venues
        self.min_std = min_std
        self.keys: list[str] | None = None
        self.schema: dict[str, pl.DataType] = {}
        self.last_ts: int | None = None
        self.series: dict[tuple, _Series] = {}
        self._updates = 0
        self._empties: tuple[list[str] | None, pl.DataFrame, pl.DataFrame] | None = None

    def _empty(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        if self._empties is None or self._empties[0] != self.keys:
            keys = self.keys or KEYS
            kt = {c: self.schema.get(c, pl.String) for c in keys}
            flags = pl.DataFrame(schema={
                "ts": pl.Int64, **kt, "value": pl.Float64, "reason": pl.String,
                "z": pl.Float64, "expected": pl.Float64, "spread": pl.Float64, "n": pl.Int64})
            sup = pl.DataFrame(schema={**kt, "reason": pl.String, "suppressed": pl.Int64})
            self._empties = (self.keys, flags, sup)
        return self._empties[1].clone(), self._empties[2].clone()

    def update(self, new: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Score ``new`` (the samples of one or more new ticks); see the class docstring."""
        if self.keys is None:
            self.keys = [*KEYS, "symbol"] if "symbol" in new.columns else list(KEYS)
            self.schema = dict(new.schema)
        elif ("symbol" in new.columns) != ("symbol" in self.keys):
            raise ValueError("the series keys changed between updates")
        if new.is_empty():
            return self._empty()
        keys = self.keys
        cols = new if new["ts"].is_sorted() else new.sort("ts", maintain_order=True)
        ts_l = cols["ts"].to_list()
        if self.last_ts is not None and ts_l[0] <= self.last_ts:
            raise ValueError(f"ts {ts_l[0]} is not after the last update's {self.last_ts}")
        key_l = list(zip(*(cols[c].to_list() for c in keys), strict=True))
        val_l = cols["value"].to_list()
        ok_l = cols["valid"].to_list()
        why_l = cols["reason"].to_list()
        flags: list[tuple] = []
        suppressed: Counter[tuple] = Counter()
        start = 0
        n = len(ts_l)
        while start < n:
            t = ts_l[start]
            end = start + 1
            while end < n and ts_l[end] == t:
                end += 1
            self._tick(t, range(start, end), key_l, val_l, ok_l, why_l, flags, suppressed)
            start = end
        self.last_ts = ts_l[-1]
        self._updates += 1
        if self.span is not None and self._updates % 1024 == 0:
            self._sweep()
        out_flags, out_sup = self._empty()
        if flags:
            out_flags = pl.DataFrame(flags, schema=out_flags.schema, orient="row").sort(
                "ts", *keys, "reason")
        if suppressed:
            out_sup = pl.DataFrame(
                [(*key, why, m) for (key, why), m in suppressed.items()],
                schema=out_sup.schema, orient="row").sort([*keys, "reason"])
        return out_flags, out_sup

    def _tick(self, t: int, rows: range, key_l: list[tuple], val_l: list, ok_l: list,
              why_l: list, flags: list[tuple], suppressed: Counter[tuple]) -> None:
        k, min_samples, min_std = self.k, self.min_samples, self.min_std
        start = None if self.span is None else t - self.span
        size = self.window if self.span is None else None
        seen: set[tuple] = set()
        moves: dict[tuple, list[tuple]] = {}  # (base, tenor, metric) -> [(key, value, mean, u)]
        for i in rows:
            key, x, valid = key_l[i], val_l[i], ok_l[i]
            if not valid or x is None or not math.isfinite(x):
                why = why_l[i]
                if why is None:
                    why = "null_value" if valid else "invalid"
                suppressed[(key, why)] += 1
                continue
            if key in seen:
                raise ValueError(f"two samples of series {key} at ts {t}")
            seen.add(key)
            st = self.series.get(key)
            if st is None:
                st = self.series[key] = _Series()
            st.own.trim(start, size)
            m, mean, std = st.own.stats()
            st.own.add(t, x)
            if mean is None:
                continue
            u = x - mean
            spread = min_std if std is None else max(std, min_std)
            if m >= min_samples and spread > 0 and abs(u / spread) > k:
                flags.append((t, *key, x, "own_history", u / spread, mean, spread, m))
            moves.setdefault(key[1:4], []).append((key, x, mean, u))
        for group in moves.values():
            if len(group) < self.min_venues:
                continue
            meds = _loo_medians([g[3] for g in group])
            for (key, x, mean, u), med in zip(group, meds, strict=True):
                dev = u - med
                w = self.series[key].dev
                w.trim(start, size)
                m, dmean, std = w.stats()
                w.add(t, dev)
                if dmean is None:
                    continue
                spread = min_std if std is None else max(std, min_std)
                if m >= min_samples and spread > 0:
                    z = (dev - dmean) / spread
                    if abs(z) > k:
                        flags.append((t, *key, x, "cross_venue", z, mean + med + dmean,
                                      spread, m))

    def _sweep(self) -> None:
        """Forget series whose windows have emptied (a venue or instrument gone)."""
        start = self.last_ts - self.span
        for key in list(self.series):
            st = self.series[key]
            st.own.trim(start, None)
            st.dev.trim(start, None)
            if not st.own.items and not st.dev.items:
                del self.series[key]
