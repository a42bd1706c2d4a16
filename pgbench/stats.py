"""Small pure statistics for comparing runs: point metrics, bootstrap intervals, survival curves.

Conventions
-----------
- Scores are numpy arrays. Aggregate metrics take any shape and use every entry, so a
  ``(runs, tasks)`` matrix and its flattened version give the same answer (as in rliable).
- Every random draw comes from a ``numpy.random.Generator`` passed in by the caller; nothing here
  touches numpy's global random state, so a fixed seed gives a fixed interval.
- Times to a threshold are *right-censored*: a run that never reached the threshold contributes
  its total length (env steps or episodes) with ``censored=True``, meaning "would have needed more
  than this".
- Percentile intervals use order statistics (``method="lower"`` for the low end, ``"higher"`` for
  the high end) rather than interpolation. That is slightly conservative and, unlike
  interpolation, well defined when some bootstrap values are infinite.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as sps

#: Tolerance for "survival <= 0.5": survival values like 2/4 are exactly one half in exact
#: arithmetic but may be computed a hair above it.
_HALF = 0.5 + 1e-9


# --------------------------------------------------------------------------- point metrics
def mean(scores) -> float:
    """Mean of all entries.

    >>> mean([[1.0, 2.0], [3.0, 6.0]])
    3.0
    """
    return float(np.mean(np.asarray(scores, dtype=float)))


def median(scores) -> float:
    """Median of all entries.

    >>> median([3.0, 1.0, 2.0, 10.0])
    2.5
    """
    return float(np.median(np.asarray(scores, dtype=float)))


def iqm(scores) -> float:
    """Interquartile mean: the mean of the middle 50% of all entries (rliable's definition).

    ``scipy.stats.trim_mean(x, 0.25)`` drops ``floor(0.25 n)`` entries from each end of the
    sorted, flattened scores. It is robust to a few failed or lucky seeds, unlike the mean, and
    uses more of the data than the median.

    >>> iqm([[10.0, 1.0], [3.0, 7.0], [2.0, 100.0], [4.0, 5.0]])  # middle of 1,2,|3,4,5,7|,10,100
    4.75
    """
    return float(sps.trim_mean(np.asarray(scores, dtype=float), 0.25, axis=None))


def probability_of_improvement(x, y) -> float:
    """P(X > Y) + 0.5 P(X = Y) for X drawn from sample ``x`` and Y from sample ``y``.

    Shapes: ``x`` (n,), ``y`` (m,); every one of the n*m pairs counts once. 0.5 means no
    tendency either way; 1.0 means every x beats every y.

    >>> probability_of_improvement([3.0, 1.0], [2.0, 1.0])  # pairs: >, >, <, =
    0.625
    """
    x = np.asarray(x, dtype=float).ravel()[:, None]
    y = np.asarray(y, dtype=float).ravel()[None, :]
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(np.mean((x > y) + 0.5 * (x == y)))


# --------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval ``[low, high]`` at level ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def _tail(confidence: float) -> float:
    """Probability in each tail, (1 - confidence) / 2, rounded so 0.9 gives exactly 0.05."""
    return round((1.0 - confidence) / 2, 12)


def percentile_interval(values, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of ``values`` (shape (B,)), by order statistics.

    ``inf`` values are allowed (they sort last); ``nan`` values are not.

    >>> percentile_interval(np.arange(101.0), 0.9)
    (5.0, 95.0)
    """
    values = np.asarray(values, dtype=float)
    tail = _tail(_check_confidence(confidence))
    if values.size == 0:
        return math.nan, math.nan
    low = np.quantile(values, tail, method="lower")
    high = np.quantile(values, 1 - tail, method="higher")
    return float(low), float(high)


def _resample_indices(n: int, n_resamples: int, rng: np.random.Generator, strata=None) -> np.ndarray:
    """Bootstrap row indices, shape (n_resamples, n).

    Without ``strata`` every row is drawn from all n rows. With ``strata`` (labels, shape (n,)),
    each row is drawn from the rows with the same label as the row it replaces, so every stratum
    keeps its size and position in every resample.
    """
    if strata is None:
        return rng.integers(0, n, size=(n_resamples, n))
    strata = np.asarray(strata)
    if strata.shape != (n,):
        raise ValueError(f"strata must have shape ({n},), got {strata.shape}")
    indices = np.empty((n_resamples, n), dtype=np.int64)
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        indices[:, members] = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
    return indices


def _check_samples(samples) -> list[np.ndarray]:
    arrays = [np.asarray(s) for s in samples]
    if not arrays or any(a.ndim == 0 or a.shape[0] == 0 for a in arrays):
        raise ValueError("every sample needs at least one observation")
    return arrays


def bootstrap_distribution(metric: Callable[..., float], *samples, rng: np.random.Generator,
                           n_resamples: int = 2000, strata: Sequence | None = None) -> np.ndarray:
    """``metric`` evaluated on ``n_resamples`` bootstrap resamples of ``samples``; shape (n_resamples,).

    Each sample is an array whose first axis indexes independent observations (seeds); extra
    axes travel with their row, e.g. a ``(n, 2)`` array of (time, censored) pairs. Samples are
    resampled independently of each other (two arms are two independent experiments).
    ``strata`` is None or one entry per sample: None or a label array of shape (n_i,) for
    resampling within groups (e.g. tasks), see ``bootstrap_ci``.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    arrays = _check_samples(samples)
    if strata is None:
        strata = [None] * len(arrays)
    if len(strata) != len(arrays):
        raise ValueError("strata needs one entry (labels or None) per sample")
    index_sets = [_resample_indices(a.shape[0], n_resamples, rng, s) for a, s in zip(arrays, strata)]
    out = np.empty(n_resamples, dtype=float)
    for b in range(n_resamples):
        out[b] = metric(*(a[idx[b]] for a, idx in zip(arrays, index_sets)))
    return out


def bootstrap_ci(metric: Callable[..., float], *samples, rng: np.random.Generator,
                 confidence: float = 0.95, n_resamples: int = 2000,
                 strata: Sequence | None = None) -> Interval:
    """Percentile bootstrap confidence interval for ``metric(*samples)``.

    Parameters
    ----------
    metric: any function of the samples returning a float, e.g. ``iqm``, ``mean``,
        ``probability_of_improvement`` (two samples) or a lambda.
    samples: arrays of shape (n_i, ...); the first axis is the resampling unit (one row per seed).
    rng: the only source of randomness.
    strata: optional, one entry per sample: None, or labels of shape (n_i,). Rows are then
        resampled within their label (a stratified bootstrap, e.g. seeds within each task), which
        keeps each task's weight fixed, as rliable does for (runs, tasks) score matrices.

    Example: a 2x2 matrix of scores (2 seeds x 2 tasks) resampled within tasks::

        scores = np.array([[1.0, 10.0], [3.0, 12.0]])
        tasks = np.array([0, 1, 0, 1])
        bootstrap_ci(mean, scores.ravel(), rng=np.random.default_rng(0), strata=[tasks])
        # estimate 6.5; every resample mean lies in [5.5, 7.5]
    """
    confidence = _check_confidence(confidence)
    estimate = float(metric(*_check_samples(samples)))
    values = bootstrap_distribution(metric, *samples, rng=rng, n_resamples=n_resamples, strata=strata)
    values = values[~np.isnan(values)]
    low, high = percentile_interval(values, confidence)
    return Interval(estimate, low, high, confidence)


def probability_of_improvement_ci(x, y, *, rng: np.random.Generator, confidence: float = 0.95,
                                  n_resamples: int = 2000) -> Interval:
    """``probability_of_improvement(x, y)`` with a bootstrap CI (x and y resampled independently)."""
    return bootstrap_ci(probability_of_improvement, np.asarray(x, dtype=float),
                        np.asarray(y, dtype=float), rng=rng, confidence=confidence,
                        n_resamples=n_resamples)


def difference_of_means_ci(x, y, *, rng: np.random.Generator, confidence: float = 0.95,
                           n_resamples: int = 2000) -> Interval:
    """``mean(x) - mean(y)`` with a bootstrap CI (x and y resampled independently)."""
    return bootstrap_ci(lambda a, b: float(np.mean(a) - np.mean(b)), np.asarray(x, dtype=float),
                        np.asarray(y, dtype=float), rng=rng, confidence=confidence,
                        n_resamples=n_resamples)


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
