-- Storage schema: one view per table over that table's sealed Parquet segments.
--
-- The DuckDB file holds nothing but these views (and sql/views.sql), so the collector never
-- keeps it open and readers are never locked out; see analyzer/store/__init__.py.
--
-- Conventions, relied on by analyzer/store/schema.py, which derives the writer's Arrow schema
-- from this file:
--   * each view reads read_parquet('{segments}/<view name>/*/*.parquet', union_by_name = true);
--     {segments} is replaced by the absolute, quoted segment root when Store.open() applies it;
--   * a stored column is written `name::TYPE AS name`, one per line, in storage order. TYPE is
--     one of VARCHAR, BIGINT, INTEGER, SMALLINT, DOUBLE, BOOLEAN. Every stored column may be
--     NULL (columns added later read as NULL from older segments);
--   * any other select item is derived at query time and not stored.
-- Timestamps are stored as BIGINT nanoseconds since the epoch (ts_*); the time_* columns are
-- TIMESTAMP (microsecond) renderings of them for pleasant research queries.

-- Instrument definitions, one row each time the collector (re)loads them.
CREATE OR REPLACE VIEW instruments AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    exchange::VARCHAR AS exchange,
    market::VARCHAR AS market,                  -- spot | perpetual | future
    base::VARCHAR AS base,
    quote::VARCHAR AS quote,
    inverse::BOOLEAN AS inverse,
    contract_size::DOUBLE AS contract_size,
    tick_size::DOUBLE AS tick_size,
    lot_size::DOUBLE AS lot_size,
    expiry::BIGINT AS expiry,                   -- ns since the epoch; NULL for spot/perpetual
    ts_local::BIGINT AS ts_local,
    -- coins a linear contract is worth where the venue's sizes were contracts (converted to
    -- base units at decode); 1 elsewhere (rows stored before it existed: NULL)
    contract_value::DOUBLE AS contract_value,
    make_timestamp(expiry // 1000) AS time_expiry,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/instruments/*/*.parquet', union_by_name = true);

-- Executions; unique on (venue, symbol, trade_id) (the writer and compaction drop repeats).
CREATE OR REPLACE VIEW trades AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,
    ts_local::BIGINT AS ts_local,
    trade_id::VARCHAR AS trade_id,
    price::DOUBLE AS price,
    size::DOUBLE AS size,
    side::VARCHAR AS side,                      -- taker side: buy | sell
    kind::VARCHAR AS kind,                      -- trade | aggTrade | insurance_fund | adl
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/trades/*/*.parquet', union_by_name = true);

-- Best bid/ask: the venue's own stream (source = 'venue') or our rebuilt book ('book').
CREATE OR REPLACE VIEW quotes AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,
    ts_local::BIGINT AS ts_local,
    bid_price::DOUBLE AS bid_price,
    bid_size::DOUBLE AS bid_size,
    ask_price::DOUBLE AS ask_price,
    ask_size::DOUBLE AS ask_size,
    update_id::BIGINT AS update_id,             -- -1 when the venue sends none
    source::VARCHAR AS source,
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/quotes/*/*.parquet', union_by_name = true);

-- Sampled book levels in long format: one row per (snapshot, side, level). The collector
-- stores each in-sync book's analysis window: the levels from the best until the largest
-- configured notional is filled, and one more (at most [analytics] max_levels a side), with
-- the depth beyond them per band in book_snapshot_bands: the exact input of the liquidity
-- metrics, so that `analyzer backfill` recomputes them.
CREATE OR REPLACE VIEW book_snapshots AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,         -- venue time of the book's last change
    ts_local::BIGINT AS ts_local,               -- when the snapshot was taken
    update_id::BIGINT AS update_id,
    side::VARCHAR AS side,                      -- bid | ask
    level::SMALLINT AS level,                   -- 0 = best
    price::DOUBLE AS price,
    size::DOUBLE AS size,
    ts_changed::BIGINT AS ts_changed,           -- local time of the book's last change
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/book_snapshots/*/*.parquet', union_by_name = true);

-- With each book snapshot, per depth band: the notional resting within band_bps of the mid
-- at levels deeper than the stored ones (0 when the stored levels reach the band's edge; NULL
-- when the book itself does not reach it). Stored levels + these give the depth of every band.
CREATE OR REPLACE VIEW book_snapshot_bands AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_local::BIGINT AS ts_local,
    band_bps::DOUBLE AS band_bps,
    bid_extra::DOUBLE AS bid_extra,             -- quote currency (USD for inverse contracts)
    ask_extra::DOUBLE AS ask_extra,
    bid_exact::BOOLEAN AS bid_exact,            -- the band's edge within what the book knows
    ask_exact::BOOLEAN AS ask_exact,            -- complete (see the depth table)
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/book_snapshot_bands/*/*.parquet', union_by_name = true);

-- Mark, index and funding; NULL where the frame does not carry the field.
CREATE OR REPLACE VIEW derivative_tickers AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,
    ts_local::BIGINT AS ts_local,
    mark_price::DOUBLE AS mark_price,
    index_price::DOUBLE AS index_price,
    funding_rate::DOUBLE AS funding_rate,       -- per funding interval, not annualised
    next_funding_time::BIGINT AS next_funding_time,  -- ns since the epoch
    funding_interval_hours::DOUBLE AS funding_interval_hours,
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/derivative_tickers/*/*.parquet', union_by_name = true);

CREATE OR REPLACE VIEW open_interest AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,
    ts_local::BIGINT AS ts_local,
    open_interest::DOUBLE AS open_interest,
    value_usd::DOUBLE AS value_usd,
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/open_interest/*/*.parquet', union_by_name = true);

-- Forced orders; side is the liquidation order's side (a long is liquidated by a sell).
CREATE OR REPLACE VIEW liquidations AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,
    ts_local::BIGINT AS ts_local,
    side::VARCHAR AS side,
    price::DOUBLE AS price,
    size::DOUBLE AS size,
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/liquidations/*/*.parquet', union_by_name = true);

-- Breaks in a book's update sequence (or other reasons to distrust it) and the action taken.
CREATE OR REPLACE VIEW gaps AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_local::BIGINT AS ts_local,
    reason::VARCHAR AS reason,
    expected_id::BIGINT AS expected_id,
    received_id::BIGINT AS received_id,
    action::VARCHAR AS action,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/gaps/*/*.parquet', union_by_name = true);

-- ---------------------------------------------------------------------------------------------
-- Analytics (analyzer/analytics): written by the collector every [analytics] interval
-- (source = 'live') and by `analyzer backfill` (source = 'backfill'). `ts` is the evaluation
-- instant (local clock, ns). Ratios are fractions (0.0024, not bps) unless the name says bps.

-- Per book: top of book, microprice and imbalance; status ok | out_of_sync | empty |
-- one_sided | crossed (every other value is NULL unless ok).
CREATE OR REPLACE VIEW liquidity AS
SELECT
    ts::BIGINT AS ts,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    status::VARCHAR AS status,
    mid::DOUBLE AS mid,
    best_bid::DOUBLE AS best_bid,
    best_ask::DOUBLE AS best_ask,
    spread_bps::DOUBLE AS spread_bps,
    microprice::DOUBLE AS microprice,
    imbalance::DOUBLE AS imbalance,             -- top [analytics] imbalance_levels, by size
    bid_levels::INTEGER AS bid_levels,          -- levels in the analysis window
    ask_levels::INTEGER AS ask_levels,
    source::VARCHAR AS source,                  -- live | backfill
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/liquidity/*/*.parquet', union_by_name = true);

-- Notional resting within band_bps of the MID, per side; NULL when the window does not reach
-- the band's edge (a band it cannot show complete). bid_exact / ask_exact false: the band
-- reaches past the last level of a REST snapshot cut at the venue's limit (Binance: 1,000
-- levels, ~25 bps on BTCUSDT futures), where a level no diff has touched since is missing, so
-- the figure is a lower bound.
CREATE OR REPLACE VIEW depth AS
SELECT
    ts::BIGINT AS ts,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    band_bps::DOUBLE AS band_bps,
    bid_quote::DOUBLE AS bid_quote,             -- quote currency (USD for inverse contracts)
    ask_quote::DOUBLE AS ask_quote,
    bid_usd::DOUBLE AS bid_usd,
    ask_usd::DOUBLE AS ask_usd,
    bid_exact::BOOLEAN AS bid_exact,            -- false: a lower bound, the band reaching past
    ask_exact::BOOLEAN AS ask_exact,            -- the last level of a depth-limited snapshot
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/depth/*/*.parquet', union_by_name = true);

-- Cost of a market order of notional_usd walking the book: VWAP and its distance from the mid
-- in bps; NULL with a reason (insufficient_depth, or the book's status) when it cannot be filled.
CREATE OR REPLACE VIEW slippage AS
SELECT
    ts::BIGINT AS ts,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    notional_usd::DOUBLE AS notional_usd,
    buy_vwap::DOUBLE AS buy_vwap,
    buy_bps::DOUBLE AS buy_bps,
    sell_vwap::DOUBLE AS sell_vwap,
    sell_bps::DOUBLE AS sell_bps,
    buy_reason::VARCHAR AS buy_reason,
    sell_reason::VARCHAR AS sell_reason,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/slippage/*/*.parquet', union_by_name = true);

-- Per derivative: basis against the same exchange's spot (spot_ref, USD stablecoins at par) and
-- against the index, annualised simple (b * 365 / dte_days) and compounded; perpetual premium;
-- funding per interval and annualised by the instrument's own interval; open interest.
-- tenor: perp | q1 | q2 | q3 (by expiry). valid = both legs in sync and fresh, else reason.
CREATE OR REPLACE VIEW basis AS
SELECT
    ts::BIGINT AS ts,
    exchange::VARCHAR AS exchange,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    base::VARCHAR AS base,
    quote::VARCHAR AS quote,
    market::VARCHAR AS market,
    tenor::VARCHAR AS tenor,
    expiry::BIGINT AS expiry,
    dte_days::DOUBLE AS dte_days,
    mid::DOUBLE AS mid,
    mark::DOUBLE AS mark,
    index::DOUBLE AS index,
    spot_venue::VARCHAR AS spot_venue,
    spot_symbol::VARCHAR AS spot_symbol,
    spot_ref::DOUBLE AS spot_ref,
    basis_spot::DOUBLE AS basis_spot,
    basis_index::DOUBLE AS basis_index,
    basis_spot_ann::DOUBLE AS basis_spot_ann,
    basis_spot_ann_comp::DOUBLE AS basis_spot_ann_comp,
    basis_index_ann::DOUBLE AS basis_index_ann,
    basis_index_ann_comp::DOUBLE AS basis_index_ann_comp,
    premium::DOUBLE AS premium,                 -- perpetuals: (mid or mark - index) / index
    premium_ref::VARCHAR AS premium_ref,        -- mid | mark
    funding_rate::DOUBLE AS funding_rate,       -- per interval
    funding_interval_hours::DOUBLE AS funding_interval_hours,
    next_funding_time::BIGINT AS next_funding_time,
    funding_ann::DOUBLE AS funding_ann,         -- rate * 24 / interval * 365
    funding_8h::DOUBLE AS funding_8h,
    oi_contracts::DOUBLE AS oi_contracts,
    oi_usd::DOUBLE AS oi_usd,
    valid::BOOLEAN AS valid,
    reason::VARCHAR AS reason,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/basis/*/*.parquet', union_by_name = true);

-- Tradable basis of a cash-and-carry of notional_usd: sell the derivative at its bid-side VWAP,
-- buy spot at its ask-side VWAP: (F_sell - S_buy) / S_buy, and simple annualised (futures).
CREATE OR REPLACE VIEW tradable_basis AS
SELECT
    ts::BIGINT AS ts,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    base::VARCHAR AS base,
    tenor::VARCHAR AS tenor,
    notional_usd::DOUBLE AS notional_usd,
    tradable::DOUBLE AS tradable,
    tradable_ann::DOUBLE AS tradable_ann,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/tradable_basis/*/*.parquet', union_by_name = true);

-- Constant-maturity annualised basis (spot reference) at `days`, interpolated linearly in time
-- to expiry between the two valid quarterlies bracketing it; NULL outside them.
CREATE OR REPLACE VIEW basis_curve AS
SELECT
    ts::BIGINT AS ts,
    exchange::VARCHAR AS exchange,
    venue::VARCHAR AS venue,
    base::VARCHAR AS base,
    days::BIGINT AS days,
    basis_ann::DOUBLE AS basis_ann,
    dte_lo::DOUBLE AS dte_lo,
    dte_hi::DOUBLE AS dte_hi,
    symbol_lo::VARCHAR AS symbol_lo,
    symbol_hi::VARCHAR AS symbol_hi,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/basis_curve/*/*.parquet', union_by_name = true);

-- Across venues per base and tenor: dispersion of the annualised basis and of the perpetual
-- premium, open-interest-weighted funding (USD weights) and aggregated open interest.
CREATE OR REPLACE VIEW cross_venue AS
SELECT
    ts::BIGINT AS ts,
    base::VARCHAR AS base,
    tenor::VARCHAR AS tenor,
    n_venues::INTEGER AS n_venues,
    basis_ann_median::DOUBLE AS basis_ann_median,
    basis_ann_range::DOUBLE AS basis_ann_range,
    basis_ann_std::DOUBLE AS basis_ann_std,
    premium_median::DOUBLE AS premium_median,
    premium_range::DOUBLE AS premium_range,
    premium_std::DOUBLE AS premium_std,
    funding_ann_oiw::DOUBLE AS funding_ann_oiw,
    funding_8h_oiw::DOUBLE AS funding_8h_oiw,
    oi_usd::DOUBLE AS oi_usd,
    n_funding::INTEGER AS n_funding,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/cross_venue/*/*.parquet', union_by_name = true);

-- Samples of basis, premium and funding more than k standard deviations from their own
-- trailing history (own_history) or from the cross-venue median (cross_venue).
CREATE OR REPLACE VIEW anomalies AS
SELECT
    ts::BIGINT AS ts,
    venue::VARCHAR AS venue,
    base::VARCHAR AS base,
    tenor::VARCHAR AS tenor,
    metric::VARCHAR AS metric,
    value::DOUBLE AS value,
    reason::VARCHAR AS reason,                  -- own_history | cross_venue
    z::DOUBLE AS z,
    expected::DOUBLE AS expected,
    spread::DOUBLE AS spread,
    n::INTEGER AS n,                            -- history samples in the window
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/anomalies/*/*.parquet', union_by_name = true);

-- Carry candidates (long spot leg, short derivative leg, for notional_usd), sampled every
-- [carry] candidates_seconds: net carry after fees, settlement, slippage (inside the VWAPs) and
-- financing, and each gate's verdict. reject_gate: the first failing gate (freshness, expiry,
-- liquidity, open_interest, outlier, economics), NULL when all pass. See analytics/carry.py.
CREATE OR REPLACE VIEW carry_candidates AS
SELECT
    ts::BIGINT AS ts,
    base::VARCHAR AS base,
    notional_usd::DOUBLE AS notional_usd,
    spot_venue::VARCHAR AS spot_venue,
    spot_symbol::VARCHAR AS spot_symbol,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    market::VARCHAR AS market,
    tenor::VARCHAR AS tenor,
    dte_days::DOUBLE AS dte_days,
    same_exchange::BOOLEAN AS same_exchange,
    spot_buy_vwap::DOUBLE AS spot_buy_vwap,
    deriv_sell_vwap::DOUBLE AS deriv_sell_vwap,
    gross::DOUBLE AS gross,                     -- (F_sell_vwap - S_buy_vwap) / S_buy_vwap
    fees::DOUBLE AS fees,                       -- entry, exit and settlement, fraction of N
    exit_slippage::DOUBLE AS exit_slippage,     -- unwinding through today's books, fraction of N
    financing::DOUBLE AS financing,
    funding_ann_used::DOUBLE AS funding_ann_used,   -- perpetuals
    funding_source::VARCHAR AS funding_source,  -- realised | current
    net_ann::DOUBLE AS net_ann,
    net_usd::DOUBLE AS net_usd,                 -- to expiry (futures) or over holding_days
    spot_slippage_bps::DOUBLE AS spot_slippage_bps,
    deriv_slippage_bps::DOUBLE AS deriv_slippage_bps,
    spot_depth_usd::DOUBLE AS spot_depth_usd,
    deriv_depth_usd::DOUBLE AS deriv_depth_usd,
    oi_usd::DOUBLE AS oi_usd,
    g_freshness::BOOLEAN AS g_freshness,
    g_expiry::BOOLEAN AS g_expiry,
    g_liquidity::BOOLEAN AS g_liquidity,
    g_open_interest::BOOLEAN AS g_open_interest,
    g_outlier::BOOLEAN AS g_outlier,
    g_economics::BOOLEAN AS g_economics,
    passes_all::BOOLEAN AS passes_all,
    reject_gate::VARCHAR AS reject_gate,
    reject_detail::VARCHAR AS reject_detail,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/carry_candidates/*/*.parquet', union_by_name = true);

-- Opportunity lifecycle events: open (every gate held, persistently), update (while open, every
-- [carry] update_seconds), close (reason: below_exit, gate:<name>, gone, collector stopped).
-- See opportunities.py.
CREATE OR REPLACE VIEW opportunities AS
SELECT
    ts::BIGINT AS ts,
    event::VARCHAR AS event,
    base::VARCHAR AS base,
    spot_venue::VARCHAR AS spot_venue,
    spot_symbol::VARCHAR AS spot_symbol,
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    notional_usd::DOUBLE AS notional_usd,
    tenor::VARCHAR AS tenor,
    pair::VARCHAR AS pair,
    net_ann::DOUBLE AS net_ann,
    net_usd::DOUBLE AS net_usd,
    gross::DOUBLE AS gross,
    dte_days::DOUBLE AS dte_days,
    peak_net_ann::DOUBLE AS peak_net_ann,
    avg_net_ann::DOUBLE AS avg_net_ann,
    opened_ts::BIGINT AS opened_ts,
    duration_s::DOUBLE AS duration_s,
    reason::VARCHAR AS reason,
    source::VARCHAR AS source,
    make_timestamp(ts // 1000) AS time
FROM read_parquet('{segments}/opportunities/*/*.parquet', union_by_name = true);

-- The trend regime of each instrument (analyzer/analytics/trend.py): bars of interval_s from the
-- stored trades (a bar without trades carries the previous close), the simple moving averages of
-- the last `fast` and `slow` closed bars, the regime and its last cross. Written by the collector
-- every [trend] refresh_seconds (source = 'live', ts = the refresh: the state after the last
-- closed bar) and by `analyzer backfill` (source = 'backfill', one row per closed bar, ts = its
-- close). Only closed bars count; the forming bar is left out.
CREATE OR REPLACE VIEW trend AS
SELECT
    ts::BIGINT AS ts,                           -- evaluation instant (ns)
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    base::VARCHAR AS base,
    interval_s::INTEGER AS interval_s,          -- bar length, seconds (bars start at 00:00 UTC)
    fast::INTEGER AS fast,                      -- SMA lengths, in bars
    slow::INTEGER AS slow,
    bar_ts::BIGINT AS bar_ts,                   -- open time of the last closed bar (venue clock)
    last_close::DOUBLE AS last_close,           -- its close
    fast_ma::DOUBLE AS fast_ma,                 -- NULL until `fast` closed bars
    slow_ma::DOUBLE AS slow_ma,                 -- NULL until `slow` closed bars
    regime::VARCHAR AS regime,                  -- up (fast > slow) | down | none (warming up)
    last_cross_ts::BIGINT AS last_cross_ts,     -- open time of the bar where the regime last
                                                -- flipped up/down; NULL: none in the lookback
    bars::INTEGER AS bars,                      -- closed bars in the series (empty ones included)
    newest_trade_ts::BIGINT AS newest_trade_ts, -- venue time of the newest trade read
    source::VARCHAR AS source,                  -- live | backfill
    make_timestamp(ts // 1000) AS time,
    make_timestamp(bar_ts // 1000) AS time_bar,
    make_timestamp(last_cross_ts // 1000) AS time_last_cross
FROM read_parquet('{segments}/trend/*/*.parquet', union_by_name = true);

-- ---------------------------------------------------------------------------------------------
-- Sharded collectors (analyzer/cluster): one row per shard state the analytics process applied
-- from NATS JetStream, written with the tick that used it and before the message is
-- acknowledged, so that a restarted analytics process skips what it had applied (stream_seq is
-- unique: nothing applied twice) and a gap in a shard's seq shows a lost state.
CREATE OR REPLACE VIEW shard_states AS
SELECT
    ts_local::BIGINT AS ts_local,               -- applied (analytics process clock, ns)
    shard::VARCHAR AS shard,
    epoch::BIGINT AS epoch,                     -- the shard's numbering: start time (ns) of its
    seq::BIGINT AS seq,                         -- first run; seq rises by one a state, across
                                                -- restarts of the shard
    stream_seq::BIGINT AS stream_seq,           -- JetStream's sequence of the state's last part
    ts_shard::BIGINT AS ts_shard,               -- the shard's tick (shard clock, ns)
    parts::INTEGER AS parts,                    -- messages the state took (bounded in size)
    bytes::BIGINT AS bytes,                     -- payload, all parts
    books::INTEGER AS books,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/shard_states/*/*.parquet', union_by_name = true);
