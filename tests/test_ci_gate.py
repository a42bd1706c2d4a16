"""The project gates itself as its users will: the CI suite against its committed reference.

Regenerate the reference after an intended change of results:
    snakemake results/ci/summary/runs.parquet --cores 2 --configfile config/ci.yaml
    pgbench reference results/ci/summary --out reports/ci-reference.json
"""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pgbench import estimators
from pgbench.aggregate import aggregate_runs
from pgbench.config import make_config
from pgbench.io import write_parquet_atomic
from pgbench.train import train_group

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reports" / "ci-reference.json"
CI_CONFIG = ROOT / "config" / "ci.yaml"


def check(summary, *extra):
    return subprocess.run([sys.executable, "-m", "pgbench.cli", "check", str(summary),
                           "--reference", str(REFERENCE), *extra], capture_output=True, text=True)


@pytest.mark.slow
def test_ci_suite_passes_the_gate(tmp_path):
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                          "results/ci/summary/runs.parquet", "--directory", str(tmp_path),
                          "--cores", "2", "--configfile", str(CI_CONFIG)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    junit = tmp_path / "check.xml"
    out = check(tmp_path / "results/ci/summary", "--junit", str(junit))
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    cases = ET.parse(junit).getroot().iter("testcase")
    assert len(list(cases)) == 2


@pytest.mark.slow
def test_flipped_baseline_sign_is_caught_as_a_regression(tmp_path, monkeypatch):
    """Train the CI suite with a broken estimator (baseline added instead of subtracted)."""
    original = estimators.ema_baseline

    def flipped(previous, psi, mask, weight):
        baseline, state = original(previous, psi, mask, weight)
        return -baseline, state

    monkeypatch.setattr(estimators, "ema_baseline", flipped)
    suite = yaml.safe_load(CI_CONFIG.read_text())["suites"]["ci"]
    seeds = list(range(suite["seeds"]))
    run_dirs = []
    for env in suite["envs"]:
        for variant in suite["variants"]:
            cfg = make_config(variant, {**suite["settings"], "env_id": env})
            dirs = [tmp_path / "runs" / variant / f"seed{s}" for s in seeds]
            train_group(cfg, seeds, dirs, meta={"suite": "ci", "arm": variant, "setting": {}})
            run_dirs += dirs
    summary = tmp_path / "summary"
    for name, frame in aggregate_runs(run_dirs).items():
        write_parquet_atomic(summary / f"{name}.parquet", frame)
    out = check(summary)
    print(out.stdout)
    assert out.returncode == 1, out.stdout + out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("ci/")}
    assert "regression" in rows["ci/CartPole-v1/rtg_baseline"].lower()
    # vanilla has no baseline: the broken estimator does not touch it
    assert "identical" in rows["ci/CartPole-v1/vanilla"]
