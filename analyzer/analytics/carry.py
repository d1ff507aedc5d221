"""Carry candidates: every (spot leg, derivative leg, notional) pair of an asset, its net carry
after fees and financing, and the gates that decide whether it is an opportunity. The one
definition for the live tick (one call over every candidate at ``ts``) and for batch (the same
call over a time range: every join is keyed by ``ts``).

A *candidate* is long spot, short derivative, for a notional N USD, on the spot leg (venue,
symbol) and the derivative leg (venue, symbol) of the same ``base`` at the same ``ts``: a spot
book of an exchange is paired with every dated future and perpetual of that base on the same
exchange *and* on every other exchange (``same_exchange`` tells which).

Inputs (all keyed by ``ts`` Int64 ns of the common grid)

    basis_df    ``basis.basis(state, ...)``; read: ts, exchange, venue, symbol, base, quote,
                market, tenor, expiry, dte_days, mid, mark, index, spot_venue, spot_symbol,
                basis_spot_ann, funding_ann, oi_usd, valid, reason.
    slippage    ``liquidity.liquidity`` slippage: ts, venue, symbol, notional_usd, buy_vwap,
                buy_bps, sell_vwap, sell_bps, buy_reason, sell_reason.
    summary     ``liquidity.liquidity`` summary: ts, venue, symbol, spread_bps, status, and
                optionally ``ts_book`` (local ns of the book's last change; enables the quote
                age and leg-gap checks).
    depth       ``liquidity.liquidity`` depth: ts, venue, symbol, band_bps, bid_usd, ask_usd; it
                must hold the band ``cfg.depth_band_bps``.
    spot_legs   ts, venue, symbol, base, quote[, exchange]: the spot books the caller wants
                paired (e.g. every spot book of ``instruments`` with a USD-stablecoin quote). When
                ``exchange`` is missing it is taken from the basis rows whose spot leg it is.
                Default: the spot legs ``basis`` chose (spot_venue, spot_symbol).
    funding_mean  ``funding.mean_realised``: venue, symbol, funding_ann_mean (optional).
    anomalies   ``anomalies.anomalies`` flags: ts, venue, base, tenor, metric, reason[, symbol]
                (optional; a flag of either check, own history or cross-venue, counts: an
                anomaly is not an opportunity).

Conventions: every return is a plain fraction of N (0.012, not bps or %); bps columns say so.
Prices of USD-stablecoin quotes are taken at par with USD (as in ``basis``). Fees are fractions
of the traded notional (all legs are traded for N). A year is 365 days; ``dte_days`` is exact.

Formulas (``notes/analytics.md``, "Carry opportunities"), per row:

- ``gross = (deriv_sell_vwap - spot_buy_vwap) / spot_buy_vwap``: sell the derivative at its
  bid-side VWAP for N, buy spot at its ask-side VWAP for N. Slippage and half-spreads are inside
  the VWAPs; ``spot_slippage_bps`` (buy) / ``deriv_slippage_bps`` (sell) are reported apart,
  ``|VWAP - mid| / mid * 1e4`` of each leg's own book, for the liquidity gate only.
- ``hold_days``: futures ``dte_days`` (held to expiry); perpetuals ``cfg.holding_days``.
- fees (taker, from ``FeeSchedule``): ``fee_spot_entry`` = spot taker; ``fee_deriv_entry`` =
  derivative taker; ``fee_deriv_exit`` = perpetual taker (closing the perp), 0 for a future;
  ``fee_settlement`` = the future's settlement fee, 0 for a perpetual; ``fee_spot_exit`` = spot
  taker when ``cfg.count_spot_exit_fee`` (selling the coin at the end) else 0;
  ``fees = `` their sum. A perpetual therefore pays both legs entry + exit.
- ``exit_slippage``: unwinding at today's books, as a fraction of N: the spot leg's sell-side
  slippage (``sell_bps / 1e4``, selling the coin at the end; counted with the spot exit fee,
  ``cfg.count_spot_exit_fee``), plus, for a perpetual, its buy-side slippage (buying it back).
  A future settles at the index: its own exit has no book. So both kinds count the exit of
  every leg that is unwound through a book.
- ``financing = cfg.financing_rate * hold_days / 365`` (the cost of funding the spot purchase
  over the hold, ``financing_rate`` a year).
- ``funding_ann_used`` (perpetuals): ``funding_mean.funding_ann_mean`` of (venue, symbol) when
  given (``funding_source = 'realised'``), else the current ``funding_ann`` of ``basis_df``
  (``'current'``); null for futures. ``funding_income = funding_ann_used * hold_days / 365``
  (0 for futures: their carry is the gross basis).
- ``net = gross + funding_income - fees - exit_slippage - financing`` (fraction of N over the
  hold);
  ``net_ann = net * 365 / hold_days``; ``net_usd = net * N``. This is the notes' formulas:
  futures ``net_ann = (gross - costs) * 365 / dte``; perpetuals ``net_ann = funding_ann_used -
  (fees + entry_cost + exit_slippage) * 365 / H - financing_rate`` with ``entry_cost = -gross``
  (what entering at the current perp-spot price levels and slippage costs; the exit is assumed
  at zero premium, at today's slippage).

Gates: each ``g_<gate>`` is True when every check of the gate holds (a value that cannot be
measured fails it, except the mark/index and leg-gap checks, skipped when their inputs are
absent); ``<gate>_detail`` is null when it passes, else the first failing check in words (e.g.
``'slippage 42.1 bps > 20 bps on spot leg'``). Measured values are columns; thresholds are the
``CarryConfig`` (and appear in the detail text). In ``GATES`` order:

1. freshness: the derivative's basis ``reason`` is none of book_unsynced / book_empty /
   book_stale; both legs' summary ``status`` is 'ok' (in sync, two-sided, not crossed); the
   spot leg's basis reason (spot_*) when it is the leg ``basis`` used; with ``ts_book`` in
   ``summary``: ``spot_age_s``, ``deriv_age_s`` (``(ts - ts_book) / 1e9``) <=
   ``max_quote_age_s`` and ``leg_gap_s = |spot ts_book - deriv ts_book| / 1e9`` <=
   ``max_leg_gap_s``; ``mark_gap`` <= ``max_mark_index_gap``, where ``mark_gap = |mark -
   index| / index`` for a perpetual and ``|mid - mark| / mark`` for a dated future. (A
   quarterly's mark carries its basis by construction (e.g. index + moving average of the
   basis), so ``|mark - index|`` of a future *is* the carry, 2 % for 8 % a year at 90 days: bounding
   it at 0.5 % would reject every opportunity. Its integrity check is that the book agrees with
   the venue's mark.)
2. expiry (futures; perpetuals pass): ``hours_to_expiry = dte_days * 24`` >
   ``settlement_window_hours``, then ``min_dte_days <= dte_days <= max_dte_days``.
3. liquidity: both VWAPs exist (a book that cannot fill N fails, with the slippage reason);
   ``spot_slippage_bps``, ``deriv_slippage_bps`` <= ``max_slippage_bps``; ``spot_spread_bps``,
   ``deriv_spread_bps`` <= ``max_spread_bps``; ``spot_depth_usd`` (ask side, the side bought)
   and ``deriv_depth_usd`` (bid side, the side sold) within ``depth_band_bps`` of the mid >=
   ``min_depth_multiple * N`` (a band the book window does not reach is null and fails).
4. open_interest: ``oi_usd >= min_oi_usd`` and ``oi_fraction = N / oi_usd <= max_oi_fraction``.
5. outlier: no anomaly flag (``own_history`` or ``cross_venue``) for (ts, venue, base,
   tenor[, symbol]); and when
   ``xv_venues >= 3`` venues have a value at (ts, base, tenor): ``|outlier_dev| <=
   max_outlier_ann`` with ``outlier_dev = value - xv_median`` and value = ``basis_spot_ann``
   for futures (valid rows), ``funding_ann`` for perpetuals (what the carry earns).
6. economics: ``net_ann >= min_net_ann`` (financing is already subtracted, so the threshold is
   the excess over financing).

``passes_all`` = every gate; ``reject_gate`` = the first failing gate in ``GATES`` order (null
when all pass), ``reject_detail`` its detail. Persistence and hysteresis (``entry_ann``,
``exit_ann``, ``persistence_*``) need history and are applied by the caller's lifecycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import polars as pl

from analyzer.venues import VENUES

GATES: tuple[str, ...] = ("freshness", "expiry", "liquidity", "open_interest", "outlier",
                          "economics")
GATE = pl.Enum(list(GATES))
_NS = 1e9


class UnknownVenueError(ValueError):
    """A leg's venue has no entry in the ``FeeSchedule``."""


