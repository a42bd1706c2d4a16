"""Times to a threshold with right-censoring: Kaplan-Meier curves, medians with confidence
bands, ratios of medians, and how many seeds would settle an interval.

A run that never reached the threshold contributes its total length (env steps or episodes)
with ``censored=True``: "would have needed more than this".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from pgbench.stats.bootstrap import _check_confidence, _tail
from pgbench.stats.metrics import _HALF


# --------------------------------------------------------------------------- survival
def _as_censored(times, censored) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=float).ravel()
    censored = np.asarray(censored, dtype=bool).ravel()
    if times.shape != censored.shape:
        raise ValueError(f"times {times.shape} and censored {censored.shape} differ in shape")
    if times.size == 0:
        raise ValueError("need at least one observation")
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError("times must be finite and non-negative")
    return times, censored


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan–Meier survival curve with its pointwise confidence band.

    ``survival[i]`` is the estimated probability that a run has *not yet* reached the threshold
    after ``times[i]`` (a right-continuous step function; 1.0 before ``times[0]``); ``1 -
    survival`` is the fraction of runs solved. Band: exponential ("log-log") Greenwood at level
    ``confidence``; where that formula is undefined (survival exactly 1 or 0) the band is taken
    as [1, 1] before the first success and as [0, 1] once survival reaches 0, i.e. the upper
    edge becomes uninformative rather than falsely tight.
    Shapes: all arrays (k,) over the k distinct observed times, in increasing order.
    """

    times: np.ndarray
    survival: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray
    confidence: float
    n: int
    n_censored: int

    def survival_at(self, t) -> np.ndarray:
        """Survival at times ``t`` (any shape), 1.0 before the first observed time."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right") - 1
        padded = np.concatenate([[1.0], self.survival])
        return padded[idx + 1]


def kaplan_meier(times, censored, *, confidence: float = 0.95) -> KaplanMeier:
    """Kaplan–Meier estimate of the time-to-threshold distribution of right-censored runs.

    times: (n,) env steps (or episodes) at which each run reached the threshold, or, for a
    censored run, its total length. censored: (n,) bool, True when the run never reached it.
    Computed by ``scipy.stats.ecdf`` on ``scipy.stats.CensoredData``. A run censored at time t
    is still at risk at t (ties: successes before censorings).

    Example: times [1, 2, 3, 4], censored [F, T, F, F]: at t=1, 1 of 4 succeeds (S=3/4);
    t=2 is censored; at t=3, 1 of the 2 left succeeds (S=3/8); at t=4, S=0.
    """
    confidence = _check_confidence(confidence)
    times, censored = _as_censored(times, censored)
    data = sps.CensoredData(uncensored=times[~censored], right=times[censored])
    sf = sps.ecdf(data).sf
    with warnings.catch_warnings():
        # scipy warns where the log-log formula is undefined (S = 0 or 1); handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(confidence, method="log-log")
    survival = np.asarray(sf.probabilities, dtype=float)
    low = np.asarray(band.low.probabilities, dtype=float)
    high = np.asarray(band.high.probabilities, dtype=float)
    no_success_yet = survival >= 1.0 - 1e-12
    low = np.where(np.isnan(low) & no_success_yet, 1.0, np.where(np.isnan(low), 0.0, low))
    high = np.where(np.isnan(high) & no_success_yet, 1.0, np.where(np.isnan(high), 1.0, high))
    return KaplanMeier(times=np.asarray(sf.quantiles, dtype=float), survival=survival,
                       band_low=low, band_high=high, confidence=confidence,
                       n=int(times.size), n_censored=int(censored.sum()))


def _first_time_at_or_below_half(times: np.ndarray, survival: np.ndarray) -> float:
    hit = np.flatnonzero(survival <= _HALF)
    return float(times[hit[0]]) if hit.size else math.inf


@dataclass(frozen=True)
class MedianTime:
    """Median time to threshold of censored runs, with a confidence interval.

    ``median`` is ``inf`` when more than half the runs are censored beyond the last observed
    time: it is then only known to exceed ``lower_bound`` (the largest observed time).
    Otherwise ``lower_bound == median``. ``high`` is ``inf`` when the data cannot bound the
    median from above.
    """

    median: float
    low: float
    high: float
    lower_bound: float
    confidence: float
    n: int
    n_censored: int

    @property
    def defined(self) -> bool:
        return math.isfinite(self.median)


def km_median(times, censored, *, confidence: float = 0.95) -> MedianTime:
    """Kaplan–Meier median time to threshold, CI from the KM confidence band.

    Median: the first observed time at which KM survival is <= 0.5 (no interpolation).
    CI (Brookmeyer–Crowley style, read off the band): low = first time the band's lower edge is
    <= 0.5 (if it never is, the median lies beyond the data and ``low`` is the largest observed
    time), high = first time its upper edge is <= 0.5 (``inf`` if never). With few runs the
    upper edge rarely falls to 0.5, so ``high`` is often ``inf``: the honest answer for, e.g.,
    3 seeds, where the population median may well lie beyond every observed time.

    Example (hand computation): times [100, 200, 300, 400, 500], censored [F, T, F, F, T]:
    S(100)=4/5, S(300)=4/5*2/3=8/15, S(400)=8/15*1/2=4/15 -> median 400.
    """
    curve = kaplan_meier(times, censored, confidence=confidence)
    last_time = float(curve.times.max())
    med = _first_time_at_or_below_half(curve.times, curve.survival)
    low = _first_time_at_or_below_half(curve.times, curve.band_low)
    return MedianTime(
        median=med,
        low=low if math.isfinite(low) else last_time,
        high=_first_time_at_or_below_half(curve.times, curve.band_high),
        lower_bound=med if math.isfinite(med) else last_time,
        confidence=curve.confidence, n=curve.n, n_censored=curve.n_censored)


def km_median_rows(times: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """KM medians of many samples at once: ``times``, ``censored`` shape (B, n) -> (B,).

    Same definition as ``km_median`` (first time with survival <= 0.5; ``inf`` when undefined),
    vectorised for bootstrap resamples. Processing observations one at a time in time order,
    successes before censorings at ties, each success multiplies survival by (1 - 1/at_risk);
    a run of tied successes thus multiplies by (1 - d/n), exactly the KM factor.
    """
    times = np.atleast_2d(np.asarray(times, dtype=float))
    censored = np.atleast_2d(np.asarray(censored, dtype=bool))
    n = times.shape[1]
    order = np.lexsort((censored, times), axis=-1)
    t_sorted = np.take_along_axis(times, order, axis=-1)
    success = ~np.take_along_axis(censored, order, axis=-1)
    at_risk = n - np.arange(n)
    survival = np.cumprod(1.0 - success / at_risk, axis=-1)
    below = success & (survival <= _HALF)
    first = np.argmax(below, axis=-1)
    found = below[np.arange(times.shape[0]), first]
    return np.where(found, t_sorted[np.arange(times.shape[0]), first], np.inf)


@dataclass(frozen=True)
class MedianRatio:
    """Ratio of two KM median times (a / b) with a bootstrap CI; see ``median_ratio_ci``."""

    estimate: float
    low: float
    high: float
    confidence: float
    median_a: MedianTime
    median_b: MedianTime
    undefined_a: float  # fraction of bootstrap resamples in which a's median was undefined
    undefined_b: float


def median_ratio_ci(times_a, censored_a, times_b, censored_b, *, rng: np.random.Generator,
                    confidence: float = 0.95, n_resamples: int = 2000) -> MedianRatio:
    """Ratio of KM median times to threshold, a over b, with a censoring-aware bootstrap CI.

    Each arm's (time, censored) pairs are resampled independently and each resample's KM median
    recomputed. When a resample's median is undefined (more than half of it censored), the
    median is only known to lie in (T, inf), T being that resample's largest time. Each resample
    then gives an interval for the ratio, [a_low / b_high, a_high / b_low] (equal ends when both
    medians are defined). The CI takes the lower percentile of the low ends and the upper
    percentile of the high ends, so undefined medians can only widen it: a CI low end is a valid
    lower bound even when the slower arm often fails to solve. The point estimate uses
    ``inf`` for an undefined median (so it is ``inf``, 0 or ``nan``).

    Example: a = [800, 900, 1000] steps, b = [150, 160, 200] steps, none censored:
    estimate 900 / 160 = 5.625.
    """
    confidence = _check_confidence(confidence)
    ta, ca = _as_censored(times_a, censored_a)
    tb, cb = _as_censored(times_b, censored_b)
    med_a = km_median(ta, ca, confidence=confidence)
    med_b = km_median(tb, cb, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = float(np.float64(med_a.median) / np.float64(med_b.median))

    def bounds(t, c):
        idx = rng.integers(0, t.size, size=(n_resamples, t.size))
        resampled_times = t[idx]
        medians = km_median_rows(resampled_times, c[idx])
        undefined = ~np.isfinite(medians)
        lower = np.where(undefined, resampled_times.max(axis=1), medians)
        return lower, medians, undefined  # medians is the upper end: inf when undefined

    a_low, a_high, a_undef = bounds(ta, ca)
    b_low, b_high, b_undef = bounds(tb, cb)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_low = np.where(np.isinf(b_high), 0.0, a_low / b_high)
        ratio_high = np.where(b_low > 0, a_high / np.where(b_low > 0, b_low, 1.0), np.inf)
    low = float(np.quantile(ratio_low, _tail(confidence), method="lower"))
    high = float(np.quantile(ratio_high, 1 - _tail(confidence), method="higher"))
    return MedianRatio(estimate, low, high, confidence, med_a, med_b,
                       float(a_undef.mean()), float(b_undef.mean()))


# --------------------------------------------------------------------------- planning
def seeds_needed(estimate: float, low: float, high: float, threshold: float, n_seeds: int) -> float:
    """Seeds (per arm) at which an interval like this one would no longer straddle ``threshold``.

    A CI's half-width shrinks like 1/sqrt(n). Taking the half of the interval that faces the
    threshold, h = |estimate - (low or high)|, and the distance d = |estimate - threshold|, the
    interval clears the threshold once h * sqrt(n / n') < d, i.e. n' > n (h / d)^2. Assumes the
    estimate stays where it is; returns ``inf`` when it sits exactly on the threshold, ``nan``
    when the estimate is not finite (e.g. a median beyond the budget: more steps, not more seeds,
    would help), and ``n_seeds`` when the interval already excludes the threshold.

    >>> seeds_needed(2.0, 0.5, 3.5, 1.0, 3)  # h = 1.5, d = 1.0: 3 * 2.25 = 6.75
    7.0
    """
    if not (math.isfinite(estimate) and n_seeds > 0):
        return math.nan
    if not low <= threshold <= high:
        return float(n_seeds)
    distance = abs(estimate - threshold)
    if distance == 0.0:
        return math.inf
    facing = low if threshold <= estimate else high
    half_width = abs(estimate - facing)
    if not math.isfinite(half_width):
        return math.inf
    return float(math.ceil(n_seeds * (half_width / distance) ** 2 - 1e-9))
