"""The gate's decision for one group (the rule is in the package docstring): statistics,
the bootstrap interval, the permutation test and the seeds needed for power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np

from pgbench.core.errors import choice_error
from pgbench.core.fingerprint import UNKNOWN
from pgbench.stats.bootstrap import percentile_interval
from pgbench.stats.metrics import iqm


def _percent(fraction: float) -> str:
    """0.1 -> ``10%``, 0.125 -> ``12.5%``."""
    return f"{100 * fraction:g}%"


#: Version of the reference JSON layout (docs/contracts.md, section Reference).
REFERENCE_SCHEMA = 1


#: The group key of every table (docs/contracts.md).
GROUP_KEYS = ("suite", "env", "variant", "setting")


#: Per-seed numbers a check can compare (runs.parquet columns, higher is better):
#: ``final_return`` (mean of the last 10% of episodes) or ``mean_return`` (mean over all
#: episodes: the area under the learning curve, less noisy; the CI suite's metric).
METRICS = ("final_return", "mean_return")


#: runs.parquet columns ``pgbench reference`` needs (``mean_return``, ``platform``: when present).
REFERENCE_INPUT_COLUMNS = (*GROUP_KEYS, "seed", "config_hash", "final_return", "steps_to_threshold",
                           "censored", "episodes_sha256", "packages")


#: Columns of the normalised per-run frame both sides of a check are brought to.
RUN_COLUMNS = (*GROUP_KEYS, "seed", "config_hash", *METRICS, "episodes_sha256", "packages",
               "platform")


#: Optional runs.parquet columns and their value when absent (summaries from older versions).
OPTIONAL_RUN_COLUMNS = {"mean_return": math.nan, "platform": UNKNOWN}


#: Gate settings a reference may store (``pgbench reference --metric ...``) and their defaults
#: when neither the reference nor the command line sets them.
GATE_DEFAULTS = {"metric": "final_return", "alpha": 0.05, "min_effect": 0.1, "statistic": "mean",
                 "detect": None}


#: Fields of a reference row that ``pgbench check`` reads, with their JSON types.
REFERENCE_ROW_FIELDS = {"suite": str, "env": str, "variant": str, "setting": str, "seed": int,
                        "config_hash": str, "final_return": float, "episodes_digest": str,
                        "packages": str}


VERDICTS = ("regression", "inconclusive", "pass", "identical", "missing", "new")


#: Trimmed fraction on each side for the interquartile mean.
IQM_TRIM = 0.25


#: Target power of ``--power``.
POWER = 0.8


#: Bootstrap resamples per group: 4000 keeps the Monte Carlo error of the interval's ends near
#: 1% of its width (for alpha = 0.05).
N_BOOTSTRAP = 4000


#: Permutation test: enumerate every split of the pooled seeds up to this many splits (exact
#: p-values), otherwise draw N_PERMUTATIONS random ones.
MAX_EXACT_SPLITS = 20_000


N_PERMUTATIONS = 9_999


GroupKey = tuple[str, str, str, str]


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda x: np.mean(x, axis=-1),
    "iqm": lambda x: iqm(x, axis=-1),
}


def statistic_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic called ``name`` (``mean`` or ``iqm``)."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise choice_error("statistic", name, STATISTICS) from None


def margin(ref: np.ndarray, statistic: str, min_effect: float) -> float:
    """The largest tolerated drop, in return units: ``min_effect * |S(ref)|``.

    ``ref``: (seeds,) reference final returns. ``min_effect`` is a fraction (0.1 = 10%).
    """
    return float(min_effect * abs(statistic_function(statistic)(np.asarray(ref, dtype=float))))


def bootstrap_diff_interval(ref: np.ndarray, cur: np.ndarray, statistic: str,
                            rng: np.random.Generator, *, confidence: float,
                            n_resamples: int = N_BOOTSTRAP) -> tuple[float, float]:
    """Percentile bootstrap interval of ``S(cur) - S(ref)``, resampling seeds within each side.

    ``ref``: (m,), ``cur``: (n,) final returns. Returns (low, high) in return units; each end is
    a one-sided ``(1 + confidence) / 2`` bound.
    """
    stat = statistic_function(statistic)
    ref, cur = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    ref_draws = ref[rng.integers(0, ref.size, size=(n_resamples, ref.size))]
    cur_draws = cur[rng.integers(0, cur.size, size=(n_resamples, cur.size))]
    diffs = stat(cur_draws) - stat(ref_draws)
    return percentile_interval(diffs, confidence)


def _label_splits(m: int, n: int, rng: np.random.Generator, max_exact: int,
                  n_random: int) -> tuple[np.ndarray, bool]:
    """Index arrays (splits, m + n): the first m columns of a row are labelled "reference".

    Every split when there are at most ``max_exact`` of them (returns exact=True, the observed
    labelling included once), else ``n_random`` uniformly random permutations (exact=False).
    """
    total = m + n
    if math.comb(total, m) <= max_exact:
        chosen = np.array(list(combinations(range(total), m)), dtype=np.intp).reshape(-1, m)
        is_ref = np.zeros((len(chosen), total), dtype=bool)
        np.put_along_axis(is_ref, chosen, True, axis=1)
        # Stable sort on "not reference" puts the chosen indices first, then the rest.
        return np.argsort(~is_ref, axis=1, kind="stable"), True
    return rng.permuted(np.tile(np.arange(total), (n_random, 1)), axis=1), False


def shift_permutation_pvalues(ref: np.ndarray, cur: np.ndarray, shift: float, statistic: str,
                              rng: np.random.Generator, *, max_exact: int = MAX_EXACT_SPLITS,
                              n_permutations: int = N_PERMUTATIONS) -> tuple[float, float]:
    """One-sided permutation p-values for the location shift ``D = S(cur) - S(ref) = -shift``.

    Under a shift model, ``cur + shift`` and ``ref`` are exchangeable at the boundary, so the
    labels of the pooled sample are permuted and ``T = S(cur + shift) - S(ref)`` recomputed.

    ``ref``: (m,), ``cur``: (n,) final returns; ``shift`` >= 0 in return units.
    Returns ``(p_worse, p_not_worse)``: small ``p_worse`` is evidence that ``D < -shift``
    (worse by more than the shift), small ``p_not_worse`` that ``D > -shift``. Exact when all
    ``C(m+n, m)`` splits are enumerated, else Monte Carlo with the usual +1 correction.
    """
    stat = statistic_function(statistic)
    ref, cur = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    m = ref.size
    pooled = np.concatenate([ref, cur + shift])
    observed = stat(pooled[m:]) - stat(pooled[:m])
    splits, exact = _label_splits(m, cur.size, rng, max_exact, n_permutations)
    relabelled = pooled[splits]
    t = stat(relabelled[:, m:]) - stat(relabelled[:, :m])
    # Equal values must count as ties although the two sides sum them in different orders.
    tol = 1e-9 * max(1.0, float(np.max(np.abs(pooled))))
    at_most = np.count_nonzero(t <= observed + tol)
    at_least = np.count_nonzero(t >= observed - tol)
    if exact:
        return float(at_most / len(t)), float(at_least / len(t))
    return float((1 + at_most) / (1 + len(t))), float((1 + at_least) / (1 + len(t)))


def smallest_pvalue(m: int, n: int) -> float:
    """Smallest p-value a permutation test of m against n seeds can give: ``1 / C(m+n, m)``."""
    return 1.0 / math.comb(m + n, m)


def effective_sd(values: np.ndarray, statistic: str) -> float:
    """Per-seed standard deviation whose ``sd / sqrt(seeds)`` is the statistic's standard error.

    ``values``: (seeds,) final returns. Mean: the sample sd. IQM: the 25%-winsorized sd divided
    by ``1 - 2 * 0.25`` (the large-sample error of a trimmed mean, as in Yuen's test).
    NaN with fewer than 2 seeds.
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size < 2:
        return math.nan
    if statistic == "mean":
        return float(np.std(x, ddof=1))
    cut = int(IQM_TRIM * x.size)
    winsorized = np.clip(x, x[cut], x[x.size - 1 - cut])
    return float(np.std(winsorized, ddof=1) / (1 - 2 * IQM_TRIM))


def seeds_for_power(sd: float, drop: float, alpha: float, power: float = POWER) -> float:
    """Seeds per side for a one-sided level-``alpha`` test to detect ``drop`` with ``power``.

    Normal approximation with equal seeds on both sides and the reference's spread on both:
    ``n = 2 * (z[1 - alpha] + z[power])**2 * sd**2 / drop**2``, rounded up. Also at least the
    smallest n whose exact permutation test can reach ``alpha`` (``1 / C(2n, n) <= alpha``).
    ``sd``, ``drop`` in return units. NaN when ``sd`` is unknown, inf when ``drop`` is 0.
    """
    from scipy.stats import norm

    if not math.isfinite(sd):
        return math.nan
    if drop <= 0:
        return math.inf
    z = norm.ppf(1 - alpha) + norm.ppf(power)
    analytic = math.ceil(2 * (z * sd / drop) ** 2 - 1e-9)
    floor = 1
    while smallest_pvalue(floor, floor) > alpha:
        floor += 1
    return float(max(analytic, floor))


@dataclass(frozen=True)
class CheckResult:
    """The comparison of one group. Returns and differences are in return units.

    ``diff = cur_stat - ref_stat`` (negative = worse); ``ci_low``/``ci_high`` bound it with
    confidence ``1 - 2 * alpha``; ``margin`` is the tolerated drop (>= 0); ``p_worse`` is the
    one-sided p-value of "worse by more than the margin" (small = regression), ``p_not_worse``
    of the mirror test (small = pass). NaN where a field does not apply to the verdict.
    """

    verdict: str
    n_ref: int
    n_cur: int
    ref_stat: float
    cur_stat: float
    diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    margin: float = math.nan
    p_worse: float = math.nan
    p_not_worse: float = math.nan
    note: str = ""


def compare_group(ref_values: np.ndarray, cur_values: np.ndarray, rng: np.random.Generator, *,
                  alpha: float = 0.05, min_effect: float = 0.1,
                  statistic: str = "mean", detect: float | None = None) -> CheckResult:
    """Test whether ``cur_values`` are worse than ``ref_values`` by more than ``min_effect``.

    ``ref_values``: (m,), ``cur_values``: (n,) per-seed values, m, n >= 1, higher is
    better. Verdict ``regression``, ``pass`` or ``inconclusive`` by the rule in the module
    docstring. ``detect`` (>= ``min_effect``, default ``min_effect``) is the drop the gate is
    designed to catch: ``pass`` then needs only a drop of ``detect`` excluded, while
    ``regression`` still needs a drop beyond ``min_effect`` established. Deterministic given
    the state of ``rng``.
    """
    ref = np.asarray(ref_values, dtype=float)
    cur = np.asarray(cur_values, dtype=float)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("compare_group needs at least one seed on each side")
    stat = statistic_function(statistic)
    ref_stat, cur_stat = float(stat(ref)), float(stat(cur))
    diff = cur_stat - ref_stat
    delta = margin(ref, statistic, min_effect)
    if detect is not None and detect < min_effect:
        raise ValueError(f"detect ({detect}) must be at least min_effect ({min_effect})")
    low, high = bootstrap_diff_interval(ref, cur, statistic, rng, confidence=1 - 2 * alpha)
    p_worse, p_not_worse = shift_permutation_pvalues(ref, cur, delta, statistic, rng)
    design = delta
    if detect is not None and detect != min_effect:
        design = margin(ref, statistic, detect)
        _, p_not_worse = shift_permutation_pvalues(ref, cur, design, statistic, rng)

    if p_worse <= alpha and high < -delta:
        verdict, note = "regression", f"worse by more than {_percent(min_effect)}"
    elif p_not_worse <= alpha and low > -design:
        verdict = "pass"
        note = "" if design == delta else f"a drop of {_percent(detect)} is excluded"
    else:
        verdict = "inconclusive"
        if smallest_pvalue(ref.size, cur.size) > alpha:
            note = (f"too few seeds: the smallest possible p is "
                    f"{smallest_pvalue(ref.size, cur.size):.2g} > alpha")
        elif low > -design or high < -delta:
            # The interval decides but the permutation test does not reach alpha: the seeds are
            # too few or too spread out for the interval alone to be trusted.
            p = min(p_worse, p_not_worse)
            note = f"permutation test not significant (p={p:.2g}); add seeds"
        elif diff < -delta:
            note = "possible regression: drop beyond the margin but not significant; add seeds"
        elif design == delta:
            note = "interval contains the margin; add seeds"
        else:
            note = (f"neither a drop beyond {_percent(min_effect)} nor one of "
                    f"{_percent(detect)} is established; add seeds")
    return CheckResult(verdict=verdict, n_ref=ref.size, n_cur=cur.size, ref_stat=ref_stat,
                       cur_stat=cur_stat, diff=diff, ci_low=low, ci_high=high, margin=delta,
                       p_worse=p_worse, p_not_worse=p_not_worse, note=note)
