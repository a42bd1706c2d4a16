"""The statistics of claims on runs: times to solve against a quoted figure, and comparisons of two arms.

Statistics of ``pgbench claims`` for a quoted figure and for comparisons with few seeds.

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
  test's inverted CI (``pgbench.stats.smallsample.permutation_shift_ci``): valid with few seeds,
  never a degenerate [0, 0]. P(a > b) is reported beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pgbench.claims.registry import (
    GRADIENT_STEPS_COLUMNS,
    REQUIRED,
    RULE_PARAM,
    RULE_WORDS,
    RULES,
    ClaimContext,
    NotRun,
    StatisticResult,
    fmt,
    register_statistic,
)
from pgbench.stats import bootstrap, metrics, survival
from pgbench.stats.smallsample import fraction_by_ci, permutation_shift_ci, tail_share

_BEYOND_BUDGET = (" A median beyond the runs' length cannot be settled by more seeds, only by a "
                  "larger step budget.")


def _fmt_median(m: survival.MedianTime) -> str:
    if not m.defined:
        return (f"> {fmt(m.lower_bound)} (more than half of {m.n} runs censored)")
    return (f"{fmt(m.median)} [{fmt(m.low)}, {fmt(m.high)}] ({m.n} runs, {m.n_censored} censored)")


# --------------------------------------------------------------------------- statistics
def _rule_columns(ctx: ClaimContext) -> tuple[str, str, str]:
    return RULES[ctx.params.get("rule", "running_reward")]


def _time_columns(ctx: ClaimContext) -> tuple[str, str]:
    """(time, censored) columns of the claim's rule and measure: env steps, episodes, or the
    acting network's gradient steps (censored at the run's total, like the others)."""
    steps_col, episodes_col, censored_col = _rule_columns(ctx)
    measure = ctx.params["measure"]
    if measure == "gradient_steps":
        return GRADIENT_STEPS_COLUMNS[ctx.params.get("rule", "running_reward")], censored_col
    return (steps_col if measure == "steps" else episodes_col), censored_col


def _words(measure: str) -> str:
    return measure.replace("_", " ")


def _times(runs: pd.DataFrame, time_col: str, censored_col: str) -> tuple[np.ndarray, np.ndarray]:
    """(times, censored) of the runs with a known time; NotRun when there are none."""
    if time_col not in runs.columns:  # a summary from before pgbench counted gradient steps
        raise NotRun(f"the runs table has no column {time_col}")
    times = runs[time_col].to_numpy(float)
    censored = runs[censored_col].to_numpy(bool)
    known = np.isfinite(times)
    if not known.any():
        raise NotRun(f"no run has a finite {time_col}")
    return times[known], censored[known]


def _median_of(runs: pd.DataFrame, time_col: str, censored_col: str,
               confidence: float) -> survival.MedianTime:
    return survival.km_median(*_times(runs, time_col, censored_col), confidence=confidence)







@register_statistic("km_median_fold", roles=("a",),
                    params={"quoted_steps": REQUIRED, "quoted_episodes": REQUIRED,
                            "quoted_time": "", "measure": "steps", **RULE_PARAM},
                    # its quoted figures are env steps and episodes
                    checks={"measure": (lambda v: v in ("steps", "episodes"), "steps, episodes")})
def km_medianfold(ctx: ClaimContext) -> StatisticResult:
    """Fold difference between the Kaplan–Meier median time to solve and a quoted figure.

    Estimate: max(m/q, q/m) for the measured median m (env steps, or episodes with
    ``measure: episodes``) and quoted q; 1 means spot on, 3 means three times off either way.
    CI: the image of the median's KM-band CI under the fold (1 when that CI contains q).
    Censored runs are handled by Kaplan–Meier; a median beyond every observed time is infinite.
    """
    runs = ctx.arms["a"]
    steps_col, episodes_col, censored_col = _rule_columns(ctx)
    measure = ctx.params["measure"]
    by_steps = _median_of(runs, steps_col, censored_col, ctx.confidence)
    by_episodes = _median_of(runs, episodes_col, censored_col, ctx.confidence)
    m = by_steps if measure == "steps" else by_episodes
    q = float(ctx.params["quoted_steps" if measure == "steps" else "quoted_episodes"])
    lo, hi = fold(m.low, q), fold(m.high, q)
    fold_low = 1.0 if m.low <= q <= m.high else min(lo, hi)
    rule = ctx.params["rule"]
    other_rule = "last100" if rule == "running_reward" else "running_reward"
    other = _median_of(runs, RULES[other_rule][0], RULES[other_rule][2], ctx.confidence)
    quoted_time = f", {ctx.params['quoted_time']}" if ctx.params.get("quoted_time") else ""
    detail = (f"median env steps to solve {_fmt_median(by_steps)}; episodes "
              f"{_fmt_median(by_episodes)}; quoted ~{fmt(float(ctx.params['quoted_steps']))} steps, "
              f"~{fmt(float(ctx.params['quoted_episodes']))} episodes{quoted_time}. "
              f"Rule: {RULE_WORDS[rule]}; with {RULE_WORDS[other_rule]}: median steps "
              f"{_fmt_median(other)}. CI of the median from the KM band (log-log Greenwood)."
              + ("" if m.defined else _BEYOND_BUDGET))
    return StatisticResult(
        estimate=fold(m.median, q), ci_low=fold_low, ci_high=max(lo, hi), n_seeds=m.n,
        statistic=f"fold difference of the KM median {measure} to solve from the quoted "
                  f"~{fmt(q)} (max(measured/quoted, quoted/measured))",
        detail=detail, beyond_budget=not m.defined,
        estimate_text="" if m.defined else _fold_bound(">", m.lower_bound, q))


def _median_ratio(ctx: ClaimContext) -> survival.MedianRatio:
    """Ratio of the KM median times to solve of arms a and b, by the claim's rule and measure,
    with its bootstrap CI (each arm's (time, censored) pairs resampled)."""
    time_col, censored_col = _time_columns(ctx)
    return survival.median_ratio_ci(*_times(ctx.arms["a"], time_col, censored_col),
                                    *_times(ctx.arms["b"], time_col, censored_col), rng=ctx.rng,
                                    confidence=ctx.confidence, n_resamples=ctx.n_resamples)


def _ratio_bound(ratio: survival.MedianRatio) -> tuple[str, float] | None:
    """What the data say of the ratio of medians a / b when one median lies past its runs'
    length: ``("<", x)`` when b's does (b's median > its longest run), ``(">", x)`` when a's
    does; None when both are defined, both undefined, or the defined one is 0.

    >>> m = lambda med, bound: survival.MedianTime(med, med, med, bound, 0.95, 10, 0)
    >>> r = survival.MedianRatio(0.0, 0.0, 1.4, 0.95, m(65e3, 65e3), m(math.inf, 50e3), 0.0, 1.0)
    >>> _ratio_bound(r)
    ('<', 1.3)
    """
    a, b = ratio.median_a, ratio.median_b
    if a.defined and not b.defined and b.lower_bound > 0:
        return "<", a.median / b.lower_bound
    if b.defined and not a.defined and b.median > 0:
        return ">", a.lower_bound / b.median
    return None  # (a time of 0 bounds nothing: the ratio is 0 or inf outright)


def _bound_text(op: str, value: float) -> str:
    """``op value`` rounded outward to three significant figures, so that the shown bound is
    never tighter than the data's: ``< 1.2949`` reads ``< 1.3``, ``> 3.7549`` reads ``> 3.75``.

    >>> _bound_text("<", 1.2949), _bound_text(">", 3.7549), _bound_text(">", 10.35)
    ('< 1.3', '> 3.75', '> 10.3')
    """
    if value > 0 and math.isfinite(value):
        scale = 10.0 ** (math.floor(math.log10(value)) - 2)
        value = (math.ceil if op == "<" else math.floor)(round(value / scale, 9)) * scale
    return f"{op} {fmt(value)}"


def _fold_bound(op: str, value: float, quoted: float) -> str:
    """The fold difference from ``quoted`` of a value known only as ``op value``: a lower bound
    when the value lies beyond ``quoted`` on the bound's side, else ``≥ 1`` (it can be 1).

    >>> _fold_bound(">", 3e6, 8e5), _fold_bound("<", 1e5, 5e5), _fold_bound(">", 1e5, 5e5)
    ('> 3.75', '> 5', '≥ 1')
    """
    if quoted > 0 and op == ">" and value >= quoted:
        return _bound_text(">", value / quoted)
    if quoted > 0 and op == "<" and 0 < value <= quoted:
        return _bound_text(">", quoted / value)
    return "≥ 1"  # the value may lie at the quote: only the fold's floor is known


def _both_defined(ratio: survival.MedianRatio) -> bool:
    """Whether both medians lie within the runs' length (else the ratio is only a bound)."""
    return ratio.median_a.defined and ratio.median_b.defined


@register_statistic("km_median_ratio", roles=("a", "b"),
                    params={"quoted_ratio": None, "measure": "steps", **RULE_PARAM})
def km_median_ratio(ctx: ClaimContext) -> StatisticResult:
    """Ratio of Kaplan–Meier median times to solve, a over b (a speed-up of b when > 1).

    CI: bootstrap over each arm's (time, censored) pairs, see ``survival.median_ratio_ci``; an
    undefined resample median (more than half censored) only widens the interval.
    """
    a, b = ctx.arms["a"], ctx.arms["b"]
    ratio = _median_ratio(ctx)
    va, vb = ctx.claim.compare["a"], ctx.claim.compare["b"]
    quoted = ctx.params.get("quoted_ratio")
    detail = (f"median {_words(ctx.params['measure'])} to solve: {va} {_fmt_median(ratio.median_a)}; "
              f"{vb} {_fmt_median(ratio.median_b)}"
              + (f"; quoted ~{fmt(float(quoted))}x" if quoted else "")
              + f". Rule: {RULE_WORDS[ctx.params['rule']]}. Bootstrap resamples with an undefined "
                f"median: {va} {ratio.undefined_a:.0%}, {vb} {ratio.undefined_b:.0%}."
              + ("" if _both_defined(ratio) else _BEYOND_BUDGET))
    bound = _ratio_bound(ratio)
    return StatisticResult(
        estimate=ratio.estimate, ci_low=ratio.low, ci_high=ratio.high,
        n_seeds=min(len(a), len(b)),
        statistic=f"ratio of KM median {_words(ctx.params['measure'])} to solve, {va} / {vb}",
        detail=detail, beyond_budget=not _both_defined(ratio),
        estimate_text=_bound_text(*bound) if bound else "")


def _two_arm_values(ctx: ClaimContext) -> tuple[np.ndarray, np.ndarray]:
    column = ctx.params["column"]
    a = ctx.arms["a"][column].to_numpy(float)
    b = ctx.arms["b"][column].to_numpy(float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        raise NotRun(f"no finite {column} in one of the arms")
    return a, b


@register_statistic("mean_difference", roles=("a", "b"), params={"column": "final_return"})
def mean_difference(ctx: ClaimContext) -> StatisticResult:
    """Mean of ``column`` over a's runs minus b's; bootstrap CI, arms resampled independently."""
    a, b = _two_arm_values(ctx)
    diff = bootstrap.difference_of_means_ci(a, b, rng=ctx.rng, confidence=ctx.confidence,
                                        n_resamples=ctx.n_resamples)
    poi = bootstrap.probability_of_improvement_ci(a, b, rng=ctx.rng, confidence=ctx.confidence,
                                              n_resamples=ctx.n_resamples)
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), {vb} "
              f"{fmt(float(b.mean()))} ({len(b)} runs); IQM {fmt(metrics.iqm(a))} vs {fmt(metrics.iqm(b))}; "
              f"P({va} > {vb}) = {poi.estimate:.2f} [{poi.low:.2f}, {poi.high:.2f}]")
    return StatisticResult(diff.estimate, diff.low, diff.high, min(len(a), len(b)),
                           f"difference of mean {column}, {va} − {vb}", detail)


