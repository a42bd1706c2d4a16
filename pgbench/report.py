"""``pgbench report SUMMARY_DIR --out reports/``: the human-readable report of a summary.

Writes ``OUT/index.html`` (self-contained: inline CSS, no scripts, figures as PNG files beside it
in ``OUT/figures/``; opens offline without a single network request) and ``OUT/README.md`` (the
same content for a code host: Markdown tables, figures linked as ``figures/x.png``).

The work is split so that each part can be tested alone:

* :func:`load_summary` reads and checks the summary tables of docs/contracts.md;
* :func:`build_report` draws the figures into a directory and returns the template context:
  finished tables (lists of dicts of formatted strings) and figure file names, never raw data;
* :func:`render_html` / :func:`render_markdown` turn that context into text (HTML autoescaped;
  Markdown escaped by the environment's ``finalize`` hook, so a template cannot forget to);
* :func:`render_report` does all of it and replaces the output files atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from pgbench import __version__, exactreport, figures, stats
from pgbench.headline import headline_figure
from pgbench.reportclaims import claim_answers, claim_groups
from pgbench.aggregate import parse_setting_label
from pgbench.errors import UserError
from pgbench.io import read_json_object, replace_dir_atomic, staging_dir, write_text_atomic

#: Columns each summary table must have (docs/contracts.md); extra columns are ignored.
RUNS_COLUMNS = ("suite", "env", "variant", "arm", "setting", "seed", "threshold", "budget_steps",
                "env_steps", "final_return", "steps_to_threshold", "censored", "wall_s", "cpu_s")
CURVES_COLUMNS = ("suite", "env", "arm", "seed", "env_steps", "return", "carried")
COMPUTE_COLUMNS = ("rule", "suite", "env", "arm", "seeds", "s", "cpu_time", "max_rss",
                   "env_steps", "steps_per_s")
CLAIMS_COLUMNS = ("claim_id", "source", "quote", "setting", "statistic", "estimate", "ci_low",
                  "ci_high", "confidence", "threshold", "direction", "verdict", "n_seeds",
                  "seeds_needed", "detail")
GRADSTUDY_COLUMNS = ("env", "snapshot", "estimator", "episodes_per_batch", "n_batches",
                     "total_variance", "total_variance_ci_low", "total_variance_ci_high",
                     "relative_bias_corrected", "relative_bias_corrected_ci_low",
                     "relative_bias_corrected_ci_high", "bias_over_noise", "cosine_to_reference")
PAIRS_COLUMNS = ("env", "snapshot", "episodes_per_batch", "estimator_a", "estimator_b",
                 "variance_ratio", "variance_ratio_ci_low", "variance_ratio_ci_high",
                 "mean_diff_pvalue")

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")

#: Markdown cannot colour a badge on a code host; these emoji carry the colour there.
VERDICT_ICONS = {"reproduced": "✅", "not reproduced": "❌", "inconclusive": "⚠️", "not run": "⏸️"}

#: The one command that reruns everything, quoted in the report.
REPRODUCE_COMMAND = "snakemake --cores 8"

#: Per-job compute rows beyond this are folded into a <details> element.
_FOLD_ROWS = 25

TEMPLATES = ("index.html.j2", "README.md.j2")


# ---------------------------------------------------------------------------------------------
# Loading the summary
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """The tables of one summary directory. Optional tables are ``None`` when absent."""

    path: Path
    runs: pd.DataFrame
    curves: pd.DataFrame
    compute: pd.DataFrame
    provenance: dict[str, Any]
    claims: pd.DataFrame | None
    gradstudy: pd.DataFrame | None
    gradstudy_pairs: pd.DataFrame | None


def _read_parquet(path: Path, columns: Iterable[str], *, required: bool = True,
                  allow_empty: bool = False) -> pd.DataFrame | None:
    if not path.is_file():
        if required:
            raise UserError(f"summary table {path} is missing; run `pgbench aggregate` to write it")
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for truncated or foreign files
        raise UserError(f"cannot read summary table {path}: {err}") from err
    if allow_empty and frame.empty:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"summary table {path} lacks column(s) {', '.join(missing)} "
                        f"(see docs/contracts.md); it has: {', '.join(map(str, frame.columns))}")
    return frame


def load_summary(summary_dir: str | os.PathLike) -> Summary:
    """Read a summary directory written by ``pgbench aggregate`` (and ``pgbench claims``).

    ``runs.parquet``, ``curves.parquet`` and ``provenance.json`` are required; ``compute.parquet``
    may be absent or empty; ``claims.parquet`` and ``gradstudy*.parquet`` are optional. Raises
    :class:`UserError` naming the path for a missing or unreadable file or a missing column.
    """
    root = Path(summary_dir)
    if not root.is_dir():
        raise UserError(f"summary directory {root} does not exist; pass the --out directory of "
                        f"`pgbench aggregate`")
    runs = _read_parquet(root / "runs.parquet", RUNS_COLUMNS)
    if runs.empty:
        raise UserError(f"summary table {root / 'runs.parquet'} has no runs")
    curves = _read_parquet(root / "curves.parquet", CURVES_COLUMNS)
    compute = _read_parquet(root / "compute.parquet", COMPUTE_COLUMNS, required=False,
                            allow_empty=True)
    prov_path = root / "provenance.json"
    if not prov_path.is_file():
        raise UserError(f"{prov_path} is missing; run `pgbench aggregate` to write it")
    provenance = read_json_object(prov_path, "the provenance.json of `pgbench aggregate`")
    claims = _read_parquet(root / "claims.parquet", CLAIMS_COLUMNS, required=False)
    if claims is not None:
        bad = sorted(set(claims["verdict"].astype(str)) - set(VERDICTS))
        if bad:
            raise UserError(f"{root / 'claims.parquet'} has unknown verdict(s) {', '.join(map(repr, bad))}; "
                            f"accepted: {', '.join(VERDICTS)}")
    gradstudy = _read_parquet(root / "gradstudy.parquet", GRADSTUDY_COLUMNS, required=False)
    pairs = _read_parquet(root / "gradstudy_pairs.parquet", PAIRS_COLUMNS, required=False)
    return Summary(root, runs, curves, compute if compute is not None else pd.DataFrame(),
                   provenance, claims, gradstudy if gradstudy is not None and not gradstudy.empty
                   else None, pairs)


# ---------------------------------------------------------------------------------------------
# Formatting: every number the templates show is a string made here
# ---------------------------------------------------------------------------------------------

DASH = "—"


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _number(x: Any) -> bool:
    """A real number, finite or infinite (an unbounded CI end is a result, not a gap)."""
    try:
        return x is not None and not math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def fmt_num(x: Any, digits: int = 3) -> str:
    """A number for a table: thousands separators for large values, ``digits`` significant
    digits otherwise, ∞ for infinity, an em dash for missing/NaN.

    >>> fmt_num(160231), fmt_num(0.91234), fmt_num(5.0), fmt_num(float("nan")), fmt_num(-math.inf)
    ('160,231', '0.912', '5', '—', '−∞')
    """
    if not _number(x):
        return DASH
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}" if 1e-3 <= abs(x) else f"{x:.2e}"


def fmt_steps(x: Any) -> str:
    """Env steps, compact: 950, 12.3k, 1.5M."""
    if not _finite(x):
        return DASH
    return figures.format_steps(float(x))


def fmt_seconds(x: Any) -> str:
    """A duration: 12.3 s, 4m 05s, 2h 03m."""
    if not _finite(x):
        return DASH
    s = float(x)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def fmt_ci(low: Any, high: Any) -> str:
    """``low – high``; an unbounded end shows as ∞, a missing one makes the whole CI a dash."""
    if not (_number(low) and _number(high)):
        return DASH
    return f"{fmt_num(low)} – {fmt_num(high)}"


def slug(*parts: str) -> str:
    """A file-name/anchor-safe id, readable and unique: ``slides-cartpole-v1-1a2b3c``.

    Only ``[a-z0-9-]``, so it needs no escaping in HTML attributes, URLs or Markdown links; the
    short hash keeps two names that slugify alike apart.
    """
    text = "-".join(parts)
    readable = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:6]
    return f"{readable}-{digest}" if readable else digest


# ---------------------------------------------------------------------------------------------
# Markdown escaping
# ---------------------------------------------------------------------------------------------

# Characters with a meaning in GitHub-flavoured Markdown inline text or tables. `<`, `>` and `&`
# become entities (so raw HTML never starts); the others get a backslash, which CommonMark
# defines for every ASCII punctuation character.
_MD_BACKSLASH = re.compile(r"([\\`*_\[\]|~$])")


def md_escape(value: Any) -> str:
    """Escape text for a Markdown paragraph or table cell: it renders as exactly that text.

    >>> md_escape("<b>a|b</b> *x*")
    '&lt;b&gt;a\\\\|b&lt;/b&gt; \\\\*x\\\\*'
    """
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_BACKSLASH.sub(r"\\\1", text)
    return re.sub(r"\s*[\r\n]+\s*", " ", text)  # a newline would end a table row


def md_code_block(text: Any, lang: str = "") -> Markup:
    """A fenced code block whose fence is longer than any backtick run inside ``text``."""
    text = str(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return Markup(f"{fence}{lang}\n{text}\n{fence}")


def _md_finalize(value: Any) -> Any:
    """Escape every ``{{ expression }}`` of the Markdown templates unless marked safe (Markup)."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return md_escape(value)


