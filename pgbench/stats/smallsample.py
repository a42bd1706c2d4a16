"""Intervals that keep their coverage with few seeds: exact or permutation-based, never a
percentile bootstrap (which, with 5 seeds per arm that never overlap, returns [0, 0]).

Two pure functions:

* :func:`permutation_shift_ci`: a CI for the difference of means of two arms, by inverting the
  two-sample permutation test of a location shift (Lehmann's construction). Under the model
  "arm a is arm b shifted by delta" its coverage is at least the nominal level for any sample
  size; with few enough arrangements every one is enumerated (exact), else random ones are drawn
  from the given Generator (the +1 rule keeps the test valid).
* :func:`fraction_by_ci`: the fraction of runs solved by a given time, with the Clopper–Pearson
  exact interval when no run was censored before that time (the Kaplan–Meier estimate is then the
  plain proportion), else the Kaplan–Meier log-log band, widened where it is falsely tight (no
  success yet: an exact binomial bound on the runs still followed; no run followed that far: no
  upper bound).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from pgbench.stats import survival

#: Enumerate every arrangement of the pooled runs up to this many (C(20, 10) = 184,756).
MAX_EXACT = 200_000


#: Random arrangements drawn beyond that.
N_RANDOM = 20_000


@dataclass(frozen=True)
class ShiftInterval:
    """Difference of means a - b with its permutation CI; ``exact`` when every arrangement was
    used; ``p_two_sided`` the permutation p-value of no difference."""

    estimate: float
    low: float
    high: float
    exact: bool
    n_arrangements: int
    p_two_sided: float


def _arrangements(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Boolean (K, n + m) masks of the runs put in group a, the observed one first."""
    total = n + m
    observed = np.zeros(total, dtype=bool)
    observed[:n] = True
    if math.comb(total, n) <= MAX_EXACT:
        chosen = np.fromiter(itertools.chain.from_iterable(
            itertools.combinations(range(total), n)), dtype=np.int64).reshape(-1, n)
        masks = np.zeros((len(chosen), total), dtype=bool)
        np.put_along_axis(masks, chosen, True, axis=1)
        # put the observed arrangement first and drop its duplicate
        keep = ~(masks == observed).all(axis=1)
        return np.vstack([observed, masks[keep]]), True
    draws = np.argsort(rng.random((N_RANDOM, total)), axis=1)[:, :n]
    masks = np.zeros((N_RANDOM, total), dtype=bool)
    np.put_along_axis(masks, draws, True, axis=1)
    return np.vstack([observed, masks]), False


