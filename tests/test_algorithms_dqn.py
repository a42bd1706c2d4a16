"""DQN's maths against hand-computed values, its replay buffer, and how it stores transitions."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats

from pgbench.core.errors import UserError
from pgbench.rl.algorithms import DQNHyper
from pgbench.rl.config import make_config
from pgbench.training.algorithms import dqn
from pgbench.training.algorithms.dqn import epsilon_at, gradient_steps_done, td_loss, td_target
from pgbench.training.algorithms.replay import ReplayBuffer

# -- a toy env whose every transition is known ---------------------------------------------------
TOY_ID = "pgbench-test/CountDown-v0"
TOY_LIMIT = 3


class _Count(gym.Env):
    """obs = [steps taken so far]; reward 1 per step; action 1 terminates, action 0 does not (so
    an episode of action 0s is cut by the 3-step time limit)."""

    observation_space = gym.spaces.Box(0.0, 10.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([float(self.t)], dtype=np.float32), 1.0, bool(action == 1), False, {}


if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point=_Count, max_episode_steps=TOY_LIMIT)


# -- the TD target -------------------------------------------------------------------------------
def test_td_target_terminal_truncated_and_neither():
    rewards = torch.tensor([1.0, 1.0, 1.0])
    next_max = torch.tensor([2.0, 3.0, 4.0])
    # row 0 reached a terminal state; row 1 was cut by the time limit (terminated 0: it
    # bootstraps); row 2 is an ordinary step
    terminated = torch.tensor([1.0, 0.0, 0.0])
    y = td_target(rewards, next_max, terminated, gamma=0.9)
    torch.testing.assert_close(y, torch.tensor([1.0, 1.0 + 0.9 * 3.0, 1.0 + 0.9 * 4.0]))


def test_huber_loss_by_hand():
    q, y = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    # |d| <= 1: d^2 / 2 = 0.125; |d| > 1: |d| - 1/2 = 2.5; mean 1.3125
    assert td_loss(q, y, "huber").item() == pytest.approx(1.3125)
    assert td_loss(q, y, "mse").item() == pytest.approx((0.25 + 9.0) / 2)


# -- the epsilon schedule ------------------------------------------------------------------------
@pytest.mark.parametrize("steps, expected", [(0, 1.0), (50, 0.525), (100, 0.05), (101, 0.05),
                                             (999, 0.05)])
def test_epsilon_linear_then_flat(steps, expected):
    # 10 % of 1000 steps: from 1 to 0.05 over 100 steps, -0.0095 per step
    assert epsilon_at(steps, 1000, 1.0, 0.05, 0.1) == pytest.approx(expected)


# -- gradient steps per update -------------------------------------------------------------------
def test_gradient_steps_done_counts_only_phases_past_learning_starts():
    h = DQNHyper(train_freq=256, gradient_steps=128, learning_starts=1000)
    # phases end at 256, 512, 768 (no training), 1024 > 1000 (trains), 1280, ...
    assert [gradient_steps_done(h, u) for u in range(6)] == [0, 0, 0, 0, 128, 256]
    h = DQNHyper(train_freq=4, gradient_steps=-1, learning_starts=0)
    assert gradient_steps_done(h, 10) == 40  # -1: one gradient step per env step


# -- the replay buffer ---------------------------------------------------------------------------
def _fill(buf, n, start=0):
    for i in range(start, start + n):
        buf.add(np.array([i], dtype=np.float32), i % 2, float(i), np.array([i + 1], dtype=np.float32),
                i % 3 == 0)


def test_buffer_wraps_oldest_first():
    buf = ReplayBuffer(capacity=3, obs_dim=1)
    _fill(buf, 5)  # transitions 0..4 into 3 rows: 3 and 4 overwrite 0 and 1
    assert buf.size == 3 and buf.pos == 2
    assert buf.obs[:, 0].tolist() == [3.0, 4.0, 2.0]
    assert buf.next_obs[:, 0].tolist() == [4.0, 5.0, 3.0]
    assert buf.rewards.tolist() == [3.0, 4.0, 2.0]
    assert buf.terminated.tolist() == [1.0, 0.0, 0.0]  # 3 % 3 == 0


def test_buffer_samples_only_written_rows_with_the_given_generator():
    buf = ReplayBuffer(capacity=100, obs_dim=1)
    _fill(buf, 7)
    idx = buf.sample_indices(1000, np.random.default_rng(5))
    assert idx.min() == 0 and idx.max() == 6  # never a stale (unwritten) row
    np.testing.assert_array_equal(idx, np.random.default_rng(5).integers(0, 7, size=1000))
    batch = buf.sample(4, np.random.default_rng(5))
    first = np.random.default_rng(5).integers(0, 7, size=4)
    np.testing.assert_array_equal(batch.obs[:, 0].numpy(), first.astype(np.float32))
    np.testing.assert_array_equal(batch.next_obs[:, 0].numpy(), first + 1.0)


def test_buffer_sampling_is_uniform():
    """Chi-square goodness of fit over 10 rows, 50k draws, after a wrap. With the fixed seed the
    test is deterministic; the threshold p > 1e-4 is what a uniform sampler fails 1 time in 10^4
    over seeds."""
    buf = ReplayBuffer(capacity=10, obs_dim=1)
    _fill(buf, 23)
    idx = buf.sample_indices(50_000, np.random.default_rng(2026))
    counts = np.bincount(idx, minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError):
        ReplayBuffer(4, 1).sample_indices(1, np.random.default_rng(0))


# -- how the trainer stores transitions ----------------------------------------------------------
def _toy_config(**hyper):
    settings = {"env_id": TOY_ID, "total_steps": 64, "seed": 3, "hidden": (8,),
                "learning_starts": 1000, "train_freq": 8, "buffer_size": 1000, **hyper}
    return make_config("dqn", settings)


def test_truncated_transition_keeps_its_real_last_observation(monkeypatch):
    stored = []
    original = ReplayBuffer.add

    def spy(self, obs, action, reward, next_obs, terminated):
        stored.append((float(obs[0]), action, float(next_obs[0]), bool(terminated)))
        return original(self, obs, action, reward, next_obs, terminated)

    monkeypatch.setattr(ReplayBuffer, "add", spy)
    dqn.train(_toy_config())
    assert len(stored) == 64
    truncated = [s for s in stored if s[2] == TOY_LIMIT and s[1] == 0]
    terminal = [s for s in stored if s[1] == 1]
    assert truncated and terminal  # both kinds of episode end occurred
    # a cut episode's last transition: next obs is its real last one (3), not the reset one (0),
    # and it is not terminal, so its target bootstraps
    assert all(not s[3] for s in truncated)
    assert all(s[3] for s in terminal)
    # every transition continues its own episode: next obs = obs + 1
    assert all(s[2] == s[0] + 1 for s in stored)


def test_dqn_same_seed_same_bytes(tmp_path):
    cfg = _toy_config(learning_starts=16, gradient_steps=2, target_update_interval=8,
                      batch_size=4)
    a, b = dqn.train(cfg), dqn.train(cfg)
    assert a.episode_rows == b.episode_rows
    assert [r[:5] for r in a.update_rows] == [r[:5] for r in b.update_rows]  # all but wall time
    assert a.updates == 8 and np.isfinite(a.update_rows[-1][3])


def test_dqn_refuses_several_envs_and_box_actions():
    with pytest.raises(UserError, match="num_envs=2"):
        dqn.train(make_config("dqn", {"env_id": TOY_ID, "num_envs": 2}))
    with pytest.raises(UserError, match="Discrete"):
        dqn.train(make_config("dqn", {"env_id": "Pendulum-v1", "total_steps": 10}))


def test_dqn_and_sb3_dqn_read_the_same_settings():
    """The validation compares like with like: both variants' configs hold the same values."""
    import dataclasses

    import yaml

    path = Path(__file__).parents[1] / "config" / "validate_dqn.yaml"
    zoo = yaml.safe_load(path.read_text())["suites"]["validate_dqn"]["envs"]
    for env, settings in zoo.items():
        mine = make_config("dqn", {**settings, "env_id": env})
        theirs = make_config("sb3_dqn", {**settings, "env_id": env})
        assert dataclasses.replace(mine, variant="x") == dataclasses.replace(theirs, variant="x")
        assert f"train_freq={settings['train_freq']}" in mine.hyper
