"""The standard algorithms' plumbing: hyperparameters and hashes, the episode recorder, the
self-resetting sub-envs, the run-directory contract and determinism (pgbench/rl/algorithms.py, pgbench/training/algorithms/)."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pgbench.core.errors import UserError
from pgbench.envs.autoreset import AutoResetEnvs
from pgbench.rl.algorithms import ALGORITHMS
from pgbench.rl.config import make_config, parse_set_options
from pgbench.rl.hyper import hyper_of
from pgbench.runs.store import EPISODE_COLUMNS
from pgbench.training.algorithms import trainer_of
from pgbench.training.algorithms.episodes import EpisodeRecorder
from pgbench.training.runner import RunRequest, train_runs

# config hashes (without seed) of the default config of each older variant, as computed by the
# commit before pgbench.rl.algorithms existed (683aee2): adding the `hyper` field keeps them
OLD_HASHES = {"vanilla": "0eb7fd0a2e6dbd32", "rtg": "94a6ca8a7552c626",
              "rtg_baseline": "72efb6ecd38c7603", "gae": "9f997b9564a3fea1",
              "rtg_value": "84096e3d9585a98e"}


@pytest.mark.parametrize("variant", sorted(OLD_HASHES))
def test_older_variants_keep_their_config_hash(variant):
    cfg = make_config(variant, {})
    assert cfg.hyper == ""
    assert cfg.hash() == OLD_HASHES[variant]


def test_hyperparameters_from_set_options_are_folded_into_the_hashed_config():
    overrides = parse_set_options(["n_steps=32", "batch_size=256", "num_envs=8", "anneal_lr=true"])
    cfg = make_config("ppo", overrides)
    h = hyper_of(cfg)
    assert (h.n_steps, h.batch_size, h.anneal_lr, h.vf_coef) == (32, 256, True, 0.5)
    assert "n_steps=32" in cfg.hyper and cfg.hyper == ",".join(sorted(cfg.hyper.split(",")))
    other = make_config("ppo", {**overrides, "n_steps": 64})
    assert other.hash() != cfg.hash()
    # the same value given as text or as a number is the same config
    assert make_config("ppo", {**overrides, "n_steps": 32}).hash() == cfg.hash()
    # a config read back from run.json (hyper text given whole) is the same config
    assert make_config("ppo", {"hyper": cfg.hyper, "num_envs": 8}).hash() == cfg.hash()


def test_every_algorithm_variant_has_its_defaults_and_the_zoo_names():
    for name, algo in ALGORITHMS.items():
        cfg = make_config(name, {})
        assert hyper_of(cfg) == algo.hyper()  # the defaults are the dataclass's


@pytest.mark.parametrize("variant, overrides, needle", [
    ("rtg", {"n_steps": 3}, "applies only to the variants"),
    ("ppo", {"nsteps": 3}, "unknown setting 'nsteps'"),
    ("ppo", {"anneal_lr": "maybe"}, "bad value anneal_lr='maybe'"),
    ("ppo", {"batch_size": 1}, "batch_size=1; accepted: an integer >= 2"),
    ("a2c", {"clip_range_vf": 0.2}, "unknown setting 'clip_range_vf' for A2CHyper; accepted"),
])
def test_bad_hyperparameters_are_one_clear_user_error(variant, overrides, needle):
    with pytest.raises(UserError, match=None) as err:
        make_config(variant, overrides)
    assert needle in str(err.value)


def test_episode_recorder_by_hand():
    """Two sub-envs, reward 1 per step. Step 2: env 0 terminates (return 2, length 2) at env
    step 4, in update 0. Update 0 ends. Step 3: env 1 is truncated (return 3, length 3) at env
    step 6, in update 1."""
    cfg = make_config("ppo", {"num_envs": 2, "total_steps": 6, "n_steps": 4, "batch_size": 4})
    rec = EpisodeRecorder(cfg, 2)
    rec.step([1.0, 1.0], [False, False], [False, False])
    rec.step([1.0, 1.0], [True, False], [False, False])
    assert rec.end_update(0.5, 1.0, 0.7, 2.0) is False
    rec.step([1.0, 1.0], [False, False], [False, True])
    assert rec.end_update() is True  # 6 env steps: the budget
    rows = pd.DataFrame(rec.log.episode_rows, columns=EPISODE_COLUMNS)
    assert rows[["update", "episode", "env_steps", "return", "length", "terminated",
                 "truncated"]].values.tolist() == [[0, 0, 4, 2.0, 2, True, False],
                                                   [1, 1, 6, 3.0, 3, False, True]]
    assert [r[:3] for r in rec.log.update_rows] == [(0, 4, 1), (1, 6, 1)]
    assert rec.log.update_rows[0][3:7] == (0.5, 1.0, 0.7, 2.0)
    assert rec.log.stop_reason == "budget"


def test_auto_reset_envs_return_the_final_observation_apart():
    envs = AutoResetEnvs("CartPole-v1", 3, np.random.SeedSequence(5))
    again = AutoResetEnvs("CartPole-v1", 3, np.random.SeedSequence(5))
    obs = envs.reset()
    assert np.array_equal(obs, again.reset())
    ended_once = False
    for _ in range(60):  # always push right: every episode terminates within ~10-60 steps
        nxt, r, term, trunc, final = envs.step(np.ones(3, dtype=np.int64))
        nxt2, *_ = again.step(np.ones(3, dtype=np.int64))
        assert np.array_equal(nxt, nxt2)
        done = term | trunc
        assert np.array_equal(nxt[~done], final[~done])
        if done.any():
            ended_once = True
            assert not np.array_equal(nxt[done], final[done])
            assert np.all(np.abs(nxt[done]) <= 0.05)  # a fresh CartPole start
    assert ended_once


def _short(variant, **extra):
    base = {"env_id": "CartPole-v1", "total_steps": 1024, "num_envs": 4, "n_steps": 64,
            "batch_size": 64}
    if variant.endswith("a2c"):
        base.pop("batch_size")
        base["n_steps"] = 8
    return make_config(variant, {**base, **extra})


@pytest.mark.parametrize("variant", ["ppo", "a2c", "trpo"])
def test_same_seed_same_episodes_other_seed_other_episodes(variant):
    cfg = _short(variant)
    train = trainer_of(variant)
    first, second = train(cfg), train(cfg)
    other = train(replace(cfg, seed=1))
    assert first.episode_rows == second.episode_rows
    assert first.episode_rows != other.episode_rows
    h = hyper_of(cfg)
    assert first.env_steps == 1024 and first.updates == 1024 // (h.n_steps * cfg.num_envs)


def test_a_run_directory_has_the_contract(tmp_path):
    cfg = _short("ppo", seed=3)
    train_runs([RunRequest(cfg, tmp_path / "run", {"suite": "t", "arm": "ppo"})])
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "complete" and info["config"]["hyper"] == cfg.hyper
    assert info["config_hash"] == cfg.hash(with_seed=False)
    # 4 updates of 4 envs x 64 steps = 256 samples: 4 minibatches of 64 x 10 epochs = 40 steps each
    assert info["totals"] == {"env_steps": 1024, "episodes": info["totals"]["episodes"], "updates": 4,
                              "gradient_steps": 160}
    episodes = pd.read_parquet(tmp_path / "run" / "episodes.parquet")
    assert list(episodes.columns) == EPISODE_COLUMNS
    assert episodes["env_steps"].is_monotonic_increasing
    assert (episodes["update"].diff().dropna() >= 0).all()
    updates = pd.read_parquet(tmp_path / "run" / "updates.parquet")
    assert len(updates) == 4 and updates["env_steps"].tolist() == [256, 512, 768, 1024]


@pytest.mark.parametrize("variant", ["sb3_ppo", "sb3_a2c", "sb3_trpo", "sb3_dqn"])
def test_sb3_reference_is_deterministic_and_counts_the_budget(variant):
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("sb3_contrib")
    cfg = (_short(variant) if variant != "sb3_dqn"
           else make_config(variant, {"total_steps": 1024, "learning_starts": 100}))
    train = trainer_of(variant)
    first, second = train(cfg), train(cfg)
    assert first.episode_rows == second.episode_rows
    assert first.env_steps == 1024
    assert all(row[2] <= 1024 for row in first.episode_rows)


def test_per_variant_settings_apply_to_their_variant_only():
    block = {"lr": 0.01, "ppo.lr": 0.001, "rtg_value.lr": 0.03, "ppo.n_steps": 32,
             "ppo.batch_size": 64}
    ppo, vpg = make_config("ppo", block), make_config("rtg_value", block)
    assert ppo.lr == 0.001 and hyper_of(ppo).n_steps == 32
    assert vpg.lr == 0.03 and vpg.hyper == ""
    assert vpg.hash() == make_config("rtg_value", {"lr": 0.03}).hash()
    with pytest.raises(UserError, match="unknown setting 'nsteps' in 'ppo.nsteps'"):
        make_config("ppo", {"ppo.nsteps": 3})
