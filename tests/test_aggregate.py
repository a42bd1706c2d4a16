"""pgbench aggregate on synthetic run directories, checked against hand computations."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from synthetic import running_rewards, write_run_dir

from pgbench.analysis import curves
from pgbench.analysis.aggregate import aggregate_runs
from pgbench.analysis.runs import SkippedRunWarning
from pgbench.cli import main
from pgbench.core import contracts
from pgbench.core.errors import UserError


def _quiet(run_dirs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRunWarning)
        return aggregate_runs(run_dirs, **kw)


def test_thresholds_and_final_return_by_hand(tmp_path):
    # 150 episodes of 10 steps each: 50 returns of 0, then 100 returns of 500.
    returns = [0.0] * 50 + [500.0] * 100
    write_run_dir(tmp_path / "a", returns, lengths=[10] * 150, seed=0)
    # Running reward: after the zeros 10 * 0.95**50; then r_k = 500 - (500 - r_0) * 0.95**k
    # reaches 475 when 0.95**k <= 25 / (500 - r_0), i.e. k = 59 -> episode index 108.
    r0 = 10 * 0.95 ** 50
    k = math.ceil(math.log(25 / (500 - r0)) / math.log(0.95))
    assert k == 59
    # Plain rule: the 100-episode window ending at episode i holds i - 49 returns of 500;
    # (i - 49) * 500 >= 100 * 475 needs i - 49 >= 95 -> i = 144.
    runs = aggregate_runs([tmp_path])["runs"]
    row = runs.iloc[0]
    assert row["episodes_to_threshold"] == 50 + k  # 109 episodes
    assert row["steps_to_threshold"] == 10 * (50 + k)
    assert not row["censored"]
    assert row["episodes_to_threshold_last100"] == 145
    assert row["steps_to_threshold_last100"] == 1450
    assert not row["censored_last100"]
    assert row["final_return"] == 500.0  # last 15 episodes
    assert row["env_steps"] == 1500 and row["episodes"] == 150
    assert row["stop_reason"] == "solved"


def test_censored_run_and_final_return_of_the_last_tenth(tmp_path):
    # 25 episodes, returns 0..24 (length = max(return, 1)): never solved.
    returns = np.arange(25.0)
    write_run_dir(tmp_path / "b", returns, seed=3, total_steps=300)
    row = aggregate_runs([tmp_path / "b"])["runs"].iloc[0]
    total_steps = int(np.maximum(returns, 1).sum())  # 1 + (1 + ... + 24) = 301
    assert total_steps == 301
    assert row["final_return"] == pytest.approx((23 + 24) / 2)  # last 25 // 10 = 2 episodes
    assert row["censored"] and row["censored_last100"]
    assert row["steps_to_threshold"] == total_steps and row["episodes_to_threshold"] == 25
    assert row["steps_to_threshold_last100"] == total_steps
    assert row["episodes_to_threshold_last100"] == 25
    assert row["stop_reason"] == "budget" and row["budget_steps"] == 300
    assert row["seed"] == 3


def test_engine_comes_from_the_config_and_defaults_to_torch(tmp_path):
    write_run_dir(tmp_path / "old" / "seed0", [10.0, 20.0])  # a run.json from before engines
    new = write_run_dir(tmp_path / "new" / "seed1", [10.0, 20.0], seed=1)
    info = json.loads((new / "run.json").read_text())
    info["config"]["engine"] = "numba"
    (new / "run.json").write_text(json.dumps(info))
    runs = aggregate_runs([tmp_path])["runs"].set_index("seed")
    assert runs.loc[0, "engine"] == "torch" and runs.loc[1, "engine"] == "numba"


def test_two_configs_under_one_arm_are_refused_by_name(tmp_path):
    write_run_dir(tmp_path / "torch" / "seed0", [10.0, 20.0])
    other = write_run_dir(tmp_path / "numba" / "seed0", [10.0, 30.0])
    info = json.loads((other / "run.json").read_text())
    info["config"]["engine"], info["run_hash"] = "numba", "another"
    (other / "run.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match=r"more than one run for slides/CartPole-v1/vanilla "
                                        r"\(default\) seed 0: .*differ in engine"):
        aggregate_runs([tmp_path])


def test_runs_table_has_the_contract_columns_and_types(tmp_path):
    write_run_dir(tmp_path / "r" / "seed0", [10.0, 20.0], variant="rtg_baseline",
                  setting={"dropout": "0.6", "baseline": "whiten"}, elapsed_s=4.0, cpu_s=3.0)
    tables = aggregate_runs([tmp_path])
    runs = tables["runs"]
    assert list(runs.columns) == list(contracts.RUNS_COLUMNS)
    row = runs.iloc[0]
    assert row["setting"] == "baseline=whiten, dropout=0.6"
    assert row["arm"] == "rtg_baseline__baseline=whiten__dropout=0.6"
    assert row["suite"] == "slides" and row["env"] == "CartPole-v1"
    assert row["wall_s"] == 4.0 and row["cpu_s"] == 3.0
    assert len(row["episodes_sha256"]) == 64
    assert json.loads(row["packages"])["numpy"] == np.__version__
    assert runs["seed"].dtype == np.int64 and runs["censored"].dtype == bool
    assert list(tables["compute"].columns) == list(contracts.COMPUTE_COLUMNS)
    assert tables["compute"].empty


def test_curves_interpolation_by_hand(tmp_path):
    # Run A: 3 episodes ending at steps 10, 30, 60 with returns 10, 20, 30 (stopped at budget).
    # Run B: same episodes but solved -> carried forward. Run C: ends at step 199, which makes
    # the grid 0, 1, ..., 199.
    write_run_dir(tmp_path / "A", [10.0, 20.0, 30.0], lengths=[10, 20, 30], seed=0,
                  stop_reason="budget")
    write_run_dir(tmp_path / "B", [10.0, 20.0, 30.0], lengths=[10, 20, 30], seed=1,
                  stop_reason="solved")
    write_run_dir(tmp_path / "C", [1.0] * 12, lengths=[10] * 11 + [89], seed=2)
    curves = aggregate_runs([tmp_path])["curves"]
    assert list(curves.columns) == list(contracts.CURVES_COLUMNS)
    grid = np.arange(200)
    for seed in (0, 1, 2):
        assert np.array_equal(curves.loc[curves["seed"] == seed, "env_steps"].to_numpy(), grid)

    def values(seed):
        return curves.loc[curves["seed"] == seed, "return"].to_numpy()

    a, b = values(0), values(1)
    expected = np.full(200, np.nan)
    expected[10:30] = 10.0            # only episode 1 finished
    expected[30:60] = 15.0            # mean of 10, 20
    expected[60] = 20.0               # mean of 10, 20, 30 at the last episode's end
    np.testing.assert_array_equal(a, expected)  # NaN after the last episode at budget
    expected_b = expected.copy()
    expected_b[61:] = 20.0            # solved: carried forward
    np.testing.assert_array_equal(b, expected_b)
    carried_b = curves.loc[curves["seed"] == 1, "carried"].to_numpy()
    assert not carried_b[:61].any() and carried_b[61:].all()
    assert not curves.loc[curves["seed"] == 0, "carried"].any()


def test_curve_window_is_the_ten_latest_episodes():
    values, carried = curves.learning_curve(np.arange(1, 13) * 10, np.arange(1.0, 13.0),
                                               np.array([0, 10, 55, 120]), carry_forward=False)
    # at 120 all 12 episodes are done: mean of returns 3..12 = 7.5; at 55: mean of 1..5 = 3
    np.testing.assert_array_equal(values, [np.nan, 1.0, 3.0, 7.5])
    assert not carried.any()


def test_incomplete_and_partial_run_dirs_are_skipped_with_a_warning(tmp_path):
    write_run_dir(tmp_path / "good", [10.0, 20.0], seed=0)
    write_run_dir(tmp_path / "running", [10.0], seed=1, status="running")
    write_run_dir(tmp_path / "killed", [10.0], seed=2)
    (tmp_path / "killed" / "run.json").unlink()
    write_run_dir(tmp_path / ".seed3.abc.tmp", [10.0], seed=3)  # a staging dir: ignored silently
    with pytest.warns(SkippedRunWarning) as record:
        runs = aggregate_runs([tmp_path])["runs"]
    messages = " ".join(str(w.message) for w in record)
    assert "running" in messages and "killed" in messages
    assert ".seed3" not in messages
    assert runs["seed"].tolist() == [0]


def test_the_same_run_found_twice_counts_once(tmp_path):
    write_run_dir(tmp_path / "x" / "seed0", [10.0, 20.0], seed=0)
    write_run_dir(tmp_path / "copy" / "seed0", [10.0, 20.0], seed=0)
    with pytest.warns(SkippedRunWarning, match="same run"):
        runs = aggregate_runs([tmp_path, tmp_path / "x"])["runs"]
    assert len(runs) == 1


def test_bad_input_names_the_bad_path(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        aggregate_runs([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no complete runs.*empty"):
        aggregate_runs([tmp_path / "empty"])
    run = write_run_dir(tmp_path / "corrupt", [1.0, 2.0])
    (run / "episodes.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match="corrupt.*episodes.parquet"):
        _quiet([run])
    run = write_run_dir(tmp_path / "badjson", [1.0, 2.0])
    (run / "run.json").write_text("{ half")
    with pytest.raises(UserError, match="badjson.*run.json"):
        _quiet([run])


BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_compute_table_from_benchmark_files(tmp_path):
    # Two jobs of two seeds each, every job training both arms. Seed 1 of rtg was finished by
    # the rerun of a killed job, which trained seed 1 alone: its group [1] is inside [0, 1].
    for variant in ("vanilla", "rtg"):
        for seed in range(4):
            group = ([1] if variant == "rtg" and seed == 1 else [0, 1]) if seed < 2 else [2, 3]
            n = seed + 1 if variant == "vanilla" else 1
            write_run_dir(tmp_path / "runs" / variant / f"seed{seed}", [10.0] * n, lengths=[100] * n,
                          variant=variant, seed=seed, seed_group=group)
    bench = tmp_path / "benchmarks" / "train" / "slides" / "CartPole-v1"
    bench.mkdir(parents=True)
    (bench / "block0.tsv").write_text(BENCH_HEADER + "2.0\t0:00:02\t150.5\t300\t100\t110\t0\t1\t90\t1.8\n")
    (bench / "block1.tsv").write_text(BENCH_HEADER + "7.0\t0:00:07\t160.0\t300\t100\t110\t0\t1\t90\tNA\n")
    (tmp_path / "benchmarks" / "aggregate.tsv").write_text(BENCH_HEADER + "1.0\t0:00:01\t90\t1\t1\t1\t0\t0\t50\t0.9\n")
    (tmp_path / "benchmarks" / "gradstudy").mkdir()
    (tmp_path / "benchmarks" / "gradstudy" / "CartPole-v1.tsv").write_text(
        BENCH_HEADER + "3.0\t0:00:03\t90\t1\t1\t1\t0\t0\t50\t2.9\n")
    compute = _quiet([tmp_path / "runs"], benchmarks=tmp_path / "benchmarks")["compute"]
    assert list(compute.columns) == list(contracts.COMPUTE_COLUMNS)
    assert compute.loc[compute["rule"] == "gradstudy", "env"].tolist() == ["CartPole-v1"]
    train = compute[compute["rule"] == "train"].set_index("seeds")
    assert sorted(train.index) == ["0,1", "2,3"]
    # job 0,1: vanilla's seeds ran 1 and 2 episodes of 100 steps, rtg's 1 each -> 500 steps in 2 s
    assert train.loc["0,1", "env_steps"] == 500
    assert train.loc["0,1", "steps_per_s"] == pytest.approx(250.0)
    assert train.loc["0,1", "max_rss"] == pytest.approx(150.5)
    assert train.loc["2,3", "env_steps"] == 300 + 400 + 100 + 100
    assert math.isnan(train.loc["2,3", "cpu_time"])
    assert (train["suite"] == "slides").all() and (train["arm"] == "").all()
    other = compute[compute["rule"] == "aggregate"]
    assert len(other) == 1 and other["seeds"].iloc[0] == ""


def test_compute_table_of_listed_files_ignores_stale_ones(tmp_path):
    for seed in range(2):
        write_run_dir(tmp_path / "runs" / "vanilla" / f"seed{seed}", [10.0], lengths=[100],
                      seed=seed, seed_group=[0, 1])
    bench = tmp_path / "benchmarks" / "train" / "slides" / "CartPole-v1"
    (bench / "vanilla").mkdir(parents=True)  # an older layout's file, and a block no longer planned
    for stale in (bench / "vanilla" / "block0.tsv", bench / "block7.tsv"):
        stale.write_text(BENCH_HEADER + "9.0\t0:00:09\t150.5\t300\t100\t110\t0\t1\t90\t9\n")
    (bench / "block0.tsv").write_text(BENCH_HEADER + "2.0\t0:00:02\t150.5\t300\t100\t110\t0\t1\t90\t1.8\n")
    (tmp_path / "benchmarks" / "gradstudy").mkdir()
    (tmp_path / "benchmarks" / "gradstudy" / "CartPole-v1.tsv").write_text(
        BENCH_HEADER + "3.0\t0:00:03\t90\t1\t1\t1\t0\t0\t50\t2.9\n")
    listed = [bench / "block0.tsv", tmp_path / "benchmarks" / "gradstudy" / "CartPole-v1.tsv",
              bench / "block1.tsv"]  # planned, but its file is gone: skipped with a warning
    with pytest.warns(SkippedRunWarning, match="block1.tsv"):
        compute = aggregate_runs([tmp_path / "runs"], benchmarks=listed)["compute"]
    assert compute[["rule", "env", "seeds"]].values.tolist() == [
        ["train", "CartPole-v1", "0,1"], ["gradstudy", "CartPole-v1", ""]]
    assert compute["cpu_time"].tolist() == [1.8, 2.9]
    everything = _quiet([tmp_path / "runs"], benchmarks=tmp_path / "benchmarks")["compute"]
    assert len(everything) == 4  # a directory is read whole, stale files included


def test_compute_table_reads_the_older_per_arm_job_layout(tmp_path):
    for variant in ("vanilla", "rtg"):
        for seed in range(2):
            write_run_dir(tmp_path / "runs" / variant / f"seed{seed}", [10.0], lengths=[100],
                          variant=variant, seed=seed, seed_group=[0, 1])
    bench = tmp_path / "benchmarks" / "train" / "slides" / "CartPole-v1" / "vanilla"
    bench.mkdir(parents=True)
    (bench / "block0.tsv").write_text(BENCH_HEADER + "2.0\t0:00:02\t150.5\t300\t100\t110\t0\t1\t90\t1.8\n")
    (bench / "block1.tsv").write_text(BENCH_HEADER + "2.0\t0:00:02\t150.5\t300\t100\t110\t0\t1\t90\t1.8\n")
    compute = _quiet([tmp_path / "runs"], benchmarks=tmp_path / "benchmarks")["compute"]
    rows = compute.set_index("seeds")
    assert sorted(rows.index) == ["0,1", "block1"]  # vanilla has one block only
    assert rows.loc["0,1", "arm"] == "vanilla" and rows.loc["0,1", "env_steps"] == 200
    assert pd.isna(rows.loc["block1", "env_steps"])


def test_cli_writes_the_summary_atomically_and_copies_gradstudy(tmp_path, capsys):
    write_run_dir(tmp_path / "runs" / "s0", [10.0, 500.0], seed=0)
    write_run_dir(tmp_path / "runs" / "s1", [20.0, 30.0], seed=1)
    grad = tmp_path / "grad"
    for env in ("a", "b"):
        (grad / env).mkdir(parents=True)
        pd.DataFrame({"env": [env], "total_variance": [1.0]}).to_parquet(grad / env / "gradstudy.parquet")
    out = tmp_path / "summary"
    assert main(["aggregate", str(tmp_path / "runs"), "--out", str(out), "--gradstudy", str(grad)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["compute.parquet", "curves.parquet", "gradstudy.parquet", "provenance.json",
                       "runs.parquet"]  # no temporary files left behind
    assert len(pd.read_parquet(out / "gradstudy.parquet")) == 2
    runs = pd.read_parquet(out / "runs.parquet")
    assert runs["seed"].tolist() == [0, 1]
    prov = json.loads((out / "provenance.json").read_text())
    assert {"git_commit", "packages", "python", "platform", "cpu", "date", "config_hashes",
            "command"} <= set(prov)
    assert prov["config_hashes"] == sorted(set(runs["config_hash"]))
    assert "2 runs" in capsys.readouterr().out
    # a missing run directory is a one-line error, exit code 2
    # (into a new --out: the existing summary would be refused first, needing --force)
    assert main(["aggregate", str(tmp_path / "missing"), "--out", str(tmp_path / "new")]) == 2
    assert "missing" in capsys.readouterr().err


def test_running_reward_helper_matches_the_contract():
    # 10 -> 0.05 * 100 + 0.95 * 10 = 14.5 -> 0.05 * 0 + 0.95 * 14.5 = 13.775
    assert running_rewards([100.0, 0.0]) == pytest.approx([14.5, 13.775])


def test_specs_name_the_runs_to_aggregate_as_if_each_were_listed(tmp_path, capsys):
    """The workflow passes its train-job specs (a command line of every run directory would pass
    the kernel's 128 KiB limit on one argument for a large config)."""
    for seed in (0, 1):
        write_run_dir(tmp_path / "runs" / "vanilla" / f"seed{seed}", [10.0 + seed, 500.0], seed=seed)
    write_run_dir(tmp_path / "runs" / "stale" / "seed7", [1.0], seed=7)  # planned by no spec
    spec = {"suite": "slides", "env": "CartPole-v1", "arms": [
        {"arm": "vanilla", "variant": "vanilla", "seeds": [0, 1],
         "out": str(tmp_path / "runs" / "vanilla" / "seed{seed}")}]}
    (tmp_path / "block0.json").write_text(json.dumps(spec))
    listed, from_spec = tmp_path / "listed", tmp_path / "from_spec"
    assert main(["aggregate", str(tmp_path / "runs" / "vanilla" / "seed0"),
                 str(tmp_path / "runs" / "vanilla" / "seed1"), "--out", str(listed)]) == 0
    assert main(["aggregate", "--specs", str(tmp_path / "block0.json"), "--out", str(from_spec)]) == 0
    a, b = (pd.read_parquet(d / "runs.parquet") for d in (listed, from_spec))
    pd.testing.assert_frame_equal(a, b)
    assert b["seed"].tolist() == [0, 1]  # the stale run of seed 7 is not aggregated
    # a spec that is not one, and no runs at all: one line each, exit 2, nothing written
    (tmp_path / "bad.json").write_text(json.dumps({"arms": [{"seeds": [0]}]}))
    capsys.readouterr()
    assert main(["aggregate", "--specs", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x")]) == 2
    assert "bad.json is not a `pgbench train-job` spec" in capsys.readouterr().err
    assert main(["aggregate", "--out", str(tmp_path / "y")]) == 2
    assert "no runs to aggregate" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_runs_table_records_the_commit_that_trained_each_run(tmp_path):
    write_run_dir(tmp_path / "r" / "seed0", [10.0, 20.0])
    assert aggregate_runs([tmp_path])["runs"].iloc[0]["git_commit"] == "0" * 40
