"""The Snakemake pipeline: config validation, its training job (`pgbench train-job`), a smoke run
end to end, kill and rerun."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pgbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]

TINY = {
    "suites": {
        "tiny": {
            "envs": ["CartPole-v1"],
            "variants": ["vanilla", "rtg_baseline"],
            "seeds": 2,
            "settings": {"episodes_per_update": 1, "total_steps": 2000},
        }
    }
}


def snakemake(workdir, *args, config=None, timeout=600):
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", *args]
    if config is not None:
        path = Path(workdir) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def with_suite(**changes):
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    cfg["suites"]["tiny"].update(changes)
    return cfg


@pytest.mark.parametrize("config, needles", [
    ({**TINY, "colour": "blue"}, ["colour", "Additional properties"]),
    (with_suite(seeds="many"), ["seeds", "many"]),
    (with_suite(seeds=[]), ["seeds"]),
    (with_suite(variants=["vanilla", "reinforce++"]), ["reinforce++", "vanilla", "rtg_baseline"]),
    (with_suite(envs=["CartPole-v9"]), ["CartPole-v9", "accepted:", "CartPole-v1"]),
    (with_suite(settings={"total_steps": -5}), ["total_steps", "-5"]),
    (with_suite(settings={"episodes_per_update": 1, "learning_rate": 0.1}), ["learning_rate"]),
    (with_suite(settings={"episodes_per_update": 1, "gamma": 2.0}), ["gamma", "2.0"]),
    (with_suite(vary={"dropout": [0.5, 0.5]}),
     ["'vanilla__dropout=0.5'", "given twice", "list each value of a varied setting once"]),
])
def test_bad_config_stops_before_any_job(tmp_path, config, needles):
    res = snakemake(tmp_path, "-n", config=config, timeout=120)
    assert res.returncode != 0
    text = res.stdout + res.stderr
    for needle in needles:
        assert needle in text, text[-3000:]
    assert not (tmp_path / "results").exists()


def test_dry_run_plans_the_default_suites(tmp_path):
    """As on a fresh clone: the committed report exists, results/ does not. Every job runs."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config")
    shutil.copytree(ROOT / "reports", tmp_path / "reports")
    assert (tmp_path / "reports" / "reference" / "index.html").exists()
    res = subprocess.run([*SNAKEMAKE, "-n", "--directory", str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = dict(line.split() for line in res.stdout.splitlines()
                  if line.split()[:1] in (["train"], ["report"], ["aggregate"]) and len(line.split()) == 2)
    # one job per (suite, env, block of seeds): slides 5 blocks of 6, cs234 (CartPole-v0) 2 of 5
    assert counts == {"train": "7", "aggregate": "1", "report": "1"}, res.stdout[-3000:]


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "ci.yaml", "full.yaml", "algos.yaml"])
def test_every_config_file_plans(tmp_path, name):
    """Each shipped config passes the workflow's checks (schema, then every arm's TrainConfig)."""
    res = subprocess.run([*SNAKEMAKE, "-n", "--directory", str(tmp_path), "--configfile",
                          str(ROOT / "config" / name)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_algos_config_is_the_full_configs_algos_suite():
    """config/algos.yaml runs the algos suite of config/full.yaml on its own: the two must not
    drift apart, or its report would check the claims at other settings than the full study."""
    import yaml

    def suites(name):
        return yaml.safe_load((ROOT / "config" / name).read_text())["suites"]

    assert suites("algos.yaml") == {"algos": suites("full.yaml")["algos"]}


def job_spec(*arms, env="CartPole-v1"):
    """A `pgbench train-job` spec of seeds 0, 1 writing runs/<arm>/seed<k>; each arm is
    (arm name, variant, overrides)."""
    return {"suite": "tiny", "env": env, "arms": [
        {"arm": arm, "variant": variant, "overrides": overrides,
         "setting": {k: v for k, v in overrides.items() if k == "dropout"}, "seeds": [0, 1],
         "out": f"runs/{arm}/seed{{seed}}"} for arm, variant, overrides in arms]}


SPEC = job_spec(("a", "vanilla", {"episodes_per_update": 1, "total_steps": 500}))
ARM = SPEC["arms"][0]


@pytest.mark.parametrize("spec, needle", [
    ('{"suite": "tiny", "arms": [', "is not valid JSON"),
    ({"suite": "tiny", "env": "CartPole-v1"}, "the spec has no 'arms'; required: suite, env, arms"),
    ({**SPEC, "arms": []}, "bad arms []; expected a non-empty list"),
    ({**SPEC, "arms": [{**ARM, "seed": 0}]}, "unknown key 'seed' in arms[0]; accepted: arm, variant"),
    ({**SPEC, "env": "CartPol-v1"}, "unknown env 'CartPol-v1'"),
    ({**SPEC, "env": "Taxi-v4"}, "arm 'a': env 'Taxi-v4' has observation space Discrete(500); accepted: 1-D Box"),
    ({**SPEC, "arms": [{**ARM, "variant": "reinforce++"}]},
     "arm 'a': unknown variant 'reinforce++'; accepted: vanilla, rtg"),
    ({**SPEC, "arms": [{**ARM, "overrides": {"lrr": 0.1}}]}, "arm 'a': unknown setting 'lrr'; accepted:"),
    ({**SPEC, "arms": [{**ARM, "overrides": {**ARM["overrides"], "gamma": 2.0}}]},
     "arm 'a': bad value gamma=2.0; accepted: a number in [0, 1]"),
    ({**SPEC, "arms": [{**ARM, "overrides": {"seed": 3}}]}, "set 'seed'; the spec's env, variant"),
    ({**SPEC, "arms": [{**ARM, "setting": {"drop": 0.5}}]}, "unknown setting 'drop' in arm 'a'"),
    ({**SPEC, "arms": [{**ARM, "seeds": [0, -1]}]}, "bad seeds [0, -1] of arm 'a'"),
    ({**SPEC, "arms": [{**ARM, "seeds": [1, 1]}]}, "repeated seed in [1, 1] of arm 'a'"),
    ({**SPEC, "arms": [{**ARM, "out": "runs/a"}]}, "bad out 'runs/a' of arm 'a'; expected a path containing {seed}"),
    ({**SPEC, "arms": [ARM, {**ARM, "arm": "b"}]}, "arms 'a' and 'b' have the same config"),
    ({**SPEC, "arms": [ARM, {**ARM, "variant": "rtg"}]}, "arm 'a' is given twice"),
    ("@missing.json", "cannot read the spec file 'missing.json'"),
])
def test_train_job_bad_spec_is_one_clear_line_and_writes_nothing(tmp_path, monkeypatch, capsys,
                                                                 spec, needle):
    monkeypatch.chdir(tmp_path)
    text = spec if isinstance(spec, str) else json.dumps(spec)
    assert main(["train-job", "--spec", text]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("pgbench train-job: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_train_job_trains_every_arm_and_records_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    settings = {"episodes_per_update": 1, "total_steps": 500}
    spec = job_spec(("vanilla__dropout=0.5", "vanilla", {**settings, "dropout": 0.5}),
                    ("rtg", "rtg", settings))
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    assert main(["train-job", "--spec", f"@{spec_file}", "--skip-existing"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # one line per run
    for arm in spec["arms"]:
        for seed in (0, 1):
            info = json.loads((tmp_path / "runs" / arm["arm"] / f"seed{seed}" / "run.json").read_text())
            assert info["status"] == "complete" and info["config"]["seed"] == seed
            assert info["config"]["variant"] == arm["variant"]
            assert {k: info["meta"][k] for k in ("suite", "arm", "setting")} == {
                "suite": "tiny", "arm": arm["arm"], "setting": {k: str(v) for k, v in arm["setting"].items()}}
    # meta.command is the `pgbench train` command of the arm: it gives the same bytes.
    info = json.loads((tmp_path / "runs" / "vanilla__dropout=0.5" / "seed1" / "run.json").read_text())
    args = shlex.split(info["meta"]["command"])
    assert args[:2] == ["pgbench", "train"]
    args[args.index("--out") + 1] = str(tmp_path / "alone" / "seed{seed}")
    assert main(args[1:]) == 0
    for seed in (0, 1):
        assert ((tmp_path / "alone" / f"seed{seed}" / "episodes.parquet").read_bytes()
                == (tmp_path / "runs" / "vanilla__dropout=0.5" / f"seed{seed}" / "episodes.parquet").read_bytes())
    # A rerun touches nothing.
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*")}
    assert main(["train-job", "--spec", f"@{spec_file}", "--skip-existing"]) == 0
    assert "skipping 4 of 4 runs, complete with the same config" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*")} == files


def test_lint_is_clean():
    res = subprocess.run([*SNAKEMAKE, "--lint", "--directory", str(ROOT)], capture_output=True,
                         text=True, timeout=180)
    assert "Lints for" not in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]


def committed_copy(dest: Path) -> Path:
    """The files this checkout tracks (what a fresh clone has), committed in a new git repo."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in filter(None, listed.stdout.decode().split("\0")):
        src, dst = ROOT / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    git = ["git", "-c", "user.name=pgbench", "-c", "user.email=pgbench@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return dest


@pytest.mark.slow
def test_smoke_config_runs_end_to_end_and_leaves_a_clean_tree(tmp_path):
    """The smoke suites, written where the Quick start writes (results/, logs/, reports/), in a
    copy of the committed tree: every rule runs, and `git status` is clean afterwards."""
    clone = committed_copy(tmp_path / "clone")
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    for key in ("results", "logs", "reports"):  # the defaults, as config/config.yaml has them
        del cfg[key]
    cfg_file = tmp_path / "smoke-default-paths.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(clone / "Snakefile"),
                          "--directory", str(clone), "--cores", "2", "--configfile", str(cfg_file)],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout
    assert status == "", status
    # one line per job, no job's spec on the console
    assert "--spec" not in res.stdout + res.stderr and '"arms"' not in res.stdout + res.stderr
    assert (clone / "reports" / "reference" / "index.html").exists()
    assert main(["compare", str(clone / "reports"), "--reference", str(clone / "results" / "summary")]) == 0
    tmp_path = clone
    summary = tmp_path / "results" / "summary"
    runs = pd.read_parquet(summary / "runs.parquet")
    assert set(runs["suite"]) == {"slides", "cs234"}
    assert len(runs) == 2 * 2 * 3 + 2 * 2  # slides: 2 variants x 2 dropouts x 3 seeds; cs234
    claims = pd.read_parquet(summary / "claims.parquet")
    assert len(claims) > 0
    html = (tmp_path / "reports" / "index.html").read_text()
    assert "slides-speedup" in html
    # The job benchmarks reach the summary's compute table: one job per (suite, env), every arm.
    compute = pd.read_parquet(summary / "compute.parquet")
    train = compute[compute["rule"] == "train"]
    assert sorted(train["suite"]) == ["cs234", "slides"] and (train["arm"] == "").all()
    assert list(train.set_index("suite")["seeds"].sort_index()) == ["0,1", "0,1,2"]
    assert train["env_steps"].notna().all()
    # ... and so does the gradient study's, with its table and its section of the report
    assert sorted(compute.loc[compute["rule"] == "gradstudy", "env"]) == ["CartPole-v1",
                                                                          "TwoStateChain"]
    assert len(pd.read_parquet(summary / "gradstudy.parquet")) > 0
    assert 'id="gradient-study"' in html and 'id="exact-study"' in html
    # benchmarks/job_costs.py (BENCHMARKS.md's per-job costs) reads the same records: all 16 runs
    # were trained by this run's jobs, none reused from an earlier one.
    costs = subprocess.run([sys.executable, "benchmarks/job_costs.py", "results"], cwd=clone,
                           capture_output=True, text=True, check=True).stdout
    assert re.search(r"^\| \*\*all\*\* \| \d+ \| 16 \(0\) \|", costs, re.M), costs
    # A second run has nothing to do.
    again = snakemake(tmp_path, "-n", "--configfile", str(cfg_file))
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_adding_seeds_runs_only_the_new_ones(tmp_path):
    cfg = with_suite(seeds_per_job=2)
    assert snakemake(tmp_path, config=cfg).returncode == 0
    seed0 = tmp_path / "results/runs/tiny/CartPole-v1/vanilla/seed0/episodes.parquet"
    before = seed0.stat().st_mtime_ns
    cfg["suites"]["tiny"]["seeds"] = 4  # seeds 2, 3 form a new block
    res = snakemake(tmp_path, config=cfg)
    assert res.returncode == 0, res.stderr[-2000:]
    assert seed0.stat().st_mtime_ns == before
    assert (tmp_path / "results/runs/tiny/CartPole-v1/vanilla/seed3/run.json").exists()
    assert "block 1:" in _jobs_run(res) and "block 0:" not in _jobs_run(res)


@pytest.mark.slow
def test_adding_an_arm_reruns_the_job_and_trains_only_the_new_arm(tmp_path):
    cfg = with_suite(variants=["vanilla"])
    assert snakemake(tmp_path, config=cfg).returncode == 0
    runs = tmp_path / "results/runs/tiny/CartPole-v1"
    before = {p: p.stat().st_mtime_ns for p in (runs / "vanilla").rglob("*")}
    cfg["suites"]["tiny"]["variants"] = ["vanilla", "rtg"]  # the job's spec changes
    res = snakemake(tmp_path, config=cfg)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "train tiny CartPole-v1 block 0:" in _jobs_run(res)
    assert {p: p.stat().st_mtime_ns for p in (runs / "vanilla").rglob("*")} == before
    assert (runs / "rtg/seed1/run.json").exists()
    log = (tmp_path / "logs/train/tiny/CartPole-v1/block0.log").read_text()
    assert "skipping 2 of 4 runs, complete with the same config" in log


def _jobs_run(res):
    """The console's line of each job run (its rule's `message:`)."""
    return "\n".join(line for line in (res.stdout + res.stderr).splitlines()
                     if re.match(r"Job \d+: ", line))


@pytest.mark.slow
def test_killed_job_is_finished_on_rerun_and_finished_runs_are_untouched(tmp_path):
    cfg = {"suites": {
        "fast": {"envs": ["CartPole-v1"], "variants": ["vanilla"], "seeds": 2,
                 "settings": {"episodes_per_update": 1, "total_steps": 1000}},
        "slow": {"envs": ["CartPole-v1"], "variants": ["vanilla"], "seeds": 2,
                 "settings": {"episodes_per_update": 1, "total_steps": 400_000}},
    }}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # First the fast suite alone, so there are finished runs to protect.
    fast_marker = tmp_path / "results/runs/fast/CartPole-v1/block0.done"
    res = subprocess.run([*SNAKEMAKE, str(fast_marker.relative_to(tmp_path)), "--directory",
                          str(tmp_path), "--cores", "1", "--configfile", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    fast_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "results/runs/fast").rglob("*")}
    # Then everything, killed (-9, the whole process group) while the slow job trains.
    proc = subprocess.Popen([*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "1",
                             "--configfile", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    slow_log = tmp_path / "logs/train/slow/CartPole-v1/block0.log"
    deadline = time.time() + 120
    while not slow_log.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    slow_marker = tmp_path / "results/runs/slow/CartPole-v1/block0.done"
    slow_runs = tmp_path / "results/runs/slow/CartPole-v1/vanilla"
    assert not slow_marker.exists()
    # No partial run directory looks complete: each seed dir is either whole or absent.
    for seed_dir in slow_runs.glob("seed*"):
        assert (seed_dir / "run.json").exists() and (seed_dir / "episodes.parquet").exists()
    # Rerun with a smaller budget so the test stays short: the job reruns, the fast runs don't.
    cfg["suites"]["slow"]["settings"]["total_steps"] = 3000
    path.write_text(yaml.safe_dump(cfg))
    subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--unlock", "--configfile", str(path)],
                   capture_output=True, timeout=120)
    res = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "2", "--configfile",
                          str(path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert slow_marker.exists()
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "results/runs/fast").rglob("*")} == fast_files
    assert (tmp_path / "reports/index.html").exists()
