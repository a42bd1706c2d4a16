"""The Slurm path, end to end, on a throwaway single-node Slurm cluster (tests/cluster/slurm.sh).

These tests start real daemons (munged, mariadbd, slurmdbd, slurmctld, slurmd) and need root and
Debian's Slurm packages, so an ordinary ``python -m pytest`` skips them. ``.ci/run`` runs them:

    PGBENCH_SLURM_TESTS=1 python -m pytest tests/cluster -m cluster

The cluster is brought up once for the module and torn down after it, leaving nothing running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SLURM_SH = ROOT / "tests" / "cluster" / "slurm.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
SMOKE = ROOT / "config" / "smoke.yaml"
CANCEL = ROOT / "tests" / "cluster" / "cancel.yaml"
# The plugin first asks for job states 40 s after a submission; a test of six short jobs in four
# waves would spend most of its time waiting. Only the polling interval differs from the profile.
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "2"]

STARTED: list[subprocess.Popen] = []

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.environ.get("PGBENCH_SLURM_TESTS") != "1",
                       reason="starts a Slurm cluster (root, apt): run by .ci/run, or with "
                              "PGBENCH_SLURM_TESTS=1 python -m pytest tests/cluster"),
]


@pytest.fixture(scope="module")
def cluster():
    """A running single-node cluster; its clients' environment (SLURM_CONF)."""
    subprocess.run([SLURM_SH, "install"], check=True)
    subprocess.run([SLURM_SH, "up"], check=True)
    try:
        conf = subprocess.run([SLURM_SH, "env"], check=True, capture_output=True, text=True)
        env = dict(os.environ, SLURM_CONF=conf.stdout.strip().split("=", 1)[1])
        # the jobs run `pgbench` from PATH: make them import this tree's package
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        yield env
    finally:
        for proc in STARTED:  # a failed test may leave its snakemake running
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
        subprocess.run([SLURM_SH, "down"], check=True)


def snakemake(workdir: Path, configfile: Path, *args: str, env=None, **popen):
    """Run the pipeline in `workdir` (its results/ and logs/ go there); returns the process."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), *args]
    log = open(workdir / f"snakemake-{time.monotonic_ns()}.log", "w")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            text=True, **popen)
    log.close()  # the child holds its own copy
    proc.log_path = Path(log.name)
    STARTED.append(proc)
    return proc


def finish(proc, timeout=900) -> str:
    """Wait for a snakemake process; its log."""
    proc.wait(timeout=timeout)
    return proc.log_path.read_text()


def slurm_run(workdir, configfile, env, *args):
    return snakemake(workdir, configfile, "--profile", str(PROFILE), *FAST_POLL, *args, env=env)


def run_uuid(log: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", log)
    assert match, "snakemake did not use the slurm executor"
    return match.group(1)


def sacct_jobs(uuid: str, env) -> list[dict]:
    """The accounting records of one snakemake run: job id, state, comment (rule and wildcards)."""
    out = subprocess.run(
        ["sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-1days",
         "--format=JobIdRaw,State,Comment", "--name", uuid],
        check=True, capture_output=True, text=True, env=env).stdout
    return [dict(zip(["id", "state", "comment"], line.split("|"))) for line in out.splitlines()]


def rule_of(comment: str) -> str:
    """The rule a job ran: the plugin comments each job `rule_<name>[_wildcards_<values>]`."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def job_stats(log: str) -> Counter:
    """The `Job stats` table snakemake prints before it starts: rule -> number of jobs."""
    table = log.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines()[3:]]
    return Counter({name: int(count) for name, count in rows if name != "total"})


def config_paths(configfile: Path) -> dict:
    return yaml.safe_load(configfile.read_text())


def episodes_files(workdir: Path, results: str) -> dict[str, bytes]:
    root = workdir / results / "runs"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("episodes.parquet"))}


