"""Tables of the report: per-arm summaries, the verdict rows, figure entries; cells are
formatted strings (:mod:`pgbench.report.format`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pgbench.analysis.runs import parse_setting_label
from pgbench.report.figures import style
from pgbench.report.format import DASH, _finite, _number, fmt_ci, fmt_num, fmt_steps
from pgbench.stats import survival

#: Markdown cannot colour a badge on a code host; these emoji carry the colour there.
VERDICT_ICONS = {"reproduced": "✅", "not reproduced": "❌", "inconclusive": "⚠️", "not run": "⏸️"}


#: Short identifier columns that read badly when wrapped at a hyphen (InvertedPendulum-/v5).
_NOWRAP = frozenset({"suite", "env", "snapshot", "rule"})


def _table(columns: list[tuple[str, str, bool]], rows: list[dict[str, Any]],
           total: dict[str, Any] | None = None, swatch: str | None = "arm") -> dict[str, Any]:
    """A finished table: ``columns`` are (key, label, numeric); cells are strings. A row may carry
    ``_colour`` (the colour of its arm in the figures), shown as a swatch in column ``swatch``."""
    return {"columns": [{"key": k, "label": lab, "numeric": num, "swatch": k == swatch,
                         "nowrap": k in _NOWRAP} for k, lab, num in columns],
            "rows": [{"_colour": None, **row} for row in rows], "total": total}


def _text(value: Any) -> str:
    """A string cell; missing (None/NaN) becomes empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _seeds_needed(value: Any, unit: str = "seeds") -> str:
    if not _number(value):
        return ""
    if math.isinf(float(value)):
        return f"many more {unit} needed (unbounded interval)"
    return f"~{fmt_num(math.ceil(float(value)))} {unit} needed"


def _verdict_rows(claims: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for c in claims.to_dict("records"):
        # a gradient-study row names its env and batch size in its setting; its n is batches
        try:
            setting = parse_setting_label(_text(c["setting"]))
        except ValueError:  # a free-form setting: no env or batch size in it
            setting = {}
        env = setting.get("env") or ("" if _text(c.get("env")) in ("", "*") else _text(c.get("env")))
        unit = "batches" if "episodes_per_batch" in setting else "seeds"
        direction = {">=": "≥", "<=": "≤"}.get(str(c["direction"]), str(c["direction"]))
        conf = f"{float(c['confidence']):.0%}" if _finite(c["confidence"]) else ""
        rows.append({
            "claim_id": str(c["claim_id"]), "quote": str(c["quote"]), "source": str(c["source"]),
            "statistic": str(c["statistic"]),
            # a median past the budget: the bound the data give, not a bare 0 or inf
            "estimate": _text(c.get("estimate_text")) or fmt_num(c["estimate"]),
            "ci": fmt_ci(c["ci_low"], c["ci_high"]), "confidence": conf,
            "target": f"{direction} {fmt_num(c['threshold'])}" if _number(c["threshold"]) else DASH,
            "verdict": str(c["verdict"]), "verdict_class": str(c["verdict"]).replace(" ", "-"),
            "icon": VERDICT_ICONS[str(c["verdict"])],
            "setting": _text(c["setting"]),
            # `pgbench claims` also writes the env(s) of each row; show the one it is about
            "env": env,
            "n_seeds": fmt_num(c["n_seeds"]) if _finite(c["n_seeds"]) else DASH,
            "seeds_needed": _seeds_needed(c["seeds_needed"], unit),
            "detail": _text(c["detail"]),
        })
    return rows


def _single(frame: pd.DataFrame, column: str) -> float | None:
    values = frame[column].dropna().unique() if column in frame else []
    return float(values[0]) if len(values) == 1 else None


def _arm_table(runs: pd.DataFrame, palette: Mapping[str, str],
               rng: np.random.Generator, n_boot: int) -> dict[str, Any]:
    has_last100 = {"steps_to_threshold_last100", "censored_last100"} <= set(runs.columns)
    rows = []
    for arm in [a for a in palette if a in set(runs["arm"].astype(str))]:
        one = runs[runs["arm"].astype(str) == arm]
        solved = ~one["censored"].astype(bool)
        # the claims' estimate (pgbench.stats.survival), so the two tables agree
        median = survival.km_median(one["steps_to_threshold"].to_numpy(dtype=float),
                                 ~solved.to_numpy()).median
        final = one["final_return"].to_numpy(dtype=float)[:, None]
        mean, low, high = style.bootstrap_mean_ci(final, rng, n_boot=n_boot)
        row = {
            "_colour": palette[arm], "arm": arm, "variant": str(one["variant"].iloc[0]),
            "setting": str(one["setting"].iloc[0]), "seeds": str(len(one)),
            "solved": f"{int(solved.sum())}/{len(one)}",
            "median": fmt_steps(median) if _finite(median)
            else f"> {fmt_steps(one['steps_to_threshold'].max())}",
            "final": f"{fmt_num(mean[0])} ({fmt_ci(low[0], high[0])})",
        }
        if has_last100:
            solved100 = ~one["censored_last100"].astype(bool)
            row["solved100"] = f"{int(solved100.sum())}/{len(one)}"
        rows.append(row)
    columns = [("arm", "arm", False), ("variant", "variant", False), ("setting", "setting", False),
               ("solved", "solved (running reward)", True)]
    if has_last100:
        columns.append(("solved100", "solved (last 100)", True))
    columns += [("median", "median steps to solve (KM)", True),
                ("final", "final return, mean (95% CI)", True)]
    return _table(columns, rows)


def _figure_entry(fig, directory: Path, name: str, title: str, alt: str, caption: str) -> dict:
    width, height = (fig.get_size_inches() * style.PNG_DPI).round().astype(int)
    style.save_png(fig, directory / name)
    return {"file": f"figures/{name}", "title": title, "alt": alt, "caption": caption,
            "width": int(width), "height": int(height)}
