"""What a claim statistic receives and returns, the registry of statistics by name, and the
one verdict rule for every claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pgbench.claims.model import Claim


#: The two rules of "solved": the runs table's (steps, episodes, censored) columns of each.
RULES = {
    "running_reward": ("steps_to_threshold", "episodes_to_threshold", "censored"),
    "last100": ("steps_to_threshold_last100", "episodes_to_threshold_last100", "censored_last100"),
}

#: With ``measure: gradient_steps``: the runs table's column of each rule (censored as above).
GRADIENT_STEPS_COLUMNS = {"running_reward": "gradient_steps_to_threshold",
                          "last100": "gradient_steps_to_threshold_last100"}

RULE_WORDS = {"running_reward": "running reward ≥ threshold (the sources' rule)",
              "last100": "mean of the last 100 returns ≥ threshold"}

RULE_PARAM = {"rule": "running_reward"}

PARAM_CHECKS = {
    "rule": (lambda v: v in RULES, ", ".join(RULES)),
    "measure": (lambda v: v in ("steps", "episodes", "gradient_steps"), "steps, episodes, gradient_steps"),
    "quoted_steps": (lambda v: isinstance(v, (int, float)) and v > 0, "a positive number"),
    "quoted_episodes": (lambda v: isinstance(v, (int, float)) and v > 0, "a positive number"),
    "column": (lambda v: v in ("final_return", "mean_return"), "final_return, mean_return"),
}


@dataclass(frozen=True)
class StatisticResult:
    """What a statistic measured. ``statistic`` is plain words for the table; ``n_seeds`` the
    seeds per compared arm (the smallest arm); ``setting`` overrides the row's setting label;
    ``beyond_budget``: a median lies past the runs' length, so the estimate is only a bound and
    more seeds cannot settle the verdict (only a larger step budget can); ``estimate_text`` is
    then that bound as the report shows it (``> 3.75``), where the data give one."""

    estimate: float
    ci_low: float
    ci_high: float
    n_seeds: int
    statistic: str
    detail: str = ""
    setting: str | None = None
    beyond_budget: bool = False
    estimate_text: str = ""


class NotRun(Exception):
    """Raised by a statistic that cannot be computed on this input; the message says why."""


@dataclass(frozen=True)
class ClaimContext:
    """The input of a statistic for one row: the claim, the runs of each compared arm (role ->
    runs.parquet rows) or the claim's table, and how to draw."""

    claim: Claim
    env: str
    setting: str
    arms: dict[str, pd.DataFrame]
    table: pd.DataFrame | None
    rng: np.random.Generator
    confidence: float
    n_resamples: int

    @property
    def params(self) -> dict[str, Any]:
        return self.claim.params


@dataclass(frozen=True)
class StatisticSpec:
    """A registered statistic: the function, the roles it compares, its parameters with
    defaults (``REQUIRED`` for none), the table it reads, and its own checks of parameter values
    where they are narrower than ``PARAM_CHECKS``'."""

    function: Callable[[ClaimContext], StatisticResult | list[StatisticResult]]
    roles: tuple[str, ...] | None
    params: dict[str, Any] | None
    table: str
    checks: dict[str, tuple[Callable[[Any], bool], str]]


REQUIRED = object()


#: name -> StatisticSpec
STATISTICS: dict[str, StatisticSpec] = {}


def register_statistic(name: str, *, roles: tuple[str, ...] | None = ("a",),
                       params: dict[str, Any] | None = None, table: str = "runs",
                       checks: dict[str, tuple[Callable[[Any], bool], str]] | None = None):
    """Decorator: register ``fn(ctx: ClaimContext) -> StatisticResult | list`` under ``name``.

    ``roles``: the compare roles the statistic needs (None: any). ``params``: accepted parameter
    names -> default, ``REQUIRED`` when there is none (None: accept anything). ``table``: the
    summary table it reads by default. ``checks``: parameter -> (test, accepted values), in
    place of ``PARAM_CHECKS``' entry for this statistic.
    """
    def decorate(fn):
        STATISTICS[name] = StatisticSpec(fn, roles, params, table, dict(checks or {}))
        return fn
    return decorate


# --------------------------------------------------------------------------- verdicts
def verdict(ci_low: float, ci_high: float, threshold: float, direction: str) -> str:
    """Reproduced / not reproduced / inconclusive from a CI (see the module docstring).

    >>> verdict(3.5, 6.0, 3.0, ">="), verdict(1.0, 3.0, 3.0, ">="), verdict(2.0, 4.0, 3.0, ">=")
    ('reproduced', 'not reproduced', 'inconclusive')
    """
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive"
    if direction == ">=":
        if ci_low > threshold:
            return "reproduced"
        return "not reproduced" if ci_high <= threshold else "inconclusive"
    if ci_high < threshold:
        return "reproduced"
    return "not reproduced" if ci_low >= threshold else "inconclusive"


def holds_for(verdict_: str, ci_low: float, ci_high: float, direction: str,
              name: str = "threshold") -> str:
    """The range of the claim's threshold (its tolerance) over which this verdict holds.

    ``<=`` claims are reproduced for any threshold above the CI and not reproduced for any at or
    below its low end; ``>=`` claims the mirror image (see ``verdict``).

    >>> holds_for("reproduced", 1.2, 2.1, "<=", "factor")
    'for any factor > 2.1'
    >>> holds_for("inconclusive", 0.01, 0.2, ">=", "tail share")
    'for any tail share in [0.01, 0.2)'
    """
    if verdict_ not in ("reproduced", "not reproduced", "inconclusive") or (
            math.isnan(ci_low) or math.isnan(ci_high)):
        return ""
    lo, hi = fmt(ci_low), fmt(ci_high)
    if direction == "<=":
        return {"reproduced": f"for any {name} > {hi}", "not reproduced": f"for any {name} ≤ {lo}",
                "inconclusive": f"for any {name} in ({lo}, {hi}]"}[verdict_]
    return {"reproduced": f"for any {name} < {lo}", "not reproduced": f"for any {name} ≥ {hi}",
            "inconclusive": f"for any {name} in [{lo}, {hi})"}[verdict_]




# --------------------------------------------------------------------------- formatting
def fmt(x: float) -> str:
    """Compact number for details: 812345 -> '812k', 1.5e6 -> '1.50M', 5.125 -> '5.12'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.2f}M"
    if a >= 1e4:
        return f"{x / 1e3:.0f}k"
    if a >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"
