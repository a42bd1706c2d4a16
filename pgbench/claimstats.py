"""Statistics of ``pgbench claims`` for a quoted figure and for comparisons with few seeds.

- ``km_median_ratio_fold``: a quoted speed-up, two-sided. The ratio of Kaplan–Meier median
  times to solve (a over b, bootstrap CI as ``km_median_ratio``) folded around the quoted ratio:
  max(r/q, q/r). A claim "about 5x" reads ``<= 3``: a ratio between 5/3 and 15. A ratio of
  infinity (a never solves) is infinitely far from 5, not a success.
- ``single_run_plausible``: the slides quote one run. Where does the quoted figure fall in the
  measured distribution of times to solve? Estimate: min(F(q), 1 - F(q)), F(q) the fraction of
  seeds solved by the quoted steps (Kaplan–Meier, exact Clopper–Pearson interval when no run was
  censored before q). The quote lies in the central 95% of the distribution when this share
  exceeds 0.025; the claim reads ``>= 0.025`` ("plausible as one run").
- ``mean_difference_exact``: mean of a column over a's runs minus b's, with the permutation
  test's inverted CI (``pgbench.smallsample.permutation_shift_ci``): valid with few seeds,
  never a degenerate [0, 0]. P(a > b) is reported beside it.
"""

from __future__ import annotations

import math

import numpy as np

from pgbench import stats
from pgbench.claims import (REQUIRED, ClaimContext, NotRun, StatisticResult, _BEYOND_BUDGET,
                            _fmt_median, _rule_columns, _times, _two_arm_values, fmt,
                            register_statistic)
from pgbench.claims import RULE_WORDS
from pgbench.smallsample import fraction_by_ci, permutation_shift_ci, tail_share

_RULE = {"rule": "running_reward"}


def fold(value: float, quoted: float) -> float:
    """max(v/q, q/v): how many times ``value`` is off ``quoted``, either way (inf for v <= 0).

    >>> fold(10.0, 5.0), fold(2.5, 5.0), fold(math.inf, 5.0)
    (2.0, 2.0, inf)
    """
    if value <= 0:
        return math.inf
    return max(value / quoted, quoted / value)


def fold_interval(low: float, high: float, quoted: float) -> tuple[float, float]:
    """The image of [low, high] under ``fold``: 1 at its low end when the interval holds q.

    >>> fold_interval(4.0, 20.0, 5.0), fold_interval(6.0, 10.0, 5.0)
    ((1.0, 4.0), (1.2, 2.0))
    """
    ends = (fold(low, quoted), fold(high, quoted))
    return (1.0 if low <= quoted <= high else min(ends)), max(ends)


@register_statistic("km_median_ratio_fold", roles=("a", "b"),
                    params={"quoted_ratio": REQUIRED, "measure": "steps", **_RULE})
def km_median_ratio_fold(ctx: ClaimContext) -> StatisticResult:
    """Fold difference of the ratio of KM median times to solve (a / b) from a quoted ratio."""
    steps_col, episodes_col, censored_col = _rule_columns(ctx)
    time_col = steps_col if ctx.params["measure"] == "steps" else episodes_col
    a, b = ctx.arms["a"], ctx.arms["b"]
    ratio = stats.median_ratio_ci(*_times(a, time_col, censored_col),
                                  *_times(b, time_col, censored_col), rng=ctx.rng,
                                  confidence=ctx.confidence, n_resamples=ctx.n_resamples)
    q = float(ctx.params["quoted_ratio"])
    low, high = fold_interval(ratio.low, ratio.high, q)
    va, vb = ctx.claim.compare["a"], ctx.claim.compare["b"]
    detail = (f"ratio of median {ctx.params['measure']} to solve {va} / {vb}: {fmt(ratio.estimate)} "
              f"[{fmt(ratio.low)}, {fmt(ratio.high)}] (bootstrap); quoted ~{fmt(q)}x. "
              f"{va} {_fmt_median(ratio.median_a)}; {vb} {_fmt_median(ratio.median_b)}. "
              f"Rule: {RULE_WORDS[ctx.params['rule']]}. Bootstrap resamples with an undefined "
              f"median: {va} {ratio.undefined_a:.0%}, {vb} {ratio.undefined_b:.0%}."
              + ("" if ratio.median_a.defined and ratio.median_b.defined else _BEYOND_BUDGET))
    return StatisticResult(
        estimate=fold(ratio.estimate, q) if math.isfinite(ratio.estimate) else math.inf,
        ci_low=low, ci_high=high, n_seeds=min(len(a), len(b)),
        statistic=f"fold difference of the speed-up (KM median {ctx.params['measure']}, "
                  f"{va} / {vb}) from the quoted ~{fmt(q)}x",
        detail=detail)


