"""The report's claim tables: one answer per claim first, then the per-setting rows grouped by
claim (each quote shown once). Input: the rows ``report._verdict_rows`` made from
``claims.parquet`` (formatted strings); output: lists of dicts of strings and Markup for the
templates, never raw data.

Quotes are rendered with :func:`pgbench.report.mathquote.quote_html` (no raw ``$...$``). A claim whose
quote only implies it (``quote_kind: implied`` in claims.yaml) is listed apart, under
"implied by".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from pgbench.claims.summary import claim_summary
from pgbench.core.contracts import VERDICTS
from pgbench.report.mathquote import quote_html

#: answer -> (badge class, icon for Markdown)
ANSWER_STYLE = {
    "reproduced in all settings": ("reproduced", "✅"),
    "reproduced in some settings": ("some", "🟡"),
    "reproduced in none": ("not-reproduced", "❌"),
    "inconclusive": ("inconclusive", "⚠️"),
    "not run": ("not-run", "⏸️"),
}


#: The verdict shown for a single-run test's "reproduced".
TEST_WORDS = {"single run": {"reproduced": "plausible as one run",
                             "not reproduced": "implausible as one run"}}


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")


def quote_markdown(quote: str) -> Markup:
    """The quote for the Markdown report: the HTML rendering (entities, <sub>/<sup>, which
    GitHub shows) with Markdown's special characters backslash-escaped (none occurs in a tag)."""
    return Markup(_MD_SPECIAL.sub(r"\\\1", str(quote_html(quote))))


def _counts_text(counts: dict[str, int], n_rows: int) -> str:
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts.get(v)]
    return f"{n_rows} row{'s' if n_rows != 1 else ''}: " + ", ".join(parts)


def _answer_words(test: str, answer: str) -> str:
    words = TEST_WORDS.get(test, {})
    if test in TEST_WORDS and answer.startswith("reproduced in "):
        return answer.replace("reproduced", words["reproduced"], 1)
    return answer


def suite_configs(config_dir: Path | None = None) -> dict[str, list[str]]:
    """Suite name -> the config files of the checkout that run it (``config/*.yaml`` beside the
    package, as in a clone; empty when pgbench is installed without them)."""
    import yaml

    config_dir = config_dir or Path(__file__).resolve().parents[2] / "config"
    found: dict[str, list[str]] = {}
    for path in sorted(config_dir.glob("*.yaml")) if config_dir.is_dir() else []:
        try:
            suites = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("suites") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        for suite in suites:
            found.setdefault(str(suite), []).append(f"config/{path.name}")
    return found


def _not_run_text(suite: str, configs: dict[str, list[str]]) -> str:
    where = configs.get(suite)
    return f"no runs of suite {suite} in this summary" + (f" (it is in {', '.join(where)})"
                                                         if where else "")


def claim_answers(claims: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per claim: quote (Markup), kind, and per test its answer across settings; a
    test that did not run says which suite it needs and which configs run that suite."""
    out = []
    claims = _with_defaults(claims)
    suites = claims.groupby("claim_id")["suite"].first().astype(str).to_dict() \
        if "suite" in claims.columns else {}
    configs = suite_configs() if (claims["verdict"].astype(str) == "not run").any() else {}
    for c in claim_summary(claims):
        tests = []
        for t in c["tests"]:
            cls, icon = ANSWER_STYLE[t["answer"]]
            counts = _counts_text(t["counts"], t["n_rows"])
            if t["answer"] == "not run" and c["claim_id"] in suites:
                counts = _not_run_text(suites[c["claim_id"]], configs)
            tests.append({"test": "" if t["test"] == "main" else t["test"],
                          "answer": _answer_words(t["test"], t["answer"]), "answer_class": cls,
                          "icon": icon, "counts": counts})
        out.append({"claim_id": c["claim_id"], "quote": quote_html(c["quote"]),
                    "quote_md": quote_markdown(c["quote"]),
                    "source": c["source"], "implied": c["quote_kind"] == "implied",
                    "tests": tests, "counts": _counts_text(c["counts"], c["n_rows"]),
                    "n_rows": str(c["n_rows"]), "anchor": f"claim-{c['claim_id']}"})
    return out


def claim_groups(claims: pd.DataFrame, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The per-setting rows (``rows``, one per claims.parquet row, same order) grouped by claim;
    each group carries its quote once and its tests' tolerance reasons."""
    claims = _with_defaults(claims)
    groups: dict[str, dict[str, Any]] = {}
    for rec, row in zip(claims.to_dict("records"), rows):
        cid = str(rec["claim_id"])
        group = groups.setdefault(cid, {
            "claim_id": cid, "quote": quote_html(str(rec["quote"])),
            "quote_md": quote_markdown(str(rec["quote"])), "source": str(rec["source"]),
            "implied": str(rec["quote_kind"]) == "implied", "anchor": f"claim-{cid}",
            "tolerances": {}, "rows": []})
        test = str(rec["test"])
        if str(rec["tolerance"]):
            group["tolerances"].setdefault("" if test == "main" else test, str(rec["tolerance"]))
        verdict = str(rec["verdict"])
        shown = TEST_WORDS.get(test, {}).get(verdict, verdict)
        group["rows"].append({**row, "test": "" if test == "main" else test,
                              "verdict_shown": shown, "holds_for": str(rec["holds_for"])})
    for group in groups.values():
        group["tolerances"] = [{"test": t, "reason": r} for t, r in group["tolerances"].items()]
        group["n_rows"] = str(len(group["rows"]))
    return list(groups.values())


def _with_defaults(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims tables written before the ``test`` / ``quote_kind`` / ``tolerance`` /
    ``holds_for`` columns existed read as single-test quoted claims."""
    claims = claims.copy()
    for column, default in (("test", "main"), ("quote_kind", "quote"), ("tolerance", ""),
                            ("holds_for", "")):
        if column not in claims:
            claims[column] = default
        claims[column] = claims[column].fillna(default).astype(str)
    return claims
