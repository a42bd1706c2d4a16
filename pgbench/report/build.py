"""Build a report: figures into a directory and the template context, then render and write
both files atomically (``pgbench report``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from pgbench import __version__
from pgbench.analysis.summary import Summary, load_summary
from pgbench.claims.model import load_claims
from pgbench.core.contracts import VERDICTS
from pgbench.core.errors import UserError
from pgbench.core.io import replace_dir_atomic, staging_dir, write_text_atomic
from pgbench.report import exact as exactreport
from pgbench.report import validation as validationreport
from pgbench.report.claim_tables import claim_answers, claim_groups
from pgbench.report.figures import style
from pgbench.report.render import render_html, render_markdown
from pgbench.report.sections import (
    _compute_section,
    _env_sections,
    _gradstudy_section,
    _headline,
    _provenance_section,
)
from pgbench.report.tables import VERDICT_ICONS, _verdict_rows

#: The one command that reruns everything, quoted in the report.
REPRODUCE_COMMAND = "snakemake --cores 8"
#: The config `snakemake` reads when given none (the Snakefile's default).
DEFAULT_CONFIG = "config/config.yaml"


def reproduce_command(configfile: str | None) -> str:
    """The command that reruns the pipeline this report came from: the default config needs no
    ``--configfile``; any other config is named (as the workflow passed it).

    >>> reproduce_command(None), reproduce_command("config/validate.yaml")
    ('snakemake --cores 8', 'snakemake --cores 8 --configfile config/validate.yaml')
    """
    if not configfile or os.path.normpath(configfile) == os.path.normpath(DEFAULT_CONFIG):
        return REPRODUCE_COMMAND
    return f"{REPRODUCE_COMMAND} --configfile {shlex.quote(configfile)}"


def _generated_at(when: dt.datetime | None) -> dt.datetime:
    """The report's date: ``when``, else ``SOURCE_DATE_EPOCH`` (reproducible builds), else now."""
    if when is not None:
        return when.astimezone(dt.UTC)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    return dt.datetime.now(dt.UTC)


def build_report(summary: Summary, fig_dir: str | os.PathLike, *, seed: int = 0,
                 n_boot: int = 2000, command: str | None = None,
                 generated_at: dt.datetime | None = None,
                 configfile: str | None = None) -> dict[str, Any]:
    """Draw every figure into ``fig_dir`` and return the template context.

    The context holds only formatted strings, lists of dicts of them, and figure paths relative
    to the report (``figures/<name>.png``). Bootstrap resamples and jitter of each (suite, env)
    come from :func:`pgbench.core.seeding.named_rng` of ``seed``.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    # One palette per suite (an arm keeps its colour in every figure and table of its suite),
    # and one for the gradient study's estimators: each starts at the first colour-blind-safe
    # colour, so no figure needs more distinct colours than it has lines.
    runs = summary.runs.astype({"suite": str, "arm": str})
    palettes = {suite: style.arm_palette(group["arm"]) for suite, group in runs.groupby("suite")}
    estimators = (style.arm_palette(summary.gradstudy["estimator"].astype(str))
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
        "validation": validationreport.section(summary, load_claims()),
        "compute": _compute_section(summary, palettes),
        "provenance": provenance,
        "reproduce": {"command": reproduce_command(configfile), "commit": commit},
    }


def render_report(summary_dir: str | os.PathLike, out_dir: str | os.PathLike = "reports", *,
                  seed: int = 0, n_boot: int = 2000, command: str | None = None,
                  generated_at: dt.datetime | None = None,
                  configfile: str | None = None) -> dict[str, Path]:
    """Render ``out_dir/index.html``, ``out_dir/README.md`` and ``out_dir/figures/``, and write
    ``out_dir/digest.json`` (:mod:`pgbench.report.digest`).

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
                               generated_at=generated_at, configfile=configfile)
        html, markdown = render_html(context), render_markdown(context)
        replace_dir_atomic(staging, final_figs)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_text_atomic(out / "index.html", html)
    write_text_atomic(out / "README.md", markdown)
    # what `pgbench compare` compares a run with: every run's episodes digest, every verdict
    from pgbench.report.digest import FILE_NAME, write_digest

    write_digest(summary.path, out / FILE_NAME)
    return {"index_html": out / "index.html", "readme_md": out / "README.md",
            "figures": final_figs, "digest": out / FILE_NAME}


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
    parser.add_argument("--configfile", metavar="PATH",
                        help="the workflow config the summary came from, named in the report's "
                             f"Reproduce section (default: {DEFAULT_CONFIG}; the workflow passes it)")


def _shown(path: str | os.PathLike) -> str:
    """``path`` as the report's Reproduce section shows it: relative to the working directory
    when it lies inside it (an absolute path names one machine's folders), else as given.

    >>> _shown(os.path.join(os.getcwd(), "results", "summary")), _shown("/elsewhere/summary")
    ('results/summary', '/elsewhere/summary')
    """
    absolute = os.path.abspath(path)
    inside = os.path.commonpath([absolute, os.getcwd()]) == os.getcwd()
    return os.path.relpath(absolute) if inside else str(path)


def run(args: argparse.Namespace) -> int:
    if args.n_boot < 100:
        raise UserError(f"--n-boot {args.n_boot} is too small for a 95% interval; use at least 100")
    argv = ["pgbench", "report", _shown(args.summary_dir), "--out", _shown(args.out)]
    if args.seed != 0:
        argv += ["--seed", str(args.seed)]
    if args.n_boot != 2000:
        argv += ["--n-boot", str(args.n_boot)]
    if args.configfile:
        argv += ["--configfile", str(args.configfile)]
    command = " ".join(shlex.quote(a) for a in argv)
    from pgbench.core.outputs import REPORT, check_dir

    check_dir(args.out, REPORT, force=args.force)
    paths = render_report(args.summary_dir, args.out, seed=args.seed, n_boot=args.n_boot,
                          command=command, configfile=args.configfile)
    print(f"wrote {paths['index_html']} and {paths['readme_md']} "
          f"(figures in {paths['figures']}/)")
    return 0
