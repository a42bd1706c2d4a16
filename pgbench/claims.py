"""``pgbench claims``: evaluate the sources' claims (``claims.yaml``) on a summary directory.

A claim is data: which runs are compared (suite, env, variants), which statistic, which
direction and threshold. A statistic is a function registered by name in ``STATISTICS``; it gets
a ``ClaimContext`` (the runs of each compared arm, or a summary table, a seeded Generator, the
confidence level) and returns a ``StatisticResult`` (estimate, CI, seeds, words). The verdict is
then the same rule for every claim:

- reproduced: the whole CI is strictly on the claim's side of the threshold;
- not reproduced: the whole CI is on the other side (touching the threshold counts as this side);
- inconclusive: the CI straddles the threshold; ``seeds_needed`` estimates how many seeds per arm
  would settle it (``pgbench.stats.seeds_needed``);
- not run: the suite, env, variant or table is not in the summary, or the statistic is not
  available; ``detail`` says which.

Other modules add statistics with ``@register_statistic("name")``; the gradient statistics come
from ``pgbench.gradclaims`` (imported at the end of this module if it exists). A statistic for a
``table:`` claim receives ``ctx.table`` (that table, restricted to the claim's env when it has an
``env`` column) and ``ctx.claim.params``; it may return a list of results, each with its own
``setting`` label, e.g. one per snapshot.

Every (claim, env, setting) row draws from its own Generator, seeded from ``--seed`` and the
row's identity, so one summary always gives the same table and adding a claim changes no other row.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import itertools
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from pgbench import stats
from pgbench.aggregate import parse_setting_label, setting_label
from pgbench.errors import UserError
from pgbench.io import write_parquet_atomic

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")
DIRECTIONS = (">=", "<=")
#: Summary tables a claim may read (files SUMMARY/<name>.parquet).
TABLES = ("runs", "gradstudy", "gradstudy_pairs", "gradstudy_layers")
#: Time-to-threshold rules of runs.parquet: rule -> (steps, episodes, censored) columns.
RULES = {
    "running_reward": ("steps_to_threshold", "episodes_to_threshold", "censored"),
    "last100": ("steps_to_threshold_last100", "episodes_to_threshold_last100", "censored_last100"),
}
RULE_WORDS = {"running_reward": "running reward ≥ threshold (the sources' rule)",
              "last100": "mean of the last 100 returns ≥ threshold"}
#: Statistics named by claims.yaml but registered by another module; until it is importable
#: their claims are `not run`.
DEFERRED_STATISTICS: dict[str, str] = {
    "gradient_mean_difference": "pgbench.gradclaims",
    "gradient_variance_ratio": "pgbench.gradclaims",
    # issue 19: needs runs.parquet's gradient_steps_to_threshold (docs/contracts.md, proposed)
    "km_median_ratio_gradient_steps": "the gradient-step columns of issue 19 (not merged yet)",
    "noninferiority_ratio": "pgbench.claimstats on branch algos18 (issue 18)",
}
#: Variants a claim may name beside those in pgbench.variants.VARIANTS.
EXTRA_VARIANTS: tuple[str, ...] = ()

CLAIMS_COLUMNS: dict[str, str] = {
    "claim_id": "str", "source": "str", "quote": "str", "suite": "str", "env": "str",
    "setting": "str", "statistic": "str", "estimate": "float64", "ci_low": "float64",
    "ci_high": "float64", "confidence": "float64", "threshold": "float64", "direction": "str",
    "verdict": "str", "n_seeds": "int64", "seeds_needed": "float64", "detail": "str",
    "test": "str", "quote_kind": "str", "tolerance": "str", "holds_for": "str",
}
#: How a claim's quote relates to it: the source states it (``quote``), or the claim is read
#: from the quoted sentence without being stated there (``implied``, shown as "implied by").
QUOTE_KINDS = ("quote", "implied")

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SOURCE = re.compile(r"^\d{3}_[0-9a-f]{16}\.txt$")
_ROLES = ("a", "b")
_REQUIRED = ("id", "source", "quote", "suite", "env", "statistic", "direction", "threshold")
_OPTIONAL = ("statement", "compare", "fixed", "table", "params", "test", "quote_kind",
             "tolerance", "tolerance_name", "also")
#: Fields an entry of ``also`` (another test of the same claim) may set.
_ALSO_FIELDS = ("test", "statistic", "params", "direction", "threshold", "tolerance",
                "tolerance_name", "compare", "fixed", "table")


# --------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class Claim:
    """One claim of claims.yaml, validated. ``envs == ("*",)`` means every env of the suite."""

    id: str
    source: str
    quote: str
    suite: str
    envs: tuple[str, ...]
    statistic: str
    direction: str
    threshold: float
    statement: str = ""
    compare: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    table: str = "runs"
    params: dict[str, Any] = field(default_factory=dict)
    test: str = "main"
    quote_kind: str = "quote"
    tolerance: str = ""
    tolerance_name: str = "threshold"


@dataclass(frozen=True)
class StatisticResult:
    """What a statistic measured. ``statistic`` is plain words for the table; ``n_seeds`` the
    seeds per compared arm (the smallest arm); ``setting`` overrides the row's setting label."""

    estimate: float
    ci_low: float
    ci_high: float
    n_seeds: int
    statistic: str
    detail: str = ""
    setting: str | None = None


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
    defaults (``REQUIRED`` for none) and the table it reads."""

    function: Callable[[ClaimContext], StatisticResult | list[StatisticResult]]
    roles: tuple[str, ...] | None
    params: dict[str, Any] | None
    table: str


REQUIRED = object()
#: name -> StatisticSpec
STATISTICS: dict[str, StatisticSpec] = {}


def register_statistic(name: str, *, roles: tuple[str, ...] | None = ("a",),
                       params: dict[str, Any] | None = None, table: str = "runs"):
    """Decorator: register ``fn(ctx: ClaimContext) -> StatisticResult | list`` under ``name``.

    ``roles``: the compare roles the statistic needs (None: any). ``params``: accepted parameter
    names -> default, ``REQUIRED`` when there is none (None: accept anything). ``table``: the
    summary table it reads by default.
    """
    def decorate(fn):
        STATISTICS[name] = StatisticSpec(fn, roles, params, table)
        return fn
    return decorate


# --------------------------------------------------------------------------- loading
def default_claims_path() -> Path:
    return Path(str(importlib.resources.files("pgbench").joinpath("claims.yaml")))


def known_variants() -> tuple[str, ...]:
    from pgbench.variants import VARIANTS

    return tuple(VARIANTS) + EXTRA_VARIANTS


def _bad(claim_id: str, field_name: str, problem: str, accepted: str) -> UserError:
    return UserError(f"claim {claim_id!r}: field {field_name!r} {problem}; accepted: {accepted}")


def parse_claim(raw: Any, index: int) -> Claim:
    """One claim from its YAML mapping; UserError naming the claim and field on any problem."""
    if not isinstance(raw, dict):
        raise UserError(f"claim #{index + 1} is a {type(raw).__name__}, not a mapping of fields; "
                        f"accepted fields: {', '.join(_REQUIRED + _OPTIONAL)}")
    cid = raw.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise _bad(str(cid) if cid is not None else f"#{index + 1}", "id", f"is {cid!r}",
                   "lower-case words and digits joined by '-', e.g. slides-speedup")
    unknown = sorted(set(raw) - set(_REQUIRED + _OPTIONAL))
    if unknown:
        raise _bad(cid, unknown[0], "is not a claim field", ", ".join(_REQUIRED + _OPTIONAL))
    for name in _REQUIRED:
        if name not in raw or raw[name] is None:
            raise _bad(cid, name, "is missing", "see the comments at the top of claims.yaml")

    def text(name: str, pattern: re.Pattern | None = None, accepted: str = "a non-empty string") -> str:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or (pattern and not pattern.match(value)):
            raise _bad(cid, name, f"is {value!r}", accepted)
        return " ".join(value.split())

    source = text("source", _SOURCE, "a file name in shared/sources, e.g. 001_784bf18d2f77e7fb.txt")
    quote = text("quote")
    suite = text("suite")
    statement = text("statement") if raw.get("statement") is not None else ""
    test = text("test") if raw.get("test") is not None else "main"
    tolerance = text("tolerance") if raw.get("tolerance") is not None else ""
    tolerance_name = text("tolerance_name") if raw.get("tolerance_name") is not None else "threshold"
    quote_kind = raw.get("quote_kind", "quote")
    if quote_kind not in QUOTE_KINDS:
        raise _bad(cid, "quote_kind", f"is {quote_kind!r}", ", ".join(QUOTE_KINDS))

    env = raw["env"]
    envs = (env,) if isinstance(env, str) else tuple(env) if isinstance(env, list) else None
    if not envs or any(not isinstance(e, str) or not e for e in envs) or ("*" in envs and len(envs) > 1):
        raise _bad(cid, "env", f"is {env!r}", 'an env id, a list of env ids, or "*" (every env of the suite)')

    direction = raw["direction"]
    if direction not in DIRECTIONS:
        raise _bad(cid, "direction", f"is {direction!r}", ", ".join(DIRECTIONS))
    threshold = raw["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise _bad(cid, "threshold", f"is {threshold!r}", "a finite number")

    statistic = raw["statistic"]
    names = sorted(set(STATISTICS) | set(DEFERRED_STATISTICS))
    if statistic not in names:
        raise _bad(cid, "statistic", f"is {statistic!r}, which is not registered", ", ".join(names))
    spec = STATISTICS.get(statistic)

    table = raw.get("table", spec.table if spec else "runs")
    if table not in TABLES:
        raise _bad(cid, "table", f"is {table!r}", ", ".join(TABLES))

    compare = raw.get("compare") or {}
    if not isinstance(compare, dict):
        raise _bad(cid, "compare", f"is {compare!r}",
                   "a mapping of role (a, b) to variant, e.g. {a: vanilla}")
    variants = known_variants()
    for role, variant in compare.items():
        if role not in _ROLES:
            raise _bad(cid, "compare", f"has role {role!r}", ", ".join(_ROLES))
        if variant not in variants:
            raise _bad(cid, f"compare.{role}", f"names unknown variant {variant!r}", ", ".join(variants))
    if table == "runs" and "a" not in compare:
        raise _bad(cid, "compare", "needs role 'a' (the runs a claim on the runs table is about)",
                   "{a: VARIANT} or {a: VARIANT, b: VARIANT}")
    roles_needed = spec.roles if spec is not None and table == "runs" else None
    if roles_needed is not None and tuple(sorted(compare)) != roles_needed:
        raise _bad(cid, "compare", f"has roles {', '.join(sorted(compare))} but statistic "
                   f"{statistic!r} compares {', '.join(spec.roles)}", ", ".join(spec.roles))

    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise _bad(cid, "fixed", f"is {fixed!r}", "a mapping of setting to value, e.g. {dropout: 0.6}")
    fixed = {str(k): str(v) for k, v in fixed.items()}

    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise _bad(cid, "params", f"is {params!r}", "a mapping of parameter to value")
    if spec is not None and spec.params is not None:
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise _bad(cid, f"params.{unknown[0]}", f"is not a parameter of {statistic!r}",
                       ", ".join(spec.params) or "none")
        missing = [k for k, v in spec.params.items() if v is REQUIRED and k not in params]
        if missing:
            raise _bad(cid, f"params.{missing[0]}", "is missing", f"a value for {missing[0]}")
        params = {**{k: v for k, v in spec.params.items() if v is not REQUIRED}, **params}
        for key, check in _PARAM_CHECKS.items():
            if key in params and not check[0](params[key]):
                raise _bad(cid, f"params.{key}", f"is {params[key]!r}", check[1])

    return Claim(id=cid, source=source, quote=quote, suite=suite, envs=envs, statistic=statistic,
                 direction=direction, threshold=float(threshold), statement=statement,
                 compare=dict(compare), fixed=fixed, table=table, params=dict(params),
                 test=test, quote_kind=quote_kind, tolerance=tolerance,
                 tolerance_name=tolerance_name)


def parse_claim_tests(raw: Any, index: int) -> list[Claim]:
    """A claim and the other tests of it listed under ``also`` (each a Claim with the same id
    and its own ``test`` name); UserError naming the claim and field on any problem."""
    main = parse_claim({k: v for k, v in raw.items() if k != "also"} if isinstance(raw, dict)
                       else raw, index)
    also = raw.get("also") or []
    if not isinstance(also, list):
        raise _bad(main.id, "also", f"is {also!r}", "a list of tests, each a mapping with "
                   + ", ".join(_ALSO_FIELDS))
    out = [main]
    for item in also:
        if not isinstance(item, dict) or "test" not in item:
            raise _bad(main.id, "also", f"has entry {item!r}", "a mapping with a 'test' name and "
                       "any of " + ", ".join(_ALSO_FIELDS))
        unknown = sorted(set(item) - set(_ALSO_FIELDS))
        if unknown:
            raise _bad(main.id, f"also.{unknown[0]}", "is not a field of a test", ", ".join(_ALSO_FIELDS))
        base = {k: v for k, v in raw.items() if k not in ("also", "params", "tolerance",
                                                          "tolerance_name", "test")}
        out.append(parse_claim({**base, **item}, index))
    tests = [c.test for c in out]
    if len(set(tests)) != len(tests):
        raise _bad(main.id, "also", f"repeats a test name ({', '.join(tests)})", "distinct test names")
    return out


def claims_first_test(claims: list[Claim], claim_id: str) -> str:
    """The test name of a claim's first (main) entry."""
    return next(c.test for c in claims if c.id == claim_id)


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """The claims of ``path`` (default: the packaged claims.yaml), validated."""
    import yaml

    path = Path(path) if path is not None else default_claims_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read claims file {path} ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise UserError(f"claims file {path} is not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("claims"), list):
        raise UserError(f"claims file {path} must be a mapping with a list under 'claims'")
    claims = [c for i, item in enumerate(raw["claims"]) for c in parse_claim_tests(item, i)]
    ids = [c.id for c in claims if c.test == claims_first_test(claims, c.id)]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise _bad(repeated[0], "id", "is used by more than one claim", "unique ids")
    return claims


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


def row_rng(seed: int, *identity: str) -> np.random.Generator:
    """A Generator for one claims row, from the user's seed and the row's identity (not order)."""
    digest = hashlib.sha256("\x1f".join(identity).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


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


_BEYOND_BUDGET = (" A median beyond the runs' length cannot be settled by more seeds, only by a "
                  "larger step budget.")


def _fmt_median(m: stats.MedianTime) -> str:
    if not m.defined:
        return (f"> {fmt(m.lower_bound)} (more than half of {m.n} runs censored)")
    return (f"{fmt(m.median)} [{fmt(m.low)}, {fmt(m.high)}] ({m.n} runs, {m.n_censored} censored)")


# --------------------------------------------------------------------------- statistics
def _rule_columns(ctx: ClaimContext) -> tuple[str, str, str]:
    return RULES[ctx.params.get("rule", "running_reward")]


def _times(runs: pd.DataFrame, time_col: str, censored_col: str) -> tuple[np.ndarray, np.ndarray]:
    """(times, censored) of the runs with a known time; NotRun when there are none."""
    times = runs[time_col].to_numpy(float)
    censored = runs[censored_col].to_numpy(bool)
    known = np.isfinite(times)
    if not known.any():
        raise NotRun(f"no run has a finite {time_col}")
    return times[known], censored[known]


def _median_of(runs: pd.DataFrame, time_col: str, censored_col: str, confidence: float) -> stats.MedianTime:
    return stats.km_median(*_times(runs, time_col, censored_col), confidence=confidence)


def _fold(value: float, quoted: float) -> float:
    """Fold difference max(v/q, q/v) >= 1: how many times off ``value`` is from ``quoted``."""
    if value <= 0:
        return math.inf
    return max(value / quoted, quoted / value)


_RULE_PARAM = {"rule": "running_reward"}
_PARAM_CHECKS = {
    "rule": (lambda v: v in RULES, ", ".join(RULES)),
    "measure": (lambda v: v in ("steps", "episodes"), "steps, episodes"),
    "quoted_steps": (lambda v: isinstance(v, (int, float)) and v > 0, "a positive number"),
    "quoted_episodes": (lambda v: isinstance(v, (int, float)) and v > 0, "a positive number"),
    "column": (lambda v: v in ("final_return",), "final_return"),
}


@register_statistic("km_median_fold", roles=("a",),
                    params={"quoted_steps": REQUIRED, "quoted_episodes": REQUIRED,
                            "quoted_time": "", "measure": "steps", **_RULE_PARAM})
def km_median_fold(ctx: ClaimContext) -> StatisticResult:
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
    lo, hi = _fold(m.low, q), _fold(m.high, q)
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
        estimate=_fold(m.median, q), ci_low=fold_low, ci_high=max(lo, hi), n_seeds=m.n,
        statistic=f"fold difference of the KM median {measure} to solve from the quoted "
                  f"~{fmt(q)} (max(measured/quoted, quoted/measured))",
        detail=detail)


@register_statistic("km_median_ratio", roles=("a", "b"),
                    params={"quoted_ratio": None, "measure": "steps", **_RULE_PARAM})
def km_median_ratio(ctx: ClaimContext) -> StatisticResult:
    """Ratio of Kaplan–Meier median times to solve, a over b (a speed-up of b when > 1).

    CI: bootstrap over each arm's (time, censored) pairs, see ``stats.median_ratio_ci``; an
    undefined resample median (more than half censored) only widens the interval.
    """
    steps_col, episodes_col, censored_col = _rule_columns(ctx)
    time_col = steps_col if ctx.params["measure"] == "steps" else episodes_col
    a, b = ctx.arms["a"], ctx.arms["b"]
    ratio = stats.median_ratio_ci(*_times(a, time_col, censored_col), *_times(b, time_col, censored_col),
                                  rng=ctx.rng, confidence=ctx.confidence, n_resamples=ctx.n_resamples)
    va, vb = ctx.claim.compare["a"], ctx.claim.compare["b"]
    quoted = ctx.params.get("quoted_ratio")
    detail = (f"median {ctx.params['measure']} to solve: {va} {_fmt_median(ratio.median_a)}; "
              f"{vb} {_fmt_median(ratio.median_b)}"
              + (f"; quoted ~{fmt(float(quoted))}x" if quoted else "")
              + f". Rule: {RULE_WORDS[ctx.params['rule']]}. Bootstrap resamples with an undefined "
                f"median: {va} {ratio.undefined_a:.0%}, {vb} {ratio.undefined_b:.0%}."
              + ("" if ratio.median_a.defined and ratio.median_b.defined else _BEYOND_BUDGET))
    return StatisticResult(
        estimate=ratio.estimate, ci_low=ratio.low, ci_high=ratio.high,
        n_seeds=min(len(a), len(b)),
        statistic=f"ratio of KM median {ctx.params['measure']} to solve, {va} / {vb}",
        detail=detail)


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
    diff = stats.difference_of_means_ci(a, b, rng=ctx.rng, confidence=ctx.confidence,
                                        n_resamples=ctx.n_resamples)
    poi = stats.probability_of_improvement_ci(a, b, rng=ctx.rng, confidence=ctx.confidence,
                                              n_resamples=ctx.n_resamples)
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), {vb} "
              f"{fmt(float(b.mean()))} ({len(b)} runs); IQM {fmt(stats.iqm(a))} vs {fmt(stats.iqm(b))}; "
              f"P({va} > {vb}) = {poi.estimate:.2f} [{poi.low:.2f}, {poi.high:.2f}]")
    return StatisticResult(diff.estimate, diff.low, diff.high, min(len(a), len(b)),
                           f"difference of mean {column}, {va} − {vb}", detail)