def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.PackageLoader("pgbench", "templates")
    common = dict(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
                  lstrip_blocks=True, keep_trailing_newline=True)
    html = jinja2.Environment(autoescape=True, **common)
    markdown = jinja2.Environment(autoescape=False, finalize=_md_finalize, **common)
    markdown.filters["code_block"] = md_code_block
    return html, markdown


def render_html(context: Mapping[str, Any]) -> str:
    """index.html from a context made by :func:`build_report` (autoescaped)."""
    return _environments()[0].get_template("index.html.j2").render(**context)


def render_markdown(context: Mapping[str, Any]) -> str:
    """README.md from a context made by :func:`build_report` (every value Markdown-escaped)."""
    return _environments()[1].get_template("README.md.j2").render(**context)


# ---------------------------------------------------------------------------------------------
# Building the context: tables and figures
# ---------------------------------------------------------------------------------------------

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
            "statistic": str(c["statistic"]), "estimate": fmt_num(c["estimate"]),
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
        # the claims' estimate (pgbench.stats), so the two tables agree
        median = stats.km_median(one["steps_to_threshold"].to_numpy(dtype=float),
                                 ~solved.to_numpy()).median
        final = one["final_return"].to_numpy(dtype=float)[:, None]
        mean, low, high = figures.bootstrap_mean_ci(final, rng, n_boot=n_boot)
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
    width, height = (fig.get_size_inches() * figures.PNG_DPI).round().astype(int)
    figures.save_png(fig, directory / name)
    return {"file": f"figures/{name}", "title": title, "alt": alt, "caption": caption,
            "width": int(width), "height": int(height)}


