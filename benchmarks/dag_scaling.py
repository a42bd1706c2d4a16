"""How the workflow's DAG building and job count scale with the number of runs.

Writes a config of RUNS training runs (one suite, CartPole-v1, 5 variants x 2 dropout values =
10 arms, RUNS / 10 seeds) for each ``seeds_per_job`` asked for, and times ``snakemake -n`` on it
(wall clock and the CPU time of snakemake and its children). From the dry run's job table it
reports the jobs a real run submits: with the Slurm profile every job is one ``sbatch`` call
(tests/cluster/ checks that on a real cluster), so sbatch calls per run = jobs / runs. It also
reports the length of the longest shell command the DAG holds (``--printshellcmds``): Linux
refuses a single argument over 128 KiB (MAX_ARG_STRLEN), which is what ``bash -c`` receives.

    PYTHONPATH=$PWD python benchmarks/dag_scaling.py --runs 10000 --seeds-per-job 1 20 100
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["vanilla", "rtg", "baseline", "rtg_baseline", "rtg_value"]
DROPOUTS = [0.0, 0.6]


def config(runs: int, seeds_per_job: int) -> dict:
    arms = len(VARIANTS) * len(DROPOUTS)
    if runs % arms:
        raise SystemExit(f"--runs {runs} is not a multiple of the {arms} arms")
    return {"results": "results/scale", "logs": "results/scale/logs",
            "reports": "results/scale/reports",
            "suites": {"scale": {"envs": ["CartPole-v1"], "variants": VARIANTS,
                                 "seeds": runs // arms, "seeds_per_job": seeds_per_job,
                                 "settings": {"total_steps": 500_000},
                                 "vary": {"dropout": DROPOUTS}}}}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def dry_run(runs: int, seeds_per_job: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="dag-scaling-") as tmp:
        cfg = Path(tmp) / "scale.yaml"
        cfg.write_text(yaml.safe_dump(config(runs, seeds_per_job)))
        cmd = [sys.executable, "-m", "snakemake", "-n", "--printshellcmds",
               "-s", str(ROOT / "Snakefile"), "--directory", tmp, "--configfile", str(cfg)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise SystemExit(out.stdout[-2000:] + out.stderr[-2000:])
    text = out.stdout + out.stderr
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    jobs = {row[0]: int(row[1]) for row in (line.split() for line in table.splitlines()[3:])
            if len(row) == 2 and row[0] not in ("total", "all")}
    longest = max((len(line) for line in text.splitlines()), default=0)
    return {"runs": runs, "seeds_per_job": seeds_per_job, "jobs": jobs,
            "sbatch_calls": sum(jobs.values()),
            "sbatch_per_run": round(sum(jobs.values()) / runs, 4),
            "wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "longest_shell_command_chars": longest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seeds-per-job", type=int, nargs="+", default=[20])
    args = parser.parse_args()
    print(f"# {datetime.date.today()}, {cpu_model()}, {platform.python_version()}", flush=True)
    for spj in args.seeds_per_job:
        print(json.dumps(dry_run(args.runs, spj)), flush=True)


if __name__ == "__main__":
    main()