def test_smoke_config_through_the_slurm_profile(cluster, tmp_path):
    """Every job of config/smoke.yaml goes through sbatch; the report is made; each run's
    episodes.parquet has the bytes of a local run of the same config."""
    paths = config_paths(SMOKE)
    slurm = slurm_run(tmp_path / "slurm", SMOKE, cluster)
    local = snakemake(tmp_path / "local", SMOKE, "--cores", "1", env=cluster)
    local_log, slurm_log = finish(local), finish(slurm)
    assert local.returncode == 0, local_log[-3000:]
    assert slurm.returncode == 0, slurm_log[-3000:]

    # every job of the DAG is one Slurm job that completed; `all` only names the targets
    planned = job_stats(slurm_log)
    del planned["all"]
    records = sacct_jobs(run_uuid(slurm_log), cluster)
    assert [r["state"] for r in records] == ["COMPLETED"] * len(records), records
    submitted = Counter(rule_of(r["comment"]) for r in records)
    assert submitted == planned, (submitted, planned)
    assert len(re.findall(r"has been submitted with SLURM jobid", slurm_log)) == sum(planned.values())

    report = tmp_path / "slurm" / paths["reports"] / "index.html"
    assert report.stat().st_size > 0
    local_runs = episodes_files(tmp_path / "local", paths["results"])
    slurm_runs = episodes_files(tmp_path / "slurm", paths["results"])
    assert local_runs, "the local run wrote no episodes.parquet"
    assert sorted(slurm_runs) == sorted(local_runs)
    differ = [name for name in local_runs if slurm_runs[name] != local_runs[name]]
    assert not differ, f"episodes.parquet differs from the local run in {differ}"


def squeue_state(uuid: str, env) -> dict[str, tuple[str, str]]:
    """job id -> (state, comment) of the run's jobs still known to slurmctld."""
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--name", uuid,
                          "--format=%i|%T|%k"], check=True, capture_output=True, text=True,
                         env=env).stdout
    return {i: (state, comment) for i, state, comment in
            (line.split("|", 2) for line in out.splitlines())}


def test_scancel_midway_then_rerun_completes(cluster, tmp_path):
    """scancel a training job after its first run is written and before its last one is: the
    workflow fails; a rerun completes, and keeps the run finished before the cancel."""
    paths = config_paths(CANCEL)
    workdir = tmp_path / "wf"
    runs = workdir / paths["results"] / "runs" / "cancel" / "CartPole-v1"
    short_run = runs / "rtg__total_steps=2000" / "seed0"
    long_run = runs / "rtg__total_steps=60000" / "seed0"
    # Only the training job: aggregate, claims and report would add three waves of jobs and
    # test nothing the smoke test does not. --retries 0: the profile's one retry would
    # resubmit the cancelled job within this invocation.
    target = str(runs.relative_to(workdir) / "block0.done")
    first = slurm_run(workdir, CANCEL, cluster, "--retries", "0", target)
    deadline = time.monotonic() + 600
    while not (short_run / "run.json").exists():
        assert first.poll() is None, "snakemake ended before the first run was written"
        assert time.monotonic() < deadline, "the short run was not written within 10 minutes"
        time.sleep(0.5)
    uuid = run_uuid(first.log_path.read_text())
    running = [i for i, (state, comment) in squeue_state(uuid, cluster).items()
               if state == "RUNNING" and rule_of(comment) == "train"]
    assert len(running) == 1, squeue_state(uuid, cluster)
    assert not (long_run / "run.json").exists(), "the long run finished before the cancel"
    subprocess.run(["scancel", running[0]], check=True, env=cluster)
    first_log = finish(first)
    assert first.returncode != 0, first_log[-3000:]
    assert "CANCELLED" in first_log
    assert not (runs / "block0.done").exists()
    short_stat = (short_run / "episodes.parquet").stat()

    rerun = slurm_run(workdir, CANCEL, cluster, target)
    rerun_log = finish(rerun)
    assert rerun.returncode == 0, rerun_log[-3000:]
    assert (runs / "block0.done").exists()
    assert (long_run / "run.json").exists()
    # the rerun trained only the unfinished run: the finished one is the same file, untouched
    again = (short_run / "episodes.parquet").stat()
    assert (again.st_ino, again.st_mtime_ns) == (short_stat.st_ino, short_stat.st_mtime_ns)
    train_log = (workdir / paths["logs"] / "train" / "cancel" / "CartPole-v1" / "block0.log")
    assert "skipping 1 of 2 runs, complete with the same" in train_log.read_text()