@register_statistic("probability_of_improvement", roles=("a", "b"), params={"column": "final_return"})
def probability_of_improvement(ctx: ClaimContext) -> StatisticResult:
    """P(a's ``column`` > b's) + 0.5 P(equal) over pairs of runs; bootstrap CI."""
    a, b = _two_arm_values(ctx)
    poi = stats.probability_of_improvement_ci(a, b, rng=ctx.rng, confidence=ctx.confidence,
                                              n_resamples=ctx.n_resamples)
    va, vb, column = ctx.claim.compare["a"], ctx.claim.compare["b"], ctx.params["column"]
    detail = (f"mean {column}: {va} {fmt(float(a.mean()))} ({len(a)} runs), "
              f"{vb} {fmt(float(b.mean()))} ({len(b)} runs)")
    return StatisticResult(poi.estimate, poi.low, poi.high, min(len(a), len(b)),
                           f"probability that a {va} run beats a {vb} run on {column}", detail)


# --------------------------------------------------------------------------- evaluation
class Summary:
    """The tables of a summary directory, each read once when first asked for."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"summary directory {self.path} does not exist; make it with "
                            "`pgbench aggregate RUN_DIRS --out SUMMARY`")
        self._tables: dict[str, pd.DataFrame | None] = {}

    def table(self, name: str) -> pd.DataFrame | None:
        """SUMMARY/<name>.parquet, or None when the file is absent; UserError when unreadable."""
        if name not in self._tables:
            path = self.path / f"{name}.parquet"
            if not path.is_file():
                self._tables[name] = None
            else:
                try:
                    self._tables[name] = pd.read_parquet(path)
                except Exception as err:  # pyarrow raises several types for damaged files
                    raise UserError(f"{path} is not a readable Parquet file ({err})") from None
        return self._tables[name]

    def runs(self) -> pd.DataFrame:
        runs = self.table("runs")
        if runs is None:
            raise UserError(f"{self.path / 'runs.parquet'} not found; expected a summary directory "
                            "written by `pgbench aggregate`")
        needed = ["suite", "env", "variant", "setting", "seed", "final_return",
                  *itertools.chain.from_iterable(RULES.values())]
        missing = [c for c in needed if c not in runs.columns]
        if missing:
            raise UserError(f"{self.path / 'runs.parquet'} lacks columns {', '.join(missing)}; "
                            "expected the runs table of docs/contracts.md")
        return runs


def _consistent(settings: list[dict[str, str]]) -> dict[str, str] | None:
    """The union of setting dicts that agree on every key they share, else None."""
    merged: dict[str, str] = {}
    for s in settings:
        for k, v in s.items():
            if merged.setdefault(k, v) != v:
                return None
    return merged


Arms = dict[str, pd.DataFrame]  # compare role -> that arm's runs.parquet rows


def setting_rows(claim: Claim, runs_of_env: pd.DataFrame) -> tuple[list[tuple[str, Arms]], str]:
    """[(setting label, role -> runs)] for one env, and why there are none when empty.

    Each compared variant's runs are grouped by setting; arms are paired on the settings they
    share, and ``claim.fixed`` keeps only runs with those values.
    """
    per_role: dict[str, list[tuple[dict[str, str], pd.DataFrame]]] = {}
    for role, variant in sorted(claim.compare.items()):
        mine = runs_of_env[runs_of_env["variant"] == variant]
        if mine.empty:
            return [], f"no runs of variant {variant!r}"
        groups = []
        for label, group in mine.groupby("setting", sort=True):
            setting = parse_setting_label(str(label))
            if all(setting.get(k, v) == v for k, v in claim.fixed.items()):
                groups.append((setting, group))
        if not groups:
            return [], (f"no runs of variant {variant!r} with "
                        + ", ".join(f"{k}={v}" for k, v in claim.fixed.items()))
        per_role[role] = groups
    rows: dict[str, Arms] = {}
    roles = list(per_role)
    for combo in itertools.product(*(per_role[r] for r in roles)):
        merged = _consistent([setting for setting, _ in combo])
        if merged is not None:
            rows.setdefault(setting_label(merged), {r: g for r, (_, g) in zip(roles, combo)})
    if not rows:
        return [], "the compared variants share no setting"
    return sorted(rows.items()), ""


def _row(claim: Claim, env: str, setting: str, *, verdict_: str, confidence: float,
         result: StatisticResult | None = None, detail: str = "", statistic: str = "",
         seeds_needed: float = math.nan) -> dict:
    r = result
    return {
        "claim_id": claim.id, "source": claim.source, "quote": claim.quote, "suite": claim.suite,
        "env": env, "setting": setting,
        "statistic": r.statistic if r else statistic,
        "estimate": r.estimate if r else math.nan,
        "ci_low": r.ci_low if r else math.nan, "ci_high": r.ci_high if r else math.nan,
        "confidence": confidence, "threshold": claim.threshold, "direction": claim.direction,
        "verdict": verdict_, "n_seeds": r.n_seeds if r else 0, "seeds_needed": seeds_needed,
        "detail": (r.detail if r else detail),
        "test": claim.test, "quote_kind": claim.quote_kind, "tolerance": claim.tolerance,
        "holds_for": "",
    }


def on_claims_side(estimate: float, threshold: float, direction: str) -> bool:
    """Whether a point estimate agrees with the claim (strictly)."""
    return estimate > threshold if direction == ">=" else estimate < threshold


_AGAINST = (" The estimate points against the claim: more seeds would narrow the interval "
            "around it, not reproduce the claim.")


def _judged(claim: Claim, env: str, setting: str, result: StatisticResult, confidence: float) -> dict:
    v = verdict(result.ci_low, result.ci_high, claim.threshold, claim.direction)
    needed, note = math.nan, ""
    if v == "inconclusive":
        if on_claims_side(result.estimate, claim.threshold, claim.direction):
            needed = stats.seeds_needed(result.estimate, result.ci_low, result.ci_high,
                                        claim.threshold, result.n_seeds)
        elif math.isfinite(result.estimate):
            note = _AGAINST
    row = _row(claim, env, result.setting or setting, verdict_=v, confidence=confidence,
               result=result, seeds_needed=needed)
    row["detail"] += note
    row["holds_for"] = holds_for(v, result.ci_low, result.ci_high, claim.direction,
                                 claim.tolerance_name)
    return row


def _statistic_words(claim: Claim) -> str:
    spec = STATISTICS.get(claim.statistic)
    doc = (spec.function.__doc__ or "").strip().splitlines() if spec else []
    return doc[0].rstrip(".") if doc else claim.statistic.replace("_", " ")


def _call(claim: Claim, ctx: ClaimContext) -> list[StatisticResult] | str:
    """The statistic's results, or the reason it could not run."""
    try:
        out = STATISTICS[claim.statistic].function(ctx)
    except NotRun as why:
        return str(why)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _test_id(claim: Claim) -> tuple[str, ...]:
    """The test's part of a row's identity (none for a main test: its draws stay as they were)."""
    return () if claim.test == "main" else (claim.test,)


