"""Point metrics of a set of scores: mean, median, interquartile mean, P(X > Y).

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


def iqm(scores, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50% of all entries (rliable's definition).

    ``scipy.stats.trim_mean(x, 0.25)`` drops ``floor(0.25 n)`` entries from each end of the
    sorted, flattened scores. It is robust to a few failed or lucky seeds, unlike the mean, and
    uses more of the data than the median.

    With ``axis``, the IQM along that axis (an array): the CI gate's statistic per resample.

    >>> iqm([[10.0, 1.0], [3.0, 7.0], [2.0, 100.0], [4.0, 5.0]])  # middle of 1,2,|3,4,5,7|,10,100
    4.75
    >>> iqm([[1.0, 2.0, 3.0, 100.0]], axis=-1)
    array([2.5])
    """
    if axis is None:
        return float(sps.trim_mean(np.asarray(scores, dtype=float), 0.25, axis=None))
    return sps.trim_mean(np.asarray(scores, dtype=float), 0.25, axis=axis)


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