class VenueFees(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fees of one venue, fractions of the traded notional."""

    taker: float
    maker: float
    settlement: float = 0.0  # charged on delivery/settlement of a dated future


def _documented_defaults() -> dict[str, VenueFees]:
    """Every registered market's documented default fees (its lowest tier, see its spec)."""
    return {feed: VenueFees(taker=m.fees.taker, maker=m.fees.maker, settlement=m.fees.settlement)
            for feed, (m, _) in VENUES.items()}


class FeeSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """Per-venue fees; default each venue's documented default tier. A venue not listed is an
    error, never a guess."""

    venues: dict[str, VenueFees] = msgspec.field(default_factory=_documented_defaults)

    def frame(self, venues: Sequence[str]) -> pl.DataFrame:
        """venue, taker, maker, settlement for ``venues``; ``UnknownVenueError`` if any lacks
        fees."""
        missing = sorted({v for v in venues if v not in self.venues})
        if missing:
            raise UnknownVenueError(
                f"no fees configured for venue(s) {missing}; known: {sorted(self.venues)}"
            )
        names = sorted(set(venues))
        return pl.DataFrame(
            {
                "venue": names,
                "taker": [self.venues[v].taker for v in names],
                "maker": [self.venues[v].maker for v in names],
                "settlement": [self.venues[v].settlement for v in names],
            },
            schema={"venue": pl.String, "taker": pl.Float64, "maker": pl.Float64,
                    "settlement": pl.Float64},
        )


class CarryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of the carry gates. Fractions unless the name says bps, USD, s, h or days."""

    min_net_ann: float = 0.03  # economics: net_ann (financing already out) >= this, a year
    financing_rate: float = 0.0  # cost of funding the spot purchase, a year
    count_spot_exit_fee: bool = True  # charge the spot taker fee again to sell the coin at end
    holding_days: float = 30.0  # perpetual carry: the holding period H fees are spread over
    max_slippage_bps: float = 20.0  # per leg, |VWAP(N) - mid| / mid
    max_spread_bps: float = 10.0  # per leg
    min_depth_multiple: float = 1.0  # depth within depth_band_bps on the traded side >= x * N
    depth_band_bps: float = 50.0
    min_oi_usd: float = 5e6  # derivative open interest floor
    max_oi_fraction: float = 0.01  # N <= this * open interest
    max_mark_index_gap: float = 0.005  # perps |mark - index| / index; futures |mid - mark| / mark
    max_quote_age_s: float = 5.0  # (ts - ts_book) of each leg, when summary has ts_book
    max_leg_gap_s: float = 2.0  # |ts_book spot - ts_book derivative|, when available
    min_dte_days: float = 3.0
    max_dte_days: float = 200.0
    settlement_window_hours: float = 1.0  # no entry this close to expiry (index averaging)
    max_outlier_ann: float = 0.05  # |value - cross-venue median|, with >= 3 venues
    min_outlier_venues: int = 3
    # lifecycle (applied by the caller, which has the history): open at entry_ann, close below
    # exit_ann; "persistent" = net_ann >= entry_ann in >= persistence_fraction of the samples of
    # the last persistence_window_s seconds
    entry_ann: float = 0.03
    exit_ann: float = 0.015
    persistence_window_s: float = 1800.0
    persistence_fraction: float = 0.8


_c = pl.col
_DERIV_REASONS = ["book_unsynced", "book_empty", "book_stale"]


def _num(e: pl.Expr, digits: int) -> pl.Expr:
    return e.round(digits).cast(pl.String)


def _usd(e: pl.Expr) -> pl.Expr:
    return e.round(0).cast(pl.Int64).cast(pl.String)


def _g(x: float) -> str:
    return f"{x:g}"


def _first(checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """The message of the first check whose fail condition is True (null conditions count as
    not failing: each chain tests for nulls explicitly first), null when none fails."""
    cond, msg = checks[0]
    chain = pl.when(cond).then(msg)
    for cond, msg in checks[1:]:
        chain = chain.when(cond).then(msg)
    return chain.otherwise(pl.lit(None, pl.String))


def candidates(
    basis_df: pl.DataFrame,
    slippage: pl.DataFrame,
    summary: pl.DataFrame,
    depth: pl.DataFrame,
    *,
    spot_legs: pl.DataFrame | None = None,
    notionals: Sequence[float] = (100_000,),
    fees: FeeSchedule,
    cfg: CarryConfig,
    funding_mean: pl.DataFrame | None = None,
    anomalies: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per (ts, base, spot leg, derivative leg, notional) with the net carry and the
    gates; see the module docstring for inputs, formulas and gates. Raises
    ``UnknownVenueError`` when a leg's venue has no fees.

    Columns, in order: ``ts, base, notional_usd, spot_exchange, spot_venue, spot_symbol,
    spot_quote, exchange, venue, symbol, quote, market, tenor, expiry, dte_days, hold_days,
    same_exchange`` · ``spot_buy_vwap, deriv_sell_vwap, spot_slippage_bps, deriv_slippage_bps,
    spot_spread_bps, deriv_spread_bps, spot_depth_usd, deriv_depth_usd, gross`` · ``fee_spot_entry,
    fee_deriv_entry, fee_deriv_exit, fee_settlement, fee_spot_exit, fees, exit_slippage,
    financing, funding_ann_used, funding_source, funding_income, net, net_ann, net_usd`` ·
    measured gate values ``spot_age_s, deriv_age_s, leg_gap_s, mark_gap, hours_to_expiry, oi_usd,
    oi_fraction, outlier_value, xv_median, xv_venues, outlier_dev, anomaly_metrics`` · gates
    ``g_freshness, g_expiry, g_liquidity, g_open_interest, g_outlier, g_economics`` and
    ``<gate>_detail`` for each · ``passes_all, reject_gate`` (Enum ``GATE``), ``reject_detail``.
    """
    n_df = pl.DataFrame({"notional_usd": [float(n) for n in notionals]},
                        schema={"notional_usd": pl.Float64})
    if spot_legs is None:
        spot_legs = basis_df.filter(_c("spot_venue").is_not_null()).select(
            "ts", "base", venue="spot_venue", symbol="spot_symbol",
            quote=pl.lit(None, pl.String),
        ).unique(maintain_order=True)
    spot = spot_legs.select(
        "ts", "base", spot_venue="venue", spot_symbol="symbol", spot_quote="quote",
        **({"spot_exchange": _c("exchange")} if "exchange" in spot_legs.columns else {}),
    )
    if "spot_exchange" not in spot.columns:
        owners = basis_df.filter(_c("spot_venue").is_not_null()).select(
            "spot_venue", spot_exchange="exchange").unique(subset="spot_venue", keep="first")
        spot = spot.join(owners, on="spot_venue", how="left")
    fee_tab = fees.frame([*spot["spot_venue"].unique().to_list(),
                          *basis_df["venue"].unique().to_list()])

    deriv = basis_df.select(
        "ts", "base", "exchange", "venue", "symbol", "quote", "market", "tenor", "expiry",
        "dte_days", "mid", "mark", "index", "basis_spot_ann", "funding_ann", "oi_usd", "valid",
        _b_spot_venue="spot_venue", _b_spot_symbol="spot_symbol", _b_reason="reason",
    )
    x = spot.join(deriv, on=["ts", "base"], how="inner").join(n_df, how="cross")

    # legs' books: VWAPs, slippage, spread, status, depth
    slip = slippage.with_columns(_c("notional_usd").cast(pl.Float64))
    x = x.join(
        slip.select("ts", "notional_usd", spot_venue="venue", spot_symbol="symbol",
                    spot_buy_vwap="buy_vwap", spot_slippage_bps="buy_bps",
                    _spot_fill=_c("buy_reason").cast(pl.String)),
        on=["ts", "spot_venue", "spot_symbol", "notional_usd"], how="left",
    ).join(
        slip.select("ts", "venue", "symbol", "notional_usd", deriv_sell_vwap="sell_vwap",
                    deriv_slippage_bps="sell_bps",
                    _deriv_fill=_c("sell_reason").cast(pl.String)),
        on=["ts", "venue", "symbol", "notional_usd"], how="left",
    ).join(  # the exit, at today's books: sell the coin, buy the perpetual back
        slip.select("ts", "notional_usd", spot_venue="venue", spot_symbol="symbol",
                    _spot_exit_bps="sell_bps"),
        on=["ts", "spot_venue", "spot_symbol", "notional_usd"], how="left",
    ).join(
        slip.select("ts", "venue", "symbol", "notional_usd", _deriv_exit_bps="buy_bps"),
        on=["ts", "venue", "symbol", "notional_usd"], how="left",
    )
    has_tb = "ts_book" in summary.columns
    sm = summary.select("ts", "venue", "symbol", "spread_bps",
                        _status=_c("status").cast(pl.String),
                        _tb=_c("ts_book") if has_tb else pl.lit(None, pl.Int64))
    band = float(cfg.depth_band_bps)
    dp = depth.filter(_c("band_bps") == band)
    if depth.height and dp.height == 0:
        raise ValueError(f"depth has no band {band:g} bps (cfg.depth_band_bps)")
    x = x.join(
        sm.select("ts", spot_venue="venue", spot_symbol="symbol", spot_spread_bps="spread_bps",
                  _spot_status="_status", _spot_tb="_tb"),
        on=["ts", "spot_venue", "spot_symbol"], how="left",
    ).join(
        sm.select("ts", "venue", "symbol", deriv_spread_bps="spread_bps",
                  _deriv_status="_status", _deriv_tb="_tb"),
        on=["ts", "venue", "symbol"], how="left",
    ).join(
        dp.select("ts", spot_venue="venue", spot_symbol="symbol", spot_depth_usd="ask_usd"),
        on=["ts", "spot_venue", "spot_symbol"], how="left",
    ).join(
        dp.select("ts", "venue", "symbol", deriv_depth_usd="bid_usd"),
        on=["ts", "venue", "symbol"], how="left",
    ).join(
        fee_tab.select(spot_venue="venue", _spot_taker="taker"), on="spot_venue", how="left",
    ).join(
        fee_tab.select("venue", _deriv_taker="taker", _deriv_settle="settlement"),
        on="venue", how="left",
    )
    if funding_mean is not None:
        x = x.join(funding_mean.select("venue", "symbol", _f_mean="funding_ann_mean"),
                   on=["venue", "symbol"], how="left")
    else:
        x = x.with_columns(_f_mean=pl.lit(None, pl.Float64))

    # cross-venue reference of the outlier gate, over basis_df (one value per derivative)
    perp = _c("market") == "perpetual"
    value = pl.when(perp).then(_c("funding_ann")).otherwise(
        pl.when(_c("valid")).then(_c("basis_spot_ann")))
    xv = (
        basis_df.select("ts", "base", "tenor", "venue", _v=value)
        .filter(_c("_v").is_not_null() & _c("_v").is_finite())
        .group_by("ts", "base", "tenor")
        .agg(xv_median=_c("_v").median(), xv_venues=_c("venue").n_unique().cast(pl.Int64))
    )
    x = x.join(xv, on=["ts", "base", "tenor"], how="left")
    if anomalies is not None:
        keys = ["ts", "venue", "base", "tenor"]
        if "symbol" in anomalies.columns:
            keys.append("symbol")
        flags = anomalies.group_by(keys).agg(
            anomaly_metrics=_c("metric").unique().sort().str.join(","),
            _anomaly_checks=_c("reason").unique().sort().str.join(","),
        )
        x = x.join(flags, on=keys, how="left")
    else:
        x = x.with_columns(anomaly_metrics=pl.lit(None, pl.String),
                           _anomaly_checks=pl.lit(None, pl.String))

    # the carry
    n = _c("notional_usd")
    hold = pl.when(perp).then(pl.lit(float(cfg.holding_days))).otherwise(_c("dte_days"))
    spot_exit = _c("_spot_taker") if cfg.count_spot_exit_fee else pl.lit(0.0)
    spot_exit_slip = _c("_spot_exit_bps") / 1e4 if cfg.count_spot_exit_fee else pl.lit(0.0)
    f_used = pl.when(perp).then(pl.coalesce("_f_mean", "funding_ann"))
    x = x.with_columns(
        same_exchange=(_c("spot_exchange") == _c("exchange")),
        hold_days=hold,
        gross=(_c("deriv_sell_vwap") - _c("spot_buy_vwap")) / _c("spot_buy_vwap"),
        fee_spot_entry=_c("_spot_taker"),
        fee_deriv_entry=_c("_deriv_taker"),
        fee_deriv_exit=pl.when(perp).then(_c("_deriv_taker")).otherwise(0.0),
        fee_settlement=pl.when(perp).then(0.0).otherwise(_c("_deriv_settle")),
        fee_spot_exit=spot_exit,
        exit_slippage=spot_exit_slip
        + pl.when(perp).then(_c("_deriv_exit_bps") / 1e4).otherwise(0.0),
        funding_ann_used=f_used,
        funding_source=pl.when(perp & _c("_f_mean").is_not_null()).then(pl.lit("realised"))
        .when(perp & _c("funding_ann").is_not_null()).then(pl.lit("current")),
    ).with_columns(
        fees=_c("fee_spot_entry") + _c("fee_deriv_entry") + _c("fee_deriv_exit")
        + _c("fee_settlement") + _c("fee_spot_exit"),
        financing=cfg.financing_rate * _c("hold_days") / 365.0,
        funding_income=pl.when(perp).then(_c("funding_ann_used") * _c("hold_days") / 365.0)
        .otherwise(0.0),
    ).with_columns(
        net=_c("gross") + _c("funding_income") - _c("fees") - _c("exit_slippage")
        - _c("financing"),
    ).with_columns(
        net_ann=pl.when(_c("hold_days") > 0).then(_c("net") * 365.0 / _c("hold_days")),
        net_usd=_c("net") * n,
        # measured gate values
        spot_age_s=(_c("ts") - _c("_spot_tb")) / _NS,
        deriv_age_s=(_c("ts") - _c("_deriv_tb")) / _NS,
        leg_gap_s=(_c("_spot_tb") - _c("_deriv_tb")).abs() / _NS,
        mark_gap=pl.when(perp).then((_c("mark") - _c("index")).abs() / _c("index"))
        .otherwise((_c("mid") - _c("mark")).abs() / _c("mark")),
        hours_to_expiry=pl.when(~perp).then(_c("dte_days") * 24.0),
        oi_fraction=n / _c("oi_usd"),
        outlier_value=value,
    ).with_columns(outlier_dev=_c("outlier_value") - _c("xv_median"))

    # gates: the first failing check of each, in words
    same_leg = (_c("spot_venue") == _c("_b_spot_venue")) & (
        _c("spot_symbol") == _c("_b_spot_symbol"))
    b_reason = _c("_b_reason")
    fresh = [
        (b_reason.is_in(_DERIV_REASONS), pl.format("derivative {}", b_reason)),
        (_c("_deriv_status").is_null(), pl.lit("derivative book missing from summary")),
        (_c("_deriv_status") != "ok", pl.format("derivative book {}", _c("_deriv_status"))),
        (_c("_spot_status").is_null(), pl.lit("spot book missing from summary")),
        (_c("_spot_status") != "ok", pl.format("spot book {}", _c("_spot_status"))),
        (same_leg & b_reason.str.starts_with("spot_"), pl.format("spot leg {}", b_reason)),
        (_c("spot_age_s") > cfg.max_quote_age_s,
         pl.format("spot quote age {} s > {} s", _num(_c("spot_age_s"), 1),
                   pl.lit(_g(cfg.max_quote_age_s)))),
        (_c("deriv_age_s") > cfg.max_quote_age_s,
         pl.format("derivative quote age {} s > {} s", _num(_c("deriv_age_s"), 1),
                   pl.lit(_g(cfg.max_quote_age_s)))),
        (_c("leg_gap_s") > cfg.max_leg_gap_s,
         pl.format("legs {} s apart > {} s", _num(_c("leg_gap_s"), 1),
                   pl.lit(_g(cfg.max_leg_gap_s)))),
        (_c("mark_gap") > cfg.max_mark_index_gap,
         pl.format("{} {} > {}",
                   pl.when(perp).then(pl.lit("|mark - index| / index"))
                   .otherwise(pl.lit("|mid - mark| / mark")),
                   _num(_c("mark_gap"), 5), pl.lit(_g(cfg.max_mark_index_gap)))),
    ]
    dte = _c("dte_days")
    expiry = [
        (~perp & dte.is_null(), pl.lit("expiry unknown")),
        (~perp & (_c("hours_to_expiry") <= cfg.settlement_window_hours),
         pl.format("{} h to expiry, inside the {} h settlement window",
                   _num(_c("hours_to_expiry"), 2), pl.lit(_g(cfg.settlement_window_hours)))),
        (~perp & (dte < cfg.min_dte_days),
         pl.format("dte {} d < {} d", _num(dte, 2), pl.lit(_g(cfg.min_dte_days)))),
        (~perp & (dte > cfg.max_dte_days),
         pl.format("dte {} d > {} d", _num(dte, 2), pl.lit(_g(cfg.max_dte_days)))),
    ]
    need = cfg.min_depth_multiple * n
    liq: list[tuple[pl.Expr, pl.Expr]] = []
    for leg, vwap, fill in (("spot", "spot_buy_vwap", "_spot_fill"),
                            ("derivative", "deriv_sell_vwap", "_deriv_fill")):
        liq.append((_c(vwap).is_null(),
                    pl.format("{} leg cannot fill {} USD ({})", pl.lit(leg), _usd(n),
                              pl.coalesce(_c(fill), pl.lit("no slippage row")))))
    for leg, col in (("spot", "spot_slippage_bps"), ("derivative", "deriv_slippage_bps")):
        liq.append((_c(col) > cfg.max_slippage_bps,
                    pl.format("slippage {} bps > {} bps on {} leg", _num(_c(col), 1),
                              pl.lit(_g(cfg.max_slippage_bps)), pl.lit(leg))))
    for leg, col in (("spot", "spot_spread_bps"), ("derivative", "deriv_spread_bps")):
        liq.append((_c(col).is_null(), pl.lit(f"spread unknown on {leg} leg")))
        liq.append((_c(col) > cfg.max_spread_bps,
                    pl.format("spread {} bps > {} bps on {} leg", _num(_c(col), 1),
                              pl.lit(_g(cfg.max_spread_bps)), pl.lit(leg))))
    for leg, side, col in (("spot", "ask", "spot_depth_usd"),
                           ("derivative", "bid", "deriv_depth_usd")):
        liq.append((_c(col).is_null(),
                    pl.lit(f"{leg} {side} depth within {band:g} bps unknown "
                           "(book window short of the band)")))
        liq.append((_c(col) < need,
                    pl.format("{} {} depth within {} bps {} USD < {} USD", pl.lit(leg),
                              pl.lit(side), pl.lit(f"{band:g}"), _usd(_c(col)), _usd(need))))
    oi = _c("oi_usd")
    open_interest = [
        (oi.is_null(), pl.lit("open interest unknown")),
        (oi < cfg.min_oi_usd,
         pl.format("open interest {} USD < {} USD", _usd(oi), pl.lit(f"{cfg.min_oi_usd:.0f}"))),
        (_c("oi_fraction") > cfg.max_oi_fraction,
         pl.format("notional {} USD is {} of open interest {} USD > {}", _usd(n),
                   _num(_c("oi_fraction"), 4), _usd(oi), pl.lit(_g(cfg.max_oi_fraction)))),
    ]
    metric_name = pl.when(perp).then(pl.lit("funding_ann")).otherwise(pl.lit("basis_ann"))
    outlier = [
        (_c("anomaly_metrics").is_not_null(),
         pl.format("{} anomaly on {} {} ({})", _c("_anomaly_checks"), _c("venue"),
                   _c("tenor"), _c("anomaly_metrics"))),
        ((_c("xv_venues") >= cfg.min_outlier_venues)
         & (_c("outlier_dev").abs() > cfg.max_outlier_ann),
         pl.format("{} {} is {} from the median {} of {} venues > {}", metric_name,
                   _num(_c("outlier_value"), 4), _num(_c("outlier_dev"), 4),
                   _num(_c("xv_median"), 4), _c("xv_venues"), pl.lit(_g(cfg.max_outlier_ann)))),
    ]
    economics = [
        (_c("net_ann").is_null(),
         pl.when(perp & _c("funding_ann_used").is_null())
         .then(pl.lit("net carry unknown: no funding rate"))
         .otherwise(pl.lit("net carry unknown"))),
        (_c("net_ann") < cfg.min_net_ann,
         pl.format("net_ann {} < {}", _num(_c("net_ann"), 4), pl.lit(_g(cfg.min_net_ann)))),
    ]
    checks = dict(zip(GATES, (fresh, expiry, liq, open_interest, outlier, economics),
                      strict=True))
    x = x.with_columns(_first(c).alias(f"{g}_detail") for g, c in checks.items())
    x = x.with_columns(_c(f"{g}_detail").is_null().alias(f"g_{g}") for g in GATES)
    reject = pl.when(~_c(f"g_{GATES[0]}")).then(pl.lit(GATES[0]))
    detail = pl.when(~_c(f"g_{GATES[0]}")).then(_c(f"{GATES[0]}_detail"))
    for g in GATES[1:]:
        reject = reject.when(~_c(f"g_{g}")).then(pl.lit(g))
        detail = detail.when(~_c(f"g_{g}")).then(_c(f"{g}_detail"))
    x = x.with_columns(
        passes_all=pl.all_horizontal(*(_c(f"g_{g}") for g in GATES)),
        reject_gate=reject.cast(GATE),
        reject_detail=detail,
    )
    return x.select(
        "ts", "base", "notional_usd", "spot_exchange", "spot_venue", "spot_symbol", "spot_quote",
        "exchange", "venue", "symbol", "quote", "market", "tenor", "expiry", "dte_days",
        "hold_days", "same_exchange",
        "spot_buy_vwap", "deriv_sell_vwap", "spot_slippage_bps", "deriv_slippage_bps",
        "spot_spread_bps", "deriv_spread_bps", "spot_depth_usd", "deriv_depth_usd", "gross",
        "fee_spot_entry", "fee_deriv_entry", "fee_deriv_exit", "fee_settlement", "fee_spot_exit",
        "fees", "exit_slippage", "financing", "funding_ann_used", "funding_source",
        "funding_income", "net", "net_ann", "net_usd",
        "spot_age_s", "deriv_age_s", "leg_gap_s", "mark_gap", "hours_to_expiry", "oi_usd",
        "oi_fraction", "outlier_value", "xv_median", "xv_venues", "outlier_dev",
        "anomaly_metrics",
        *(f"g_{g}" for g in GATES), *(f"{g}_detail" for g in GATES),
        "passes_all", "reject_gate", "reject_detail",
    ).sort("ts", "base", "spot_venue", "spot_symbol", "venue", "symbol", "notional_usd")
