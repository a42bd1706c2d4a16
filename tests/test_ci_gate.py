"""The project gates itself as its users will: the CI suite against its committed reference.

The suite (config/ci.yaml) is one group of cheap compiled-engine seeds; the reference stores the
gate's settings (metric mean_return, margin 2%, designed to catch a 10% drop), so `pgbench check`
needs no options. Both
tests hold on any machine: on the reference's platform the unchanged suite is `identical`,
elsewhere it is tested and passes unless a false alarm strikes, which benchmarks/gate_power.py
measured at 0.2% (2 of 800 simulated repetitions, docs/check.md); a halved learning rate was
called a regression in 300 of 300.

Regenerate the reference after an intended change of results (one command; docs/check.md):
    snakemake results/ci/summary/runs.parquet --cores 2 --configfile config/ci.yaml && \\
    pgbench reference results/ci/summary --out reports/ci-reference.json \\
        --metric mean_return --min-effect 0.02 --detect 0.1
"""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pgbench.analysis.aggregate import aggregate_runs
from pgbench.core.io import write_parquet_atomic
from pgbench.rl.config import make_config
from pgbench.training.runner import train_group

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reports" / "ci-reference.json"
CI_CONFIG = ROOT / "config" / "ci.yaml"


def check(summary, *extra):
    return subprocess.run([sys.executable, "-m", "pgbench.cli", "check", str(summary),
                           "--reference", str(REFERENCE), *extra], capture_output=True, text=True)


def suite_groups():
    suite = yaml.safe_load(CI_CONFIG.read_text())["suites"]["ci"]
    return suite, [(env, variant) for env in suite["envs"] for variant in suite["variants"]]


def test_reference_matches_the_suite():
    """The committed reference was made from the shipped suite, with the gate's settings."""
    suite, groups = suite_groups()
    document = json.loads(REFERENCE.read_text())
    assert document["gate"] == {"metric": "mean_return", "min_effect": 0.02, "detect": 0.1}
    rows = document["rows"]
    assert {(r["env"], r["variant"]) for r in rows} == set(groups)
    assert sorted({r["seed"] for r in rows}) == list(range(suite["seeds"]))
    assert all(isinstance(r["mean_return"], float) for r in rows)


@pytest.mark.slow
def test_ci_suite_passes_the_gate(tmp_path):
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                          "results/ci/summary/runs.parquet", "--directory", str(tmp_path),
                          "--cores", "2", "--configfile", str(CI_CONFIG)],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    junit = tmp_path / "check.xml"
    out = check(tmp_path / "results/ci/summary", "--junit", str(junit))
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    _, groups = suite_groups()
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == len(groups)
    # identical on the reference's platform, otherwise tested: never a failure or a skip here
    # unless the measured (< 1%) false-alarm or inconclusive rate strikes
    assert all(c.find("failure") is None for c in cases)


@pytest.mark.slow
def test_halved_learning_rate_is_caught_as_a_regression(tmp_path):
    """Train the CI suite with its learning rate halved: a planted regression of 16.7% of the
    mean return over training, which the simulation detected in 300 of 300 repetitions."""
    suite, groups = suite_groups()
    seeds = list(range(suite["seeds"]))
    run_dirs = []
    for env, variant in groups:
        settings = {**suite["settings"], "env_id": env}
        cfg = make_config(variant, {**settings, "lr": settings["lr"] / 2})
        dirs = [tmp_path / "runs" / variant / f"seed{s}" for s in seeds]
        train_group(cfg, seeds, dirs, meta={"suite": "ci", "arm": variant, "setting": {}})
        run_dirs += dirs
    summary = tmp_path / "summary"
    for name, frame in aggregate_runs(run_dirs).items():
        write_parquet_atomic(summary / f"{name}.parquet", frame)
    out = check(summary)
    print(out.stdout)
    assert out.returncode == 1, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("ci/")]
    assert len(rows) == len(groups) and all("REGRESSION" in row for row in rows)
    assert "config changed" in rows[0]