def evaluate_claim(claim: Claim, summary: Summary, *, seed: int = 0, confidence: float = 0.95,
                   n_resamples: int = 2000) -> list[dict]:
    """The claims-table rows of one claim (see docs/contracts.md, Claims)."""
    words = _statistic_words(claim)
    env_label = claim.envs[0] if len(claim.envs) == 1 else ", ".join(claim.envs)

    def not_run(env: str, why: str, setting: str = "default") -> dict:
        return _row(claim, env, setting, verdict_="not run", confidence=confidence,
                    detail=why, statistic=words)

    if claim.statistic not in STATISTICS:
        module = DEFERRED_STATISTICS.get(claim.statistic, "another module")
        return [not_run(env_label, f"statistic {claim.statistic!r} is provided by {module}, "
                                   "which is not available in this installation")]
    if claim.table != "runs":
        table = summary.table(claim.table)
        if table is None:
            return [not_run(env_label, f"{claim.table}.parquet is not in the summary (run "
                                       "`pgbench gradstudy` and `pgbench aggregate --gradstudy DIR`)")]
        if "env" in table.columns and claim.envs != ("*",):
            table = table[table["env"].isin(claim.envs)]
        if table.empty:
            return [not_run(env_label, f"{claim.table}.parquet has no rows for env {env_label}")]
        ctx = ClaimContext(claim, env_label, "default", {}, table,
                           row_rng(seed, claim.id, env_label, *_test_id(claim)), confidence,
                           n_resamples)
        results = _call(claim, ctx)
        if isinstance(results, str):
            return [not_run(env_label, results)]
        return [_judged(claim, env_label, "default", r, confidence) for r in results]

    runs = summary.runs()
    suite_runs = runs[runs["suite"] == claim.suite]
    if suite_runs.empty:
        return [not_run(env_label, f"suite {claim.suite!r} is not in the summary (the pipeline did "
                                   "not run it)")]
    envs = sorted(set(suite_runs["env"])) if claim.envs == ("*",) else list(claim.envs)
    several_envs = len(envs) > 1
    rows = []
    for env in envs:
        env_runs = suite_runs[suite_runs["env"] == env]
        if env_runs.empty:
            rows.append(not_run(env, f"env {env!r} is not in suite {claim.suite!r}",
                                f"env={env}" if several_envs else "default"))
            continue
        pairs, why = setting_rows(claim, env_runs)
        if not pairs:
            rows.append(not_run(env, f"{why} in suite {claim.suite!r}, env {env!r}",
                                f"env={env}" if several_envs else "default"))
            continue
        for setting, arms in pairs:
            # With several envs the env joins the setting label: the report tells rows apart by it.
            label = (f"env={env}" + ("" if setting == "default" else f", {setting}")
                     if several_envs else setting)
            ctx = ClaimContext(claim, env, setting, arms, None,
                               row_rng(seed, claim.id, env, setting, *_test_id(claim)),
                               confidence, n_resamples)
            results = _call(claim, ctx)
            if isinstance(results, str):
                rows.append(not_run(env, results, label))
            else:
                rows.extend(_judged(claim, env, label, r, confidence) for r in results)
    return rows


