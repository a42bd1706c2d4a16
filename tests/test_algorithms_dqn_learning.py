"""DQN learns a small corridor: a cheap learning test, stated as "k of n seeds"."""

import gymnasium as gym
import numpy as np
import pytest

from pgbench.rl.config import make_config
from pgbench.training.algorithms import dqn

CORRIDOR_ID = "pgbench-test/Corridor-v0"
CELLS = 6
LIMIT = 30


class _Corridor(gym.Env):
    """Cells 0..5, start at 0, obs = one-hot cell; action 1 steps right, 0 steps left (walls
    hold). Reaching cell 5 pays 1 and terminates; nothing else pays; 30-step time limit.
    The optimal policy walks right: 5 steps per episode."""

    observation_space = gym.spaces.Box(0.0, 1.0, shape=(CELLS,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def _obs(self):
        return np.eye(CELLS, dtype=np.float32)[self.cell]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 0
        return self._obs(), {}

    def step(self, action):
        self.cell = min(max(self.cell + (1 if action == 1 else -1), 0), CELLS - 1)
        done = self.cell == CELLS - 1
        return self._obs(), float(done), done, False, {}


if CORRIDOR_ID not in gym.registry:
    gym.register(CORRIDOR_ID, entry_point=_Corridor, max_episode_steps=LIMIT)


def corridor_config(seed: int):
    return make_config("dqn", {
        "env_id": CORRIDOR_ID, "seed": seed, "total_steps": 2000, "hidden": (32,), "lr": 1e-3,
        "gamma": 0.9, "learning_starts": 100, "train_freq": 4, "gradient_steps": 1,
        "target_update_interval": 100, "batch_size": 32, "buffer_size": 2000,
        "exploration_fraction": 0.3, "exploration_final_eps": 0.05})


def learned(log) -> bool:
    """The last 20 episodes average at most 6 steps (optimal: 5; epsilon 0.05 adds a few)."""
    lengths = [row[4] for row in log.episode_rows]
    return float(np.mean(lengths[-20:])) <= 6.0


@pytest.mark.slow
def test_dqn_learns_the_corridor_in_most_seeds():
    """At least 3 of seeds 0-4 learn (mean length of the last 20 episodes <= 6; a uniformly
    random walk needs 25 on average, cut at 30). Measured on seeds 100-119 (not these): 20 of 20 learned, the
    worst at 5.5. At the 95% upper bound of the per-seed failure rate that allows (0.14), "3 of
    5" fails with probability at most 2.7%; about 10 s per seed on the shared 2-core machine."""
    learned_seeds = [seed for seed in range(5) if learned(dqn.train(corridor_config(seed)))]
    assert len(learned_seeds) >= 3, learned_seeds
