"""The report's exact-study section: exact values beside the sampled study, and where they agree.

Reads the rows of ``gradstudy.parquet`` that carry exact values (``pgbench gradstudy --exact``)
and, when the summary has claims, the gradient claims' verdicts. Self-contained: one figure
function, one section builder, one template include per format (``exact_section.*.j2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pgbench.report.figures import style

#: The gradient claims whose rows may come from both studies.
GRADIENT_CLAIMS = ("baseline-unbiased", "baseline-variance", "causality-variance",
                   "optimal-baseline-variance")


def exact_rows(grad: pd.DataFrame | None) -> pd.DataFrame:
    """The gradstudy rows that have exact values (empty when none)."""
    if grad is None or "exact_projection" not in grad.columns:
        return pd.DataFrame()
    return grad[grad["exact_total_variance"].notna()]


@style._styled
def exact_vs_sampled_figure(rows: pd.DataFrame, palette: Mapping[str, str]) -> Figure:
    """Mean batch gradient of each estimator projected on grad J, ``E[g] . grad J / |grad J|^2``:
    the sampled study's estimate with its CI (dot and bar) and the exact value (open diamond),
    one panel per batch size K. 1 is unbiased; the slides' batch mean sits at 1 - 1/K."""
    ks = sorted(int(k) for k in rows["episodes_per_batch"].unique())
    estimators = style._arms_in(rows, palette, column="estimator")
    fig, axes = style._figure(1.9 + 0.42 * len(estimators), ncols=len(ks), sharey=True,
                                squeeze=False)
    for ax, k in zip(axes[0], ks):
        at = rows[rows["episodes_per_batch"] == k]
        for i, est in enumerate(estimators):
            row = at[at["estimator"].astype(str) == est]
            if row.empty:
                continue
            r = row.iloc[0]
            colour = palette.get(est, "#333333")
            v, lo, hi = (float(r[c]) for c in ("projection", "projection_ci_low", "projection_ci_high"))
            ax.errorbar([v], [i], xerr=[[max(v - lo, 0)], [max(hi - v, 0)]], fmt="o",
                        color=colour, markersize=5.5, capsize=2.5, elinewidth=1.4)
            ax.plot([float(r["exact_projection"])], [i], marker="D", markersize=8,
                    markerfacecolor="none", markeredgecolor="#111111", linestyle="none")
        ax.axvline(1.0, color="#999999", linewidth=0.9, linestyle="--")
        if k > 1:
            ax.axvline(1 - 1 / k, color="#999999", linewidth=0.9, linestyle=":")
        ax.set_title(f"K = {k} per batch", fontsize=9.5)
        ax.set_xlabel("E[g] · ∇J / |∇J|²")
    axes[0][0].set_yticks(range(len(estimators)), [style.arm_label(e) for e in estimators])
    axes[0][0].set_ylim(len(estimators) - 0.5, -0.5)
    for ax in axes[0]:
        ax.grid(axis="y", visible=False)
    legend = [Line2D([], [], linestyle="none", marker="o", color=style._KEY,
                     label="sampled, with CI"),
              Line2D([], [], linestyle="none", marker="D", markerfacecolor="none",
                     markeredgecolor="#111111", label="exact"),
              Line2D([], [], color="#999999", linestyle="--", label="unbiased (1)"),
              Line2D([], [], color="#999999", linestyle=":", label="1 - 1/K")]
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), frameon=False)
    return fig


def _covers(lo, x, hi) -> str:
    if not np.isfinite(x):
        return "—"
    return "yes" if float(lo) <= float(x) <= float(hi) else "no"


def section(summary, palette: Mapping[str, str], fig_dir: Path) -> dict[str, Any] | None:
    """The template's ``exact`` block, or None when the summary has no exact rows."""
    from pgbench.claims.gradient_statistics import agreement
    from pgbench.report.format import fmt_ci, fmt_num, slug
    from pgbench.report.tables import _figure_entry, _table

    rows = exact_rows(summary.gradstudy)
    if rows.empty:
        return None
    envs = []
    for env in sorted(rows["env"].astype(str).unique()):
        one = rows[rows["env"].astype(str) == env].sort_values(["episodes_per_batch", "estimator"])
        fig = _figure_entry(
            exact_vs_sampled_figure(one, palette), fig_dir, f"exact-{slug(env)}.png",
            "Exact against sampled: mean gradient on ∇J",
            f"Each estimator's mean gradient projected on the exact gradient on {env}: exact "
            "value and sampled estimate with its CI",
            "The mean batch gradient of each estimator projected on the exact policy gradient "
            "(1: unbiased; dotted: 1 - 1/K, the slides' batch mean that includes the episode). "
            "Open diamond: exact, from every trajectory; dot and bar: the sampled study (the "
            "same code as on the Gymnasium envs) with its bootstrap CI.")
        table = _table(
            [("estimator", "estimator", False), ("k", "K", True),
             ("proj_exact", "projection, exact", True), ("proj", "sampled [CI]", True),
             ("var_exact", "tr Cov, exact", True), ("var", "sampled [CI]", True),
             ("covers", "CIs cover exact", False)],
            [{"_colour": palette.get(str(r["estimator"])), "estimator": str(r["estimator"]),
              "k": str(int(r["episodes_per_batch"])),
              "proj_exact": fmt_num(r["exact_projection"]),
              "proj": f"{fmt_num(r['projection'])} "
                      f"[{fmt_ci(r['projection_ci_low'], r['projection_ci_high'])}]",
              "var_exact": fmt_num(r["exact_total_variance"]),
              "var": f"{fmt_num(r['total_variance'])} "
                     f"[{fmt_ci(r['total_variance_ci_low'], r['total_variance_ci_high'])}]",
              "covers": " / ".join([
                  _covers(r["projection_ci_low"], r["exact_projection"], r["projection_ci_high"]),
                  _covers(r["total_variance_ci_low"], r["exact_total_variance"],
                          r["total_variance_ci_high"])])}
             for r in one.to_dict("records")], swatch="estimator")
        covered = [
            lo <= x <= hi for lo, x, hi in
            list(zip(one["projection_ci_low"], one["exact_projection"], one["projection_ci_high"]))
            + list(zip(one["total_variance_ci_low"], one["exact_total_variance"],
                       one["total_variance_ci_high"])) if np.isfinite(x)]
        envs.append({"env": env, "anchor": slug("exact", env), "figure": fig, "table": table,
                     "covered": f"{sum(covered)} of {len(covered)}"})
    agree = []
    claims = getattr(summary, "claims", None)
    if claims is not None and not claims.empty:
        gradient = claims[claims["claim_id"].isin(GRADIENT_CLAIMS)]
        for a in agreement(gradient, rows["env"].astype(str).unique()):
            def words(counts):
                return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "none"
            agree.append({"claim_id": a["claim_id"], "exact": words(a["exact"]),
                          "sampled": words(a["sampled"]), "agree": "yes" if a["agree"] else "no"})
    return {"envs": envs, "agreement": agree}
