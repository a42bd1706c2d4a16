"""Evaluate claims on a summary: pick each claim's arms (one row per setting), call its
statistic with a Generator seeded from the row's identity, and judge the interval.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pandas as pd

from pgbench.analysis.runs import parse_setting_label, setting_label
from pgbench.analysis.summary import Summary
from pgbench.claims.catalog import STATISTICS
from pgbench.claims.model import Claim
from pgbench.claims.registry import (
    RULES,
    ClaimContext,
    NotRun,
    StatisticResult,
    fmt,
    holds_for,
    verdict,
)
from pgbench.core.contracts import CLAIMS_COLUMNS
from pgbench.core.errors import UserError
from pgbench.core.seeding import named_rng
from pgbench.stats import survival


# --------------------------------------------------------------------------- evaluation
def claim_runs(summary: Summary) -> pd.DataFrame:
    """The summary's runs table, with the columns the claims read (both rules' times)."""
    runs = summary.runs
    needed = ["suite", "env", "variant", "setting", "seed", "final_return",
              *itertools.chain.from_iterable(RULES.values())]
    missing = [c for c in needed if c not in runs.columns]
    if missing:
        raise UserError(f"{summary.path / 'runs.parquet'} lacks columns {', '.join(missing)}; "
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
        "estimate_text": r.estimate_text if r else "",
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
    if v == "inconclusive" and not result.beyond_budget:  # (its detail says what would settle it)
        if on_claims_side(result.estimate, claim.threshold, claim.direction):
            needed = survival.seeds_needed(result.estimate, result.ci_low, result.ci_high,
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
    """The statistic in words for a row that did not run: its docstring's first line, with each
    ``name`` of a parameter replaced by the claim's value (``column`` -> final return).

    >>> from types import SimpleNamespace as C
    >>> _statistic_words(C(statistic="noninferiority_ratio", params={"column": "final_return"}))
    'mean(a) / mean(b) - 1 of final return with a bootstrap CI (arms resampled independently)'
    """
    spec = STATISTICS.get(claim.statistic)
    doc = (spec.function.__doc__ or "").strip().splitlines() if spec else []
    if not doc:
        return claim.statistic.replace("_", " ")
    values = {k: v for k, v in (spec.params or {}).items() if isinstance(v, str)}
    values.update(claim.params or {})
    return re.sub(r"``(\w+)``", lambda m: str(values.get(m.group(1), m.group(1))).replace("_", " "),
                  doc[0].rstrip(".:"))


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
                           named_rng(seed, claim.id, env_label, *_test_id(claim)), confidence,
                           n_resamples)
        results = _call(claim, ctx)
        if isinstance(results, str):
            return [not_run(env_label, results)]
        return [_judged(claim, env_label, "default", r, confidence) for r in results]

    runs = claim_runs(summary)
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
                               named_rng(seed, claim.id, env, setting, *_test_id(claim)),
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
    claim_runs(summary)  # a summary without a readable runs table is an error, whatever the claims
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