def section_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator for one section, from the report seed and the section's names: adding a
    suite to the summary leaves the other sections' bootstrap bands and jitter unchanged."""
    digest = hashlib.sha256("\x1f".join(names).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


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
        rng = section_rng(seed, suite, env)
        threshold = _single(runs, "threshold")
        budget = _single(runs, "budget_steps")
        n_solved_stop = int((~runs["censored"].astype(bool)).sum())
        figs = []
        if not curves.empty:
            figs.append(_figure_entry(
                figures.learning_curves_figure(curves, palette, rng=rng, threshold=threshold,
                                               n_boot=n_boot),
                fig_dir, f"curves-{key}.png", "Learning curves",
                f"Learning curves on {env} ({suite}): mean return vs environment steps per arm",
                "Mean episode return across seeds (line) with a 95% bootstrap CI over seeds "
                "(band); each seed's value at a step is the mean of its last 10 finished "
                "episodes. Dashed stretches include runs that had already solved and stopped: "
                "their last value is carried forward, not measured. A curve ends where one of "
                "its seeds stopped at its step budget, since nothing was measured past it."))
        figs.append(_figure_entry(
            figures.solved_fraction_figure(runs, palette), fig_dir, f"solved-{key}.png",
            "Fraction of seeds solved",
            f"Kaplan-Meier curves of the fraction of seeds solved vs environment steps on {env}",
            "Kaplan-Meier estimate of the fraction of seeds that reached the threshold by a given "
            "number of environment steps, under the sources' running-reward rule (left) and the "
            "plain rule, mean of the last 100 returns (right). Ticks: seeds censored there "
            "(budget reached without solving)."))
        figs.append(_figure_entry(
            figures.steps_to_solve_figure(runs, palette, rng=rng), fig_dir, f"steps-{key}.png",
            "Steps to solve per seed",
            f"Per-seed environment steps to reach the threshold on {env}, censored seeds hollow",
            "One dot per seed: environment steps until the running reward reached the threshold. "
            "Hollow dots are censored seeds, drawn at the step they stopped without solving; "
            "they would have needed at least that many."
            + (f" Dotted line: the step budget ({fmt_steps(budget)})." if budget else "")))
        figs.append(_figure_entry(
            figures.final_return_figure(runs, palette, rng=rng, threshold=threshold), fig_dir,
            f"final-{key}.png", "Final returns",
            f"Distribution of per-seed final returns per arm on {env}",
            "One dot per seed: mean return of the last 10% of its episodes; the box spans the "
            "quartiles. Runs that stop early by solving end on their solving episodes."))
        sections.append({
            "suite": suite, "env": env, "anchor": key,
            "threshold": fmt_num(threshold) if threshold is not None else DASH,
            "budget": fmt_steps(budget) if budget is not None else DASH,
            "n_runs": str(len(runs)), "n_solved": str(n_solved_stop),
            "arms": _arm_table(runs, palette, rng, n_boot), "figures": figs,
        })
    return sections


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
                figures.gradient_variance_figure(one, palette, episodes_per_batch=chosen),
                fig_dir, f"gradvar-{key}.png", "Gradient variance per estimator",
                f"Total gradient variance per estimator on {env}, log scale, with CIs",
                f"Trace of the covariance of the batch policy gradient, {chosen} episode(s) per "
                f"batch, at each policy snapshot (marker shape), with its confidence interval. "
                f"Log scale: equal distances are equal ratios."),
        ]
        if len(batch_sizes) > 1:
            figs.append(_figure_entry(
                figures.variance_vs_batch_figure(one, palette), fig_dir,
                f"gradbatch-{key}.png", "Variance vs episodes per batch",
                f"Gradient variance vs episodes per batch on {env}, log-log",
                "Total gradient variance as the batch grows, one panel per policy snapshot. "
                "Averaging independent episodes gives a slope of -1 on these axes."))
        at = one[one["episodes_per_batch"] == chosen]
        order = {s: i for i, s in enumerate(figures.snapshot_order(at["snapshot"]))}
        at = at.assign(_o=at["snapshot"].astype(str).map(order)).sort_values(["_o", "estimator"])
        est_rows = [{
            "_colour": palette.get(str(r["estimator"])), "estimator": str(r["estimator"]),
            "snapshot": str(r["snapshot"]), "n_batches": fmt_num(r["n_batches"]),
            "variance": fmt_num(r["total_variance"]),
            "ci": fmt_ci(r["total_variance_ci_low"], r["total_variance_ci_high"]),
            "relative_bias": (f"{fmt_num(r['relative_bias_corrected'])} "
                              f"{fmt_ci(r['relative_bias_corrected_ci_low'], r['relative_bias_corrected_ci_high'])}"),
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


def shorten_command(command: str, limit: int = 400) -> str:
    """``command`` cut after the argument that passes ``limit`` characters, saying how many
    arguments were left out (the pipeline's aggregate command lists every run directory).

    >>> shorten_command("pgbench aggregate a b c --out s", limit=20)
    'pgbench aggregate a ... (4 more arguments; the whole command is in provenance.json)'
    """
    if len(command) <= limit:
        return command
    words = command.split(" ")
    kept, length = [], -1
    for word in words:
        if kept and length + 1 + len(word) > limit:
            break
        kept.append(word)
        length += 1 + len(word)
    return (" ".join(kept) + f" ... ({len(words) - len(kept)} more arguments; the whole "
            "command is in provenance.json)")


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


def _generated_at(when: dt.datetime | None) -> dt.datetime:
    """The report's date: ``when``, else ``SOURCE_DATE_EPOCH`` (reproducible builds), else now."""
    if when is not None:
        return when.astimezone(dt.timezone.utc)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def build_report(summary: Summary, fig_dir: str | os.PathLike, *, seed: int = 0,
                 n_boot: int = 2000, command: str | None = None,
                 generated_at: dt.datetime | None = None) -> dict[str, Any]:
    """Draw every figure into ``fig_dir`` and return the template context.

    The context holds only formatted strings, lists of dicts of them, and figure paths relative
    to the report (``figures/<name>.png``). Bootstrap resamples and jitter of each (suite, env)
    come from :func:`section_rng` of ``seed``.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    # One palette per suite (an arm keeps its colour in every figure and table of its suite),
    # and one for the gradient study's estimators: each starts at the first colour-blind-safe
    # colour, so no figure needs more distinct colours than it has lines.
    runs = summary.runs.astype({"suite": str, "arm": str})
    palettes = {suite: figures.arm_palette(group["arm"]) for suite, group in runs.groupby("suite")}
    estimators = (figures.arm_palette(summary.gradstudy["estimator"].astype(str))
                  if summary.gradstudy is not None else {})

    claims = _verdict_rows(summary.claims) if summary.claims is not None else None
    answers = claim_answers(summary.claims) if summary.claims is not None else None
    groups = claim_groups(summary.claims, claims) if summary.claims is not None else None
    counts = [{"verdict": v, "verdict_class": v.replace(" ", "-"), "icon": VERDICT_ICONS[v],
               "n": str(sum(r["verdict"] == v for r in claims))}
              for v in VERDICTS] if claims is not None else []
    when = _generated_at(generated_at)
    provenance = _provenance_section(summary)
    commit = next((i["value"] for i in provenance["items"] if i["label"] == "git commit"), None)
    return {
        "made": {
            "tool": "pgbench report", "version": __version__,
            "date": when.strftime("%Y-%m-%d %H:%M UTC"),
            "summary_dir": str(summary.path),
            "command": command or f"pgbench report {shlex.quote(str(summary.path))} --out reports",
            "seed": str(seed), "n_boot": str(n_boot),
        },
        "claims": claims,
        "answers": answers,
        "claim_groups": groups,
        "headline": _headline(summary, palettes, fig_dir),
        # exact16's exact-vs-sampled gradient study: a context entry the templates include
        # (exact_study.html.j2 / exact_study.md.j2) when present
        "exact_study": None,
        "verdict_counts": [c for c in counts if c["n"] != "0"],
        "sections": _env_sections(summary, palettes, fig_dir, seed, n_boot),
        "gradstudy": _gradstudy_section(summary, estimators, fig_dir),
        "exact": exactreport.section(summary, estimators, fig_dir),
        "compute": _compute_section(summary, palettes),
        "provenance": provenance,
        "reproduce": {"command": REPRODUCE_COMMAND, "commit": commit},
    }


def render_report(summary_dir: str | os.PathLike, out_dir: str | os.PathLike = "reports", *,
                  seed: int = 0, n_boot: int = 2000, command: str | None = None,
                  generated_at: dt.datetime | None = None) -> dict[str, Path]:
    """Render ``out_dir/index.html``, ``out_dir/README.md`` and ``out_dir/figures/``, and write
    ``out_dir/digest.json`` (:mod:`pgbench.digest`).

    Figures are drawn into a staging directory that replaces ``figures/`` in one rename, then
    the two documents are written atomically; other files in ``out_dir`` (e.g. a committed
    reference) are left alone. Returns the paths written.
    """
    summary = load_summary(summary_dir)
    out = Path(out_dir)
    final_figs = out / "figures"
    staging = staging_dir(final_figs)
    try:
        if command is None:
            command = " ".join(shlex.quote(str(a)) for a in
                               ("pgbench", "report", summary_dir, "--out", out_dir))
        context = build_report(summary, staging, seed=seed, n_boot=n_boot, command=command,
                               generated_at=generated_at)
        html, markdown = render_html(context), render_markdown(context)
        replace_dir_atomic(staging, final_figs)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_text_atomic(out / "index.html", html)
    write_text_atomic(out / "README.md", markdown)
    # what `pgbench compare` compares a run with: every run's episodes digest, every verdict
    from pgbench.digest import FILE_NAME, write_digest

    write_digest(summary.path, out / FILE_NAME)
    return {"index_html": out / "index.html", "readme_md": out / "README.md",
            "figures": final_figs, "digest": out / FILE_NAME}


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary_dir", metavar="SUMMARY_DIR",
                        help="summary directory written by `pgbench aggregate` (and `pgbench claims`)")
    parser.add_argument("--out", default="reports", metavar="DIR",
                        help="output directory for index.html, README.md and figures/ "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the bootstrap resamples and plot jitter (default: %(default)s)")
    parser.add_argument("--n-boot", type=int, default=2000, metavar="N",
                        help="bootstrap resamples for confidence bands (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing report in DIR (never files pgbench did not write)")


def run(args: argparse.Namespace) -> int:
    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot} is too small for a 95% interval; use at least 100")
    argv = ["pgbench", "report", str(args.summary_dir), "--out", str(args.out)]
    if args.seed != 0:
        argv += ["--seed", str(args.seed)]
    if args.n_boot != 2000:
        argv += ["--n-boot", str(args.n_boot)]
    command = " ".join(shlex.quote(a) for a in argv)
    from pgbench.outputs import REPORT, check_dir

    check_dir(args.out, REPORT, force=args.force)
    paths = render_report(args.summary_dir, args.out, seed=args.seed, n_boot=args.n_boot,
                          command=command)
    print(f"wrote {paths['index_html']} and {paths['readme_md']} "
          f"(figures in {paths['figures']}/)")
    return 0
