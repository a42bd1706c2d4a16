"""The report's sections (per env, gradient study, compute, provenance, headline) as template
context: finished tables and figure entries, never raw data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pgbench.analysis.summary import Summary
from pgbench.core.contracts import snapshot_order
from pgbench.core.seeding import named_rng
from pgbench.report.figures import gradients as gradient_figures
from pgbench.report.figures import runs as run_figures
from pgbench.report.figures.headline import headline_figure
from pgbench.report.format import (
    DASH,
    _finite,
    fmt_ci,
    fmt_num,
    fmt_seconds,
    fmt_steps,
    shorten_command,
    slug,
)
from pgbench.report.tables import _arm_table, _figure_entry, _single, _table

#: Per-job compute rows beyond this are folded into a <details> element.
_FOLD_ROWS = 25




def _env_sections(summary: Summary, palettes: Mapping[str, Mapping[str, str]], fig_dir: Path,
                  seed: int, n_boot: int) -> list[dict[str, Any]]:
    sections = []
    keys = summary.runs[["suite", "env"]].astype(str).drop_duplicates().sort_values(["suite", "env"])
    for suite, env in keys.itertuples(index=False):
        palette = palettes[suite]
        runs = summary.runs[(summary.runs["suite"].astype(str) == suite)
                            & (summary.runs["env"].astype(str) == env)]
        curves = summary.curves[(summary.curves["suite"].astype(str) == suite)
                                & (summary.curves["env"].astype(str) == env)]
        key = slug(suite, env)
        rng = named_rng(seed, suite, env)
        threshold = _single(runs, "threshold")
        budget = _single(runs, "budget_steps")
        n_solved_stop = int((~runs["censored"].astype(bool)).sum())
        figs = []
        if not curves.empty:
            figs.append(_figure_entry(
                run_figures.learning_curves_figure(curves, palette, rng=rng, threshold=threshold,
                                               n_boot=n_boot),
                fig_dir, f"curves-{key}.png", "Learning curves",
                f"Learning curves on {env} ({suite}): mean return vs environment steps per arm",
                "Mean episode return across seeds (line) with a 95% bootstrap CI over seeds "
                "(band); each seed's value at a step is the mean of its last 10 finished "
                "episodes. Dashed stretches include runs that had already solved and stopped: "
                "their last value is carried forward, not measured. A curve ends where one of "
                "its seeds stopped at its step budget, since nothing was measured past it."))
        figs.append(_figure_entry(
            run_figures.solved_fraction_figure(runs, palette), fig_dir, f"solved-{key}.png",
            "Fraction of seeds solved",
            f"Kaplan-Meier curves of the fraction of seeds solved vs environment steps on {env}",
            "Kaplan-Meier estimate of the fraction of seeds that reached the threshold by a given "
            "number of environment steps, under the sources' running-reward rule (left) and "
            "the last-100 rule, mean of the last 100 returns (right). Ticks: seeds censored there "
            "(budget reached without solving)."))
        figs.append(_figure_entry(
            run_figures.steps_to_solve_figure(runs, palette, rng=rng), fig_dir, f"steps-{key}.png",
            "Steps to solve per seed",
            f"Per-seed environment steps to reach the threshold on {env}, censored seeds hollow",
            "One dot per seed: environment steps until the running reward reached the threshold. "
            "Hollow dots are censored seeds, drawn at the step they stopped without solving; "
            "they would have needed at least that many."
            + (f" Dotted line: the step budget ({fmt_steps(budget)})." if budget else "")))
        figs.append(_figure_entry(
            run_figures.final_return_figure(runs, palette, rng=rng, threshold=threshold), fig_dir,
            f"final-{key}.png", "Final returns",
            f"Distribution of per-seed final returns per arm on {env}",
            "One dot per seed: mean return of the last 10% of its episodes; the box spans the "
            "quartiles. Runs that stop early by solving end on their solving episodes."))
        sections.append({
            "suite": suite, "env": env, "anchor": key,
            "threshold": fmt_num(threshold) if threshold is not None else DASH,
            "budget": _budget_words(runs),
            "n_runs": str(len(runs)), "n_solved": str(n_solved_stop),
            "arms": _arm_table(runs, palette, rng, n_boot), "figures": figs,
        })
    return sections


def _budget_words(runs) -> str:
    """The env-step budget of a (suite, env): one figure, or one per group of arms when the arms
    differ (each method at its own published budget), e.g. ``100k (dqn) · 1M (ppo)``."""
    if "budget_steps" not in runs or runs["budget_steps"].isna().all():
        return DASH
    per_arm = runs.dropna(subset=["budget_steps"]).groupby(runs["arm"].astype(str))["budget_steps"]
    budgets = per_arm.unique()
    if any(len(b) != 1 for b in budgets):
        return DASH
    arms_of: dict[float, list[str]] = {}
    for arm, b in budgets.items():
        arms_of.setdefault(float(b[0]), []).append(arm)
    if len(arms_of) == 1:
        return fmt_steps(next(iter(arms_of)))
    return " · ".join(f"{fmt_steps(b)} ({', '.join(arms)})" for b, arms in sorted(arms_of.items()))


def _gradstudy_section(summary: Summary, palette: Mapping[str, str],
                       fig_dir: Path) -> dict[str, Any] | None:
    """Figures and tables of the gradient study, or None when the summary has none."""
    grad = summary.gradstudy
    if grad is None:
        return None
    envs = []
    for env in sorted(grad["env"].astype(str).unique()):
        one = grad[grad["env"].astype(str) == env]
        batch_sizes = sorted(int(b) for b in one["episodes_per_batch"].unique())
        # The per-estimator view is drawn at one batch size: the most covered one, the largest
        # among ties. The claims are evaluated there, and at one episode per batch the
        # leave-one-out baselines have no other episode and coincide with vanilla.
        counts = one.groupby("episodes_per_batch").size()
        chosen = int(max(counts[counts == counts.max()].index))
        key = slug("gradstudy", env)
        figs = [
            _figure_entry(
                gradient_figures.gradient_variance_figure(one, palette, episodes_per_batch=chosen),
                fig_dir, f"gradvar-{key}.png", "Gradient variance per estimator",
                f"Total gradient variance per estimator on {env}, log scale, with CIs",
                f"Trace of the covariance of the batch policy gradient, {chosen} episode(s) per "
                f"batch, at each policy snapshot (marker shape), with its confidence interval. "
                f"Log scale: equal distances are equal ratios."),
        ]
        if len(batch_sizes) > 1:
            figs.append(_figure_entry(
                gradient_figures.variance_vs_batch_figure(one, palette), fig_dir,
                f"gradbatch-{key}.png", "Variance vs episodes per batch",
                f"Gradient variance vs episodes per batch on {env}, log-log",
                "Total gradient variance as the batch grows, one panel per policy snapshot. "
                "Averaging independent episodes gives a slope of -1 on these axes."))
        at = one[one["episodes_per_batch"] == chosen]
        order = {s: i for i, s in enumerate(snapshot_order(at["snapshot"]))}
        at = at.assign(_o=at["snapshot"].astype(str).map(order)).sort_values(["_o", "estimator"])
        est_rows = [{
            "_colour": palette.get(str(r["estimator"])), "estimator": str(r["estimator"]),
            "snapshot": str(r["snapshot"]), "n_batches": fmt_num(r["n_batches"]),
            "variance": fmt_num(r["total_variance"]),
            "ci": fmt_ci(r["total_variance_ci_low"], r["total_variance_ci_high"]),
            "relative_bias": (f"{fmt_num(r['relative_bias_corrected'])} "
                              + fmt_ci(r['relative_bias_corrected_ci_low'],
                                       r['relative_bias_corrected_ci_high'])),
            "bias_over_noise": fmt_num(r["bias_over_noise"]),
            "cosine": fmt_num(r["cosine_to_reference"]),
        } for r in at.to_dict("records")]
        estimators = _table([("estimator", "estimator", False), ("snapshot", "snapshot", False),
                             ("n_batches", "batches", True), ("variance", "tr Cov[g]", True),
                             ("ci", "CI", True),
                             ("relative_bias", "relative bias, noise-corrected [CI]", True),
                             ("bias_over_noise", "distance / noise", True),
                             ("cosine", "cosine to reference", True)], est_rows,
                            swatch="estimator")
        pairs = None
        if summary.gradstudy_pairs is not None:
            p = summary.gradstudy_pairs
            p = p[(p["env"].astype(str) == env) & (p["episodes_per_batch"] == chosen)]
            p = p.assign(_o=p["snapshot"].astype(str).map(order)).sort_values(
                ["_o", "estimator_a", "estimator_b"])
            if not p.empty:
                pairs = _table(
                    [("pair", "estimators (a / b)", False), ("snapshot", "snapshot", False),
                     ("ratio", "variance ratio a/b", True), ("ci", "CI", True),
                     ("pvalue", "p (equal means)", True)],
                    [{"pair": f"{r['estimator_a']} / {r['estimator_b']}",
                      "snapshot": str(r["snapshot"]), "ratio": fmt_num(r["variance_ratio"]),
                      "ci": fmt_ci(r["variance_ratio_ci_low"], r["variance_ratio_ci_high"]),
                      "pvalue": fmt_num(r["mean_diff_pvalue"])} for r in p.to_dict("records")])
        envs.append({"env": env, "anchor": key, "episodes_per_batch": str(chosen),
                     "batch_sizes": ", ".join(map(str, batch_sizes)), "figures": figs,
                     "estimators": estimators, "pairs": pairs})
    return {"envs": envs}


def _compute_section(summary: Summary, palettes: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    def colour(suite, arm):
        return palettes.get(str(suite), {}).get(str(arm))

    runs = summary.runs
    if "engine" not in runs:  # a summary from before the field: every run was torch's
        runs = runs.assign(engine="torch")
    per_arm = (runs.assign(arm=runs["arm"].astype(str))
               .groupby(["suite", "env", "arm", "engine"], sort=True)
               .agg(seeds=("seed", "size"), env_steps=("env_steps", "sum"),
                    wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
               .reset_index())

    def rate(steps, seconds):
        return fmt_num(steps / seconds) if _finite(seconds) and seconds > 0 else DASH

    arm_rows = [{"_colour": colour(r["suite"], r["arm"]), "suite": str(r["suite"]), "env": str(r["env"]),
                 "arm": r["arm"], "engine": str(r["engine"]), "seeds": str(r["seeds"]),
                 "env_steps": fmt_num(r["env_steps"]),
                 "wall": fmt_seconds(r["wall_s"]), "cpu": fmt_seconds(r["cpu_s"]),
                 "rate": rate(r["env_steps"], r["wall_s"])} for r in per_arm.to_dict("records")]
    tot = per_arm[["seeds", "env_steps", "wall_s", "cpu_s"]].sum()
    arms = _table([("arm", "arm", False), ("suite", "suite", False), ("env", "env", False),
                   ("engine", "engine", False), ("seeds", "runs", True),
                   ("env_steps", "env steps", True),
                   ("wall", "wall (sum over runs)", True), ("cpu", "CPU", True),
                   ("rate", "steps/s (wall)", True)], arm_rows,
                  total={"arm": "total", "suite": "", "env": "", "engine": "",
                         "seeds": str(int(tot["seeds"])),
                         "env_steps": fmt_num(tot["env_steps"]), "wall": fmt_seconds(tot["wall_s"]),
                         "cpu": fmt_seconds(tot["cpu_s"]), "rate": rate(tot["env_steps"], tot["wall_s"])})
    jobs = None
    comp = summary.compute
    if not comp.empty:
        comp = comp.sort_values(["rule", "suite", "env", "arm"], kind="stable")
        job_rows = [{"_colour": colour(r["suite"], r["arm"]), "rule": str(r["rule"]),
                     "suite": str(r["suite"]), "env": str(r["env"]),
                     # a training job trains every arm of its (suite, env) unless it names one
                     "arm": str(r["arm"]) or ("all arms" if r["rule"] == "train" else ""),
                     "seeds": str(r["seeds"]), "wall": fmt_seconds(r["s"]),
                     "cpu": fmt_seconds(r["cpu_time"]), "rss": fmt_num(r["max_rss"]),
                     "env_steps": fmt_num(r["env_steps"]), "rate": fmt_num(r["steps_per_s"])}
                    for r in comp.to_dict("records")]
        t = comp[["s", "cpu_time", "env_steps"]].sum(numeric_only=True)
        jobs = _table([("rule", "rule", False), ("suite", "suite", False), ("env", "env", False),
                       ("arm", "arm", False), ("seeds", "seeds", False), ("wall", "wall", True),
                       ("cpu", "CPU", True), ("rss", "max RSS (MB)", True),
                       ("env_steps", "env steps", True), ("rate", "steps/s", True)], job_rows,
                      total={"rule": "total", "suite": "", "env": "", "arm": "", "seeds": "",
                             "wall": fmt_seconds(t["s"]), "cpu": fmt_seconds(t["cpu_time"]),
                             "rss": "", "env_steps": fmt_num(t["env_steps"]),
                             "rate": rate(t["env_steps"], t["s"])})
        jobs["fold"] = len(job_rows) > _FOLD_ROWS
        jobs["n"] = str(len(job_rows))
    return {"arms": arms, "jobs": jobs}


# provenance.json keys (docs/contracts.md names the content, not the keys; accept the obvious
# spellings) -> label, in display order.
_PROVENANCE_KEYS = (
    (("git_commit", "commit"), "git commit"),
    (("git_dirty",), "uncommitted changes"),
    (("date", "created_at", "date_utc"), "summary made (UTC)"),
    (("python",), "Python"),
    (("platform",), "platform"),
    (("cpu",), "CPU"),
    (("hostname", "host"), "host"),
    (("command",), "summary command"),
)


def _run_commits(runs) -> str:
    """The commits the runs were trained at, when they are not all one (a report can gather runs
    trained in several sittings, e.g. config/full.yaml's restored runs): ``abc1234 (20 runs), ...``;
    empty when every run names the same commit, or none does."""
    if "git_commit" not in runs:
        return ""
    counts = runs["git_commit"].fillna("").astype(str).replace("", "unknown").value_counts()
    if len(counts) < 2:
        return ""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{commit[:12]} ({n} run{'' if n == 1 else 's'})" for commit, n in ordered)


def _provenance_section(summary: Summary) -> dict[str, Any]:
    prov = dict(summary.provenance)
    items = []
    for keys, label in _PROVENANCE_KEYS:
        for k in keys:
            if k in prov:
                value = prov.pop(k)
                text = "yes" if value is True else "no" if value is False else str(value)
                if k == "command":
                    text = shorten_command(text)
                items.append({"label": label, "value": text})
                break
    packages = prov.pop("packages", None) or prov.pop("package_versions", None) or {}
    hashes = prov.pop("config_hashes", None)
    if hashes is None and "config_hash" in summary.runs:
        hashes = summary.runs["config_hash"].dropna().astype(str).unique().tolist()
    for k in sorted(prov):  # anything else the aggregator recorded, shown as it is
        v = prov[k]
        items.append({"label": str(k), "value": json.dumps(v, sort_keys=True)
                      if isinstance(v, (dict, list)) else str(v)})
    package_rows = [{"name": str(k), "version": str(v)} for k, v in sorted(packages.items())] \
        if isinstance(packages, dict) else []
    commits = _run_commits(summary.runs)
    if commits:
        items.append({"label": "runs trained at", "value": commits})
    package_sets = summary.runs["packages"].dropna().nunique() if "packages" in summary.runs else 0
    return {"items": items, "packages": package_rows,
            "config_hashes": sorted(map(str, hashes or [])),
            "package_sets": str(package_sets) if package_sets > 1 else ""}


#: The suite whose central comparison heads the report.
HEADLINE_SUITE = "slides"


def _headline(summary: Summary, palettes: Mapping[str, Mapping[str, str]],
              fig_dir: Path) -> dict[str, Any] | None:
    """The headline figure (fraction of seeds solved vs env steps, the slides' arms), or None
    when the summary has no slides runs."""
    runs = summary.runs[summary.runs["suite"].astype(str) == HEADLINE_SUITE]
    if runs.empty:
        return None
    env = sorted(runs["env"].astype(str).unique())[0]
    runs = runs[runs["env"].astype(str) == env]
    return _figure_entry(
        headline_figure(runs, palettes[HEADLINE_SUITE]), fig_dir, "headline.png",
        "The slides' comparison",
        f"Fraction of seeds solved against environment steps on {env}, per arm of the slides suite",
        f"Kaplan-Meier fraction of the seeds that reached the threshold (running reward, the "
        f"sources' rule) by a given number of environment steps on {env}, log scale, one line "
        "per arm; dotted and dashed lines: the slides' quoted ~800k steps (vanilla) and ~160k "
        "(reward-to-go with a baseline), each from one run.")