def permutation_shift_ci(a, b, *, rng: np.random.Generator,
                         confidence: float = 0.95) -> ShiftInterval:
    """CI for mean(a) - mean(b): the shifts delta the permutation test of "a - delta and b are
    exchangeable" does not reject at level 1 - confidence (each tail at half of it).

    Shifting a by delta moves the observed statistic by -delta and an arrangement's statistic
    by -delta * c, c = k/n - (n - k)/m (k of a's runs in its group a), so each arrangement
    crosses the observed value at one shift d = (T_obs - T) / (1 - c): the interval's ends are
    order statistics of those d, found without a search.

    >>> r = permutation_shift_ci([3., 4., 5.], [0., 1., 2.], rng=np.random.default_rng(0))
    >>> r.estimate, r.exact, r.n_arrangements
    (3.0, True, 20)
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("each arm needs at least one value")
    n, m = a.size, b.size
    pooled = np.concatenate([a, b])
    masks, exact = _arrangements(n, m, rng)
    k = masks[:, :n].sum(axis=1)
    t = (masks @ pooled) / n - ((~masks) @ pooled) / m
    c = k / n - (n - k) / m
    t_obs = t[0]
    d = (t_obs - t[1:]) / (1.0 - c[1:])  # the observed arrangement always counts
    total = len(masks)
    alpha = (1.0 - confidence) / 2.0
    # p_upper(delta) = (1 + #{d <= delta}) / total > alpha  <=>  #{d <= delta} >= r
    r = math.floor(alpha * total - 1.0) + 1
    d_sorted = np.sort(d)
    low = -math.inf if r <= 0 else float(d_sorted[r - 1])
    high = math.inf if r <= 0 else float(d_sorted[len(d_sorted) - r])
    tol = 1e-12 * max(1.0, abs(t_obs))
    p = min(1.0, 2.0 * min((t >= t_obs - tol).sum(), (t <= t_obs + tol).sum()) / total)
    return ShiftInterval(float(a.mean() - b.mean()), low, high, exact, total, p)


@dataclass(frozen=True)
class FractionBy:
    """Fraction of runs solved by ``time`` with its CI; ``method`` names the interval."""

    fraction: float
    low: float
    high: float
    n: int
    solved_by: int
    censored_before: int
    method: str


def fraction_by_ci(times, censored, time: float, *, confidence: float = 0.95) -> FractionBy:
    """Kaplan–Meier fraction of runs that reached the threshold by ``time`` (inclusive).

    >>> f = fraction_by_ci([1., 2., 5., 9.], [False, False, False, True], 4.0)
    >>> f.fraction, f.solved_by, f.method
    (0.5, 2, 'Clopper-Pearson (exact)')
    """
    times = np.asarray(times, dtype=float).ravel()
    censored = np.asarray(censored, dtype=bool).ravel()
    curve = survival.kaplan_meier(times, censored, confidence=confidence)
    fraction = float(1.0 - curve.survival_at(time))
    solved_by = int(((times <= time) & ~censored).sum())
    censored_before = int(((times < time) & censored).sum())
    n = int(times.size)
    if censored_before == 0:
        alpha = 1.0 - confidence
        low = 0.0 if solved_by == 0 else float(sps.beta.ppf(alpha / 2, solved_by, n - solved_by + 1))
        high = 1.0 if solved_by == n else float(sps.beta.ppf(1 - alpha / 2, solved_by + 1, n - solved_by))
        return FractionBy(fraction, low, high, n, solved_by, 0, "Clopper-Pearson (exact)")
    idx = int(np.searchsorted(curve.times, time, side="right")) - 1
    s_low = 1.0 if idx < 0 else float(curve.band_low[idx])
    s_high = 1.0 if idx < 0 else float(curve.band_high[idx])
    low, high = 1.0 - s_high, 1.0 - s_low
    at_risk = int((times >= time).sum())
    method = "Kaplan-Meier log-log band"
    if at_risk == 0 and fraction < 1.0:
        # every unsolved run stopped before the quote: nothing bounds F(time) from above
        high, method = 1.0, "Kaplan-Meier; no run followed up to it, so no upper bound"
    elif solved_by == 0:
        # the band is [0, 0] before the first success; bound it like a binomial 0 of the runs
        # still followed at the quote (fewer than all: conservative)
        high = 1.0 - ((1.0 - confidence) / 2) ** (1.0 / at_risk)
        method = f"no run solved by then: exact bound from the {at_risk} runs followed to it"
    return FractionBy(fraction, low, high, n, solved_by, censored_before, method)


def tail_share(low: float, high: float, value: float) -> tuple[float, float, float]:
    """(estimate, low, high) of min(F, 1 - F), the share of runs beyond a value on its own side,
    for F = ``value`` in [``low``, ``high``]: the quote lies in the central 1 - 2q of the
    distribution when this exceeds q.

    >>> tail_share(0.1, 0.3, 0.2), tail_share(0.25, 0.75, 0.5)
    ((0.2, 0.1, 0.3), (0.5, 0.25, 0.5))
    """
    est = min(value, 1.0 - value)
    lo = min(low, 1.0 - high)
    hi = 0.5 if low <= 0.5 <= high else max(min(low, 1.0 - low), min(high, 1.0 - high))
    return est, lo, hi