def evaluate_claims(claims: list[Claim], summary: str | Path | Summary, *, seed: int = 0,
                    confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """The claims table: one row per (claim, env, setting), columns ``CLAIMS_COLUMNS``."""
    if not 0.0 < confidence < 1.0:
        raise UserError(f"bad confidence {confidence!r}; accepted: a number in (0, 1), e.g. 0.95")
    if n_resamples < 100:
        raise UserError(f"bad n_resamples {n_resamples!r}; accepted: an integer >= 100")
    summary = summary if isinstance(summary, Summary) else Summary(summary)
    summary.runs()  # a summary without a readable runs table is an error, whatever the claims
    rows = [row for claim in claims
            for row in evaluate_claim(claim, summary, seed=seed, confidence=confidence,
                                      n_resamples=n_resamples)]
    return pd.DataFrame(rows, columns=list(CLAIMS_COLUMNS)).astype(CLAIMS_COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    """The claims table as aligned text for the terminal."""
    if table.empty:
        return "(no claims)"
    shown = pd.DataFrame({
        "claim": table["claim_id"],
        "test": table["test"],
        "setting": table["setting"],
        "estimate": [fmt(x) for x in table["estimate"]],
        "CI": [f"[{fmt(lo)}, {fmt(hi)}]" if not (math.isnan(lo) and math.isnan(hi)) else ""
               for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "target": [f"{d} {fmt(t)}" for d, t in zip(table["direction"], table["threshold"])],
        "seeds": table["n_seeds"],
        "verdict": [v + (f" (~{fmt(n)} seeds)" if v == "inconclusive" and math.isfinite(n) else "")
                    for v, n in zip(table["verdict"], table["seeds_needed"])],
    })
    return shown.to_string(index=False)


# --------------------------------------------------------------------------- command line
def configure_parser(parser) -> None:
    parser.add_argument("summary", metavar="SUMMARY", help="summary directory written by `pgbench aggregate`")
    parser.add_argument("--claims", metavar="FILE", help="claims file (default: the packaged claims.yaml)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every bootstrap (default: 0)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence level of the intervals (default: 0.95)")
    parser.add_argument("--n-resamples", type=int, default=2000,
                        help="bootstrap resamples per interval (default: 2000)")


def run(args) -> int:
    claims = load_claims(args.claims)
    table = evaluate_claims(claims, args.summary, seed=args.seed, confidence=args.confidence,
                            n_resamples=args.n_resamples)
    out = Path(args.summary) / "claims.parquet"
    write_parquet_atomic(out, table)
    print(format_table(table))
    counts = table["verdict"].value_counts()
    print("\n" + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + f" -> {out}",
          file=sys.stderr)
    return 0


# The gradient study's statistics live with the study; without that module their claims are
# `not run`. Only a missing pgbench.gradclaims is tolerated, not an error inside it.
import pgbench.claimstats  # noqa: F401,E402  (registers its statistics)

try:
    import pgbench.gradclaims  # noqa: F401,E402
except ModuleNotFoundError as _err:
    if _err.name != "pgbench.gradclaims":
        raise
