"""Gradient steps to the threshold (issue 19's "often requires less gradient steps"): what each
trainer counts, what the runs table derives from it, and the claim statistic that reads it.

A gradient step is one optimiser step on the network that acts (the policy, or DQN's
Q-network); critic-only steps do not count. Counts are checked against the hyperparameters by
hand.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from synthetic import run_rows, write_run_dir, write_summary

from pgbench.analysis.aggregate import aggregate_runs
from pgbench.claims.evaluate import evaluate_claims
from pgbench.claims.model import load_claims
from pgbench.rl.config import make_config
from pgbench.rl.hyper import hyper_of
from pgbench.runs.log import SeedLog, record_episode
from pgbench.training.runner import train_group


# -- what a solve point records ------------------------------------------------------------------
def test_a_solve_point_carries_the_gradient_steps_taken_before_it():
    counted = SeedLog(seed=0, gradient_steps=7)
    record_episode(counted, 20.0, 20, True, False, threshold=5.0)
    assert counted.solved == {"update": 0, "episode": 0, "env_steps": 20, "gradient_steps": 7}
    not_counted = SeedLog(seed=0)  # a trainer that does not count (the SB3 references)
    record_episode(not_counted, 20.0, 20, True, False, threshold=5.0)
    assert "gradient_steps" not in not_counted.solved


# -- what each trainer counts --------------------------------------------------------------------
def _cartpole(variant, **overrides):
    return make_config(variant, {"env_id": "CartPole-v1", "seed": 2, **overrides})


def test_ppo_counts_epochs_times_minibatches():
    """2 envs x 16 steps = 32 samples per rollout, minibatches of 8: 4 per epoch, 3 epochs = 12
    steps per update; 64 env steps = 2 updates = 24 gradient steps."""
    from pgbench.training.algorithms import ppo

    log = ppo.train(_cartpole("ppo", num_envs=2, n_steps=16, batch_size=8, update_epochs=3,
                              total_steps=64, hidden=[8]))
    assert log.updates == 2 and log.gradient_steps == 24


@pytest.mark.parametrize("variant", ["a2c", "trpo"])
def test_a2c_and_trpo_take_one_policy_step_per_update(variant):
    """A2C: one step per rollout. TRPO: one line-searched natural-gradient step per rollout; its
    critic's n_critic_updates epochs of steps do not count."""
    from pgbench.training.algorithms import a2c, trpo

    trainer = {"a2c": a2c, "trpo": trpo}[variant]
    extra = {"n_steps": 16, "batch_size": 8} if variant == "trpo" else {"n_steps": 5}
    log = trainer.train(_cartpole(variant, num_envs=2, total_steps=64, hidden=[8], **extra))
    assert log.updates >= 2 and log.gradient_steps == log.updates


def test_dqn_counts_the_steps_of_the_phases_past_learning_starts():
    """Phases of 8 env steps, 64 steps = 8 phases; those ending past learning_starts = 16 env
    steps (t = 24, ..., 64: 6 phases) take 2 gradient steps each: 12."""
    from pgbench.training.algorithms import dqn
    from pgbench.training.algorithms.dqn import gradient_steps_done

    cfg = _cartpole("dqn", total_steps=64, hidden=[8], learning_starts=16, train_freq=8,
                    gradient_steps=2, batch_size=4, buffer_size=100)
    log = dqn.train(cfg)
    assert log.updates == 8 and log.gradient_steps == 12
    assert gradient_steps_done(hyper_of(cfg), 8) == 12


@pytest.mark.parametrize("engine, update_epochs", [("torch", 3), ("numba", 1)])
def test_reinforce_counts_its_epochs_per_update_and_writes_them(tmp_path, engine, update_epochs):
    """REINFORCE takes ``update_epochs`` policy steps per update (the numba engine: one); the
    total is in run.json, and a solve point holds the steps before its update."""
    cfg = _cartpole("rtg_baseline", total_steps=3000, hidden=[16], lr=0.05, engine=engine,
                    update_epochs=update_epochs, episodes_per_update=1)
    [log] = train_group(cfg, [2], [tmp_path / "run"])
    assert log.gradient_steps == update_epochs * log.updates
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["totals"]["gradient_steps"] == update_epochs * info["totals"]["updates"]
    # a threshold of 0 would be crossed at once: use the run's own records instead
    for point in (info["solved"], info["solved_last100"]):
        if point is not None:
            assert point["gradient_steps"] == update_epochs * point["update"]


