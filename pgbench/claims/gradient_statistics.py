"""The gradient-study statistics of ``pgbench claims``: verdicts from ``gradstudy_pairs.parquet``.

``pgbench gradstudy`` measures pairs of estimators on the same batches (common random numbers)
and writes, per (env, snapshot, episodes per batch K, pair), the variance ratio with a paired
bootstrap CI and the relative difference of the mean gradients with its CI (docs/contracts.md,
"Gradient study"). The statistics here only pick rows and turn them into claim results:

- ``gradient_variance_ratio``: ``tr Cov[a] / tr Cov[b]``; a claim "a has less variance than b"
  reads ``<= 1``.
- ``gradient_mean_difference``: ``||E[a] - E[b]|| / ||E[gradient]||``, the change of the
  expected gradient relative to its size. "a is unbiased like b" cannot be shown by failing to
  reject equal means (too few batches would always "show" it), so the claim is an equivalence
  test: reproduced when the whole CI is below the claim's tolerance (its threshold), not
  reproduced when the whole CI is above it (a bias was measured), inconclusive otherwise.

One result per (env, snapshot, K): K is ``episodes_per_batch`` (one value or a list; default: the
largest in the table). The slides train with K = 1, where a leave-one-out baseline is 0 and
equals vanilla, so the baseline claims name the trainer's running-mean baseline
(``ema_baseline``), which is unbiased at every K. ``n_seeds`` counts *batches* here, the
replication unit of the study, and ``seeds_needed`` then estimates batches.

Exact rows: the rows of ``pgbench gradstudy --exact`` (a small MDP whose trajectories are all
listed) carry ``exact_variance_ratio`` and ``exact_mean_diff_relative``. For them the result is
the exact value, its interval of zero width (no sampling, no tolerance beyond rounding), and the
detail sets the sampled study of the same MDP beside it and says whether its interval covers
the exact value. A claim that lists both the small MDP and Gymnasium envs thus reads both
studies; :func:`agreement` says where their verdicts agree.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pgbench.claims.registry import (
    REQUIRED,
    ClaimContext,
    NotRun,
    StatisticResult,
    fmt,
    register_statistic,
)
from pgbench.core.contracts import snapshot_order

_PARAMS = {"estimator_a": REQUIRED, "estimator_b": REQUIRED, "episodes_per_batch": None}


def _pair_rows(ctx: ClaimContext) -> tuple[pd.DataFrame, bool]:
    """The table's rows of the claim's pair, oriented a/b, and whether they were stored as b/a.

    NotRun when the table lacks the pair, or its intervals are at another confidence level.
    """
    table = ctx.table
    a, b = str(ctx.params["estimator_a"]), str(ctx.params["estimator_b"])
    needed = {"env", "snapshot", "episodes_per_batch", "estimator_a", "estimator_b"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise NotRun(f"gradstudy_pairs.parquet lacks columns {', '.join(missing)}")
    forward = table[(table["estimator_a"] == a) & (table["estimator_b"] == b)]
    backward = table[(table["estimator_a"] == b) & (table["estimator_b"] == a)]
    if forward.empty and backward.empty:
        pairs = sorted({f"{x}/{y}" for x, y in zip(table["estimator_a"], table["estimator_b"])})
        raise NotRun(f"pair {a}/{b} is not in gradstudy_pairs.parquet (pairs there: "
                     f"{', '.join(pairs) or 'none'})")
    rows = forward if not forward.empty else backward
    if "confidence" in rows.columns:
        levels = set(np.round(rows["confidence"].astype(float), 6))
        if levels != {round(ctx.confidence, 6)}:
            raise NotRun(f"the gradient study's intervals are at confidence "
                         f"{', '.join(map(str, sorted(levels)))}, the claims at {ctx.confidence}; "
                         "rerun `pgbench gradstudy --confidence` to match")
    return rows, forward.empty


def _selected(ctx: ClaimContext, rows: pd.DataFrame):
    """(env, snapshot, K, row, rows of all K, label) for each env, snapshot and chosen K, in
    training order (row None when the table has no row at that K)."""
    several_envs = ctx.claim.envs == ("*",) or len(ctx.claim.envs) > 1
    chosen = ctx.params.get("episodes_per_batch")
    chosen = [chosen] if isinstance(chosen, (int, float, str)) else chosen
    for env in sorted(rows["env"].astype(str).unique()):
        of_env = rows[rows["env"].astype(str) == env]
        for snap in snapshot_order(of_env["snapshot"]):
            of_snap = of_env[of_env["snapshot"].astype(str) == snap]
            ks = [int(of_snap["episodes_per_batch"].max())] if not chosen else [int(k) for k in chosen]
            for k in ks:
                at = of_snap[of_snap["episodes_per_batch"] == k]
                label = ((f"env={env}, " if several_envs else "")
                         + f"snapshot={snap}, episodes_per_batch={k}")
                yield env, snap, k, (at.iloc[0] if not at.empty else None), of_snap, label


def _exact(row, column: str) -> float | None:
    """The row's exact value of ``column`` (``exact_<column>``), None on a sampled-only row."""
    name = f"exact_{column}"
    if row is None or name not in row.index:
        return None
    value = float(row[name])
    return None if math.isnan(value) else value


