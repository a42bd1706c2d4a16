"""What a finished pipeline run cost, per suite and environment, from its own records.

Two sources, both written by the run itself:

- ``<results>/benchmarks/**.tsv``: Snakemake's ``benchmark:`` file of every job (wall ``s`` and
  ``cpu_time``, the job's whole process: start-up, training, writing);
- ``<results>/runs/**/run.json``: each run's share of its job's training time (``provenance``
  ``cpu_s`` / ``elapsed_s``).

A run whose ``run.json`` is older than its job's start was not trained by that job (the job
skipped it: a run kept from an earlier sitting, e.g. ``reports/full/runs/``); its CPU time is
counted apart, as "reused", from its own ``run.json``.

Usage::

    python benchmarks/job_costs.py results/full     # from the workflow's root: a Markdown table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from pgbench.analysis.compute import _benchmark_files, _benchmark_identity


def _job_rows(results: Path) -> list[dict]:
    rows = []
    for tsv, root in _benchmark_files(results / "benchmarks"):  # the aggregate's own reader
        ident = _benchmark_identity(tsv, root)
        rel = tsv.relative_to(root).with_suffix("")
        bench = pd.read_csv(tsv, sep="\t").iloc[-1]
        start = tsv.stat().st_mtime - float(bench["s"])
        row = {"rule": ident["rule"], "suite": ident["suite"], "env": ident["env"], "jobs": 1,
               "job_wall_s": float(bench["s"]), "job_cpu_s": float(bench["cpu_time"]),
               "trained": 0, "reused": 0, "trained_cpu_s": 0.0, "reused_cpu_s": 0.0}
        spec = results / "specs" / rel.with_suffix(".json")
        if ident["rule"] == "train" and spec.exists():
            for arm in json.loads(spec.read_text())["arms"]:
                for seed in arm["seeds"]:
                    run_json = Path(arm["out"].format(seed=seed)) / "run.json"  # from the workflow's root
                    cpu = float(json.loads(run_json.read_text())["provenance"]["cpu_s"])
                    kind = "trained" if run_json.stat().st_mtime >= start - 1.0 else "reused"
                    row[kind] += 1
                    row[f"{kind}_cpu_s"] += cpu
        rows.append(row)
    return rows


def job_costs(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per suite and environment, per job) costs of the run in ``results``."""
    jobs = pd.DataFrame(_job_rows(results))
    if jobs.empty:
        raise SystemExit(f"{results}/benchmarks holds no Snakemake benchmark files (*.tsv)")
    per = (jobs.groupby(["rule", "suite", "env"], sort=True)
           .agg(jobs=("jobs", "sum"), trained=("trained", "sum"), reused=("reused", "sum"),
                job_cpu_s=("job_cpu_s", "sum"), job_wall_s=("job_wall_s", "sum"),
                longest_job_s=("job_wall_s", "max"), trained_cpu_s=("trained_cpu_s", "sum"),
                reused_cpu_s=("reused_cpu_s", "sum"))
           .reset_index())
    return per, jobs


def _markdown(per: pd.DataFrame) -> str:
    head = ("| job | jobs | runs trained (reused) | job CPU | job wall (sum) | longest job | "
            "runs' CPU: trained / reused |\n|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]

    def row(name, r):
        runs = f"{int(r['trained'])} ({int(r['reused'])})" if r["trained"] or r["reused"] else "—"
        lines.append(f"| {name} | {int(r['jobs'])} | {runs} | {r['job_cpu_s']:,.0f} s | "
                     f"{r['job_wall_s']:,.0f} s | {r['longest_job_s']:,.0f} s | "
                     f"{r['trained_cpu_s']:,.0f} s / {r['reused_cpu_s']:,.0f} s |")

    for r in per.to_dict("records"):
        row(f"{r['rule']} {r['suite']} {r['env']}" if r["rule"] == "train" else f"{r['rule']} {r['env']}", r)
    tot = per.sum(numeric_only=True)
    tot["longest_job_s"] = per["longest_job_s"].max()
    row("**all**", tot)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="the config's results directory, e.g. results/full")
    ap.add_argument("--jobs", action="store_true", help="print every job's row too")
    args = ap.parse_args(argv)
    per, jobs = job_costs(args.results)
    print(_markdown(per))
    if args.jobs:
        print()
        print(jobs.to_string(index=False))


if __name__ == "__main__":
    main()