# -- the runs table ------------------------------------------------------------------------------
def test_runs_table_reads_gradient_steps_and_censors_at_the_total(tmp_path):
    """A solved run: 150 episodes (50 of 0, then 100 of 500, 10 steps each); its solve points
    (episodes 108 and 144, see test_aggregate) get 40 and 55 gradient steps by hand; total 60.
    A run that never solves is censored at its total, 25. A run without counts gets NaN."""
    write_run_dir(tmp_path / "solved", [0.0] * 50 + [500.0] * 100, lengths=[10] * 150, seed=0)
    write_run_dir(tmp_path / "budget", np.arange(25.0), seed=1, total_steps=300)
    write_run_dir(tmp_path / "old", np.arange(25.0), seed=2, total_steps=300)
    for name, at_solved, at_last100, total in (("solved", 40, 55, 60), ("budget", None, None, 25)):
        path = tmp_path / name / "run.json"
        info = json.loads(path.read_text())
        info["totals"]["gradient_steps"] = total
        for key, value in (("solved", at_solved), ("solved_last100", at_last100)):
            if info[key] is not None:
                info[key]["gradient_steps"] = value
        path.write_text(json.dumps(info))
    runs = aggregate_runs([tmp_path])["runs"].set_index("seed")
    assert runs.loc[0, ["gradient_steps", "gradient_steps_to_threshold",
                        "gradient_steps_to_threshold_last100"]].tolist() == [60.0, 40.0, 55.0]
    assert runs.loc[1, ["gradient_steps", "gradient_steps_to_threshold",
                        "gradient_steps_to_threshold_last100"]].tolist() == [25.0, 25.0, 25.0]
    assert runs.loc[1, "censored"] and runs.loc[1, "censored_last100"]
    assert runs.loc[2, ["gradient_steps", "gradient_steps_to_threshold"]].isna().all()


# -- the claim -----------------------------------------------------------------------------------
def _qlearning_rows(variant, env_steps, gradient_steps):
    return run_rows(variant, env_steps, suite="qlearning", gradient_steps=gradient_steps)


def test_the_gradient_steps_claim_reads_gradient_steps_and_the_samples_claim_env_steps(tmp_path):
    """Five seeds a side, no censoring. Gradient steps to solve: DQN 2000..10000 (KM median
    6000), PPO 500..2500 (median 1500): DQN / PPO = 4. Env steps: DQN 10k..50k (median 30k),
    PPO 20k..100k (median 60k): PPO / DQN = 2. Each claim must read its own measure."""
    rows = (_qlearning_rows("dqn", [10e3, 20e3, 30e3, 40e3, 50e3], [2000, 4000, 6000, 8000, 10000])
            + _qlearning_rows("ppo", [20e3, 40e3, 60e3, 80e3, 100e3], [500, 1000, 1500, 2000, 2500]))
    summary = write_summary(tmp_path / "summary", rows)
    claims = [c for c in load_claims() if c.id in ("q-learning-gradient-steps", "q-learning-samples")]
    table = evaluate_claims(claims, summary, n_resamples=500).set_index("claim_id")
    grad = table.loc["q-learning-gradient-steps"]
    grad = grad[grad["env"] == "CartPole-v1"].iloc[0]
    assert grad["estimate"] == pytest.approx(4.0)
    assert "gradient steps" in grad["statistic"]
    samples = table.loc["q-learning-samples"]
    assert samples[samples["env"] == "CartPole-v1"].iloc[0]["estimate"] == pytest.approx(2.0)
    # Acrobot-v1 has no runs here
    assert set(table.loc["q-learning-gradient-steps", "verdict"]) >= {"not run"}
    assert math.isfinite(grad["ci_low"]) and grad["ci_low"] <= 4.0 <= grad["ci_high"]


def test_a_summary_without_gradient_steps_leaves_the_claim_not_run(tmp_path):
    """A summary written before pgbench counted gradient steps has no such column."""
    rows = (run_rows("dqn", [10e3] * 3, suite="qlearning")
            + run_rows("ppo", [20e3] * 3, suite="qlearning"))
    summary = write_summary(tmp_path / "summary", rows)
    claims = [c for c in load_claims() if c.id == "q-learning-gradient-steps"]
    table = evaluate_claims(claims, summary, n_resamples=500)
    row = table[table["env"] == "CartPole-v1"].iloc[0]
    assert row["verdict"] == "not run"
    assert "no column gradient_steps_to_threshold_last100" in row["detail"]
