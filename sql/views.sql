-- Research views over the storage views of sql/schema.sql. Applied by Store.open() after them.
-- They are ordinary DuckDB views: every query sees all segments sealed so far.

-- OHLCV bars per venue, symbol, trade kind and exchange-time minute. Non-market executions
-- (insurance fund, ADL) are left out; `kind` is a key so that a venue's trade and aggTrade
-- streams are never summed together.
CREATE OR REPLACE VIEW trades_1m AS
SELECT
    venue,
    symbol,
    kind,
    date_trunc('minute', time_exchange) AS minute,
    arg_min(price, ts_exchange) AS open,
    max(price) AS high,
    min(price) AS low,
    arg_max(price, ts_exchange) AS close,
    sum(size) AS volume,
    coalesce(sum(size) FILTER (WHERE side = 'buy'), 0) AS buy_volume,
    sum(price * size) AS notional,
    sum(price * size) / sum(size) AS vwap,
    count(*) AS trades
FROM trades
WHERE kind NOT IN ('insurance_fund', 'adl')
GROUP BY venue, symbol, kind, minute;

-- The last quote per venue, symbol and source, with mid and spread.
CREATE OR REPLACE VIEW latest_quotes AS
SELECT
    venue,
    symbol,
    source,
    time_exchange,
    time_local,
    bid_price,
    bid_size,
    ask_price,
    ask_size,
    (bid_price + ask_price) / 2 AS mid,
    (ask_price - bid_price) / ((bid_price + ask_price) / 2) * 1e4 AS spread_bps,
    update_id,
    ts_exchange,
    ts_local
FROM quotes
QUALIFY row_number() OVER (PARTITION BY venue, symbol, source ORDER BY ts_local DESC) = 1;

-- Per minute and derivative: the last mark, index and funding seen. (Basis, premium and
-- annualised funding are the analytics' own tables: basis, cross_venue; one definition each.)
CREATE OR REPLACE VIEW derivatives_1m AS
WITH last AS (
    SELECT
        venue,
        symbol,
        date_trunc('minute', time_exchange) AS minute,
        arg_max(mark_price, ts_exchange) FILTER (WHERE mark_price IS NOT NULL) AS mark,
        arg_max(index_price, ts_exchange) FILTER (WHERE index_price IS NOT NULL) AS idx,
        arg_max(funding_rate, ts_exchange) FILTER (WHERE funding_rate IS NOT NULL) AS funding,
        arg_max(funding_interval_hours, ts_exchange)
            FILTER (WHERE funding_interval_hours IS NOT NULL) AS interval_hours,
        arg_max(next_funding_time, ts_exchange)
            FILTER (WHERE next_funding_time IS NOT NULL) AS next_funding
    FROM derivative_tickers
    GROUP BY venue, symbol, minute
)
SELECT
    venue,
    symbol,
    minute,
    mark AS mark_price,
    idx AS index_price,
    funding AS funding_rate,
    interval_hours AS funding_interval_hours,
    next_funding AS next_funding_time
FROM last;

-- The newest live analytics of each derivative (what `analyzer metrics --asset` shows).
CREATE OR REPLACE VIEW latest_basis AS
SELECT venue, symbol, base, tenor, time, dte_days, mid, spot_ref, basis_spot, basis_spot_ann,
       basis_spot_ann_comp, basis_index_ann, premium, funding_rate, funding_interval_hours,
       funding_ann, oi_usd, valid, reason
FROM basis
WHERE source = 'live'
QUALIFY row_number() OVER (PARTITION BY venue, symbol ORDER BY ts DESC) = 1;

-- The newest live liquidity of each book, with its depth within 50 bps of the mid and the
-- slippage of a 100k USD market order (other bands and notionals: the depth and slippage tables).
CREATE OR REPLACE VIEW latest_liquidity AS
WITH last AS (
    SELECT * FROM liquidity WHERE source = 'live'
    QUALIFY row_number() OVER (PARTITION BY venue, symbol ORDER BY ts DESC) = 1
)
SELECT l.venue, l.symbol, l.time, l.status, l.mid, l.spread_bps, l.microprice, l.imbalance,
       d.bid_usd AS bid_usd_50bps, d.ask_usd AS ask_usd_50bps,
       d.bid_exact AND d.ask_exact AS exact_50bps,  -- false: a lower bound (see depth)
       s.buy_bps AS buy_bps_100k, s.sell_bps AS sell_bps_100k,
       coalesce(s.buy_reason, s.sell_reason) AS slippage_note
FROM last l
LEFT JOIN depth d ON d.ts = l.ts AND d.venue = l.venue AND d.symbol = l.symbol
    AND d.band_bps = 50 AND d.source = 'live'
LEFT JOIN slippage s ON s.ts = l.ts AND s.venue = l.venue AND s.symbol = l.symbol
    AND s.notional_usd = 100000 AND s.source = 'live';


-- Carry opportunities as a reader should take them: the last live event of each pair and notional
-- with its state, 'closed' (a close event: below_exit, gate:<name>, gone, collector stopped),
-- 'open' (an open or update event at most stale_after_s seconds old) or 'stale' (open at its
-- last event, but nothing since for longer: no collector tracks it, it stopped without closing
-- it, e.g. a crash). age_s: since the last event, on this reader's clock. The bound and why:
-- analyzer/analytics/opportunities.py (stale_after_s); `analyzer opportunities` passes the one
-- of its config.
CREATE OR REPLACE MACRO opportunity_status_within(stale_after_s) AS TABLE
WITH last AS (
    SELECT *, (epoch_ns(now()) - ts) / 1e9 AS age_s
    FROM opportunities
    WHERE source = 'live'
    QUALIFY row_number() OVER (PARTITION BY pair, notional_usd ORDER BY ts DESC) = 1
)
SELECT
    CASE WHEN event = 'close' THEN 'closed'
         WHEN age_s > stale_after_s THEN 'stale'
         ELSE 'open' END AS state,
    base, pair, tenor, notional_usd, spot_venue, spot_symbol, venue, symbol,
    net_ann, net_usd, peak_net_ann, avg_net_ann, opened_ts,
    make_timestamp(opened_ts // 1000) AS opened,
    duration_s,  -- open that long at the last event
    event AS last_event, ts AS last_ts, time AS last_time, reason, age_s,
    stale_after_s::DOUBLE AS stale_after_s
FROM last;

-- The same with the bound of the default config: 2 * (update_seconds 60 + close_grace_seconds
-- 30 + interval_seconds 1).
CREATE OR REPLACE VIEW opportunity_status AS
SELECT * FROM opportunity_status_within(182.0);
