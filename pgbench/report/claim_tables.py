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


def claim_answers(claims: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per claim: quote (Markup), kind, and per test its answer across settings."""
    out = []
    for c in claim_summary(_with_defaults(claims)):
        tests = []
        for t in c["tests"]:
            cls, icon = ANSWER_STYLE[t["answer"]]
            tests.append({"test": "" if t["test"] == "main" else t["test"],
                          "answer": _answer_words(t["test"], t["answer"]), "answer_class": cls,
                          "icon": icon, "counts": _counts_text(t["counts"], t["n_rows"])})
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
