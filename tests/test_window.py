"""The local exchange's book window (``analyzer/exchange/window.py``): a client that applies
what ``Window.apply`` says holds exactly the best ``n`` levels a side of the whole book after
every change, whatever the change (levels in, out, across the window's edge)."""

from __future__ import annotations

import random

import pytest

from analyzer.exchange.window import Window


@pytest.mark.parametrize("seed", range(5))
def test_a_client_applying_the_window_holds_the_best_levels_after_every_change(
        seed: int) -> None:
    rng = random.Random(seed)
    n = 10
    book = {True: {}, False: {}}  # the whole book, bids and asks
    client = {True: {}, False: {}}
    w = Window(n)
    prices = {True: [100.0 - i for i in range(60)], False: [101.0 + i for i in range(60)]}
    for side in (True, False):
        for p in rng.sample(prices[side], 30):
            book[side][p] = float(rng.randint(1, 9))
    w.reset(sorted(book[True].items(), reverse=True), sorted(book[False].items()))
    top_b, top_a = w.top()
    client[True], client[False] = dict(top_b), dict(top_a)
    for _ in range(400):
        side = rng.random() < 0.5
        levels = []
        for p in rng.sample(prices[side], rng.randint(1, 6)):
            q = 0.0 if rng.random() < 0.4 else float(rng.randint(1, 9))
            levels.append((p, q))
            if q:
                book[side][p] = q
            else:
                book[side].pop(p, None)
        for p, q in w.apply(side, levels):
            if q:
                client[side][p] = q
            else:
                client[side].pop(p, None)
        want = sorted(book[side].items(), reverse=side)[:n]
        assert sorted(client[side].items(), reverse=side) == want