@register_statistic("single_run_plausible", roles=("a",),
                    params={"quoted_steps": REQUIRED, **_RULE})
def single_run_plausible(ctx: ClaimContext) -> StatisticResult:
    """Share of seeds beyond the quoted steps on the quote's side: min(F(q), 1 - F(q))."""
    steps_col, _, censored_col = _rule_columns(ctx)
    times, censored = _times(ctx.arms["a"], steps_col, censored_col)
    q = float(ctx.params["quoted_steps"])
    f = fraction_by_ci(times, censored, q, confidence=ctx.confidence)
    est, low, high = tail_share(f.low, f.high, f.fraction)
    detail = (f"fraction of seeds solved by the quoted ~{fmt(q)} steps: {f.fraction:.0%} "
              f"[{f.low:.0%}, {f.high:.0%}] ({f.solved_by} of {f.n} runs; {f.method}"
              + (f"; {f.censored_before} censored before it" if f.censored_before else "")
              + "). A single run like the quoted one is a plausible draw when the quote lies in "
                "the central 95% of the measured distribution: fewer than 97.5% and more than "
                "2.5% of seeds solved by it.")
    return StatisticResult(
        estimate=est, ci_low=low, ci_high=high, n_seeds=f.n,
        statistic=f"share of seeds beyond the quoted ~{fmt(q)} steps on its side, "
                  "min(F, 1 − F), F = fraction solved by then",
        detail=detail)


@register_statistic("mean_difference_exact", roles=("a", "b"), params={"column": "final_return"})
def mean_difference_exact(ctx: ClaimContext) -> StatisticResult:
    """Mean of ``column`` over a's runs minus b's; CI by inverting the permutation test."""
    a, b = _two_arm_values(ctx)
    shift = permutation_shift_ci(a, b, rng=ctx.rng, confidence=ctx.confidence)
    wins = sum((x > y) + 0.5 * (x == y) for x in a for y in b) / (len(a) * len(b))
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    how = ("all" if shift.exact else "random") + f" {shift.n_arrangements:,} arrangements"
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), {vb} "
              f"{fmt(float(b.mean()))} ({len(b)} runs); P({va} > {vb}) over pairs of runs "
              f"{wins:.2f}; permutation p-value of no difference {shift.p_two_sided:.3g}. CI: "
              f"the shifts a permutation test does not reject ({how}; valid for any number of "
              "seeds when the arms differ by a shift).")
    return StatisticResult(shift.estimate, shift.low, shift.high, min(len(a), len(b)),
                           f"difference of mean {column}, {va} − {vb}", detail)


@register_statistic("noninferiority_ratio", roles=("a", "b"),
                    params={"column": "mean_return"})
def noninferiority_ratio(ctx: ClaimContext) -> StatisticResult:
    """mean(a) / mean(b) - 1 of ``column`` with a bootstrap CI (arms resampled independently):
    a claim "a is not worse than b by more than 10%" reads ``>= -0.1`` (issue 18's validation
    of pgbench's algorithms against Stable-Baselines3). Needs a positive mean of b."""
    a, b = _two_arm_values(ctx)
    if not b.mean() > 0:
        raise NotRun(f"the mean {ctx.params['column']} of {ctx.claim.compare['b']} is "
                     f"{fmt(float(b.mean()))}; a relative margin needs a positive reference")
    ci = stats.bootstrap_ci(lambda x, y: float(np.mean(x) / np.mean(y) - 1.0), a, b,
                            rng=ctx.rng, confidence=ctx.confidence, n_resamples=ctx.n_resamples)
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), {vb} "
              f"{fmt(float(b.mean()))} ({len(b)} runs); relative difference {ci.estimate:+.1%} "
              f"[{ci.low:+.1%}, {ci.high:+.1%}] (percentile bootstrap, arms resampled "
              "independently; at 10 seeds per arm its coverage is approximate).")
    return StatisticResult(ci.estimate, ci.low, ci.high, min(len(a), len(b)),
                           f"relative difference of mean {column}, {va} / {vb} − 1", detail)
