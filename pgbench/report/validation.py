"""The report's validation section: pgbench's algorithms against their reference implementations.

Reads the ``validate-*`` claims (claims.yaml: each compares a pgbench algorithm, ``compare.a``,
with its Stable-Baselines3 / sb3-contrib counterpart, ``compare.b``, trained at the same
hyperparameters, budget and seeds) and the runs of their two arms, and shows one table: per
algorithm and env, both sides' mean return over training (AUC) and final return with their
seeds, the non-inferiority ratio with its CI and verdict per test, and the CPU time per run.
Self-contained: one section builder and one template include per format
(``validation_section.*.j2``). The section is left out when no validation suite ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pgbench.report.format import fmt_num, fmt_seconds

#: Claims whose id starts with this compare an algorithm with its reference implementation.
PREFIX = "validate-"


def _mean(runs: pd.DataFrame, column: str) -> str:
    values = pd.to_numeric(runs[column], errors="coerce").dropna()
    if values.empty:
        return "—"
    return f"{fmt_num(float(values.mean()))} ({len(values)})"


def _ratio(row: pd.Series | None) -> str:
    if row is None or not np.isfinite(row["estimate"]):
        return "—"
    return (f"{row['estimate']:+.1%} [{row['ci_low']:+.1%}, {row['ci_high']:+.1%}]"
            if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"])
            else f"{row['estimate']:+.1%}")


def _test_row(claims: pd.DataFrame, env: str, test: str) -> pd.Series | None:
    at = claims[(claims["env"].astype(str) == env) & (claims["test"].astype(str) == test)]
    return None if at.empty else at.iloc[0]


def section(summary, claim_specs) -> dict[str, Any] | None:
    """The template's ``validation`` block, or None when no validation claim has a result.

    ``claim_specs``: the claims of claims.yaml (:func:`pgbench.claims.model.load_claims`), for
    the two arms each validation claim compares and its margin. One row per (algorithm, env,
    test): both sides' mean with their seeds, the ratio minus 1 with its CI, and the verdict.
    """
    from pgbench.report.tables import VERDICT_ICONS

    claims = getattr(summary, "claims", None)
    if claims is None or claims.empty or "test" not in claims.columns:
        return None
    ours = claims[claims["claim_id"].astype(str).str.startswith(PREFIX)
                  & (claims["verdict"].astype(str) != "not run")]
    if ours.empty:
        return None
    specs = {c.id: c for c in claim_specs if c.id.startswith(PREFIX)}
    runs = summary.runs
    rows, margins = [], set()
    for claim_id in sorted(ours["claim_id"].astype(str).unique()):
        spec = specs.get(claim_id)
        if spec is None or not spec.compare:
            continue
        a, b = spec.compare["a"], spec.compare["b"]
        margins.add(-spec.threshold)
        of_claim = ours[ours["claim_id"].astype(str) == claim_id]
        for env in sorted(of_claim["env"].astype(str).unique()):
            sel = (runs["suite"].astype(str) == spec.suite) & (runs["env"].astype(str) == env)
            run_a = runs[sel & (runs["arm"].astype(str) == a)]
            run_b = runs[sel & (runs["arm"].astype(str) == b)]
            cpu = " / ".join(fmt_seconds(float(r["cpu_s"].mean())) if not r.empty else "—"
                             for r in (run_a, run_b))
            for test, column, label in (("AUC", "mean_return", "AUC (mean return)"),
                                        ("final return", "final_return", "final return")):
                row = _test_row(of_claim, env, test)
                if row is None:
                    continue
                verdict = str(row["verdict"])
                rows.append({"algorithm": a, "reference": b, "env": env, "test": label,
                             "a": _mean(run_a, column), "b": _mean(run_b, column),
                             "ratio": _ratio(row), "verdict": verdict,
                             "verdict_class": verdict.replace(" ", "-"),
                             "icon": VERDICT_ICONS.get(verdict, ""), "cpu": cpu})
    if not rows:
        return None
    return {"rows": rows, "margin": ", ".join(f"{m:.0%}" for m in sorted(margins))}
