"""Bootstrap confidence intervals (percentile, optionally stratified) of any metric of one or more samples.

Percentile intervals use order statistics (``method="lower"`` for the low end, ``"higher"`` for
the high end) rather than interpolation: slightly conservative and, unlike interpolation, well
defined when some bootstrap values are infinite. Every draw comes from the Generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pgbench.stats.metrics import probability_of_improvement


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


def percentile_interval(values, confidence: float, axis: int | None = None):
    """The central ``confidence`` percentile interval of ``values``, by order statistics: the
    low end is the ``lower`` quantile, the high end the ``higher`` one (no interpolation).

    This is pgbench's one convention for every bootstrap interval (claims, the CI gate, the
    gradient study, the report's bands). NaN values are ignored (a resample with no value);
    ``inf`` values are allowed (they sort last). With ``axis=None`` the ends are floats (NaN
    when no value is left); with an axis, arrays over the other axes.

    >>> percentile_interval(np.arange(101.0), 0.9)
    (5.0, 95.0)
    >>> percentile_interval([np.nan, 1.0, 2.0, 3.0], 0.5)
    (1.0, 3.0)
    """
    values = np.asarray(values, dtype=float)
    tail = _tail(_check_confidence(confidence))
    if axis is None:
        values = values[~np.isnan(values)]
        if values.size == 0:
            return math.nan, math.nan
        return (float(np.quantile(values, tail, method="lower")),
                float(np.quantile(values, 1 - tail, method="higher")))
    return (np.nanquantile(values, tail, method="lower", axis=axis),
            np.nanquantile(values, 1 - tail, method="higher", axis=axis))


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n rows is drawn in each bootstrap resample, ``(n_resamples, n)``: one
    multinomial draw per resample, so weighted sums give resampled sums without building the
    resampled arrays."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


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
