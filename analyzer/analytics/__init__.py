"""Market-structure analytics as Polars definitions: each metric is written once, as vectorized
expressions over a frame, and the same function serves the live path (one small frame per tick)
and batch research (a time grid of millions of rows). Formulas, units and reference points follow
``notes/analytics.md``; every function's docstring says which convention it uses.
"""