def _sampled_beside(est: float, lo: float, hi: float, exact: float) -> str:
    covers = "covers" if lo <= exact <= hi else "does not cover"
    return (f"The sampled study of the same MDP gives {fmt(est)} [{fmt(lo)}, {fmt(hi)}], which "
            f"{covers} the exact value.")


def _by_batch_size(of_snap: pd.DataFrame, column: str, invert: bool) -> str:
    parts = []
    for _, r in of_snap.sort_values("episodes_per_batch").iterrows():
        v = float(r[column])
        parts.append(f"K={int(r['episodes_per_batch'])}: {fmt(1 / v if invert and v else v)}")
    return ", ".join(parts)


def _estimate_and_ci(row, column: str) -> tuple[float, float, float]:
    """A pair row's ``column`` and its CI ends (``column_ci_low``, ``column_ci_high``)."""
    return tuple(float(row[c]) for c in (column, f"{column}_ci_low", f"{column}_ci_high"))


def _n_batches(row) -> int:
    return int(row["n_batches"]) if "n_batches" in row else 0


def _found(ctx: ClaimContext, results: list[StatisticResult]) -> list[StatisticResult]:
    """The results, or NotRun when no pair row had the claim's batch size."""
    if not results:
        raise NotRun(f"no rows with episodes_per_batch={ctx.params.get('episodes_per_batch')}")
    return results


@register_statistic("gradient_variance_ratio", roles=None, params=_PARAMS, table="gradstudy_pairs")
def gradient_variance_ratio(ctx: ClaimContext) -> list[StatisticResult]:
    """Ratio of total gradient variances, a / b, on the same batches (paired bootstrap CI)."""
    rows, flipped = _pair_rows(ctx)
    a, b = ctx.params["estimator_a"], ctx.params["estimator_b"]
    results = []
    for env, snap, k, row, of_snap, label in _selected(ctx, rows):
        if row is None:
            continue
        est, lo, hi = _estimate_and_ci(row, "variance_ratio")
        if flipped:  # stored as b/a: invert, which swaps the ends of the interval
            est, lo, hi = (1 / est if est else math.inf), (1 / hi if hi else math.inf), \
                (1 / lo if lo else math.inf)
        n = _n_batches(row)
        exact = _exact(row, "variance_ratio")
        if exact is not None:
            exact = 1 / exact if flipped else exact
            results.append(StatisticResult(
                estimate=exact, ci_low=exact, ci_high=exact, n_seeds=n, setting=label,
                statistic=f"exact total gradient variance ratio {a} / {b} (batches of {k} "
                          "episodes, every trajectory listed)",
                detail=(f"tr Cov[{a}] / tr Cov[{b}] = {fmt(exact)} exactly, at K = {k} on {env}. "
                        + _sampled_beside(est, lo, hi, exact))))
            continue
        detail = (f"tr Cov[{a}] / tr Cov[{b}] = {fmt(est)} [{fmt(lo)}, {fmt(hi)}] on {n} paired "
                  f"batches of {k} episodes at snapshot {snap} of {env}; at every batch size: "
                  f"{_by_batch_size(of_snap, 'variance_ratio', flipped)}.")
        if "mean_diff_pvalue" in row:
            detail += f" Equal mean gradients: p = {float(row['mean_diff_pvalue']):.3g}."
        results.append(StatisticResult(
            estimate=est, ci_low=lo, ci_high=hi, n_seeds=n, setting=label,
            statistic=f"total gradient variance ratio {a} / {b} (paired batches of {k} episodes)",
            detail=detail))
    return _found(ctx, results)


