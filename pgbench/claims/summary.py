"""One answer per claim: its verdict across the settings it was run in.

The claims table (``claims.parquet``) has a row per (claim, test, env, setting). A reader asks
first "does this claim hold?", so the report opens with one row per claim, built here from
those rows alone:

- per test, ``across_settings``: ``reproduced in all`` settings, ``in some``, ``in none``
  (every row not reproduced), ``inconclusive`` (none reproduced, some inconclusive) or
  ``not run``;
- the claim's answer is its first (main) test's; a claim tested two ways (typical and single
  run) shows both;
- ``counts``: the rows behind it, per verdict, so that the claim's counts add up to its rows in
  the per-setting table below.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from pgbench.core.contracts import VERDICTS

ANSWERS = ("reproduced in all settings", "reproduced in some settings",
           "reproduced in none", "inconclusive", "not run")


def across_settings(verdicts) -> str:
    """The verdict of one test across its rows (settings, envs, snapshots).

    >>> across_settings(["reproduced", "reproduced"]), across_settings(["reproduced", "inconclusive"])
    ('reproduced in all settings', 'reproduced in some settings')
    >>> across_settings(["not reproduced", "inconclusive"]), across_settings(["not reproduced"])
    ('inconclusive', 'reproduced in none')
    >>> across_settings(["not run", "reproduced"]), across_settings(["not run"])
    ('reproduced in all settings', 'not run')
    """
    ran = [v for v in verdicts if v != "not run"]
    if not ran:
        return "not run"
    n_yes = sum(v == "reproduced" for v in ran)
    if n_yes == len(ran):
        return "reproduced in all settings"
    if n_yes:
        return "reproduced in some settings"
    if any(v == "inconclusive" for v in ran):
        return "inconclusive"
    return "reproduced in none"


def claim_summary(claims: pd.DataFrame) -> list[dict]:
    """One dict per claim, in the table's order: ``claim_id, quote, quote_kind, source,
    tests`` (list of ``{test, answer, counts, n_rows}``), ``counts`` (verdict -> rows, all
    tests) and ``n_rows``."""
    out = []
    for claim_id in dict.fromkeys(claims["claim_id"].astype(str)):
        rows = claims[claims["claim_id"].astype(str) == claim_id]
        first = rows.iloc[0]
        tests = []
        test_col = rows["test"].astype(str) if "test" in rows else pd.Series("main", index=rows.index)
        for test in dict.fromkeys(test_col):
            verdicts = rows.loc[test_col == test, "verdict"].astype(str).tolist()
            counts = Counter(verdicts)
            tests.append({"test": test, "answer": across_settings(verdicts),
                          "counts": {v: counts[v] for v in VERDICTS if counts[v]},
                          "n_rows": len(verdicts)})
        counts = Counter(rows["verdict"].astype(str))
        out.append({
            "claim_id": claim_id, "quote": str(first["quote"]), "source": str(first["source"]),
            "quote_kind": str(first["quote_kind"]) if "quote_kind" in rows else "quote",
            "tests": tests, "answer": tests[0]["answer"],
            "counts": {v: counts[v] for v in VERDICTS if counts[v]},
            "n_rows": len(rows),
        })
    return out
