"""Market-structure analytics as Polars definitions: each metric is written once, as vectorized
expressions over a frame, and the same function serves the live path (one small frame per tick)
and batch research (a time grid of millions of rows). Formulas, units and reference points are
in each module's docstring.

Definitions
    levels.py         a live book's analysis window (exact levels + depth beyond, per band)
    liquidity.py      spread, microprice, imbalance, depth per band, slippage per notional
    state.py          the market state (books, tickers, open interest, instruments) as of ts
    basis.py          basis, premium, funding, open interest, curve, cross-venue figures
    funding.py        realised funding, open-interest change
    anomalies.py      rolling z-scores, own history and cross-venue (AnomalyState: live)
    carry.py          carry candidates: net carry after every cost, and their gates
Running them
    pipeline.py       evaluate(): every definition in order, for live and batch alike
    live.py           the collector's tick; opportunities.py: the opportunity lifecycle
    batch.py          the same over stored data (`analyzer backfill`)
    gauges.py         Prometheus families; commands.py: metrics, backfill, opportunities
"""