@register_statistic("probability_of_improvement", roles=("a", "b"), params={"column": "final_return"})
def probability_of_improvement(ctx: ClaimContext) -> StatisticResult:
    """P(a's ``column`` > b's) + 0.5 P(equal) over pairs of runs; bootstrap CI."""
    a, b = _two_arm_values(ctx)
    poi = bootstrap.probability_of_improvement_ci(a, b, rng=ctx.rng, confidence=ctx.confidence,
                                              n_resamples=ctx.n_resamples)
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), "
              f"{vb} {fmt(float(b.mean()))} ({len(b)} runs)")
    return StatisticResult(poi.estimate, poi.low, poi.high, min(len(a), len(b)),
                           f"probability that a {va} run beats a {vb} run on {column}", detail)


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
                    params={"quoted_ratio": REQUIRED, "measure": "steps", **RULE_PARAM})
def km_median_ratio_fold(ctx: ClaimContext) -> StatisticResult:
    """Fold difference of the ratio of KM median times to solve (a / b) from a quoted ratio."""
    a, b = ctx.arms["a"], ctx.arms["b"]
    ratio = _median_ratio(ctx)
    q = float(ctx.params["quoted_ratio"])
    bound = _ratio_bound(ratio)
    low, high = fold_interval(ratio.low, ratio.high, q)
    va, vb = ctx.claim.compare["a"], ctx.claim.compare["b"]
    detail = (f"ratio of median {_words(ctx.params['measure'])} to solve {va} / {vb}: {fmt(ratio.estimate)} "
              f"[{fmt(ratio.low)}, {fmt(ratio.high)}] (bootstrap); quoted ~{fmt(q)}x. "
              f"{va} {_fmt_median(ratio.median_a)}; {vb} {_fmt_median(ratio.median_b)}. "
              f"Rule: {RULE_WORDS[ctx.params['rule']]}. Bootstrap resamples with an undefined "
              f"median: {va} {ratio.undefined_a:.0%}, {vb} {ratio.undefined_b:.0%}."
              + ("" if _both_defined(ratio) else _BEYOND_BUDGET))
    return StatisticResult(
        estimate=fold(ratio.estimate, q) if math.isfinite(ratio.estimate) else math.inf,
        ci_low=low, ci_high=high, n_seeds=min(len(a), len(b)),
        statistic=f"fold difference of the speed-up (KM median {_words(ctx.params['measure'])}, "
                  f"{va} / {vb}) from the quoted ~{fmt(q)}x",
        detail=detail, beyond_budget=not _both_defined(ratio),
        # both medians past their runs: the ratio, so its fold, is unknown (not infinite)
        estimate_text=_fold_bound(*bound, q) if bound else "" if _both_defined(ratio) else "—")


@register_statistic("single_run_plausible", roles=("a",),
                    params={"quoted_steps": REQUIRED, **RULE_PARAM})
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
    ci = bootstrap.bootstrap_ci(lambda x, y: float(np.mean(x) / np.mean(y) - 1.0), a, b,
                            rng=ctx.rng, confidence=ctx.confidence, n_resamples=ctx.n_resamples)
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), {vb} "
              f"{fmt(float(b.mean()))} ({len(b)} runs); relative difference {ci.estimate:+.1%} "
              f"[{ci.low:+.1%}, {ci.high:+.1%}] (percentile bootstrap, arms resampled "
              "independently; at 10 seeds per arm its coverage is approximate).")
    return StatisticResult(ci.estimate, ci.low, ci.high, min(len(a), len(b)),
                           f"relative difference of mean {column}, {va} / {vb} − 1", detail)
