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

-- Sampled top-of-book levels in long format: one row per (snapshot, side, level).
CREATE OR REPLACE VIEW book_snapshots AS
SELECT
    venue::VARCHAR AS venue,
    symbol::VARCHAR AS symbol,
    ts_exchange::BIGINT AS ts_exchange,
    ts_local::BIGINT AS ts_local,
    update_id::BIGINT AS update_id,
    side::VARCHAR AS side,                      -- bid | ask
    level::SMALLINT AS level,                   -- 0 = best
    price::DOUBLE AS price,
    size::DOUBLE AS size,
    make_timestamp(ts_exchange // 1000) AS time_exchange,
    make_timestamp(ts_local // 1000) AS time_local
FROM read_parquet('{segments}/book_snapshots/*/*.parquet', union_by_name = true);

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