@register_statistic("gradient_mean_difference", roles=None, params=_PARAMS, table="gradstudy_pairs")
def gradient_mean_difference(ctx: ClaimContext) -> list[StatisticResult]:
    """Difference of the mean gradients of a and b relative to the gradient's norm (bootstrap CI)."""
    rows, _ = _pair_rows(ctx)  # symmetric in a and b: the orientation does not matter
    a, b = ctx.params["estimator_a"], ctx.params["estimator_b"]
    for column in ("mean_diff_relative", "mean_diff_relative_ci_low", "mean_diff_relative_ci_high"):
        if column not in rows.columns:
            raise NotRun(f"gradstudy_pairs.parquet lacks column {column} (written by "
                         "`pgbench gradstudy`)")
    results = []
    for env, snap, k, row, _, label in _selected(ctx, rows):
        if row is None:
            continue
        est, lo, hi = _estimate_and_ci(row, "mean_diff_relative")
        n = _n_batches(row)
        exact = _exact(row, "mean_diff_relative")
        if exact is not None:
            results.append(StatisticResult(
                estimate=exact, ci_low=exact, ci_high=exact, n_seeds=n, setting=label,
                statistic=f"exact relative difference of mean gradients, {a} vs {b} (batches "
                          f"of {k}, every trajectory listed)",
                detail=(f"||E[{a}] - E[{b}]|| / ||grad J|| = {fmt(exact)} exactly (rounding "
                        f"only), at K = {k} on {env}, grad J in closed form. "
                        + _sampled_beside(est, lo, hi, exact))))
            continue
        detail = (f"||E[{a}] - E[{b}]|| / ||gradient|| = {fmt(est)} [{fmt(lo)}, {fmt(hi)}] "
                  f"({n} paired batches of {k} episodes, snapshot {snap} of {env}; the estimate "
                  "subtracts the noise's expected contribution, 0 when noise explains it all). "
                  f"Test of equal means: ||difference|| = {fmt(float(row['mean_diff_norm']))}, "
                  f"noise alone explains up to {fmt(float(row['mean_diff_ci_high']))}, "
                  f"p = {float(row['mean_diff_pvalue']):.3g}. Tolerance: "
                  f"{fmt(ctx.claim.threshold)} of the gradient's norm.")
        results.append(StatisticResult(
            estimate=est, ci_low=lo, ci_high=hi, n_seeds=n, setting=label,
            statistic=f"relative difference of mean gradients, {a} vs {b} (batches of {k})",
            detail=detail))
    return _found(ctx, results)


def agreement(claims_table: pd.DataFrame, exact_envs) -> list[dict]:
    """Where the exact study and the sampled Gymnasium study agree, per gradient claim.

    ``claims_table``: rows of ``pgbench claims`` (docs/contracts.md); ``exact_envs``: the envs of
    the exact study (small MDPs). For each claim with rows of both kinds, returns
    ``{"claim_id", "exact": verdicts of the exact rows, "sampled": verdicts of the others,
    "agree": True when every decided row of both kinds has the same verdict}``.
    """
    out = []
    exact_envs = set(map(str, exact_envs))
    for cid, rows in claims_table.groupby("claim_id", sort=False):
        env = rows["env"].astype(str) if "env" in rows.columns else pd.Series("", index=rows.index)
        setting = rows["setting"].astype(str)
        is_exact = env.isin(exact_envs) | setting.apply(
            lambda label: any(f"env={e}," in label + "," for e in exact_envs))
        exact, sampled = rows[is_exact], rows[~is_exact]
        if exact.empty or sampled.empty:
            continue
        decided = {v for v in pd.concat([exact, sampled])["verdict"]
                   if v in ("reproduced", "not reproduced")}
        out.append({"claim_id": str(cid), "exact": exact["verdict"].value_counts().to_dict(),
                    "sampled": sampled["verdict"].value_counts().to_dict(),
                    "agree": len(decided) == 1})
    return out
