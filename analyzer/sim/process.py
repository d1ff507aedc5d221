"""Price processes of the simulated market: the underlying, mean-reverting factors, funding.

Every process takes its time step and its random draws as arguments: the model owns the one
seeded ``random.Random`` and draws in a fixed order, which is what makes a run reproducible.
"""

from __future__ import annotations

import math

import msgspec

from analyzer.sim.clock import NS
from analyzer.sim.spec import FundingSpec

SECONDS_PER_YEAR = 365 * 86400
LN2 = math.log(2.0)


class OU:
    """An Ornstein-Uhlenbeck factor (exact discretisation), kept inside ``[lo, hi]``.

    ``sd`` is the stationary standard deviation; scenarios retarget ``mean``, ``sd``,
    ``halflife_s`` and the bounds through ``set`` while the factor runs.
    """

    __slots__ = ("_a", "_b", "_dt", "halflife_s", "hi", "lo", "mean", "sd", "x")

    def __init__(
        self, x: float, mean: float, sd: float, halflife_s: float,
        lo: float = -math.inf, hi: float = math.inf,
    ) -> None:
        self.x = x
        self.mean = mean
        self.sd = sd
        self.halflife_s = halflife_s
        self.lo = lo
        self.hi = hi
        self._dt = -1.0
        self._a = self._b = 0.0

    def set(self, **params: float) -> dict[str, float]:
        """Change parameters; returns the previous values (to restore them later)."""
        old = {k: getattr(self, k) for k in params}
        for k, v in params.items():
            setattr(self, k, v)
        self._dt = -1.0
        self.x = min(max(self.x, self.lo), self.hi)
        return old

    def step(self, dt_s: float, z: float) -> float:
        if dt_s != self._dt:
            self._dt = dt_s
            self._a = math.exp(-LN2 * dt_s / self.halflife_s)
            self._b = self.sd * math.sqrt(1.0 - self._a * self._a)
        x = self.mean + (self.x - self.mean) * self._a + self._b * z
        self.x = x = min(max(x, self.lo), self.hi)
        return x


class Underlying:
    """Log price with GARCH-like volatility clustering and Poisson jumps.

    Per step of dt seconds: r = sqrt(v dt) z (+ a jump with probability rate dt), then the
    per-second variance v moves toward r^2/dt (reaction time ``REACT_S``) and back toward its
    long-run level (``REVERT_S``), bounded to [0.1, 25] times that level. Both speeds are in
    seconds, so a shock has the same effect whatever the step: a jump lifts volatility for tens
    of minutes, then it fades.
    """

    REACT_S = 600.0
    REVERT_S = 3600.0

    __slots__ = ("jump_rate_s", "jump_sigma", "log_price", "theta", "var_s")

    def __init__(self, price: float, vol_annual: float, jumps_per_day: float,
                 jump_sigma: float) -> None:
        self.log_price = math.log(price)
        self.theta = vol_annual * vol_annual / SECONDS_PER_YEAR
        self.var_s = self.theta
        self.jump_rate_s = jumps_per_day / 86400.0
        self.jump_sigma = jump_sigma

    @property
    def price(self) -> float:
        return math.exp(self.log_price)

    @property
    def vol_annual(self) -> float:
        """The current (instantaneous) volatility, annualised."""
        return math.sqrt(self.var_s * SECONDS_PER_YEAR)

    def step(self, dt_s: float, z: float, u_jump: float, z_jump: float) -> float:
        """Advance by dt_s; z ~ N(0,1) diffusion, u_jump ~ U(0,1), z_jump ~ N(0,1)."""
        v = self.var_s
        r = math.sqrt(v * dt_s) * z
        if u_jump < self.jump_rate_s * dt_s:
            r += self.jump_sigma * z_jump
        phi = min(0.5, dt_s / self.REACT_S)
        kappa = min(0.5, dt_s / self.REVERT_S)
        v += phi * (r * r / dt_s - v) + kappa * (self.theta - v)
        self.var_s = min(max(v, 0.1 * self.theta), 25.0 * self.theta)
        self.log_price += r
        return r


def funding_rate(avg_premium: float, interval_hours: float, spec: FundingSpec) -> float:
    """P + clamp(I - P, ±clamp), capped to ±cap, I = interest_8h scaled to the interval."""
    interest = spec.interest_8h * interval_hours / 8.0
    rate = avg_premium + min(max(interest - avg_premium, -spec.clamp), spec.clamp)
    return min(max(rate, -spec.cap), spec.cap)


class FundingSettlement(msgspec.Struct, frozen=True, gc=False):
    """A realised funding payment: ``rate`` per interval, from ``avg_premium`` (the weighted
    average of ``samples`` premium-index samples of the interval) by the venue's formula."""

    venue: str
    symbol: str
    ts: int
    rate: float
    avg_premium: float
    samples: int
    interval_hours: float


class FundingClock:
    """Premium sampling and settlement of one perpetual.

    Samples are taken on the ``sample_s`` grid (aligned to the epoch); the k-th sample of an
    interval weighs k (a time-weighted average premium index). A sample falling on a settlement time
    belongs to the interval it closes.
    """

    __slots__ = ("interval_hours", "interval_ns", "k", "ksum", "next_sample", "next_settle",
                 "sample_ns", "spec", "wsum")

    def __init__(self, now_ns: int, interval_hours: float, spec: FundingSpec) -> None:
        self.spec = spec
        self.interval_hours = interval_hours
        self.interval_ns = round(interval_hours * 3600 * NS)
        self.sample_ns = spec.sample_s * NS
        self.next_settle = (now_ns // self.interval_ns + 1) * self.interval_ns
        self.next_sample = (now_ns // self.sample_ns + 1) * self.sample_ns
        self.k = 0
        self.wsum = 0.0
        self.ksum = 0

    def average(self) -> float | None:
        return self.wsum / self.ksum if self.ksum else None

    def predicted(self) -> float:
        """The rate the interval would settle at now (the predicted rate a mark price stream
        sends)."""
        avg = self.average()
        return funding_rate(0.0 if avg is None else avg, self.interval_hours, self.spec)

    def advance(self, t_ns: int, premium: float) -> list[tuple[int, float, float, int]]:
        """Take the samples due up to t_ns (all at ``premium``, the premium of this step);
        returns the settlements due: (time, rate, average premium, samples)."""
        out = []
        while self.next_sample <= t_ns:
            self.k += 1
            self.wsum += self.k * premium
            self.ksum += self.k
            if self.next_sample >= self.next_settle:
                avg = self.wsum / self.ksum
                out.append((self.next_settle, funding_rate(avg, self.interval_hours, self.spec),
                            avg, self.k))
                self.next_settle += self.interval_ns
                self.k = 0
                self.wsum = 0.0
                self.ksum = 0
            self.next_sample += self.sample_ns
        return out
