"""Tabular Q-learning (the slides' update) against values computed by hand and the exact Q*."""

import gymnasium as gym
import numpy as np
import pytest

from pgbench.core.errors import UserError
from pgbench.training.algorithms.qlearning import (
    optimal_q,
    q_learning_target,
    q_learning_update,
    tabular_model,
    train_q_learning,
)

GAMMA = 0.9


@pytest.fixture(scope="module")
def lake():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    yield env
    env.close()


def test_target_terminal_is_the_reward_alone():
    assert q_learning_target(1.0, np.array([5.0, 7.0]), terminal=True, gamma=0.9) == 1.0


def test_target_nonterminal_bootstraps_on_the_max():
    # 0.5 + 0.9 * max(5, 7) = 6.8
    assert q_learning_target(0.5, np.array([5.0, 7.0]), terminal=False, gamma=0.9) == pytest.approx(6.8)


def test_update_mixes_old_value_and_target():
    q = np.array([[2.0, 4.0]])
    q_learning_update(q, 0, 1, target=10.0, alpha=0.25)  # 0.75 * 4 + 0.25 * 10 = 5.5
    assert q[0, 1] == 5.5 and q[0, 0] == 2.0


def test_optimal_q_matches_hand_values(lake):
    q = optimal_q(tabular_model(lake), GAMMA)
    # 4x4 lake, goal at 15: from 14 "right" (2) reaches the goal, reward 1, terminal
    assert q[14, 2] == pytest.approx(1.0, abs=1e-12)
    # from the start the shortest path is 6 steps, so the reward 1 comes after 5 discounts
    assert q[0, 1] == pytest.approx(GAMMA ** 5, abs=1e-12)
    # stepping into a hole (5 from 4 going right) ends the episode with reward 0
    assert q[4, 2] == 0.0
    # holes and the goal are terminal: never a state acted from, Q* = 0
    assert np.all(q[[5, 7, 11, 12, 15]] == 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_learning_converges_to_optimal_q(lake, seed):
    """Uniformly random behaviour (off-policy), alpha 0.5, 30k steps. Tolerance 1e-6 on every
    entry: over seeds 100..119 the largest error measured was 2.5e-9 (the non-slippery lake is
    deterministic, so each visit of a pair halves its error once its successors are exact)."""
    q = train_q_learning(lake, steps=30_000, alpha=0.5, gamma=GAMMA, epsilon=1.0, seed=seed)
    exact = optimal_q(tabular_model(lake), GAMMA)
    assert np.max(np.abs(q - exact)) < 1e-6


class _StayChain(gym.Env):
    """State 0 -> state 1 (reward 0), then state 1 -> state 1 (reward 1) forever: never terminal.
    Under a 2-step time limit every episode is cut right after its one step from state 1."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, action):
        reward = float(self.s == 1)
        self.s = 1
        return 1, reward, False, False, {}


def test_truncation_bootstraps_and_resets():
    """Q*(1, a) = 1 / (1 - gamma) = 10 because state 1 is never terminal; treating the time-limit
    cut as terminal would give Q(1, a) = 1. Q(0, a) = gamma * 10 = 9."""
    env = gym.wrappers.TimeLimit(_StayChain(), max_episode_steps=2)
    q = train_q_learning(env, steps=4000, alpha=0.5, gamma=GAMMA, epsilon=1.0, seed=0)
    np.testing.assert_allclose(q, [[9.0, 9.0], [10.0, 10.0]], atol=1e-6)


def test_bad_settings_name_the_value(lake):
    with pytest.raises(UserError, match="alpha=0"):
        train_q_learning(lake, steps=10, alpha=0, gamma=GAMMA, epsilon=1.0, seed=0)
    with pytest.raises(UserError, match="gamma=1.0"):
        optimal_q(tabular_model(lake), 1.0)
